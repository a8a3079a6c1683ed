/*
 * The TCP server engine (contract and scope in tcp.h), driven by tcp_input
 * and tcp_tick. Everything is allocated in tcp_engine_create; the hot
 * paths neither allocate, log nor make system calls.
 *
 * Sequence numbers: the send ring holds the bytes [snd_una, snd_end); byte
 * s sits at (s - iss - 1) mod size, so the ring needs no head or tail of
 * its own. Our FIN, once tcp_close was called and the ring drained, takes
 * the sequence number snd_end. snd_max is the highest sequence sent; after
 * an RTO snd_nxt goes back to snd_una (go-back-N) and climbs again.
 *
 * The receive side keeps no buffer for in-order bytes: they go to recv()
 * straight from the segment. Only bytes ahead of rcv_nxt are copied into a
 * ring of at least rcv_wnd bytes, at (s - irs - 1) mod size; the ranges
 * they cover are a short sorted array, so a gap-filling segment is followed
 * by the queued bytes in one or two recv() calls.
 *
 * Why SipHash and not OpenSSL's HMAC for the cookies: the engine stays free
 * of OpenSSL (and of DPDK) so its unit test and a fuzzer link nothing, and
 * SipHash-2-4 is a PRF built for short inputs: ~22 bytes cost a few dozen
 * nanoseconds, against an EVP_MAC context (heap, locks) per SYN.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src_count.h"
#include "tcp.h"

#define NIL UINT32_MAX
#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull
#define TICK_SHIFT 20				/* wheel slot: 2^20 ns ~ 1.05 ms */
#define TICK_US ((1u << TICK_SHIFT) / 1000u)	/* RFC 6298 clock granularity G */
#define WHEEL_MASK (TCP_WHEEL_SLOTS - 1)
#define WHEEL_LATER TCP_WHEEL_SLOTS		/* parking list while a slot fires */
#define COOKIE_MAC_BITS 23
#define WS_NONE 15				/* cookie: the SYN had no window scale */
#define MAX_SHIFT 14				/* RFC 7323 ceiling of window scale */
#define MAX_BACKOFF 16

enum conn_state {
	ST_FREE = 0,
	ST_ESTABLISHED,
	ST_CLOSE_WAIT,
	ST_FIN_WAIT_1,
	ST_FIN_WAIT_2,
	ST_CLOSING,
	ST_LAST_ACK,
	ST_TIME_WAIT,
};

enum {
	CF_FIN_QUEUED = 1 << 0,		/* tcp_close: our FIN follows the ring */
	CF_ACK_NOW = 1 << 1,		/* an ACK is owed to the peer */
	CF_PEER_FIN = 1 << 2,		/* rcv_nxt counts the peer's FIN */
	CF_OOO_FIN = 1 << 3,		/* a FIN beyond a gap, at ooo_fin */
	CF_RTT = 1 << 4,		/* timing the segment ending at rtt_seq */
	CF_WANT_WRITABLE = 1 << 5,	/* tcp_send was short */
	CF_CLOSE_REQ = 1 << 6,		/* tcp_close from this connection's callback */
	CF_ABORT_REQ = 1 << 7,		/* tcp_abort from this connection's callback */
	CF_PERSIST = 1 << 8,		/* rto_at is the zero-window probe timer */
	CF_CLOSED_CB = 1 << 9,		/* closed() called (TIME_WAIT) */
	CF_SRC = 1 << 10,		/* counted in the per-source table */
	CF_READY = 1 << 11,		/* tcp_conn_ready: no longer unready */
};

/* The counts of struct src_count kept per peer address. */
enum { SRC_OPEN, SRC_UNREADY };

/* The peer's MSS is rounded down to one of these (3 bits of the cookie);
 * 64 is a floor, as Linux's tcp_min_snd_mss: tinier segments cost us. */
static const uint16_t cookie_mss[8] = { 64, 536, 1024, 1220, 1360, 1400, 1440, 1460 };

struct seq_range {
	uint32_t start;
	uint32_t end;
};

struct tcp_conn {
	struct tcp_tuple t;
	uint8_t state;
	uint8_t snd_ws;		/* the peer's window shift */
	uint8_t retries;	/* RTO expiries since the last progress */
	uint8_t pbackoff;	/* zero-window probes since the window was seen open */
	uint8_t dupacks;
	uint8_t nooo;
	uint16_t flags;
	uint16_t mss;		/* largest segment we send */
	uint32_t hnext;		/* hash chain */
	uint32_t tnext;		/* wheel list; the free list reuses it */
	uint32_t tprev;
	uint32_t wslot;		/* wheel list holding us, NIL if none */
	uint32_t twnext;	/* TIME_WAIT FIFO */
	uint32_t twprev;
	uint64_t wtick;		/* the wheel tick we are filed under */
	uint64_t rto_at;	/* retransmission or persist deadline, 0 = none */
	uint64_t life_at;	/* idle, closing or TIME_WAIT deadline, 0 = none */
	uint64_t rtt_start;
	uint64_t last_challenge;
	uint64_t last_oow;	/* last ACK to an unacceptable segment */
	uint32_t iss;
	uint32_t irs;
	uint32_t snd_una;
	uint32_t snd_nxt;
	uint32_t snd_max;
	uint32_t snd_end;
	uint32_t snd_wnd;
	uint32_t snd_wl1;
	uint32_t snd_wl2;
	uint32_t max_snd_wnd;
	uint32_t cwnd;
	uint32_t ssthresh;
	uint32_t rcv_nxt;
	uint32_t ooo_fin;
	uint32_t rtt_seq;
	uint32_t srtt_us;	/* 0 until the first sample */
	uint32_t rttvar_us;
	uint32_t rto_us;
	struct seq_range ooo[TCP_MAX_OOO_RANGES];
};

/*
 * A connection that ended, remembered for the life of its cookie (see
 * gone_remember): the 4-tuple and both ISNs name one incarnation.
 */
struct tcp_gone {
	struct tcp_tuple t;
	uint32_t irs;
	uint32_t iss;
	uint64_t until;		/* 0: empty */
};

#define GONE_WAYS 4		/* entries per set of the ended-connection table */
#define GONE_MAX (1u << 18)	/* ceiling of its entries */

struct tcp_engine {
	struct tcp_limits lim;
	struct tcp_ops ops;
	void *ctx;
	uint8_t key[16];	/* cookie MAC */
	uint8_t hkey[16];	/* table hash, derived from key */
	struct tcp_conn *cs;
	uint8_t *sbuf;		/* max_conns send rings */
	uint8_t *rbuf;		/* max_conns reorder rings */
	uint8_t *scratch;	/* a payload that wraps around its ring */
	uint32_t smask;		/* send ring size - 1 */
	uint32_t rmask;		/* reorder ring size - 1 */
	uint32_t *buckets;
	uint32_t bmask;
	struct tcp_gone *gone;	/* ended connections, sets of GONE_WAYS */
	uint32_t gmask;		/* sets - 1 */
	uint32_t free_head;
	uint32_t free_tail;
	uint32_t tw_head;	/* oldest TIME_WAIT */
	uint32_t tw_tail;
	uint32_t active;
	struct src_count *src;	/* open and unready connections per peer address */
	uint32_t cb_conn;	/* connection whose callback runs, NIL */
	uint32_t armed;		/* connections on the wheel */
	uint64_t now;
	uint64_t wheel_cur;	/* first tick not yet processed */
	uint32_t wheel[TCP_WHEEL_SLOTS + 1];
	uint8_t hdr[TCP_HDR_MAX];
	struct tcp_stats st;
};

/* A parsed segment. */
struct tcp_seg {
	struct tcp_tuple t;
	uint32_t seq;
	uint32_t ack;
	uint16_t wnd;
	uint8_t flags;
	int8_t ws;		/* window scale option, -1 if absent */
	int32_t mss;		/* MSS option, -1 if absent */
	const uint8_t *data;
	uint32_t len;
};

/* ---- small helpers ---- */

static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }

/* lo <= s < hi in sequence space */
static inline bool
seq_in(uint32_t s, uint32_t lo, uint32_t hi)
{
	return s - lo < hi - lo;
}

static inline uint32_t
min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline uint32_t
max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static inline uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* Bytes in the send ring (the FIN is not a byte). */
static inline uint32_t
snd_queued(const struct tcp_conn *c)
{
	return seq_lt(c->snd_una, c->snd_end) ? c->snd_end - c->snd_una : 0;
}

static inline bool
conn_visible(const struct tcp_conn *c)
{
	return c->state != ST_FREE && !(c->flags & CF_CLOSED_CB);
}

static inline bool
conn_can_send(const struct tcp_conn *c)
{
	return (c->state == ST_ESTABLISHED || c->state == ST_CLOSE_WAIT) &&
		!(c->flags & (CF_FIN_QUEUED | CF_CLOSE_REQ | CF_ABORT_REQ));
}

