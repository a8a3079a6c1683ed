/*
 * libFuzzer harness for the TFTP engine (dataplane/tftp.c), the whole
 * entry point for a received datagram: RRQ/WRQ parsing, RFC 2347 options,
 * transfers, ACK/ERROR handling and the retransmission timers. The input
 * is a script (fuzz_script.h) played by four peers against one engine
 * whose limits come from the first two bytes; the fake world is the unit
 * tests' (tests/c/tftp_harness.h). After every step it checks the books
 * the engine promises (tftp.h) and the shape of every datagram it sent;
 * at the end the clock runs until every transfer has ended. Any broken
 * promise aborts, so libFuzzer keeps the script.
 *
 * Script: config c0 c1, then steps "k args": k & 3 is the peer, k >> 2
 * the action (see step()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_need.h"
#include "fuzz_script.h"
#include "tftp_harness.h"

#define NPEERS 4
#define MS 1000000ull

struct fpeer {
	struct tftp_peer addr;
	uint16_t sport;		/* the server's TID, 0 before a transfer */
	uint16_t last_block;	/* last DATA block received */
	bool oack;		/* the last datagram was an OACK: ACK 0 answers it */
};

struct fuzz {
	struct h h;
	struct fz z;
	struct fpeer peers[NPEERS];
	uint32_t max_blk;	/* largest DATA payload allowed */
	unsigned steps;
};

static const char *const file_names[] = {
	"a.txt", "ITLFile.tlv", "empty", "big.bin", "ITLSEP001122AABBCC.tlv",
	"CTLSEP001122334455.tlv", "ITLSEP00112233445.tlv", "missing", "forbidden.bin",
	"../a.txt", "/a.txt", "x\\..\\a.txt", "a/../a.txt", "CTLFile.tlv",
};
static const char *const modes[] = { "octet", "netascii", "OCTET", "NetAscii", "mail", "" };
static const char *const opt_names[] = {
	"blksize", "tsize", "timeout", "windowsize", "BLKSIZE", "WindowSize", "unknown", "",
};

static bool
port_local(void *ctx, const struct tftp_peer *peer, uint16_t port)
{
	(void)ctx;
	return ((port ^ peer->port) & 1) == 0;
}

static uint8_t text[700], itl[1024], big[20000];

/* File contents: text with LF and CR for netascii, one exact multiple of
 * 512, one of many blocks. */
static void
make_files(void)
{
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = i % 37 == 0 ? '\n' : i % 53 == 0 ? '\r' : (uint8_t)('a' + i % 26);
	for (size_t i = 0; i < sizeof(itl); i++)
		itl[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i % 251 == 0 ? '\n' : i);
}

static void
publish_files(struct h *h, unsigned which)
{
	if (which & 1)
		h_publish(h, "a.txt", text, sizeof(text));
	if (which & 2)
		h_publish(h, "ITLFile.tlv", itl, sizeof(itl));
	if (which & 4)
		h_publish(h, "empty", NULL, 0);
	if (which & 8)
		h_publish(h, "big.bin", big, sizeof(big));
}

static void
configure(struct fuzz *f)
{
	static const uint16_t blk[] = { 0, 8, 512, 1024, 1428, 8192, 65464, 100 };
	static const uint16_t win[] = { 0, 1, 4, 64 };
	static const uint32_t tmo[] = { 0, 50, 1000, 3000 };
	static const uint8_t retries[] = { 0, 1, 3, 6 };
	static const uint32_t xfers[] = { 1, 2, 3, 8 };
	uint8_t c0 = fz_u8(&f->z), c1 = fz_u8(&f->z);
	struct tftp_limits lim = {
		.max_blksize = blk[c0 & 7],
		.max_windowsize = win[c0 >> 3 & 3],
		.timeout_ms = tmo[c0 >> 5 & 3],
		.retries = retries[c1 & 3],
		.max_transfers = xfers[c1 >> 2 & 3],
		/* the per-source bound (0: none) and, with it, a short life
		 * and timeout cap so that expiry and refusals are reached */
		.max_per_source = c1 >> 6,
		.max_life_s = c1 >> 6 & 1,
		.max_timeout_s = c1 >> 7 ? 1 : 0,
	};
	static const uint16_t bases[] = { 1024, 0, 70, 1 };
	static struct tftp_ops ops;

	lim.port_base = bases[c1 >> 4 & 3];
	if (lim.port_base == 0)
		lim.port_base = (uint16_t)(65536u - lim.max_transfers);
	h_init(&f->h, &lim);
	if (c0 & 0x80) {
		/* the same engine again, with the steering hook */
		tftp_engine_free(f->h.e);
		ops = h_ops;
		ops.port_local = port_local;
		f->h.e = tftp_engine_create(&lim, &ops, &f->h);
		need(f->h.e != NULL, "engine with port_local");
	}
	f->max_blk = lim.max_blksize == 0 ? TFTP_DEFAULT_BLKSIZE :
		lim.max_blksize < TFTP_MIN_BLKSIZE ? TFTP_MIN_BLKSIZE : lim.max_blksize;
	if (f->max_blk < TFTP_DEFAULT_BLKSIZE)
		f->max_blk = TFTP_DEFAULT_BLKSIZE;	/* no blksize option: 512 */
	publish_files(&f->h, 15);
	for (unsigned i = 0; i < NPEERS; i++) {
		/* peers 0 and 2 share an address: TIDs tell them apart */
		f->peers[i].addr.ip = 0x0a000001u + (i == 2 ? 0 : i);
		f->peers[i].addr.port = (uint16_t)(40001 + i);
	}
}

