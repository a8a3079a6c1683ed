/*
 * Generations of the publication in memory.
 *
 * dp_current points at the generation new transfers start on. A worker
 * reads it between two quiescent states and takes a reference on the
 * generation for every transfer (tftp lookup); the engine gives it back
 * (release) when the transfer ends, however many swaps happened since.
 *
 * Reload (main lcore only): pub_load the new directory completely, then
 * pub_verify it (the index only proves the files are the listed ones; the
 * signatures and the TVS key are what phones and TLS clients depend on),
 * build its caches and TLS contexts, and only then swap the pointer. Any
 * failure up to there refuses the generation and changes nothing: the
 * workers keep serving the old one, the refusal is logged and counted, and
 * the answer names the file and the reason.
 *
 * After the swap the old generation is parked on the retired list with a
 * QSBR token, and the reload waits for that token: once every worker lcore
 * has passed a quiescent state, none can still be about to take a
 * reference on the old generation, so every lookup on every lcore finds
 * the new one. Only then does the reload answer, with the generation now
 * served everywhere. The wait is bounded (DP_GRACE_MS) because the main
 * lcore also serves the control socket: a worker that does not report
 * (stuck, or starved of CPU) turns into an error that names it, not a
 * control plane that hangs. The new generation stays in place; the old one
 * stays parked until its token passes. dp_pub_reap frees a retired
 * generation when its token passed and its last transfer ended. Workers
 * never wait.
 *
 * A generation carries the files and the TVS certificate caches of every
 * worker (dp_cache.h), built together by dp_gen_load before the swap. So
 * one pointer exchange switches both, and a phone never sees a new ITL
 * before the TVS knows the certificates it relies on: the worker that
 * serves the new ITL found it through the new pointer, so the exchange
 * had happened; every TVS lookup reads the pointer afresh for its request
 * (dp_pub_tvs_lookup), and the phone's request comes after it received
 * the ITL, so that load sees the new generation (or a newer one) on any
 * lcore. The reverse order cannot happen either: no worker can reach the
 * new caches before the new files. The caches go with the generation:
 * freed after the grace period, when its last transfer ended. A TVS
 * answer takes no reference because it uses its entry only until the
 * worker's next quiescent state. The TVS's TLS contexts ride along too
 * (dp_tvs_gen, built here when the TVS certificate changed): a worker
 * takes a reference on its context when it sees a new one, and open TLS
 * sessions keep theirs, so freeing a generation never pulls a context
 * from under a session.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_telemetry.h>

#include "dp.h"
#include "publication.h"
#include "pubverify.h"

/* A worker's turn is microseconds; an inline RSA-4096 signature of a TVS
 * handshake tens of milliseconds; beyond this a worker is not reporting. */
#define DP_GRACE_MS 5000

struct dp_gen {
	struct publication pub;
	struct dp_cache_set *certs;	/* per worker lcore, from pub.certs */
	struct dp_tvs_gen *tvs;		/* TLS contexts per worker (dp_tvs.c) */
	uint32_t refs;			/* transfers holding it (atomic) */
	uint64_t grace;			/* retired: QSBR token of its swap */
	time_t loaded;
	struct dp_gen *next;		/* retired list */
};

static struct dp_gen *dp_current;	/* atomic */
static struct dp_gen *dp_retired;	/* main lcore only */
static uint64_t dp_loads, dp_refusals, dp_grace_timeouts;

/* One table per worker lcore, on its socket; each counts into its lcore's stats. */
static struct dp_cache_set *
dp_gen_caches(const struct publication *p, char *msg, size_t msgsz)
{
	struct dp_cache_counters *ctrs[RTE_MAX_LCORE];
	struct dp_cache_set *s;

	for (unsigned w = 0; w < dp_app.nworkers; w++)
		ctrs[w] = &dp_lcores[dp_app.workers[w]].stats.cert;
	s = dp_cache_set_build(p, dp_app.workers, dp_app.nworkers, ctrs, msg, msgsz);
	if (s != NULL && dp_cache_set_duplicates(s) != 0)
		DP_LOG(WARNING, "generation %" PRIu64 ": %u issuer/serial keys shared by two "
			"certificates; QUERY_CERT answers with the first in the manifest",
			p->generation, dp_cache_set_duplicates(s));
	return s;
}

