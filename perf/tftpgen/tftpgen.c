/*
 * tftpgen: a DPDK load generator that plays many Cisco phones fetching
 * their ITL (ITLSEP<MAC>.tlv) over TFTP, and the bare echo peer that
 * measures what the link alone can do.
 *
 *   tftpgen <EAL> -- --server IP [options]        phones against a server
 *   tftpgen <EAL> -- --raw --server IP [options]  same packet pattern, echo peer
 *   tftpgen <EAL> -- --echo [--duration S]        the echo peer itself
 *
 * Per-lcore design, as in l3fwd: every lcore of -l is a worker with its own
 * RX/TX queue, its own transfer slots, UDP source ports, counters and
 * latency histogram; nothing is shared on the hot path and nothing is
 * allocated per packet (mbufs come from one mempool with per-lcore caches).
 * A reply that the NIC delivers to the wrong queue (no RSS on vdevs) is
 * handed to its owner over an rte_ring: the destination UDP port says which
 * worker owns it.
 *
 * Raw mode replays the exact frame pattern of a TFTP transfer (RRQ -> OACK,
 * ACK 0 -> window of DATA, ..., final ACK) against the echo peer: each
 * request carries how many replies of which size it wants, and the echo
 * sends them back at once with no lookup, no state and no file. Its
 * transfers/s is the link's ceiling for the same workload.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "tgopts.h"
#include "tgproto.h"
#include "tgstats.h"

#define BURST 32
#define NB_RXD 1024
#define NB_TXD 1024
#define POOL_CACHE 256
#define HDR_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) \
	+ sizeof(struct rte_udp_hdr))
#define SCAN_NS (1000 * 1000)		/* timer scan period */
#define RX_SCRATCH 65536
#define RAW_MAGIC 0x54475257u		/* "TGRW" */

enum role { ROLE_TFTP, ROLE_RAW, ROLE_ECHO };

/* Raw-mode request: what the echo must send back. Network byte order. */
struct raw_hdr {
	uint32_t magic;
	uint32_t seq;
	uint16_t count;		/* replies wanted */
	uint16_t size;		/* UDP payload of each reply */
	uint16_t last_size;	/* ... except the last one */
	uint16_t index;		/* in replies: which one */
} __rte_packed;

/* Raw-mode emulation of one transfer. */
struct raw_xfer {
	uint32_t seq;
	uint32_t blocks_left;	/* DATA frames still to come */
	uint16_t expect, got;
	uint8_t retries;
	bool oack_phase;
	uint64_t t_start, t_last;
	uint32_t retransmits;
};

struct slot {
	bool busy;
	uint16_t port;		/* our UDP port for this transfer */
	uint32_t ip;		/* our IPv4 address for this transfer */
	uint32_t gen;		/* transfers this slot has run */
	union {
		struct tg_xfer x;
		struct raw_xfer r;
	};
};

struct worker {
	unsigned idx;
	uint16_t queue;
	uint16_t port_lo;	/* this worker's UDP ports: [port_lo, port_lo+port_span) */
	uint32_t nslots;
	struct slot *slots;
	struct rte_ring *inbox;	/* frames other workers received for us */
	uint64_t quota;		/* transfers this worker starts */
	uint64_t next_phone;
	uint32_t inflight;
	uint64_t t_end;		/* last completion (tsc) */
	uint64_t file_size;
	uint16_t ip_id;
	uint16_t ntx;
	struct rte_mbuf *tx[BURST];
	struct tg_counters c;
	struct tg_hist lat;
	uint8_t out[TG_RRQ_MAX];
	uint8_t scratch[RX_SCRATCH];
} __rte_cache_aligned;

/* Set up by the main lcore before launch; read-only afterwards. */
static struct {
	struct tg_opts o;
	enum role role;
	uint64_t port_id;	/* uint64_t: set through the option table */
	uint64_t sport_base;
	uint16_t port_span;
	unsigned nb_workers;
	struct rte_mempool *pool;
	struct rte_ether_addr my_mac, server_mac;
	bool server_mac_set;
	double arp_timeout_s;
	uint64_t hz;
	uint64_t tsc0, tsc_deadline, tsc_hard;
	/* raw mode */
	uint64_t raw_size;
	uint16_t rrq_len, oack_len, data_len, last_len;
	uint32_t raw_blocks;
	struct worker *workers[RTE_MAX_LCORE];
} g;

static volatile bool force_quit;

static void
on_signal(int sig)
{
	(void)sig;
	force_quit = true;
}

static inline uint64_t
tsc_ns(uint64_t tsc)
{
	return (uint64_t)((double)(tsc - g.tsc0) * 1e9 / (double)g.hz);
}

static inline bool
is_mine(uint32_t ip)
{
	return ip - g.o.src_ip < g.o.src_count;
}

/* ---- frames ---- */

static void
tx_flush(struct worker *w)
{
	uint16_t sent = 0, n = w->ntx;
	unsigned tries = 0;

	while (sent < n && tries++ < 4)
		sent += rte_eth_tx_burst(g.port_id, w->queue, w->tx + sent, n - sent);
	if (sent < n) {
		w->c.tx_drops += n - sent;
		rte_pktmbuf_free_bulk(w->tx + sent, n - sent);
	}
	w->ntx = 0;
}

