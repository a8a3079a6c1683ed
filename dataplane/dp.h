/*
 * tvsd: the DPDK fast path that serves the publication over TFTP.
 *
 * Shape (l3fwd): the main lcore sets everything up, then runs the control
 * loop (control socket, SIGHUP reloads, freeing old publications); every
 * worker lcore polls one RX/TX queue pair on every port, answers ARP and
 * ICMP echo itself and feeds TFTP datagrams to its own tftp engine.
 *
 * Transfer ports: worker i owns the UDP ports [base + i*max, base +
 * (i+1)*max). RSS may deliver a client's ACK to another worker; that one
 * hands the mbuf to the owner over the owner's rte_ring, so a transfer's
 * state is only ever touched by one lcore. When a port's RSS key and
 * redirection table are known, a new transfer takes a free port whose
 * 4-tuple the NIC hashes to the owner's own queue (dp_tftp_port_local,
 * tftp_ops.port_local), so its ACKs need no hand-off; tftp_port_unsteered
 * counts the transfers for which none of the ports scanned did.
 *
 * TVS: TCP segments for [tvs] port go to the worker that owns their
 * 4-tuple (dp_tvs.c: the NIC's RSS choice when known, else a hash), whose
 * TCP engine (tcp.h) and TLS sessions (tvs_session.h) answer them; RSA
 * operations of handshakes may go to an offload thread over rte_rings.
 *
 * Per-source bounds (issue 10): each worker's TFTP and TCP engines count
 * what every client address holds (src_count.h) and refuse, counted, past
 * [tftp] max-transfers-per-source and [tvs] max-conns-per-source /
 * max-handshakes-per-source. They are per worker, as the tables are: a
 * client's source ports spread over the workers by RSS, so with W workers
 * one address holds at most W times a bound (by default, of a worker's
 * 1,024 slots: 32 transfers, 64 connections of which 32 in handshake).
 *
 * Everything a worker writes lives in its own cache-aligned struct
 * dp_lcore; readers (telemetry thread, control loop) only load counters.
 * The publication is one pointer swapped with QSBR RCU (dp_pub.c).
 */
#ifndef DP_DP_H
#define DP_DP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_rcu_qsbr.h>

#include "cfg.h"
#include "dp_cache.h"
#include "tcp.h"
#include "tftp.h"
#include "tvs_session.h"

#define DP_BURST 32
#define DP_PREFETCH 4		/* packets ahead */
#define DP_RING_SIZE 1024	/* hand-offs waiting for one lcore */
#define DP_MAX_PORTS CFG_MAX_PORTS
#define DP_DRAIN_US 100		/* under load, TX buffers flushed at least this often */
#define DP_STATS_US 1000	/* engine counters copied out this often */
#define DP_RSS_KEY_MAX 64
#define DP_RETA_MAX 512

extern int dp_logtype;
extern int dp_logtype_ctl;
#define DP_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_ ## level, dp_logtype, "tvsd: " fmt "\n", ## __VA_ARGS__)
#define CTL_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_ ## level, dp_logtype_ctl, "tvsd ctl: " fmt "\n", ## __VA_ARGS__)

/* Counters of one lcore; names are the telemetry / JSON keys. */
#define DP_COUNTERS(X) \
	X(rx_pkts) X(rx_bytes) X(tx_pkts) \
	X(arp_replies) X(icmp_replies) X(tftp_pkts) \
	X(handoff_out) X(handoff_in) \
	X(drop_runt) X(drop_vlan) X(drop_ethertype) X(drop_arp) \
	X(drop_ip_hdr) X(drop_ip_cksum) X(drop_ip_frag) X(drop_ip_dst) X(drop_ip_proto) \
	X(drop_icmp) X(drop_udp_hdr) X(drop_udp_cksum) X(drop_udp_port) \
	X(drop_ring_full) X(drop_nombuf) X(drop_tx_full) X(drop_no_peer) X(drop_too_big) \
	X(tcp_pkts) X(drop_tcp_hdr) X(drop_tcp_cksum) X(drop_tcp_port) \
	X(tvs_request_timeouts) X(tvs_deferred) X(tvs_no_tls)

