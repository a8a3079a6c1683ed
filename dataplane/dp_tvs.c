/*
 * The TVS of a worker lcore: TLS on TCP 2445 (FORMATS §3, §8.9-8.11) with
 * no kernel on the path. This file is glue: the TCP engine (tcp.h) sees
 * segments, the session layer (tvs_session.h) sees the byte stream, and
 * here bytes move between them and mbufs.
 *
 * Where a connection lives. A TCP connection belongs to one worker: the
 * one dp_tcp_owner names from its 4-tuple. Every segment for the TVS port
 * is checked on arrival and, when it landed on another worker's queue,
 * handed to the owner over the owner's ring (as TFTP transfers are), so a
 * connection's state is only ever touched by one lcore. With one worker
 * there is nothing to decide. With RSS over TCP (dp_port.c asks for it)
 * the NIC hashes the same 4-tuple to the same queue every time; when the
 * port's RSS key and redirection table are known, dp_tcp_owner computes
 * the NIC's own choice (rte_softrss), so hand-offs only happen when the
 * PMD does not say how it hashes (net_tap's kernel queue choice, for one,
 * is the kernel's flow hash and may change on a retransmission timeout).
 *
 * Per turn of the worker loop (dp_tvs_turn): follow the generation's TLS
 * context, run the TCP timers, resume the sessions whose private-key job
 * came back from the offload thread, then those whose handshake bytes had
 * to wait, then (every DP_TVS_SWEEP_MS) close connections whose handshake
 * or request is overdue. Handshake steps are budgeted ([tvs]
 * handshake-budget per turn): a full handshake costs ~100 us of OpenSSL
 * work around the RSA operation even when that one is offloaded, and the
 * same lcore serves TFTP, so beyond the budget the ciphertext of a
 * handshake is only buffered (tvs_session_push) and the connection marked
 * in a bitmap; established sessions are never held back.
 *
 * Private-key offload ([tvs] offload = thread): one EAL control thread
 * (rte_ctrl_thread_create, so it stays off the worker cores) takes jobs
 * from one rte_ring per worker, runs tvs_pkey_job_run and returns them on
 * a second ring per worker; both rings are single-producer single-consumer.
 * With offload = none the handshake's RSA operation runs on the worker.
 *
 * Main lcore: a TLS context per worker is built when a publication brings
 * a TVS certificate or key that differs from the current one
 * (dp_tvs_gen_new, called by dp_pub.c before the swap); the session-ticket
 * keys are shared by every context and rotated by dp_tvs_main_tick, the
 * retired set freed after an RCU grace period.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <rte_cycles.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_tcp.h>

#include "dp.h"
#include "dp_hot.h"

#define DP_TVS_SWEEP_MS 20		/* request timeouts looked at this often */
#define DP_TVS_POLL 32			/* offloaded jobs collected per turn */
#define DP_TVS_STOP_NS (2ull * NS_PER_S)	/* at exit: wait for jobs out */
#define DP_OFF_BURST 8
#define DP_OFF_SPIN 2000		/* empty passes before the thread naps */
#define DP_OFF_NAP_US 50		/* first nap, doubled while idle ... */
#define DP_OFF_NAP_MAX_US 800		/* ... up to this */

/* Per connection slot of the TCP engine. */
struct dp_tvs_conn {
	struct tvs_session *s;		/* NULL: no session (free, or ended) */
	struct dp_l2 l2;		/* where its segments go */
	uint64_t deadline;		/* handshake or request due; 0: none */
	uint8_t flags;
};

enum {
	DP_C_DONE = 1 << 0,		/* CLOSE/ABORT seen: FIN queued or due */
	DP_C_CLOSE_DRAINED = 1 << 1,	/* FIN once the output is in TCP */
	DP_C_BACKLOG = 1 << 2,		/* resume once the output is in TCP */
	DP_C_READY = 1 << 3,		/* TLS up: told the TCP engine (tcp_conn_ready) */
};

struct dp_tvs {
	struct tcp_engine *tcp;
	struct tvs_engine *eng;		/* NULL until a TLS context is served */
	const struct tvs_tls *tls_seen;	/* the engine's, to spot a new one */
	struct dp_tvs_conn *conns;
	uint64_t *deferred;		/* bitmap: handshake bytes waiting */
	uint32_t nwords;
	uint32_t ndeferred;
	uint32_t cursor;		/* word where the next deferred scan starts */
	uint32_t nsess;
	unsigned budget;		/* handshake steps left this turn */
	const struct dp_l2 *cur;	/* sender of the segment being input */
	uint64_t now, next_sweep;
	uint64_t req_timeout_ns;
	struct rte_ring *req, *done;	/* offload: to the thread and back */
	struct tvs_offload off;
	bool has_off;
};

/* Main-lcore state. */
static struct tvs_ticket_keys *dp_tk;
static uint8_t dp_tcp_key[16];
static uint64_t dp_tk_next;		/* monotonic s of the next rotation */
static uint64_t dp_tk_rotations;
static struct tvs_keyset *dp_tk_retired;	/* freed once dp_tk_grace passed */
static uint64_t dp_tk_grace;
static pthread_t dp_off_tid;
static bool dp_off_running;
static volatile int dp_off_quit;

