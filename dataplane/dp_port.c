/*
 * Port setup: one RX/TX queue pair per worker on every configured port.
 *
 * tvsd must run on any PMD (tap, memif, vhost, virtio_user, pcap, ring),
 * so every optional feature is asked for only when dev_info offers it, and
 * a refusal (MTU, promiscuous, RSS, checksum offload) is a warning: the
 * program falls back to software (checksums) or to less (one queue gets
 * all traffic and hands it over rings). RX is never flushed at start: a
 * pcap PMD's packets are the test.
 */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dp.h"

#define DP_POOL_CACHE 256

static struct rte_mempool *dp_pools[RTE_MAX_NUMA_NODES];

/* Data room for the largest frame of any port, VLAN tag included. */
static uint16_t
dp_mbuf_room(void)
{
	unsigned need = RTE_MBUF_DEFAULT_BUF_SIZE;

	for (unsigned i = 0; i < CFG_MAX_PORTS; i++) {
		const struct cfg_port *cp = &dp_app.cfg.ports[i];
		unsigned frame = RTE_PKTMBUF_HEADROOM + cp->mtu + RTE_ETHER_HDR_LEN
			+ RTE_VLAN_HLEN + RTE_ETHER_CRC_LEN;

		if (cp->present && frame > need)
			need = frame;
	}
	return (uint16_t)need;
}

static struct rte_mempool *
dp_pool_get(unsigned socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];

	if (socket >= RTE_MAX_NUMA_NODES)
		socket = 0;
	if (dp_pools[socket] != NULL)
		return dp_pools[socket];
	snprintf(name, sizeof(name), "tvs_mbuf_s%u", socket);
	dp_pools[socket] = rte_pktmbuf_pool_create(name, dp_app.cfg.mbufs, DP_POOL_CACHE, 0,
		dp_mbuf_room(), (int)socket);
	if (dp_pools[socket] == NULL)
		DP_LOG(ERR, "cannot create mbuf pool of %u on socket %u (%s); try a larger -m "
			"or a smaller [tvsd] mbufs", dp_app.cfg.mbufs, socket, rte_strerror(rte_errno));
	return dp_pools[socket];
}

struct rte_mempool *
dp_pool_of_lcore(unsigned lcore)
{
	return dp_pool_get(rte_lcore_to_socket_id(lcore));
}

/*
 * RSS over IP, UDP and TCP when the PMD can and there is more than one
 * queue. A TCP connection belongs to one lcore (dp_tvs.c picks it from the
 * 4-tuple, whichever queue the segment came in on) and segments that land
 * elsewhere are handed over; with TCP in the hash a connection's segments
 * spread evenly and stay on one queue, so hand-offs are the exception.
 */
static void
dp_port_rss(struct dp_port *p, const struct rte_eth_dev_info *info,
	struct rte_eth_conf *conf)
{
	uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP)
		& info->flow_type_rss_offloads;

	if (dp_app.nworkers == 1)
		return;
	if (hf == 0) {
		DP_LOG(WARNING, "port %u: no RSS; queue 0 receives everything and hands "
			"transfers to their owners", p->id);
		return;
	}
	conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
	conf->rx_adv_conf.rss_conf.rss_hf = hf;
	p->rss = true;
}

static void
dp_port_offloads(struct dp_port *p, const struct rte_eth_dev_info *info,
	struct rte_eth_conf *conf)
{
	const uint64_t rx = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM
		| RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	const uint64_t tx = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	const uint64_t tx_tcp = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;

