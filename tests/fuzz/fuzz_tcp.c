/*
 * libFuzzer harness for the TCP engine (dataplane/tcp.c): the segment
 * parser and the state machine, packetdrill style. The input is a script
 * (fuzz_script.h): two bytes of limits and upper-layer behaviour, then
 * steps in which four peers send segments to the one listener (SYN, a
 * segment whose flags, window, options and payload length are free and
 * whose sequence and acknowledgment numbers are offsets from what the peer
 * has sent and received, raw bytes, a whole handshake, in-order data), the
 * clock moves, or the upper layer sends, closes or aborts. The peers take
 * what the engine emits, so offsets stay meaningful across the
 * connection's life. The fake world is the unit tests'
 * (tests/c/tcp_harness.h), which also checks every segment emitted.
 *
 * After every step: tcp_engine_check (hash chains, timers, free list,
 * sequence variables), the books of tcp.h, one accept and one closed()
 * per connection, bytes in == bytes given to recv(), no RST answering a
 * RST. At the end the clock runs until every connection has been reaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_need.h"
#include "fuzz_script.h"
#include "tcp_harness.h"

#define NPEERS 4
#define PAYLOAD_MAX 3000
#define RING_MAX (1u << 20)

struct fpeer {
	uint32_t ip;
	uint16_t port;
	uint32_t isn;
	uint32_t snd_nxt;
	uint32_t rcv_nxt;
	uint32_t acked;		/* the last acknowledgment number it sent */
	uint16_t mss;
};

struct fuzz {
	struct th h;
	struct fz z;
	struct fpeer peers[NPEERS];
	uint64_t inputs;	/* tcp_input calls */
	uint64_t delivered;	/* bytes given to recv() */
	unsigned rst_out;	/* RSTs emitted */
	unsigned steps;
};

static struct fuzz f;

static void
fz_send(void *ctx, const struct tcp_tuple *t, const uint8_t *hdr, size_t hdrlen,
	const uint8_t *payload, size_t len)
{
	if (hdrlen > 13 && (hdr[13] & TCPH_RST))
		f.rst_out++;
	th_send_cb(ctx, t, hdr, hdrlen, payload, len);
}

static void
fz_recv(void *ctx, uint32_t conn, const uint8_t *data, size_t len)
{
	f.delivered += len;
	th_recv_cb(ctx, conn, data, len);
}

static const struct tcp_ops fz_ops = {
	.send = fz_send, .accept = th_accept_cb, .recv = fz_recv, .eof = th_eof_cb,
	.writable = th_writable_cb, .closed = th_closed_cb,
};

/* The answer (its size fixed at configure: a connection may be half-way
 * through it) or echo or sink, and what the upper layer does on events. */
static void
set_mode(struct th *h, uint8_t m)
{
	h->mode = (enum th_mode)((m & 3) % 3);
	h->close_on_eof = m & 4;
	h->close_after_answer = m & 8;
	h->abort_on_recv = (m & 0x30) == 0x30;
	h->refuse = (m & 0xc0) == 0xc0;
}

