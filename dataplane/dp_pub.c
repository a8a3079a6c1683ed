/*
 * Generations of the publication in memory.
 *
 * dp_current points at the generation new transfers start on. A worker
 * reads it between two quiescent states and takes a reference on the
 * generation for every transfer (tftp lookup); the engine gives it back
 * (release) when the transfer ends, however many swaps happened since.
 *
 * Reload (main lcore only): pub_load the new directory completely, swap
 * the pointer, rte_rcu_qsbr_synchronize so that no worker can still be
 * about to take a reference on the old one, then park the old one on the
 * retired list. dp_pub_reap frees a retired generation when its last
 * transfer ended. Workers never wait: a failed load changes nothing.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_telemetry.h>

#include "dp.h"
#include "publish.h"

struct dp_gen {
	struct publication pub;
	uint32_t refs;			/* transfers holding it (atomic) */
	time_t loaded;
	struct dp_gen *next;		/* retired list */
};

static struct dp_gen *dp_current;	/* atomic */
static struct dp_gen *dp_retired;	/* main lcore only */
static uint64_t dp_loads, dp_refusals;

static struct dp_gen *
dp_gen_load(const char *root, char *msg, size_t msgsz)
{
	struct dp_gen *g = calloc(1, sizeof(*g));
	struct trust_err err = { 0 };

	if (g == NULL) {
		snprintf(msg, msgsz, "out of memory");
		return NULL;
	}
	if (pub_load(root, &g->pub, &err) != 0) {
		snprintf(msg, msgsz, "%s", err.msg);
		free(g);
		return NULL;
	}
	g->loaded = time(NULL);
	return g;
}

static void
dp_gen_free(struct dp_gen *g)
{
	pub_free(&g->pub);
	free(g);
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

int
dp_pub_reload(char *msg, size_t msgsz)
{
	const char *root = dp_app.cfg.publications;
	struct dp_gen *g, *old;
	char why[560];

	g = dp_gen_load(root, why, sizeof(why));
	if (g == NULL) {
		dp_refusals++;
		snprintf(msg, msgsz, "publication refused: %s", why);
		DP_LOG(ERR, "%s; still serving generation %" PRIu64, msg, dp_pub_generation());
		return -1;
	}
	old = __atomic_exchange_n(&dp_current, g, __ATOMIC_ACQ_REL);
	/* After this no worker can find `old` any more; only its refs remain. */
	rte_rcu_qsbr_synchronize(dp_app.qsbr, RTE_QSBR_THRID_INVALID);
	if (old != NULL) {
		old->next = dp_retired;
		dp_retired = old;
	}
	dp_loads++;
	snprintf(msg, msgsz, "serving generation %" PRIu64 " from %s (%zu files, %zu certificates)",
		g->pub.generation, g->pub.dir, g->pub.nfiles, g->pub.ncerts);
	DP_LOG(NOTICE, "%s", msg);
	dp_pub_reap();
	return 0;
}

void
dp_pub_reap(void)
{
	struct dp_gen **pp = &dp_retired;

	while (*pp != NULL) {
		struct dp_gen *g = *pp;

		if (__atomic_load_n(&g->refs, __ATOMIC_ACQUIRE) != 0) {
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

/* Main lcore only (it alone frees generations). */
void
dp_pub_json(FILE *f)
{
	const struct dp_gen *g = __atomic_load_n(&dp_current, __ATOMIC_ACQUIRE);
	unsigned retired = 0;

	for (const struct dp_gen *r = dp_retired; r != NULL; r = r->next)
		retired++;
	fprintf(f, "\"generation\":%" PRIu64 ",\"loads\":%" PRIu64 ",\"refused\":%" PRIu64
		",\"retired\":%u", g ? g->pub.generation : 0, dp_loads, dp_refusals, retired);
	if (g != NULL) {
		fputs(",\"dir\":", f);
		dp_json_str(f, g->pub.dir);
		fprintf(f, ",\"files\":%zu,\"certs\":%zu,\"loaded\":%lld,\"transfers\":%u",
			g->pub.nfiles, g->pub.ncerts, (long long)g->loaded,
			__atomic_load_n(&g->refs, __ATOMIC_RELAXED));
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
}
