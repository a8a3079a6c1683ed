/*
 * A TAP producer in one header, in the spirit of Knot's libtap: ok(), is(),
 * diag(), done_testing(). A unit test's main returns done_testing(), which
 * is 0 only when every check passed and at least one ran.
 */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned tap_run, tap_failed;

static inline int
tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %u - ", cond ? "" : "not ", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		printf("#   failed at %s:%d\n", file, line);
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!ok(g_ == w_, __VA_ARGS__)) \
		printf("#   got %lld, want %lld\n", g_, w_); \
} while (0)
#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	if (!ok(g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0, __VA_ARGS__)) \
		printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)
#define diag(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

static inline int
done_testing(void)
{
	printf("1..%u\n", tap_run);
	if (tap_run == 0) {
		printf("# no test ran\n");
		return 1;
	}
	if (tap_failed)
		printf("# %u of %u failed\n", tap_failed, tap_run);
	return tap_failed ? 1 : 0;
}

/* xorshift64*: fuzz-like tests draw from it; a fixed seed (tap_prng_state
 * may be set from the environment by a test) makes every run the same. */
static uint64_t tap_prng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t
tap_prng(void)
{
	tap_prng_state ^= tap_prng_state >> 12;
	tap_prng_state ^= tap_prng_state << 25;
	tap_prng_state ^= tap_prng_state >> 27;
	return tap_prng_state * 0x2545f4914f6cdd1dull;
}

/* The folder of the shared samples, from the environment or beside the
 * checkout (tests run from the build directory). */
static inline const char *
tap_samples_dir(void)
{
	const char *d = getenv("TVS_SAMPLES");

	return d != NULL ? d : "../shared/samples";
}

#endif