static void
configure(void)
{
	static const uint32_t conns[] = { 1, 2, 3, 4 };
	static const uint16_t mss[] = { 0, 88, 536, 1460 };
	static const uint16_t wnd[] = { 0, 200, 1000, 65535 };
	static const uint32_t sbuf[] = { 0, 64, 1024, 16384 };
	static const uint8_t ooo[] = { 0, 1, 2, TCP_MAX_OOO_RANGES };
	static const uint8_t retries[] = { 0, 1, 2, 8 };
	uint8_t c0 = fz_u8(&f.z), c1 = fz_u8(&f.z);
	struct tcp_limits lim = {
		.port = TH_PORT,
		.max_conns = conns[c0 & 3],
		.mss = mss[c0 >> 2 & 3],
		.rcv_wnd = wnd[c0 >> 4 & 3],
		.snd_buf = sbuf[c0 >> 6 & 3],
		.ooo_ranges = ooo[c1 & 3],
		.retries = retries[c1 >> 2 & 3],
	};

	if (c1 & 0x10) {	/* short timers: more of them fire per run */
		lim.rto_init_ms = 50;
		lim.rto_min_ms = 10;
		lim.rto_max_ms = 200;
		lim.idle_ms = 500;
		lim.fin_ms = 300;
		lim.time_wait_ms = 100;
	}
	if (c1 & 0x20)
		lim.rto_max_ms = 1;	/* below the minimum: the engine must clamp */
	th_init(&f.h, &lim);
	/* the same engine with ops that count what the books need */
	tcp_engine_free(f.h.e);
	lim.checksum = true;
	f.h.e = tcp_engine_create(&lim, th_key, &fz_ops, &f.h);
	need(f.h.e != NULL, "engine created");
	th_answer(&f.h, (c1 & 0x40) ? 5000 : 300, (c1 & 0x80) ? 1 : 10);
	set_mode(&f.h, (uint8_t)(c1 >> 6));
	for (unsigned i = 0; i < NPEERS; i++) {
		struct fpeer *p = &f.peers[i];

		/* peers 0 and 3 share an address, 1 and 3 a port */
		p->ip = 0x0a010001u + (i == 3 ? 0 : i);
		p->port = (uint16_t)(30001 + (i == 3 ? 1 : i));
		p->isn = 0x01000000u * (i + 1) + 0xabcdefu;
		p->snd_nxt = p->isn;
		p->mss = 1460;
	}
}

/* The peers take what the engine sent them: the cookie of a SYN-ACK, the
 * in-order bytes and FIN. */
static void
deliver(void)
{
	struct th_seg *s;

	while ((s = th_pop(&f.h)) != NULL) {
		for (unsigned i = 0; i < NPEERS; i++) {
			struct fpeer *p = &f.peers[i];

			if (s->t.peer_ip != p->ip || s->t.peer_port != p->port)
				continue;
			if ((s->flags & (TCPH_SYN | TCPH_ACK)) == (TCPH_SYN | TCPH_ACK))
				p->rcv_nxt = s->seq + 1;
			else if (s->seq == p->rcv_nxt)
				p->rcv_nxt += (uint32_t)s->dlen + !!(s->flags & TCPH_FIN);
		}
	}
}

static unsigned
apps_open(void)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < f.h.lim.max_conns; i++) {
		if (!f.h.apps[i].open)
			continue;
		need(tcp_conn_tuple(f.h.e, i) != NULL, "an open connection has its tuple");
		n++;
	}
	/* the send ring is at most 1 MiB: more is sequence arithmetic gone wrong */
	for (uint32_t i = 0; i <= f.h.lim.max_conns; i++)
		need(tcp_conn_room(f.h.e, i) <= RING_MAX && tcp_conn_unacked(f.h.e, i) <= RING_MAX,
			"room and unacked within the send ring");
	return n;
}

static void
check(void)
{
	const struct tcp_stats *st = tcp_stats(f.h.e);
	unsigned active = tcp_active(f.h.e), open = apps_open();
	char why[256];

	if (tcp_engine_check(f.h.e, why, sizeof(why)) != 0) {
		fprintf(stderr, "fuzz_tcp: tcp_engine_check: %s\n", why);
		abort();
	}
	need(st->established == st->closed + st->reset_rcvd + st->timeouts + st->aborts + active,
		"established == closed + reset_rcvd + timeouts + aborts + active");
	need(f.h.bad_out == 0, "every segment emitted well formed (tcp_harness.h th_send_cb)");
	need(f.h.bad_closed == 0, "callbacks only for open connections, closed() once");
	need(f.h.accepts == st->established, "one accept per connection");
	need(open == f.h.accepts - f.h.closed_cb, "open connections == accepts - closed()");
	need(open <= active, "open connections hold slots");
	need(st->segs_in == f.inputs, "every segment counted");
	need(st->bytes_in == f.delivered, "bytes_in == bytes given to recv()");
}

