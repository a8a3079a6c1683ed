/*
 * Contract checks shared by the fuzz harnesses: besides what the
 * sanitizers find, a parser that hands back a view outside its input or
 * fails without saying why is a bug, and aborting makes libFuzzer keep the
 * input that showed it.
 */
#ifndef TESTS_FUZZ_NEED_H
#define TESTS_FUZZ_NEED_H

#include <stdio.h>
#include <stdlib.h>

#include "trust.h"

static inline void
need(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "contract broken: %s\n", what);
		abort();
	}
}

static inline void
need_view(const struct trust_bytes *v, const uint8_t *d, size_t n, const char *what)
{
	if (v->len == 0)
		return;
	need(v->p >= d && v->p + v->len <= d + n, what);
}

#endif