struct dp_tvs_gen {
	struct tvs_identity *id;	/* NULL when the publication had none */
	char fingerprint[65];		/* of the TVS certificate, hex */
	unsigned n;			/* one context per worker index */
	struct tvs_tls *tls[];
};

static uint64_t
dp_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* ---- the owner of a connection ---- */

/*
 * Which worker owns the connection of this segment: the queue RSS gives
 * it when we know how the port hashes, else a hash of our own. Either way
 * a 4-tuple always maps to the same worker.
 */
static inline unsigned
dp_tcp_owner(const struct dp_port *p, const struct rte_ipv4_hdr *ip,
	const struct rte_tcp_hdr *th)
{
	uint32_t src = rte_be_to_cpu_32(ip->src_addr), dst = rte_be_to_cpu_32(ip->dst_addr);
	uint16_t sport = rte_be_to_cpu_16(th->src_port), dport = rte_be_to_cpu_16(th->dst_port);

	if (dp_app.nworkers == 1)
		return 0;
	if (p->reta_size > 0)
		return dp_rss_queue(p, src, dst, sport, dport);
	return rte_jhash_3words(src, dst, (uint32_t)sport << 16 | dport, 0x7476)
		% dp_app.nworkers;
}

/* ---- TCP input from the packet path ---- */

static bool
dp_tcp_cksum_bad(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip, const void *l4)
{
	uint64_t f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

	if (f == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		return false;
	return f == RTE_MBUF_F_RX_L4_CKSUM_BAD || rte_ipv4_udptcp_cksum_verify(ip, l4) != 0;
}

void
dp_tcp_input(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m,
	const struct rte_ether_hdr *eth, const struct rte_ipv4_hdr *ip, unsigned l4len,
	uint64_t now)
{
	struct dp_tvs *tv = lc->tvs;
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)((const uint8_t *)ip
		+ rte_ipv4_hdr_len(ip));
	unsigned owner;
	struct dp_l2 l2;

	if (unlikely(l4len < sizeof(*th))) {
		DP_DROP(lc, m, drop_tcp_hdr);
		return;
	}
	if (tv == NULL || th->dst_port != rte_cpu_to_be_16(dp_app.cfg.tvs.port)) {
		DP_DROP(lc, m, drop_tcp_port);
		return;
	}
	if (dp_tcp_cksum_bad(m, ip, th)) {
		DP_DROP(lc, m, drop_tcp_cksum);
		return;
	}
	owner = dp_tcp_owner(&dp_app.ports[pidx], ip, th);
	if (unlikely(owner != lc->worker)) {
		dp_handoff(lc, owner, m);
		return;
	}
	dp_l2_learn(&l2, eth, ip, pidx);
	lc->stats.c[DP_C_tcp_pkts]++;
	tv->cur = &l2;
	tv->now = now;
	tcp_input(tv->tcp, now, rte_be_to_cpu_32(ip->src_addr), rte_be_to_cpu_32(ip->dst_addr),
		(const uint8_t *)th, l4len);
	tv->cur = NULL;
	rte_pktmbuf_free(m);
}

/* ---- TCP callbacks ---- */

/* The engine's segment as a frame; the peer's link address comes from the
 * segment being input, else from the connection's slot. */
static void
dp_tvs_send(void *ctx, const struct tcp_tuple *t, const uint8_t *hdr, size_t hdrlen,
	const uint8_t *payload, size_t len)
{
	struct dp_lcore *lc = ctx;
	struct dp_tvs *tv = lc->tvs;
	uint32_t peer = rte_cpu_to_be_32(t->peer_ip);
	const struct dp_l2 *l2 = NULL;
	const struct dp_port *p;
	struct rte_tcp_hdr *th;
	struct rte_mbuf *m;
	uint8_t *d;
	size_t l2len;
	long i;

	if (tv->cur != NULL && tv->cur->ip == peer)
		l2 = tv->cur;
	else if ((i = tcp_conn_find(tv->tcp, t)) >= 0 && tv->conns[i].l2.valid
	    && tv->conns[i].l2.ip == peer)
		l2 = &tv->conns[i].l2;
	if (unlikely(l2 == NULL)) {
		lc->stats.c[DP_C_drop_no_peer]++;
		return;
	}
	p = &dp_app.ports[l2->port];
	m = dp_ipv4_frame(lc, p, l2, IPPROTO_TCP, hdrlen + len, &d, &l2len);
	if (unlikely(m == NULL))
		return;
	memcpy(d, hdr, hdrlen);
	if (len > 0)
		memcpy(d + hdrlen, payload, len);
	th = (struct rte_tcp_hdr *)d;
	th->cksum = 0;		/* the engine fills it only with limits.checksum */
	th->cksum = dp_ipv4_cksum(m, l2len, p->tx_tcp_cksum, RTE_MBUF_F_TX_TCP_CKSUM);
	dp_tx(lc, l2->port, m);
}

