/*
 * Rollout tracking: which phone fetched which ITL generation. A phone
 * asks for ITLSEP<MAC>.tlv, so the TFTP engine's done callback knows the
 * MAC, the generation the transfer served and whether it completed.
 *
 * Workers only enqueue a 16-byte record on their own single-producer
 * ring (made at init: no allocation, no syscall, no lock on the worker; a
 * full ring drops the record and counts it). The main lcore drains the
 * rings between control-socket polls into one table MAC -> last
 * generation fetched (rte_hash, fixed capacity; phones beyond it are
 * counted as overflow), and answers `rollout` on the control socket from
 * it. tvs-controld persists the table: tvsd forgets it when it stops.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dp.h"

#define DP_ROLLOUT_RING 4096		/* fetch records waiting per lcore */
#define DP_ROLLOUT_PHONES 65536		/* phones the table keeps */

struct dp_fetch {
	uint8_t mac[6];
	uint8_t ok;
	uint8_t pad;
	uint64_t generation;
};

struct dp_rollout_lcore {
	struct rte_ring *ring;
	uint64_t dropped;		/* ring full; written by the worker */
} __rte_cache_aligned;

struct dp_phone {
	uint64_t generation;		/* of the last completed ITL fetch */
	int64_t time;			/* when the main lcore saw it */
	uint32_t fetches;
	uint8_t mac[6];
};

static struct dp_rollout_lcore dp_rl[RTE_MAX_LCORE];
static struct rte_hash *dp_phone_hash;
static struct dp_phone *dp_phones;
static uint64_t dp_rollout_records, dp_rollout_failed, dp_rollout_overflow;

static int
dp_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
		c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* tftp_ops.done, on the worker lcore that ran the transfer. */
void
dp_rollout_done(void *ctx, const char *name, const struct tftp_peer *peer __rte_unused,
	uint64_t generation, bool ok)
{
	const struct dp_lcore *lc = ctx;
	struct dp_rollout_lcore *rl = &dp_rl[lc->lcore_id];
	struct dp_fetch rec = { .ok = ok, .generation = generation };
	char mapped[TFTP_NAME_MAX + 1], mac[13];

	if (rl->ring == NULL || strncasecmp(name, "ITLSEP", 6) != 0 ||
	    !tftp_map_device_name(name, mapped, sizeof(mapped), mac))
		return;
	for (int i = 0; i < 6; i++)
		rec.mac[i] = (uint8_t)(dp_hex(mac[2 * i]) << 4 | dp_hex(mac[2 * i + 1]));
	if (unlikely(rte_ring_sp_enqueue_elem(rl->ring, &rec, sizeof(rec)) != 0))
		rl->dropped++;
}

static void
dp_rollout_record(const struct dp_fetch *r, int64_t now)
{
	uint8_t key[8] = { 0 };
	int32_t pos;

	dp_rollout_records++;
	if (!r->ok) {
		dp_rollout_failed++;
		return;
	}
	memcpy(key, r->mac, 6);
	pos = rte_hash_add_key(dp_phone_hash, key);
	if (pos < 0) {
		dp_rollout_overflow++;
		return;
	}
	memcpy(dp_phones[pos].mac, r->mac, 6);
	dp_phones[pos].generation = r->generation;
	dp_phones[pos].time = now;
	dp_phones[pos].fetches++;
}

/* Main lcore: every worker's ring into the table. */
void
dp_rollout_drain(void)
{
	struct dp_fetch recs[64];
	int64_t now = (int64_t)time(NULL);

	if (dp_phone_hash == NULL)
		return;
	for (unsigned w = 0; w < dp_app.nworkers; w++) {
		struct rte_ring *ring = dp_rl[dp_app.workers[w]].ring;
		unsigned n;

		if (ring == NULL)
			continue;
		while ((n = rte_ring_sc_dequeue_burst_elem(ring, recs, sizeof(recs[0]),
		    RTE_DIM(recs), NULL)) > 0)
			for (unsigned i = 0; i < n; i++)
				dp_rollout_record(&recs[i], now);
	}
}

/* The body of the `rollout` reply (no braces). */
void
dp_rollout_json(FILE *f)
{
	const void *key;
	void *data;
	uint32_t next = 0;
	uint64_t dropped = 0;
	int32_t pos;
	bool first = true;

	dp_rollout_drain();
	for (unsigned w = 0; w < dp_app.nworkers; w++)
		dropped += __atomic_load_n(&dp_rl[dp_app.workers[w]].dropped, __ATOMIC_RELAXED);
	fprintf(f, "\"ok\":true,\"phones\":%" PRIu32 ",\"capacity\":%u,\"overflow\":%" PRIu64
		",\"dropped\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"records\":%" PRIu64 ",\"entries\":[",
		dp_phone_hash ? rte_hash_count(dp_phone_hash) : 0, DP_ROLLOUT_PHONES,
		dp_rollout_overflow, dropped, dp_rollout_failed, dp_rollout_records);
	while (dp_phone_hash != NULL &&
	    (pos = rte_hash_iterate(dp_phone_hash, &key, &data, &next)) >= 0) {
		const struct dp_phone *p = &dp_phones[pos];

		fprintf(f, "%s{\"mac\":\"%02X%02X%02X%02X%02X%02X\",\"generation\":%" PRIu64
			",\"time\":%" PRId64 ",\"fetches\":%" PRIu32 "}", first ? "" : ",",
			p->mac[0], p->mac[1], p->mac[2], p->mac[3], p->mac[4], p->mac[5],
			p->generation, p->time, p->fetches);
		first = false;
	}
	fputc(']', f);
}

int
dp_rollout_init(void)
{
	struct rte_hash_parameters hp = {
		.name = "tvs_rollout",
		.entries = DP_ROLLOUT_PHONES,
		.key_len = 8,
		.hash_func = rte_jhash,
		.socket_id = (int)rte_socket_id(),
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	char name[RTE_RING_NAMESIZE];

	dp_phone_hash = rte_hash_create(&hp);
	dp_phones = rte_zmalloc("tvs_rollout_phones", DP_ROLLOUT_PHONES * sizeof(*dp_phones), 0);
	if (dp_phone_hash == NULL || dp_phones == NULL)
		goto fail;
	for (unsigned w = 0; w < dp_app.nworkers; w++) {
		unsigned l = dp_app.workers[w];

		snprintf(name, sizeof(name), "tvs_rollout_%u", l);
		dp_rl[l].ring = rte_ring_create_elem(name, sizeof(struct dp_fetch), DP_ROLLOUT_RING,
			(int)rte_lcore_to_socket_id(l), RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (dp_rl[l].ring == NULL)
			goto fail;
	}
	return 0;
fail:
	DP_LOG(ERR, "rollout tracking: out of memory (%s)", rte_strerror(rte_errno));
	dp_rollout_fini();
	return -1;
}

void
dp_rollout_fini(void)
{
	for (unsigned l = 0; l < RTE_MAX_LCORE; l++) {
		rte_ring_free(dp_rl[l].ring);
		dp_rl[l].ring = NULL;
	}
	rte_hash_free(dp_phone_hash);
	dp_phone_hash = NULL;
	rte_free(dp_phones);
	dp_phones = NULL;
}
