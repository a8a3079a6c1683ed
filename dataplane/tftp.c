/*
 * The TFTP transfer engine (contract in tftp.h): a read-only RFC 1350
 * server with RFC 2347/2348/2349/7440 options, driven by tftp_input and
 * tftp_tick. Everything is allocated in tftp_engine_create; the hot paths
 * neither allocate, log nor make system calls.
 *
 * Blocks are counted internally with 64-bit absolute numbers (1, 2, ...),
 * so a file of more than 65535 blocks needs no special case: only the wire
 * block number is the low 16 bits (65535 rolls over to 0, like tftp-hpa).
 *
 * A transfer sends a window of blocks acked+1 .. acked+W. Any ACK n inside
 * the window means every block up to n arrived: acked becomes n and a new
 * window starts at n+1 (RFC 7440 section 4: a receiver that saw a gap acks
 * the last block it has in order and drops the rest, so the blocks after n
 * are sent again). An ACK of a block already acknowledged never causes a
 * send (Sorcerer's Apprentice, RFC 1350 / RFC 1123 4.2.3.1): only the
 * retransmission timer resends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src_count.h"
#include "tftp.h"

#define NIL UINT32_MAX
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

/*
 * Timers. Every live transfer waits for exactly one deadline, and a
 * deadline is always "now + the transfer's timeout". Transfers use the
 * engine default or an RFC 2349 timeout of 1..max_timeout_s (<= 255) s,
 * so there are at most 256 distinct periods. One FIFO per period is
 * therefore sorted by deadline for free (appending now + period to the
 * tail of its FIFO keeps it ordered while the clock is monotonic):
 * arming and cancelling are O(1) list operations, and the earliest
 * deadline is one of the FIFO heads.
 * next_due is a lower bound of all deadlines, so tftp_tick returns after
 * one comparison when nothing is due; when it passes, the tick scans only
 * the non-empty FIFOs (a 256-bit mask; in practice one or two) and
 * recomputes the bound. This beats a heap (O(log n) per re-arm, and every
 * ACK re-arms) and a hashed wheel (a slot per tick to walk, and a
 * resolution to pick) for this workload.
 */
#define TQ_COUNT 256		/* FIFO 0: default timeout; s in 1..255: option */
#define TQ_WORDS (TQ_COUNT / 64)

enum xfer_state {
	XS_FREE = 0,
	XS_OACK,		/* OACK sent, waiting for ACK 0 */
	XS_DATA,		/* sending windows of DATA */
};

enum {
	OPT_BLKSIZE = 1 << 0,
	OPT_TSIZE = 1 << 1,
	OPT_TIMEOUT = 1 << 2,
	OPT_WINDOWSIZE = 1 << 3,
};

/* Where a netascii block starts: source offset, plus the second byte of a
 * CR LF / CR NUL pair that the previous block boundary cut (-1 if none). */
struct nva_cursor {
	size_t off;
	int16_t pend;
};

struct tftp_xfer {
	uint8_t state;
	uint8_t netascii;
	uint8_t tries;		/* timeouts since the last progress */
	uint8_t tq;		/* timer FIFO; also the OACK timeout value */
	uint8_t opts;		/* OPT_* acknowledged in the OACK */
	uint16_t blksize;
	uint16_t window;
	struct tftp_peer peer;
	uint32_t tnext;		/* timer FIFO link; free list link when free */
	uint32_t tprev;
	uint64_t deadline;
	uint64_t born;		/* for limits.max_life_s */
	uint64_t acked;		/* highest block acknowledged, 0 = none */
	uint64_t sent;		/* last block of the current window */
	uint64_t hiwat;		/* highest block ever sent */
	uint64_t nblocks;	/* blocks in the transfer, the last one short */
	uint64_t xlen;		/* bytes to send: file length, or netascii length */
	struct nva_cursor base;	/* netascii: start of block acked + 1 */
	struct tftp_file file;
};

struct tftp_tq {
	uint32_t head;
	uint32_t tail;
	uint64_t period;
};