/* ---- SipHash-2-4 ---- */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void
sip_round(uint64_t v[4])
{
	v[0] += v[1]; v[1] = ROTL64(v[1], 13); v[1] ^= v[0]; v[0] = ROTL64(v[0], 32);
	v[2] += v[3]; v[3] = ROTL64(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = ROTL64(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = ROTL64(v[1], 17); v[1] ^= v[2]; v[2] = ROTL64(v[2], 32);
}

static inline uint64_t
get64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int k = 7; k >= 0; k--)
		v = v << 8 | p[k];
	return v;
}

uint64_t
tcp_siphash24(const uint8_t key[16], const void *msg, size_t len)
{
	const uint8_t *p = msg;
	uint64_t k0 = get64le(key), k1 = get64le(key + 8), m, last;
	uint64_t v[4] = {
		k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
		k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull,
	};
	size_t n = len & ~(size_t)7;

	for (size_t i = 0; i < n; i += 8) {
		m = get64le(p + i);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	last = (uint64_t)(len & 0xff) << 56;
	for (size_t i = 0; i < (len & 7); i++)
		last |= (uint64_t)p[n + i] << (8 * i);
	v[3] ^= last;
	sip_round(v);
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- checksum ---- */

static uint64_t
csum_add(uint64_t sum, const uint8_t *p, size_t n, bool odd)
{
	for (size_t k = 0; k < n; k++)
		sum += ((k & 1) == odd) ? (uint64_t)p[k] << 8 : p[k];
	return sum;
}

uint16_t
tcp_checksum(uint32_t src_ip, uint32_t dst_ip, const uint8_t *hdr, size_t hdrlen,
	const uint8_t *payload, size_t len)
{
	uint64_t sum = (src_ip >> 16) + (src_ip & 0xffff) + (dst_ip >> 16) + (dst_ip & 0xffff) +
		6 + ((hdrlen + len) & 0xffff);

	sum = csum_add(sum, hdr, hdrlen, false);
	if (payload != NULL)
		sum = csum_add(sum, payload, len, (hdrlen & 1) != 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* ---- connection table ---- */

static uint64_t
tuple_hash(const struct tcp_engine *e, const struct tcp_tuple *t)
{
	uint8_t b[12];

	put32(b, t->peer_ip);
	put32(b + 4, t->local_ip);
	put16(b + 8, t->peer_port);
	put16(b + 10, t->local_port);
	return tcp_siphash24(e->hkey, b, sizeof(b));
}

static uint32_t
tuple_bucket(const struct tcp_engine *e, const struct tcp_tuple *t)
{
	return (uint32_t)tuple_hash(e, t) & e->bmask;
}

static inline bool
tuple_eq(const struct tcp_tuple *a, const struct tcp_tuple *b)
{
	return a->peer_ip == b->peer_ip && a->local_ip == b->local_ip &&
		a->peer_port == b->peer_port && a->local_port == b->local_port;
}

static uint32_t
conn_lookup(const struct tcp_engine *e, const struct tcp_tuple *t)
{
	uint32_t i = e->buckets[tuple_bucket(e, t)];

	while (i != NIL && !tuple_eq(&e->cs[i].t, t))
		i = e->cs[i].hnext;
	return i;
}

static void
hash_remove(struct tcp_engine *e, uint32_t i)
{
	uint32_t *pp = &e->buckets[tuple_bucket(e, &e->cs[i].t)];

	while (*pp != i)
		pp = &e->cs[*pp].hnext;
	*pp = e->cs[i].hnext;
}

/* ---- timer wheel ---- */

static void
timer_unlink(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	if (c->wslot == NIL)
		return;
	if (c->tprev != NIL)
		e->cs[c->tprev].tnext = c->tnext;
	else
		e->wheel[c->wslot] = c->tnext;
	if (c->tnext != NIL)
		e->cs[c->tnext].tprev = c->tprev;
	c->wslot = c->tnext = c->tprev = NIL;
	e->armed--;
}

static void
timer_link(struct tcp_engine *e, uint32_t i, uint32_t slot)
{
	struct tcp_conn *c = &e->cs[i];

	c->wslot = slot;
	c->tprev = NIL;
	c->tnext = e->wheel[slot];
	if (c->tnext != NIL)
		e->cs[c->tnext].tprev = i;
	e->wheel[slot] = i;
	e->armed++;
}

/* The tick at which a deadline fires: rounded up, never early. */
static inline uint64_t
deadline_tick(const struct tcp_engine *e, uint64_t at)
{
	uint64_t t = (at + (1ull << TICK_SHIFT) - 1) >> TICK_SHIFT;

	return t < e->wheel_cur ? e->wheel_cur : t;
}

static inline uint64_t
conn_deadline(const struct tcp_conn *c)
{
	if (c->rto_at == 0)
		return c->life_at;
	if (c->life_at == 0)
		return c->rto_at;
	return c->rto_at < c->life_at ? c->rto_at : c->life_at;
}

/*
 * Files the connection under its earliest deadline. A deadline that moved
 * later (the idle timer on every bit of progress) leaves the entry where it
 * is: it fires early once and is filed again, instead of a relink per ACK.
 */
static void
timer_sync(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];
	uint64_t at = conn_deadline(c), tick;

	if (at == 0) {
		timer_unlink(e, i);
		return;
	}
	tick = deadline_tick(e, at);
	if (c->wslot != NIL && c->wtick <= tick)
		return;
	timer_unlink(e, i);
	c->wtick = tick;
	timer_link(e, i, (uint32_t)(tick & WHEEL_MASK));
}

/* ---- emitting segments ---- */

static void
emit(struct tcp_engine *e, const struct tcp_tuple *t, uint32_t seq, uint32_t ack, uint8_t flags,
	const uint8_t *opt, size_t optlen, const uint8_t *payload, size_t len)
{
	uint8_t *h = e->hdr;
	size_t hl = TCP_HDR_MIN + optlen;

	put16(h, t->local_port);
	put16(h + 2, t->peer_port);
	put32(h + 4, seq);
	put32(h + 8, (flags & TCPH_ACK) ? ack : 0);
	h[12] = (uint8_t)((hl / 4) << 4);
	h[13] = flags;
	put16(h + 14, (flags & TCPH_RST) ? 0 : e->lim.rcv_wnd);
	put16(h + 16, 0);
	put16(h + 18, 0);
	if (optlen != 0)
		memcpy(h + TCP_HDR_MIN, opt, optlen);
	if (e->lim.checksum)
		put16(h + 16, tcp_checksum(t->local_ip, t->peer_ip, h, hl, payload, len));
	e->st.segs_out++;
	e->st.bytes_out += len;
	if (flags & TCPH_RST)
		e->st.reset_sent++;
	e->ops.send(e->ctx, t, h, hl, payload, len);
}

static void
send_ack(struct tcp_engine *e, struct tcp_conn *c)
{
	emit(e, &c->t, c->snd_nxt, c->rcv_nxt, TCPH_ACK, NULL, 0, NULL, 0);
	c->flags &= ~CF_ACK_NOW;
}

/* RFC 5961: an ACK that tells a blind attacker nothing, rate limited. */
static void
send_challenge(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->last_challenge != 0 && e->now - c->last_challenge < TCP_CHALLENGE_GAP_MS * NS_PER_MS)
		return;
	c->last_challenge = e->now;
	e->st.challenge_acks++;
	send_ack(e, c);
}

/*
 * The ACK owed to an unacceptable segment (RFC 9293), at most one per
 * connection per TCP_CHALLENGE_GAP_MS: two stacks that each find the
 * other's segments unacceptable must not ping-pong ACKs at line rate.
 * A peer resending what we already have waits an RTO, far longer.
 */
static void
send_oow_ack(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->last_oow != 0 && e->now - c->last_oow < TCP_CHALLENGE_GAP_MS * NS_PER_MS)
		return;
	c->last_oow = e->now;
	send_ack(e, c);
}

/*
 * The answer to an ACK for no connection (RFC 9293 3.10.7.2, LISTEN):
 * <SEQ=SEG.ACK><CTL=RST>. Segments without ACK get none: the listener
 * drops them.
 */
static void
send_rst_for(struct tcp_engine *e, const struct tcp_seg *s)
{
	emit(e, &s->t, s->ack, 0, TCPH_RST, NULL, 0, NULL, 0);
}

/* A refused SYN, as a closed port answers it (RFC 9293 3.10.7.1). */
static void
send_rst_syn(struct tcp_engine *e, const struct tcp_seg *s)
{
	emit(e, &s->t, 0, s->seq + 1, TCPH_RST | TCPH_ACK, NULL, 0, NULL, 0);
}

/*
 * Sends the segment starting at seq: up to max bytes of the ring, and our
 * FIN if it reaches the end of a closed ring. Returns the sequence space
 * it used.
 */
static uint32_t
send_at(struct tcp_engine *e, struct tcp_conn *c, uint32_t seq, uint32_t max)
{
	uint32_t n = seq_lt(seq, c->snd_end) ? min_u32(c->snd_end - seq, max) : 0;
	uint8_t flags = TCPH_ACK;
	const uint8_t *p = NULL;

	if (n != 0) {
		uint32_t size = e->smask + 1, pos = (seq - c->iss - 1) & e->smask;
		const uint8_t *ring = e->sbuf + (size_t)(c - e->cs) * size;

		if (pos + n <= size) {
			p = ring + pos;
		} else {
			memcpy(e->scratch, ring + pos, size - pos);
			memcpy(e->scratch + (size - pos), ring, n - (size - pos));
			p = e->scratch;
		}
		if (seq + n == c->snd_end)
			flags |= TCPH_PSH;
	}
	if ((c->flags & CF_FIN_QUEUED) && seq + n == c->snd_end)
		flags |= TCPH_FIN;
	if (seq_lt(seq, c->snd_max))
		e->st.retransmits++;
	else if (n != 0 && !(c->flags & CF_RTT)) {
		c->flags |= CF_RTT;
		c->rtt_seq = seq + n;
		c->rtt_start = e->now;
	}
	emit(e, &c->t, seq, c->rcv_nxt, flags, NULL, 0, p, n);
	c->flags &= ~CF_ACK_NOW;
	return n + !!(flags & TCPH_FIN);
}

static uint64_t
backed_off(const struct tcp_engine *e, uint32_t base_us, unsigned shift)
{
	uint64_t us = (uint64_t)base_us << (shift < MAX_BACKOFF ? shift : MAX_BACKOFF);
	uint64_t max = (uint64_t)e->lim.rto_max_ms * 1000;

	return (us < max ? us : max) * NS_PER_US;
}

/*
 * Sends what the peer's window and the congestion window allow, then an
 * ACK if one is still owed, and sets the retransmission or persist timer.
 */
static void
conn_output(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t lim = c->snd_una + min_u32(c->snd_wnd, c->cwnd);

	while (seq_lt(c->snd_nxt, c->snd_end) && seq_lt(c->snd_nxt, lim))
		c->snd_nxt += send_at(e, c, c->snd_nxt, min_u32(c->mss, lim - c->snd_nxt));
	/* a FIN needs no window: it carries no byte the peer must store */
	if ((c->flags & CF_FIN_QUEUED) && c->snd_nxt == c->snd_end)
		c->snd_nxt += send_at(e, c, c->snd_nxt, 0);
	if (seq_gt(c->snd_nxt, c->snd_max))
		c->snd_max = c->snd_nxt;
	if (c->flags & CF_ACK_NOW)
		send_ack(e, c);

	if (c->snd_wnd == 0 && seq_lt(c->snd_una, c->snd_end)) {
		/* bytes to send or resend and the window is shut: probe it */
		if (!(c->flags & CF_PERSIST)) {
			c->flags |= CF_PERSIST;
			c->rto_at = e->now + backed_off(e, c->rto_us, c->pbackoff);
		}
	} else if (seq_lt(c->snd_una, c->snd_max)) {
		if (c->rto_at == 0 || (c->flags & CF_PERSIST)) {
			c->flags &= ~CF_PERSIST;
			c->rto_at = e->now + backed_off(e, c->rto_us, c->retries);
		}
	} else {
		c->flags &= ~CF_PERSIST;
		c->rto_at = 0;
	}
	timer_sync(e, i);
}

/* ---- per-source bounds ---- */

static void
src_enter(struct tcp_engine *e, struct tcp_conn *c)
{
	c->flags |= CF_SRC;
	/* cannot fail: there are never more sources than slots */
	src_count_add(e->src, c->t.peer_ip, SRC_OPEN);
	src_count_add(e->src, c->t.peer_ip, SRC_UNREADY);
}

/* The connection stops being open (freed, or TIME_WAIT). */
static void
src_leave(struct tcp_engine *e, struct tcp_conn *c)
{
	if (!(c->flags & CF_SRC))
		return;
	c->flags &= (uint16_t)~CF_SRC;
	src_count_sub(e->src, c->t.peer_ip, SRC_OPEN);
	if (!(c->flags & CF_READY))
		src_count_sub(e->src, c->t.peer_ip, SRC_UNREADY);
}

/* The refusal counter of the bound this peer address has reached, or NULL. */
static uint64_t *
src_over(struct tcp_engine *e, uint32_t ip)
{
	if (e->lim.max_per_source != 0 &&
		src_count_get(e->src, ip, SRC_OPEN) >= e->lim.max_per_source)
		return &e->st.refused_per_source;
	if (e->lim.max_unready_per_source != 0 &&
		src_count_get(e->src, ip, SRC_UNREADY) >= e->lim.max_unready_per_source)
		return &e->st.refused_unready_per_source;
	return NULL;
}

/* ---- connection life ---- */

static void
tw_unlink(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	if (c->twprev != NIL)
		e->cs[c->twprev].twnext = c->twnext;
	else
		e->tw_head = c->twnext;
	if (c->twnext != NIL)
		e->cs[c->twnext].twprev = c->twprev;
	else
		e->tw_tail = c->twprev;
	c->twnext = c->twprev = NIL;
}

/* Unlinks the slot from everything and puts it on the free list (FIFO: an
 * id is reused as late as possible, so a stale handle rarely hits a new
 * connection). */
static void
conn_release(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	timer_unlink(e, i);
	hash_remove(e, i);
	if (c->state == ST_TIME_WAIT)
		tw_unlink(e, i);
	src_leave(e, c);
	c->state = ST_FREE;
	c->flags = 0;
	c->tnext = NIL;
	if (e->free_tail != NIL)
		e->cs[e->free_tail].tnext = i;
	else
		e->free_head = i;
	e->free_tail = i;
	e->active--;
}

/*
 * Ended connections. A SYN cookie is stateless, so it stays valid after
 * its connection is gone: any segment with SEQ = client ISN + 1 and
 * ACK = cookie + 1 passes cookie_check for the rest of the cookie's life.
 * The handshake ACK and the client's first data segment are such
 * segments, and a late copy of either (a duplicate from the network, or,
 * with several workers, the copy that landed on another lcore's queue and
 * reaches the owner over the hand-off ring after the connection has
 * already closed) would re-create the connection, which then waits for a
 * request that never comes until a timer reaps it. So every connection
 * that ends is remembered here with both ISNs until its cookie has
 * certainly expired (two cookie periods from now bound its life, as the
 * SYN-ACK was sent before now), and a cookie-valid segment that matches
 * is answered with RST and counted in cookies_bad instead.
 *
 * A set-associative array sized from max_conns, allocated at create:
 * O(GONE_WAYS) per lookup or insert, no allocation. A full set forgets
 * the entry closest to expiry: the table bounds memory, not correctness
 * (an entry lost under churn only lets a late duplicate through, to be
 * reaped by a timer as before). A new incarnation from the same 4-tuple
 * has a new client ISN and a new cookie, so it never matches.
 */
static struct tcp_gone *
gone_set(const struct tcp_engine *e, const struct tcp_tuple *t)
{
	return &e->gone[((uint32_t)(tuple_hash(e, t) >> 32) & e->gmask) * GONE_WAYS];
}

static void
gone_remember(struct tcp_engine *e, const struct tcp_conn *c)
{
	struct tcp_gone *g = gone_set(e, &c->t), *victim = g;

	for (unsigned w = 0; w < GONE_WAYS; w++) {
		if (g[w].until <= e->now || tuple_eq(&g[w].t, &c->t)) {
			victim = &g[w];
			break;
		}
		if (g[w].until < victim->until)
			victim = &g[w];
	}
	victim->t = c->t;
	victim->irs = c->irs;
	victim->iss = c->iss;
	victim->until = e->now + 2 * TCP_COOKIE_PERIOD_NS;
}

/* The ended connection s (a segment with a valid cookie) belongs to, or NULL. */
static const struct tcp_gone *
gone_match(const struct tcp_engine *e, const struct tcp_seg *s)
{
	const struct tcp_gone *g = gone_set(e, &s->t);

	for (unsigned w = 0; w < GONE_WAYS; w++)
		if (g[w].until > e->now && tuple_eq(&g[w].t, &s->t) &&
			g[w].irs == s->seq - 1 && g[w].iss == s->ack - 1)
			return &g[w];
	return NULL;
}

/* The end of a connection: counted once, closed() once, remembered. */
static void
conn_end(struct tcp_engine *e, uint32_t i, enum tcp_end why)
{
	bool notify = !(e->cs[i].flags & CF_CLOSED_CB);

	gone_remember(e, &e->cs[i]);

	switch (why) {
	case TCP_END_CLOSED: e->st.closed++; break;
	case TCP_END_RESET: e->st.reset_rcvd++; break;
	case TCP_END_TIMEOUT: e->st.timeouts++; break;
	case TCP_END_ABORT: e->st.aborts++; break;
	}
	conn_release(e, i);
	if (notify && e->ops.closed != NULL)
		e->ops.closed(e->ctx, i, why);
}

/* Our RST, at the highest sequence we sent: the peer's rcv_nxt if it got
 * everything; else it challenges and its ACK meets send_rst_for. */
static void
conn_reset(struct tcp_engine *e, uint32_t i, enum tcp_end why)
{
	struct tcp_conn *c = &e->cs[i];

	emit(e, &c->t, c->snd_max, c->rcv_nxt, TCPH_RST | TCPH_ACK, NULL, 0, NULL, 0);
	conn_end(e, i, why);
}

static void
enter_time_wait(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	src_leave(e, c);
	c->state = ST_TIME_WAIT;
	c->flags |= CF_CLOSED_CB;
	c->flags &= ~(CF_PERSIST | CF_WANT_WRITABLE | CF_RTT);
	c->rto_at = 0;
	c->life_at = e->now + e->lim.time_wait_ms * NS_PER_MS;
	c->nooo = 0;
	c->twnext = NIL;
	c->twprev = e->tw_tail;
	if (e->tw_tail != NIL)
		e->cs[e->tw_tail].twnext = i;
	else
		e->tw_head = i;
	e->tw_tail = i;
	if (e->ops.closed != NULL)
		e->ops.closed(e->ctx, i, TCP_END_CLOSED);
}

/* Progress resets the idle clock of the open states only: the closing
 * states have a fixed budget from the close. */
static inline void
conn_progress(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->state == ST_ESTABLISHED || c->state == ST_CLOSE_WAIT)
		c->life_at = e->now + e->lim.idle_ms * NS_PER_MS;
}