/* A segment from p, payload a pattern; the RST rule checked around it. */
static void
segment(struct fpeer *p, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win,
	const uint8_t *opt, size_t optlen, size_t paylen)
{
	static uint8_t pay[PAYLOAD_MAX];
	struct th_peer from = { .ip = p->ip, .port = p->port };
	unsigned rst_before = f.rst_out;

	for (size_t k = 0; k < paylen; k++)
		pay[k] = (uint8_t)(seq + k);
	f.inputs++;
	if (flags & TCPH_ACK)
		p->acked = ack;
	th_in_raw(&f.h, &from, flags, seq, ack, win, opt, optlen, pay, paylen);
	need(!(flags & TCPH_RST) || f.rst_out == rst_before, "a RST is never answered with a RST");
}

static void
syn(struct fpeer *p, uint8_t o)
{
	uint8_t opt[8];
	size_t n = 0;

	if (o & 4)
		p->isn += 0x00100000u * (o >> 4 | 1);
	if (o & 1) {
		p->mss = fz_u16(&f.z);
		opt[n++] = 2;
		opt[n++] = 4;
		th_put16(opt + n, p->mss);
		n += 2;
	}
	if (o & 2) {
		opt[n++] = 1;
		opt[n++] = 3;
		opt[n++] = 3;
		opt[n++] = fz_u8(&f.z);
	}
	p->snd_nxt = p->isn + 1;
	segment(p, TCPH_SYN, p->isn, 0, 65535, opt, n, 0);
}

static uint32_t
scaled(uint8_t delta, unsigned scale)
{
	static const uint32_t mult[] = { 1, 256, 65536, 1u << 24 };

	return (uint32_t)(int32_t)(int8_t)delta * mult[scale & 3];
}

/* Free flags, window and options; numbers relative to the peer's: seq to
 * what it sent, ack to what it received or (sc & 16, for duplicate ACKs)
 * to the last acknowledgment it sent. */
static void
free_segment(struct fpeer *p)
{
	uint8_t flags = fz_u8(&f.z), ds = fz_u8(&f.z), da = fz_u8(&f.z), sc = fz_u8(&f.z);
	uint16_t win = fz_u16(&f.z);
	size_t optlen, paylen;
	const uint8_t *opt = fz_bytes(&f.z, fz_u8(&f.z) % 41, &optlen);
	uint32_t seq = p->snd_nxt + scaled(ds, sc);
	uint32_t ack = ((sc & 16) ? p->acked : p->rcv_nxt) + scaled(da, sc >> 2);

	paylen = fz_u16(&f.z) % PAYLOAD_MAX;
	segment(p, flags, seq, ack, win, opt, optlen, paylen);
	if (ds == 0)
		p->snd_nxt = seq + (uint32_t)paylen + !!(flags & TCPH_SYN) + !!(flags & TCPH_FIN);
}

/* Raw bytes from the peer's port to the listener's, checksum filled;
 * exact size so ASan sees reads past the end. */
static void
raw_segment(struct fpeer *p)
{
	size_t len;
	const uint8_t *r = fz_bytes(&f.z, fz_u16(&f.z) % 1600, &len);
	uint8_t *b = malloc(len ? len : 1);
	bool rst_in = len > 13 && (r[13] & TCPH_RST);
	unsigned rst_before = f.rst_out;

	memcpy(b, r, len);
	if (len >= 4) {
		th_put16(b, p->port);
		th_put16(b + 2, TH_PORT);
	}
	if (len >= TCP_HDR_MIN) {
		th_put16(b + 16, 0);
		th_put16(b + 16, tcp_checksum(p->ip, TH_SERVER_IP, b, len, NULL, 0));
	}
	f.inputs++;
	tcp_input(f.h.e, f.h.now, p->ip, TH_SERVER_IP, b, len);
	free(b);
	need(!rst_in || f.rst_out == rst_before, "a RST is never answered with a RST");
}