static void
tx_queue(struct worker *w, struct rte_mbuf *m)
{
	w->c.tx_pkts++;
	w->c.tx_bytes += rte_pktmbuf_pkt_len(m);
	w->tx[w->ntx++] = m;
	if (w->ntx == BURST)
		tx_flush(w);
}

static void
fill_udp(struct rte_mbuf *m, const struct rte_ether_addr *dmac, uint32_t sip,
	uint32_t dip, uint16_t sport, uint16_t dport, uint16_t plen, uint16_t id,
	bool cksum)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	rte_ether_addr_copy(dmac, &eh->dst_addr);
	rte_ether_addr_copy(&g.my_mac, &eh->src_addr);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*udp) + plen);
	ip->packet_id = rte_cpu_to_be_16(id);
	ip->fragment_offset = 0;
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(sip);
	ip->dst_addr = rte_cpu_to_be_32(dip);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(dport);
	udp->dgram_len = rte_cpu_to_be_16(sizeof(*udp) + plen);
	udp->dgram_cksum = 0;
	/* the kernel behind net_tap checks it; the echo peer does not need it */
	if (cksum)
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
}

/* A UDP datagram from one of our phones to the server. */
static void
send_udp(struct worker *w, uint32_t sip, uint16_t sport, uint16_t dport,
	const uint8_t *pl, uint16_t plen)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(g.pool);
	uint8_t *p;

	if (m == NULL || (p = (uint8_t *)rte_pktmbuf_append(m, HDR_LEN + plen)) == NULL) {
		w->c.tx_drops++;
		rte_pktmbuf_free(m);
		return;
	}
	memcpy(p + HDR_LEN, pl, plen);
	fill_udp(m, &g.server_mac, sip, g.o.server_ip, sport, dport, plen, w->ip_id++,
		g.role != ROLE_RAW);
	tx_queue(w, m);
}

static void
send_arp(struct worker *w, uint16_t op, const struct rte_ether_addr *tha, uint32_t sip,
	uint32_t tip)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(g.pool);
	struct rte_ether_hdr *eh;
	struct rte_arp_hdr *arp;

	if (m == NULL || rte_pktmbuf_append(m, sizeof(*eh) + sizeof(*arp)) == NULL) {
		w->c.tx_drops++;
		rte_pktmbuf_free(m);
		return;
	}
	eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	arp = (struct rte_arp_hdr *)(eh + 1);
	if (op == RTE_ARP_OP_REQUEST)
		memset(&eh->dst_addr, 0xff, sizeof(eh->dst_addr));
	else
		rte_ether_addr_copy(tha, &eh->dst_addr);
	rte_ether_addr_copy(&g.my_mac, &eh->src_addr);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(op);
	rte_ether_addr_copy(&g.my_mac, &arp->arp_data.arp_sha);
	arp->arp_data.arp_sip = rte_cpu_to_be_32(sip);
	if (op == RTE_ARP_OP_REQUEST)
		memset(&arp->arp_data.arp_tha, 0, sizeof(arp->arp_data.arp_tha));
	else
		rte_ether_addr_copy(tha, &arp->arp_data.arp_tha);
	arp->arp_data.arp_tip = rte_cpu_to_be_32(tip);
	tx_queue(w, m);
}

/* ARP: answer for our phones (the echo answers for everyone), learn the
 * server's MAC from its reply. */
static void
take_arp(struct worker *w, struct rte_mbuf *m)
{
	struct rte_arp_hdr *arp;
	uint32_t sip, tip;

	if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + sizeof(*arp))
		return;
	arp = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));
	sip = rte_be_to_cpu_32(arp->arp_data.arp_sip);
	tip = rte_be_to_cpu_32(arp->arp_data.arp_tip);
	if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)) {
		if (g.role == ROLE_ECHO || is_mine(tip))
			send_arp(w, RTE_ARP_OP_REPLY, &arp->arp_data.arp_sha, tip, sip);
	} else if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY)) {
		if (!g.server_mac_set && sip == g.o.server_ip) {
			rte_ether_addr_copy(&arp->arp_data.arp_sha, &g.server_mac);
			g.server_mac_set = true;
		}
	}
}

/* The UDP payload of frame m as one contiguous run (copied to the scratch
 * area if the PMD chained it), or NULL if m is not IPv4/UDP to us. */
