/*
 * Client side of a TFTP read, see tgproto.h. Written for the load
 * generators: no allocation, no I/O, every input bounded by its length.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tgproto.h"

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

void
tg_phone_name(char *out, size_t outsz, uint64_t mac)
{
	snprintf(out, outsz, "ITLSEP%012llX.tlv",
		(unsigned long long)(mac & 0xffffffffffffULL));
}

static size_t
put_str(uint8_t *out, size_t off, const char *s)
{
	size_t n = strlen(s) + 1;

	if (off + n > TG_RRQ_MAX)
		return 0;
	memcpy(out + off, s, n);
	return off + n;
}

static size_t
put_opt(uint8_t *out, size_t off, const char *key, unsigned val)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", val);
	off = off ? put_str(out, off, key) : 0;
	return off ? put_str(out, off, v) : 0;
}

static size_t
build_rrq(const struct tg_xfer *x, const struct tg_params *p, uint8_t *out)
{
	size_t off;

	wr16(out, TG_OP_RRQ);
	off = put_str(out, 2, x->name);
	off = off ? put_str(out, off, "octet") : 0;
	if (off && p->tsize)
		off = put_opt(out, off, "tsize", 0);
	if (off && p->blksize)
		off = put_opt(out, off, "blksize", p->blksize);
	if (off && p->windowsize)
		off = put_opt(out, off, "windowsize", p->windowsize);
	return off;
}

static size_t
build_ack(uint8_t *out, uint64_t block)
{
	wr16(out, TG_OP_ACK);
	wr16(out + 2, (uint16_t)block);
	return 4;
}

/* ERROR 8 (option negotiation failed) or 0, to let the server stop at once
 * rather than time out on a transfer we dropped. */
static size_t
build_error(uint8_t *out, uint16_t code, const char *msg)
{
	size_t n = strlen(msg) + 1;

	wr16(out, TG_OP_ERROR);
	wr16(out + 2, code);
	memcpy(out + 4, msg, n);
	return 4 + n;
}

size_t
tg_start(struct tg_xfer *x, const struct tg_params *p, const char *name,
	uint64_t now_ns, uint8_t *out)
{
	size_t len = strlen(name);

	if (len >= sizeof(x->name))
		return 0;
	memset(x, 0, sizeof(*x));
	memcpy(x->name, name, len + 1);
	x->state = TG_WAIT_FIRST;
	x->blksize = 512;
	x->windowsize = 1;
	x->next_block = 1;
	x->tsize = UINT64_MAX;
	x->t_start = now_ns;
	x->t_last = now_ns;
	return build_rrq(x, p, out);
}

static enum tg_action
fail(struct tg_xfer *x, enum tg_fail why)
{
	x->state = TG_FINISHED;
	x->fail = why;
	return TG_FAIL;
}

static bool
parse_uint(const char *s, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long n;

	if (*s < '0' || *s > '9')
		return false;
	n = strtoull(s, &end, 10);
	if (*end != '\0' || n > max)
		return false;
	*v = n;
	return true;
}

/* OACK: a list of NUL-terminated key/value pairs. The server may only
 * acknowledge what we asked, with a value no larger than ours. */
static bool
take_oack(struct tg_xfer *x, const struct tg_params *p, const uint8_t *pl, size_t len)
{
	const char *s = (const char *)pl + 2, *end = (const char *)pl + len;

	while (s < end) {
		const char *key = s, *val;
		uint64_t v;

		s = memchr(key, '\0', end - key);
		if (s == NULL)
			return false;
		val = ++s;
		s = memchr(val, '\0', end - val);
		if (s == NULL)
			return false;
		s++;
		if (!parse_uint(val, UINT64_MAX / 2, &v))
			return false;
		if (strcasecmp(key, "blksize") == 0) {
			if (!p->blksize || v < 8 || v > p->blksize)
				return false;
			x->blksize = v;
		} else if (strcasecmp(key, "windowsize") == 0) {
			if (!p->windowsize || v < 1 || v > p->windowsize)
				return false;
			x->windowsize = v;
		} else if (strcasecmp(key, "tsize") == 0) {
			if (!p->tsize)
				return false;
			x->tsize = v;
		} else if (strcasecmp(key, "timeout") != 0) {
			return false;	/* an option we never asked for */
		}
	}
	return true;
}

static bool
block_matches(const struct tg_xfer *x, const struct tg_params *p, const uint8_t *d,
	size_t n)
{
	uint64_t off = (x->next_block - 1) * x->blksize;

	if (p->verify == NULL)
		return true;
	if (off + n > p->verify_len)
		return false;
	return memcmp(p->verify + off, d, n) == 0;
}

static bool
size_ok(const struct tg_xfer *x, const struct tg_params *p)
{
	if (x->tsize != UINT64_MAX && x->tsize != x->bytes)
		return false;
	if (p->expect_size >= 0 && (uint64_t)p->expect_size != x->bytes)
		return false;
	return p->verify == NULL || x->bytes == p->verify_len;
}

