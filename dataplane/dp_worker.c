/*
 * Worker lcores: setup of their private state, the poll loop, and the
 * glue that lets the DPDK-free TFTP engine send UDP datagrams.
 */
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_random.h>

#include "dp.h"
#include "dp_hot.h"

struct dp_lcore dp_lcores[RTE_MAX_LCORE];

/* Where to send from transfer port src_port: the sender of the packet
 * being input (remembered for the slot), else what the slot remembers. */
static const struct dp_l2 *
dp_peer_l2(struct dp_lcore *lc, const struct tftp_peer *to, uint16_t src_port)
{
	uint32_t slot = (uint32_t)src_port - lc->port_base;
	bool mine = src_port >= lc->port_base && slot < dp_app.cfg.tftp.max_transfers;
	uint32_t ip = rte_cpu_to_be_32(to->ip);

	if (lc->cur != NULL && lc->cur->ip == ip) {
		if (mine)
			lc->slot_l2[slot] = *lc->cur;
		return lc->cur;
	}
	if (mine && lc->slot_l2[slot].valid && lc->slot_l2[slot].ip == ip)
		return &lc->slot_l2[slot];
	return NULL;
}

static void
dp_tftp_send(void *ctx, const struct tftp_peer *to, uint16_t src_port,
	const uint8_t *hdr, size_t hdrlen, const uint8_t *body, size_t bodylen)
{
	struct dp_lcore *lc = ctx;
	const struct dp_l2 *l2 = dp_peer_l2(lc, to, src_port);
	const struct dp_port *p;
	struct rte_udp_hdr *udp;
	struct rte_mbuf *m;
	size_t l2len, paylen = hdrlen + bodylen;
	uint8_t *d;

	if (unlikely(l2 == NULL)) {
		lc->stats.c[DP_C_drop_no_peer]++;
		return;
	}
	p = &dp_app.ports[l2->port];
	m = dp_ipv4_frame(lc, p, l2, IPPROTO_UDP, sizeof(*udp) + paylen, &d, &l2len);
	if (unlikely(m == NULL))
		return;
	udp = (struct rte_udp_hdr *)d;
	udp->src_port = rte_cpu_to_be_16(src_port);
	udp->dst_port = rte_cpu_to_be_16(to->port);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + paylen));
	udp->dgram_cksum = 0;
	memcpy(udp + 1, hdr, hdrlen);
	if (bodylen > 0)
		memcpy((uint8_t *)(udp + 1) + hdrlen, body, bodylen);
	udp->dgram_cksum = dp_ipv4_cksum(m, l2len, p->tx_cksum, RTE_MBUF_F_TX_UDP_CKSUM);
	dp_tx(lc, l2->port, m);
}

/*
 * tftp_ops.port_local: whether the client's ACKs to this transfer port
 * will come in on our own RX queue, so the transfer needs no hand-off.
 * RSS hashes them on their 4-tuple (client address, our address, client
 * port, transfer port: the ACK's direction), so without this a transfer
 * started here gets its ACKs here only one time in nworkers. Set only
 * when there are several workers and some port's RSS key and redirection
 * table are known (dp_port_reta); on a port whose are not, any will do.
 * No PMD of the test VM reports a table (net_tap, net_vhost), so this
 * runs only on real multi-queue NICs; the hash is tested against the
 * Microsoft RSS vectors (tests/c/test_dp_rss.c).
 */
static bool
dp_tftp_port_local(void *ctx, const struct tftp_peer *peer, uint16_t port)
{
	const struct dp_lcore *lc = ctx;
	const struct dp_port *p;

	if (lc->cur == NULL)
		return true;
	p = &dp_app.ports[lc->cur->port];
	if (p->reta_size == 0 || !p->rss_udp)
		return true;
	return dp_rss_queue(p, peer->ip, p->ip, peer->port, port) == lc->worker;
}

/* Some port says how its NIC spreads UDP over the queues. */
static bool
dp_rss_known(void)
{
	for (unsigned i = 0; i < dp_app.nports; i++)
		if (dp_app.ports[i].reta_size > 0 && dp_app.ports[i].rss_udp)
			return true;
	return false;
}

const struct tftp_ops dp_tftp_ops = {
	.lookup = dp_pub_lookup,
	.release = dp_pub_release,
	.send = dp_tftp_send,
	.done = dp_rollout_done,
};

/* The engine's counters, copied word by word so readers never see a
 * half-written one. */
