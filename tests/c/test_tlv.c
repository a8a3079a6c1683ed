/* TLV reader and writer (trust/tlv.h): bounds, padding, containers, errors. */
#include "tap.h"
#include "tlv.h"

static void
test_write_read(void)
{
	struct trust_err err = { 0 };
	struct tlv_reader r, sub;
	struct trust_buf b;
	struct tlv t;
	size_t o;

	trust_buf_init(&b);
	is_int(tlv_put_u16(&b, 1, 0x0102), 0, "u16 element");
	o = tlv_open(&b, 3);
	tlv_put_str(&b, 4, "CN=x");
	tlv_put_u8(&b, 8, 1);
	is_int(tlv_close(&b, o), 0, "container closed");
	tlv_put_u32(&b, 15, 0xdeadbeef);
	tlv_put_padding(&b, 2);
	is_int(b.len, 5 + 3 + 8 + 4 + 7 + 2, "sizes add up");
	is_int(trust_get_u16(b.data + 6), 12, "container length = what it holds");

	tlv_reader_init(&r, b.data, 0, b.len);
	is_int(tlv_next(&r, &t, &err), 1, "first element");
	ok(t.tag == 1 && t.len == 2 && t.off == 0 && trust_get_u16(t.val) == 0x0102, "u16 read");
	tlv_next(&r, &t, &err);
	ok(t.tag == 3 && t.len == 12 && t.off == 5, "container read as one element");
	tlv_reader_enter(&sub, &r, &t);
	is_int(tlv_next(&sub, &t, &err), 1, "stepped into the container");
	ok(t.tag == 4 && t.len == 5 && memcmp(t.val, "CN=x", 5) == 0 && t.off == 8,
		"string with NUL, file offset");
	tlv_next(&sub, &t, &err);
	ok(t.tag == 8 && t.val[0] == 1, "u8 read");
	is_int(tlv_next(&sub, &t, &err), 0, "container ends exactly");
	tlv_next(&r, &t, &err);
	ok(t.tag == 15 && trust_get_u32(t.val) == 0xdeadbeef, "u32 read");
	is_int(tlv_next(&r, &t, &err), 1, "padding is an element");
	ok(t.tag == TLV_PADDING && t.len == 0 && t.val == NULL && t.off == b.len - 2,
		"padding is one byte, no length");
	tlv_next(&r, &t, &err);
	is_int(tlv_next(&r, &t, &err), 0, "end reached exactly");
	trust_buf_free(&b);
}

static void
test_errors(void)
{
	struct trust_err err = { 0 };
	uint8_t buf[1400] = { 0 };
	struct tlv_reader r, sub;
	struct trust_buf b;
	struct tlv t;
	size_t o;

	/* a length past the end of the file */
	buf[1234] = 7;
	buf[1235] = 0x01;
	buf[1236] = 0x2c;
	tlv_reader_init(&r, buf, 1234, sizeof(buf));
	is_int(tlv_next(&r, &t, &err), TRUST_EFORMAT, "length past the end refused");
	is_str(err.msg, "tag 7 at offset 1234: length 300 runs past the end of the file "
		"(1400 bytes)", "message names tag, offset, length and file size");

	tlv_reader_init(&r, buf, 1398, sizeof(buf));
	buf[1398] = 5;
	is_int(tlv_next(&r, &t, &err), TRUST_EFORMAT, "truncated tag header refused");
	ok(strstr(err.msg, "tag 5 at offset 1398") != NULL && strstr(err.msg, "2 left") != NULL,
		"message: %s", err.msg);

	/* a child running past its container */
	trust_buf_init(&b);
	o = tlv_open(&b, 3);
	tlv_put_str(&b, 4, "abc");
	tlv_close(&b, o);
	tlv_put_u8(&b, 8, 1);
	b.data[2] = 5;	/* container claims 5 bytes, child needs 7 */
	tlv_reader_init(&r, b.data, 0, b.len);
	tlv_next(&r, &t, &err);
	tlv_reader_enter(&sub, &r, &t);
	is_int(tlv_next(&sub, &t, &err), TRUST_EFORMAT, "child past its container refused");
	is_str(err.msg, "tag 4 at offset 3: length 4 runs past the end of container tag 3 at "
		"offset 0 (offset 8)", "message names the container");
	trust_buf_free(&b);

	trust_buf_init(&b);
	is_int(tlv_put(&b, 9, buf, 65536), TRUST_ETOOBIG, "value over 65,535 refused");
	o = tlv_open(&b, 16);
	for (int i = 0; i < 50; i++)
		tlv_put(&b, 9, buf, 1400);
	is_int(tlv_close(&b, o), TRUST_ETOOBIG, "container over 65,535 refused");
	trust_buf_free(&b);
}

int
main(void)
{
	test_write_read();
	test_errors();
	return done_testing();
}