struct tftp_engine {
	struct tftp_limits lim;
	struct tftp_ops ops;
	void *ctx;
	struct tftp_xfer *xs;
	char *names;		/* max_transfers * (TFTP_NAME_MAX + 1) */
	uint8_t *scratch;	/* every datagram header we build */
	uint32_t free_head;	/* free slots, FIFO: see xfer_free */
	uint32_t free_tail;
	uint32_t active;
	struct src_count *src;	/* transfers per client address */
	uint64_t next_due;
	uint64_t tq_busy[TQ_WORDS];
	struct tftp_tq tq[TQ_COUNT];
	struct tftp_stats st;
};

/* A parsed RRQ; strings point into the datagram (NUL-terminated there). */
struct tftp_req {
	const char *name;
	bool netascii;
	uint8_t opts;
	uint32_t blksize;
	uint32_t timeout;
	uint32_t windowsize;
};

static inline char *
xfer_name(struct tftp_engine *e, uint32_t i)
{
	return e->names + (size_t)i * (TFTP_NAME_MAX + 1);
}

static inline void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- timers ---- */

static void
timer_unlink(struct tftp_engine *e, uint32_t i)
{
	struct tftp_xfer *x = &e->xs[i];
	struct tftp_tq *q = &e->tq[x->tq];

	if (x->tprev != NIL)
		e->xs[x->tprev].tnext = x->tnext;
	else
		q->head = x->tnext;
	if (x->tnext != NIL)
		e->xs[x->tnext].tprev = x->tprev;
	else
		q->tail = x->tprev;
	if (q->head == NIL)
		e->tq_busy[x->tq / 64] &= ~(1ull << (x->tq % 64));
	x->tnext = x->tprev = NIL;
}

static void
timer_append(struct tftp_engine *e, uint32_t i, uint64_t now)
{
	struct tftp_xfer *x = &e->xs[i];
	struct tftp_tq *q = &e->tq[x->tq];

	x->deadline = now + q->period;
	x->tnext = NIL;
	x->tprev = q->tail;
	if (q->tail != NIL) {
		e->xs[q->tail].tnext = i;
	} else {
		q->head = i;
		e->tq_busy[x->tq / 64] |= 1ull << (x->tq % 64);
	}
	q->tail = i;
	if (x->deadline < e->next_due)
		e->next_due = x->deadline;
}

static void
timer_rearm(struct tftp_engine *e, uint32_t i, uint64_t now)
{
	timer_unlink(e, i);
	timer_append(e, i, now);
}

/* ---- building datagrams ---- */

/* ERROR code 0 carries several refusals: the caller counts it. */
static void
send_error(struct tftp_engine *e, const struct tftp_peer *to, uint16_t sport,
	uint16_t code, const char *msg)
{
	size_t n = strlen(msg);

	switch (code) {
	case TFTP_ERR_NOT_FOUND: e->st.err_not_found++; break;
	case TFTP_ERR_ACCESS: e->st.err_access++; break;
	case TFTP_ERR_ILLEGAL_OP: e->st.err_illegal++; break;
	case TFTP_ERR_UNKNOWN_TID: e->st.err_unknown_tid++; break;
	case TFTP_ERR_OPTIONS: e->st.err_options++; break;
	}
	put16(e->scratch, TFTP_ERROR);
	put16(e->scratch + 2, code);
	memcpy(e->scratch + 4, msg, n + 1);
	e->ops.send(e->ctx, to, sport, e->scratch, 4 + n + 1, NULL, 0);
}