/* Every datagram the engine sent is well formed and goes to a peer. */
static void
check_datagram(struct fuzz *f, const struct h_pkt *p)
{
	uint16_t op;

	need(p->len >= 4, "datagram of at least 4 bytes");
	op = h_get16(p->data);
	if (op == TFTP_ERROR) {
		need(p->len >= 5 && p->data[p->len - 1] == 0, "ERROR message NUL-terminated");
		need(h_get16(p->data + 2) <= TFTP_ERR_OPTIONS, "ERROR code defined");
		need(p->sport == TFTP_PORT || tftp_owns_port(f->h.e, p->sport),
			"ERROR from port 69 or one of ours");
		return;
	}
	need(tftp_owns_port(f->h.e, p->sport), "DATA/OACK from a transfer port");
	if (op == TFTP_DATA) {
		need(p->len - 4 <= f->max_blk, "DATA within the block size");
		return;
	}
	need(op == TFTP_OACK, "only DATA, OACK, ERROR are sent");
	for (size_t pos = 2; pos < p->len;) {
		const uint8_t *nul = memchr(p->data + pos, 0, p->len - pos);

		need(nul != NULL, "OACK strings NUL-terminated");
		pos = (size_t)(nul - p->data) + 1;
	}
}

/* The peers take what was sent to them. */
static void
deliver(struct fuzz *f)
{
	struct h_pkt *p;

	while ((p = h_pop(&f->h)) != NULL) {
		check_datagram(f, p);
		for (unsigned i = 0; i < NPEERS; i++) {
			struct fpeer *q = &f->peers[i];
			uint16_t op = h_get16(p->data);

			if (p->to.ip != q->addr.ip || p->to.port != q->addr.port)
				continue;
			if (op == TFTP_DATA || op == TFTP_OACK) {
				q->sport = p->sport;
				q->oack = op == TFTP_OACK;
				if (op == TFTP_DATA)
					q->last_block = h_get16(p->data + 2);
			}
		}
		free(p->data);
	}
}

/* The books of tftp.h and of the fake file store. */
static void
check_books(struct fuzz *f)
{
	const struct tftp_stats *st = tftp_stats(f->h.e);
	unsigned active = tftp_active(f->h.e);
	struct h *h = &f->h;

	need(st->started == st->completed + st->failed + active,
		"started == completed + failed + active");
	need(h->lookups_ok == h->releases + active, "one file reference per live transfer");
	need(h->bad_releases == 0, "no release of a reference not lent");
	need(!h->hdr_too_big, "header within the contract");
	need(h->done_ok == st->completed && h->done_fail == st->failed,
		"done() once per ended transfer");
	need(h->sends_error == st->err_not_found + st->err_access + st->err_illegal +
		st->err_unknown_tid + st->err_options + st->err_table_full + st->err_per_source +
		st->err_expired,
		"every ERROR sent counted once");
	need(h->sends_data == st->data_pkts, "every DATA counted");
}

static void
input(struct fuzz *f, const struct fpeer *q, uint16_t port, const uint8_t *p, size_t len)
{
	/* exact-size copy so ASan sees any read past the end */
	uint8_t *copy = malloc(len ? len : 1);
	unsigned before = f->h.sends;
	bool is_error = len >= 2 && h_get16(p) == TFTP_ERROR;

	memcpy(copy, p, len);
	h_input(&f->h, &q->addr, port, copy, len);
	free(copy);
	need(!is_error || f->h.sends == before, "an ERROR is never answered");
}

static void
append(uint8_t *buf, size_t cap, size_t *n, const char *s)
{
	size_t l = strlen(s) + 1;

	if (*n + l <= cap) {
		memcpy(buf + *n, s, l);
		*n += l;
	}
}

