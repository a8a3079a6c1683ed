/*
 * A fake world for the TCP engine, packetdrill style: a queue of the
 * segments the engine emits (parsed and checked), a fake clock, a fake
 * upper layer (sink, echo, or a fixed answer to a request of known size)
 * and scripted peers that build segments byte by byte.
 */
#ifndef TESTS_TCP_HARNESS_H
#define TESTS_TCP_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp.h"

#define TH_SERVER_IP 0x0a000001u	/* 10.0.0.1 */
#define TH_PORT TCP_TVS_PORT
#define TH_MS 1000000ull
#define TH_SEC 1000000000ull

struct th_seg {
	struct tcp_tuple t;
	uint8_t *raw;		/* header + payload */
	size_t len;
	size_t hdrlen;
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t flags;
	uint16_t win;
	int mss;		/* -1 if absent */
	int ws;			/* -1 if absent */
	bool other_opt;		/* an option other than MSS, WS, NOP, EOL */
	const uint8_t *data;
	size_t dlen;
	bool csum_ok;
	uint64_t at;		/* when it was sent */
};

enum th_mode { TH_SINK, TH_ECHO, TH_ANSWER };

/* The upper layer's view of one connection. */
struct th_app {
	bool open;
	uint8_t *rx;
	size_t rxlen, rxcap;
	unsigned eofs;
	size_t sent;		/* answer bytes given to tcp_send */
	bool closed_sent;	/* tcp_close called */
	unsigned closes;	/* closed() calls since accept */
	enum tcp_end why;
};

struct th {
	struct tcp_engine *e;
	struct tcp_limits lim;
	uint64_t now;
	struct th_seg *q;
	size_t qrd, qwr, qcap;
	struct th_seg cur;
	/* upper layer */
	enum th_mode mode;
	uint8_t *answer_buf;		/* th_answer's, freed by th_fini */
	const uint8_t *answer;
	size_t answer_len;
	size_t request_len;		/* TH_ANSWER: answer once this many bytes came */
	bool close_after_answer;	/* tcp_close once the answer is queued */
	bool close_on_eof;		/* tcp_close from eof() */
	bool abort_on_recv;		/* tcp_abort from recv() */
	bool refuse;			/* accept() says no */
	struct th_app *apps;
	unsigned accepts, closed_cb, eof_cb, writable_cb;
	unsigned bad_closed;		/* closed() for a connection not open */
	unsigned bad_out;		/* malformed segments emitted */
	unsigned echo_short;		/* echo bytes the send ring refused */
	uint32_t last_conn;
	char why[200];
};

static inline uint16_t th_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint32_t
th_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void
th_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
th_put32(uint8_t *p, uint32_t v)
{
	th_put16(p, (uint16_t)(v >> 16));
	th_put16(p + 2, (uint16_t)v);
}

static inline void
th_app_append(struct th_app *a, const uint8_t *p, size_t n)
{
	if (a->rxlen + n > a->rxcap) {
		a->rxcap = (a->rxlen + n) * 2 + 256;
		a->rx = realloc(a->rx, a->rxcap);
	}
	memcpy(a->rx + a->rxlen, p, n);
	a->rxlen += n;
}

/* Parses what the engine emitted; false if malformed. */
static inline bool
th_parse(struct th_seg *s)
{
	size_t k;

	if (s->len < 20)
		return false;
	s->hdrlen = (size_t)(s->raw[12] >> 4) * 4;
	if (s->hdrlen < 20 || s->hdrlen > s->len)
		return false;
	s->sport = th_get16(s->raw);
	s->dport = th_get16(s->raw + 2);
	s->seq = th_get32(s->raw + 4);
	s->ack = th_get32(s->raw + 8);
	s->flags = s->raw[13];
	s->win = th_get16(s->raw + 14);
	s->mss = s->ws = -1;
	s->other_opt = false;
	for (k = 20; k < s->hdrlen;) {
		uint8_t kind = s->raw[k];

		if (kind == 0)
			break;
		if (kind == 1) {
			k++;
			continue;
		}
		if (k + 1 >= s->hdrlen || s->raw[k + 1] < 2 || k + s->raw[k + 1] > s->hdrlen)
			return false;
		if (kind == 2 && s->raw[k + 1] == 4)
			s->mss = th_get16(s->raw + k + 2);
		else if (kind == 3 && s->raw[k + 1] == 3)
			s->ws = s->raw[k + 2];
		else
			s->other_opt = true;
		k += s->raw[k + 1];
	}
	s->data = s->raw + s->hdrlen;
	s->dlen = s->len - s->hdrlen;
	return true;
}

