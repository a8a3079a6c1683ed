/*
 * The TCP server engine of dataplane/tcp.c, driven packetdrill style:
 * every segment in and out is written down with its exact sequence
 * numbers, flags and lengths, on a fake clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tcp.h"
#include "tcp_harness.h"

static const struct tcp_limits deflim = {
	.port = TH_PORT, .max_conns = 16, .mss = 1460, .rcv_wnd = 8192, .snd_buf = 16384,
	.ooo_ranges = 4, .retries = 6, .rto_init_ms = 1000, .rto_min_ms = 200,
	.rto_max_ms = 16000, .idle_ms = 30000, .fin_ms = 10000, .time_wait_ms = 2000,
};


/* The byte a peer sends at sequence number s, so any misplaced byte shows. */
static inline uint8_t
pat(uint32_t s)
{
	return (uint8_t)((s ^ (s >> 8) ^ (s >> 16)) * 31u + 7u);
}

static void
pat_fill(uint8_t *b, uint32_t seq, size_t n)
{
	for (size_t k = 0; k < n; k++)
		b[k] = pat(seq + (uint32_t)k);
}

static bool
pat_match(const uint8_t *b, uint32_t seq, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (b[k] != pat(seq + (uint32_t)k))
			return false;
	return true;
}

static struct th_seg *
expect(struct th *h, const struct th_peer *p, uint8_t flags, uint32_t seq, uint32_t ack,
	size_t dlen, const char *what)
{
	struct th_seg *s = th_expect(h, p, flags, seq, ack, dlen);

	if (!ok(s != NULL, "%s", what))
		diag("%s", h->why);
	return s;
}

static void
nothing(struct th *h, const char *what)
{
	struct th_seg *s;

	if (!ok(th_queued(h) == 0, "%s: nothing sent", what)) {
		while ((s = th_pop(h)) != NULL)
			diag("  sent flags %#x seq %u ack %u len %zu", s->flags, s->seq, s->ack, s->dlen);
	}
}

/* Sends the peer's data at its snd_nxt with pattern bytes. */
static void
send_pat(struct th *h, struct th_peer *p, uint8_t extra, size_t n)
{
	uint8_t *b = malloc(n + 1);

	pat_fill(b, p->snd_nxt, n);
	th_data(h, p, extra, b, n);
	free(b);
}

/* Pattern bytes at any sequence, without moving the peer's snd_nxt. */
static void
send_pat_at(struct th *h, struct th_peer *p, uint8_t flags, uint32_t seq, size_t n)
{
	uint8_t *b = malloc(n + 1);

	pat_fill(b, seq, n);
	th_in_raw(h, p, flags, seq, p->rcv_nxt, p->win, NULL, 0, b, n);
	free(b);
}

/* The engine's books must balance and its structures hold together. */
static void
check_books(struct th *h, const char *what)
{
	const struct tcp_stats *st = tcp_stats(h->e);
	unsigned visible = 0, mism = 0;
	char why[256] = "";
	int rc = tcp_engine_check(h->e, why, sizeof(why));

	if (!ok(rc == 0, "%s: engine structures consistent", what))
		diag("%s", why);
	is_int(st->established, st->closed + st->reset_rcvd + st->timeouts + st->aborts +
		tcp_active(h->e), "%s: established == ended + active", what);
	is_int(h->accepts, st->established, "%s: every accepted handshake counted", what);
	for (uint32_t i = 0; i < h->lim.max_conns; i++) {
		bool vis = tcp_conn_tuple(h->e, i) != NULL;

		visible += vis;
		mism += vis != h->apps[i].open;
	}
	is_int(mism, 0, "%s: the upper layer's open set is the engine's", what);
	is_int(h->closed_cb, h->accepts - visible, "%s: closed() once per finished connection", what);
	is_int(h->bad_closed, 0, "%s: no callback for a forgotten connection", what);
	is_int(h->bad_out, 0, "%s: every segment emitted well formed, checksum right", what);
}

/* waited is want_ms, give or take the wheel's ~1 ms slots */
static bool
about(uint64_t waited, uint64_t want_ms)
{
	return waited >= want_ms * TH_MS && waited <= (want_ms + 3) * TH_MS;
}

/* A fresh engine with one peer connected. */
static void
setup1(struct th *h, const struct tcp_limits *l, struct th_peer *p, uint32_t id)
{
	th_init(h, l);
	th_peer_init(p, id);
	ok(th_connect(h, p), "peer %u connects", id);
}

static void
teardown1(struct th *h, struct th_peer *p, const char *what)
{
	check_books(h, what);
	th_peer_free(p);
	th_fini(h);
}

/* ---- primitives ---- */

