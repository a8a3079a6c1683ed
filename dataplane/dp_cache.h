/*
 * Per-lcore hashed certificate caches: what the TVS answers from.
 *
 * One cache set belongs to one publication generation. It is built on the
 * main lcore from the manifest certificates (struct publication.certs)
 * before the generation is swapped in, and it never changes afterwards:
 *
 *   per NUMA socket   one block of entries (DER, roles, TTL and the
 *                     CUCM-style subject, worked out once here so that a
 *                     QUERY_CERT subject check never parses X.509), all in
 *                     one rte_malloc_socket allocation on that socket;
 *   per lcore         one rte_hash on the lcore's socket with two 32-byte
 *                     keys per certificate, the SHA-256 of its DER and its
 *                     trust_issuer_serial_key(), both mapping to the entry.
 *
 * Concurrency. The tables are written by one thread (the main lcore) and
 * only before any worker can reach them: a worker finds a set through the
 * generation pointer, which is published with a release exchange after
 * the build. From then on the tables are read-only until they are freed
 * after the RCU grace period. So none of rte_hash's concurrency flags are
 * set (no RW_CONCURRENCY, RW_CONCURRENCY_LF, MULTI_WRITER_ADD or
 * TRANS_MEM_SUPPORT): with them a lookup pays for reader locks or change
 * counters that protect against writers this table never has. No
 * EXT_TABLE either: the table is sized at load factor 80 % or less and
 * rebuilt larger in the unlikely case that a cuckoo insert finds no room.
 *
 * Counters (lookups, hits, misses) live outside the sets, one struct per
 * lcore given at build time, so they survive swaps; only the owning lcore
 * writes them.
 *
 * Entries returned by the lookups point into the set: a worker may use
 * them until its next quiescent state, or longer if it holds a reference
 * on the generation.
 */
#ifndef DP_DP_CACHE_H
#define DP_DP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "publication.h"
#include "tvs.h"

#define DP_CACHE_KEY_LEN 32
#define DP_CACHE_ROLES_MAX 8	/* as struct pub_cert */

/* What the TVS knows about one certificate. */
struct dp_cache_entry {
	const uint8_t *der;
	uint32_t der_len;
	uint32_t ttl;			/* 0: TVS_TTL_DEFAULT */
	const char *subject;		/* CUCM style, NUL-terminated */
	uint16_t subject_len;
	uint8_t nroles;
	uint8_t roles[DP_CACHE_ROLES_MAX];
};

struct dp_cache_counters {
	uint64_t lookups;		/* keys looked up */
	uint64_t hits;
	uint64_t misses;
};

/* One lcore's table of one generation. */
struct dp_cache;
/* Every lcore's tables of one generation, and the entries they point to. */
struct dp_cache_set;

/*
 * Builds the tables of the lcores lcores[0..n) from p->certs, on the main
 * lcore. ctrs[i] (ctrs or ctrs[i] may be NULL: the cache then counts for
 * itself) receives the counts of lcores[i]'s lookups and must outlive the
 * set. NULL with rte_errno and a one-line reason in msg on failure.
 */
struct dp_cache_set *dp_cache_set_build(const struct publication *p,
	const unsigned *lcores, unsigned n, struct dp_cache_counters *const *ctrs,
	char *msg, size_t msgsz);
/* After the grace period; NULL is accepted. */
void dp_cache_set_free(struct dp_cache_set *s);

/* The table of lcore, or NULL when the set has none for it. */
const struct dp_cache *dp_cache_of_lcore(const struct dp_cache_set *s, unsigned lcore);
unsigned dp_cache_set_certs(const struct dp_cache_set *s);	/* per table */
unsigned dp_cache_set_keys(const struct dp_cache_set *s);	/* per table */
/* Issuer/serial keys two certificates share: the first one keeps it. */
unsigned dp_cache_set_duplicates(const struct dp_cache_set *s);
/* rte_malloc bytes the set asked for (entries, blocks, its own structs;
 * not rte_hash's internal tables, which are measured by the tests). */
size_t dp_cache_set_bytes(const struct dp_cache_set *s);

unsigned dp_cache_certs(const struct dp_cache *c);
unsigned dp_cache_lcore(const struct dp_cache *c);
struct dp_cache_counters *dp_cache_counters(const struct dp_cache *c);

/* One key (a SHA-256 of DER or an issuer/serial key): the entry or NULL. */
const struct dp_cache_entry *dp_cache_lookup(const struct dp_cache *c,
	const uint8_t key[DP_CACHE_KEY_LEN]);

/*
 * The keys of a burst at once (rte_hash_lookup_bulk_data, 64 at a time):
 * entries[i] is keys[i]'s entry or NULL. Returns the number of hits.
 */
unsigned dp_cache_lookup_bulk(const struct dp_cache *c, const void *const keys[],
	unsigned n, const struct dp_cache_entry *entries[]);

/* The codec's view of an entry. */
void dp_cache_entry_tvs(const struct dp_cache_entry *ce, struct tvs_entry *e);

/* A lookup for tvs_answer that reads c (one generation's table). */
struct tvs_lookup dp_cache_tvs_lookup(const struct dp_cache *c);

#endif