static inline void
th_send_cb(void *ctx, const struct tcp_tuple *t, const uint8_t *hdr, size_t hdrlen,
	const uint8_t *payload, size_t len)
{
	struct th *h = ctx;
	struct th_seg *s;

	if (h->qwr == h->qcap) {
		h->qcap = h->qcap ? 2 * h->qcap : 64;
		h->q = realloc(h->q, h->qcap * sizeof(*h->q));
	}
	s = &h->q[h->qwr++];
	memset(s, 0, sizeof(*s));
	s->t = *t;
	s->len = hdrlen + len;
	s->raw = malloc(s->len);
	memcpy(s->raw, hdr, hdrlen);
	if (len)
		memcpy(s->raw + hdrlen, payload, len);
	s->at = h->now;
	s->csum_ok = tcp_checksum(t->local_ip, t->peer_ip, s->raw, s->len, NULL, 0) == 0;
	if (!th_parse(s) || !s->csum_ok || s->sport != t->local_port || s->dport != t->peer_port ||
		hdrlen > TCP_HDR_MAX || len > h->lim.mss || t->local_ip != TH_SERVER_IP ||
		((s->flags & TCPH_SYN) && (s->flags & TCPH_RST)) || s->other_opt ||
		(!(s->flags & TCPH_SYN) && (s->mss >= 0 || s->ws >= 0)))
		h->bad_out++;
}

static inline void th_answer_more(struct th *h, uint32_t conn);

static inline int
th_accept_cb(void *ctx, uint32_t conn, const struct tcp_tuple *t)
{
	struct th *h = ctx;
	struct th_app *a = &h->apps[conn];

	(void)t;
	if (h->refuse)
		return -1;
	if (a->open)
		h->bad_closed++;
	free(a->rx);
	memset(a, 0, sizeof(*a));
	a->open = true;
	h->accepts++;
	h->last_conn = conn;
	return 0;
}

static inline void
th_recv_cb(void *ctx, uint32_t conn, const uint8_t *data, size_t len)
{
	struct th *h = ctx;
	struct th_app *a = &h->apps[conn];

	if (!a->open)
		h->bad_closed++;
	th_app_append(a, data, len);
	if (h->abort_on_recv) {
		tcp_abort(h->e, conn);
		return;
	}
	if (h->mode == TH_ECHO) {
		long n = tcp_send(h->e, conn, data, len);

		if (n < (long)len)
			h->echo_short += (unsigned)(len - (n < 0 ? 0 : (size_t)n));
	} else if (h->mode == TH_ANSWER && a->rxlen >= h->request_len && a->sent == 0) {
		th_answer_more(h, conn);
	}
}

/* Queues what is left of the answer, then closes if asked to. */
static inline void
th_answer_more(struct th *h, uint32_t conn)
{
	struct th_app *a = &h->apps[conn];
	long n;

	if (a->sent < h->answer_len) {
		n = tcp_send(h->e, conn, h->answer + a->sent, h->answer_len - a->sent);
		if (n > 0)
			a->sent += (size_t)n;
	}
	if (a->sent == h->answer_len && h->close_after_answer && !a->closed_sent) {
		a->closed_sent = true;
		tcp_close(h->e, conn);
	}
}