static void
test_siphash_checksum(void)
{
	uint8_t key[16], msg[64];
	uint8_t seg[24] = { 0 };
	uint32_t sum = 0;
	uint16_t c;

	for (int k = 0; k < 16; k++)
		key[k] = (uint8_t)k;
	for (int k = 0; k < 64; k++)
		msg[k] = (uint8_t)k;
	/* the reference vectors of the SipHash paper (vectors.h) */
	ok(tcp_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull, "siphash-2-4: empty message");
	ok(tcp_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull, "siphash-2-4: 15 bytes");
	ok(tcp_siphash24(key, msg, 8) == 0x93f5f5799a932462ull, "siphash-2-4: 8 bytes");

	/* checksum against a plain word sum, odd payload included */
	th_put16(seg, 2445);
	th_put16(seg + 2, 40000);
	th_put32(seg + 4, 0x01020304);
	seg[12] = 0x50;
	seg[13] = TCPH_ACK;
	seg[20] = 'a';
	seg[21] = 'b';
	seg[22] = 'c';
	c = tcp_checksum(0x0a000001, 0xc0a80102, seg, 20, seg + 20, 3);
	sum = 0x0a00 + 0x0001 + 0xc0a8 + 0x0102 + 6 + 23;
	for (int k = 0; k < 24; k += 2)
		sum += (uint32_t)(seg[k] << 8 | seg[k + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	is_int(c, (uint16_t)~sum, "tcp_checksum equals the word sum of pseudo-header and segment");
	th_put16(seg + 16, c);
	is_int(tcp_checksum(0x0a000001, 0xc0a80102, seg, 23, NULL, 0), 0,
		"a segment carrying its checksum sums to 0");
}

static void
test_create(void)
{
	struct tcp_limits l = deflim;
	struct tcp_engine *e;

	l.max_conns = 0;
	ok(tcp_engine_create(&l, th_key, &th_ops, NULL) == NULL, "max_conns 0 refused");
	l = deflim;
	l.port = 0;
	ok(tcp_engine_create(&l, th_key, &th_ops, NULL) == NULL, "port 0 refused");
	l = deflim;
	e = tcp_engine_create(&l, th_key, &th_ops, NULL);
	ok(e != NULL && tcp_active(e) == 0, "created with defaults");
	ok(e != NULL && tcp_send(e, 3, "x", 1) == -1 && tcp_close(e, 3) == -1 &&
		tcp_abort(e, 99) == -1 && tcp_conn_tuple(e, 3) == NULL,
		"calls on free or unknown connections fail");
	tcp_engine_free(e);
}

/* Zero limits mean the defaults of tcp.h. */
static void
test_defaults(void)
{
	struct tcp_limits l = { .port = TH_PORT, .max_conns = 2 };
	struct th h;
	struct th_peer p;
	struct th_seg *s;
	uint64_t w;

	th_init(&h, &l);
	th_peer_init(&p, 7);
	th_syn(&h, &p);
	s = th_pop(&h);
	ok(s != NULL && s->mss == 1460 && s->win == 8192, "defaults: MSS 1460, window 8192");
	ok(th_take_synack(&h, &p, s), "SYN-ACK");
	th_ack(&h, &p);
	is_int(tcp_send(h.e, h.last_conn, "0123456789", 10), 10, "send");
	th_flush(&h);
	w = th_wait(&h, 5 * TH_SEC);
	ok(about(w, 1000), "default initial RTO 1 s (%llu ms)", (unsigned long long)(w / TH_MS));
	th_fini(&h);
	th_peer_free(&p);
}

/* ---- handshake ---- */

static void
test_handshake(void)
{
	struct th h;
	struct th_peer p, q;
	struct th_seg *s;
	uint32_t cookie;
	const struct tcp_stats *st;
	const struct tcp_tuple *t;

	th_init(&h, &deflim);
	st = tcp_stats(h.e);
	th_peer_init(&p, 1);
	p.ws = 7;
	th_syn(&h, &p);
	s = th_pop(&h);
	ok(s != NULL && s->flags == (TCPH_SYN | TCPH_ACK) && s->ack == p.isn + 1,
		"SYN answered by SYN-ACK acking isn + 1");
	ok(s != NULL && s->mss == 1460 && s->ws == 0 && s->win == 8192 && s->dlen == 0,
		"SYN-ACK: MSS 1460, window scale 0 (the SYN had one), window 8192, no data");
	cookie = s != NULL ? s->seq : 0;
	is_int(tcp_active(h.e), 0, "a SYN allocates nothing");
	is_int(st->syn_rcvd, 1, "syn_rcvd");
	is_int(st->cookies_sent, 1, "cookies_sent");
	th_syn(&h, &p);
	s = th_pop(&h);
	ok(s != NULL && s->seq == cookie, "a retransmitted SYN gets the same cookie");
	p.irs = cookie;
	p.rcv_nxt = cookie + 1;
	th_ack(&h, &p);
	nothing(&h, "handshake ACK");
	is_int(tcp_active(h.e), 1, "the ACK with a good cookie allocates the connection");
	is_int(h.accepts, 1, "accept() called");
	is_int(st->cookies_ok, 1, "cookies_ok");
	is_int(st->established, 1, "established");
	t = tcp_conn_tuple(h.e, h.last_conn);
	ok(t != NULL && t->peer_ip == p.ip && t->peer_port == p.port && t->local_ip == TH_SERVER_IP &&
		t->local_port == TH_PORT, "the connection has the peer's 4-tuple");

	th_peer_init(&q, 2);
	th_syn(&h, &q);
	s = th_pop(&h);
	ok(s != NULL && s->hdrlen == 24 && s->ws == -1 && s->mss == 1460,
		"no window scale in the SYN: none in the SYN-ACK (MSS only)");
	ok(s != NULL && s->seq != cookie, "another 4-tuple gets another cookie");
	check_books(&h, "handshake");
	th_peer_free(&p);
	th_peer_free(&q);
	th_fini(&h);
}

static void
test_bad_cookie(void)
{
	struct th h;
	struct th_peer p, other;
	const struct tcp_stats *st;
	uint32_t ck;

	th_init(&h, &deflim);
	st = tcp_stats(h.e);
	th_peer_init(&p, 3);
	th_syn(&h, &p);
	ok(th_take_synack(&h, &p, th_pop(&h)), "SYN-ACK");
	ck = p.irs;

	/* a wrong cookie: RST <SEQ=SEG.ACK>, the RFC 9293 LISTEN answer */
	th_in_raw(&h, &p, TCPH_ACK, p.isn + 1, (ck ^ 1) + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, (ck ^ 1) + 1, 0, 0, "bad MAC: RST at the ACK's number");
	th_in_raw(&h, &p, TCPH_ACK, p.isn + 2, ck + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, ck + 1, 0, 0, "client ISN changed: RST");
	th_in_raw(&h, &p, TCPH_ACK, p.isn + 1, (ck ^ (1u << 27)) + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, (ck ^ (1u << 27)) + 1, 0, 0, "MSS bits forged: RST");
	th_in_raw(&h, &p, TCPH_ACK, p.isn + 1, (ck ^ (1u << 30)) + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, (ck ^ (1u << 30)) + 1, 0, 0, "counter bits forged: RST");
	th_peer_init(&other, 4);
	other.isn = p.isn;
	th_in_raw(&h, &other, TCPH_ACK, p.isn + 1, ck + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &other, TCPH_RST, ck + 1, 0, 0, "the cookie of another 4-tuple: RST");
	is_int(st->cookies_bad, 5, "five bad cookies counted");
	is_int(tcp_active(h.e), 0, "nothing allocated");

	/* age: valid one counter period later, stale two periods later */
	th_advance(&h, TCP_COOKIE_PERIOD_NS);
	th_ack(&h, &p);
	nothing(&h, "a cookie one period old");
	is_int(tcp_active(h.e), 1, "a cookie one period old still opens");
	th_peer_init(&other, 5);
	th_syn(&h, &other);
	ok(th_take_synack(&h, &other, th_pop(&h)), "SYN-ACK for the stale test");
	th_advance(&h, 2 * TCP_COOKIE_PERIOD_NS);
	tcp_abort(h.e, h.last_conn);	/* keep the idle timer out of it */
	th_flush(&h);
	th_ack(&h, &other);
	expect(&h, &other, TCPH_RST, other.irs + 1, 0, 0, "a cookie two periods old: RST");
	is_int(st->cookies_bad, 6, "stale cookie counted bad");
	check_books(&h, "bad cookie");
	th_peer_free(&p);
	th_peer_free(&other);
	th_fini(&h);
}

static void
test_rst_in_handshake(void)
{
	struct th h;
	struct th_peer p;
	const struct tcp_stats *st;

	th_init(&h, &deflim);
	st = tcp_stats(h.e);
	th_peer_init(&p, 6);
	th_syn(&h, &p);
	ok(th_take_synack(&h, &p, th_pop(&h)), "SYN-ACK");
	th_in_raw(&h, &p, TCPH_RST, p.isn + 1, 0, 0, NULL, 0, NULL, 0);
	nothing(&h, "RST after our SYN-ACK");
	is_int(tcp_active(h.e), 0, "RST mid-handshake: nothing to free");
	is_int(st->rst_ignored, 1, "counted as an ignored RST");
	is_int(h.accepts, 0, "no accept");
	/* a SYN with FIN is malformed; a SYN-ACK to the listener gets RST */
	th_in_raw(&h, &p, TCPH_SYN | TCPH_FIN, p.isn, 0, 100, NULL, 0, NULL, 0);
	nothing(&h, "SYN+FIN");
	th_in_raw(&h, &p, TCPH_SYN | TCPH_ACK, p.isn, 777, 100, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, 777, 0, 0, "SYN-ACK to a listener: RST");
	th_in_raw(&h, &p, TCPH_FIN, p.isn, 0, 100, NULL, 0, NULL, 0);
	nothing(&h, "a bare FIN to the listener");
	is_int(st->bad_segments, 3, "three bad segments");
	teardown1(&h, &p, "rst in handshake");
}

/* ---- segmentation, windows ---- */

/* The answer's segments as the peer sees them, all at once. */
static void
check_segments(struct th *h, struct th_peer *p, const uint8_t *ans, size_t anslen,
	const size_t *lens, size_t n, uint32_t ack, const char *what)
{
	uint32_t seq = p->irs + 1 + (uint32_t)p->rxlen;
	size_t off = p->rxlen;

	for (size_t k = 0; k < n; k++) {
		/* PSH marks the segment that empties the send ring */
		uint8_t fl = TCPH_ACK | (off + lens[k] == anslen ? TCPH_PSH : 0);
		char msg[128];
		struct th_seg *s;

		snprintf(msg, sizeof(msg), "%s: segment %zu of %zu bytes", what, k + 1, lens[k]);
		s = expect(h, p, fl, seq, ack, lens[k], msg);
		if (s != NULL && memcmp(s->data, ans + off, lens[k]) != 0)
			ok(0, "%s: segment %zu bytes", what, k + 1);
		if (s != NULL)
			th_peer_take(p, s);
		seq += (uint32_t)lens[k];
		off += lens[k];
	}
}

static void
mss_case(int peer_mss, uint16_t our_mss, const size_t *lens, size_t n, const char *what)
{
	struct th h;
	struct th_peer p;
	struct tcp_limits l = deflim;
	const uint8_t *ans;
	struct th_seg *s;

	l.mss = our_mss;
	th_init(&h, &l);
	ans = th_answer(&h, 3000, 10);
	th_peer_init(&p, 10);
	p.mss = peer_mss;
	th_syn(&h, &p);
	s = th_pop(&h);
	ok(s != NULL && s->mss == our_mss, "%s: SYN-ACK advertises our MSS %u", what, our_mss);
	ok(th_take_synack(&h, &p, s), "%s: SYN-ACK", what);
	th_ack(&h, &p);
	send_pat(&h, &p, 0, 10);
	check_segments(&h, &p, ans, 3000, lens, n, p.snd_nxt, what);
	nothing(&h, what);
	th_pump(&h, &p, 10 * TH_MS, 10000);
	ok(p.rxlen == 3000 && memcmp(p.rx, ans, 3000) == 0, "%s: the answer arrives whole", what);
	check_books(&h, what);
	th_peer_free(&p);
	th_fini(&h);
}

static void
test_mss(void)
{
	static const size_t l536[] = { 536, 536, 536, 536, 536, 320 };
	static const size_t l1220[] = { 1220, 1220, 560 };
	static const size_t l1460[] = { 1460, 1460, 80 };
	static const size_t l1200[] = { 1200, 1200, 600 };
	static const size_t l64[] = { 64, 64, 64, 64, 64, 64, 64, 64, 64, 64 };

	mss_case(536, 1460, l536, 6, "peer MSS 536");
	mss_case(1300, 1460, l1220, 3, "peer MSS 1300 rounds down to 1220");
	mss_case(1460, 1460, l1460, 3, "peer MSS 1460");
	mss_case(-1, 1460, l536, 6, "no MSS option: 536");
	mss_case(1460, 1200, l1200, 3, "our MSS 1200 caps a peer's 1460");
	/* a tiny MSS is floored at 64; the initial window is 10 segments */
	mss_case(40, 1460, l64, 10, "peer MSS 40: 64-byte floor, IW10");
}

static void
test_window(void)
{
	struct th h;
	struct th_peer p;
	const uint8_t *ans;
	static const size_t first[] = { 1460, 1460, 1080 };

	th_init(&h, &deflim);
	ans = th_answer(&h, 6000, 10);

	/* window scale 2: a window field of 1000 means 4000 bytes */
	th_peer_init(&p, 11);
	p.ws = 2;
	p.win = 1000;
	ok(th_connect(&h, &p), "connect with window scale 2");
	send_pat(&h, &p, 0, 10);
	check_segments(&h, &p, ans, 6000, first, 3, p.snd_nxt, "scaled window 4000");
	nothing(&h, "window full");
	th_ack(&h, &p);
	expect(&h, &p, TCPH_ACK, p.irs + 1 + 4000, p.snd_nxt, 1460, "window reopened: 1460");
	expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1 + 5460, p.snd_nxt, 540, "and the last 540");
	th_peer_free(&p);

	/* no window scale: the field is taken as is */
	th_peer_init(&p, 12);
	p.win = 1000;
	ok(th_connect(&h, &p), "connect without window scale");
	send_pat(&h, &p, 0, 10);
	expect(&h, &p, TCPH_ACK, p.irs + 1, p.snd_nxt, 1000, "unscaled window 1000: one 1000-byte segment");
	nothing(&h, "window of 1000 full");
	teardown1(&h, &p, "window");
}

static void
test_initial_window(void)
{
	struct th h;
	struct th_peer p;
	struct tcp_limits l = deflim;
	const uint8_t *ans;
	unsigned n = 0;
	struct th_seg *s;

	l.snd_buf = 32768;
	setup1(&h, &l, &p, 13);
	ans = th_answer(&h, 20000, 1);
	send_pat(&h, &p, 0, 1);
	while ((s = th_pop(&h)) != NULL) {
		n++;
		th_peer_take(&p, s);
	}
	is_int(n, 10, "RFC 6928: ten segments in the first flight");
	is_int(p.rxlen, 14600, "14600 bytes in flight");
	th_ack(&h, &p);
	n = 0;
	while ((s = th_pop(&h)) != NULL) {
		n++;
		th_peer_take(&p, s);
	}
	is_int(n, 4, "the rest (5400 bytes) after one ACK: slow start grew the window");
	ok(p.rxlen == 20000 && memcmp(p.rx, ans, 20000) == 0, "20000 bytes in order");
	th_peer_free(&p);
	th_fini(&h);
}

/* ---- data in ---- */

static void
test_echo(void)
{
	struct th h;
	struct th_peer p;
	struct th_seg *s;
	uint32_t start;

	setup1(&h, &deflim, &p, 20);
	h.mode = TH_ECHO;
	th_data(&h, &p, 0, "hello", 5);
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.isn + 6, 5,
		"echo: one segment carries the bytes and the ACK");
	ok(s != NULL && memcmp(s->data, "hello", 5) == 0, "echoed bytes");
	nothing(&h, "no separate ACK");
	if (s != NULL)
		th_peer_take(&p, s);
	th_ack(&h, &p);
	nothing(&h, "pure ACK of our data");
	start = p.snd_nxt;
	send_pat(&h, &p, 0, 1460);
	send_pat(&h, &p, 0, 1000);
	th_pump(&h, &p, 50 * TH_MS, 10000);
	ok(p.rxlen == 5 + 2460 && pat_match(p.rx + 5, start, 2460), "2460 more bytes echoed in order");
	ok(h.apps[p.conn].rxlen == 2465, "the upper layer got every byte once");
	is_int(tcp_stats(h.e)->retransmits, 0, "no retransmission");
	teardown1(&h, &p, "echo");
}

