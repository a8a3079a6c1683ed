/*
 * A fake world for the TFTP engine: an in-memory file store with reference
 * counts and generations (lookup/release), a datagram queue (send), a fake
 * clock, and a scripted client that fetches a file the way tftp-hpa or
 * atftp would, with knobs to lose or duplicate packets.
 */
#ifndef TESTS_TFTP_HARNESS_H
#define TESTS_TFTP_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tftp.h"

#define H_MAX_BLOBS 64
#define H_NONE UINT64_MAX

struct h_blob {
	char name[64];
	uint8_t *data;
	size_t len;
	uint64_t gen;
	int refs;
	bool live;		/* the store's current version of name */
};

struct h_pkt {
	struct tftp_peer to;
	uint16_t sport;
	size_t len;
	uint8_t *data;
};

struct h {
	struct tftp_engine *e;
	struct tftp_limits lim;
	uint64_t now;
	uint64_t gen;
	struct h_blob blobs[H_MAX_BLOBS];
	unsigned nblobs;
	struct h_pkt *q;
	size_t qrd, qwr, qcap;
	struct h_pkt cur;	/* the last popped datagram (q moves on realloc) */
	/* what the engine did */
	unsigned lookups, lookups_ok, releases, bad_releases;
	unsigned done_ok, done_fail;
	char done_name[TFTP_NAME_MAX + 1];
	uint64_t done_gen;
	unsigned sends, sends_data, sends_oack, sends_error;
	unsigned data_block0;	/* DATA with wire block 0 seen (rollover) */
	bool hdr_too_big;	/* hdr longer than the contract allows */
};

static inline uint16_t
h_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline struct h_blob *
h_find(struct h *h, const char *name)
{
	for (unsigned i = 0; i < h->nblobs; i++)
		if (h->blobs[i].live && strcmp(h->blobs[i].name, name) == 0)
			return &h->blobs[i];
	return NULL;
}

static inline void
h_blob_drop(struct h_blob *b)
{
	if (!b->live && b->refs == 0 && b->data != NULL) {
		free(b->data);
		b->data = NULL;
	}
}

/* Publishes a new generation of name; the old one lives while lent. */
static inline void
h_publish(struct h *h, const char *name, const uint8_t *data, size_t len)
{
	struct h_blob *old = h_find(h, name), *b = NULL;

	if (old != NULL) {
		old->live = false;
		h_blob_drop(old);
	}
	for (unsigned i = 0; i < h->nblobs; i++)
		if (!h->blobs[i].live && h->blobs[i].data == NULL && h->blobs[i].refs == 0)
			b = &h->blobs[i];
	if (b == NULL) {
		if (h->nblobs == H_MAX_BLOBS)
			abort();
		b = &h->blobs[h->nblobs++];
	}
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->data = malloc(len ? len : 1);
	if (len)
		memcpy(b->data, data, len);
	b->len = len;
	b->gen = ++h->gen;
	b->live = true;
}

static inline int
h_lookup(void *ctx, const char *name, struct tftp_file *f)
{
	struct h *h = ctx;
	struct h_blob *b;

	h->lookups++;
	if (strcmp(name, "forbidden.bin") == 0)
		return TFTP_ERR_ACCESS;
	if ((b = h_find(h, name)) == NULL)
		return TFTP_ERR_NOT_FOUND;
	b->refs++;
	h->lookups_ok++;
	f->data = b->data;
	f->len = b->len;
	f->generation = b->gen;
	f->ref = b;
	return 0;
}

static inline void
h_release(void *ctx, void *ref)
{
	struct h *h = ctx;
	struct h_blob *b = ref;

	h->releases++;
	if (b == NULL || b->refs <= 0) {
		h->bad_releases++;
		return;
	}
	b->refs--;
	h_blob_drop(b);
}