static inline bool
dp_tvs_is_deferred(const struct dp_tvs *tv, uint32_t conn)
{
	return (tv->deferred[conn / 64] >> (conn % 64)) & 1;
}

static void
dp_tvs_defer(struct dp_tvs *tv, uint32_t conn)
{
	if (dp_tvs_is_deferred(tv, conn))
		return;
	tv->deferred[conn / 64] |= 1ull << (conn % 64);
	tv->ndeferred++;
}

static void
dp_tvs_undefer(struct dp_tvs *tv, uint32_t conn)
{
	if (!dp_tvs_is_deferred(tv, conn))
		return;
	tv->deferred[conn / 64] &= ~(1ull << (conn % 64));
	tv->ndeferred--;
}

/* Moves the session's output into TCP; true when none is left behind
 * (sent, or dropped because the connection can no longer send). */
static bool
dp_tvs_flush(struct dp_tvs *tv, uint32_t conn, struct tvs_session *s)
{
	const uint8_t *p;
	size_t n;

	while ((n = tvs_session_output_peek(s, &p)) > 0) {
		long took = tcp_send(tv->tcp, conn, p, n);

		if (took < 0) {
			tvs_session_output_consume(s, n);
			return true;
		}
		tvs_session_output_consume(s, (size_t)took);
		if ((size_t)took < n)
			return false;	/* writable() comes back for the rest */
	}
	return true;
}

/* The peer owes bytes (handshake, a started request): it has until the
 * deadline. A finished TLS handshake no longer counts against the peer
 * address's bound on handshakes in flight. */
static void
dp_tvs_deadline(struct dp_tvs *tv, uint32_t conn, struct dp_tvs_conn *c)
{
	if (!(c->flags & DP_C_READY) && tvs_session_established(c->s)) {
		c->flags |= DP_C_READY;
		tcp_conn_ready(tv->tcp, conn);
	}
	if ((c->flags & DP_C_DONE) || !tvs_session_waiting(c->s))
		c->deadline = 0;
	else if (c->deadline == 0)
		c->deadline = tv->now + tv->req_timeout_ns;
}

/* After every session call: output to TCP, then what the flags ask. */
static void
dp_tvs_result(struct dp_tvs *tv, uint32_t conn, unsigned f)
{
	struct dp_tvs_conn *c = &tv->conns[conn];

	for (;;) {
		bool drained = dp_tvs_flush(tv, conn, c->s);

		if (f & (TVS_SESS_CLOSE | TVS_SESS_ABORT)) {
			/* an abort's alert or close_notify goes out before the FIN */
			c->flags |= DP_C_DONE;
			c->deadline = 0;
			if (drained)
				tcp_close(tv->tcp, conn);
			else
				c->flags |= DP_C_CLOSE_DRAINED;
			return;
		}
		if (!(f & TVS_SESS_BACKLOG))
			break;
		if (!drained) {
			c->flags |= DP_C_BACKLOG;
			break;
		}
		f = tvs_session_resume(c->s);
	}
	dp_tvs_deadline(tv, conn, c);
}

/* One handshake step or resumption, if the turn's budget allows. */
static bool
dp_tvs_spend(struct dp_tvs *tv, const struct tvs_session *s)
{
	if (tvs_session_established(s))
		return true;
	if (tv->budget == 0)
		return false;
	tv->budget--;
	return true;
}

static int
dp_tvs_accept(void *ctx, uint32_t conn, const struct tcp_tuple *t __rte_unused)
{
	struct dp_lcore *lc = ctx;
	struct dp_tvs *tv = lc->tvs;
	struct dp_tvs_conn *c = &tv->conns[conn];

	if (tv->eng == NULL) {
		lc->stats.c[DP_C_tvs_no_tls]++;
		return -1;
	}
	c->s = tvs_session_new(tv->eng, (void *)(uintptr_t)conn);
	if (c->s == NULL)
		return -1;	/* counted in internal_errors */
	tv->nsess++;
	c->flags = 0;
	if (tv->cur != NULL)
		c->l2 = *tv->cur;
	else
		c->l2.valid = false;
	c->deadline = tv->now + tv->req_timeout_ns;
	return 0;
}

static void
dp_tvs_recv(void *ctx, uint32_t conn, const uint8_t *data, size_t len)
{
	struct dp_lcore *lc = ctx;
	struct dp_tvs *tv = lc->tvs;
	struct dp_tvs_conn *c = &tv->conns[conn];

	if (c->s == NULL || (c->flags & DP_C_DONE))
		return;		/* the conversation is over: bytes go nowhere */
	if (!dp_tvs_spend(tv, c->s)) {
		lc->stats.c[DP_C_tvs_deferred]++;
		dp_tvs_defer(tv, conn);
		dp_tvs_result(tv, conn, tvs_session_push(c->s, data, len));
		return;
	}
	dp_tvs_result(tv, conn, tvs_session_input(c->s, data, len));
}