static void
app(struct fpeer *p, uint8_t a)
{
	struct tcp_tuple t = { p->ip, TH_SERVER_IP, p->port, TH_PORT };
	long conn = tcp_conn_find(f.h.e, &t);
	uint32_t c = conn < 0 || (a & 3) == 3 ? (uint32_t)(a >> 2) % (f.h.lim.max_conns + 1)
		: (uint32_t)conn;
	static uint8_t junk[20000];

	switch (a & 3) {
	case 0:
	case 3:
		tcp_send(f.h.e, c, junk, fz_u16(&f.z) % sizeof(junk));
		break;
	case 1:
		tcp_close(f.h.e, c);
		break;
	case 2:
		tcp_abort(f.h.e, c);
		break;
	}
}

static void
advance(uint8_t t)
{
	uint64_t ms = t < 128 ? t : t < 192 ? (uint64_t)(t - 128) * 100 : (uint64_t)(t - 192) * 5000;

	th_advance(&f.h, ms * TH_MS + 1);
}

static void
step(void)
{
	uint8_t k = fz_u8(&f.z), x;
	struct fpeer *p = &f.peers[k & 3];
	size_t n;

	switch (k >> 2 & 7) {
	case 0:
		syn(p, fz_u8(&f.z));
		break;
	case 1:
		free_segment(p);
		break;
	case 2:
		raw_segment(p);
		break;
	case 3:
		advance(fz_u8(&f.z));
		break;
	case 4:
		app(p, fz_u8(&f.z));
		break;
	case 5:
		set_mode(&f.h, fz_u8(&f.z));
		break;
	case 6:		/* a whole handshake */
		syn(p, fz_u8(&f.z) & 4);
		deliver();
		segment(p, TCPH_ACK, p->snd_nxt, p->rcv_nxt, 65535, NULL, 0, 0);
		break;
	case 7:		/* in-order data, maybe with FIN */
		x = fz_u8(&f.z);
		n = fz_u16(&f.z) % PAYLOAD_MAX;
		segment(p, TCPH_ACK | TCPH_PSH | (x & TCPH_FIN), p->snd_nxt, p->rcv_nxt, 65535,
			NULL, 0, n);
		p->snd_nxt += (uint32_t)n + (x & TCPH_FIN);
		break;
	}
	deliver();
	check();
}

/* Peers gone quiet: every connection must be reaped, each closed() once. */
static void
drain(void)
{
	for (unsigned i = 0; i < 2000 && tcp_active(f.h.e) != 0; i++) {
		th_advance(&f.h, TH_SEC);
		deliver();
		check();
	}
	need(tcp_active(f.h.e) == 0, "every connection reaped when its peer is gone");
	need(f.h.closed_cb == f.h.accepts, "closed() once per accepted connection");
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	memset(&f, 0, sizeof(f));
	f.z.p = d;
	f.z.n = n;
	configure();
	while (fz_more(&f.z) && f.steps++ < 4096)
		step();
	drain();
	if (getenv("FUZZ_SUMMARY") != NULL) {	/* what a seed did, for writing seeds */
		const struct tcp_stats *st = tcp_stats(f.h.e);

		fprintf(stderr, "steps %u in %lu out %lu established %lu closed %lu reset %lu "
			"timeouts %lu aborts %lu bytes_in %lu bytes_out %lu bad_cookie %lu "
			"challenge %lu ooo %lu rst_sent %lu retransmits %lu fast %lu\n", f.steps, st->segs_in, st->segs_out,
			st->established, st->closed, st->reset_rcvd, st->timeouts, st->aborts,
			st->bytes_in, st->bytes_out, st->cookies_bad, st->challenge_acks,
			st->ooo_queued, st->reset_sent, st->retransmits, st->fast_retransmits);
	}
	th_fini(&f.h);
	return 0;
}
