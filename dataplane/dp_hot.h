/*
 * The per-packet path of a worker lcore, inlined into its loop.
 *
 * Every function here takes the lcore's own struct and one mbuf, and
 * either sends a reply (in place: ARP, ICMP echo), gives the datagram to
 * the TFTP engine or the TCP segment to the TVS (dp_tvs.c), hands the mbuf
 * to the lcore that owns its transfer port or TCP connection, or drops it
 * and counts why. No allocation but mbufs, no locks, no
 * syscalls, no logging.
 */
#ifndef DP_HOT_H
#define DP_HOT_H

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "dp.h"
#include "dp_rss.h"

#define DP_DROP(lc, m, why) do { \
	(lc)->stats.c[DP_C_ ## why]++; \
	rte_pktmbuf_free(m); \
} while (0)

static inline void
dp_tx(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m)
{
	lc->stats.c[DP_C_tx_pkts] += rte_eth_tx_buffer(dp_app.ports[pidx].id,
		(uint16_t)lc->worker, lc->txb[pidx], m);
}

/*
 * A new frame from port p to l2 for l4len bytes of protocol proto: the
 * Ethernet (+ VLAN tag) and IPv4 headers filled, *l4 at the L4 header,
 * *l2len the length of the link-layer headers. NULL when no mbuf (counted).
 */
static inline struct rte_mbuf *
dp_ipv4_frame(struct dp_lcore *lc, const struct dp_port *p, const struct dp_l2 *l2,
	uint8_t proto, size_t l4len, uint8_t **l4, size_t *l2len)
{
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_mbuf *m;
	size_t len;

	*l2len = sizeof(*eth) + (p->vlan ? RTE_VLAN_HLEN : 0);
	len = *l2len + sizeof(*ip) + l4len;
	m = rte_pktmbuf_alloc(lc->pool);
	if (unlikely(m == NULL)) {
		lc->stats.c[DP_C_drop_nombuf]++;
		return NULL;
	}
	eth = len <= rte_pktmbuf_tailroom(m)
		? (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)len) : NULL;
	if (unlikely(eth == NULL)) {
		DP_DROP(lc, m, drop_too_big);
		return NULL;
	}
	rte_ether_addr_copy(&l2->mac, &eth->dst_addr);
	rte_ether_addr_copy(&p->mac, &eth->src_addr);
	if (p->vlan != 0) {
		struct rte_vlan_hdr *vh = (struct rte_vlan_hdr *)(eth + 1);

		eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_VLAN);
		vh->vlan_tci = rte_cpu_to_be_16(p->vlan);
		vh->eth_proto = RTE_BE16(RTE_ETHER_TYPE_IPV4);
		ip = (struct rte_ipv4_hdr *)(vh + 1);
	} else {
		eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
		ip = (struct rte_ipv4_hdr *)(eth + 1);
	}
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4len));
	ip->packet_id = rte_cpu_to_be_16(lc->ip_id++);
	ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->hdr_checksum = 0;
	ip->src_addr = p->ip_be;
	ip->dst_addr = l2->ip;
	*l4 = (uint8_t *)(ip + 1);
	return m;
}

/*
 * IPv4 and L4 checksums of a frame from dp_ipv4_frame whose payload is in
 * place and whose L4 checksum field is zero: the IPv4 one is filled, the
 * L4 one returned. By the NIC when it can (offload: the pseudo-header sum
 * is returned), else here. l4flag: RTE_MBUF_F_TX_UDP_CKSUM or _TCP_CKSUM.
 */
static inline rte_be16_t
dp_ipv4_cksum(struct rte_mbuf *m, size_t l2len, bool offload, uint64_t l4flag)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2len);

	if (offload) {
		m->l2_len = l2len;
		m->l3_len = sizeof(*ip);
		m->ol_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | l4flag;
		return rte_ipv4_phdr_cksum(ip, m->ol_flags);
	}
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return rte_ipv4_udptcp_cksum(ip, ip + 1);
}

/* Ethernet header of a reply in place: back to the sender, from us. */
static inline void
dp_eth_reflect(struct rte_ether_hdr *eth, const struct dp_port *p)
{
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&p->mac, &eth->src_addr);
}

/* A reply built in place needs the VLAN tag back if the PMD stripped it. */
static inline int
dp_tx_inplace(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m)
{
	const struct dp_port *p = &dp_app.ports[pidx];
	bool stripped = m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED;

	m->ol_flags = 0;
	if (unlikely(stripped)) {
		m->vlan_tci = p->vlan;
		if (rte_vlan_insert(&m) != 0) {
			DP_DROP(lc, m, drop_too_big);
			return -1;
		}
	}
	dp_tx(lc, pidx, m);
	return 0;
}

static inline void
dp_arp_input(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m,
	struct rte_ether_hdr *eth, unsigned off)
{
	const struct dp_port *p = &dp_app.ports[pidx];
	struct rte_arp_hdr *a;