static inline void
th_eof_cb(void *ctx, uint32_t conn)
{
	struct th *h = ctx;
	struct th_app *a = &h->apps[conn];

	if (!a->open)
		h->bad_closed++;
	a->eofs++;
	h->eof_cb++;
	if (h->close_on_eof && !a->closed_sent) {
		a->closed_sent = true;
		tcp_close(h->e, conn);
	}
}

static inline void
th_writable_cb(void *ctx, uint32_t conn, size_t room)
{
	struct th *h = ctx;

	(void)room;
	h->writable_cb++;
	if (h->mode == TH_ANSWER)
		th_answer_more(h, conn);
}

static inline void
th_closed_cb(void *ctx, uint32_t conn, enum tcp_end why)
{
	struct th *h = ctx;
	struct th_app *a = &h->apps[conn];

	if (!a->open)
		h->bad_closed++;
	a->open = false;
	a->closes++;
	a->why = why;
	h->closed_cb++;
	/* the engine must have forgotten it already */
	if (tcp_send(h->e, conn, "x", 1) != -1 || tcp_conn_tuple(h->e, conn) != NULL)
		h->bad_closed++;
}

static const struct tcp_ops th_ops = {
	.send = th_send_cb, .accept = th_accept_cb, .recv = th_recv_cb, .eof = th_eof_cb,
	.writable = th_writable_cb, .closed = th_closed_cb,
};

static const uint8_t th_key[16] = {
	0x5a, 0x17, 0x3c, 0x91, 0x04, 0xee, 0x28, 0x6b, 0xd3, 0x40, 0x7f, 0x12, 0xa8, 0x55, 0xc9, 0x0e,
};

static inline void
th_init(struct th *h, const struct tcp_limits *lim)
{
	memset(h, 0, sizeof(*h));
	h->lim = *lim;
	h->lim.checksum = true;
	h->now = 1000 * TH_SEC;
	h->e = tcp_engine_create(&h->lim, th_key, &th_ops, h);
	if (h->e == NULL) {
		printf("Bail out! tcp_engine_create failed\n");
		exit(1);
	}
	if (h->lim.mss == 0)
		h->lim.mss = 1460;	/* what the engine uses; th_send_cb checks it */
	h->apps = calloc(lim->max_conns, sizeof(*h->apps));
}

static inline struct th_seg *
th_pop(struct th *h)
{
	if (h->qrd == h->qwr) {
		h->qrd = h->qwr = 0;
		return NULL;
	}
	free(h->cur.raw);
	h->cur = h->q[h->qrd++];
	return &h->cur;
}

static inline size_t
th_queued(const struct th *h)
{
	return h->qwr - h->qrd;
}

static inline void
th_flush(struct th *h)
{
	while (th_pop(h) != NULL)
		;
}

static inline void
th_fini(struct th *h)
{
	tcp_engine_free(h->e);
	h->e = NULL;
	th_flush(h);
	free(h->cur.raw);
	h->cur.raw = NULL;
	free(h->q);
	for (uint32_t i = 0; i < h->lim.max_conns; i++)
		free(h->apps[i].rx);
	free(h->apps);
	free(h->answer_buf);
}

/* TH_ANSWER: len known bytes once request bytes came; returns them. */
static inline const uint8_t *
th_answer(struct th *h, size_t len, size_t request)
{
	free(h->answer_buf);
	h->answer_buf = malloc(len ? len : 1);
	for (size_t k = 0; k < len; k++)
		h->answer_buf[k] = (uint8_t)(k * 13 + (k >> 7));
	h->mode = TH_ANSWER;
	h->answer = h->answer_buf;
	h->answer_len = len;
	h->request_len = request;
	return h->answer_buf;
}

static inline void
th_advance(struct th *h, uint64_t ns)
{
	h->now += ns;
	tcp_tick(h->e, h->now);
}

/* Ticks in 1 ms steps until the engine emits something or max_ns passed;
 * returns the time waited. */
