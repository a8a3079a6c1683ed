/*
 * The NIC's RSS hash of an IPv4 TCP or UDP flow, computed in software so
 * tvsd can predict the RX queue of a flow's packets: the owner of a TVS
 * connection (dp_tcp_owner) and the server port of a TFTP transfer whose
 * ACKs should land on the queue of the worker that runs it
 * (dp_tftp_port_local in dp_worker.c).
 *
 * DPDK headers only (rte_softrss is inline), so tests/c/test_dp_rss.c
 * checks it against the Microsoft RSS verification vectors without an EAL.
 */
#ifndef DP_DP_RSS_H
#define DP_DP_RSS_H

#include <stdint.h>

#include <rte_thash.h>

/*
 * Toeplitz hash of the RTE_ETH_RSS_NONFRAG_IPV4_TCP / _UDP input, the same
 * layout for both: source address, destination address, source port,
 * destination port of the packet as the NIC receives it (host byte order
 * here). key: the port's RSS key (rte_eth_dev_rss_hash_conf_get), at
 * least 16 bytes and 4-byte aligned (rte_softrss reads it as words).
 */
static inline uint32_t
dp_rss_hash_v4(const uint8_t *key, uint32_t src_ip, uint32_t dst_ip,
	uint16_t sport, uint16_t dport)
{
	union rte_thash_tuple t;

	t.v4.src_addr = src_ip;
	t.v4.dst_addr = dst_ip;
	t.v4.sport = sport;
	t.v4.dport = dport;
	return rte_softrss((uint32_t *)&t, RTE_THASH_V4_L4_LEN, key);
}

#endif