	if (unlikely(m->data_len < off + sizeof(*a))) {
		DP_DROP(lc, m, drop_runt);
		return;
	}
	a = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, off);
	if (a->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER)
	    || a->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4)
	    || a->arp_hlen != RTE_ETHER_ADDR_LEN || a->arp_plen != 4
	    || a->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST)
	    || a->arp_data.arp_tip != p->ip_be) {
		DP_DROP(lc, m, drop_arp);	/* not a question for us */
		return;
	}
	a->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
	a->arp_data.arp_tha = a->arp_data.arp_sha;
	a->arp_data.arp_tip = a->arp_data.arp_sip;
	rte_ether_addr_copy(&p->mac, &a->arp_data.arp_sha);
	a->arp_data.arp_sip = p->ip_be;
	dp_eth_reflect(eth, p);
	lc->stats.c[DP_C_arp_replies]++;
	dp_tx_inplace(lc, pidx, m);
}

static inline void
dp_icmp_input(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m,
	struct rte_ether_hdr *eth, struct rte_ipv4_hdr *ip, unsigned l4len)
{
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)((uint8_t *)ip + rte_ipv4_hdr_len(ip));

	if (unlikely(l4len < sizeof(*icmp) || rte_raw_cksum(icmp, l4len) != 0xffff)) {
		DP_DROP(lc, m, drop_icmp);
		return;
	}
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0) {
		DP_DROP(lc, m, drop_icmp);
		return;
	}
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_cksum = 0;
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, l4len);
	ip->dst_addr = ip->src_addr;
	ip->src_addr = dp_app.ports[pidx].ip_be;
	ip->time_to_live = 64;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	dp_eth_reflect(eth, &dp_app.ports[pidx]);
	lc->stats.c[DP_C_icmp_replies]++;
	dp_tx_inplace(lc, pidx, m);
}

/* The queue, hence the worker, the NIC gives a flow on port p (host byte
 * order, the packet's own direction); only when p->reta_size > 0. */
static inline unsigned
dp_rss_queue(const struct dp_port *p, uint32_t src_ip, uint32_t dst_ip,
	uint16_t sport, uint16_t dport)
{
	return p->reta[dp_rss_hash_v4(p->rss_key, src_ip, dst_ip, sport, dport)
		% p->reta_size];
}

/* A packet that belongs to another worker goes to it over its ring; the
 * owner parses it again: rare, and keeps the ring simple. */
static inline void
dp_handoff(struct dp_lcore *lc, unsigned owner, struct rte_mbuf *m)
{
	if (rte_ring_enqueue(dp_lcores[dp_app.workers[owner]].ring, m) != 0)
		DP_DROP(lc, m, drop_ring_full);
	else
		lc->stats.c[DP_C_handoff_out]++;
}

/* Where replies to this request go: the sender's MAC, address and port. */
static inline void
dp_l2_learn(struct dp_l2 *l2, const struct rte_ether_hdr *eth, const struct rte_ipv4_hdr *ip,
	uint16_t pidx)
{
	rte_ether_addr_copy(&eth->src_addr, &l2->mac);
	l2->ip = ip->src_addr;
	l2->port = pidx;
	l2->valid = true;
}

/* Which worker owns a transfer port; -1 for none. */
static inline int
dp_port_owner(uint16_t port)
{
	uint32_t base = dp_app.cfg.tftp.port_base, per = dp_app.cfg.tftp.max_transfers;

	if (port < base || port >= base + per * dp_app.nworkers)
		return -1;
	return (int)((port - base) / per);
}

static inline void
dp_udp_input(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m,
	struct rte_ether_hdr *eth, struct rte_ipv4_hdr *ip, unsigned l4len, uint64_t now)
{
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)((uint8_t *)ip + rte_ipv4_hdr_len(ip));
	uint16_t dport, ulen;
	struct tftp_peer from;
	struct dp_l2 l2;
	int owner;

	ulen = l4len >= sizeof(*udp) ? rte_be_to_cpu_16(udp->dgram_len) : 0;
	if (unlikely(ulen < sizeof(*udp) || ulen > l4len)) {
		DP_DROP(lc, m, drop_udp_hdr);
		return;
	}
	if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD
	    || ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN
		&& udp->dgram_cksum != 0 && rte_ipv4_udptcp_cksum_verify(ip, udp) != 0)) {
		DP_DROP(lc, m, drop_udp_cksum);
		return;
	}
	dport = rte_be_to_cpu_16(udp->dst_port);
	owner = dport == TFTP_PORT ? (int)lc->worker : dp_port_owner(dport);
	if (owner < 0) {
		DP_DROP(lc, m, drop_udp_port);
		return;
	}
	if ((unsigned)owner != lc->worker) {
		dp_handoff(lc, (unsigned)owner, m);
		return;
	}
	dp_l2_learn(&l2, eth, ip, pidx);
	from.ip = rte_be_to_cpu_32(ip->src_addr);
	from.port = rte_be_to_cpu_16(udp->src_port);
	lc->cur = &l2;
	lc->stats.c[DP_C_tftp_pkts]++;
	tftp_input(lc->tftp, now, &from, dport, (const uint8_t *)(udp + 1),
		ulen - sizeof(*udp));
	lc->cur = NULL;
	rte_pktmbuf_free(m);
}