static const uint8_t *
udp_payload(struct worker *w, struct rte_mbuf *m, uint32_t *sip, uint32_t *dip,
	uint16_t *sport, uint16_t *dport, uint16_t *plen)
{
	const uint32_t l2 = sizeof(struct rte_ether_hdr);
	uint32_t pkt = rte_pktmbuf_pkt_len(m), ihl, ulen;
	struct rte_ipv4_hdr ipbuf;
	struct rte_udp_hdr udpbuf;
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;

	if (pkt < HDR_LEN)
		return NULL;
	ip = rte_pktmbuf_read(m, l2, sizeof(ipbuf), &ipbuf);
	ihl = (ip->version_ihl & 0xf) * 4;
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(ipbuf)
		|| ip->next_proto_id != IPPROTO_UDP
		|| (ip->fragment_offset & rte_cpu_to_be_16(0x3fff)) != 0
		|| l2 + ihl + sizeof(udpbuf) > pkt)
		return NULL;
	*sip = rte_be_to_cpu_32(ip->src_addr);
	*dip = rte_be_to_cpu_32(ip->dst_addr);
	udp = rte_pktmbuf_read(m, l2 + ihl, sizeof(udpbuf), &udpbuf);
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (ulen < sizeof(udpbuf) || l2 + ihl + ulen > pkt)
		return NULL;
	*sport = rte_be_to_cpu_16(udp->src_port);
	*dport = rte_be_to_cpu_16(udp->dst_port);
	*plen = ulen - sizeof(udpbuf);
	return rte_pktmbuf_read(m, l2 + ihl + sizeof(udpbuf), *plen, w->scratch);
}

/* ---- TFTP phones ---- */

/* Our port for slot i's next transfer: a new one each time, as a phone's
 * stack would pick, so late packets of the last transfer cannot match. */
static uint16_t
slot_port(const struct worker *w, uint32_t i, uint32_t gen)
{
	uint32_t gens = g.port_span / w->nslots;

	return w->port_lo + (gen % gens) * w->nslots + i;
}

static struct slot *
slot_of(struct worker *w, uint32_t dip, uint16_t dport)
{
	struct slot *s;
	uint32_t off = (uint16_t)(dport - w->port_lo);

	if (off >= g.port_span)
		return NULL;
	s = &w->slots[off % w->nslots];
	return s->busy && s->port == dport && s->ip == dip ? s : NULL;
}

static bool
may_start(const struct worker *w, uint64_t tsc)
{
	return !force_quit && w->c.started < w->quota && tsc < g.tsc_deadline;
}

static void raw_start(struct worker *w, uint32_t i, uint64_t tsc);

static void
tftp_start(struct worker *w, uint32_t i, uint64_t tsc)
{
	struct slot *s = &w->slots[i];
	uint64_t phone = w->next_phone;
	char name[TG_NAME_MAX];
	size_t len;

	w->next_phone += g.nb_workers;
	s->port = slot_port(w, i, s->gen++);
	s->ip = g.o.src_ip + (uint32_t)(phone % g.o.src_count);
	tg_opts_name(&g.o, phone, name, sizeof(name));
	len = tg_start(&s->x, &g.o.p, name, tsc_ns(tsc), w->out);
	if (len == 0)
		return;
	s->busy = true;
	w->inflight++;
	w->c.started++;
	send_udp(w, s->ip, s->port, g.o.server_port, w->out, len);
}

static void
slot_start(struct worker *w, uint32_t i, uint64_t tsc)
{
	if (g.role == ROLE_RAW)
		raw_start(w, i, tsc);
	else
		tftp_start(w, i, tsc);
}

static void
slot_end(struct worker *w, struct slot *s, uint64_t tsc)
{
	s->busy = false;
	w->inflight--;
	w->t_end = tsc;
	if (may_start(w, tsc))
		slot_start(w, s - w->slots, tsc);
}

static void
tftp_act(struct worker *w, struct slot *s, enum tg_action a, size_t outlen, uint64_t tsc)
{
	if (outlen > 0)
		send_udp(w, s->ip, s->port, s->x.tid ? s->x.tid : g.o.server_port, w->out,
			outlen);
	if (a == TG_STALE) {
		w->c.stale++;
	} else if (a == TG_DONE || a == TG_FAIL) {
		tg_account_end(&w->c, &w->lat, &s->x, a, tsc_ns(tsc));
		if (a == TG_DONE)
			w->file_size = s->x.bytes;
		slot_end(w, s, tsc);
	}
}

static void
tftp_take(struct worker *w, struct slot *s, uint16_t sport, const uint8_t *pl,
	uint16_t plen, uint64_t tsc)
{
	size_t outlen;
	enum tg_action a = tg_input(&s->x, &g.o.p, tsc_ns(tsc), sport, pl, plen, w->out,
		&outlen);

	tftp_act(w, s, a, outlen, tsc);
}

/* ---- raw mode (against the echo peer) ---- */

static void
raw_request(struct worker *w, struct slot *s, uint16_t plen, uint16_t count,
	uint16_t size, uint16_t last_size)
{
	struct raw_hdr h = {
		.magic = rte_cpu_to_be_32(RAW_MAGIC),
		.seq = rte_cpu_to_be_32(++s->r.seq),
		.count = rte_cpu_to_be_16(count),
		.size = rte_cpu_to_be_16(size),
		.last_size = rte_cpu_to_be_16(last_size),
	};

	memset(w->out, 0, plen);
	memcpy(w->out, &h, sizeof(h));
	s->r.expect = count;
	s->r.got = 0;
	send_udp(w, s->ip, s->port, g.o.server_port, w->out,
		plen > sizeof(h) ? plen : sizeof(h));
}

/* The next request of the emulated transfer: ACK-sized, asking for the
 * next window of DATA-sized replies, or the final ACK (no reply). */