static void
conn_do_close(struct tcp_engine *e, struct tcp_conn *c)
{
	if (c->state == ST_ESTABLISHED)
		c->state = ST_FIN_WAIT_1;
	else if (c->state == ST_CLOSE_WAIT)
		c->state = ST_LAST_ACK;
	else
		return;
	c->flags |= CF_FIN_QUEUED;
	c->life_at = e->now + e->lim.fin_ms * NS_PER_MS;
}

/* ---- callbacks into the upper layer ---- */

/* Each returns false when the upper layer asked to abort conn i. */
static bool
cb_recv(struct tcp_engine *e, uint32_t i, const uint8_t *p, size_t n)
{
	uint32_t prev = e->cb_conn;

	if (n == 0)
		return true;
	e->st.bytes_in += n;
	e->cb_conn = i;
	e->ops.recv(e->ctx, i, p, n);
	e->cb_conn = prev;
	return !(e->cs[i].flags & CF_ABORT_REQ);
}

static bool
cb_eof(struct tcp_engine *e, uint32_t i)
{
	uint32_t prev = e->cb_conn;

	if (e->ops.eof == NULL)
		return true;
	e->cb_conn = i;
	e->ops.eof(e->ctx, i);
	e->cb_conn = prev;
	return !(e->cs[i].flags & CF_ABORT_REQ);
}