static inline void
h_send(void *ctx, const struct tftp_peer *to, uint16_t src_port,
	const uint8_t *hdr, size_t hdrlen, const uint8_t *body, size_t bodylen)
{
	struct h *h = ctx;
	struct h_pkt *p;

	if (h->qwr == h->qcap) {
		h->qcap = h->qcap ? 2 * h->qcap : 64;
		h->q = realloc(h->q, h->qcap * sizeof(*h->q));
	}
	p = &h->q[h->qwr++];
	p->to = *to;
	p->sport = src_port;
	p->len = hdrlen + bodylen;
	p->data = malloc(p->len ? p->len : 1);
	memcpy(p->data, hdr, hdrlen);
	if (bodylen)
		memcpy(p->data + hdrlen, body, bodylen);
	h->sends++;
	if (hdrlen >= 2) {
		switch (h_get16(hdr)) {
		case TFTP_DATA:
			h->sends_data++;
			if (hdrlen >= 4 && h_get16(hdr + 2) == 0)
				h->data_block0++;
			if (hdrlen > 4 + (size_t)TFTP_MAX_BLKSIZE)
				h->hdr_too_big = true;
			break;
		case TFTP_OACK: h->sends_oack++; break;
		case TFTP_ERROR: h->sends_error++; break;
		}
	}
}

static inline void
h_done(void *ctx, const char *name, const struct tftp_peer *peer, uint64_t gen, bool ok)
{
	struct h *h = ctx;

	(void)peer;
	if (ok)
		h->done_ok++;
	else
		h->done_fail++;
	snprintf(h->done_name, sizeof(h->done_name), "%s", name);
	h->done_gen = gen;
}

static const struct tftp_ops h_ops = {
	.lookup = h_lookup, .release = h_release, .send = h_send, .done = h_done,
};

static inline void
h_init(struct h *h, const struct tftp_limits *lim)
{
	memset(h, 0, sizeof(*h));
	h->lim = *lim;
	h->now = 1000000000ull;
	h->e = tftp_engine_create(lim, &h_ops, h);
	if (h->e == NULL) {
		printf("Bail out! tftp_engine_create failed\n");
		exit(1);
	}
}

/* Oldest queued datagram (caller frees ->data), or NULL; valid until the
 * next h_pop. */
static inline struct h_pkt *
h_pop(struct h *h)
{
	if (h->qrd == h->qwr) {
		h->qrd = h->qwr = 0;
		return NULL;
	}
	h->cur = h->q[h->qrd++];
	return &h->cur;
}

static inline void
h_flush(struct h *h)
{
	struct h_pkt *p;

	while ((p = h_pop(h)) != NULL)
		free(p->data);
}

static inline size_t
h_queued(const struct h *h)
{
	return h->qwr - h->qrd;
}

static inline void
h_fini(struct h *h)
{
	tftp_engine_free(h->e);
	h->e = NULL;
	h_flush(h);
	free(h->q);
	for (unsigned i = 0; i < h->nblobs; i++)
		free(h->blobs[i].data);
}

/* RRQ/WRQ: op name mode { opt value } ...; opts is NULL-terminated. */
static inline size_t
h_req(uint8_t *buf, size_t cap, uint16_t op, const char *name, const char *mode,
	const char *const *opts)
{
	size_t n = 2;

	buf[0] = (uint8_t)(op >> 8);
	buf[1] = (uint8_t)op;
	for (const char *s = name; ; s = NULL) {
		const char *str = s != NULL ? s : mode;
		size_t l = strlen(str) + 1;

		if (n + l > cap)
			abort();
		memcpy(buf + n, str, l);
		n += l;
		if (s == NULL)
			break;
	}
	for (; opts != NULL && *opts != NULL; opts++) {
		size_t l = strlen(*opts) + 1;

		if (n + l > cap)
			abort();
		memcpy(buf + n, *opts, l);
		n += l;
	}
	return n;
}

static inline void
h_input(struct h *h, const struct tftp_peer *from, uint16_t port, const uint8_t *p, size_t len)
{
	tftp_input(h->e, h->now, from, port, p, len);
}

static inline void
h_ack(struct h *h, const struct tftp_peer *from, uint16_t port, uint16_t block)
{
	uint8_t b[4] = { 0, TFTP_ACK, (uint8_t)(block >> 8), (uint8_t)block };

	h_input(h, from, port, b, 4);
}