static void
raw_next(struct worker *w, struct slot *s)
{
	uint32_t win = g.o.p.windowsize ? g.o.p.windowsize : 1;
	uint32_t n = s->r.blocks_left < win ? s->r.blocks_left : win;

	raw_request(w, s, 4, n, g.data_len, n == s->r.blocks_left ? g.last_len : g.data_len);
}

static void
raw_start(struct worker *w, uint32_t i, uint64_t tsc)
{
	struct slot *s = &w->slots[i];
	uint64_t phone = w->next_phone;

	w->next_phone += g.nb_workers;
	s->port = slot_port(w, i, s->gen++);
	s->ip = g.o.src_ip + (uint32_t)(phone % g.o.src_count);
	memset(&s->r, 0, sizeof(s->r));
	s->r.seq = (uint32_t)tsc;
	s->r.blocks_left = g.raw_blocks;
	s->r.t_start = s->r.t_last = tsc;
	s->busy = true;
	w->inflight++;
	w->c.started++;
	if (g.oack_len) {
		s->r.oack_phase = true;
		raw_request(w, s, g.rrq_len, 1, g.oack_len, g.oack_len);
	} else {
		raw_request(w, s, g.rrq_len, 1, g.data_len,
			g.raw_blocks == 1 ? g.last_len : g.data_len);
	}
}

static void
raw_take(struct worker *w, struct slot *s, const uint8_t *pl, uint16_t plen, uint64_t tsc)
{
	struct raw_hdr h;

	if (plen < sizeof(h)) {
		w->c.stale++;
		return;
	}
	memcpy(&h, pl, sizeof(h));
	if (h.magic != rte_cpu_to_be_32(RAW_MAGIC) || rte_be_to_cpu_32(h.seq) != s->r.seq) {
		w->c.stale++;
		return;
	}
	s->r.got++;
	s->r.t_last = tsc;
	s->r.retries = 0;
	if (!s->r.oack_phase)
		s->r.blocks_left--;
	if (s->r.got < s->r.expect)
		return;
	s->r.oack_phase = false;
	if (s->r.blocks_left > 0) {
		raw_next(w, s);
		return;
	}
	raw_request(w, s, 4, 0, 0, 0);		/* the final ACK */
	w->c.ok++;
	w->c.retransmits += s->r.retransmits;
	w->c.file_bytes += g.raw_size;
	w->file_size = g.raw_size;
	tg_hist_add(&w->lat, tsc_ns(tsc) - tsc_ns(s->r.t_start));
	slot_end(w, s, tsc);
}

static void
raw_timer(struct worker *w, struct slot *s, uint64_t tsc)
{
	if (tsc_ns(tsc) - tsc_ns(s->r.t_last) < g.o.p.timeout_ns)
		return;
	if (s->r.retries >= g.o.p.retries) {
		w->c.failed++;
		w->c.fail_timeout++;
		w->c.retransmits += s->r.retransmits;
		slot_end(w, s, tsc);
		return;
	}
	/* resend the whole current request; replies to the old one are stale */
	s->r.retries++;
	s->r.retransmits++;
	s->r.t_last = tsc;
	s->r.blocks_left += s->r.oack_phase ? 0 : s->r.got;
	if (s->r.oack_phase)
		raw_request(w, s, g.rrq_len, 1, g.oack_len, g.oack_len);
	else
		raw_next(w, s);
}

static void
scan_timers(struct worker *w, uint64_t tsc)
{
	uint32_t i;

	for (i = 0; i < w->nslots; i++) {
		struct slot *s = &w->slots[i];
		enum tg_action a;
		size_t outlen;

		if (!s->busy)
			continue;
		if (g.role == ROLE_RAW) {
			raw_timer(w, s, tsc);
			continue;
		}
		a = tg_timer(&s->x, &g.o.p, tsc_ns(tsc), w->out, &outlen);
		if (a != TG_NONE)
			tftp_act(w, s, a, outlen, tsc);
	}
}

/* ---- receive path of the phones ---- */

static unsigned
owner_of(uint16_t dport)
{
	return (uint16_t)(dport - g.sport_base) / g.port_span;
}

static void
phone_rx(struct worker *w, struct rte_mbuf *m, uint64_t tsc, bool handed)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint32_t sip, dip;
	uint16_t sport, dport, plen;
	const uint8_t *pl;
	struct slot *s;
	unsigned owner;

	if (!handed) {
		w->c.rx_pkts++;
		w->c.rx_bytes += rte_pktmbuf_pkt_len(m);
	}
	if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		take_arp(w, m);
		goto out;
	}
	if (eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		goto out;
	pl = udp_payload(w, m, &sip, &dip, &sport, &dport, &plen);
	if (pl == NULL || sip != g.o.server_ip || !is_mine(dip)) {
		w->c.stale++;
		goto out;
	}
	owner = owner_of(dport);
	if (owner != w->idx && owner < g.nb_workers) {
		if (rte_ring_enqueue(g.workers[owner]->inbox, m) == 0)
			return;
		w->c.stale++;
		goto out;
	}
	s = slot_of(w, dip, dport);
	if (s == NULL) {
		w->c.stale++;
		goto out;
	}
	if (g.role == ROLE_RAW)
		raw_take(w, s, pl, plen, tsc);
	else
		tftp_take(w, s, sport, pl, plen, tsc);
out:
	rte_pktmbuf_free(m);
}