static bool
cb_writable(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t prev = e->cb_conn, room = e->smask + 1 - snd_queued(c);

	if (!(c->flags & CF_WANT_WRITABLE) || room == 0 || !conn_can_send(c))
		return true;
	c->flags &= ~CF_WANT_WRITABLE;
	if (e->ops.writable == NULL)
		return true;
	e->cb_conn = i;
	e->ops.writable(e->ctx, i, room);
	e->cb_conn = prev;
	return !(c->flags & CF_ABORT_REQ);
}

/* After the engine worked on conn i: deferred requests, then output. */
static void
conn_finish(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	if (!cb_writable(e, i) || (c->flags & CF_ABORT_REQ)) {
		conn_reset(e, i, TCP_END_ABORT);
		return;
	}
	if (c->flags & CF_CLOSE_REQ) {
		c->flags &= ~CF_CLOSE_REQ;
		conn_do_close(e, c);
	}
	conn_output(e, i);
}

/* ---- receiving ---- */

static inline uint8_t *
rring(struct tcp_engine *e, uint32_t i)
{
	return e->rbuf + (size_t)i * (e->rmask + 1);
}

/* Delivers n queued bytes from rcv_nxt out of the reorder ring. */
static bool
deliver_ring(struct tcp_engine *e, uint32_t i, uint32_t n)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t size = e->rmask + 1, pos = (c->rcv_nxt - c->irs - 1) & e->rmask;
	uint32_t first = min_u32(n, size - pos);
	const uint8_t *ring = rring(e, i);

	c->rcv_nxt += n;
	if (!cb_recv(e, i, ring + pos, first))
		return false;
	return cb_recv(e, i, ring, n - first);
}

/* Queued ranges that rcv_nxt reached go up, in order. */
static bool
ooo_drain(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	while (c->nooo > 0 && seq_leq(c->ooo[0].start, c->rcv_nxt)) {
		struct seq_range r = c->ooo[0];

		c->nooo--;
		memmove(&c->ooo[0], &c->ooo[1], c->nooo * sizeof(c->ooo[0]));
		if (seq_gt(r.end, c->rcv_nxt) && !deliver_ring(e, i, r.end - c->rcv_nxt))
			return false;
	}
	return true;
}

/*
 * Keeps [seq, seq + n), which lies inside (rcv_nxt, rcv_nxt + rcv_wnd],
 * merging it into the sorted disjoint ranges; false if that would need
 * more ranges than allowed (the segment is dropped, the peer resends).
 */
static bool
ooo_insert(struct tcp_engine *e, uint32_t i, uint32_t seq, const uint8_t *p, uint32_t n)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t base = c->rcv_nxt, s = seq - base, t = s + n, ns = s, ne = t;
	unsigned k = 0, j, merged;

	while (k < c->nooo && c->ooo[k].end - base < s)
		k++;
	for (j = k; j < c->nooo && c->ooo[j].start - base <= t; j++) {
		ns = min_u32(ns, c->ooo[j].start - base);
		ne = max_u32(ne, c->ooo[j].end - base);
	}
	merged = j - k;
	if (merged == 1 && ns == c->ooo[k].start - base && ne == c->ooo[k].end - base &&
		ns <= s && ne >= t) {
		e->st.dup_segments++;
		return true;
	}
	if (c->nooo - merged + 1 > e->lim.ooo_ranges) {
		e->st.ooo_dropped++;
		return false;
	}
	{
		uint32_t size = e->rmask + 1, pos = (seq - c->irs - 1) & e->rmask;
		uint32_t first = min_u32(n, size - pos);
		uint8_t *ring = rring(e, i);

		memcpy(ring + pos, p, first);
		memcpy(ring, p + first, n - first);
	}
	if (merged != 1)
		memmove(&c->ooo[k + 1], &c->ooo[j], (c->nooo - j) * sizeof(c->ooo[0]));
	c->nooo = (uint8_t)(c->nooo - merged + 1);
	c->ooo[k].start = base + ns;
	c->ooo[k].end = base + ne;
	e->st.ooo_queued++;
	return true;
}

/* The peer's FIN at rcv_nxt. */
static bool
conn_fin(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];
	bool tw = false;

	c->rcv_nxt++;
	c->flags |= CF_PEER_FIN | CF_ACK_NOW;
	c->flags &= ~CF_OOO_FIN;
	c->nooo = 0;		/* bytes queued beyond a FIN are bogus */
	switch (c->state) {
	case ST_ESTABLISHED: c->state = ST_CLOSE_WAIT; break;
	case ST_FIN_WAIT_1: c->state = ST_CLOSING; break;
	case ST_FIN_WAIT_2: tw = true; break;
	default: break;
	}
	if (!cb_eof(e, i))
		return false;
	if (tw) {
		send_ack(e, c);
		enter_time_wait(e, i);
	}
	return true;
}

/*
 * The payload and FIN of an acceptable segment, in ESTABLISHED or
 * FIN_WAIT_1/2: trimmed to [rcv_nxt, rcv_nxt + rcv_wnd), delivered or
 * queued. False when the upper layer asked to abort.
 */
