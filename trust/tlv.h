/*
 * TLV primitives of CTL/ITL/.sgn/.enc.sgn files (FORMATS §1.1): tag u8,
 * length u16 big-endian, value; tag 0x0D alone is one byte of padding.
 */
#ifndef TRUST_TLV_H
#define TRUST_TLV_H

#include "trust.h"

#define TLV_PADDING 0x0d
#define TLV_MAX_VALUE 65535u

struct tlv {
	uint8_t tag;
	uint16_t len;		/* 0 for padding */
	const uint8_t *val;	/* NULL for padding */
	size_t off;		/* offset of the tag byte from the file start */
};

/* Reads [off, end) of buf; `base` is the offset of buf[0] in the file so
 * errors name file offsets. */
struct tlv_reader {
	const uint8_t *buf;
	size_t off;
	size_t end;
};

void tlv_reader_init(struct tlv_reader *r, const uint8_t *buf, size_t off, size_t end);
/* 1 = one element in *t, 0 = end reached exactly, <0 = error (a length
 * past the end names tag and offset). */
int tlv_next(struct tlv_reader *r, struct tlv *t, struct trust_err *err);

/* Writers: append to b; they fail with TRUST_ETOOBIG past 65,535. */
int tlv_put(struct trust_buf *b, uint8_t tag, const void *val, size_t len);
int tlv_put_u8(struct trust_buf *b, uint8_t tag, uint8_t v);
int tlv_put_u16(struct trust_buf *b, uint8_t tag, uint16_t v);
int tlv_put_u32(struct trust_buf *b, uint8_t tag, uint32_t v);
/* Writes s with its NUL; the length counts the NUL. */
int tlv_put_str(struct trust_buf *b, uint8_t tag, const char *s);
/* Container: open writes tag and a placeholder length and returns the
 * offset to give to close, which patches the length of what was written
 * in between. */
size_t tlv_open(struct trust_buf *b, uint8_t tag);
int tlv_close(struct trust_buf *b, size_t opened);

#endif