	/* RX checks are only a shortcut: unknown status means software. */
	conf->rxmode.offloads = info->rx_offload_capa & rx;
	if ((info->tx_offload_capa & tx) == tx) {
		conf->txmode.offloads = tx;
		p->tx_cksum = true;
	} else
		DP_LOG(INFO, "port %u: no TX checksum offload, checksums in software", p->id);
	if ((info->tx_offload_capa & tx_tcp) == tx_tcp) {
		conf->txmode.offloads |= tx_tcp;
		p->tx_tcp_cksum = true;
	}
	if (info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
}

static int
dp_port_configure(struct dp_port *p, const struct rte_eth_dev_info *info)
{
	uint16_t nq = (uint16_t)dp_app.nworkers;
	struct rte_eth_conf conf;
	int rc;

	if (info->max_rx_queues < nq || info->max_tx_queues < nq) {
		DP_LOG(ERR, "port %u (%s): %u RX / %u TX queues, %u workers need %u each",
			p->id, info->driver_name, info->max_rx_queues, info->max_tx_queues,
			nq, nq);
		return -EINVAL;
	}
	memset(&conf, 0, sizeof(conf));
	dp_port_rss(p, info, &conf);
	dp_port_offloads(p, info, &conf);
	rc = rte_eth_dev_configure(p->id, nq, nq, &conf);
	if (rc < 0 && p->rss) {
		DP_LOG(WARNING, "port %u: configure with RSS failed (%s), trying without",
			p->id, rte_strerror(-rc));
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
		conf.rx_adv_conf.rss_conf.rss_hf = 0;
		p->rss = false;
		rc = rte_eth_dev_configure(p->id, nq, nq, &conf);
	}
	if (rc < 0)
		DP_LOG(ERR, "port %u: configure failed (%s)", p->id, rte_strerror(-rc));
	return rc;
}

/* mbufs the descriptor rings of every port and queue can hold at once */
static unsigned dp_ring_mbufs;

static int
dp_port_queues(struct dp_port *p, const struct cfg_port *cp)
{
	uint16_t nrx = cp->rx_desc, ntx = cp->tx_desc;
	struct rte_eth_dev_info info;
	int rc;

	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &nrx, &ntx);
	if (rc < 0 || rte_eth_dev_info_get(p->id, &info) != 0) {
		DP_LOG(ERR, "port %u: descriptor counts refused (%s)", p->id, rte_strerror(-rc));
		return -EINVAL;
	}
	dp_ring_mbufs += dp_app.nworkers * (unsigned)(nrx + ntx);
	for (unsigned w = 0; w < dp_app.nworkers; w++) {
		unsigned lcore = dp_app.workers[w];
		int sock = (int)rte_lcore_to_socket_id(lcore);
		struct rte_eth_txconf txc = info.default_txconf;
		struct rte_eth_rxconf rxc = info.default_rxconf;
		struct rte_mempool *mp = dp_pool_of_lcore(lcore);

		if (mp == NULL)
			return -ENOMEM;
		rxc.offloads = 0;
		txc.offloads = 0;
		rc = rte_eth_rx_queue_setup(p->id, (uint16_t)w, nrx, sock, &rxc, mp);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->id, (uint16_t)w, ntx, sock, &txc);
		if (rc < 0) {
			DP_LOG(ERR, "port %u queue %u: setup failed (%s)", p->id, w,
				rte_strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* MTU and promiscuous mode: wishes, not requirements. */
static void
dp_port_wishes(struct dp_port *p, const struct cfg_port *cp)
{
	uint16_t mtu = 0;
	int rc;

	rc = rte_eth_dev_set_mtu(p->id, cp->mtu);
	if (rc < 0)
		DP_LOG(WARNING, "port %u: cannot set MTU %u (%s)", p->id, cp->mtu,
			rte_strerror(-rc));
	if (rte_eth_dev_get_mtu(p->id, &mtu) != 0 || mtu == 0 || mtu > cp->mtu)
		mtu = cp->mtu;	/* we never send more than configured */
	p->mtu = mtu;
	if (cp->promiscuous) {
		rc = rte_eth_promiscuous_enable(p->id);
		if (rc < 0)
			DP_LOG(WARNING, "port %u: promiscuous mode not available (%s)", p->id,
				rte_strerror(-rc));
	}
}

/*
 * How the NIC spreads TCP over the queues (key and redirection table), so
 * that dp_tcp_owner can predict it. Not knowing is fine: dp_tcp_owner
 * then hashes by itself and the queue that disagrees hands the segment
 * over. rss_udp: UDP is hashed on its 4-tuple too, so the TFTP engines can
 * pick transfer ports whose ACKs land on their own queue.
 */
static void
dp_port_reta(struct dp_port *p, const struct rte_eth_dev_info *info)
{
	struct rte_eth_rss_reta_entry64 conf[DP_RETA_MAX / RTE_ETH_RETA_GROUP_SIZE];
	struct rte_eth_rss_conf rss = { .rss_key = p->rss_key, .rss_key_len = DP_RSS_KEY_MAX };
	uint16_t n = info->reta_size;

	p->reta_size = 0;
	p->rss_udp = false;
	if (!p->rss || n == 0 || n > DP_RETA_MAX || n % RTE_ETH_RETA_GROUP_SIZE != 0)
		return;
	if (rte_eth_dev_rss_hash_conf_get(p->id, &rss) != 0
	    || !(rss.rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP) || rss.rss_key_len < 16)
		return;
	memset(conf, 0, sizeof(conf));
	for (unsigned i = 0; i < n / RTE_ETH_RETA_GROUP_SIZE; i++)
		conf[i].mask = UINT64_MAX;
	if (rte_eth_dev_rss_reta_query(p->id, conf, n) != 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint16_t q = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];

		if (q >= dp_app.nworkers)
			return;
		p->reta[i] = q;
	}
	p->reta_size = n;
	p->rss_udp = (rss.rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_UDP) != 0;
}

static int
dp_port_init(unsigned idx, unsigned portid, const struct cfg_port *cp)
{
	struct dp_port *p = &dp_app.ports[idx];
	struct rte_eth_dev_info info;
	int rc;

	if (!rte_eth_dev_is_valid_port((uint16_t)portid)) {
		DP_LOG(ERR, "%s:%u: [port%u] but DPDK has no port %u (%u ports; check --vdev/-a)",
			dp_app.cfg.path, cp->line, portid, portid, rte_eth_dev_count_avail());
		return -ENODEV;
	}
	p->id = (uint16_t)portid;
	p->ip = cp->ip;
	p->ip_be = rte_cpu_to_be_32(cp->ip);
	p->prefix = cp->prefix;
	p->vlan = cp->vlan;
	rc = rte_eth_dev_info_get(p->id, &info);
	if (rc == 0)
		rc = dp_port_configure(p, &info);
	if (rc == 0)
		rc = dp_port_queues(p, cp);
	if (rc < 0)
		return rc;
	dp_port_wishes(p, cp);
	rte_eth_macaddr_get(p->id, &p->mac);
	rc = rte_eth_dev_start(p->id);
	if (rc < 0) {
		DP_LOG(ERR, "port %u: start failed (%s)", p->id, rte_strerror(-rc));
		return rc;
	}
	dp_port_reta(p, &info);
	DP_LOG(INFO, "port %u (%s): " RTE_ETHER_ADDR_PRT_FMT " %u.%u.%u.%u/%u vlan %u mtu %u, "
		"%u queues%s%s", p->id, info.driver_name, RTE_ETHER_ADDR_BYTES(&p->mac),
		p->ip >> 24, (p->ip >> 16) & 255, (p->ip >> 8) & 255, p->ip & 255, p->prefix,
		p->vlan, p->mtu, dp_app.nworkers,
		p->reta_size == 0 ? (p->rss ? ", RSS" : "") : p->rss_udp
		? ", RSS (TCP owner and TFTP ports = NIC queue)" : ", RSS (TCP owner = NIC queue)",
		p->tx_cksum ? ", TX checksum offload" : "");
	return 0;
}

/*
 * Every RX ring is filled at start and every TX ring and per-lcore mempool
 * cache can fill under load, so a pool smaller than their sum runs dry
 * (drop_nombuf) exactly when the appliance is busiest. The default suits a
 * few workers; with many (16 workers x 2 ports x 2,048 descriptors is
 * 65,536 mbufs in rings alone) the operator must raise [tvsd] mbufs, and
 * should hear it at start rather than during a reset storm.
 */
static void
dp_mbufs_check(void)
{
	unsigned need = dp_ring_mbufs + dp_app.nworkers * DP_POOL_CACHE * 3 / 2;

	if (dp_app.cfg.mbufs < need)
		DP_LOG(WARNING, "[tvsd] mbufs = %u is less than the %u that %u worker(s) can "
			"hold in RX/TX rings and mempool caches; under load packets will be "
			"dropped (drop_nombuf): raise mbufs to at least %u", dp_app.cfg.mbufs,
			need, dp_app.nworkers, need + need / 2);
}

int
dp_ports_init(void)
{
	unsigned smallest = 65535;

	memset(dp_app.port_index, 0xff, sizeof(dp_app.port_index));
	for (unsigned i = 0; i < CFG_MAX_PORTS; i++) {
		const struct cfg_port *cp = &dp_app.cfg.ports[i];
		int rc;

		if (!cp->present)
			continue;
		rc = dp_port_init(dp_app.nports, i, cp);
		if (rc < 0)
			return rc;
		dp_app.port_index[i] = (uint8_t)dp_app.nports;
		if (dp_app.ports[dp_app.nports].mtu < smallest)
			smallest = dp_app.ports[dp_app.nports].mtu;
		dp_app.nports++;
	}
	dp_mbufs_check();
	/* IPv4 + UDP + TFTP DATA headers must fit the smallest MTU. */
	dp_app.blksize_cap = (uint16_t)RTE_MIN((unsigned)dp_app.cfg.tftp.max_blksize,
		smallest - 20 - 8 - 4);
	if (dp_app.blksize_cap < dp_app.cfg.tftp.max_blksize)
		DP_LOG(INFO, "TFTP blksize capped at %u by MTU %u", dp_app.blksize_cap, smallest);
	return 0;
}

void
dp_ports_close(void)
{
	for (unsigned i = 0; i < dp_app.nports; i++) {
		uint16_t id = dp_app.ports[i].id;
		int rc = rte_eth_dev_stop(id);

		if (rc != 0)
			DP_LOG(WARNING, "port %u: stop failed (%s)", id, rte_strerror(-rc));
		rte_eth_dev_close(id);
	}
	dp_app.nports = 0;
	for (unsigned s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		rte_mempool_free(dp_pools[s]);
		dp_pools[s] = NULL;
	}
}
