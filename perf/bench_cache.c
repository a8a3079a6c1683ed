/*
 * bench_cache: lookups per second of the per-lcore certificate cache
 * (dataplane/dp_cache.c), one key at a time against bursts through
 * rte_hash_lookup_bulk_data, for caches of --certs certificates each, and
 * the rte_malloc bytes a cache takes.
 *
 *   bench_cache <EAL args> -- [--certs N[,N...]] [--lookups N] [--rounds N]
 *   e.g. bench_cache --no-huge -m 1024 --no-pci -l 0 --file-prefix bc --
 *
 * Every certificate needs a DER the cache can parse (it works out the
 * subject at build time), but signing 100,000 certificates would measure
 * OpenSSL, not the cache. So the manifest reuses a pool of 256 real
 * RSA-2048-signed certificates for its DER and gives each entry its own
 * random 32-byte SHA-256 and issuer/serial keys: the table holds 2 x N
 * distinct keys, as a real one does, and every entry still gets its own
 * copy of a real-sized DER.
 *
 * Each round looks up --lookups keys in a random order: all hits, then
 * half misses (random keys), single and in bursts of 8, 16, 32 and 64.
 * It prints the median round of each.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "cert.h"
#include "dp_cache.h"
#include "sign.h"

#define POOL 256
#define MAX_SIZES 8

struct bench_opts {
	unsigned sizes[MAX_SIZES];
	unsigned nsizes;
	unsigned lookups;
	unsigned rounds;
};

static struct trust_cert pool[POOL];

static size_t
heap_bytes(void)
{
	size_t sum = 0;

	for (unsigned i = 0; i < rte_socket_count(); i++) {
		struct rte_malloc_socket_stats st;

		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0)
			sum += st.heap_allocsz_bytes;
	}
	return sum;
}

static int
make_pool(void)
{
	struct trust_err err = { 0 };
	EVP_PKEY *key = trust_key_generate_rsa(2048, &err);

	if (key == NULL) {
		fprintf(stderr, "bench_cache: key: %s\n", err.msg);
		return -1;
	}
	for (unsigned i = 0; i < POOL; i++) {
		char cn[64];
		struct trust_cert_params cp = { .cn = cn, .ou = "VTG", .o = "Example Corp",
			.l = "Lyon", .st = "ARA", .c = "FR", .days = 365 };

		snprintf(cn, sizeof(cn), "app-server-%u.example.net", i);
		if (trust_cert_selfsign(key, &cp, &pool[i], &err) != 0) {
			fprintf(stderr, "bench_cache: certificate: %s\n", err.msg);
			EVP_PKEY_free(key);
			return -1;
		}
	}
	EVP_PKEY_free(key);
	return 0;
}

/* DER borrowed from the pool: the publication is freed with free(certs). */
static int
make_pub(struct publication *p, unsigned n)
{
	memset(p, 0, sizeof(*p));
	p->generation = n;
	p->ncerts = n;
	p->certs = calloc(n, sizeof(*p->certs));
	if (p->certs == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct pub_cert *pc = &p->certs[i];

		RAND_bytes(pc->sha256, 32);
		RAND_bytes(pc->issuer_serial, 32);
		pc->roles[0] = 7;	/* APP-SERVER */
		pc->nroles = 1;
		pc->ttl = 86400;
		pc->der = pool[i % POOL].der;
		pc->der_len = pool[i % POOL].der_len;
	}
	return 0;
}

/* A key order for one pass: every key of the table, or half random misses. */
static void
make_keys(const struct publication *p, const void **keys, unsigned n, uint8_t (*miss)[32],
	bool half_miss)
{
	for (unsigned i = 0; i < n; i++) {
		const struct pub_cert *pc = &p->certs[(unsigned)rand() % p->ncerts];

		if (half_miss && i % 2) {
			RAND_bytes(miss[i], 32);
			keys[i] = miss[i];
		} else
			keys[i] = rand() % 2 ? pc->sha256 : pc->issuer_serial;
	}
}