static void
dp_gen_free(struct dp_gen *g)
{
	dp_tvs_gen_free(g->tvs);
	dp_cache_set_free(g->certs);
	pub_free(&g->pub);
	free(g);
}

/* Everything the swap needs, checked and built; NULL and msg on refusal. */
static struct dp_gen *
dp_gen_load(const char *root, char *msg, size_t msgsz)
{
	struct dp_gen *g = calloc(1, sizeof(*g));
	const struct dp_gen *cur;
	struct trust_err err = { 0 };

	if (g == NULL) {
		snprintf(msg, msgsz, "out of memory");
		return NULL;
	}
	if (pub_load(root, &g->pub, &err) != 0 || pub_verify(&g->pub, &err) != 0) {
		snprintf(msg, msgsz, "%s", err.msg);
		pub_free(&g->pub);
		free(g);
		return NULL;
	}
	g->certs = dp_gen_caches(&g->pub, msg, msgsz);
	/* main lcore: the only writer of dp_current, so a plain look is safe */
	cur = __atomic_load_n(&dp_current, __ATOMIC_ACQUIRE);
	if (g->certs == NULL
	    || dp_tvs_gen_new(&g->pub, cur != NULL ? cur->tvs : NULL, &g->tvs, msg, msgsz) != 0) {
		dp_gen_free(g);
		return NULL;
	}
	g->loaded = time(NULL);
	return g;
}

/* At start: without a loadable publication tvsd still runs and answers
 * "file not found" until a reload succeeds. */
int
dp_pub_init(void)
{
	char msg[600];

	if (dp_pub_reload(msg, sizeof(msg)) != 0) {
		DP_LOG(WARNING, "no publication served until a reload succeeds");
		return -1;
	}
	return 0;
}

/* "2 (generation 4), 3 (generation 4)": workers whose last stats snapshot
 * shows a generation older than gen. */
static void
dp_pub_lagging(uint64_t gen, char *out, size_t outsz)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned w = 0; w < dp_app.nworkers && o < outsz; w++) {
		unsigned l = dp_app.workers[w];
		uint64_t seen = __atomic_load_n(&dp_lcores[l].stats.generation, __ATOMIC_RELAXED);

		if (seen < gen)
			o += (size_t)snprintf(out + o, outsz - o, "%s%u (generation %" PRIu64 ")",
				o ? ", " : "", l, seen);
	}
	if (out[0] == '\0')
		snprintf(out, outsz, "unknown (every worker's stats show the new generation)");
}

/* Polls the token: 0 once every worker passed a quiescent state, -1 after
 * ms. Short sleeps: the main lcore shares its core with the kernel's work. */
static int
dp_grace_wait(uint64_t token, unsigned ms, uint64_t *waited_us)
{
	uint64_t hz = rte_get_timer_hz(), t0 = rte_get_timer_cycles();
	uint64_t limit = hz * ms / 1000;
	int rc;

	while ((rc = rte_rcu_qsbr_check(dp_app.qsbr, token, false)) != 1
	    && rte_get_timer_cycles() - t0 < limit)
		rte_delay_us_sleep(50);
	*waited_us = (rte_get_timer_cycles() - t0) * 1000000 / hz;
	return rc == 1 ? 0 : -1;
}

static int
dp_pub_refuse(char *msg, size_t msgsz, const char *why)
{
	__atomic_fetch_add(&dp_refusals, 1, __ATOMIC_RELAXED);
	snprintf(msg, msgsz, "publication refused: %s", why);
	DP_LOG(ERR, "%s; still serving generation %" PRIu64, msg, dp_pub_generation());
	return -1;
}

/* After the swap: the answer once every worker serves g, or the error
 * that names the workers still silent after DP_GRACE_MS. */