enum dp_counter {
#define DP_ENUM(n) DP_C_ ## n,
	DP_COUNTERS(DP_ENUM)
#undef DP_ENUM
	DP_C_MAX
};

extern const char *const dp_counter_names[DP_C_MAX];

/* Written by the owning lcore only. */
struct dp_stats {
	uint64_t c[DP_C_MAX];
	struct tftp_stats tftp;		/* copied from the engine every DP_STATS_US */
	uint64_t active;		/* transfers in progress */
	uint64_t generation;		/* publication the lcore last saw */
	struct dp_cache_counters cert;	/* certificate cache lookups (dp_cache.c) */
	struct tcp_stats tcp;		/* copied from the TCP engine every DP_STATS_US */
	struct tvs_stats tvs;		/* copied from the TVS session engine */
	uint64_t tcp_conns;		/* TCP slots in use, TIME_WAIT included */
	uint64_t tvs_open;		/* TVS sessions alive */
};

/* Where a transfer's replies go: learned from the request. */
struct dp_l2 {
	struct rte_ether_addr mac;
	uint32_t ip;			/* network byte order */
	uint16_t port;			/* index into dp_app.ports */
	bool valid;
};

struct dp_port {
	uint16_t id;			/* DPDK port id */
	struct rte_ether_addr mac;
	uint32_t ip;			/* host byte order */
	uint32_t ip_be;
	uint8_t prefix;
	uint16_t vlan;			/* 0: untagged */
	uint16_t mtu;			/* what the PMD really has */
	bool tx_cksum;			/* IPv4 + UDP checksum offload */
	bool tx_tcp_cksum;		/* IPv4 + TCP checksum offload */
	/* RSS over TCP known (dp_port_reta): the NIC's key and table, so that
	 * dp_rss_queue predicts its queue (rte_softrss reads the key as
	 * words: aligned); rss_udp: UDP is hashed on its 4-tuple too. */
	uint16_t reta_size;
	uint8_t rss_key[DP_RSS_KEY_MAX] __rte_aligned(4);
	uint16_t reta[DP_RETA_MAX];
	bool rss_udp;
	bool rss;
};

struct dp_lcore {
	unsigned lcore_id;
	unsigned worker;		/* index: queue id and port range */
	struct rte_mempool *pool;
	struct rte_ring *ring;		/* hand-offs to this lcore */
	struct rte_eth_dev_tx_buffer *txb[DP_MAX_PORTS];
	struct tftp_engine *tftp;
	struct dp_tvs *tvs;		/* TCP + TLS + TVS (dp_tvs.c); NULL when off */
	uint16_t port_base;		/* of this engine */
	struct dp_l2 *slot_l2;		/* per transfer slot */
	const struct dp_l2 *cur;	/* sender of the packet being input */
	uint16_t ip_id;
	uint64_t ns_mult;		/* TSC to ns, 32.32 fixed point */
	struct dp_stats stats;
} __rte_cache_aligned;

struct dp_app {
	struct tvs_config cfg;
	struct dp_port ports[DP_MAX_PORTS];
	unsigned nports;
	uint8_t port_index[RTE_MAX_ETHPORTS];	/* DPDK id -> index, 0xff: none */
	unsigned workers[RTE_MAX_LCORE];	/* worker index -> lcore id */
	unsigned nworkers;
	uint16_t blksize_cap;			/* from the smallest MTU */
	struct rte_rcu_qsbr *qsbr;
	uint64_t started;			/* time(NULL) */
};

extern struct dp_app dp_app;
extern struct dp_lcore dp_lcores[RTE_MAX_LCORE];
extern volatile int dp_quit;

/* dp_port.c */
int dp_ports_init(void);
struct rte_mempool *dp_pool_of_lcore(unsigned lcore);
void dp_ports_close(void);

/* dp_worker.c */
int dp_workers_init(void);
int dp_worker_main(void *arg);
void dp_workers_free(void);
extern const struct tftp_ops dp_tftp_ops;

/*
 * dp_tvs.c: the TVS on TCP 2445 of every worker lcore (TCP engine, TLS
 * sessions, private-key offload) and its main-lcore side (TLS contexts
 * per generation, ticket key rotation, the offload thread).
 */