static void
dp_stats_snapshot(struct dp_lcore *lc)
{
	const uint64_t *src = (const uint64_t *)tftp_stats(lc->tftp);
	uint64_t *dst = (uint64_t *)&lc->stats.tftp;

	RTE_BUILD_BUG_ON(sizeof(struct tftp_stats) % sizeof(uint64_t) != 0);
	for (size_t i = 0; i < sizeof(struct tftp_stats) / sizeof(uint64_t); i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
	__atomic_store_n(&lc->stats.active, tftp_active(lc->tftp), __ATOMIC_RELAXED);
	__atomic_store_n(&lc->stats.generation, dp_pub_generation(), __ATOMIC_RELAXED);
	dp_tvs_snapshot(lc);
}

static inline uint64_t
dp_ns(const struct dp_lcore *lc, uint64_t tsc)
{
	return (uint64_t)(((unsigned __int128)tsc * lc->ns_mult) >> 32);
}

static void
dp_tx_flush(struct dp_lcore *lc)
{
	for (unsigned i = 0; i < dp_app.nports; i++)
		lc->stats.c[DP_C_tx_pkts] += rte_eth_tx_buffer_flush(dp_app.ports[i].id,
			(uint16_t)lc->worker, lc->txb[i]);
}

/* Returns how many packets it took in; DP_BURST or more means more wait. */
static inline unsigned
dp_poll_once(struct dp_lcore *lc, uint64_t now)
{
	struct rte_mbuf *pkts[DP_BURST];
	unsigned n, total = 0;

	for (unsigned i = 0; i < dp_app.nports; i++) {
		n = rte_eth_rx_burst(dp_app.ports[i].id, (uint16_t)lc->worker, pkts, DP_BURST);
		if (n == 0)
			continue;
		lc->stats.c[DP_C_rx_pkts] += n;
		total += n;
		for (unsigned j = 0; j < n; j++)
			lc->stats.c[DP_C_rx_bytes] += pkts[j]->pkt_len;
		dp_burst_input(lc, pkts, n, now);
	}
	n = rte_ring_dequeue_burst(lc->ring, (void **)pkts, DP_BURST, NULL);
	if (n > 0) {
		lc->stats.c[DP_C_handoff_in] += n;
		total += n;
		dp_burst_input(lc, pkts, n, now);
	}
	return total;
}

int
dp_worker_main(void *arg __rte_unused)
{
	unsigned lcore = rte_lcore_id();
	struct dp_lcore *lc = &dp_lcores[lcore];
	uint64_t hz = rte_get_tsc_hz();
	uint64_t drain = hz * DP_DRAIN_US / 1000000, every = hz * DP_STATS_US / 1000000;
	uint64_t last_drain = 0, last_stats = 0;
	bool busy;

	if (lc->tftp == NULL)
		return 0;	/* the main lcore, or one we do not use */
	rte_rcu_qsbr_thread_register(dp_app.qsbr, lcore);
	rte_rcu_qsbr_thread_online(dp_app.qsbr, lcore);
	dp_tvs_lcore_start(lc);
	DP_LOG(INFO, "lcore %u: worker %u, queue %u, transfer ports %u-%u", lcore, lc->worker,
		lc->worker, lc->port_base, lc->port_base + dp_app.cfg.tftp.max_transfers - 1);
	while (!dp_quit) {
		uint64_t tsc = rte_rdtsc(), now = dp_ns(lc, tsc);

		/* Top of the loop: this lcore holds no publication pointer. */
		rte_rcu_qsbr_quiescent(dp_app.qsbr, lcore);
		busy = dp_poll_once(lc, now) >= DP_BURST;
		tftp_tick(lc->tftp, now);
		dp_tvs_turn(lc, now);
		/*
		 * Lock-step TFTP waits one round trip per block, so replies leave
		 * as soon as the RX queues are drained; only under load, while
		 * full bursts keep coming, do they wait for a fuller TX burst.
		 */
		if (!busy || unlikely(tsc - last_drain >= drain)) {
			dp_tx_flush(lc);
			last_drain = tsc;
		}
		if (unlikely(tsc - last_stats >= every)) {
			dp_stats_snapshot(lc);
			last_stats = tsc;
		}
	}
	dp_tvs_lcore_stop(lc);
	dp_tx_flush(lc);
	dp_stats_snapshot(lc);
	rte_rcu_qsbr_thread_offline(dp_app.qsbr, lcore);
	rte_rcu_qsbr_thread_unregister(dp_app.qsbr, lcore);
	DP_LOG(INFO, "lcore %u: worker stopped", lcore);
	return 0;
}

static int
dp_worker_tx_buffers(struct dp_lcore *lc, int socket)
{
	for (unsigned i = 0; i < dp_app.nports; i++) {
		lc->txb[i] = rte_zmalloc_socket("tvs_txb", RTE_ETH_TX_BUFFER_SIZE(DP_BURST), 0,
			socket);
		if (lc->txb[i] == NULL)
			return -1;
		rte_eth_tx_buffer_init(lc->txb[i], DP_BURST);
		rte_eth_tx_buffer_set_err_callback(lc->txb[i], rte_eth_tx_buffer_count_callback,
			&lc->stats.c[DP_C_drop_tx_full]);
	}
	return 0;
}

static int
dp_worker_init(unsigned w)
{
	unsigned lcore = dp_app.workers[w];
	struct dp_lcore *lc = &dp_lcores[lcore];
	int socket = (int)rte_lcore_to_socket_id(lcore);
	const struct cfg_tftp *t = &dp_app.cfg.tftp;
	struct tftp_ops ops = dp_tftp_ops;
	struct tftp_limits lim;
	char name[RTE_RING_NAMESIZE];

	lc->lcore_id = lcore;
	lc->worker = w;
	lc->pool = dp_pool_of_lcore(lcore);
	lc->port_base = (uint16_t)(t->port_base + w * t->max_transfers);
	lc->ns_mult = (uint64_t)(((unsigned __int128)NS_PER_S << 32) / rte_get_tsc_hz());
	snprintf(name, sizeof(name), "tvs_handoff_%u", lcore);
	lc->ring = rte_ring_create(name, DP_RING_SIZE, socket, RING_F_SC_DEQ);
	lc->slot_l2 = rte_zmalloc_socket("tvs_slots", t->max_transfers * sizeof(*lc->slot_l2),
		0, socket);
	if (lc->pool == NULL || lc->ring == NULL || lc->slot_l2 == NULL
	    || dp_worker_tx_buffers(lc, socket) < 0) {
		DP_LOG(ERR, "lcore %u: out of memory for its queues (%s)", lcore,
			rte_strerror(rte_errno));
		return -1;
	}
	lim = (struct tftp_limits){
		.max_blksize = dp_app.blksize_cap,
		.max_windowsize = t->max_windowsize,
		.timeout_ms = t->timeout_ms,
		.retries = t->retries,
		.max_timeout_s = t->max_timeout_s,
		.max_life_s = t->max_life_s,
		.max_transfers = t->max_transfers,
		.max_per_source = t->max_per_source,
		.seed = rte_rand(),
		.port_base = lc->port_base,
	};
	if (dp_app.nworkers > 1 && dp_rss_known())
		ops.port_local = dp_tftp_port_local;
	lc->tftp = tftp_engine_create(&lim, &ops, lc);
	if (lc->tftp == NULL) {
		DP_LOG(ERR, "lcore %u: cannot create the TFTP engine", lcore);
		return -1;
	}
	return dp_tvs_lcore_init(lc);
}

int
dp_workers_init(void)
{
	uint32_t last = (uint32_t)dp_app.cfg.tftp.port_base
		+ dp_app.nworkers * dp_app.cfg.tftp.max_transfers;

	if (last > 65536) {
		DP_LOG(ERR, "%s: [tftp] port-base %u + %u workers x %u transfers passes port 65535",
			dp_app.cfg.path, dp_app.cfg.tftp.port_base, dp_app.nworkers,
			dp_app.cfg.tftp.max_transfers);
		return -1;
	}
	for (unsigned w = 0; w < dp_app.nworkers; w++)
		if (dp_worker_init(w) < 0)
			return -1;
	return dp_rollout_init();
}

/* After the workers stopped: engines release the transfers they hold. */
void
dp_workers_free(void)
{
	for (unsigned w = 0; w < dp_app.nworkers; w++) {
		struct dp_lcore *lc = &dp_lcores[dp_app.workers[w]];
		struct rte_mbuf *m;

		dp_tvs_lcore_free(lc);
		if (lc->tftp != NULL)
			tftp_engine_free(lc->tftp);
		lc->tftp = NULL;
		while (lc->ring != NULL && rte_ring_dequeue(lc->ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(lc->ring);
		lc->ring = NULL;
		for (unsigned i = 0; i < DP_MAX_PORTS; i++) {
			if (lc->txb[i] != NULL && i < dp_app.nports)
				rte_eth_tx_buffer_flush(dp_app.ports[i].id, (uint16_t)w, lc->txb[i]);
			rte_free(lc->txb[i]);
			lc->txb[i] = NULL;
		}
		rte_free(lc->slot_l2);
		lc->slot_l2 = NULL;
	}
	dp_rollout_fini();
}
