/*
 * Which phone fetched which ITL generation. tvsd counts fetches of
 * ITLSEP<MAC>.tlv on its workers and answers `rollout` with its table;
 * tvs-controld merges that into <publications>/rollout so the knowledge
 * survives tvsd restarts, and notes, at each publication, the generation
 * since which the TVS certificate is what it is (the ordering rule of
 * `set cert regen CallManager` needs it). The file:
 *
 *   tvs-rollout 1
 *   tvs <sha256 of the TVS certificate DER> <first generation with it>
 *   newest <newest generation published>
 *   phone <12 upper-case hex digits> <generation> <unix time of the fetch>
 *   end
 *
 * Updates are load, change, atomic replace, under a process-wide mutex
 * (tvs-controld's threads); one process writes it at a time (controld, or
 * tvsctl when controld does not run).
 */
#ifndef CONTROL_ROLLOUT_H
#define CONTROL_ROLLOUT_H

#include <stdint.h>

#include <jansson.h>

#include "trust.h"

#define ROLLOUT_FILE "rollout"
#define ROLLOUT_MAX_PHONES (1u << 20)

struct rollout_phone {
	char mac[13];
	uint64_t gen;
	int64_t time;
};

struct rollout {
	char tvs_sha[65];		/* "" until a publication was noted */
	uint64_t tvs_since;
	uint64_t newest;
	struct rollout_phone *v;	/* sorted by mac */
	size_t n, cap;
	size_t sorted;			/* v[0..sorted) is sorted */
};

/* A missing file is an empty rollout. */
int rollout_load(const char *pub_dir, struct rollout *r, struct trust_err *err);
void rollout_free(struct rollout *r);
const struct rollout_phone *rollout_find(const struct rollout *r, const char *mac);

/* Publication gen carries the TVS certificate tvs_sha. */
int rollout_note_publish(const char *pub_dir, const char *tvs_sha, uint64_t gen,
	struct trust_err *err);
/* tvsd's `rollout` document merged in (newer fetch wins); returns how many
 * phones changed, or a negative error. */
int rollout_merge_tvsd(const char *pub_dir, const json_t *doc, struct trust_err *err);

#endif
