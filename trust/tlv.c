/*
 * Bounds-checked TLV reading and writing (FORMATS §1.1). Readers never
 * look past their end; every error names the tag, its file offset and the
 * limit it broke.
 */
#include <stdio.h>
#include <string.h>

#include "tlv.h"

void
tlv_reader_init(struct tlv_reader *r, const uint8_t *buf, size_t off, size_t end)
{
	r->buf = buf;
	r->off = off;
	r->end = end;
	r->file_len = end;
	r->scope[0] = '\0';
}

void
tlv_reader_enter(struct tlv_reader *sub, const struct tlv_reader *parent,
	const struct tlv *t)
{
	size_t voff = t->off + 3;

	tlv_reader_span(sub, parent, voff, voff + t->len, "container tag %u at offset %zu",
		t->tag, t->off);
}

void
tlv_reader_span(struct tlv_reader *sub, const struct tlv_reader *parent,
	size_t off, size_t end, const char *fmt, ...)
{
	va_list ap;

	sub->buf = parent->buf;
	sub->off = off;
	sub->end = end;
	sub->file_len = parent->file_len;
	va_start(ap, fmt);
	vsnprintf(sub->scope, sizeof(sub->scope), fmt, ap);
	va_end(ap);
}

int
tlv_error(struct trust_err *err, const struct tlv *t, const char *fmt, ...)
{
	char what[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return trust_errf(err, TRUST_EFORMAT, "tag %u at offset %zu: %s", t->tag, t->off, what);
}

/* "the end of the file (N bytes)" or "the end of <scope> (offset E)". */
static void
tlv_limit(const struct tlv_reader *r, char *out, size_t n)
{
	if (r->scope[0] == '\0')
		snprintf(out, n, "the end of the file (%zu bytes)", r->file_len);
	else
		snprintf(out, n, "the end of %s (offset %zu)", r->scope, r->end);
}

int
tlv_next(struct tlv_reader *r, struct tlv *t, struct trust_err *err)
{
	char limit[128];
	size_t left;

	if (r->off >= r->end)
		return 0;
	left = r->end - r->off;
	t->tag = r->buf[r->off];
	t->off = r->off;
	if (t->tag == TLV_PADDING) {
		t->len = 0;
		t->val = NULL;
		r->off++;
		return 1;
	}
	tlv_limit(r, limit, sizeof(limit));
	if (left < 3) {
		t->len = 0;
		return tlv_error(err, t, "tag and length need 3 bytes, %zu left before %s",
			left, limit);
	}
	t->len = trust_get_u16(r->buf + r->off + 1);
	if (t->len > left - 3)
		return tlv_error(err, t, "length %u runs past %s", t->len, limit);
	t->val = r->buf + r->off + 3;
	r->off += 3 + (size_t)t->len;
	return 1;
}

int
tlv_put(struct trust_buf *b, uint8_t tag, const void *val, size_t len)
{
	if (len > TLV_MAX_VALUE)
		return TRUST_ETOOBIG;
	if (trust_buf_put_u8(b, tag) != 0 || trust_buf_put_u16(b, (uint16_t)len) != 0
	    || trust_buf_put(b, val, len) != 0)
		return TRUST_ENOMEM;
	return 0;
}

int
tlv_put_u8(struct trust_buf *b, uint8_t tag, uint8_t v)
{
	return tlv_put(b, tag, &v, 1);
}

int
tlv_put_u16(struct trust_buf *b, uint8_t tag, uint16_t v)
{
	uint8_t p[2] = { v >> 8, v & 0xff };

	return tlv_put(b, tag, p, 2);
}

int
tlv_put_u32(struct trust_buf *b, uint8_t tag, uint32_t v)
{
	uint8_t p[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff };

	return tlv_put(b, tag, p, 4);
}

int
tlv_put_str(struct trust_buf *b, uint8_t tag, const char *s)
{
	return tlv_put(b, tag, s, strlen(s) + 1);
}

size_t
tlv_open(struct trust_buf *b, uint8_t tag)
{
	size_t at = b->len;

	/* a failed put sticks in b->failed; tlv_close reports it */
	trust_buf_put_u8(b, tag);
	trust_buf_put_u16(b, 0);
	return at;
}

int
tlv_close(struct trust_buf *b, size_t opened)
{
	size_t n;

	if (b->failed)
		return TRUST_ENOMEM;
	if (opened > b->len || b->len - opened < 3)
		return TRUST_EINVAL;
	n = b->len - opened - 3;
	if (n > TLV_MAX_VALUE)
		return TRUST_ETOOBIG;
	b->data[opened + 1] = (uint8_t)(n >> 8);
	b->data[opened + 2] = (uint8_t)n;
	return 0;
}

int
tlv_put_padding(struct trust_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (trust_buf_put_u8(b, TLV_PADDING) != 0)
			return TRUST_ENOMEM;
	return 0;
}