static bool
conn_data(struct tcp_engine *e, uint32_t i, const struct tcp_seg *sg)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t seq = sg->seq, n = sg->len, wend = c->rcv_nxt + e->lim.rcv_wnd;
	const uint8_t *p = sg->data;
	bool fin = (sg->flags & TCPH_FIN) != 0;

	if (seq_lt(seq, c->rcv_nxt)) {
		/* acceptable, so it reaches rcv_nxt: skip <= n */
		uint32_t skip = c->rcv_nxt - seq;

		e->st.dup_segments++;
		seq += skip;
		p += skip;
		n -= skip;
	}
	if (seq_gt(seq + n, wend)) {
		e->st.out_of_window++;
		n = wend - seq;
		fin = false;
	}
	if (n != 0 || fin)
		c->flags |= CF_ACK_NOW;
	if (seq != c->rcv_nxt) {
		if (n != 0 && ooo_insert(e, i, seq, p, n) && fin) {
			c->flags |= CF_OOO_FIN;
			c->ooo_fin = seq + n;
		}
		return true;
	}
	if (n != 0) {
		c->rcv_nxt += n;
		conn_progress(e, c);
		if (!cb_recv(e, i, p, n) || !ooo_drain(e, i))
			return false;
	}
	if ((c->flags & CF_OOO_FIN) && c->rcv_nxt == c->ooo_fin)
		fin = true;
	return fin ? conn_fin(e, i) : true;
}

static void
rtt_sample(struct tcp_engine *e, struct tcp_conn *c)
{
	uint64_t d = (e->now - c->rtt_start) / NS_PER_US;
	uint32_t r = d == 0 ? 1 : d > UINT32_MAX / 8 ? UINT32_MAX / 8 : (uint32_t)d;
	uint64_t rto;

	if (c->srtt_us == 0) {
		c->srtt_us = r;
		c->rttvar_us = r / 2;
	} else {
		uint32_t delta = c->srtt_us > r ? c->srtt_us - r : r - c->srtt_us;

		c->rttvar_us = (3 * c->rttvar_us + delta) / 4;
		c->srtt_us = (7 * c->srtt_us + r) / 8;
	}
	rto = (uint64_t)c->srtt_us + max_u32(TICK_US, 4 * c->rttvar_us);
	if (rto < (uint64_t)e->lim.rto_min_ms * 1000)
		rto = (uint64_t)e->lim.rto_min_ms * 1000;
	if (rto > (uint64_t)e->lim.rto_max_ms * 1000)
		rto = (uint64_t)e->lim.rto_max_ms * 1000;
	c->rto_us = (uint32_t)rto;
	c->flags &= ~CF_RTT;
}

static void
fast_retransmit(struct tcp_engine *e, struct tcp_conn *c)
{
	uint32_t flight = c->snd_max - c->snd_una;

	c->ssthresh = max_u32(flight / 2, 2u * c->mss);
	c->cwnd = c->ssthresh;
	c->flags &= ~CF_RTT;
	e->st.fast_retransmits++;
	send_at(e, c, c->snd_una, c->mss);
}

/*
 * The ACK field of an acceptable segment. Returns false if the segment is
 * to be dropped (an ACK of data never sent: re-ACKed) or the connection
 * is gone (our FIN acked in LAST_ACK).
 */
static bool
conn_ack(struct tcp_engine *e, uint32_t i, const struct tcp_seg *sg, bool *freed)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t ack = sg->ack, wnd = (uint32_t)sg->wnd << c->snd_ws;

	if (seq_gt(ack, c->snd_max)) {
		e->st.bad_acks++;
		c->flags |= CF_ACK_NOW;
		return false;
	}
	if (seq_lt(ack, c->snd_una - c->max_snd_wnd)) {
		e->st.bad_acks++;
		send_challenge(e, c);
		return false;
	}
	if (seq_gt(ack, c->snd_una)) {
		uint32_t acked = ack - c->snd_una;
		bool fin_acked = (c->flags & CF_FIN_QUEUED) && ack == c->snd_end + 1;

		c->snd_una = ack;
		if (seq_lt(c->snd_nxt, ack))
			c->snd_nxt = ack;
		if ((c->flags & CF_RTT) && seq_geq(ack, c->rtt_seq))
			rtt_sample(e, c);
		if (c->cwnd < c->ssthresh)
			c->cwnd += min_u32(acked, c->mss);
		else
			c->cwnd += max_u32(1, c->mss * c->mss / c->cwnd);
		c->cwnd = min_u32(c->cwnd, 1u << 30);
		c->retries = 0;
		c->pbackoff = 0;
		c->dupacks = 0;
		c->rto_at = 0;		/* RFC 6298 5.3: restarted by the output */
		conn_progress(e, c);
		if (fin_acked) {
			switch (c->state) {
			case ST_FIN_WAIT_1:
				c->state = ST_FIN_WAIT_2;
				c->life_at = e->now + e->lim.fin_ms * NS_PER_MS;
				break;
			case ST_CLOSING:
				enter_time_wait(e, i);
				break;
			case ST_LAST_ACK:
				conn_end(e, i, TCP_END_CLOSED);
				*freed = true;
				return false;
			default:
				break;
			}
		}
	} else if (ack == c->snd_una && sg->len == 0 && !(sg->flags & TCPH_FIN) &&
		seq_lt(c->snd_una, c->snd_max) && wnd == c->snd_wnd) {
		if (++c->dupacks == 3)
			fast_retransmit(e, c);
	}
	if (seq_lt(c->snd_wl1, sg->seq) || (c->snd_wl1 == sg->seq && seq_leq(c->snd_wl2, ack))) {
		if (wnd > c->snd_wnd)
			c->pbackoff = 0;
		c->snd_wnd = wnd;
		c->snd_wl1 = sg->seq;
		c->snd_wl2 = ack;
		c->max_snd_wnd = max_u32(c->max_snd_wnd, wnd);
	}
	return true;
}

/* A segment for connection i (RFC 9293 3.10.7.4 with RFC 5961). */
static void
conn_segment(struct tcp_engine *e, uint32_t i, const struct tcp_seg *sg)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t seglen = sg->len + !!(sg->flags & TCPH_SYN) + !!(sg->flags & TCPH_FIN);
	uint32_t wend = c->rcv_nxt + e->lim.rcv_wnd;
	bool ok, freed = false;

	if (sg->flags & TCPH_RST) {
		if (sg->seq == c->rcv_nxt) {
			conn_end(e, i, TCP_END_RESET);
			return;
		}
		e->st.rst_ignored++;
		if (seq_in(sg->seq, c->rcv_nxt, wend))
			send_challenge(e, c);
		return;
	}
	if (sg->flags & TCPH_SYN) {
		send_challenge(e, c);
		return;
	}
	if (seglen == 0)
		ok = seq_in(sg->seq, c->rcv_nxt, wend);
	else
		ok = seq_in(sg->seq, c->rcv_nxt, wend) || seq_in(sg->seq + seglen - 1, c->rcv_nxt, wend);
	if (!ok) {
		if (seq_leq(sg->seq + seglen, c->rcv_nxt))
			e->st.dup_segments++;
		else
			e->st.out_of_window++;
		if (c->state == ST_TIME_WAIT && (sg->flags & TCPH_FIN)) {
			/* our last ACK was lost: say it again, wait again */
			c->life_at = e->now + e->lim.time_wait_ms * NS_PER_MS;
			timer_sync(e, i);
		}
		send_oow_ack(e, c);
		return;
	}
	if (!(sg->flags & TCPH_ACK)) {
		e->st.bad_segments++;
		return;
	}
	if (!conn_ack(e, i, sg, &freed)) {
		if (!freed)
			conn_finish(e, i);
		return;
	}
	switch (c->state) {
	case ST_ESTABLISHED:
	case ST_FIN_WAIT_1:
	case ST_FIN_WAIT_2:
		if (!conn_data(e, i, sg)) {
			conn_reset(e, i, TCP_END_ABORT);
			return;
		}
		break;
	default:
		/* the peer's FIN is behind us: anything after it is bogus */
		if (seglen != 0)
			c->flags |= CF_ACK_NOW;
		break;
	}
	if (c->state == ST_TIME_WAIT) {
		if (c->flags & CF_ACK_NOW)
			send_ack(e, c);
		timer_sync(e, i);
		return;
	}
	conn_finish(e, i);
}

/* ---- the listener: SYN cookies ---- */

static uint32_t
cookie_mac(const struct tcp_engine *e, const struct tcp_tuple *t, uint32_t cisn,
	uint64_t counter, unsigned idx, unsigned ws)
{
	uint8_t m[26];

	put32(m, t->peer_ip);
	put32(m + 4, t->local_ip);
	put16(m + 8, t->peer_port);
	put16(m + 10, t->local_port);
	put32(m + 12, cisn);
	put32(m + 16, (uint32_t)(counter >> 32));
	put32(m + 20, (uint32_t)counter);
	m[24] = (uint8_t)idx;
	m[25] = (uint8_t)ws;
	return (uint32_t)tcp_siphash24(e->key, m, sizeof(m)) & ((1u << COOKIE_MAC_BITS) - 1);
}

/*
 * Our ISN for a SYN: [31:30] counter mod 4, [29:27] MSS index,
 * [26:23] window scale (15 = none), [22:0] MAC over all of it.
 */