static void
test_reorder(void)
{
	struct th h;
	struct th_peer p;
	struct th_app *a;
	const struct tcp_stats *st;
	uint32_t base;

	setup1(&h, &deflim, &p, 21);
	st = tcp_stats(h.e);
	a = &h.apps[p.conn];
	base = p.snd_nxt;
	send_pat_at(&h, &p, TCPH_ACK, base + 100, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base, 0, "segment 2 first: duplicate ACK of rcv_nxt");
	is_int(a->rxlen, 0, "nothing delivered across the gap");
	send_pat_at(&h, &p, TCPH_ACK, base + 200, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base, 0, "segment 3: duplicate ACK again");
	is_int(st->ooo_queued, 2, "two segments queued");
	send_pat_at(&h, &p, TCPH_ACK, base, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 300, 0, "segment 1 fills the gap: ACK of all 300");
	ok(a->rxlen == 300 && pat_match(a->rx, base, 300), "300 bytes delivered in order");

	/* ranges: 4 allowed; a fifth disjoint one is dropped and re-ACKed */
	base += 300;
	for (uint32_t k = 1; k <= 5; k++) {
		send_pat_at(&h, &p, TCPH_ACK, base + k * 200, 100);
		expect(&h, &p, TCPH_ACK, p.irs + 1, base, 0, "gap segment: duplicate ACK");
	}
	is_int(st->ooo_dropped, 1, "the fifth range is dropped");
	send_pat_at(&h, &p, TCPH_ACK, base, 200);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 300, 0, "gap filled: ACK up to the first hole");
	send_pat_at(&h, &p, TCPH_ACK, base + 300, 700);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 1000, 0, "filling over queued ranges: ACK to the dropped one");
	send_pat_at(&h, &p, TCPH_ACK, base + 1000, 200);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 1200, 0, "dropped segment resent");
	ok(a->rxlen == 1500 && pat_match(a->rx, base - 300, 1500), "1500 bytes, all in order");

	/* beyond the window: trimmed to it */
	base += 1200;
	send_pat_at(&h, &p, TCPH_ACK, base + 8000, 1000);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base, 0, "segment straddling the window end: ACK");
	send_pat_at(&h, &p, TCPH_ACK, base + 9000, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base, 0, "segment beyond the window: ACK");
	send_pat_at(&h, &p, TCPH_ACK, base + 9100, 100);
	nothing(&h, "another within 10 ms: no ACK (storm guard)");
	th_advance(&h, 10 * TH_MS);
	send_pat_at(&h, &p, TCPH_ACK, base + 9100, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base, 0, "10 ms later: ACK again");
	send_pat_at(&h, &p, TCPH_ACK, base, 1460);
	for (uint32_t k = 1460; k < 8000; k += 1460) {
		uint32_t n = 8000 - k < 1460 ? 8000 - k : 1460;

		th_flush(&h);
		send_pat_at(&h, &p, TCPH_ACK, base + k, n);
	}
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 8192, 0, "the kept part up to the window's end arrives");
	ok(a->rxlen == 1500 + 8192 && pat_match(a->rx + 1500, base, 8192), "8192 bytes in order");
	is_int(st->out_of_window, 4, "four segments counted out of window");
	teardown1(&h, &p, "reorder");
}

static void
test_duplicates(void)
{
	struct th h;
	struct th_peer p;
	struct th_app *a;
	const struct tcp_stats *st;
	uint32_t base;

	setup1(&h, &deflim, &p, 22);
	st = tcp_stats(h.e);
	a = &h.apps[p.conn];
	base = p.snd_nxt;
	send_pat_at(&h, &p, TCPH_ACK, base, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 100, 0, "segment 1: ACK");
	send_pat_at(&h, &p, TCPH_ACK, base, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 100, 0, "segment 1 again: ACK");
	is_int(a->rxlen, 100, "delivered once");
	is_int(st->dup_segments, 1, "duplicate counted");
	send_pat_at(&h, &p, TCPH_ACK, base + 50, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 150, 0, "overlap: ACK of the new part");
	ok(a->rxlen == 150 && pat_match(a->rx, base, 150), "overlap trimmed: 150 bytes in order");
	send_pat_at(&h, &p, TCPH_ACK, base + 300, 100);
	send_pat_at(&h, &p, TCPH_ACK, base + 300, 100);
	send_pat_at(&h, &p, TCPH_ACK, base + 320, 40);
	th_flush(&h);
	is_int(st->ooo_queued, 1, "a queued segment duplicated is not queued twice");
	is_int(st->dup_segments, 4, "overlap, queued duplicate and queued subset counted");
	send_pat_at(&h, &p, TCPH_ACK, base + 250, 100);
	th_flush(&h);
	send_pat_at(&h, &p, TCPH_ACK, base + 150, 100);
	expect(&h, &p, TCPH_ACK, p.irs + 1, base + 400, 0, "overlapping queued ranges merge");
	ok(a->rxlen == 400 && pat_match(a->rx, base, 400), "400 bytes in order");
	teardown1(&h, &p, "duplicates");
}

static void
test_trickle(void)
{
	struct th h;
	struct th_peer p;
	const uint8_t *ans;
	struct th_seg *s;
	bool acks_ok = true;

	setup1(&h, &deflim, &p, 23);
	ans = th_answer(&h, 20, 50);
	for (int k = 0; k < 49; k++) {
		send_pat(&h, &p, 0, 1);
		s = th_pop(&h);
		acks_ok &= s != NULL && s->flags == TCPH_ACK && s->ack == p.snd_nxt && s->dlen == 0;
	}
	ok(acks_ok, "49 one-byte segments: each ACKed at once, exactly");
	send_pat(&h, &p, 0, 1);
	expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 20, "the 50th byte: the answer carries the ACK");
	ok(h.apps[p.conn].rxlen == 50 && pat_match(h.apps[p.conn].rx, p.isn + 1, 50), "50 bytes in order");
	th_peer_free(&p);

	/* the other way: the peer's window is one byte */
	th_peer_init(&p, 24);
	p.win = 1;
	ok(th_connect(&h, &p), "connect with a 1-byte window");
	send_pat(&h, &p, 0, 50);
	acks_ok = true;
	for (int k = 0; k < 20; k++) {
		s = th_pop(&h);
		acks_ok &= s != NULL && s->seq == p.irs + 1 + (uint32_t)k && s->dlen == 1 &&
			s->data[0] == ans[k] && th_queued(&h) == 0;
		if (s != NULL)
			th_peer_take(&p, s);
		th_ack(&h, &p);
	}
	ok(acks_ok, "window 1: twenty one-byte segments, one per ACK");
	nothing(&h, "trickle done");
	teardown1(&h, &p, "trickle");
}

/* ---- loss ---- */