struct dp_tvs;
struct dp_tvs_gen;
struct rte_ether_hdr;
struct rte_ipv4_hdr;
int dp_tvs_init(void);				/* main, before the workers' init */
int dp_tvs_lcore_init(struct dp_lcore *lc);	/* main, per worker */
int dp_tvs_start(void);				/* main, before the launch */
void dp_tvs_lcore_start(struct dp_lcore *lc);	/* on the worker, at its start */
void dp_tvs_turn(struct dp_lcore *lc, uint64_t now);	/* on the worker, every turn */
void dp_tvs_lcore_stop(struct dp_lcore *lc);	/* on the worker, at its end */
void dp_tvs_snapshot(struct dp_lcore *lc);
void dp_tcp_input(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m,
	const struct rte_ether_hdr *eth, const struct rte_ipv4_hdr *ip, unsigned l4len,
	uint64_t now);
void dp_tvs_main_tick(void);			/* main loop: ticket keys */
void dp_tvs_offload_stop(void);			/* main, after the workers stopped */
void dp_tvs_lcore_free(struct dp_lcore *lc);
void dp_tvs_fini(void);				/* after the last generation is freed */
/* 0 and *out (NULL: no TVS) or -1 and msg: the generation is refused. */
int dp_tvs_gen_new(const struct publication *p, const struct dp_tvs_gen *prev,
	struct dp_tvs_gen **out, char *msg, size_t msgsz);
void dp_tvs_gen_free(struct dp_tvs_gen *g);
void dp_tvs_json(FILE *f);			/* status: TVS identity and settings */

/* dp_pub.c: generations of the publication */
int dp_pub_init(void);
int dp_pub_reload(char *msg, size_t msgsz);
void dp_pub_reap(void);
void dp_pub_fini(void);
uint64_t dp_pub_generation(void);
/* Fills a JSON object body (no braces) describing the current generation. */
void dp_pub_json(FILE *f);
struct rte_tel_data;
void dp_pub_tel(struct rte_tel_data *d);

/* dp_stats.c: aggregation, telemetry, JSON */
void dp_stats_sum(struct dp_stats *out, int lcore);	/* lcore < 0: all */
void dp_stats_json(FILE *f);
int dp_telemetry_init(void);

/* dp_priv.c: before EAL, check [tvsd] user and fork the clean-up helper;
 * after setup, become that user; at exit, clean what no helper will. */
int dp_priv_prepare(const struct tvs_config *c);
int dp_priv_drop(void);
void dp_priv_exit(void);

/*
 * The certificate cache of the generation being served, for a worker
 * between two quiescent states: dp_pub_cache for bulk lookups of a burst
 * (NULL while no publication is served), dp_pub_tvs_lookup for
 * tvs_answer; the latter is bound to the lcore, not to a generation, so a
 * copy kept by the TVS engine follows every swap.
 */
const struct dp_cache *dp_pub_cache(unsigned lcore);
struct tvs_lookup dp_pub_tvs_lookup(unsigned lcore);
/* The TLS contexts of the generation being served (NULL: none), for a
 * worker between two quiescent states. */
const struct dp_tvs_gen *dp_pub_tvs_gen(void);

/* Publication lookups for the TFTP engine (tftp_ops). */
int dp_pub_lookup(void *ctx, const char *name, struct tftp_file *f);
void dp_pub_release(void *ctx, void *ref);

/* dp_rollout.c: which phone fetched which ITL generation (tftp_ops.done on
 * the workers, drained by the main lcore, `rollout` on the control socket) */
int dp_rollout_init(void);
void dp_rollout_done(void *ctx, const char *name, const struct tftp_peer *peer,
	uint64_t generation, bool ok);
void dp_rollout_drain(void);
void dp_rollout_json(FILE *f);
void dp_rollout_fini(void);

/* dp_ctl.c: control socket served by the main lcore */
void dp_json_str(FILE *f, const char *s);
int dp_ctl_open(const char *path);
void dp_ctl_poll(int timeout_ms);
void dp_ctl_close(void);
extern volatile int dp_reload_requested;

#endif