static int
dp_pub_confirm(const struct dp_gen *g, uint64_t prev, uint64_t token, char *msg,
	size_t msgsz)
{
	uint64_t waited_us;
	char who[400];

	if (dp_grace_wait(token, DP_GRACE_MS, &waited_us) != 0) {
		__atomic_fetch_add(&dp_grace_timeouts, 1, __ATOMIC_RELAXED);
		dp_pub_lagging(g->pub.generation, who, sizeof(who));
		snprintf(msg, msgsz, "generation %" PRIu64 " is in place, but worker lcore(s) %s "
			"did not pass a quiescent state within %u ms: they may still serve generation %"
			PRIu64, g->pub.generation, who, DP_GRACE_MS, prev);
		DP_LOG(ERR, "%s", msg);
		return -1;
	}
	snprintf(msg, msgsz, "serving generation %" PRIu64 " on every worker lcore (%u) after %"
		PRIu64 " us, from %s (%zu files, %zu certificates cached)", g->pub.generation,
		dp_app.nworkers, waited_us, g->pub.dir, g->pub.nfiles, g->pub.ncerts);
	DP_LOG(NOTICE, "%s", msg);
	return 0;
}

int
dp_pub_reload(char *msg, size_t msgsz)
{
	struct dp_gen *g, *old;
	uint64_t token, prev = 0;
	char why[560];
	int rc;

	g = dp_gen_load(dp_app.cfg.publications, why, sizeof(why));
	if (g == NULL)
		return dp_pub_refuse(msg, msgsz, why);
	old = __atomic_exchange_n(&dp_current, g, __ATOMIC_ACQ_REL);
	/* After this no worker can find `old` any more; only its refs remain,
	 * and those taken before each worker's next quiescent state. */
	token = rte_rcu_qsbr_start(dp_app.qsbr);
	if (old != NULL) {
		prev = old->pub.generation;
		old->grace = token;
		old->next = dp_retired;
		dp_retired = old;
	}
	__atomic_fetch_add(&dp_loads, 1, __ATOMIC_RELAXED);
	rc = dp_pub_confirm(g, prev, token, msg, msgsz);
	dp_pub_reap();
	return rc;
}

void
dp_pub_reap(void)
{
	struct dp_gen **pp = &dp_retired;

	while (*pp != NULL) {
		struct dp_gen *g = *pp;

		/* token first: once it passed, no worker can take a new ref */
		if (rte_rcu_qsbr_check(dp_app.qsbr, g->grace, false) != 1
		    || __atomic_load_n(&g->refs, __ATOMIC_ACQUIRE) != 0) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		DP_LOG(INFO, "generation %" PRIu64 " freed (no transfer left on it)",
			g->pub.generation);
		dp_gen_free(g);
	}
}

/* After the workers stopped and their engines released everything. */
void
dp_pub_fini(void)
{
	struct dp_gen *g = __atomic_exchange_n(&dp_current, NULL, __ATOMIC_ACQ_REL);

	if (g != NULL) {
		g->next = dp_retired;
		dp_retired = g;
	}
	dp_pub_reap();
	while (dp_retired != NULL) {
		g = dp_retired;
		dp_retired = g->next;
		DP_LOG(WARNING, "generation %" PRIu64 " still had %u references at exit",
			g->pub.generation, g->refs);
		dp_gen_free(g);
	}
}

uint64_t
dp_pub_generation(void)
{
	const struct dp_gen *g = __atomic_load_n(&dp_current, __ATOMIC_ACQUIRE);

	return g != NULL ? g->pub.generation : 0;
}

const struct dp_cache *
dp_pub_cache(unsigned lcore)
{
	const struct dp_gen *g = __atomic_load_n(&dp_current, __ATOMIC_ACQUIRE);

	return g != NULL ? dp_cache_of_lcore(g->certs, lcore) : NULL;
}

/* Both tvs_lookup callbacks: the current generation's table of the lcore. */
static int
dp_pub_tvs_find(void *ctx, const uint8_t key[32], struct tvs_entry *e)
{
	unsigned lcore = (unsigned)(uintptr_t)ctx;
	const struct dp_cache *c = dp_pub_cache(lcore);
	const struct dp_cache_entry *ce;

	if (unlikely(c == NULL)) {
		dp_lcores[lcore].stats.cert.lookups++;
		dp_lcores[lcore].stats.cert.misses++;
		return 0;
	}
	ce = dp_cache_lookup(c, key);
	if (ce == NULL)
		return 0;
	dp_cache_entry_tvs(ce, e);
	return 1;
}

