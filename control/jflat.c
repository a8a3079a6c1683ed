/* Flat JSON scanner, see jflat.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jflat.h"

static void flat_value(struct jflat *f, const char *path);

static void
flat_ws(struct jflat *f)
{
	while (*f->s == ' ' || *f->s == '\t' || *f->s == '\n' || *f->s == '\r')
		f->s++;
}

/* A string into out (escapes kept as written but for \" and \\). */
static void
flat_string(struct jflat *f, char *out, size_t n)
{
	size_t k = 0;

	if (*f->s != '"') {
		f->bad = 1;
		return;
	}
	for (f->s++; *f->s != '\0' && *f->s != '"'; f->s++) {
		if (*f->s == '\\' && f->s[1] != '\0')
			f->s++;
		if (k + 1 < n)
			out[k++] = *f->s;
	}
	out[k] = '\0';
	if (*f->s != '"')
		f->bad = 1;
	else
		f->s++;
}

static void
flat_add(struct jflat *f, const char *path, const char *val, size_t n)
{
	struct jflat_pair *p;

	if (f->n == JFLAT_PAIRS)
		return;
	p = &f->p[f->n++];
	snprintf(p->path, sizeof(p->path), "%s", path);
	snprintf(p->val, sizeof(p->val), "%.*s", (int)(n < sizeof(p->val) ? n : sizeof(p->val) - 1), val);
}

static void
flat_container(struct jflat *f, const char *path, char close, bool keyed)
{
	char key[JFLAT_PATH], sub[JFLAT_PATH];
	unsigned i = 0;

	f->s++;
	flat_ws(f);
	while (!f->bad && *f->s != close) {
		if (keyed) {
			flat_string(f, key, sizeof(key));
			flat_ws(f);
			if (*f->s++ != ':')
				f->bad = 1;
		} else {
			snprintf(key, sizeof(key), "%u", i++);
		}
		if (snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key) >=
		    (int)sizeof(sub))
			f->bad = 1;	/* deeper than any reply of tvsd */
		flat_value(f, sub);
		flat_ws(f);
		if (*f->s == ',')
			f->s++;
		else if (*f->s != close)
			f->bad = 1;
		flat_ws(f);
	}
	if (*f->s == close)
		f->s++;
}

static void
flat_value(struct jflat *f, const char *path)
{
	char str[256];
	const char *start;

	flat_ws(f);
	if (*f->s == '{') {
		flat_container(f, path, '}', true);
	} else if (*f->s == '[') {
		flat_container(f, path, ']', false);
	} else if (*f->s == '"') {
		flat_string(f, str, sizeof(str));
		flat_add(f, path, str, strlen(str));
	} else {
		start = f->s;
		while (*f->s != '\0' && strchr(",}] \t\r\n", *f->s) == NULL)
			f->s++;
		if (f->s == start)
			f->bad = 1;
		else
			flat_add(f, path, start, (size_t)(f->s - start));
	}
}

const char *
jflat_get(const struct jflat *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->p[i].path, path) == 0)
			return f->p[i].val;
	return NULL;
}

int
jflat_parse(struct jflat *f, const char *text)
{
	memset(f, 0, sizeof(*f));
	f->p = calloc(JFLAT_PAIRS, sizeof(*f->p));
	if (f->p == NULL)
		return -1;
	f->s = text;
	flat_value(f, "");
	flat_ws(f);
	if (*f->s != '\0')
		f->bad = 1;
	return f->bad ? -1 : 0;
}

void
jflat_free(struct jflat *f)
{
	free(f->p);
	f->p = NULL;
	f->n = 0;
}
