/*
 * The fuzz input of the engine harnesses (fuzz_tftp, fuzz_tcp) is a little
 * script, not one packet: a few configuration bytes, then steps, each a
 * kind byte and its arguments. Reading past the end yields zeros, so every
 * byte string is a valid script and libFuzzer's mutations (insert, erase,
 * splice) keep producing sequences of packets rather than noise.
 * fuzz_seeds.c writes scripts in the same layout.
 */
#ifndef TESTS_FUZZ_SCRIPT_H
#define TESTS_FUZZ_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

struct fz {
	const uint8_t *p;
	size_t n, off;
};

static inline int
fz_more(const struct fz *z)
{
	return z->off < z->n;
}

static inline uint8_t
fz_u8(struct fz *z)
{
	return z->off < z->n ? z->p[z->off++] : 0;
}

/* Big-endian, like the wire: the seeds stay readable in a hex dump. */
static inline uint16_t
fz_u16(struct fz *z)
{
	uint16_t hi = fz_u8(z);

	return (uint16_t)(hi << 8 | fz_u8(z));
}

static inline uint32_t
fz_u32(struct fz *z)
{
	uint32_t hi = fz_u16(z);

	return hi << 16 | fz_u16(z);
}

/* Up to want bytes of the input in place; *got says how many there were. */
static inline const uint8_t *
fz_bytes(struct fz *z, size_t want, size_t *got)
{
	const uint8_t *p = z->p + z->off;
	size_t left = z->n - z->off;

	*got = want < left ? want : left;
	z->off += *got;
	return p;
}

#endif