static void
test_rto(void)
{
	struct th h;
	struct th_peer p;
	uint64_t w;
	const struct tcp_stats *st;
	struct th_seg *s;

	setup1(&h, &deflim, &p, 30);
	st = tcp_stats(h.e);
	th_answer(&h, 1000, 10);
	send_pat(&h, &p, 0, 10);
	expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 1000, "answer sent (and lost)");
	w = th_wait(&h, 10 * TH_SEC);
	ok(about(w, 1000), "first retransmission after the initial RTO of 1 s (%llu ms)",
		(unsigned long long)(w / TH_MS));
	expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 1000, "same segment again");
	w = th_wait(&h, 10 * TH_SEC);
	ok(about(w, 2000), "backoff: 2 s (%llu ms)", (unsigned long long)(w / TH_MS));
	th_flush(&h);
	w = th_wait(&h, 10 * TH_SEC);
	ok(about(w, 4000), "backoff: 4 s (%llu ms)", (unsigned long long)(w / TH_MS));
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 1000, "third copy");
	if (s != NULL)
		th_peer_take(&p, s);
	is_int(st->retransmits, 3, "three retransmissions");
	is_int(st->rto_expired, 3, "three RTO expiries");
	th_ack(&h, &p);
	w = th_wait(&h, 20 * TH_SEC);
	ok(w == 20 * TH_SEC, "acknowledged: nothing more for 20 s");

	/* Karn: no sample from those; a clean exchange of 10 ms gives one,
	 * and the RTO falls to the 200 ms floor */
	h.apps[p.conn].sent = 0;
	h.apps[p.conn].rxlen = 0;
	send_pat(&h, &p, 0, 10);
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1001, p.snd_nxt, 1000, "second answer");
	if (s != NULL)
		th_peer_take(&p, s);
	th_advance(&h, 10 * TH_MS);
	th_ack(&h, &p);
	h.apps[p.conn].sent = 0;
	h.apps[p.conn].rxlen = 0;
	send_pat(&h, &p, 0, 10);
	expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 2001, p.snd_nxt, 1000, "third answer (lost)");
	w = th_wait(&h, 10 * TH_SEC);
	ok(about(w, 200), "after a 10 ms RTT sample the RTO is the 200 ms floor (%llu ms)",
		(unsigned long long)(w / TH_MS));
	teardown1(&h, &p, "rto");
}

static void
test_lost_ack(void)
{
	struct th h;
	struct th_peer p;
	struct th_seg *s;
	uint64_t w;

	th_init(&h, &deflim);
	th_answer(&h, 1000, 10);

	/* the handshake's ACK is lost: the request itself completes it */
	th_peer_init(&p, 31);
	th_syn(&h, &p);
	ok(th_take_synack(&h, &p, th_pop(&h)), "SYN-ACK");
	send_pat(&h, &p, 0, 10);
	is_int(h.accepts, 1, "the request's ACK carries the cookie: accepted");
	p.conn = h.last_conn;
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 1000, "answer");
	if (s != NULL)
		th_peer_take(&p, s);

	/* the peer's ACK of the answer is lost: we resend, it re-ACKs */
	w = th_wait(&h, 10 * TH_SEC);
	ok(about(w, 1000), "retransmission after 1 s");
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 1000, "the same answer again");
	ok(s != NULL && !th_peer_take(&p, s), "the peer sees a duplicate");
	th_ack(&h, &p);
	w = th_wait(&h, 10 * TH_SEC);
	ok(w == 10 * TH_SEC, "then quiet");
	is_int(h.apps[p.conn].sent, 1000, "the upper layer sent once");
	is_int(p.rxlen, 1000, "the peer has the answer once");
	teardown1(&h, &p, "lost ack");
}

static void
test_fast_retransmit(void)
{
	struct th h;
	struct th_peer p;
	struct th_seg *s;
	const struct tcp_stats *st;

	setup1(&h, &deflim, &p, 32);
	st = tcp_stats(h.e);
	th_answer(&h, 5000, 1);
	send_pat(&h, &p, 0, 1);
	is_int(th_queued(&h), 4, "four segments");
	th_flush(&h);	/* the first is lost, the peer keeps the others */
	for (int k = 0; k < 3; k++) {
		th_ack(&h, &p);
		if (k < 2)
			nothing(&h, "duplicate ACK 1-2");
	}
	s = expect(&h, &p, TCPH_ACK, p.irs + 1, p.snd_nxt, 1460, "third duplicate ACK: segment 1 again at once");
	is_int(st->fast_retransmits, 1, "fast retransmit counted");
	if (s != NULL)
		th_peer_take(&p, s);
	p.rcv_nxt = p.irs + 1 + 5000;	/* the peer had kept the others */
	th_ack(&h, &p);
	nothing(&h, "all acknowledged");
	is_int(tcp_conn_unacked(h.e, p.conn), 0, "nothing unacknowledged");
	th_peer_free(&p);
	th_fini(&h);
}

static void
test_zero_window(void)
{
	struct th h;
	struct th_peer p;
	const uint8_t *ans;
	const struct tcp_stats *st;
	uint64_t w;
	static const size_t lens[] = { 1460, 1460, 80 };

	setup1(&h, &deflim, &p, 33);
	st = tcp_stats(h.e);
	ans = th_answer(&h, 3000, 10);
	p.win = 0;
	send_pat(&h, &p, 0, 10);
	expect(&h, &p, TCPH_ACK, p.irs + 1, p.snd_nxt, 0, "window 0: only the ACK of the request");
	w = th_wait(&h, 10 * TH_SEC);
	ok(about(w, 1000), "persist timer fires after 1 s (%llu ms)", (unsigned long long)(w / TH_MS));
	expect(&h, &p, TCPH_ACK, p.irs, p.snd_nxt, 0, "zero-window probe: ACK one below snd_una");
	th_ack(&h, &p);
	nothing(&h, "window still 0");
	w = th_wait(&h, 10 * TH_SEC);
	ok(about(w, 2000), "next probe backed off to 2 s (%llu ms)", (unsigned long long)(w / TH_MS));
	expect(&h, &p, TCPH_ACK, p.irs, p.snd_nxt, 0, "second probe");
	is_int(st->probes, 2, "two probes");
	is_int(st->retransmits, 0, "probes are not retransmissions");
	p.win = 65535;
	th_ack(&h, &p);
	check_segments(&h, &p, ans, 3000, lens, 3, p.snd_nxt, "window opened");
	th_ack(&h, &p);
	ok(p.rxlen == 3000 && memcmp(p.rx, ans, 3000) == 0, "answer complete");

	/* a window that never opens is reaped by the idle timer, not kept */
	h.apps[p.conn].sent = 0;
	h.apps[p.conn].rxlen = 0;
	p.win = 0;
	send_pat(&h, &p, 0, 10);
	th_flush(&h);
	for (int k = 0; k < 100 && tcp_active(h.e) == 1; k++) {
		th_wait(&h, 20 * TH_SEC);
		th_flush(&h);
		th_ack(&h, &p);
		th_flush(&h);
	}
	is_int(tcp_active(h.e), 0, "a peer that keeps its window shut is reaped");
	is_int(st->timeouts, 1, "as a timeout");
	teardown1(&h, &p, "zero window");
}

static void
test_retries(void)
{
	struct th h;
	struct th_peer p;
	struct tcp_limits l = deflim;
	static const uint64_t gaps[] = { 1000, 2000, 4000, 8000, 16000, 16000, 16000 };
	bool gaps_ok = true;
	uint64_t w;
	struct th_seg *s;

	l.idle_ms = 600000;
	setup1(&h, &l, &p, 34);
	th_answer(&h, 1000, 10);
	send_pat(&h, &p, 0, 10);
	th_flush(&h);
	for (int k = 0; k < 7; k++) {
		w = th_wait(&h, 60 * TH_SEC);
		s = th_pop(&h);
		if (k < 6)
			gaps_ok &= about(w, gaps[k]) && s != NULL && s->dlen == 1000;
		else
			gaps_ok &= about(w, gaps[k]) && s != NULL &&
				s->flags == (TCPH_RST | TCPH_ACK) && s->seq == p.irs + 1001;
	}
	ok(gaps_ok, "retransmissions after 1, 2, 4, 8, 16, 16 s (16 s cap), then RST");
	is_int(tcp_active(h.e), 0, "connection aborted");
	is_int(h.apps[p.conn].why, TCP_END_TIMEOUT, "closed(TIMEOUT)");
	is_int(tcp_stats(h.e)->timeouts, 1, "timeouts");
	is_int(tcp_stats(h.e)->retransmits, 6, "six retransmissions");
	teardown1(&h, &p, "retries");
}

/* ---- closing ---- */

static void
test_close_peer_first(void)
{
	struct th h;
	struct th_peer p;
	struct th_seg *s;

	setup1(&h, &deflim, &p, 40);
	th_answer(&h, 500, 10);
	h.close_on_eof = true;
	send_pat(&h, &p, 0, 10);
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 500, "answer");
	if (s != NULL)
		th_peer_take(&p, s);
	th_fin(&h, &p);
	expect(&h, &p, TCPH_ACK | TCPH_FIN, p.irs + 501, p.snd_nxt, 0,
		"peer FIN: eof(), close, our FIN acks theirs in one segment");
	is_int(h.apps[p.conn].eofs, 1, "eof() once");
	p.rcv_nxt++;
	th_ack(&h, &p);
	nothing(&h, "LAST_ACK acked");
	is_int(tcp_active(h.e), 0, "freed at once: no TIME_WAIT when the peer closes first");
	is_int(h.apps[p.conn].why, TCP_END_CLOSED, "closed(CLOSED)");
	is_int(tcp_stats(h.e)->closed, 1, "closed counted");
	th_peer_free(&p);

	/* request and FIN in one segment */
	th_peer_init(&p, 41);
	ok(th_connect(&h, &p), "connect");
	send_pat(&h, &p, TCPH_FIN, 10);
	expect(&h, &p, TCPH_ACK | TCPH_PSH | TCPH_FIN, p.irs + 1, p.snd_nxt, 500,
		"request+FIN: answer+FIN in one segment");
	p.rcv_nxt += 501;
	th_ack(&h, &p);
	is_int(tcp_active(h.e), 0, "freed");
	th_peer_free(&p);

	/* a FIN beyond a gap waits for the gap */
	th_peer_init(&p, 42);
	h.mode = TH_SINK;
	ok(th_connect(&h, &p), "connect");
	send_pat_at(&h, &p, TCPH_ACK | TCPH_FIN, p.snd_nxt + 10, 10);
	expect(&h, &p, TCPH_ACK, p.irs + 1, p.snd_nxt, 0, "data+FIN after a gap: duplicate ACK");
	is_int(h.apps[p.conn].eofs, 0, "no eof yet");
	send_pat_at(&h, &p, TCPH_ACK, p.snd_nxt, 10);
	expect(&h, &p, TCPH_ACK | TCPH_FIN, p.irs + 1, p.snd_nxt + 21, 0,
		"gap filled: 20 bytes, the FIN, and our FIN (closed on eof)");
	ok(h.apps[p.conn].rxlen == 20 && h.apps[p.conn].eofs == 1, "20 bytes then eof");
	teardown1(&h, &p, "peer first");
}