static inline uint64_t
th_wait(struct th *h, uint64_t max_ns)
{
	uint64_t waited = 0;

	while (th_queued(h) == 0 && waited < max_ns) {
		th_advance(h, TH_MS);
		waited += TH_MS;
	}
	return waited;
}

/* ---- a scripted peer ---- */

struct th_peer {
	uint32_t ip;
	uint16_t port;
	uint32_t isn;
	uint32_t snd_nxt;	/* next sequence we send */
	uint32_t rcv_nxt;	/* next sequence we expect from the server */
	uint32_t irs;		/* the server's ISS (its cookie) */
	uint16_t win;		/* window field we advertise */
	int mss;		/* MSS option in our SYN, -1 none */
	int ws;			/* window scale option in our SYN, -1 none */
	uint32_t conn;		/* the server's id for us */
	uint8_t *rx;		/* in-order bytes from the server */
	size_t rxlen, rxcap;
	bool got_fin;
};

static inline void
th_peer_init(struct th_peer *p, uint32_t id)
{
	memset(p, 0, sizeof(*p));
	p->ip = 0x0a010000u + id;
	p->port = (uint16_t)(30000 + id);
	p->isn = 0x10000000u * (id & 15) + 0x00abcdefu + id * 7919;
	p->snd_nxt = p->isn;
	p->win = 65535;
	p->mss = 1460;
	p->ws = -1;
	p->conn = UINT32_MAX;
}

static inline void
th_peer_free(struct th_peer *p)
{
	free(p->rx);
	p->rx = NULL;
}

/* Any segment from p: header fields, options bytes, payload. */
static inline void
th_in_raw(struct th *h, const struct th_peer *p, uint8_t flags, uint32_t seq, uint32_t ack,
	uint16_t win, const uint8_t *opt, size_t optlen, const void *data, size_t len)
{
	size_t hl = 20 + ((optlen + 3) & ~(size_t)3);
	uint8_t *b = calloc(1, hl + len + 1);

	th_put16(b, p->port);
	th_put16(b + 2, TH_PORT);
	th_put32(b + 4, seq);
	th_put32(b + 8, ack);
	b[12] = (uint8_t)((hl / 4) << 4);
	b[13] = flags;
	th_put16(b + 14, win);
	if (optlen)
		memcpy(b + 20, opt, optlen);
	if (len)
		memcpy(b + hl, data, len);
	th_put16(b + 16, tcp_checksum(p->ip, TH_SERVER_IP, b, hl + len, NULL, 0));
	tcp_input(h->e, h->now, p->ip, TH_SERVER_IP, b, hl + len);
	free(b);
}

static inline void
th_syn(struct th *h, struct th_peer *p)
{
	uint8_t opt[8];
	size_t n = 0;

	if (p->mss >= 0) {
		opt[n++] = 2;
		opt[n++] = 4;
		th_put16(opt + n, (uint16_t)p->mss);
		n += 2;
	}
	if (p->ws >= 0) {
		opt[n++] = 1;
		opt[n++] = 3;
		opt[n++] = 3;
		opt[n++] = (uint8_t)p->ws;
	}
	p->snd_nxt = p->isn + 1;
	th_in_raw(h, p, TCPH_SYN, p->isn, 0, p->win, opt, n, NULL, 0);
}

/* seg must be the SYN-ACK for p: takes the cookie. */
static inline bool
th_take_synack(struct th *h, struct th_peer *p, const struct th_seg *s)
{
	if (s == NULL || s->flags != (TCPH_SYN | TCPH_ACK) || s->ack != p->isn + 1 ||
		s->t.peer_ip != p->ip || s->dport != p->port) {
		snprintf(h->why, sizeof(h->why), "not a SYN-ACK for %u", p->port);
		return false;
	}
	p->irs = s->seq;
	p->rcv_nxt = s->seq + 1;
	return true;
}

static inline void
th_ack(struct th *h, struct th_peer *p)
{
	th_in_raw(h, p, TCPH_ACK, p->snd_nxt, p->rcv_nxt, p->win, NULL, 0, NULL, 0);
}

