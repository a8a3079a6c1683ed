/* See memstat.h. The names are jemalloc's mallctl names; "epoch" first
 * refreshes the cached statistics. */
#include <string.h>

#ifdef TVS_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "memstat.h"

void
ctl_memstat(struct cd_memory *m)
{
	memset(m, 0, sizeof(*m));
#ifdef TVS_HAVE_JEMALLOC
	static const char *const names[] = { "stats.allocated", "stats.active",
		"stats.resident", "stats.retained", "stats.mapped" };
	uint64_t *out[] = { &m->allocated, &m->active, &m->resident, &m->retained, &m->mapped };
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);

	mallctl("epoch", &epoch, &sz, &epoch, sz);
	m->jemalloc = 1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t v = 0, vs = sizeof(v);

		if (mallctl(names[i], &v, &vs, NULL, 0) == 0)
			*out[i] = v;
	}
#endif
}