/*
 * A late copy of a segment that carries a valid cookie (the handshake ACK
 * or the first data segment; with two workers, the copy handed over a
 * ring after the connection has closed) must not re-create a connection
 * that already ended: RST, counted in cookies_bad, nothing allocated.
 */
static void
test_late_duplicate(void)
{
	struct th h;
	struct th_peer p;
	struct th_seg *s;
	const struct tcp_stats *st;
	uint32_t isn, ck, bad0;
	uint8_t req[10];

	th_init(&h, &deflim);
	st = tcp_stats(h.e);
	th_answer(&h, 500, 10);
	h.close_on_eof = true;
	th_peer_init(&p, 60);
	th_syn(&h, &p);
	ok(th_take_synack(&h, &p, th_pop(&h)), "SYN-ACK");
	isn = p.isn;
	ck = p.irs;
	/* the handshake ACK is delayed: the request completes the handshake */
	pat_fill(req, p.snd_nxt, sizeof(req));
	th_data(&h, &p, 0, req, sizeof(req));
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH, ck + 1, p.snd_nxt, 500,
		"the request opens the connection and gets the answer");
	if (s != NULL)
		th_peer_take(&p, s);
	p.conn = h.last_conn;
	th_fin(&h, &p);
	expect(&h, &p, TCPH_ACK | TCPH_FIN, ck + 501, p.snd_nxt, 0, "peer FIN: our FIN");
	p.rcv_nxt++;
	th_ack(&h, &p);
	nothing(&h, "LAST_ACK acked");
	is_int(tcp_active(h.e), 0, "the transaction is over, the slot freed");
	is_int(st->established, 1, "one connection");
	bad0 = (uint32_t)st->cookies_bad;

	/* now the delayed handshake ACK, then a copy of the request */
	th_advance(&h, 3 * TH_MS);
	th_in_raw(&h, &p, TCPH_ACK, isn + 1, ck + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, ck + 1, 0, 0, "late handshake ACK: RST at its ACK number");
	th_in_raw(&h, &p, TCPH_ACK | TCPH_PSH, isn + 1, ck + 1, 65535, NULL, 0, req, sizeof(req));
	expect(&h, &p, TCPH_RST, ck + 1, 0, 0, "late first data segment: RST");
	is_int(tcp_active(h.e), 0, "no connection re-created");
	is_int(st->established, 1, "still one connection");
	is_int(st->cookies_ok, 1, "the late copies are not good cookies");
	is_int(st->cookies_bad, bad0 + 2, "both counted in cookies_bad");
	ok(h.apps[p.conn].rxlen == 10, "the upper layer saw the request once");

	/* the cookie itself is still valid: only this incarnation is refused */
	th_advance(&h, TCP_COOKIE_PERIOD_NS);
	th_in_raw(&h, &p, TCPH_ACK, isn + 1, ck + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, ck + 1, 0, 0, "a period later: still RST");
	is_int(tcp_active(h.e), 0, "still nothing re-created");
	th_peer_free(&p);

	/* a new incarnation from the same 4-tuple (new ISN) opens */
	th_peer_init(&p, 60);
	p.isn = isn + 100000;
	p.snd_nxt = p.isn;
	ok(th_connect(&h, &p), "a new incarnation of the 4-tuple connects");
	is_int(tcp_active(h.e), 1, "and holds a slot");
	tcp_abort(h.e, p.conn);
	th_flush(&h);

	/* the same after a reaped connection and after TIME_WAIT */
	th_peer_free(&p);
	th_peer_init(&p, 61);
	ok(th_connect(&h, &p), "connect, then say nothing");
	isn = p.isn;
	ck = p.irs;
	th_advance(&h, 31000 * TH_MS);
	th_flush(&h);
	is_int(tcp_active(h.e), 0, "reaped by the idle timer");
	th_in_raw(&h, &p, TCPH_ACK, isn + 1, ck + 1, 65535, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_RST, ck + 1, 0, 0, "late handshake ACK of a reaped connection: RST");
	is_int(tcp_active(h.e), 0, "not re-created");
	check_books(&h, "late duplicate");
	th_peer_free(&p);
	th_fini(&h);
}

static void
test_close_we_first(void)
{
	struct th h;
	struct th_peer p;
	struct th_seg *s;
	uint32_t conn;
	uint64_t w;

	setup1(&h, &deflim, &p, 43);
	th_answer(&h, 500, 10);
	h.close_after_answer = true;
	conn = p.conn;
	send_pat(&h, &p, 0, 10);
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH | TCPH_FIN, p.irs + 1, p.snd_nxt, 500,
		"answer then close: the FIN rides on the data");
	if (s != NULL)
		th_peer_take(&p, s);
	th_ack(&h, &p);
	nothing(&h, "FIN_WAIT_2");
	ok(tcp_active(h.e) == 1 && h.apps[conn].closes == 0, "FIN_WAIT_2 holds the slot, still open");
	th_fin(&h, &p);
	expect(&h, &p, TCPH_ACK, p.irs + 502, p.snd_nxt, 0, "peer FIN acked");
	ok(tcp_active(h.e) == 1 && h.apps[conn].closes == 1 && h.apps[conn].why == TCP_END_CLOSED,
		"TIME_WAIT: slot held, closed() already told");
	ok(tcp_conn_tuple(h.e, conn) == NULL && tcp_abort(h.e, conn) == -1,
		"a TIME_WAIT connection is invisible to the upper layer");
	th_advance(&h, 1500 * TH_MS);
	th_in_raw(&h, &p, TCPH_ACK | TCPH_FIN, p.snd_nxt - 1, p.rcv_nxt, p.win, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_ACK, p.irs + 502, p.snd_nxt, 0, "retransmitted FIN: ACKed again");
	for (w = 0; tcp_active(h.e) != 0 && w < 10 * TH_SEC; w += TH_MS)
		th_advance(&h, TH_MS);
	ok(tcp_active(h.e) == 0 && about(w, 2000), "TIME_WAIT restarted, ends 2 s later (%llu ms)",
		(unsigned long long)(w / TH_MS));
	nothing(&h, "TIME_WAIT end is silent");
	is_int(tcp_stats(h.e)->closed, 1, "closed counted at the end of TIME_WAIT");
	th_peer_free(&p);

	/* simultaneous close: CLOSING then TIME_WAIT */
	th_peer_init(&p, 44);
	ok(th_connect(&h, &p), "connect");
	send_pat(&h, &p, 0, 10);
	s = expect(&h, &p, TCPH_ACK | TCPH_PSH | TCPH_FIN, p.irs + 1, p.snd_nxt, 500, "answer+FIN");
	th_in_raw(&h, &p, TCPH_ACK | TCPH_FIN, p.snd_nxt, p.irs + 501, p.win, NULL, 0, NULL, 0);
	p.snd_nxt++;
	expect(&h, &p, TCPH_ACK, p.irs + 502, p.snd_nxt, 0, "crossing FINs: we ACK theirs (CLOSING)");
	ok(tcp_active(h.e) == 1 && h.apps[p.conn].closes == 0, "CLOSING: still open");
	th_in_raw(&h, &p, TCPH_ACK, p.snd_nxt, p.irs + 502, p.win, NULL, 0, NULL, 0);
	ok(h.apps[p.conn].closes == 1 && tcp_active(h.e) == 1, "our FIN acked: TIME_WAIT");

	/* three in TIME_WAIT; the middle one ended by an exact RST */
	{
		struct th_peer t[3];
		char why[256] = "";

		for (int k = 0; k < 3; k++) {
			th_peer_init(&t[k], 45 + (uint32_t)k);
			ok(th_connect(&h, &t[k]), "connect %d", k);
			send_pat(&h, &t[k], 0, 10);
			th_flush(&h);
			t[k].rcv_nxt = t[k].irs + 502;
			th_in_raw(&h, &t[k], TCPH_ACK | TCPH_FIN, t[k].snd_nxt, t[k].rcv_nxt, 100, NULL, 0,
				NULL, 0);
			t[k].snd_nxt++;
			th_flush(&h);
		}
		is_int(tcp_active(h.e), 4, "three more in TIME_WAIT");
		th_in_raw(&h, &t[1], TCPH_RST, t[1].snd_nxt, 0, 0, NULL, 0, NULL, 0);
		is_int(tcp_active(h.e), 3, "an exact RST ends the middle TIME_WAIT");
		ok(tcp_engine_check(h.e, why, sizeof(why)) == 0, "TIME_WAIT list intact (%s)", why);
		for (int k = 0; k < 3; k++)
			th_peer_free(&t[k]);
	}

	/* a new SYN on the same 4-tuple ends TIME_WAIT */
	p.isn += 100000;
	th_syn(&h, &p);
	s = th_pop(&h);
	ok(s != NULL && s->flags == (TCPH_SYN | TCPH_ACK) && s->ack == p.isn + 1,
		"SYN in TIME_WAIT: a new handshake");
	is_int(tcp_active(h.e), 2, "that TIME_WAIT slot is gone (two others wait)");
	teardown1(&h, &p, "we first");
}