static int
phone_loop(struct worker *w)
{
	struct rte_mbuf *pkts[BURST];
	uint64_t tsc = rte_rdtsc(), last_scan = tsc;
	uint64_t scan_tsc = g.hz * SCAN_NS / 1000000000ULL;
	uint32_t i;

	for (i = 0; i < w->nslots && may_start(w, tsc); i++)
		slot_start(w, i, tsc);
	tx_flush(w);
	while (w->inflight > 0 && tsc < g.tsc_hard && !force_quit) {
		uint16_t n = rte_eth_rx_burst(g.port_id, w->queue, pkts, BURST), k;

		tsc = rte_rdtsc();
		for (k = 0; k < n; k++)
			phone_rx(w, pkts[k], tsc, false);
		if (w->inbox != NULL) {
			n = rte_ring_dequeue_burst(w->inbox, (void **)pkts, BURST, NULL);
			for (k = 0; k < n; k++)
				phone_rx(w, pkts[k], tsc, true);
		}
		if (tsc - last_scan >= scan_tsc) {
			scan_timers(w, tsc);
			last_scan = tsc;
		}
		tx_flush(w);
	}
	for (i = 0; i < w->nslots; i++) {
		if (w->slots[i].busy) {
			w->c.aborted++;
			w->slots[i].busy = false;
		}
	}
	return 0;
}

/* ---- the echo peer ---- */

static bool
is_plain_udp(struct rte_mbuf *m)
{
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *,
		sizeof(struct rte_ether_hdr));

	return ip->version_ihl == RTE_IPV4_VHL_DEF && ip->next_proto_id == IPPROTO_UDP;
}

static void
echo_swap(struct rte_mbuf *m)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint32_t a;
	uint16_t p;

	rte_ether_addr_copy(&eh->src_addr, &eh->dst_addr);
	rte_ether_addr_copy(&g.my_mac, &eh->src_addr);
	a = ip->src_addr;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = a;
	if (is_plain_udp(m)) {
		p = udp->src_port;
		udp->src_port = udp->dst_port;
		udp->dst_port = p;
	}
}

/* A raw request: `count` replies of the asked sizes, built from the
 * request's (already swapped) headers. The request mbuf is freed. */
static void
echo_raw(struct worker *w, struct rte_mbuf *req, const struct raw_hdr *h)
{
	const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(req, struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eh + 1);
	const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(ip + 1);
	uint16_t count = rte_be_to_cpu_16(h->count), i;
	uint16_t size = rte_be_to_cpu_16(h->size), last = rte_be_to_cpu_16(h->last_size);

	for (i = 0; i < count; i++) {
		uint16_t plen = i + 1 == count ? last : size;
		struct rte_mbuf *m;
		struct raw_hdr *rh;
		uint8_t *p;

		plen = plen < sizeof(*rh) ? sizeof(*rh) : plen;
		m = rte_pktmbuf_alloc(g.pool);
		if (m == NULL || HDR_LEN + plen > rte_pktmbuf_tailroom(m)
			|| (p = (uint8_t *)rte_pktmbuf_append(m, HDR_LEN + plen)) == NULL) {
			w->c.tx_drops++;
			rte_pktmbuf_free(m);
			continue;
		}
		rh = (struct raw_hdr *)(p + HDR_LEN);
		*rh = *h;
		rh->index = rte_cpu_to_be_16(i);
		fill_udp(m, &eh->dst_addr, rte_be_to_cpu_32(ip->src_addr),
			rte_be_to_cpu_32(ip->dst_addr), rte_be_to_cpu_16(udp->src_port),
			rte_be_to_cpu_16(udp->dst_port), plen, w->ip_id++, false);
		tx_queue(w, m);
	}
	rte_pktmbuf_free(req);
}

static void
echo_rx(struct worker *w, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint32_t len = rte_pktmbuf_data_len(m);
	struct raw_hdr h;

	w->c.rx_pkts++;
	w->c.rx_bytes += rte_pktmbuf_pkt_len(m);
	if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		take_arp(w, m);
		rte_pktmbuf_free(m);
		return;
	}
	if (eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)
		|| len < sizeof(*eh) + sizeof(struct rte_ipv4_hdr)) {
		rte_pktmbuf_free(m);
		return;
	}
	echo_swap(m);
	/* after the swap the Ethernet destination is the requester */
	if (len >= HDR_LEN + sizeof(h) && is_plain_udp(m)) {
		memcpy(&h, rte_pktmbuf_mtod_offset(m, void *, HDR_LEN), sizeof(h));
		if (h.magic == rte_cpu_to_be_32(RAW_MAGIC)) {
			w->c.ok++;
			echo_raw(w, m, &h);
			return;
		}
	}
	tx_queue(w, m);
}

static int
echo_loop(struct worker *w)
{
	struct rte_mbuf *pkts[BURST];
	uint64_t tsc = rte_rdtsc();

	while (!force_quit && tsc < g.tsc_hard) {
		uint16_t n = rte_eth_rx_burst(g.port_id, w->queue, pkts, BURST), k;

		for (k = 0; k < n; k++)
			echo_rx(w, pkts[k]);
		tx_flush(w);
		tsc = rte_rdtsc();
	}
	return 0;
}