/* SYN, SYN-ACK, ACK. True if the engine accepted (nothing sent back). */
static inline bool
th_connect(struct th *h, struct th_peer *p)
{
	unsigned before = h->accepts;

	th_syn(h, p);
	if (!th_take_synack(h, p, th_pop(h)))
		return false;
	th_ack(h, p);
	if (h->accepts != before + 1)
		return false;
	p->conn = h->last_conn;
	return true;
}

static inline void
th_data(struct th *h, struct th_peer *p, uint8_t extra, const void *data, size_t len)
{
	th_in_raw(h, p, TCPH_ACK | TCPH_PSH | extra, p->snd_nxt, p->rcv_nxt, p->win, NULL, 0,
		data, len);
	p->snd_nxt += (uint32_t)len + !!(extra & TCPH_FIN);
}

static inline void
th_fin(struct th *h, struct th_peer *p)
{
	th_in_raw(h, p, TCPH_ACK | TCPH_FIN, p->snd_nxt, p->rcv_nxt, p->win, NULL, 0, NULL, 0);
	p->snd_nxt++;
}

/* Takes what s carries for p if in order; true if it advanced rcv_nxt. */
static inline bool
th_peer_take(struct th_peer *p, const struct th_seg *s)
{
	bool moved = false;

	if (s->seq == p->rcv_nxt && s->dlen != 0) {
		if (p->rxlen + s->dlen > p->rxcap) {
			p->rxcap = (p->rxlen + s->dlen) * 2 + 256;
			p->rx = realloc(p->rx, p->rxcap);
		}
		memcpy(p->rx + p->rxlen, s->data, s->dlen);
		p->rxlen += s->dlen;
		p->rcv_nxt += (uint32_t)s->dlen;
		moved = true;
	}
	if ((s->flags & TCPH_FIN) && s->seq + s->dlen == p->rcv_nxt && !p->got_fin) {
		p->got_fin = true;
		p->rcv_nxt++;
		moved = true;
	}
	return moved;
}

/*
 * Plays p against the engine: every segment for p is taken and ACKed
 * (one ACK per batch), the clock moves 1 ms when nothing is queued, until
 * nothing was emitted for idle_ns. Bounded by max_steps.
 */
static inline void
th_pump(struct th *h, struct th_peer *p, uint64_t idle_ns, unsigned max_steps)
{
	uint64_t quiet = 0;
	struct th_seg *s;

	th_ack(h, p);
	for (unsigned step = 0; step < max_steps && quiet < idle_ns; step++) {
		bool any = false;

		while ((s = th_pop(h)) != NULL) {
			if (s->t.peer_ip != p->ip || s->dport != p->port)
				continue;
			if (s->flags & TCPH_RST)
				return;
			th_peer_take(p, s);
			any = true;
		}
		if (any) {
			th_ack(h, p);
			quiet = 0;
			continue;
		}
		th_advance(h, TH_MS);
		quiet += TH_MS;
	}
}

/* The next segment must match; returns it (or NULL) and says why not. */
static inline struct th_seg *
th_expect(struct th *h, const struct th_peer *p, uint8_t flags, uint32_t seq, uint32_t ack,
	size_t dlen)
{
	struct th_seg *s = th_pop(h);

	if (s == NULL) {
		snprintf(h->why, sizeof(h->why), "no segment");
		return NULL;
	}
	if (s->t.peer_ip != p->ip || s->dport != p->port || s->flags != flags ||
		s->seq != seq || ((flags & TCPH_ACK) && s->ack != ack) || s->dlen != dlen) {
		snprintf(h->why, sizeof(h->why),
			"got flags %#x seq %u ack %u len %zu to port %u, want flags %#x seq %u "
			"ack %u len %zu to port %u", s->flags, s->seq, s->ack, s->dlen, s->dport,
			flags, seq, ack, dlen, p->port);
		return NULL;
	}
	h->why[0] = '\0';
	return s;
}

#endif