/* ---- resets ---- */

static void
test_rst(void)
{
	struct th h;
	struct th_peer p;
	const struct tcp_stats *st;

	setup1(&h, &deflim, &p, 50);
	st = tcp_stats(h.e);
	th_in_raw(&h, &p, TCPH_RST, p.snd_nxt + 100, 0, 0, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_ACK, p.irs + 1, p.snd_nxt, 0, "RST in window, not exact: challenge ACK");
	is_int(tcp_active(h.e), 1, "connection kept");
	th_in_raw(&h, &p, TCPH_RST, p.snd_nxt + 200, 0, 0, NULL, 0, NULL, 0);
	nothing(&h, "a second one within 10 ms: rate limited");
	th_advance(&h, 10 * TH_MS);
	th_in_raw(&h, &p, TCPH_RST, p.snd_nxt + 200, 0, 0, NULL, 0, NULL, 0);
	expect(&h, &p, TCPH_ACK, p.irs + 1, p.snd_nxt, 0, "10 ms later: challenge ACK again");
	th_in_raw(&h, &p, TCPH_RST, p.snd_nxt + 100000, 0, 0, NULL, 0, NULL, 0);
	th_in_raw(&h, &p, TCPH_RST | TCPH_ACK, p.snd_nxt - 1, p.rcv_nxt, 0, NULL, 0, NULL, 0);
	nothing(&h, "RSTs out of window");
	is_int(st->challenge_acks, 2, "two challenge ACKs");
	is_int(st->rst_ignored, 5, "five RSTs ignored");
	th_advance(&h, 10 * TH_MS);
	th_syn(&h, &p);
	expect(&h, &p, TCPH_ACK, p.irs + 1, p.isn + 1, 0, "SYN on a live connection: challenge ACK");
	is_int(tcp_active(h.e), 1, "connection kept");
	th_in_raw(&h, &p, TCPH_RST | TCPH_ACK, p.isn + 1, p.rcv_nxt, 0, NULL, 0, NULL, 0);
	nothing(&h, "exact RST");
	is_int(tcp_active(h.e), 0, "exact RST frees the connection");
	is_int(h.apps[p.conn].why, TCP_END_RESET, "closed(RESET)");
	is_int(st->reset_rcvd, 1, "reset_rcvd");
	th_peer_free(&p);

	/* the upper layer aborts from inside recv() */
	th_peer_init(&p, 51);
	ok(th_connect(&h, &p), "connect");
	h.abort_on_recv = true;
	send_pat(&h, &p, 0, 10);
	expect(&h, &p, TCPH_RST | TCPH_ACK, p.irs + 1, p.snd_nxt, 0, "tcp_abort in recv(): RST");
	ok(tcp_active(h.e) == 0 && h.apps[p.conn].why == TCP_END_ABORT, "closed(ABORT)");
	is_int(st->aborts, 1, "aborts");
	h.abort_on_recv = false;
	th_ack(&h, &p);
	expect(&h, &p, TCPH_RST, p.rcv_nxt, 0, 0, "a segment for the aborted connection: RST");
	teardown1(&h, &p, "rst");
}

/* ---- pressure ---- */

static void
test_syn_flood(void)
{
	struct th h;
	struct th_peer p, f;
	struct tcp_limits l = deflim;
	unsigned synacks = 0;
	struct th_seg *s;

	l.max_conns = 4;
	th_init(&h, &l);
	th_answer(&h, 100, 10);
	for (uint32_t k = 0; k < 100000; k++) {
		th_peer_init(&f, 1000 + k);
		f.ip = 0x0b000000u + (uint32_t)(tap_prng() & 0xffffff);
		f.port = (uint16_t)(1024 + tap_prng() % 60000);
		f.isn = (uint32_t)tap_prng();
		th_syn(&h, &f);
		s = th_pop(&h);
		synacks += s != NULL && s->flags == (TCPH_SYN | TCPH_ACK) && s->ack == f.isn + 1;
		if ((k & 8191) == 0)
			th_advance(&h, TH_MS);
	}
	is_int(synacks, 100000, "100000 SYNs, 100000 SYN-ACKs");
	is_int(tcp_active(h.e), 0, "and not one slot taken");
	is_int(tcp_stats(h.e)->cookies_sent, 100000, "cookies_sent");
	th_peer_init(&p, 60);
	ok(th_connect(&h, &p), "a real client still connects");
	send_pat(&h, &p, 0, 10);
	expect(&h, &p, TCPH_ACK | TCPH_PSH, p.irs + 1, p.snd_nxt, 100, "and gets its answer");
	teardown1(&h, &p, "syn flood");
}

static void
test_table_full(void)
{
	struct th h;
	struct th_peer p[6];
	struct tcp_limits l = deflim;
	const struct tcp_stats *st;

	l.max_conns = 2;
	th_init(&h, &l);
	st = tcp_stats(h.e);
	for (uint32_t k = 0; k < 6; k++)
		th_peer_init(&p[k], 70 + k);
	ok(th_connect(&h, &p[0]) && th_connect(&h, &p[1]), "two connections fill the table");
	th_syn(&h, &p[2]);
	ok(th_take_synack(&h, &p[2], th_pop(&h)), "a third SYN still gets a cookie");
	th_ack(&h, &p[2]);
	expect(&h, &p[2], TCPH_RST, p[2].irs + 1, 0, 0, "its ACK: RST, table full");
	is_int(st->table_full, 1, "table_full");
	is_int(tcp_active(h.e), 2, "two slots in use");

	/* the peer closes p[0]: its slot is free at once */
	h.close_on_eof = true;
	th_fin(&h, &p[0]);
	expect(&h, &p[0], TCPH_ACK | TCPH_FIN, p[0].irs + 1, p[0].snd_nxt, 0, "p0 closes");
	p[0].rcv_nxt++;
	th_ack(&h, &p[0]);
	ok(th_connect(&h, &p[2]), "then the third connects");

	/* we close p[1] first: TIME_WAIT, recycled under pressure */
	th_answer(&h, 100, 10);
	h.close_after_answer = true;
	send_pat(&h, &p[1], 0, 10);
	expect(&h, &p[1], TCPH_ACK | TCPH_PSH | TCPH_FIN, p[1].irs + 1, p[1].snd_nxt, 100, "p1 answered and closed");
	p[1].rcv_nxt += 101;
	th_fin(&h, &p[1]);
	expect(&h, &p[1], TCPH_ACK, p[1].irs + 102, p[1].snd_nxt, 0, "p1 in TIME_WAIT");
	ok(th_connect(&h, &p[3]), "a fourth connects into the TIME_WAIT slot");
	is_int(st->tw_recycled, 1, "tw_recycled");
	is_int(st->table_full, 1, "no refusal");

	/* the upper layer refuses */
	h.refuse = true;
	th_syn(&h, &p[4]);
	ok(th_take_synack(&h, &p[4], th_pop(&h)), "SYN-ACK");
	th_ack(&h, &p[4]);
	expect(&h, &p[4], TCPH_RST, p[4].irs + 1, 0, 0, "table full, no TIME_WAIT: RST");
	is_int(st->table_full, 2, "table_full again");
	tcp_abort(h.e, p[3].conn);
	th_flush(&h);
	th_ack(&h, &p[4]);
	expect(&h, &p[4], TCPH_RST, p[4].irs + 1, 0, 0, "accept() says no: RST");
	is_int(st->refused, 1, "refused");
	is_int(tcp_active(h.e), 1, "no slot kept for it");
	h.refuse = false;
	check_books(&h, "table full");
	for (uint32_t k = 0; k < 6; k++)
		th_peer_free(&p[k]);
	th_fini(&h);
}

/* ---- per-source bounds (issue 10) ---- */

/* A peer of address ip, port 20000 + k. */
static void
peer_at(struct th_peer *p, uint32_t id, uint32_t ip)
{
	th_peer_init(p, id);
	p->ip = ip;
	p->port = (uint16_t)(20000 + id);
}

static void
test_per_source(void)
{
	enum { N = 7 };
	const uint32_t x = 0x0a050005u;
	struct th h;
	struct th_peer p[N], q;
	struct tcp_limits l = deflim;
	const struct tcp_stats *st;

	l.max_per_source = 4;
	l.max_unready_per_source = 2;
	th_init(&h, &l);
	st = tcp_stats(h.e);
	for (uint32_t k = 0; k < N; k++)
		peer_at(&p[k], 80 + k, x);
	ok(th_connect(&h, &p[0]) && th_connect(&h, &p[1]), "two handshakes from one address");
	th_syn(&h, &p[2]);
	expect(&h, &p[2], TCPH_RST | TCPH_ACK, 0, p[2].isn + 1, 0,
		"a third SYN while 2 are unready: RST, no cookie");
	is_int(st->refused_unready_per_source, 1, "refused_unready_per_source");
	is_int(st->cookies_sent, 2, "no SYN-ACK for it");

	tcp_conn_ready(h.e, p[0].conn);
	tcp_conn_ready(h.e, p[0].conn);	/* idempotent */
	ok(th_connect(&h, &p[2]), "one ready: the third connects");
	th_syn(&h, &p[3]);
	expect(&h, &p[3], TCPH_RST | TCPH_ACK, 0, p[3].isn + 1, 0,
		"ready twice counted once: still 2 unready, RST");
	is_int(st->refused_unready_per_source, 2, "refused_unready_per_source again");
	tcp_conn_ready(h.e, p[1].conn);
	tcp_conn_ready(h.e, p[2].conn);
	ok(th_connect(&h, &p[3]), "all ready: a fourth connects");
	th_syn(&h, &p[4]);
	expect(&h, &p[4], TCPH_RST | TCPH_ACK, 0, p[4].isn + 1, 0,
		"4 open (max_per_source): RST");
	is_int(st->refused_per_source, 1, "refused_per_source");

	peer_at(&q, 90, x + 1);
	ok(th_connect(&h, &q), "another address connects meanwhile");

	/* a SYN answered below the bound, its ACK arriving above it */
	tcp_abort(h.e, p[0].conn);
	th_flush(&h);
	th_syn(&h, &p[4]);
	ok(th_take_synack(&h, &p[4], th_pop(&h)), "one ended: a SYN gets its cookie again");
	tcp_conn_ready(h.e, p[3].conn);
	ok(th_connect(&h, &p[5]), "and another one takes the place first");
	th_ack(&h, &p[4]);
	expect(&h, &p[4], TCPH_RST, p[4].irs + 1, 0, 0,
		"the first one's handshake ACK, now over the bound: RST");
	is_int(st->refused_per_source, 2, "refused_per_source again");
	is_int(st->cookies_ok, 7, "its cookie was good");
	is_int(tcp_active(h.e), 5, "4 of the address + 1 other");

	/* the peer closes: its slot and its place in the count go together */
	h.close_on_eof = true;
	th_fin(&h, &p[1]);
	th_flush(&h);
	p[1].rcv_nxt++;
	th_ack(&h, &p[1]);
	ok(th_connect(&h, &p[6]), "an orderly close frees a place for the address");
	check_books(&h, "per source");
	for (uint32_t k = 0; k < N; k++)
		th_peer_free(&p[k]);
	th_peer_free(&q);
	th_fini(&h);
}