static int
worker_main(void *arg)
{
	struct worker *w = g.workers[rte_lcore_index(rte_lcore_id())];

	(void)arg;
	if (w == NULL)
		return 0;
	return g.role == ROLE_ECHO ? echo_loop(w) : phone_loop(w);
}

/* ---- setup ---- */

static void
usage(FILE *f)
{
	fputs("usage: tftpgen <EAL options> -- [options]\n"
	"DPDK TFTP load generator: phones fetch ITLSEP<MAC>.tlv from --server.\n"
	"  --raw                  same frame pattern against the echo peer (no TFTP)\n"
	"  --echo                 be the echo peer: reflect every frame (swap MAC/IP/port),\n"
	"                         answer --raw requests, answer every ARP; runs --duration\n"
	"  --size N               file size the --raw mode emulates (6144)\n"
	"  --port-id N            DPDK port to use (0)\n"
	"  --sport-base N         first UDP source port of the phones (10000)\n"
	"  --server-mac MAC       do not ARP for the server\n"
	"  --arp-timeout S        give up resolving the server after S seconds (5)\n"
	"  (--src defaults to --server + 1)\n", f);
	tg_opts_usage(f);
}

enum { OPT_RAW = TG_OPT_TOOL, OPT_ECHO, OPT_SIZE, OPT_PORT_ID, OPT_SPORT, OPT_SMAC,
	OPT_ARP_TIMEOUT };

static int
parse_tool_opt(int key, const char *arg)
{
	static const struct {
		int key;
		const char *name;
		unsigned long min, max;
		uint64_t *dst;
	} nums[] = {
		{ OPT_SIZE, "size", 0, 1UL << 30, &g.raw_size },
		{ OPT_PORT_ID, "port-id", 0, RTE_MAX_ETHPORTS - 1, &g.port_id },
		{ OPT_SPORT, "sport-base", 1024, 64999, &g.sport_base },
	};
	char *end;
	unsigned long v;
	unsigned i;

	switch (key) {
	case OPT_RAW:
		g.role = ROLE_RAW;
		return 0;
	case OPT_ECHO:
		g.role = ROLE_ECHO;
		return 0;
	case OPT_SMAC:
		if (rte_ether_unformat_addr(arg, &g.server_mac) < 0) {
			fprintf(stderr, "--server-mac: '%s' is not a MAC address\n", arg);
			return -1;
		}
		g.server_mac_set = true;
		return 0;
	case OPT_ARP_TIMEOUT:
		g.arp_timeout_s = strtod(arg, &end);
		if (*end != '\0' || !(g.arp_timeout_s > 0) || g.arp_timeout_s > 600) {
			fprintf(stderr, "--arp-timeout: '%s' is not in (0, 600] seconds\n", arg);
			return -1;
		}
		return 0;
	}
	for (i = 0; i < RTE_DIM(nums); i++) {
		if (nums[i].key != key)
			continue;
		errno = 0;
		v = strtoul(arg, &end, 0);
		if (errno || *end != '\0' || end == arg || v < nums[i].min || v > nums[i].max) {
			fprintf(stderr, "--%s: '%s' is not a number in [%lu, %lu]\n", nums[i].name,
				arg, nums[i].min, nums[i].max);
			return -1;
		}
		*nums[i].dst = v;
		return 0;
	}
	return -1;
}

static int
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		TG_COMMON_LONGOPTS,
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "echo", no_argument, NULL, OPT_ECHO },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "port-id", required_argument, NULL, OPT_PORT_ID },
		{ "sport-base", required_argument, NULL, OPT_SPORT },
		{ "server-mac", required_argument, NULL, OPT_SMAC },
		{ "arp-timeout", required_argument, NULL, OPT_ARP_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	tg_opts_defaults(&g.o);
	g.sport_base = 10000;
	g.raw_size = 6144;
	g.arp_timeout_s = 5;
	if (tg_opts_parse(&g.o, argc, argv, longopts, parse_tool_opt, usage) < 0)
		return -1;
	if (g.role != ROLE_ECHO && g.o.server_ip == 0) {
		fprintf(stderr, "tftpgen: --server IP is required\n");
		return -1;
	}
	if (g.o.src_ip == 0)
		g.o.src_ip = g.o.server_ip + 1;
	return tg_opts_finish(&g.o);
}