const struct dp_tvs_gen *
dp_pub_tvs_gen(void)
{
	const struct dp_gen *g = __atomic_load_n(&dp_current, __ATOMIC_ACQUIRE);

	return g != NULL ? g->tvs : NULL;
}

struct tvs_lookup
dp_pub_tvs_lookup(unsigned lcore)
{
	return (struct tvs_lookup){
		.by_sha256 = dp_pub_tvs_find,
		.by_issuer_serial = dp_pub_tvs_find,
		.ctx = (void *)(uintptr_t)lcore,
	};
}

/* tftp_ops.lookup, on a worker between two quiescent states. */
int
dp_pub_lookup(void *ctx __rte_unused, const char *name, struct tftp_file *f)
{
	struct dp_gen *g = __atomic_load_n(&dp_current, __ATOMIC_ACQUIRE);
	const struct pub_file *pf;
	char mapped[64];

	if (g == NULL)
		return TFTP_ERR_NOT_FOUND;
	pf = pub_find(&g->pub, name);
	if (pf == NULL && tftp_map_device_name(name, mapped, sizeof(mapped), NULL))
		pf = pub_find(&g->pub, mapped);
	if (pf == NULL)
		return TFTP_ERR_NOT_FOUND;
	__atomic_fetch_add(&g->refs, 1, __ATOMIC_RELAXED);
	f->data = pf->data;
	f->len = pf->len;
	f->generation = g->pub.generation;
	f->ref = g;
	return 0;
}

void
dp_pub_release(void *ctx __rte_unused, void *ref)
{
	struct dp_gen *g = ref;

	__atomic_fetch_sub(&g->refs, 1, __ATOMIC_RELEASE);
}

/* "cached_certs":{"<lcore>":N,...}, the keys per table and the set's bytes. */
static void
dp_pub_json_caches(FILE *f, const struct dp_gen *g)
{
	fputs(",\"cached_certs\":{", f);
	for (unsigned w = 0; w < dp_app.nworkers; w++) {
		const struct dp_cache *c = dp_cache_of_lcore(g->certs, dp_app.workers[w]);

		fprintf(f, "%s\"%u\":%u", w ? "," : "", dp_app.workers[w],
			c != NULL ? dp_cache_certs(c) : 0);
	}
	fprintf(f, "},\"cert_keys\":%u,\"cert_duplicates\":%u,\"cert_entry_bytes\":%zu",
		dp_cache_set_keys(g->certs), dp_cache_set_duplicates(g->certs),
		dp_cache_set_bytes(g->certs));
}

/* Main lcore only (it alone frees generations). */
void
dp_pub_json(FILE *f)
{
	const struct dp_gen *g = __atomic_load_n(&dp_current, __ATOMIC_ACQUIRE);
	unsigned retired = 0;

	for (const struct dp_gen *r = dp_retired; r != NULL; r = r->next)
		retired++;
	fprintf(f, "\"generation\":%" PRIu64 ",\"loads\":%" PRIu64 ",\"refused\":%" PRIu64
		",\"grace_timeouts\":%" PRIu64 ",\"retired\":%u", g ? g->pub.generation : 0,
		dp_loads, dp_refusals, dp_grace_timeouts, retired);
	if (g != NULL) {
		fputs(",\"dir\":", f);
		dp_json_str(f, g->pub.dir);
		fprintf(f, ",\"files\":%zu,\"certs\":%zu,\"loaded\":%lld,\"transfers\":%u",
			g->pub.nfiles, g->pub.ncerts, (long long)g->loaded,
			__atomic_load_n(&g->refs, __ATOMIC_RELAXED));
		dp_pub_json_caches(f, g);
	}
}

/*
 * Telemetry thread: it may race with a reload, so it reports only numbers
 * kept outside the generations.
 */
void
dp_pub_tel(struct rte_tel_data *d)
{
	rte_tel_data_add_dict_u64(d, "generation", dp_pub_generation());
	rte_tel_data_add_dict_u64(d, "loads", __atomic_load_n(&dp_loads, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "refused", __atomic_load_n(&dp_refusals, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "grace_timeouts",
		__atomic_load_n(&dp_grace_timeouts, __ATOMIC_RELAXED));
}