/* We close first: TIME_WAIT holds a slot, not a place of the address. */
static void
test_per_source_time_wait(void)
{
	const uint32_t x = 0x0a050006u;
	struct th h;
	struct th_peer a, b;
	struct tcp_limits l = deflim;

	l.max_per_source = 1;
	th_init(&h, &l);
	peer_at(&a, 1, x);
	peer_at(&b, 2, x);
	ok(th_connect(&h, &a), "a connects");
	th_answer(&h, 100, 10);
	h.close_after_answer = true;
	send_pat(&h, &a, 0, 10);
	expect(&h, &a, TCPH_ACK | TCPH_PSH | TCPH_FIN, a.irs + 1, a.snd_nxt, 100,
		"a answered and closed");
	a.rcv_nxt += 101;
	th_fin(&h, &a);
	expect(&h, &a, TCPH_ACK, a.irs + 102, a.snd_nxt, 0, "a in TIME_WAIT");
	is_int(tcp_active(h.e), 1, "its slot is held");
	ok(th_connect(&h, &b), "the address may open another one");
	check_books(&h, "per source, TIME_WAIT");
	th_peer_free(&a);
	th_peer_free(&b);
	th_fini(&h);
}

/*
 * Issue 10's attack on a full-size table: 1,100 handshakes completed from
 * one address that then say nothing, and a 20,000-SYN flood from it.
 */
static void
test_per_source_flood(void)
{
	const uint32_t x = 0x0a050007u;
	struct th h;
	struct th_peer f, v;
	struct tcp_limits l = deflim;
	unsigned accepted = 0, rst = 0;
	struct th_seg *s;

	l.max_conns = 1024;
	l.max_per_source = 64;
	l.max_unready_per_source = 32;
	th_init(&h, &l);
	for (uint32_t k = 0; k < 1100; k++) {
		peer_at(&f, k, x);
		f.port = (uint16_t)(10000 + k);
		accepted += th_connect(&h, &f);
		th_flush(&h);
		th_peer_free(&f);
	}
	is_int(accepted, 32, "1,100 idle handshakes from one address: 32 take a slot");
	is_int(tcp_stats(h.e)->refused_unready_per_source, 1100 - 32, "the rest refused, counted");
	for (uint32_t k = 0; k < 20000; k++) {
		peer_at(&f, k, x);
		/* ports the idle connections do not use */
		f.port = (uint16_t)(12000 + tap_prng() % 50000);
		f.isn = (uint32_t)tap_prng();
		th_syn(&h, &f);
		while ((s = th_pop(&h)) != NULL)
			rst += s->flags == (TCPH_RST | TCPH_ACK);
	}
	is_int(rst, 20000, "20,000 SYNs from it: RST each");
	is_int(tcp_active(h.e), 32, "the table holds 32 of 1,024");
	peer_at(&v, 5, x + 1);
	ok(th_connect(&h, &v), "a client from another address connects");
	th_answer(&h, 100, 10);
	send_pat(&h, &v, 0, 10);
	expect(&h, &v, TCPH_ACK | TCPH_PSH, v.irs + 1, v.snd_nxt, 100, "and is answered");
	check_books(&h, "per source flood");
	th_peer_free(&v);
	th_fini(&h);
}

static void
test_reaping(void)
{
	struct th h;
	struct th_peer p;
	const struct tcp_stats *st;
	uint64_t w;
	struct th_seg *s;

	th_init(&h, &deflim);
	st = tcp_stats(h.e);
	th_peer_init(&p, 80);
	ok(th_connect(&h, &p), "connect, then silence");
	w = th_wait(&h, 60 * TH_SEC);
	ok(about(w, 30000), "idle timeout after 30 s (%llu ms)", (unsigned long long)(w / TH_MS));
	expect(&h, &p, TCPH_RST | TCPH_ACK, p.irs + 1, p.snd_nxt, 0, "RST to the silent peer");
	ok(tcp_active(h.e) == 0 && h.apps[p.conn].why == TCP_END_TIMEOUT, "closed(TIMEOUT)");
	th_peer_free(&p);

	/* progress pushes the idle timer out */
	th_peer_init(&p, 81);
	ok(th_connect(&h, &p), "connect");
	th_advance(&h, 20 * TH_SEC);
	send_pat(&h, &p, 0, 5);
	th_flush(&h);
	w = th_wait(&h, 60 * TH_SEC);
	ok(about(w, 30000), "idle counted from the last data (%llu ms)", (unsigned long long)(w / TH_MS));
	th_flush(&h);
	th_peer_free(&p);

	/* CLOSE_WAIT that the upper layer never closes */
	th_peer_init(&p, 82);
	ok(th_connect(&h, &p), "connect");
	th_fin(&h, &p);
	expect(&h, &p, TCPH_ACK, p.irs + 1, p.snd_nxt, 0, "FIN acked (CLOSE_WAIT)");
	w = th_wait(&h, 60 * TH_SEC);
	ok(tcp_active(h.e) == 0 && about(w, 30000), "CLOSE_WAIT reaped by the idle timer");
	th_flush(&h);
	th_peer_free(&p);

	/* FIN_WAIT_2 whose peer never sends its FIN */
	th_answer(&h, 100, 1);
	h.close_after_answer = true;
	th_peer_init(&p, 83);
	ok(th_connect(&h, &p), "connect");
	send_pat(&h, &p, 0, 1);
	s = th_pop(&h);
	ok(s != NULL && (s->flags & TCPH_FIN), "answer+FIN");
	p.rcv_nxt += 101;
	th_ack(&h, &p);
	w = th_wait(&h, 60 * TH_SEC);
	ok(about(w, 10000), "FIN_WAIT_2 reaped after fin_ms 10 s (%llu ms)", (unsigned long long)(w / TH_MS));
	expect(&h, &p, TCPH_RST | TCPH_ACK, p.irs + 102, p.snd_nxt, 0, "with RST");
	th_peer_free(&p);

	/* FIN_WAIT_1 whose peer vanished: FIN resent, then reaped at fin_ms */
	th_peer_init(&p, 84);
	ok(th_connect(&h, &p), "connect");
	send_pat(&h, &p, 0, 1);
	th_flush(&h);
	w = 0;
	for (int k = 0; k < 10 && tcp_active(h.e) != 0; k++) {
		w += th_wait(&h, 60 * TH_SEC);
		th_flush(&h);
	}
	ok(tcp_active(h.e) == 0 && about(w, 10000), "FIN_WAIT_1 reaped at 10 s (%llu ms)",
		(unsigned long long)(w / TH_MS));
	is_int(st->timeouts, 5, "five timeouts");
	teardown1(&h, &p, "reaping");
}

static void
test_writable(void)
{
	struct th h;
	struct th_peer p;
	struct tcp_limits l = deflim;
	const uint8_t *ans;

	l.snd_buf = 4096;
	setup1(&h, &l, &p, 90);
	ans = th_answer(&h, 10000, 1);
	h.close_after_answer = true;
	send_pat(&h, &p, 0, 1);
	is_int(h.apps[p.conn].sent, 4096, "tcp_send takes what the 4096-byte ring holds");
	th_pump(&h, &p, 20 * TH_MS, 100000);
	ok(p.rxlen == 10000 && memcmp(p.rx, ans, 10000) == 0 && p.got_fin,
		"writable() refills: 10000 bytes then FIN");
	ok(h.writable_cb >= 2, "writable() called (%u times)", h.writable_cb);
	teardown1(&h, &p, "writable");
}

/* ---- fuzz ---- */

#define FZ_PEERS 12
#define FZ_SEGMENTS 100000		/* segments fed to the engine */
#define FZ_ROUNDS_MAX 400000

struct fz_peer {
	struct th_peer p;
	bool synced;		/* have a SYN-ACK */
	uint32_t conn;
	bool has_conn;
};