static uint32_t
cookie_make(const struct tcp_engine *e, const struct tcp_seg *s, unsigned *idx, unsigned *ws)
{
	uint64_t counter = e->now / TCP_COOKIE_PERIOD_NS;
	uint32_t mss = s->mss < 0 ? 536 : (uint32_t)s->mss;
	unsigned k = 0;

	while (k + 1 < 8 && cookie_mss[k + 1] <= mss)
		k++;
	*idx = k;
	*ws = s->ws < 0 ? WS_NONE : (unsigned)(s->ws > MAX_SHIFT ? MAX_SHIFT : s->ws);
	return (uint32_t)(counter & 3) << 30 | k << 27 | *ws << COOKIE_MAC_BITS |
		cookie_mac(e, &s->t, s->seq, counter, k, *ws);
}

/* Checks the cookie an ACK returns; fills the MSS index and shift. */
static bool
cookie_check(const struct tcp_engine *e, const struct tcp_seg *s, unsigned *idx, unsigned *ws)
{
	uint32_t ck = s->ack - 1, cisn = s->seq - 1;
	uint64_t now = e->now / TCP_COOKIE_PERIOD_NS;

	*idx = ck >> 27 & 7;
	*ws = ck >> COOKIE_MAC_BITS & 15;	/* 0..14, or WS_NONE */
	for (uint64_t age = 0; age < 2 && age <= now; age++) {
		uint64_t counter = now - age;

		if ((counter & 3) == ck >> 30)
			return cookie_mac(e, &s->t, cisn, counter, *idx, *ws) ==
				(ck & ((1u << COOKIE_MAC_BITS) - 1));
	}
	return false;
}

static void
send_synack(struct tcp_engine *e, const struct tcp_seg *s)
{
	unsigned idx, ws;
	uint32_t iss = cookie_make(e, s, &idx, &ws);
	uint8_t opt[8] = { 2, 4, 0, 0, 1, 3, 3, 0 };	/* MSS; NOP, WS 0 */

	put16(opt + 2, e->lim.mss);
	e->st.cookies_sent++;
	emit(e, &s->t, iss, s->seq + 1, TCPH_SYN | TCPH_ACK, opt, ws == WS_NONE ? 4 : 8, NULL, 0);
}

/* A slot for a new connection: a free one, else the oldest TIME_WAIT. */
static uint32_t
conn_alloc(struct tcp_engine *e)
{
	uint32_t i = e->free_head;

	if (i == NIL && e->tw_head != NIL) {
		e->st.tw_recycled++;
		conn_end(e, e->tw_head, TCP_END_CLOSED);
		i = e->free_head;
	}
	if (i == NIL)
		return NIL;
	e->free_head = e->cs[i].tnext;
	if (e->free_head == NIL)
		e->free_tail = NIL;
	e->active++;
	return i;
}

static void
conn_init(struct tcp_engine *e, uint32_t i, const struct tcp_seg *s, unsigned idx, unsigned ws)
{
	struct tcp_conn *c = &e->cs[i];
	uint32_t b = tuple_bucket(e, &s->t);

	memset(c, 0, sizeof(*c));
	c->t = s->t;
	c->state = ST_ESTABLISHED;
	c->wslot = c->tnext = c->tprev = c->twnext = c->twprev = NIL;
	c->snd_ws = ws == WS_NONE ? 0 : (uint8_t)ws;
	c->mss = (uint16_t)min_u32(cookie_mss[idx], e->lim.mss);
	c->iss = s->ack - 1;
	c->irs = s->seq - 1;
	c->snd_una = c->snd_nxt = c->snd_max = c->snd_end = s->ack;
	c->rcv_nxt = s->seq;
	c->snd_wnd = c->max_snd_wnd = (uint32_t)s->wnd << c->snd_ws;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = s->ack;
	/* RFC 6928 */
	c->cwnd = min_u32(10u * c->mss, max_u32(2u * c->mss, 14600));
	c->ssthresh = UINT32_MAX / 2;
	c->rto_us = e->lim.rto_init_ms * 1000;
	c->life_at = e->now + e->lim.idle_ms * NS_PER_MS;
	c->hnext = e->buckets[b];
	e->buckets[b] = i;
	src_enter(e, c);
}

static bool
accept_refused(struct tcp_engine *e, uint32_t i, const struct tcp_tuple *t)
{
	uint32_t prev = e->cb_conn;
	int rc;

	e->cb_conn = i;
	rc = e->ops.accept(e->ctx, i, t);
	e->cb_conn = prev;
	return rc != 0;
}

static void
listen_input(struct tcp_engine *e, const struct tcp_seg *s)
{
	unsigned idx, ws;
	uint64_t *over;
	uint32_t i;

	if (s->flags & TCPH_RST) {
		/* e.g. the client gave up on our SYN-ACK: nothing to free */
		e->st.rst_ignored++;
		return;
	}
	if (s->flags & TCPH_SYN) {
		if (s->flags & TCPH_ACK) {
			e->st.bad_segments++;
			send_rst_for(e, s);
			return;
		}
		e->st.syn_rcvd++;
		if ((over = src_over(e, s->t.peer_ip)) != NULL) {
			(*over)++;
			send_rst_syn(e, s);
			return;
		}
		send_synack(e, s);
		return;
	}
	if (!(s->flags & TCPH_ACK)) {
		e->st.bad_segments++;
		return;
	}
	if (!cookie_check(e, s, &idx, &ws)) {
		e->st.cookies_bad++;
		send_rst_for(e, s);
		return;
	}
	if (gone_match(e, s) != NULL) {
		e->st.cookies_bad++;
		send_rst_for(e, s);
		return;
	}
	e->st.cookies_ok++;
	if ((over = src_over(e, s->t.peer_ip)) != NULL) {
		(*over)++;
		send_rst_for(e, s);
		return;
	}
	if ((i = conn_alloc(e)) == NIL) {
		e->st.table_full++;
		send_rst_for(e, s);
		return;
	}
	conn_init(e, i, s, idx, ws);
	if (e->ops.accept != NULL && accept_refused(e, i, &s->t)) {
		e->st.refused++;
		conn_release(e, i);
		send_rst_for(e, s);
		return;
	}
	e->st.established++;
	conn_segment(e, i, s);
}

/* ---- input ---- */

/* Header and options; false if malformed or not for us. */
static bool
seg_parse(const struct tcp_engine *e, uint32_t src, uint32_t dst, const uint8_t *p, size_t len,
	struct tcp_seg *s)
{
	size_t doff, k;

	if (len < TCP_HDR_MIN)
		return false;
	doff = (size_t)(p[12] >> 4) * 4;
	if (doff < TCP_HDR_MIN || doff > len || len - doff > UINT32_MAX)
		return false;
	s->t.peer_ip = src;
	s->t.local_ip = dst;
	s->t.peer_port = get16(p);
	s->t.local_port = get16(p + 2);
	if (s->t.local_port != e->lim.port || s->t.peer_port == 0)
		return false;
	/* never answer a source that cannot be a unicast host */
	if (src == 0 || src == UINT32_MAX || (src >> 28) == 0xe)
		return false;
	s->seq = get32(p + 4);
	s->ack = get32(p + 8);
	s->flags = p[13];
	s->wnd = get16(p + 14);
	if ((s->flags & TCPH_SYN) && (s->flags & (TCPH_FIN | TCPH_RST)))
		return false;
	s->mss = -1;
	s->ws = -1;
	for (k = TCP_HDR_MIN; k < doff;) {
		uint8_t kind = p[k], ol;

		if (kind == 0)
			break;
		if (kind == 1) {
			k++;
			continue;
		}
		if (k + 1 >= doff || (ol = p[k + 1]) < 2 || k + ol > doff)
			return false;
		if (kind == 2) {
			if (ol != 4)
				return false;
			s->mss = get16(p + k + 2);
		} else if (kind == 3) {
			if (ol != 3)
				return false;
			s->ws = (int8_t)(p[k + 2] > MAX_SHIFT ? MAX_SHIFT : p[k + 2]);
		}
		k += ol;
	}
	s->data = p + doff;
	s->len = (uint32_t)(len - doff);
	return true;
}

void
tcp_input(struct tcp_engine *e, uint64_t now_ns, uint32_t src_ip, uint32_t dst_ip,
	const uint8_t *seg, size_t len)
{
	struct tcp_seg s;
	uint32_t i;

	e->now = now_ns;
	e->st.segs_in++;
	if (!seg_parse(e, src_ip, dst_ip, seg, len, &s)) {
		e->st.bad_segments++;
		return;
	}
	i = conn_lookup(e, &s.t);
	if (i == NIL) {
		listen_input(e, &s);
	} else if (e->cs[i].state == ST_TIME_WAIT && (s.flags & (TCPH_SYN | TCPH_ACK)) == TCPH_SYN) {
		/* a new incarnation from the same 4-tuple ends TIME_WAIT */
		conn_end(e, i, TCP_END_CLOSED);
		listen_input(e, &s);
	} else {
		conn_segment(e, i, &s);
	}
}