static void
dp_tvs_eof(void *ctx, uint32_t conn)
{
	struct dp_lcore *lc = ctx;
	struct dp_tvs *tv = lc->tvs;
	struct dp_tvs_conn *c = &tv->conns[conn];

	if (c->s == NULL || (c->flags & DP_C_DONE))
		return;
	dp_tvs_result(tv, conn, tvs_session_eof(c->s));
}

static void
dp_tvs_writable(void *ctx, uint32_t conn, size_t room __rte_unused)
{
	struct dp_lcore *lc = ctx;
	struct dp_tvs *tv = lc->tvs;
	struct dp_tvs_conn *c = &tv->conns[conn];

	if (c->s == NULL || !dp_tvs_flush(tv, conn, c->s))
		return;
	if (c->flags & DP_C_CLOSE_DRAINED) {
		c->flags &= (uint8_t)~DP_C_CLOSE_DRAINED;
		tcp_close(tv->tcp, conn);
	} else if (c->flags & DP_C_BACKLOG) {
		c->flags &= (uint8_t)~DP_C_BACKLOG;
		dp_tvs_result(tv, conn, tvs_session_resume(c->s));
	}
}

static void
dp_tvs_closed(void *ctx, uint32_t conn, enum tcp_end why __rte_unused)
{
	struct dp_lcore *lc = ctx;
	struct dp_tvs *tv = lc->tvs;
	struct dp_tvs_conn *c = &tv->conns[conn];

	if (c->s != NULL) {
		/* a session whose key job is out is finished at tvs_engine_poll */
		tvs_session_free(c->s);
		tv->nsess--;
	}
	c->s = NULL;
	c->flags = 0;
	c->deadline = 0;
	dp_tvs_undefer(tv, conn);
}

static const struct tcp_ops dp_tvs_tcp_ops = {
	.send = dp_tvs_send,
	.accept = dp_tvs_accept,
	.recv = dp_tvs_recv,
	.eof = dp_tvs_eof,
	.writable = dp_tvs_writable,
	.closed = dp_tvs_closed,
};

/* ---- the worker's turn ---- */

/* A new TLS context in the generation served: new connections use it. */
static void
dp_tvs_follow(struct dp_lcore *lc, struct dp_tvs *tv)
{
	const struct dp_tvs_gen *g = dp_pub_tvs_gen();
	struct tvs_tls *tls = g != NULL && lc->worker < g->n ? g->tls[lc->worker] : NULL;
	struct trust_err err = { 0 };
	struct tvs_lookup lk;

	if (tls == NULL || tls == tv->tls_seen)
		return;
	if (tv->eng != NULL) {
		tvs_engine_set_tls(tv->eng, tls);
	} else {
		lk = dp_pub_tvs_lookup(lc->lcore_id);
		tv->eng = tvs_engine_new(tls, &lk, tv->has_off ? &tv->off : NULL, &err);
		if (tv->eng == NULL)
			return;		/* out of memory: tried again next turn */
	}
	tv->tls_seen = tls;
}

/* Sessions whose private-key job came back. */
static void
dp_tvs_offloaded(struct dp_tvs *tv)
{
	struct tvs_session *ready[DP_TVS_POLL];
	unsigned n = tvs_engine_poll(tv->eng, ready, DP_TVS_POLL);

	for (unsigned i = 0; i < n; i++) {
		uint32_t conn = (uint32_t)(uintptr_t)tvs_session_cookie(ready[i]);

		if (tv->conns[conn].s != ready[i])
			continue;
		if (!dp_tvs_spend(tv, ready[i])) {
			dp_tvs_defer(tv, conn);
			continue;
		}
		dp_tvs_result(tv, conn, tvs_session_resume(ready[i]));
	}
}

/* Handshakes that waited for budget, round robin from the cursor. */
static void
dp_tvs_deferred_run(struct dp_tvs *tv)
{
	for (uint32_t k = 0; k <= tv->nwords && tv->ndeferred > 0 && tv->budget > 0; k++) {
		uint32_t w = (tv->cursor + k) % tv->nwords;

		while (tv->deferred[w] != 0 && tv->budget > 0) {
			uint32_t conn = w * 64 + (uint32_t)__builtin_ctzll(tv->deferred[w]);
			struct dp_tvs_conn *c = &tv->conns[conn];

			dp_tvs_undefer(tv, conn);
			if (c->s == NULL || (c->flags & DP_C_DONE) || !dp_tvs_spend(tv, c->s))
				continue;
			dp_tvs_result(tv, conn, tvs_session_resume(c->s));
		}
		if (tv->deferred[w] != 0)
			tv->cursor = w;	/* budget ran out here: start here next turn */
		else
			tv->cursor = (w + 1) % tv->nwords;
	}
}

/* Handshakes and requests past the request timeout: closed, counted. */
static void
dp_tvs_sweep(struct dp_lcore *lc, struct dp_tvs *tv)
{
	uint32_t max = dp_app.cfg.tvs.max_conns;

	for (uint32_t i = 0; i < max && tv->nsess > 0; i++) {
		struct dp_tvs_conn *c = &tv->conns[i];

		if (c->s == NULL || c->deadline == 0 || tv->now < c->deadline)
			continue;
		lc->stats.c[DP_C_tvs_request_timeouts]++;
		c->deadline = 0;
		dp_tvs_undefer(tv, i);
		dp_tvs_result(tv, i, tvs_session_close(c->s));
	}
}

