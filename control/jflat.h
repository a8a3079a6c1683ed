/*
 * A flat scanner for the small JSON replies tvsd writes: it turns a
 * document into "path value" pairs (stats.lcores.1.generation 7), which is
 * all tvsctl and tvs-controld need from them; a JSON library would be a
 * dependency for 80 lines. Documents deeper or longer than the limits
 * below are cut (paths) or truncated (pairs), never overrun.
 */
#ifndef CONTROL_JFLAT_H
#define CONTROL_JFLAT_H

#include <stddef.h>

#define JFLAT_PAIRS 4096
#define JFLAT_PATH 96

struct jflat_pair {
	char path[JFLAT_PATH];
	char val[64];
};

struct jflat {
	struct jflat_pair *p;
	size_t n;
	const char *s;		/* scanner position */
	int bad;
};

/* 0, or -1 when text is not JSON (or no memory); free with jflat_free. */
int jflat_parse(struct jflat *f, const char *text);
void jflat_free(struct jflat *f);
const char *jflat_get(const struct jflat *f, const char *path);

#endif