/* Appends "name\0value\0"; returns the new length. */
static size_t
put_opt(uint8_t *p, size_t n, const char *name, uint64_t v)
{
	char digits[20];
	size_t k = 0, len = strlen(name);

	memcpy(p + n, name, len + 1);
	n += len + 1;
	do {
		digits[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (k > 0)
		p[n++] = (uint8_t)digits[--k];
	p[n++] = 0;
	return n;
}

static uint16_t
xfer_port(const struct tftp_engine *e, uint32_t i)
{
	return (uint16_t)(e->lim.port_base + i);
}

static void
send_oack(struct tftp_engine *e, uint32_t i, bool again)
{
	struct tftp_xfer *x = &e->xs[i];
	uint8_t *p = e->scratch;
	size_t n = 2;

	put16(p, TFTP_OACK);
	if (x->opts & OPT_BLKSIZE)
		n = put_opt(p, n, "blksize", x->blksize);
	if (x->opts & OPT_TSIZE)
		n = put_opt(p, n, "tsize", x->xlen);
	if (x->opts & OPT_TIMEOUT)
		n = put_opt(p, n, "timeout", x->tq);
	if (x->opts & OPT_WINDOWSIZE)
		n = put_opt(p, n, "windowsize", x->window);
	if (again)
		e->st.retransmits++;
	e->ops.send(e->ctx, &x->peer, xfer_port(e, i), p, n, NULL, 0);
}

/* ---- netascii ---- */

static uint64_t
nva_length(const uint8_t *d, size_t len)
{
	uint64_t n = len;

	for (size_t k = 0; k < len; k++)
		n += d[k] == '\n' || d[k] == '\r';
	return n;
}

/* Converts the next block (LF -> CR LF, CR -> CR NUL) into out. */
static size_t
nva_fill(const uint8_t *src, size_t len, struct nva_cursor *c, uint8_t *out, size_t cap)
{
	size_t n = 0;
	uint8_t second;

	if (c->pend >= 0) {
		out[n++] = (uint8_t)c->pend;
		c->pend = -1;
	}
	while (n < cap && c->off < len) {
		uint8_t b = src[c->off++];

		if (b == '\n')
			second = '\n';
		else if (b == '\r')
			second = '\0';
		else {
			out[n++] = b;
			continue;
		}
		out[n++] = '\r';
		if (n < cap)
			out[n++] = second;
		else
			c->pend = second;
	}
	return n;
}

/* ---- transfers ---- */

static void
count_data(struct tftp_engine *e, struct tftp_xfer *x, uint64_t k, size_t n)
{
	e->st.data_pkts++;
	e->st.bytes += n;
	if (k <= x->hiwat)
		e->st.retransmits++;
	else
		x->hiwat = k;
}

/* Sends blocks acked+1 .. acked+window (or up to the last block). */
static void
send_window(struct tftp_engine *e, uint32_t i)
{
	struct tftp_xfer *x = &e->xs[i];
	uint64_t last = x->acked + x->window;
	struct nva_cursor c = x->base;
	uint16_t sport = xfer_port(e, i);
	uint8_t *p = e->scratch;

	if (last > x->nblocks)
		last = x->nblocks;
	put16(p, TFTP_DATA);
	for (uint64_t k = x->acked + 1; k <= last; k++) {
		size_t n;

		put16(p + 2, (uint16_t)k);
		if (x->netascii) {
			n = nva_fill(x->file.data, x->file.len, &c, p + 4, x->blksize);
			e->ops.send(e->ctx, &x->peer, sport, p, 4 + n, NULL, 0);
		} else {
			uint64_t off = (k - 1) * x->blksize;

			n = x->xlen - off < x->blksize ? (size_t)(x->xlen - off) : x->blksize;
			e->ops.send(e->ctx, &x->peer, sport, p, 4,
				n != 0 ? x->file.data + off : NULL, n);
		}
		count_data(e, x, k, n);
	}
	x->sent = last;
}

/*
 * Free slots are taken from the head and returned to the tail, so a port
 * is reused as late as possible: a late duplicate from a finished transfer
 * (clients that keep their source port across fetches) then meets a free
 * slot and gets ERROR 5 rather than landing in a new transfer.
 */
static void
xfer_free(struct tftp_engine *e, uint32_t i)
{
	e->xs[i].tnext = NIL;
	if (e->free_tail != NIL)
		e->xs[e->free_tail].tnext = i;
	else
		e->free_head = i;
	e->free_tail = i;
}

/*
 * The slot of a new transfer for peer: the head of the free FIFO, or with
 * ops.port_local the first of the next TFTP_PORT_SCAN free slots whose
 * port the hook accepts (*prev: its predecessor in the FIFO). With RSS
 * over N queues about one port in N is accepted, so the first match comes
 * after ~N calls and 64 miss it only with probability (1 - 1/N)^64 (~1e-19
 * for 2 workers, 1.6 % for 16): the bound keeps an RRQ's cost fixed
 * instead of walking a free list of thousands, and a port overtakes at
 * most 63 older free ones, so a freed port still waits about as long as
 * before to be reused. The slots passed over stay where they were.
 */
static uint32_t
free_pick(struct tftp_engine *e, const struct tftp_peer *peer, uint32_t *prev)
{
	uint32_t i = e->free_head, p = NIL;

	*prev = NIL;
	if (e->ops.port_local == NULL)
		return i;
	for (unsigned n = 0; i != NIL && n < TFTP_PORT_SCAN; n++) {
		if (e->ops.port_local(e->ctx, peer, xfer_port(e, i))) {
			*prev = p;
			return i;
		}
		p = i;
		i = e->xs[i].tnext;
	}
	e->st.port_unsteered++;
	return e->free_head;
}

/* Unlinks free slot i, whose predecessor in the FIFO is prev (NIL: head). */
static void
free_unlink(struct tftp_engine *e, uint32_t i, uint32_t prev)
{
	if (prev == NIL)
		e->free_head = e->xs[i].tnext;
	else
		e->xs[prev].tnext = e->xs[i].tnext;
	if (e->free_tail == i)
		e->free_tail = prev;
}

static void
xfer_end(struct tftp_engine *e, uint32_t i, bool ok)
{
	struct tftp_xfer *x = &e->xs[i];

	timer_unlink(e, i);
	src_count_sub(e->src, x->peer.ip, 0);
	if (ok)
		e->st.completed++;
	else
		e->st.failed++;
	if (e->ops.done != NULL)
		e->ops.done(e->ctx, xfer_name(e, i), &x->peer, x->file.generation, ok);
	if (e->ops.release != NULL)
		e->ops.release(e->ctx, x->file.ref);
	x->state = XS_FREE;
	xfer_free(e, i);
	e->active--;
}

/* A transfer past its life ends, whatever pace its client keeps. */
static bool
xfer_expired(struct tftp_engine *e, uint32_t i, uint64_t now)
{
	struct tftp_xfer *x = &e->xs[i];

	if (now - x->born < (uint64_t)e->lim.max_life_s * NS_PER_S)
		return false;
	e->st.err_expired++;
	send_error(e, &x->peer, xfer_port(e, i), TFTP_ERR_UNDEFINED,
		"transfer time limit reached");
	xfer_end(e, i, false);
	return true;
}

static void
xfer_timeout(struct tftp_engine *e, uint32_t i, uint64_t now)
{
	struct tftp_xfer *x = &e->xs[i];

	if (xfer_expired(e, i, now))
		return;
	if (x->tries >= e->lim.retries) {
		xfer_end(e, i, false);
		return;
	}
	x->tries++;
	if (x->state == XS_OACK)
		send_oack(e, i, true);
	else
		send_window(e, i);
	timer_rearm(e, i, now);
}

/*
 * Classifies ACK b against the outstanding blocks acked+1 .. sent. The
 * wire number is 16 bits, so the 65535 values other than "acked" are split:
 * the outstanding ones are new, the upper half of the rest is taken as an
 * old block (a late duplicate), the lower half as a block never sent.
 */
static void
xfer_ack(struct tftp_engine *e, uint32_t i, uint16_t b, uint64_t now)
{
	struct tftp_xfer *x = &e->xs[i];
	uint64_t out = x->sent - x->acked;
	uint16_t d = (uint16_t)(b - (uint16_t)x->acked);

	if (x->state == XS_OACK) {
		if (b != 0) {
			e->st.malformed++;
			return;
		}
		x->state = XS_DATA;
		x->tries = 0;
		send_window(e, i);
		timer_rearm(e, i, now);
		return;
	}
	if (d == 0 || d > out) {
		uint64_t back = 65536u - d;

		if (d == 0 || (d - out > (65535 - out) / 2 && back <= x->acked))
			e->st.dup_acks++;
		else
			e->st.malformed++;
		return;
	}
	if (x->netascii) {
		for (uint16_t k = 0; k < d; k++)
			nva_fill(x->file.data, x->file.len, &x->base, e->scratch + 4, x->blksize);
	}
	x->acked += d;
	x->tries = 0;
	if (x->acked == x->nblocks) {
		xfer_end(e, i, true);
		return;
	}
	send_window(e, i);
	timer_rearm(e, i, now);
}

/* A datagram for one of our transfer ports. */
static void
xfer_input(struct tftp_engine *e, uint64_t now, const struct tftp_peer *from,
	uint16_t port, const uint8_t *p, size_t len)
{
	uint32_t i = (uint32_t)(port - e->lim.port_base);
	struct tftp_xfer *x = &e->xs[i];
	uint16_t op = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;

	if (x->state == XS_FREE || x->peer.ip != from->ip || x->peer.port != from->port) {
		/* RFC 1350: another TID gets ERROR 5, the transfer goes on;
		 * an ERROR is never answered (no error loops). */
		if (op == TFTP_ERROR)
			e->st.malformed++;
		else
			send_error(e, from, port, TFTP_ERR_UNKNOWN_TID, "unknown transfer ID");
		return;
	}
	if (op == TFTP_ERROR && len >= 4) {
		/* includes ERROR 8 in answer to our OACK: end quietly */
		xfer_end(e, i, false);
		return;
	}
	if (op != TFTP_ACK || len < 4) {
		e->st.malformed++;
		return;
	}
	if (xfer_expired(e, i, now))
		return;
	xfer_ack(e, i, (uint16_t)(p[2] << 8 | p[3]), now);
}

/* ---- requests ---- */

/* The NUL-terminated string at *pos, or NULL if it runs off the end. */
static const char *
next_str(const uint8_t *p, size_t len, size_t *pos)
{
	const uint8_t *nul;
	const char *s = (const char *)p + *pos;

	if (*pos >= len)
		return NULL;
	nul = memchr(p + *pos, 0, len - *pos);
	if (nul == NULL)
		return NULL;
	*pos = (size_t)(nul - p) + 1;
	return s;
}

/* Decimal value; false if empty or not all digits. Saturates. */
static bool
parse_u32(const char *s, uint32_t *v)
{
	uint64_t n = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			n = UINT32_MAX;
	}
	*v = (uint32_t)n;
	return true;
}

/*
 * Options (RFC 2347: names case-insensitive, unknown ones ignored). A
 * blksize below 8 or not a number refuses the request (RFC 2348); a
 * timeout outside 1..255, a windowsize of 0 or a tsize that is not a number
 * is ignored. Returns an error message or NULL.
 */
static const char *
parse_option(struct tftp_req *r, const char *name, const char *val)
{
	uint32_t v;
	bool num = parse_u32(val, &v);

	if (strcasecmp(name, "blksize") == 0) {
		if (!num)
			return "option negotiation refused: blksize is not a number";
		if (v < TFTP_MIN_BLKSIZE)
			return "option negotiation refused: blksize below 8";
		r->opts |= OPT_BLKSIZE;
		r->blksize = v;
	} else if (strcasecmp(name, "tsize") == 0) {
		if (num)
			r->opts |= OPT_TSIZE;
	} else if (strcasecmp(name, "timeout") == 0) {
		if (num && v >= 1 && v <= 255) {
			r->opts |= OPT_TIMEOUT;
			r->timeout = v;
		}
	} else if (strcasecmp(name, "windowsize") == 0) {
		if (num && v >= 1) {
			r->opts |= OPT_WINDOWSIZE;
			r->windowsize = v;
		}
	}
	return NULL;
}

/*
 * RRQ body: filename NUL mode NUL { option NUL value NUL }. Returns the
 * ERROR code to answer (with *why set) or -1 when the request is good.
 */
static int
parse_rrq(const uint8_t *p, size_t len, struct tftp_req *r, const char **why)
{
	size_t pos = 2;
	const char *mode, *name, *val;

	memset(r, 0, sizeof(*r));
	if ((r->name = next_str(p, len, &pos)) == NULL) {
		*why = "malformed request: file name not NUL-terminated";
		return TFTP_ERR_ILLEGAL_OP;
	}
	if (r->name[0] == '\0') {
		*why = "malformed request: empty file name";
		return TFTP_ERR_ILLEGAL_OP;
	}
	if (strlen(r->name) > TFTP_NAME_MAX) {
		*why = "malformed request: file name longer than 255 bytes";
		return TFTP_ERR_ILLEGAL_OP;
	}
	if ((mode = next_str(p, len, &pos)) == NULL) {
		*why = "malformed request: mode not NUL-terminated";
		return TFTP_ERR_ILLEGAL_OP;
	}
	if (strcasecmp(mode, "netascii") == 0) {
		r->netascii = true;
	} else if (strcasecmp(mode, "octet") != 0) {
		*why = "malformed request: unknown transfer mode";
		return TFTP_ERR_ILLEGAL_OP;
	}
	while (pos < len) {
		if ((name = next_str(p, len, &pos)) == NULL) {
			*why = "malformed request: option name not NUL-terminated";
			return TFTP_ERR_ILLEGAL_OP;
		}
		if ((val = next_str(p, len, &pos)) == NULL) {
			*why = "malformed request: option value missing";
			return TFTP_ERR_ILLEGAL_OP;
		}
		if ((*why = parse_option(r, name, val)) != NULL)
			return TFTP_ERR_OPTIONS;
	}
	return -1;
}

/* Refuses absolute paths and any ".." component ('/' or '\' separated). */
static const char *
check_path(const char *name)
{
	if (name[0] == '/' || name[0] == '\\')
		return "access violation: absolute path";
	for (const char *s = name; *s != '\0'; ) {
		size_t n = strcspn(s, "/\\");

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return "access violation: '..' in path";
		s += n;
		if (*s != '\0')
			s++;
	}
	return NULL;
}

static void
xfer_start(struct tftp_engine *e, uint64_t now, const struct tftp_peer *from,
	const struct tftp_req *r, const struct tftp_file *f)
{
	uint32_t prev, i = free_pick(e, from, &prev);
	struct tftp_xfer *x = &e->xs[i];
	uint32_t cap = e->lim.max_blksize;

	free_unlink(e, i, prev);
	memset(x, 0, sizeof(*x));
	x->tnext = x->tprev = NIL;
	x->peer = *from;
	x->born = now;
	x->file = *f;
	x->netascii = r->netascii;
	x->opts = r->opts;
	x->blksize = TFTP_DEFAULT_BLKSIZE;
	if (r->opts & OPT_BLKSIZE)
		x->blksize = (uint16_t)(r->blksize < cap ? r->blksize : cap);
	x->window = 1;
	if (r->opts & OPT_WINDOWSIZE)
		x->window = (uint16_t)(r->windowsize < e->lim.max_windowsize ?
			r->windowsize : e->lim.max_windowsize);
	x->tq = 0;
	if (r->opts & OPT_TIMEOUT) {
		if (r->timeout <= e->lim.max_timeout_s) {
			x->tq = (uint8_t)r->timeout;
		} else {
			/* RFC 2349 allows no other value: leave it out of the OACK */
			x->opts &= (uint8_t)~OPT_TIMEOUT;
			e->st.timeout_ignored++;
		}
	}
	x->base.pend = -1;
	x->xlen = r->netascii ? nva_length(f->data, f->len) : f->len;
	x->nblocks = x->xlen / x->blksize + 1;
	strcpy(xfer_name(e, i), r->name);
	src_count_add(e->src, from->ip, 0);	/* room: sources <= slots */
	e->active++;
	e->st.started++;
	if (x->opts != 0) {
		x->state = XS_OACK;
		send_oack(e, i, false);
	} else {
		x->state = XS_DATA;
		send_window(e, i);
	}
	timer_append(e, i, now);
}

static void
request_input(struct tftp_engine *e, uint64_t now, const struct tftp_peer *from,
	uint16_t port, const uint8_t *p, size_t len)
{
	uint16_t op = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;
	struct tftp_req r;
	struct tftp_file f;
	const char *why;
	char mapped[16];
	int code;

	if (len < 2) {
		send_error(e, from, port, TFTP_ERR_ILLEGAL_OP, "malformed request: too short");
		return;
	}
	switch (op) {
	case TFTP_RRQ:
		e->st.rrq++;
		break;
	case TFTP_WRQ:
		send_error(e, from, port, TFTP_ERR_ACCESS,
			"access violation: write requests are not accepted");
		return;
	case TFTP_ERROR:
		e->st.malformed++;
		return;
	default:
		send_error(e, from, port, TFTP_ERR_ILLEGAL_OP,
			"illegal TFTP operation: only RRQ is accepted on port 69");
		return;
	}
	if (len > TFTP_MAX_REQUEST) {
		send_error(e, from, port, TFTP_ERR_ILLEGAL_OP,
			"malformed request: longer than 512 bytes");
		return;
	}
	if ((code = parse_rrq(p, len, &r, &why)) >= 0) {
		send_error(e, from, port, (uint16_t)code, why);
		return;
	}
	if ((why = check_path(r.name)) != NULL) {
		send_error(e, from, port, TFTP_ERR_ACCESS, why);
		return;
	}
	if (e->lim.max_per_source != 0 &&
		src_count_get(e->src, from->ip, 0) >= e->lim.max_per_source) {
		/* code 0: RFC 1350 has none for it; the text says what to do */
		e->st.err_per_source++;
		send_error(e, from, port, TFTP_ERR_UNDEFINED,
			"too many transfers from your address, try again later");
		return;
	}
	if (e->free_head == NIL) {
		e->st.err_table_full++;
		send_error(e, from, port, TFTP_ERR_UNDEFINED, "server busy, try again later");
		return;
	}
	memset(&f, 0, sizeof(f));
	if (tftp_map_device_name(r.name, mapped, sizeof(mapped), NULL))
		code = e->ops.lookup(e->ctx, mapped, &f);
	else
		code = e->ops.lookup(e->ctx, r.name, &f);
	if (code == TFTP_ERR_ACCESS) {
		send_error(e, from, port, TFTP_ERR_ACCESS, "access violation");
		return;
	}
	if (code != 0) {
		send_error(e, from, port, TFTP_ERR_NOT_FOUND, "file not found");
		return;
	}
	xfer_start(e, now, from, &r, &f);
}

/* ---- public API ---- */

void
tftp_input(struct tftp_engine *e, uint64_t now_ns, const struct tftp_peer *from,
	uint16_t dst_port, const uint8_t *payload, size_t len)
{
	if (from->port == 0) {
		e->st.malformed++;	/* nowhere to answer */
		return;
	}
	if (dst_port == TFTP_PORT)
		request_input(e, now_ns, from, dst_port, payload, len);
	else if (tftp_owns_port(e, dst_port))
		xfer_input(e, now_ns, from, dst_port, payload, len);
	else
		e->st.malformed++;
}

void
tftp_tick(struct tftp_engine *e, uint64_t now_ns)
{
	uint64_t next = UINT64_MAX;

	if (now_ns < e->next_due)
		return;
	for (unsigned w = 0; w < TQ_WORDS; w++) {
		uint64_t bits = e->tq_busy[w];

		while (bits != 0) {
			unsigned q = w * 64 + (unsigned)__builtin_ctzll(bits);
			uint32_t i;

			bits &= bits - 1;
			/* a re-armed transfer goes to the tail, past now */
			while ((i = e->tq[q].head) != NIL && e->xs[i].deadline <= now_ns)
				xfer_timeout(e, i, now_ns);
			if (i != NIL && e->xs[i].deadline < next)
				next = e->xs[i].deadline;
		}
	}
	e->next_due = next;
}

unsigned
tftp_active(const struct tftp_engine *e)
{
	return e->active;
}

const struct tftp_stats *
tftp_stats(const struct tftp_engine *e)
{
	return &e->st;
}

bool
tftp_owns_port(const struct tftp_engine *e, uint16_t port)
{
	return port >= e->lim.port_base &&
		(uint32_t)(port - e->lim.port_base) < e->lim.max_transfers;
}

static bool
limits_fix(const struct tftp_limits *in, struct tftp_limits *l)
{
	*l = *in;
	if (l->max_transfers == 0 || l->port_base == 0 ||
		(uint32_t)l->port_base + l->max_transfers > 65536u ||
		(l->port_base <= TFTP_PORT &&
		 (uint32_t)l->port_base + l->max_transfers > TFTP_PORT))
		return false;
	if (l->max_blksize == 0)
		l->max_blksize = TFTP_DEFAULT_BLKSIZE;
	if (l->max_blksize < TFTP_MIN_BLKSIZE)
		l->max_blksize = TFTP_MIN_BLKSIZE;
	if (l->max_blksize > TFTP_MAX_BLKSIZE)
		l->max_blksize = TFTP_MAX_BLKSIZE;
	if (l->max_windowsize == 0)
		l->max_windowsize = 1;
	if (l->timeout_ms == 0)
		l->timeout_ms = TFTP_DEFAULT_TIMEOUT_MS;
	if (l->retries == 0)
		l->retries = TFTP_DEFAULT_RETRIES;
	if (l->max_timeout_s == 0)
		l->max_timeout_s = TFTP_DEFAULT_MAX_TIMEOUT_S;
	if (l->max_life_s == 0)
		l->max_life_s = TFTP_DEFAULT_MAX_LIFE_S;
	return true;
}

struct tftp_engine *
tftp_engine_create(const struct tftp_limits *lim, const struct tftp_ops *ops, void *ctx)
{
	struct tftp_engine *e;
	struct tftp_limits l;

	if (lim == NULL || ops == NULL || ops->lookup == NULL || ops->send == NULL ||
		!limits_fix(lim, &l)) {
		errno = EINVAL;
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->lim = l;
	e->ops = *ops;
	e->ctx = ctx;
	e->xs = calloc(l.max_transfers, sizeof(*e->xs));
	e->names = calloc(l.max_transfers, TFTP_NAME_MAX + 1);
	/* DATA (4 + blksize) is the largest; ERROR and OACK stay < 128. A
	 * request without blksize gets 512 even when max_blksize is smaller. */
	e->scratch = malloc(4 + (size_t)(l.max_blksize > TFTP_DEFAULT_BLKSIZE ? l.max_blksize :
		TFTP_DEFAULT_BLKSIZE) + 128);
	e->src = src_count_new(l.max_transfers, l.seed);
	if (e->xs == NULL || e->names == NULL || e->scratch == NULL || e->src == NULL) {
		tftp_engine_free(e);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < l.max_transfers; i++) {
		e->xs[i].tnext = i + 1 < l.max_transfers ? i + 1 : NIL;
		e->xs[i].tprev = NIL;
	}
	e->free_head = 0;
	e->free_tail = l.max_transfers - 1;
	e->next_due = UINT64_MAX;
	for (unsigned q = 0; q < TQ_COUNT; q++) {
		e->tq[q].head = e->tq[q].tail = NIL;
		e->tq[q].period = q == 0 ? (uint64_t)l.timeout_ms * NS_PER_MS : q * NS_PER_S;
	}
	return e;
}

void
tftp_engine_free(struct tftp_engine *e)
{
	if (e == NULL)
		return;
	if (e->xs != NULL) {
		for (uint32_t i = 0; i < e->lim.max_transfers; i++)
			if (e->xs[i].state != XS_FREE)
				xfer_end(e, i, false);
	}
	free(e->xs);
	free(e->names);
	free(e->scratch);
	src_count_free(e->src);
	free(e);
}

static int
hex_upper(int c)
{
	if (c >= '0' && c <= '9')
		return c;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 'A';
	if (c >= 'A' && c <= 'F')
		return c;
	return -1;
}

/*
 * ITLSEP<MAC>.tlv / CTLSEP<MAC>.tlv -> ITLFile.tlv / CTLFile.tlv. Prefix,
 * MAC and suffix are matched case-insensitively (phones send upper case,
 * but TFTP names of CUCM are not case-sensitive).
 */
bool
tftp_map_device_name(const char *name, char *out, size_t outsz, char mac[13])
{
	char m[13];
	const char *file;

	if (strlen(name) != 6 + 12 + 4 || strncasecmp(name + 3, "SEP", 3) != 0 ||
		strcasecmp(name + 18, ".tlv") != 0)
		return false;
	if (strncasecmp(name, "ITL", 3) == 0)
		file = "ITLFile.tlv";
	else if (strncasecmp(name, "CTL", 3) == 0)
		file = "CTLFile.tlv";
	else
		return false;
	for (int k = 0; k < 12; k++) {
		int c = hex_upper((unsigned char)name[6 + k]);

		if (c < 0)
			return false;
		m[k] = (char)c;
	}
	m[12] = '\0';
	if (strlen(file) + 1 > outsz)
		return false;
	memcpy(out, file, strlen(file) + 1);
	if (mac != NULL)
		memcpy(mac, m, sizeof(m));
	return true;
}
