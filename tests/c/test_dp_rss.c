/*
 * dataplane/dp_rss.h: the software RSS hash must equal the NIC's, or
 * tvsd's predicted queues (TVS connection owners, TFTP transfer ports) are
 * wrong on every real multi-queue NIC. Checked against the IPv4 + TCP
 * vectors of Microsoft's RSS verification suite (the reference Toeplitz
 * key, "Verifying the RSS Hash Calculation"); the UDP input has the same
 * layout. rte_softrss is header-only: no EAL.
 */
#include <stdint.h>
#include <stdio.h>

#include "tap.h"
#include "dp_rss.h"

/* The 40-byte reference key; 4-byte aligned as rte_softrss reads words. */
static const uint8_t ms_key[40] __attribute__((aligned(4))) = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static const struct {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint32_t hash;
} vectors[] = {
	{ IP4(66, 9, 149, 187), IP4(161, 142, 100, 80), 2794, 1766, 0x51ccc178 },
	{ IP4(199, 92, 111, 2), IP4(65, 69, 140, 83), 14230, 4739, 0xc626b0ea },
	{ IP4(24, 19, 198, 95), IP4(12, 22, 207, 184), 12898, 38024, 0x5c2b394a },
	{ IP4(38, 27, 205, 30), IP4(209, 142, 163, 6), 48228, 2217, 0xafc7327f },
	{ IP4(153, 39, 163, 191), IP4(202, 188, 127, 2), 44251, 1303, 0x10e828a2 },
};

int
main(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		uint32_t h = dp_rss_hash_v4(ms_key, vectors[i].src, vectors[i].dst,
			vectors[i].sport, vectors[i].dport);

		ok(h == vectors[i].hash, "vector %zu: 0x%08x, want 0x%08x", i + 1, h,
			vectors[i].hash);
	}
	/* The tuple is the packet's own direction: a TFTP ACK is client ->
	 * server; hashing the reply's direction gives another queue. */
	ok(dp_rss_hash_v4(ms_key, vectors[0].dst, vectors[0].src, vectors[0].dport,
		vectors[0].sport) != vectors[0].hash, "the reverse direction hashes differently");
	/* Ports matter (the 4-tuple, not the 2-tuple): this is what lets the
	 * TFTP engine choose a server port whose ACKs land on its queue. */
	ok(dp_rss_hash_v4(ms_key, vectors[0].src, vectors[0].dst, vectors[0].sport,
		(uint16_t)(vectors[0].dport + 1)) != vectors[0].hash,
		"another destination port hashes differently");
	return done_testing();
}
