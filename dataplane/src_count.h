/*
 * How much each IPv4 source holds in one engine right now: the TFTP
 * engine counts transfers per client address, the TCP engine connections
 * and unfinished handshakes per peer address, so that a burst from one
 * address meets its own bound long before it fills the shared table
 * (issue 10, finding 3).
 *
 * An open-addressing table with linear probing, sized at creation for the
 * most sources there can be at once (every counted thing belongs to one
 * source, so an engine with n slots has at most n sources): it is never
 * more than half full, lookups stay short, and nothing is allocated after
 * src_count_new. An entry disappears when all its counts drop to zero
 * (backward-shift deletion, no tombstones). The hash is multiply-shift
 * with a random odd multiplier from the caller's seed, so the addresses
 * of one attacker do not pile into one run of the table by design.
 *
 * DPDK-free, one owner (the engine's lcore), no locks.
 */
#ifndef DP_SRC_COUNT_H
#define DP_SRC_COUNT_H

#include <stdbool.h>
#include <stdint.h>

#define SRC_KINDS 2		/* independent counts per source */

struct src_count;

/* For at most max_live counted things at once; NULL + errno on failure. */
struct src_count *src_count_new(uint32_t max_live, uint64_t seed);
void src_count_free(struct src_count *t);

/* The count of kind for ip (0 when the source holds nothing). */
uint32_t src_count_get(const struct src_count *t, uint32_t ip, unsigned kind);
/* +1; false only if more than max_live sources were asked for (a bug). */
bool src_count_add(struct src_count *t, uint32_t ip, unsigned kind);
/* -1; a count already at zero stays there. */
void src_count_sub(struct src_count *t, uint32_t ip, unsigned kind);
/* Sources with a nonzero count, for tests. */
uint32_t src_count_sources(const struct src_count *t);

#endif