static inline void
h_advance(struct h *h, uint64_t ns)
{
	h->now += ns;
	tftp_tick(h->e, h->now);
}

/* The first queued datagram must be an ERROR to peer: returns its code or -1. */
static inline int
h_expect_error(struct h *h, const struct tftp_peer *peer, char *msg, size_t msgsz)
{
	struct h_pkt *p = h_pop(h);
	int code = -1;

	if (p == NULL)
		return -1;
	if (p->len >= 5 && h_get16(p->data) == TFTP_ERROR && p->to.ip == peer->ip &&
		p->to.port == peer->port && p->data[p->len - 1] == 0) {
		code = h_get16(p->data + 2);
		if (msg != NULL)
			snprintf(msg, msgsz, "%s", (const char *)p->data + 4);
	}
	free(p->data);
	return code;
}

/* ---- the scripted client ---- */

struct h_client {
	struct tftp_peer peer;
	const char *name;
	const char *mode;
	const char *const *opts;
	/* behaviour */
	uint64_t drop_data;	/* absolute block whose first DATA is lost */
	uint64_t drop_ack;	/* absolute block whose first ACK is lost (0 = OACK's) */
	unsigned ack_copies;	/* each ACK sent this many times (default 1) */
	bool oack_error8;	/* answer the OACK with ERROR 8 */
	bool mute;		/* never answer */
	/* results */
	uint16_t sport;
	uint32_t blksize;
	uint32_t window;
	uint64_t next;		/* next absolute block expected */
	unsigned inwin;
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool got_oack;
	uint8_t oack[512];
	size_t oacklen;
	bool finished;
	int error;		/* ERROR code received, -1 none */
	char errmsg[128];
	unsigned data_rx, unexpected_rx, acks_tx, stray;
	bool dropped_data, dropped_ack;
};

static inline void
h_client_init(struct h_client *c, uint32_t id, const char *name, const char *mode,
	const char *const *opts)
{
	memset(c, 0, sizeof(*c));
	c->peer.ip = 0x0a000000u + id;
	c->peer.port = (uint16_t)(40000 + id);
	c->name = name;
	c->mode = mode;
	c->opts = opts;
	c->drop_ack = H_NONE;
	c->ack_copies = 1;
	c->blksize = TFTP_DEFAULT_BLKSIZE;
	c->window = 1;
	c->next = 1;
	c->error = -1;
}

static inline void
h_client_free(struct h_client *c)
{
	free(c->buf);
	c->buf = NULL;
}

static inline void
h_client_ack(struct h *h, struct h_client *c, uint64_t abs)
{
	if (abs == c->drop_ack && !c->dropped_ack) {
		c->dropped_ack = true;
		return;
	}
	for (unsigned k = 0; k < c->ack_copies; k++) {
		c->acks_tx++;
		h_ack(h, &c->peer, c->sport, (uint16_t)abs);
	}
}

/* The value of option name in the OACK, or NULL. */
static inline const char *
h_oack_get(const struct h_client *c, const char *name)
{
	size_t pos = 2;

	while (pos < c->oacklen) {
		const char *k = (const char *)c->oack + pos;
		const char *v = k + strlen(k) + 1;

		if ((size_t)(v - (const char *)c->oack) >= c->oacklen)
			return NULL;
		if (strcmp(k, name) == 0)
			return v;
		pos = (size_t)(v - (const char *)c->oack) + strlen(v) + 1;
	}
	return NULL;
}