static int
port_setup(void)
{
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	uint16_t nrx = NB_RXD, ntx = NB_TXD, q;
	unsigned nq = g.nb_workers;
	int ret;

	if (!rte_eth_dev_is_valid_port(g.port_id)) {
		fprintf(stderr, "tftpgen: no DPDK port %u (give a --vdev)\n", (unsigned)g.port_id);
		return -1;
	}
	ret = rte_eth_dev_info_get(g.port_id, &info);
	if (ret == 0 && (info.max_rx_queues < nq || info.max_tx_queues < nq)) {
		fprintf(stderr, "tftpgen: port %u has %u/%u queues, %u lcores need as many "
			"(vdev queues=N)\n", (unsigned)g.port_id, info.max_rx_queues, info.max_tx_queues, nq);
		return -1;
	}
	ret = rte_eth_dev_configure(g.port_id, nq, nq, &conf);
	if (ret == 0)
		ret = rte_eth_dev_adjust_nb_rx_tx_desc(g.port_id, &nrx, &ntx);
	for (q = 0; ret == 0 && q < nq; q++) {
		ret = rte_eth_rx_queue_setup(g.port_id, q, nrx, rte_eth_dev_socket_id(g.port_id),
			NULL, g.pool);
		if (ret == 0)
			ret = rte_eth_tx_queue_setup(g.port_id, q, ntx,
				rte_eth_dev_socket_id(g.port_id), NULL);
	}
	/* vdevs may not support these: not fatal */
	if (ret == 0 && g.o.p.blksize > 1472)
		(void)rte_eth_dev_set_mtu(g.port_id, g.o.p.blksize + 32);
	if (ret == 0)
		ret = rte_eth_dev_start(g.port_id);
	if (ret == 0)
		ret = rte_eth_macaddr_get(g.port_id, &g.my_mac);
	if (ret != 0) {
		fprintf(stderr, "tftpgen: port %u setup failed: %s\n", (unsigned)g.port_id,
			rte_strerror(-ret));
		return -1;
	}
	(void)rte_eth_promiscuous_enable(g.port_id);
	return 0;
}

static void
wait_link(double secs)
{
	uint64_t end = rte_rdtsc() + (uint64_t)(secs * g.hz);
	struct rte_eth_link link;

	while (rte_rdtsc() < end && !force_quit) {
		if (rte_eth_link_get_nowait(g.port_id, &link) == 0 && link.link_status)
			return;
		rte_delay_ms(10);
	}
	fprintf(stderr, "tftpgen: port %u link still down, trying anyway\n",
		(unsigned)g.port_id);
}

/* Ask who has the server's address until it answers, bounded in time. The
 * main lcore does it on queue 0 before the workers start. */
static int
resolve_server(struct worker *w)
{
	uint64_t end = rte_rdtsc() + (uint64_t)(g.arp_timeout_s * g.hz), next = 0;
	struct rte_mbuf *pkts[BURST];

	while (!g.server_mac_set && !force_quit) {
		uint64_t tsc = rte_rdtsc();
		uint16_t n, k, q;

		if (tsc >= end) {
			char ip[32];

			tg_format_ipv4(g.o.server_ip, ip, sizeof(ip));
			fprintf(stderr, "tftpgen: no ARP reply from %s in %.1f s\n", ip,
				g.arp_timeout_s);
			return -1;
		}
		if (tsc >= next) {
			send_arp(w, RTE_ARP_OP_REQUEST, NULL, g.o.src_ip, g.o.server_ip);
			tx_flush(w);
			next = tsc + g.hz / 5;
		}
		for (q = 0; q < g.nb_workers; q++) {
			n = rte_eth_rx_burst(g.port_id, q, pkts, BURST);
			for (k = 0; k < n; k++) {
				struct rte_ether_hdr *eh = rte_pktmbuf_mtod(pkts[k],
					struct rte_ether_hdr *);

				if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
					take_arp(w, pkts[k]);
				rte_pktmbuf_free(pkts[k]);
			}
		}
		tx_flush(w);
	}
	return force_quit ? -1 : 0;
}

/* Frame sizes of the transfer that --raw replays: the same RRQ tftp mode
 * would send, an OACK of the options asked, DATA of blksize. */
static void
raw_setup(void)
{
	uint16_t blk = g.o.p.blksize ? g.o.p.blksize : 512;
	char name[TG_NAME_MAX];
	struct tg_xfer x;
	uint8_t buf[TG_RRQ_MAX];
	unsigned len = 2;
	char num[24];

	tg_opts_name(&g.o, 0, name, sizeof(name));
	g.rrq_len = tg_start(&x, &g.o.p, name, 0, buf);
	if (g.o.p.tsize)
		len += 7 + snprintf(num, sizeof(num), "%llu", (unsigned long long)g.raw_size);
	if (g.o.p.blksize)
		len += 9 + snprintf(num, sizeof(num), "%u", g.o.p.blksize);
	if (g.o.p.windowsize)
		len += 12 + snprintf(num, sizeof(num), "%u", g.o.p.windowsize);
	g.oack_len = len > 2 ? len : 0;
	g.data_len = 4 + blk;
	g.last_len = 4 + g.raw_size % blk;
	g.raw_blocks = g.raw_size / blk + 1;
}