/* Routes everything the engine sent to the peer models. */
static void
fz_drain(struct th *h, struct fz_peer *fp)
{
	struct th_seg *s;

	while ((s = th_pop(h)) != NULL) {
		for (int k = 0; k < FZ_PEERS; k++) {
			struct th_peer *p = &fp[k].p;

			if (s->t.peer_ip != p->ip || s->dport != p->port)
				continue;
			if ((s->flags & (TCPH_SYN | TCPH_ACK)) == (TCPH_SYN | TCPH_ACK) &&
				s->ack == p->isn + 1) {
				p->irs = s->seq;
				p->rcv_nxt = s->seq + 1;
				fp[k].synced = true;
			} else if (s->flags & TCPH_RST) {
				fp[k].synced = false;
				fp[k].has_conn = false;
			} else {
				th_peer_take(p, s);
			}
		}
	}
}

static void
fz_options(uint8_t *o, size_t *n)
{
	size_t len = tap_prng() % 12;

	for (size_t k = 0; k < len; k++)
		o[k] = (uint8_t)(tap_prng() % 5 == 0 ? tap_prng() : tap_prng() % 9);
	*n = len;
}

static void
test_fuzz(void)
{
	struct th h;
	struct tcp_limits l = deflim;
	struct fz_peer fp[FZ_PEERS];
	struct th_peer stranger;
	uint8_t buf[4096], opt[16];
	bool checks_ok = true;
	char why[256];
	unsigned bad_data = 0;
	uint32_t base[8] = { 0 };
	size_t checked[8] = { 0 };

	l.max_conns = 8;
	l.rcv_wnd = 4096;
	l.snd_buf = 4096;
	l.ooo_ranges = 3;
	l.retries = 3;
	l.idle_ms = 5000;
	l.fin_ms = 2000;
	l.time_wait_ms = 500;
	th_init(&h, &l);
	h.mode = TH_ECHO;
	/* a fixed seed by default; TVS_TCP_FUZZ_SEED explores others */
	if (getenv("TVS_TCP_FUZZ_SEED") != NULL) {
		tap_prng_state = strtoull(getenv("TVS_TCP_FUZZ_SEED"), NULL, 0) | 1;
		diag("fuzz seed %#llx", (unsigned long long)tap_prng_state);
	}
	for (int k = 0; k < FZ_PEERS; k++) {
		memset(&fp[k], 0, sizeof(fp[k]));
		th_peer_init(&fp[k].p, 100 + (uint32_t)k);
		fp[k].p.ws = (int)(tap_prng() % 16) - 1;
	}
	th_peer_init(&stranger, 999);
	for (unsigned r = 0; r < FZ_ROUNDS_MAX && checks_ok &&
		tcp_stats(h.e)->segs_in < FZ_SEGMENTS; r++) {
		struct fz_peer *f = &fp[tap_prng() % FZ_PEERS];
		struct th_peer *p = &f->p;
		uint64_t x = tap_prng();
		unsigned accepts = h.accepts;
		int32_t d = (int32_t)(tap_prng() % 5 == 0 ? tap_prng() % 20000 : tap_prng() % 200) - (x % 7 == 0 ? 10000 : 100);
		size_t n = tap_prng() % 5 == 0 ? tap_prng() % 1600 : tap_prng() % 100, optlen = 0;
		uint8_t fl;

		switch (x % 16) {
		case 0:
			p->isn = (uint32_t)tap_prng();
			th_syn(&h, p);
			break;
		case 1:
			if (f->synced)
				th_in_raw(&h, p, TCPH_ACK, p->isn + 1, p->irs + 1, p->win, NULL, 0, NULL, 0);
			break;
		case 2: case 3: case 4: case 5:
			/* data near where the peer is, pattern bytes, random flags */
			fl = (uint8_t)(TCPH_ACK | (tap_prng() % 8 == 0 ? TCPH_FIN : 0));
			fl |= tap_prng() % 2 ? TCPH_PSH : 0;
			if (tap_prng() % 3 == 0)
				d = 0;
			pat_fill(buf, p->snd_nxt + (uint32_t)d, n);
			th_in_raw(&h, p, fl, p->snd_nxt + (uint32_t)d,
				p->rcv_nxt + (uint32_t)(tap_prng() % 4 == 0 ? d : 0), p->win, NULL, 0, buf, n);
			if (d == 0)
				p->snd_nxt += (uint32_t)n + !!(fl & TCPH_FIN);
			break;
		case 6:
			p->win = (uint16_t)(tap_prng() % 4 == 0 ? 0 : tap_prng());
			th_ack(&h, p);
			break;
		case 7:
			th_fin(&h, p);
			break;
		case 8:
			fl = TCPH_RST | (tap_prng() % 2 ? TCPH_ACK : 0);
			if (tap_prng() % 3 == 0)
				d = 0;
			th_in_raw(&h, p, fl, p->snd_nxt + (uint32_t)d, p->rcv_nxt, 0, NULL, 0, NULL, 0);
			break;
		case 9:
			/* any flags, any window (one draw, so every compiler agrees) */
			x = tap_prng();
			th_in_raw(&h, p, (uint8_t)x, p->snd_nxt + (uint32_t)d, p->rcv_nxt + (uint32_t)d,
				(uint16_t)(x >> 8), NULL, 0, NULL, 0);
			break;
		case 10: {
			/* garbage from a stranger: random header bytes, any length */
			size_t len = tap_prng() % 80;

			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)tap_prng();
			if (len >= 4 && tap_prng() % 2) {
				th_put16(buf, stranger.port);
				th_put16(buf + 2, TH_PORT);
			}
			tcp_input(h.e, h.now, stranger.ip, TH_SERVER_IP, buf, len);
			break;
		}
		case 11:
			/* options of every shape on a peer's segment */
			fz_options(opt, &optlen);
			pat_fill(buf, p->snd_nxt, n);
			th_in_raw(&h, p, TCPH_ACK | (tap_prng() % 4 == 0 ? TCPH_SYN : 0), p->snd_nxt,
				p->rcv_nxt, p->win, opt, optlen, buf, n);
			break;
		case 12:
			th_advance(&h, (tap_prng() % 3000) * TH_MS);
			break;
		case 13: {
			uint32_t c = (uint32_t)(tap_prng() % (l.max_conns + 2));

			switch (tap_prng() % 4) {
			case 0: tcp_close(h.e, c); break;
			case 1: tcp_abort(h.e, c); break;
			default: tcp_send(h.e, c, buf, tap_prng() % 3000); break;
			}
			break;
		}
		default:
			th_advance(&h, (1 + tap_prng() % 50) * TH_MS);
			break;
		}
		fz_drain(&h, fp);
		if (tap_prng() % 3 == 0 && f->synced)
			th_ack(&h, p);
		fz_drain(&h, fp);
		if (h.accepts != accepts) {
			/* both segments of a round come from p: one 4-tuple */
			f->has_conn = true;
			f->conn = h.last_conn;
			base[h.last_conn] = p->isn + 1;
			checked[h.last_conn] = 0;
		}
		/* every byte the upper layer got is the pattern at its sequence */
		for (uint32_t i = 0; i < l.max_conns; i++) {
			struct th_app *a = &h.apps[i];

			if (a->rxlen > checked[i]) {
				bad_data += !pat_match(a->rx + checked[i], base[i] + (uint32_t)checked[i],
					a->rxlen - checked[i]);
				checked[i] = a->rxlen;
			}
		}
		if (r % 100 == 99 && tcp_engine_check(h.e, why, sizeof(why)) != 0) {
			checks_ok = false;
			diag("round %u: %s", r, why);
		}
	}
	ok(checks_ok && tcp_stats(h.e)->segs_in >= FZ_SEGMENTS,
		"fuzz: %llu segments, structures consistent every 100 rounds",
		(unsigned long long)tcp_stats(h.e)->segs_in);
	check_books(&h, "fuzz");
	is_int(bad_data, 0, "fuzz: every byte delivered is the byte sent at its sequence");
	diag("fuzz: %llu in, %llu out, %llu established, %llu bad, %llu ooo queued, "
		"%llu dup, %llu challenge, %llu retransmits",
		(unsigned long long)tcp_stats(h.e)->segs_in, (unsigned long long)tcp_stats(h.e)->segs_out,
		(unsigned long long)tcp_stats(h.e)->established,
		(unsigned long long)tcp_stats(h.e)->bad_segments,
		(unsigned long long)tcp_stats(h.e)->ooo_queued,
		(unsigned long long)tcp_stats(h.e)->dup_segments,
		(unsigned long long)tcp_stats(h.e)->challenge_acks,
		(unsigned long long)tcp_stats(h.e)->retransmits);
	ok(tcp_stats(h.e)->established > 100 && tcp_stats(h.e)->ooo_queued > 100,
		"fuzz reached deep states");
	for (int k = 0; k < 10 && tcp_active(h.e) != 0; k++) {
		th_advance(&h, 60 * TH_SEC);
		th_flush(&h);
	}
	is_int(tcp_active(h.e), 0, "fuzz: every connection reaped in the end");
	check_books(&h, "fuzz end");
	for (int k = 0; k < FZ_PEERS; k++)
		th_peer_free(&fp[k].p);
	th_peer_free(&stranger);
	th_fini(&h);
}

int
main(void)
{
	test_siphash_checksum();
	test_create();
	test_defaults();
	test_handshake();
	test_bad_cookie();
	test_rst_in_handshake();
	test_mss();
	test_window();
	test_initial_window();
	test_echo();
	test_reorder();
	test_duplicates();
	test_trickle();
	test_rto();
	test_lost_ack();
	test_fast_retransmit();
	test_zero_window();
	test_retries();
	test_close_peer_first();
	test_close_we_first();
	test_late_duplicate();
	test_rst();
	test_syn_flood();
	test_table_full();
	test_per_source();
	test_per_source_time_wait();
	test_per_source_flood();
	test_reaping();
	test_writable();
	test_fuzz();
	return done_testing();
}