/* ---- timers ---- */

static void
conn_rto(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	if (c->flags & CF_PERSIST) {
		/* one byte below the window: the peer must answer with its window */
		e->st.probes++;
		emit(e, &c->t, c->snd_una - 1, c->rcv_nxt, TCPH_ACK, NULL, 0, NULL, 0);
		if (c->pbackoff < MAX_BACKOFF)
			c->pbackoff++;
		c->rto_at = e->now + backed_off(e, c->rto_us, c->pbackoff);
		timer_sync(e, i);
		return;
	}
	if (!seq_lt(c->snd_una, c->snd_max)) {
		timer_sync(e, i);
		return;
	}
	if (c->retries >= e->lim.retries) {
		conn_reset(e, i, TCP_END_TIMEOUT);
		return;
	}
	e->st.rto_expired++;
	c->retries++;
	c->ssthresh = max_u32((c->snd_max - c->snd_una) / 2, 2u * c->mss);
	c->cwnd = c->mss;
	c->snd_nxt = c->snd_una;
	c->dupacks = 0;
	c->flags &= ~CF_RTT;		/* Karn */
	conn_output(e, i);
}

static void
conn_timer(struct tcp_engine *e, uint32_t i)
{
	struct tcp_conn *c = &e->cs[i];

	if (c->life_at != 0 && c->life_at <= e->now) {
		if (c->state == ST_TIME_WAIT)
			conn_end(e, i, TCP_END_CLOSED);
		else
			conn_reset(e, i, TCP_END_TIMEOUT);
		return;
	}
	if (c->rto_at != 0 && c->rto_at <= e->now) {
		c->rto_at = 0;
		conn_rto(e, i);
		return;
	}
	timer_sync(e, i);
}

/*
 * Fires what is due in one slot. Entries for a later lap are parked on
 * the WHEEL_LATER list and put back, so callbacks may free or re-file any
 * connection (this one included) while the slot is walked.
 */
static void
wheel_fire(struct tcp_engine *e, uint32_t slot, uint64_t tnow)
{
	uint32_t i;

	while ((i = e->wheel[slot]) != NIL) {
		timer_unlink(e, i);
		if (e->cs[i].wtick > tnow)
			timer_link(e, i, WHEEL_LATER);
		else
			conn_timer(e, i);
	}
	while ((i = e->wheel[WHEEL_LATER]) != NIL) {
		timer_unlink(e, i);
		timer_link(e, i, slot);
	}
}

void
tcp_tick(struct tcp_engine *e, uint64_t now_ns)
{
	uint64_t tnow = now_ns >> TICK_SHIFT, first = e->wheel_cur, n;

	e->now = now_ns;
	if (tnow < first)
		return;
	e->wheel_cur = tnow + 1;	/* timers set from here on land after tnow */
	if (e->armed == 0)
		return;
	n = tnow - first + 1;
	if (n > TCP_WHEEL_SLOTS)
		n = TCP_WHEEL_SLOTS;
	for (uint64_t k = 0; k < n; k++)
		wheel_fire(e, (uint32_t)((first + k) & WHEEL_MASK), tnow);
}

/* ---- the upper layer's calls ---- */

long
tcp_send(struct tcp_engine *e, uint32_t conn, const void *data, size_t len)
{
	struct tcp_conn *c;
	uint32_t size = e->smask + 1, room, n, pos, first;
	uint8_t *ring;

	if (conn >= e->lim.max_conns || !conn_can_send(c = &e->cs[conn]))
		return -1;
	room = size - snd_queued(c);
	n = len < room ? (uint32_t)len : room;
	if (n < len)
		c->flags |= CF_WANT_WRITABLE;
	if (n == 0)
		return 0;
	ring = e->sbuf + (size_t)conn * size;
	pos = (c->snd_end - c->iss - 1) & e->smask;
	first = min_u32(n, size - pos);
	memcpy(ring + pos, data, first);
	memcpy(ring, (const uint8_t *)data + first, n - first);
	c->snd_end += n;
	if (conn != e->cb_conn)
		conn_output(e, conn);
	return n;
}

int
tcp_close(struct tcp_engine *e, uint32_t conn)
{
	struct tcp_conn *c;

	if (conn >= e->lim.max_conns || !conn_can_send(c = &e->cs[conn]))
		return -1;
	if (conn == e->cb_conn) {
		c->flags |= CF_CLOSE_REQ;
		return 0;
	}
	conn_do_close(e, c);
	conn_output(e, conn);
	return 0;
}

int
tcp_abort(struct tcp_engine *e, uint32_t conn)
{
	struct tcp_conn *c;

	if (conn >= e->lim.max_conns || !conn_visible(c = &e->cs[conn]) || (c->flags & CF_ABORT_REQ))
		return -1;
	if (conn == e->cb_conn) {
		c->flags |= CF_ABORT_REQ;
		return 0;
	}
	conn_reset(e, conn, TCP_END_ABORT);
	return 0;
}

void
tcp_conn_ready(struct tcp_engine *e, uint32_t conn)
{
	struct tcp_conn *c;

	if (conn >= e->lim.max_conns || (c = &e->cs[conn])->state == ST_FREE ||
		(c->flags & CF_READY))
		return;
	c->flags |= CF_READY;
	if (c->flags & CF_SRC)
		src_count_sub(e->src, c->t.peer_ip, SRC_UNREADY);
}

long
tcp_conn_find(const struct tcp_engine *e, const struct tcp_tuple *t)
{
	uint32_t i = conn_lookup(e, t);

	return i != NIL ? (long)i : -1;
}

size_t
tcp_conn_room(const struct tcp_engine *e, uint32_t conn)
{
	const struct tcp_conn *c;

	if (conn >= e->lim.max_conns || !conn_can_send(c = &e->cs[conn]))
		return 0;
	return e->smask + 1 - snd_queued(c);
}

const struct tcp_tuple *
tcp_conn_tuple(const struct tcp_engine *e, uint32_t conn)
{
	if (conn >= e->lim.max_conns || !conn_visible(&e->cs[conn]))
		return NULL;
	return &e->cs[conn].t;
}

size_t
tcp_conn_unacked(const struct tcp_engine *e, uint32_t conn)
{
	if (conn >= e->lim.max_conns || e->cs[conn].state == ST_FREE)
		return 0;
	return snd_queued(&e->cs[conn]);
}

unsigned
tcp_active(const struct tcp_engine *e)
{
	return e->active;
}

const struct tcp_stats *
tcp_stats(const struct tcp_engine *e)
{
	return &e->st;
}

/* ---- life of the engine ---- */

static void
limits_normalise(struct tcp_limits *l)
{
	if (l->mss == 0)
		l->mss = 1460;
	if (l->mss < cookie_mss[0])
		l->mss = cookie_mss[0];
	if (l->mss > 1460)
		l->mss = 1460;
	if (l->rcv_wnd == 0)
		l->rcv_wnd = 8192;
	if (l->rcv_wnd < l->mss)
		l->rcv_wnd = l->mss;
	if (l->snd_buf == 0)
		l->snd_buf = 16384;
	if (l->snd_buf > (1u << 20))
		l->snd_buf = 1u << 20;
	l->snd_buf = pow2_at_least(l->snd_buf);
	if (l->ooo_ranges == 0)
		l->ooo_ranges = 4;
	if (l->ooo_ranges > TCP_MAX_OOO_RANGES)
		l->ooo_ranges = TCP_MAX_OOO_RANGES;
	if (l->retries == 0)
		l->retries = 6;
	if (l->rto_min_ms == 0)
		l->rto_min_ms = 200;
	if (l->rto_max_ms == 0)
		l->rto_max_ms = 16000;
	if (l->rto_max_ms > 600000)
		l->rto_max_ms = 600000;
	if (l->rto_max_ms < l->rto_min_ms)
		l->rto_max_ms = l->rto_min_ms;
	if (l->rto_init_ms == 0)
		l->rto_init_ms = 1000;
	if (l->rto_init_ms < l->rto_min_ms)
		l->rto_init_ms = l->rto_min_ms;
	if (l->rto_init_ms > l->rto_max_ms)
		l->rto_init_ms = l->rto_max_ms;
	if (l->idle_ms == 0)
		l->idle_ms = 30000;
	if (l->fin_ms == 0)
		l->fin_ms = 10000;
	if (l->time_wait_ms == 0)
		l->time_wait_ms = 2000;
}