void
dp_tvs_turn(struct dp_lcore *lc, uint64_t now)
{
	struct dp_tvs *tv = lc->tvs;

	if (tv == NULL)
		return;
	tv->now = now;
	/* waiting handshakes go before the next burst's new ones */
	tv->budget = dp_app.cfg.tvs.handshake_budget;
	dp_tvs_follow(lc, tv);
	tcp_tick(tv->tcp, now);
	if (tv->eng != NULL && tvs_engine_pending(tv->eng) > 0)
		dp_tvs_offloaded(tv);
	if (tv->ndeferred > 0)
		dp_tvs_deferred_run(tv);
	if (unlikely(now >= tv->next_sweep)) {
		dp_tvs_sweep(lc, tv);
		tv->next_sweep = now + DP_TVS_SWEEP_MS * 1000000ull;
	}
}

/* ---- offload: rings to the control thread ---- */

static int
dp_off_submit(void *ctx, struct tvs_pkey_job *job)
{
	struct dp_tvs *tv = ctx;

	return rte_ring_sp_enqueue(tv->req, job) == 0 ? 0 : -1;
}

static unsigned
dp_off_poll(void *ctx, struct tvs_pkey_job **jobs, unsigned max)
{
	struct dp_tvs *tv = ctx;

	return rte_ring_sc_dequeue_burst(tv->done, (void **)jobs, max, NULL);
}

/*
 * Serves every worker's ring; naps only after DP_OFF_SPIN empty passes,
 * so a burst of handshakes pays no wake-up latency, and naps longer the
 * longer it stays idle, so that an idle TVS does not wake a CPU shared
 * with other work 20,000 times a second.
 */
static void *
dp_off_main(void *arg __rte_unused)
{
	unsigned idle = 0, nap = DP_OFF_NAP_US;

	while (!__atomic_load_n(&dp_off_quit, __ATOMIC_ACQUIRE)) {
		unsigned got = 0;

		for (unsigned w = 0; w < dp_app.nworkers; w++) {
			struct dp_tvs *tv = dp_lcores[dp_app.workers[w]].tvs;
			struct tvs_pkey_job *jobs[DP_OFF_BURST];
			unsigned n;

			if (tv == NULL || !tv->has_off)
				continue;
			n = rte_ring_sc_dequeue_burst(tv->req, (void **)jobs, DP_OFF_BURST, NULL);
			for (unsigned j = 0; j < n; j++) {
				tvs_pkey_job_run(jobs[j]);
				/* sized for every job there can be: never full for long */
				while (rte_ring_sp_enqueue(tv->done, jobs[j]) != 0)
					rte_pause();
			}
			got += n;
		}
		if (got > 0) {
			idle = 0;
			nap = DP_OFF_NAP_US;
		} else if (++idle >= DP_OFF_SPIN) {
			usleep(nap);
			nap = RTE_MIN(nap * 2, (unsigned)DP_OFF_NAP_MAX_US);
		} else {
			rte_pause();
		}
	}
	return NULL;
}

/* ---- setup, per worker ---- */

/* Our MSS: what the smallest MTU of the ports carries (IPv4 + TCP 40). */
static uint16_t
dp_tvs_mss(void)
{
	unsigned mtu = 1500;

	for (unsigned i = 0; i < dp_app.nports; i++)
		if (dp_app.ports[i].mtu < mtu)
			mtu = dp_app.ports[i].mtu;
	return (uint16_t)RTE_MAX(mtu, 128u) - 40;
}