/* A request built from indexes, so the fuzzer reaches transfers quickly. */
static void
built_request(struct fuzz *f, const struct fpeer *q)
{
	static const char *const odd[] = { "", "-1", "12x", "99999999999999999999", "0" };
	uint8_t buf[TFTP_MAX_REQUEST + 64];
	uint8_t op = fz_u8(&f->z), name = fz_u8(&f->z), mode = fz_u8(&f->z);
	unsigned nopts = fz_u8(&f->z) % 6;
	char longname[TFTP_NAME_MAX + 2];
	size_t n = 2;

	buf[0] = 0;
	buf[1] = op % 8 == 7 ? TFTP_WRQ : TFTP_RRQ;
	if (name % 16 >= sizeof(file_names) / sizeof(file_names[0])) {
		memset(longname, 'L', sizeof(longname) - 1);
		longname[TFTP_NAME_MAX + (name & 1)] = '\0';
		append(buf, sizeof(buf), &n, longname);
	} else {
		append(buf, sizeof(buf), &n, file_names[name % 16]);
	}
	append(buf, sizeof(buf), &n, modes[mode % 6]);
	for (unsigned i = 0; i < nopts; i++) {
		uint8_t on = fz_u8(&f->z), vk = fz_u8(&f->z);
		uint32_t v = fz_u16(&f->z);
		char val[32];

		if (vk % 8 < 3)
			snprintf(val, sizeof(val), "%u",
				vk % 8 == 0 ? v : vk % 8 == 1 ? v * 100000u : v % 256);
		else
			snprintf(val, sizeof(val), "%s", odd[vk % 8 - 3]);
		append(buf, sizeof(buf), &n, opt_names[on % 8]);
		append(buf, sizeof(buf), &n, val);
	}
	input(f, q, TFTP_PORT, buf, n);
}

static void
advance(struct fuzz *f, uint8_t t)
{
	h_advance(&f->h, t < 128 ? t * MS : ((uint64_t)(t - 128) * 1000 + 1) * MS);
}

/* The peer ACKs what it received, round after round. */
static void
play(struct fuzz *f, struct fpeer *q, unsigned rounds)
{
	for (unsigned r = 0; r < rounds && q->sport != 0; r++) {
		uint16_t b = q->oack ? 0 : q->last_block;
		uint8_t ack[4] = { 0, TFTP_ACK, (uint8_t)(b >> 8), (uint8_t)b };
		unsigned before = f->h.sends;

		input(f, q, q->sport, ack, 4);
		deliver(f);
		check_books(f);
		if (f->h.sends == before)
			break;
	}
}

static void
step(struct fuzz *f)
{
	uint8_t k = fz_u8(&f->z);
	struct fpeer *q = &f->peers[k & 3];
	size_t len;
	const uint8_t *p;

	switch (k >> 2 & 7) {
	case 0:		/* raw datagram to port 69 */
		p = fz_bytes(&f->z, fz_u16(&f->z) % (TFTP_MAX_REQUEST + 64), &len);
		input(f, q, TFTP_PORT, p, len);
		break;
	case 1:
		built_request(f, q);
		break;
	case 2: {	/* raw datagram to a transfer port (or just past them) */
		uint8_t sel = fz_u8(&f->z);
		uint16_t port = (uint16_t)(f->h.lim.port_base + sel % (f->h.lim.max_transfers + 1));

		if (sel == 255)
			port = fz_u16(&f->z);
		p = fz_bytes(&f->z, fz_u8(&f->z), &len);
		input(f, q, port, p, len);
		break;
	}
	case 3: {	/* an ACK near the last block seen */
		uint16_t b = (uint16_t)(q->last_block + (int8_t)fz_u8(&f->z));
		uint8_t ack[4] = { 0, TFTP_ACK, (uint8_t)(b >> 8), (uint8_t)b };

		input(f, q, q->sport ? q->sport : f->h.lim.port_base, ack, 4);
		break;
	}
	case 4: {	/* an ERROR to the transfer */
		uint8_t e[6] = { 0, TFTP_ERROR, 0, fz_u8(&f->z), 'x', 0 };

		input(f, q, q->sport ? q->sport : f->h.lim.port_base, e, sizeof(e));
		break;
	}
	case 5:
		advance(f, fz_u8(&f->z));
		break;
	case 6:
		play(f, q, fz_u8(&f->z));
		break;
	case 7:		/* a new generation while transfers hold the old one */
		publish_files(&f->h, fz_u8(&f->z));
		break;
	}
	deliver(f);
	check_books(f);
}

/* The clock runs until every transfer has timed out: none may linger. */
static void
drain(struct fuzz *f)
{
	for (unsigned i = 0; i < 300 && tftp_active(f->h.e) != 0; i++) {
		h_advance(&f->h, 300ull * 1000 * MS);
		deliver(f);
		check_books(f);
	}
	need(tftp_active(f->h.e) == 0, "every transfer ends when its peer is gone");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_files();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct fuzz f;
	unsigned lookups_ok;

	memset(&f, 0, sizeof(f));
	f.z.p = d;
	f.z.n = n;
	configure(&f);
	while (fz_more(&f.z) && f.steps++ < 4096)
		step(&f);
	drain(&f);
	if (getenv("FUZZ_SUMMARY") != NULL) {	/* what a seed did, for writing seeds */
		const struct tftp_stats *st = tftp_stats(f.h.e);

		fprintf(stderr, "steps %u rrq %lu started %lu completed %lu failed %lu data %lu "
			"errors %u retransmits %lu\n", f.steps, st->rrq, st->started, st->completed,
			st->failed, st->data_pkts, f.h.sends_error, st->retransmits);
	}
	lookups_ok = f.h.lookups_ok;
	h_fini(&f.h);
	need(f.h.releases == lookups_ok && f.h.bad_releases == 0, "every reference released");
	return 0;
}