static inline void
h_client_data(struct h *h, struct h_client *c, const uint8_t *p, size_t len)
{
	uint16_t b = h_get16(p + 2);
	uint64_t abs = c->next + (uint64_t)(int64_t)(int16_t)(uint16_t)(b - (uint16_t)c->next);
	size_t n = len - 4;

	c->data_rx++;
	if (abs == c->drop_data && !c->dropped_data) {
		c->dropped_data = true;
		return;
	}
	if (abs != c->next || c->finished) {
		/* a duplicate or a block after a gap: ack what we have */
		c->unexpected_rx++;
		c->inwin = 0;
		h_client_ack(h, c, c->next - 1);
		return;
	}
	if (c->buf == NULL || c->len + n > c->cap) {
		c->cap = (c->len + n) * 2 + 1024;
		c->buf = realloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, p + 4, n);
	c->len += n;
	c->next++;
	c->inwin++;
	if (n < c->blksize) {
		c->finished = true;
		h_client_ack(h, c, abs);
	} else if (c->inwin >= c->window) {
		c->inwin = 0;
		h_client_ack(h, c, abs);
	}
}

static inline void
h_client_oack(struct h *h, struct h_client *c, const uint8_t *p, size_t len)
{
	const char *v;

	c->got_oack = true;
	c->oacklen = len < sizeof(c->oack) ? len : sizeof(c->oack);
	memcpy(c->oack, p, c->oacklen);
	if ((v = h_oack_get(c, "blksize")) != NULL)
		c->blksize = (uint32_t)atoi(v);
	if ((v = h_oack_get(c, "windowsize")) != NULL)
		c->window = (uint32_t)atoi(v);
	if (c->oack_error8) {
		static const uint8_t e8[] = { 0, 5, 0, 8, 'n', 'o', 0 };

		c->finished = true;
		h_input(h, &c->peer, c->sport, e8, sizeof(e8));
		return;
	}
	h_client_ack(h, c, 0);
}

static inline void
h_client_packet(struct h *h, struct h_client *c, const struct h_pkt *p)
{
	uint16_t op;

	if (p->to.ip != c->peer.ip || p->to.port != c->peer.port || p->len < 4) {
		c->stray++;
		return;
	}
	if (c->sport == 0)
		c->sport = p->sport;	/* the server's TID */
	if (p->sport != c->sport) {
		c->stray++;
		return;
	}
	op = h_get16(p->data);
	if (op == TFTP_ERROR && c->finished) {
		/* e.g. ERROR 5 for a duplicate of our final ACK: we are gone */
		c->stray++;
		return;
	}
	if (op == TFTP_ERROR) {
		c->error = h_get16(p->data + 2);
		snprintf(c->errmsg, sizeof(c->errmsg), "%.*s", (int)(p->len - 4),
			(const char *)p->data + 4);
		return;
	}
	if (c->mute)
		return;
	if (op == TFTP_OACK && c->next == 1 && !c->got_oack)
		h_client_oack(h, c, p->data, p->len);
	else if (op == TFTP_DATA)
		h_client_data(h, c, p->data, p->len);
	else
		c->stray++;
}

/*
 * Sends the RRQ and plays the client until it has the file (or an
 * ERROR) and the engine has nothing in flight. When the queue runs dry
 * the clock jumps past the retransmission timeout. Bounded by steps.
 */
static inline void
h_client_run(struct h *h, struct h_client *c, unsigned long max_steps)
{
	uint8_t req[TFTP_MAX_REQUEST];
	size_t n = h_req(req, sizeof(req), TFTP_RRQ, c->name, c->mode, c->opts);
	uint64_t idle_ns = (uint64_t)(h->lim.timeout_ms ? h->lim.timeout_ms : 1000) * 1000000ull;
	struct h_pkt *p;

	h_input(h, &c->peer, TFTP_PORT, req, n);
	for (unsigned long step = 0; step < max_steps; step++) {
		if ((p = h_pop(h)) != NULL) {
			h_client_packet(h, c, p);
			free(p->data);
			continue;
		}
		if ((c->finished || c->error >= 0) && tftp_active(h->e) == 0)
			break;
		if (tftp_active(h->e) == 0 && !c->finished && c->error < 0 && c->mute)
			break;
		/* nothing in flight: wait for the server's (longest) timeout */
		h_advance(h, c->got_oack && h_oack_get(c, "timeout") ?
			(uint64_t)atoi(h_oack_get(c, "timeout")) * 1000000000ull + 1 : idle_ns + 1);
	}
}

#endif