struct tcp_engine *
tcp_engine_create(const struct tcp_limits *lim, const uint8_t key[16],
	const struct tcp_ops *ops, void *ctx)
{
	struct tcp_engine *e;
	uint32_t nb, ng;
	size_t n;

	if (lim == NULL || key == NULL || ops == NULL || ops->send == NULL || ops->recv == NULL ||
		lim->port == 0 || lim->max_conns == 0 || lim->max_conns > (1u << 24)) {
		errno = EINVAL;
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->lim = *lim;
	limits_normalise(&e->lim);
	e->ops = *ops;
	e->ctx = ctx;
	memcpy(e->key, key, 16);
	{
		uint64_t a = tcp_siphash24(key, "tcp table hash 0", 16);
		uint64_t b = tcp_siphash24(key, "tcp table hash 1", 16);

		memcpy(e->hkey, &a, 8);
		memcpy(e->hkey + 8, &b, 8);
	}
	n = e->lim.max_conns;
	e->smask = e->lim.snd_buf - 1;
	e->rmask = pow2_at_least(e->lim.rcv_wnd) - 1;
	nb = pow2_at_least((uint32_t)n);
	e->bmask = nb - 1;
	e->cs = calloc(n, sizeof(*e->cs));
	e->sbuf = malloc(n * (e->smask + 1));
	e->rbuf = malloc(n * (e->rmask + 1));
	e->scratch = malloc(e->lim.mss);
	e->buckets = malloc(nb * sizeof(*e->buckets));
	/* ended connections: 4 per slot, enough for a few table turnovers */
	ng = pow2_at_least((uint32_t)min_u32(GONE_MAX, max_u32(64, 4 * (uint32_t)n)));
	e->gmask = ng / GONE_WAYS - 1;
	e->gone = calloc(ng, sizeof(*e->gone));
	e->src = src_count_new((uint32_t)n, tcp_siphash24(key, "tcp source table", 16));
	if (e->cs == NULL || e->sbuf == NULL || e->rbuf == NULL || e->scratch == NULL ||
		e->buckets == NULL || e->gone == NULL || e->src == NULL) {
		tcp_engine_free(e);
		errno = ENOMEM;
		return NULL;
	}
	memset(e->buckets, 0xff, nb * sizeof(*e->buckets));
	for (uint32_t k = 0; k <= TCP_WHEEL_SLOTS; k++)
		e->wheel[k] = NIL;
	for (uint32_t k = 0; k < n; k++) {
		e->cs[k].tnext = k + 1 < n ? k + 1 : NIL;
		e->cs[k].wslot = NIL;
	}
	e->free_head = 0;
	e->free_tail = (uint32_t)n - 1;
	e->tw_head = e->tw_tail = NIL;
	e->cb_conn = NIL;
	return e;
}

void
tcp_engine_free(struct tcp_engine *e)
{
	if (e == NULL)
		return;
	free(e->cs);
	free(e->sbuf);
	free(e->rbuf);
	free(e->scratch);
	free(e->buckets);
	free(e->gone);
	src_count_free(e->src);
	memset(e->key, 0, sizeof(e->key));
	memset(e->hkey, 0, sizeof(e->hkey));
	free(e);
}

/* ---- consistency check ---- */

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		snprintf(why, whylen, __VA_ARGS__); \
		return -1; \
	} \
} while (0)

static int
check_conn(const struct tcp_engine *e, uint32_t i, char *why, size_t whylen)
{
	const struct tcp_conn *c = &e->cs[i];
	uint64_t at = conn_deadline(c);
	uint32_t size = e->smask + 1, wend = c->rcv_nxt + e->lim.rcv_wnd;

	CHECK(conn_lookup(e, &c->t) == i, "conn %u: not found under its 4-tuple", i);
	CHECK(seq_leq(c->snd_una, c->snd_nxt) && seq_leq(c->snd_nxt, c->snd_max),
		"conn %u: snd_una %u <= snd_nxt %u <= snd_max %u broken", i, c->snd_una,
		c->snd_nxt, c->snd_max);
	CHECK(seq_leq(c->snd_max, c->snd_end + !!(c->flags & CF_FIN_QUEUED)),
		"conn %u: snd_max %u beyond the queue end %u", i, c->snd_max, c->snd_end);
	CHECK(seq_leq(c->iss + 1, c->snd_una), "conn %u: snd_una before iss", i);
	CHECK(snd_queued(c) <= size, "conn %u: %u bytes queued in a ring of %u", i,
		snd_queued(c), size);
	CHECK(c->nooo <= e->lim.ooo_ranges, "conn %u: %u reorder ranges", i, c->nooo);
	for (unsigned k = 0; k < c->nooo; k++) {
		CHECK(seq_lt(c->rcv_nxt, c->ooo[k].start) && seq_lt(c->ooo[k].start, c->ooo[k].end) &&
			seq_leq(c->ooo[k].end, wend), "conn %u: reorder range %u [%u, %u) outside "
			"(rcv_nxt %u, +wnd]", i, k, c->ooo[k].start, c->ooo[k].end, c->rcv_nxt);
		CHECK(k == 0 || seq_lt(c->ooo[k - 1].end, c->ooo[k].start),
			"conn %u: reorder ranges %u and %u overlap or touch", i, k - 1, k);
	}
	CHECK(c->mss >= cookie_mss[0] && c->mss <= e->lim.mss, "conn %u: mss %u", i, c->mss);
	CHECK(c->cwnd >= c->mss, "conn %u: cwnd %u below mss", i, c->cwnd);
	CHECK(at == 0 || (c->wslot != NIL && c->wslot < TCP_WHEEL_SLOTS &&
		c->wtick <= deadline_tick(e, at) && (c->wtick & WHEEL_MASK) == c->wslot),
		"conn %u: deadline %llu not on the wheel", i, (unsigned long long)at);
	CHECK(c->wslot == NIL || c->wtick >= e->wheel_cur, "conn %u: tick %llu passed unfired",
		i, (unsigned long long)c->wtick);
	CHECK(c->life_at != 0, "conn %u: no life deadline in state %u", i, c->state);
	CHECK((c->state == ST_TIME_WAIT) == !!(c->flags & CF_CLOSED_CB),
		"conn %u: closed() flag and state %u disagree", i, c->state);
	CHECK((c->state != ST_TIME_WAIT) == !!(c->flags & CF_SRC),
		"conn %u: per-source flag and state %u disagree", i, c->state);
	CHECK(!(c->flags & CF_SRC) || src_count_get(e->src, c->t.peer_ip, SRC_OPEN) >= 1,
		"conn %u: open but not counted for its peer address", i);
	return 0;
}

int
tcp_engine_check(const struct tcp_engine *e, char *why, size_t whylen)
{
	uint32_t n = e->lim.max_conns, used = 0, nfree = 0, ntw = 0, onwheel = 0, inhash = 0;
	uint32_t nopen = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct tcp_conn *c = &e->cs[i];

		if (c->state == ST_FREE) {
			CHECK(c->wslot == NIL, "free conn %u is on the wheel", i);
			continue;
		}
		used++;
		ntw += c->state == ST_TIME_WAIT;
		nopen += !!(c->flags & CF_SRC);
		if (check_conn(e, i, why, whylen) != 0)
			return -1;
	}
	CHECK(used == e->active, "%u slots in use, active says %u", used, e->active);
	for (uint32_t i = e->free_head; i != NIL; i = e->cs[i].tnext) {
		CHECK(e->cs[i].state == ST_FREE && nfree < n, "free list holds conn %u in state %u",
			i, e->cs[i].state);
		nfree++;
	}
	CHECK(nfree + used == n, "free list %u + used %u != %u slots", nfree, used, n);
	for (uint32_t i = e->tw_head, k = 0; i != NIL; i = e->cs[i].twnext, k++) {
		CHECK(e->cs[i].state == ST_TIME_WAIT && k < n, "TIME_WAIT list holds conn %u", i);
		if (e->cs[i].twnext == NIL)
			CHECK(e->tw_tail == i, "TIME_WAIT tail is not %u", i);
		ntw--;
	}
	CHECK(ntw == 0, "TIME_WAIT list and states disagree");
	for (uint32_t s = 0; s <= TCP_WHEEL_SLOTS; s++) {
		uint32_t prev = NIL;

		for (uint32_t i = e->wheel[s]; i != NIL; prev = i, i = e->cs[i].tnext) {
			CHECK(e->cs[i].wslot == s && e->cs[i].tprev == prev && onwheel < n,
				"wheel slot %u: bad link at conn %u", s, i);
			onwheel++;
		}
	}
	CHECK(onwheel == e->armed, "%u on the wheel, armed says %u", onwheel, e->armed);
	for (uint32_t b = 0; b <= e->bmask; b++)
		for (uint32_t i = e->buckets[b]; i != NIL; i = e->cs[i].hnext) {
			CHECK(e->cs[i].state != ST_FREE && inhash < n, "bucket %u holds conn %u", b, i);
			inhash++;
		}
	CHECK(inhash == used, "%u in the table, %u in use", inhash, used);
	CHECK(src_count_sources(e->src) <= nopen,
		"%u peer addresses counted for fewer open connections", src_count_sources(e->src));
	return 0;
}
