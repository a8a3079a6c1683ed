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

/*
 * Reads [off, end) of buf, where buf is the whole file so offsets in
 * errors are file offsets. A reader made by tlv_reader_enter or
 * tlv_reader_span also knows what it is inside of, so errors can say
 * "past the end of container tag 3 at offset 15" rather than just "past
 * the end".
 */
struct tlv_reader {
	const uint8_t *buf;
	size_t off;
	size_t end;
	size_t file_len;	/* for "the end of the file (N bytes)" */
	char scope[64];		/* "" = the file itself */
};

void tlv_reader_init(struct tlv_reader *r, const uint8_t *buf, size_t off, size_t end);
/* A reader over the value of container t, read from parent. */
void tlv_reader_enter(struct tlv_reader *sub, const struct tlv_reader *parent,
	const struct tlv *t);
/* A reader over [off, end) of parent's file named by fmt (e.g. "the header"). */
void tlv_reader_span(struct tlv_reader *sub, const struct tlv_reader *parent,
	size_t off, size_t end, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* 1 = one element in *t, 0 = end reached exactly, <0 = error (a length
 * past the end names tag and offset). Padding comes back as tag 0x0D with
 * len 0 and val NULL. */
int tlv_next(struct tlv_reader *r, struct tlv *t, struct trust_err *err);
/* "tag T at offset O: <what>", code TRUST_EFORMAT. */
int tlv_error(struct trust_err *err, const struct tlv *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

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
/* Appends n bytes of padding (0x0D). */
int tlv_put_padding(struct trust_buf *b, size_t n);

#endif