static int
workers_setup(void)
{
	unsigned lcore, i = 0;
	uint32_t per = g.o.concurrency / g.nb_workers;

	g.port_span = (65535 - g.sport_base) / g.nb_workers;
	if (per == 0)
		per = 1;
	if (g.role != ROLE_ECHO && per > g.port_span) {
		fprintf(stderr, "tftpgen: --concurrency %u needs more UDP ports than "
			"--sport-base %u leaves\n", g.o.concurrency, (unsigned)g.sport_base);
		return -1;
	}
	RTE_LCORE_FOREACH(lcore) {
		struct worker *w = rte_zmalloc_socket("tg_worker", sizeof(*w),
			RTE_CACHE_LINE_SIZE, rte_lcore_to_socket_id(lcore));
		char rname[32];

		if (w == NULL)
			return -1;
		w->idx = i;
		w->queue = i;
		w->port_lo = g.sport_base + i * g.port_span;
		w->nslots = per;
		w->next_phone = i;
		w->quota = g.o.transfers / g.nb_workers + (i < g.o.transfers % g.nb_workers);
		w->ip_id = i << 12;
		if (g.role != ROLE_ECHO) {
			w->slots = rte_zmalloc("tg_slots", sizeof(*w->slots) * per,
				RTE_CACHE_LINE_SIZE);
			if (w->slots == NULL)
				return -1;
		}
		if (g.nb_workers > 1 && g.role != ROLE_ECHO) {
			snprintf(rname, sizeof(rname), "tg_inbox_%u", i);
			w->inbox = rte_ring_create(rname, 4096, rte_lcore_to_socket_id(lcore),
				RING_F_SC_DEQ);
			if (w->inbox == NULL)
				return -1;
		}
		g.workers[i++] = w;
	}
	return 0;
}

static int
pool_setup(void)
{
	unsigned blk = g.o.p.blksize > 512 ? g.o.p.blksize : 512;
	unsigned room = RTE_MAX(2048u, blk + 128) + RTE_PKTMBUF_HEADROOM;
	unsigned n = 8192 + g.nb_workers * (NB_RXD + NB_TXD + POOL_CACHE + 4096);

	if (room > UINT16_MAX)
		room = UINT16_MAX;
	g.pool = rte_pktmbuf_pool_create("tg_pool", n, POOL_CACHE, 0, room, rte_socket_id());
	if (g.pool == NULL) {
		fprintf(stderr, "tftpgen: cannot create %u mbufs of %u bytes: %s (more -m?)\n",
			n, room, rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

static void
report(void)
{
	struct tg_result r = { .tool = "tftpgen" };
	static const char *const modes[] = { "tftp", "raw", "echo" };
	uint64_t t_end = g.tsc0;
	char target[32];
	unsigned i;

	for (i = 0; i < g.nb_workers; i++) {
		struct worker *w = g.workers[i];

		tg_counters_add(&r.c, &w->c);
		tg_hist_merge(&r.lat, &w->lat);
		if (w->t_end > t_end)
			t_end = w->t_end;
		if (w->file_size)
			r.file_size = w->file_size;
	}
	if (g.role == ROLE_ECHO)
		t_end = rte_rdtsc();
	tg_format_ipv4(g.o.server_ip, target, sizeof(target));
	r.mode = modes[g.role];
	r.label = g.o.label;
	r.target = g.role == ROLE_ECHO ? "-" : target;
	r.concurrency = g.o.concurrency;
	r.blksize = g.o.p.blksize ? g.o.p.blksize : 512;
	r.windowsize = g.o.p.windowsize ? g.o.p.windowsize : 1;
	r.workers = g.nb_workers;
	r.elapsed_ns = t_end > g.tsc0 ? tsc_ns(t_end) : 0;
	if (!g.o.quiet)
		tg_report_table(stdout, &r);
	tg_report_json(stdout, &r);
	fflush(stdout);
}

static int
run(void)
{
	int rc = 0;

	g.nb_workers = rte_lcore_count();
	if (pool_setup() < 0 || workers_setup() < 0 || port_setup() < 0)
		return -1;
	if (g.role == ROLE_RAW)
		raw_setup();
	if (g.role != ROLE_ECHO) {
		wait_link(10);
		if (!g.server_mac_set && resolve_server(g.workers[0]) < 0)
			rc = -1;
	}
	if (rc == 0) {
		g.tsc0 = rte_rdtsc();
		g.tsc_deadline = g.tsc0 + (uint64_t)(g.o.duration_s * g.hz);
		g.tsc_hard = g.tsc_deadline
			+ (g.role == ROLE_ECHO ? 0 : (uint64_t)(g.o.grace_s * g.hz));
		rte_eal_mp_remote_launch(worker_main, NULL, CALL_MAIN);
		rte_eal_mp_wait_lcore();
		report();
	}
	rte_eth_dev_stop(g.port_id);
	rte_eth_dev_close(g.port_id);
	return rc;
}

int
main(int argc, char **argv)
{
	int ret = rte_eal_init(argc, argv), rc;

	if (ret < 0) {
		fprintf(stderr, "tftpgen: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 2;
	}
	argc -= ret;
	argv += ret;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	g.hz = rte_get_tsc_hz();
	if (parse_args(argc, argv) < 0) {
		rte_eal_cleanup();
		return 2;
	}
	rc = run();
	if (rc == 0 && g.role != ROLE_ECHO) {
		struct tg_counters c = { 0 };
		unsigned i;

		for (i = 0; i < g.nb_workers; i++)
			tg_counters_add(&c, &g.workers[i]->c);
		rc = c.ok > 0 && c.failed == 0 && c.aborted == 0 ? 0 : 3;
	} else if (rc < 0) {
		rc = 1;
	}
	tg_opts_release(&g.o);
	rte_eal_cleanup();
	return rc;
}
