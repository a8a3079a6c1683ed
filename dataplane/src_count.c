/*
 * Per-source counts (contract in src_count.h). An entry is in use exactly
 * while one of its counts is nonzero, so no separate flag is needed.
 */
#include <errno.h>
#include <stdlib.h>

#include "src_count.h"

struct src_entry {
	uint32_t ip;
	uint32_t n[SRC_KINDS];
};

struct src_count {
	struct src_entry *e;
	uint32_t mask;		/* slots - 1 */
	uint32_t shift;		/* 64 - log2(slots) */
	uint32_t used;
	uint64_t mult;		/* odd */
};

static inline bool
entry_used(const struct src_entry *x)
{
	for (unsigned k = 0; k < SRC_KINDS; k++)
		if (x->n[k] != 0)
			return true;
	return false;
}

static inline uint32_t
home(const struct src_count *t, uint32_t ip)
{
	return (uint32_t)(((uint64_t)ip * t->mult) >> t->shift);
}

/* The slot holding ip, or the empty slot where it would go. */
static uint32_t
probe(const struct src_count *t, uint32_t ip)
{
	uint32_t i = home(t, ip);

	while (entry_used(&t->e[i]) && t->e[i].ip != ip)
		i = (i + 1) & t->mask;
	return i;
}

struct src_count *
src_count_new(uint32_t max_live, uint64_t seed)
{
	struct src_count *t;
	uint32_t slots = 16, bits = 4;

	if (max_live > (1u << 30)) {
		errno = EINVAL;
		return NULL;
	}
	while (slots < 2 * max_live) {
		slots <<= 1;
		bits++;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->e = calloc(slots, sizeof(*t->e))) == NULL) {
		free(t);
		return NULL;
	}
	t->mask = slots - 1;
	t->shift = 64 - bits;
	/* the golden-ratio constant when no seed: still a fine spread */
	t->mult = (seed ^ 0x9e3779b97f4a7c15ull) | 1;
	return t;
}

void
src_count_free(struct src_count *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t);
}

uint32_t
src_count_get(const struct src_count *t, uint32_t ip, unsigned kind)
{
	const struct src_entry *x = &t->e[probe(t, ip)];

	return entry_used(x) ? x->n[kind] : 0;
}

bool
src_count_add(struct src_count *t, uint32_t ip, unsigned kind)
{
	struct src_entry *x = &t->e[probe(t, ip)];

	if (!entry_used(x)) {
		if (t->used >= (t->mask + 1) / 2)
			return false;
		x->ip = ip;
		t->used++;
	}
	x->n[kind]++;
	return true;
}

/*
 * Empties slot i and pulls later entries of the run back over the hole
 * when their home slot allows it, so that every entry stays reachable
 * from its home by probing (Knuth's algorithm R).
 */
static void
remove_at(struct src_count *t, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t h;

		j = (j + 1) & t->mask;
		if (!entry_used(&t->e[j]))
			break;
		h = home(t, t->e[j].ip);
		/* j's entry may move to i unless its home lies cyclically in (i, j] */
		if (((j - h) & t->mask) >= ((j - i) & t->mask)) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	for (unsigned k = 0; k < SRC_KINDS; k++)
		t->e[i].n[k] = 0;
	t->used--;
}

void
src_count_sub(struct src_count *t, uint32_t ip, unsigned kind)
{
	uint32_t i = probe(t, ip);
	struct src_entry *x = &t->e[i];

	if (!entry_used(x) || x->n[kind] == 0)
		return;
	x->n[kind]--;
	if (!entry_used(x))
		remove_at(t, i);
}

uint32_t
src_count_sources(const struct src_count *t)
{
	return t->used;
}