static enum tg_action
take_data(struct tg_xfer *x, const struct tg_params *p, uint64_t now_ns,
	const uint8_t *pl, size_t len, uint8_t *out, size_t *outlen)
{
	uint16_t blk = rd16(pl + 2), want = (uint16_t)x->next_block;
	size_t n = len - 4;

	if (blk != want) {
		/* A duplicate (our ACK was lost) or a gap in a window: ACK the
		 * last block we hold, once, so the server restarts from it. */
		x->dups++;
		if (x->gap_acked)
			return TG_STALE;
		x->gap_acked = true;
		x->in_window = 0;
		*outlen = build_ack(out, x->next_block - 1);
		return TG_SEND;
	}
	if (n > x->blksize)
		return fail(x, TG_FAIL_PROTOCOL);
	if (!block_matches(x, p, pl + 4, n)) {
		*outlen = build_error(out, 0, "content mismatch");
		return fail(x, TG_FAIL_VERIFY);
	}
	x->bytes += n;
	x->next_block++;
	x->in_window++;
	x->gap_acked = false;
	x->retries = 0;
	x->t_last = now_ns;
	if (n < x->blksize) {
		*outlen = build_ack(out, x->next_block - 1);
		x->state = TG_FINISHED;
		if (!size_ok(x, p)) {
			x->fail = TG_FAIL_SIZE;
			return TG_FAIL;
		}
		return TG_DONE;
	}
	if (x->in_window < x->windowsize)
		return TG_NONE;
	x->in_window = 0;
	*outlen = build_ack(out, x->next_block - 1);
	return TG_SEND;
}

enum tg_action
tg_input(struct tg_xfer *x, const struct tg_params *p, uint64_t now_ns,
	uint16_t from_port, const uint8_t *pl, size_t len, uint8_t *out, size_t *outlen)
{
	uint16_t op;

	*outlen = 0;
	if (x->state != TG_WAIT_FIRST && x->state != TG_WAIT_DATA)
		return TG_STALE;
	if (len < 4)
		return TG_STALE;
	if (x->tid != 0 && from_port != x->tid)
		return TG_STALE;
	op = rd16(pl);
	switch (op) {
	case TG_OP_OACK:
		if (x->state != TG_WAIT_FIRST)
			return TG_STALE;	/* a duplicate OACK */
		x->tid = from_port;
		if (!take_oack(x, p, pl, len)) {
			*outlen = build_error(out, 8, "bad option");
			return fail(x, TG_FAIL_OPTION);
		}
		x->state = TG_WAIT_DATA;
		x->retries = 0;
		x->t_last = now_ns;
		*outlen = build_ack(out, 0);
		return TG_SEND;
	case TG_OP_DATA:
		if (x->state == TG_WAIT_FIRST) {
			/* Before the server's port is known, only block 1 can
			 * be ours: a later block is a late retransmission of an
			 * earlier transfer that used this client port, and
			 * taking its port as the TID would lock us onto it. */
			if (rd16(pl + 2) != 1)
				return TG_STALE;
			/* The server ignored our options: RFC 1350 defaults. */
			x->tid = from_port;
			x->state = TG_WAIT_DATA;
		}
		return take_data(x, p, now_ns, pl, len, out, outlen);
	case TG_OP_ERROR:
		x->error_code = rd16(pl + 2);
		return fail(x, TG_FAIL_ERROR_PKT);
	default:
		return TG_STALE;
	}
}

enum tg_action
tg_timer(struct tg_xfer *x, const struct tg_params *p, uint64_t now_ns,
	uint8_t *out, size_t *outlen)
{
	*outlen = 0;
	if (x->state != TG_WAIT_FIRST && x->state != TG_WAIT_DATA)
		return TG_NONE;
	if (now_ns - x->t_last < p->timeout_ns)
		return TG_NONE;
	if (x->retries >= p->retries)
		return fail(x, TG_FAIL_TIMEOUT);
	x->retries++;
	x->retransmits++;
	x->t_last = now_ns;
	x->in_window = 0;
	x->gap_acked = false;
	if (x->state == TG_WAIT_FIRST)
		*outlen = build_rrq(x, p, out);
	else
		*outlen = build_ack(out, x->next_block - 1);
	return TG_SEND;
}

const char *
tg_fail_name(enum tg_fail f)
{
	static const char *const names[] = {
		[TG_FAIL_NONE] = "none", [TG_FAIL_TIMEOUT] = "timeout",
		[TG_FAIL_ERROR_PKT] = "server ERROR", [TG_FAIL_OPTION] = "bad OACK",
		[TG_FAIL_PROTOCOL] = "protocol", [TG_FAIL_VERIFY] = "content mismatch",
		[TG_FAIL_SIZE] = "size mismatch",
	};

	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "?";
}

bool
tg_parse_rrq(const uint8_t *pl, size_t len, char *name, size_t namesz,
	unsigned *blksize, unsigned *windowsize, bool *tsize)
{
	const char *s = (const char *)pl + 2, *end = (const char *)pl + len;
	const char *mode;
	int field = 0;

	*blksize = *windowsize = 0;
	*tsize = false;
	if (len < 4 || rd16(pl) != TG_OP_RRQ)
		return false;
	while (s < end) {
		const char *z = memchr(s, '\0', end - s), *val;
		uint64_t v;

		if (z == NULL)
			return false;
		if (field == 0) {
			if ((size_t)(z - s) >= namesz)
				return false;
			memcpy(name, s, z - s + 1);
		} else if (field == 1) {
			mode = s;
			if (strcasecmp(mode, "octet") != 0 && strcasecmp(mode, "netascii") != 0)
				return false;
		} else {
			val = z + 1;
			z = val < end ? memchr(val, '\0', end - val) : NULL;
			if (z == NULL || !parse_uint(val, 65535, &v))
				return false;
			if (strcasecmp(s, "blksize") == 0)
				*blksize = v;
			else if (strcasecmp(s, "windowsize") == 0)
				*windowsize = v;
			else if (strcasecmp(s, "tsize") == 0)
				*tsize = true;
		}
		field++;
		s = z + 1;
	}
	return field >= 2;
}