/* TSC cycles for n lookups, single (burst 0) or in bursts. */
static uint64_t
run(const struct dp_cache *c, const void **keys, unsigned n, unsigned burst,
	unsigned *hits)
{
	const struct dp_cache_entry *got[64];
	uint64_t t0 = rte_rdtsc_precise();

	*hits = 0;
	if (burst == 0) {
		for (unsigned i = 0; i < n; i++)
			*hits += dp_cache_lookup(c, keys[i]) != NULL;
	} else {
		for (unsigned i = 0; i + burst <= n; i += burst)
			*hits += dp_cache_lookup_bulk(c, keys + i, burst, got);
	}
	return rte_rdtsc_precise() - t0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
bench_size(unsigned n, const struct bench_opts *o)
{
	static const unsigned bursts[] = { 0, 8, 16, 32, 64 };
	unsigned lcore = rte_lcore_id(), hits;
	struct publication p;
	struct dp_cache_set *s;
	const struct dp_cache *c;
	const void **keys = calloc(o->lookups, sizeof(*keys));
	uint8_t (*miss)[32] = calloc(o->lookups, 32);
	uint64_t *cyc = calloc(o->rounds, sizeof(*cyc)), t0;
	double hz = (double)rte_get_tsc_hz();
	size_t before;
	char msg[300];

	if (keys == NULL || miss == NULL || cyc == NULL || make_pub(&p, n) != 0) {
		fprintf(stderr, "bench_cache: out of memory for %u certificates\n", n);
		goto out;
	}
	before = heap_bytes();
	t0 = rte_rdtsc_precise();
	s = dp_cache_set_build(&p, &lcore, 1, NULL, msg, sizeof(msg));
	if (s == NULL) {
		fprintf(stderr, "bench_cache: %u certificates: %s\n", n, msg);
		free(p.certs);
		goto out;
	}
	printf("%u certificates (%u keys): built in %.1f ms; rte_malloc %zu bytes = %.0f per "
		"1,000 certificates (entry block with DER %zu, rte_hash %zu)\n", n,
		dp_cache_set_keys(s), (double)(rte_rdtsc_precise() - t0) * 1e3 / hz,
		heap_bytes() - before, (double)(heap_bytes() - before) * 1000.0 / n,
		dp_cache_set_bytes(s), heap_bytes() - before - dp_cache_set_bytes(s));
	c = dp_cache_of_lcore(s, lcore);
	for (int half = 0; half < 2; half++) {
		make_keys(&p, keys, o->lookups, miss, half);
		for (size_t b = 0; b < RTE_DIM(bursts); b++) {
			char label[16] = "single";

			if (bursts[b] != 0)
				snprintf(label, sizeof(label), "bulk %u", bursts[b]);
			run(c, keys, o->lookups, bursts[b], &hits);	/* warm */
			for (unsigned r = 0; r < o->rounds; r++)
				cyc[r] = run(c, keys, o->lookups, bursts[b], &hits);
			qsort(cyc, o->rounds, sizeof(*cyc), cmp_u64);
			printf("  %-9s %-8s %7.2f M lookups/s  %6.1f cycles/lookup  (%u%% hits)\n",
				half ? "half-miss" : "all-hit", label,
				(double)o->lookups * hz / (double)cyc[o->rounds / 2] / 1e6,
				(double)cyc[o->rounds / 2] / o->lookups,
				(unsigned)((uint64_t)hits * 100 / o->lookups));
		}
	}
	dp_cache_set_free(s);
	free(p.certs);
out:
	free(keys);
	free(miss);
	free(cyc);
}

static int
parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option lo[] = {
		{ "certs", required_argument, NULL, 'c' },
		{ "lookups", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*o = (struct bench_opts){ .sizes = { 1000, 100000 }, .nsizes = 2,
		.lookups = 1u << 20, .rounds = 5 };
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *s, *save, *end;

		switch (ch) {
		case 'c':
			o->nsizes = 0;
			for (s = strtok_r(optarg, ",", &save); s != NULL && o->nsizes < MAX_SIZES;
			    s = strtok_r(NULL, ",", &save)) {
				o->sizes[o->nsizes] = (unsigned)strtoul(s, &end, 10);
				if (*end != '\0' || o->sizes[o->nsizes] == 0) {
					fprintf(stderr, "bench_cache: --certs: bad size '%s'\n", s);
					return -1;
				}
				o->nsizes++;
			}
			break;
		case 'n':
			o->lookups = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || o->lookups < 64) {
				fprintf(stderr, "bench_cache: --lookups: at least 64\n");
				return -1;
			}
			break;
		case 'r':
			o->rounds = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || o->rounds == 0) {
				fprintf(stderr, "bench_cache: --rounds: at least 1\n");
				return -1;
			}
			break;
		default:
			fprintf(stderr, "usage: bench_cache <EAL args> -- [--certs N[,N...]] "
				"[--lookups N] [--rounds N]\n");
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct bench_opts o;
	int n = rte_eal_init(argc, argv);

	if (n < 0) {
		fprintf(stderr, "bench_cache: EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argv[n] = argv[0];
	if (parse_opts(argc - n, argv + n, &o) != 0 || make_pool() != 0)
		return 1;
	printf("bench_cache: lcore %u, TSC %.2f GHz, %s, %u lookups per round, median of %u\n",
		rte_lcore_id(), (double)rte_get_tsc_hz() / 1e9,
		rte_eal_has_hugepages() ? "hugepages" : "no hugepages (--no-huge)", o.lookups,
		o.rounds);
	for (unsigned i = 0; i < o.nsizes; i++)
		bench_size(o.sizes[i], &o);
	for (unsigned i = 0; i < POOL; i++)
		trust_cert_free(&pool[i]);
	rte_eal_cleanup();
	return 0;
}