static int
dp_tvs_rings(struct dp_lcore *lc, struct dp_tvs *tv, int socket)
{
	char name[RTE_RING_NAMESIZE];
	/* every session of the lcore may have one job out */
	unsigned size = rte_align32pow2(dp_app.cfg.tvs.max_conns + 1);

	snprintf(name, sizeof(name), "tvs_pkreq_%u", lc->lcore_id);
	tv->req = rte_ring_create(name, size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "tvs_pkdone_%u", lc->lcore_id);
	tv->done = rte_ring_create(name, size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (tv->req == NULL || tv->done == NULL)
		return -1;
	tv->off = (struct tvs_offload){ .submit = dp_off_submit, .poll = dp_off_poll, .ctx = tv };
	tv->has_off = true;
	return 0;
}

int
dp_tvs_lcore_init(struct dp_lcore *lc)
{
	const struct cfg_tvs *c = &dp_app.cfg.tvs;
	int socket = (int)rte_lcore_to_socket_id(lc->lcore_id);
	struct tcp_limits lim = {
		.port = c->port,
		.max_conns = c->max_conns,
		.mss = dp_tvs_mss(),
		.idle_ms = c->idle_timeout_ms,
		.max_per_source = c->max_per_source,
		.max_unready_per_source = c->max_handshakes_per_source,
		.checksum = false,	/* dp_ipv4_cksum: offload or software */
	};
	struct dp_tvs *tv;

	if (!c->enabled)
		return 0;
	tv = rte_zmalloc_socket("tvs_tvs", sizeof(*tv), RTE_CACHE_LINE_SIZE, socket);
	if (tv == NULL)
		goto nomem;
	lc->tvs = tv;
	tv->nwords = (c->max_conns + 63) / 64;
	tv->conns = rte_zmalloc_socket("tvs_conns", c->max_conns * sizeof(*tv->conns),
		RTE_CACHE_LINE_SIZE, socket);
	tv->deferred = rte_zmalloc_socket("tvs_defer", tv->nwords * sizeof(uint64_t), 0, socket);
	if (tv->conns == NULL || tv->deferred == NULL)
		goto nomem;
	if (c->offload == CFG_OFFLOAD_THREAD && dp_tvs_rings(lc, tv, socket) < 0)
		goto nomem;
	tv->req_timeout_ns = (uint64_t)c->request_timeout_ms * 1000000ull;
	tv->budget = c->handshake_budget;
	tv->tcp = tcp_engine_create(&lim, dp_tcp_key, &dp_tvs_tcp_ops, lc);
	if (tv->tcp == NULL) {
		DP_LOG(ERR, "lcore %u: cannot create the TCP engine (%s)", lc->lcore_id,
			strerror(errno));
		return -1;
	}
	return 0;
nomem:
	DP_LOG(ERR, "lcore %u: out of memory for the TVS (%s)", lc->lcore_id,
		rte_strerror(rte_errno));
	return -1;
}

/* On the worker: ASYNC jobs (one per handshake in progress) from a pool. */
void
dp_tvs_lcore_start(struct dp_lcore *lc)
{
	struct dp_tvs *tv = lc->tvs;

	if (tv == NULL)
		return;
	if (tv->has_off && ASYNC_init_thread(dp_app.cfg.tvs.max_conns, 16) != 1)
		DP_LOG(WARNING, "lcore %u: no ASYNC job pool; handshakes allocate jobs",
			lc->lcore_id);
	DP_LOG(INFO, "lcore %u: TVS on TCP port %u, %u connections, offload %s, "
		"handshake budget %u per turn", lc->lcore_id, dp_app.cfg.tvs.port,
		dp_app.cfg.tvs.max_conns, tv->has_off ? "thread" : "none",
		dp_app.cfg.tvs.handshake_budget);
}

/* On the worker at exit: reset every connection, wait (bounded) for the
 * jobs still out, free the session engine on the thread that ran it. */
void
dp_tvs_lcore_stop(struct dp_lcore *lc)
{
	struct dp_tvs *tv = lc->tvs;
	struct tvs_session *ready[DP_TVS_POLL];
	uint64_t until;

	if (tv == NULL)
		return;
	for (uint32_t i = 0; i < dp_app.cfg.tvs.max_conns; i++)
		if (tcp_conn_tuple(tv->tcp, i) != NULL)
			tcp_abort(tv->tcp, i);
	until = rte_get_timer_cycles() + rte_get_timer_hz() * (DP_TVS_STOP_NS / NS_PER_S);
	while (tv->eng != NULL && tvs_engine_pending(tv->eng) > 0
	    && rte_get_timer_cycles() < until) {
		tvs_engine_poll(tv->eng, ready, DP_TVS_POLL);
		rte_pause();
	}
	if (tv->eng != NULL && tvs_engine_pending(tv->eng) == 0) {
		tvs_engine_free(tv->eng);
		tv->eng = NULL;
	} else if (tv->eng != NULL)
		DP_LOG(WARNING, "lcore %u: %u key jobs never came back", lc->lcore_id,
			tvs_engine_pending(tv->eng));
	if (tv->has_off)
		ASYNC_cleanup_thread();
}

void
dp_tvs_lcore_free(struct dp_lcore *lc)
{
	struct dp_tvs *tv = lc->tvs;

	if (tv == NULL)
		return;
	tcp_engine_free(tv->tcp);
	rte_ring_free(tv->req);
	rte_ring_free(tv->done);
	rte_free(tv->conns);
	rte_free(tv->deferred);
	rte_free(tv);
	lc->tvs = NULL;
}

/* Counters copied word by word (see dp_stats_snapshot). */
static void
dp_copy_words(uint64_t *dst, const uint64_t *src, size_t bytes)
{
	for (size_t i = 0; i < bytes / sizeof(uint64_t); i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
}

void
dp_tvs_snapshot(struct dp_lcore *lc)
{
	struct dp_tvs *tv = lc->tvs;

	RTE_BUILD_BUG_ON(sizeof(struct tcp_stats) % sizeof(uint64_t) != 0);
	if (tv == NULL)
		return;
	dp_copy_words((uint64_t *)&lc->stats.tcp, (const uint64_t *)tcp_stats(tv->tcp),
		sizeof(struct tcp_stats));
	if (tv->eng != NULL)
		dp_copy_words(lc->stats.tvs.c, tvs_engine_stats(tv->eng)->c,
			sizeof(struct tvs_stats));
	__atomic_store_n(&lc->stats.tcp_conns, tcp_active(tv->tcp), __ATOMIC_RELAXED);
	__atomic_store_n(&lc->stats.tvs_open, tv->nsess, __ATOMIC_RELAXED);
}

/* ---- main lcore ---- */

int
dp_tvs_init(void)
{
	struct trust_err err = { 0 };

	if (!dp_app.cfg.tvs.enabled)
		return 0;
	if (RAND_bytes(dp_tcp_key, sizeof(dp_tcp_key)) != 1) {
		DP_LOG(ERR, "TVS: no randomness for the SYN cookie key");
		return -1;
	}
	dp_tk = tvs_ticket_keys_new(&err);
	if (dp_tk == NULL) {
		DP_LOG(ERR, "TVS: session ticket keys: %s", err.msg);
		return -1;
	}
	dp_tk_next = dp_mono_s() + dp_app.cfg.tvs.ticket_rotate_s;
	return 0;
}

int
dp_tvs_start(void)
{
	int rc;

	if (!dp_app.cfg.tvs.enabled || dp_app.cfg.tvs.offload != CFG_OFFLOAD_THREAD)
		return 0;
	rc = rte_ctrl_thread_create(&dp_off_tid, "tvs-offload", NULL, dp_off_main, NULL);
	if (rc != 0) {
		DP_LOG(ERR, "TVS: cannot start the key offload thread (%s)", strerror(rc));
		return -1;
	}
	dp_off_running = true;
	return 0;
}

void
dp_tvs_offload_stop(void)
{
	if (!dp_off_running)
		return;
	__atomic_store_n(&dp_off_quit, 1, __ATOMIC_RELEASE);
	pthread_join(dp_off_tid, NULL);
	dp_off_running = false;
}

/*
 * Ticket keys: a new one every ticket-rotate-s; the retired keyset is
 * freed on a later tick, once every worker passed a quiescent state. The
 * main lcore never blocks on that: it also serves the control socket, and
 * a worker that stopped reporting must not freeze it. Until the retired
 * set is freed, the next rotation waits.
 */
void
dp_tvs_main_tick(void)
{
	struct trust_err err = { 0 };
	struct tvs_keyset *old;

	if (dp_tk_retired != NULL && rte_rcu_qsbr_check(dp_app.qsbr, dp_tk_grace, false) == 1) {
		tvs_keyset_free(dp_tk_retired);
		dp_tk_retired = NULL;
	}
	if (dp_tk == NULL || dp_tk_retired != NULL || dp_mono_s() < dp_tk_next)
		return;
	dp_tk_next = dp_mono_s() + dp_app.cfg.tvs.ticket_rotate_s;
	old = tvs_ticket_keys_rotate(dp_tk, &err);
	if (old == NULL) {
		DP_LOG(WARNING, "TVS: ticket keys not rotated (%s)", err.msg);
		return;
	}
	dp_tk_retired = old;
	dp_tk_grace = rte_rcu_qsbr_start(dp_app.qsbr);
	dp_tk_rotations++;
	DP_LOG(INFO, "TVS: session ticket keys rotated (%" PRIu64 " so far)", dp_tk_rotations);
}

void
dp_tvs_fini(void)
{
	dp_tvs_offload_stop();
	tvs_keyset_free(dp_tk_retired);	/* the workers stopped */
	dp_tk_retired = NULL;
	tvs_ticket_keys_free(dp_tk);
	dp_tk = NULL;
	OPENSSL_cleanse(dp_tcp_key, sizeof(dp_tcp_key));
}

static void
dp_tvs_tls_conf(struct tvs_tls_conf *tc)
{
	static const int versions[] = { TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION,
		TLS1_3_VERSION };
	const struct cfg_tvs *c = &dp_app.cfg.tvs;

	memset(tc, 0, sizeof(*tc));
	tc->min_version = versions[c->min_tls];
	tc->max_version = versions[c->max_tls];
	tc->ciphers = c->ciphers;
	tc->ciphersuites = strcmp(c->ciphersuites, "default") == 0 ? NULL : c->ciphersuites;
	/* a ticket must not outlive its key: two rotations retire it */
	tc->session_timeout = RTE_MIN(c->ticket_rotate_s, (unsigned)TVS_DEFAULT_SESSION_TIMEOUT);
	tc->session_cache = c->session_cache;
}

static struct dp_tvs_gen *
dp_tvs_gen_alloc(void)
{
	struct dp_tvs_gen *g = calloc(1, sizeof(*g) + dp_app.nworkers * sizeof(g->tls[0]));

	if (g != NULL)
		g->n = dp_app.nworkers;
	return g;
}

/* The previous generation's contexts, one more reference each. */
static struct dp_tvs_gen *
dp_tvs_gen_share(struct dp_tvs_gen *g, const struct dp_tvs_gen *prev)
{
	for (unsigned w = 0; w < g->n; w++) {
		g->tls[w] = prev->tls[w];
		tvs_tls_ref(g->tls[w]);
	}
	memcpy(g->fingerprint, prev->fingerprint, sizeof(g->fingerprint));
	return g;
}

static int
dp_tvs_gen_build(struct dp_tvs_gen *g, const struct publication *p, char *msg, size_t msgsz)
{
	struct trust_err err = { 0 };
	struct tvs_tls_conf tc;

	dp_tvs_tls_conf(&tc);
	for (unsigned w = 0; w < g->n; w++) {
		g->tls[w] = tvs_tls_new(&tc, g->id, dp_tk, &err);
		if (g->tls[w] == NULL) {
			snprintf(msg, msgsz, "TVS TLS context: %s", err.msg);
			return -1;
		}
	}
	DP_LOG(NOTICE, "generation %" PRIu64 ": TVS certificate %s, new TLS contexts for %u "
		"workers (key offload %s)", p->generation, g->fingerprint, g->n,
		tvs_identity_offloadable(g->id) ? "possible" : "not possible: signed inline");
	return 0;
}

static void
dp_tvs_gen_fingerprint(struct dp_tvs_gen *g)
{
	const uint8_t *md = tvs_identity_fingerprint(g->id);

	for (unsigned i = 0; i < 32; i++)
		snprintf(g->fingerprint + 2 * i, 3, "%02x", md[i]);
}

/* A publication with no TVS identity: the previous contexts, or none. */
static struct dp_tvs_gen *
dp_tvs_gen_keep(struct dp_tvs_gen *g, const struct publication *p,
	const struct dp_tvs_gen *prev)
{
	DP_LOG(WARNING, "generation %" PRIu64 ": no TVS certificate and key; %s", p->generation,
		prev != NULL ? "the TVS keeps the previous ones" : "the TVS refuses connections");
	if (prev != NULL)
		return dp_tvs_gen_share(g, prev);
	free(g);
	return NULL;
}

/*
 * The TLS contexts of a new generation (main lcore, before the swap): the
 * previous ones when the TVS certificate and key did not change, new ones
 * when they did. A publication with no TVS identity at all keeps the
 * previous contexts (phones keep their TVS) or, at the first load, leaves
 * the TVS refusing connections (tvs_no_tls). An identity that is there but
 * does not load, or whose TLS contexts cannot be built, refuses the whole
 * generation (-1, msg says why): serving it would keep the old key only
 * until the next restart, after which the TVS would refuse everyone.
 */
int
dp_tvs_gen_new(const struct publication *p, const struct dp_tvs_gen *prev,
	struct dp_tvs_gen **out, char *msg, size_t msgsz)
{
	struct trust_err err = { 0 };
	struct dp_tvs_gen *g;

	*out = NULL;
	if (!dp_app.cfg.tvs.enabled)
		return 0;
	if ((g = dp_tvs_gen_alloc()) == NULL) {
		snprintf(msg, msgsz, "TVS: out of memory");
		return -1;
	}
	if (p->tvs_cert_path[0] == '\0' && p->tvs_key_path[0] == '\0') {
		*out = dp_tvs_gen_keep(g, p, prev);
		return 0;
	}
	g->id = tvs_identity_from_pub(p, &err);
	if (g->id == NULL) {
		snprintf(msg, msgsz, "TVS identity: %s", err.msg);
		free(g);
		return -1;
	}
	if (prev != NULL && prev->id != NULL && tvs_identity_equal(g->id, prev->id)) {
		*out = dp_tvs_gen_share(g, prev);
		return 0;
	}
	dp_tvs_gen_fingerprint(g);
	if (dp_tvs_gen_build(g, p, msg, msgsz) != 0) {
		dp_tvs_gen_free(g);
		return -1;
	}
	*out = g;
	return 0;
}

void
dp_tvs_gen_free(struct dp_tvs_gen *g)
{
	if (g == NULL)
		return;
	for (unsigned w = 0; w < g->n; w++)
		tvs_tls_put(g->tls[w]);
	tvs_identity_free(g->id);
	free(g);
}

/* "tvs":{...} for status (main lcore: it alone frees generations). */
void
dp_tvs_json(FILE *f)
{
	const struct cfg_tvs *c = &dp_app.cfg.tvs;
	const struct dp_tvs_gen *g = dp_pub_tvs_gen();
	static const char *const v[] = { "1.0", "1.1", "1.2", "1.3" };

	fprintf(f, ",\"tvs\":{\"enabled\":%s", c->enabled ? "true" : "false");
	if (c->enabled)
		fprintf(f, ",\"port\":%u,\"serving\":%s,\"identity_sha256\":\"%s\","
			"\"tls\":\"%s-%s\",\"offload\":\"%s\",\"ticket_rotations\":%" PRIu64,
			c->port, g != NULL ? "true" : "false", g != NULL ? g->fingerprint : "",
			v[c->min_tls], v[c->max_tls],
			c->offload == CFG_OFFLOAD_THREAD ? "thread" : "none", dp_tk_rotations);
	fputc('}', f);
}