/* IPv4 header checks, then ICMP or UDP. */
static inline void
dp_ipv4_input(struct dp_lcore *lc, uint16_t pidx, struct rte_mbuf *m,
	struct rte_ether_hdr *eth, unsigned off, uint64_t now)
{
	struct rte_ipv4_hdr *ip;
	unsigned hl, tot;
	uint64_t ck;

	if (unlikely(m->data_len < off + sizeof(*ip))) {
		DP_DROP(lc, m, drop_ip_hdr);
		return;
	}
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, off);
	hl = rte_ipv4_hdr_len(ip);
	tot = rte_be_to_cpu_16(ip->total_length);
	if (unlikely(ip->version != 4 || hl < sizeof(*ip) || tot < hl
	    || off + tot > m->data_len)) {
		DP_DROP(lc, m, drop_ip_hdr);
		return;
	}
	ck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (ck == RTE_MBUF_F_RX_IP_CKSUM_BAD
	    || (ck == RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN && rte_ipv4_cksum(ip) != 0)) {
		DP_DROP(lc, m, drop_ip_cksum);
		return;
	}
	if (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		DP_DROP(lc, m, drop_ip_frag);
		return;
	}
	if (ip->dst_addr != dp_app.ports[pidx].ip_be) {
		DP_DROP(lc, m, drop_ip_dst);
		return;
	}
	/* Ethernet padding of short frames is not ours to echo back. */
	rte_pktmbuf_trim(m, (uint16_t)(m->data_len - off - tot));
	if (ip->next_proto_id == IPPROTO_UDP)
		dp_udp_input(lc, pidx, m, eth, ip, tot - hl, now);
	else if (ip->next_proto_id == IPPROTO_TCP)
		dp_tcp_input(lc, pidx, m, eth, ip, tot - hl, now);
	else if (ip->next_proto_id == IPPROTO_ICMP)
		dp_icmp_input(lc, pidx, m, eth, ip, tot - hl);
	else
		DP_DROP(lc, m, drop_ip_proto);
}

/* One frame, from the wire or from another lcore's hand-off. */
static inline void
dp_pkt_input(struct dp_lcore *lc, struct rte_mbuf *m, uint64_t now)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint16_t pidx = dp_app.port_index[m->port];
	const struct dp_port *p;
	unsigned off = sizeof(*eth);
	uint16_t type, vid = 0;

	if (unlikely(m->data_len < sizeof(*eth) || m->nb_segs != 1 || pidx >= dp_app.nports)) {
		DP_DROP(lc, m, drop_runt);
		return;
	}
	p = &dp_app.ports[pidx];
	type = eth->ether_type;
	if (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED)
		vid = m->vlan_tci & 0xfff;
	if (type == RTE_BE16(RTE_ETHER_TYPE_VLAN) && m->data_len >= off + RTE_VLAN_HLEN) {
		const struct rte_vlan_hdr *vh = (const struct rte_vlan_hdr *)(eth + 1);

		vid = rte_be_to_cpu_16(vh->vlan_tci) & 0xfff;
		type = vh->eth_proto;
		off += RTE_VLAN_HLEN;
	}
	/* One tag exactly when the port has a VLAN, none otherwise. */
	if (vid != p->vlan || type == RTE_BE16(RTE_ETHER_TYPE_VLAN)
	    || type == RTE_BE16(RTE_ETHER_TYPE_QINQ)) {
		DP_DROP(lc, m, drop_vlan);
		return;
	}
	if (type == RTE_BE16(RTE_ETHER_TYPE_IPV4))
		dp_ipv4_input(lc, pidx, m, eth, off, now);
	else if (type == RTE_BE16(RTE_ETHER_TYPE_ARP))
		dp_arp_input(lc, pidx, m, eth, off);
	else
		DP_DROP(lc, m, drop_ethertype);
}

/* A burst: prefetch a few frames ahead, then handle each. */
static inline void
dp_burst_input(struct dp_lcore *lc, struct rte_mbuf **pkts, unsigned n, uint64_t now)
{
	unsigned i;

	for (i = 0; i < n && i < DP_PREFETCH; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (i = 0; i < n; i++) {
		if (i + DP_PREFETCH < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + DP_PREFETCH], void *));
		dp_pkt_input(lc, pkts[i], now);
	}
}

#endif
