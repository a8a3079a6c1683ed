/* Buffers, codes, hex and atomic file writes of trust/util.c. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "trust.h"

static void
test_buf(void)
{
	struct trust_buf b;

	trust_buf_init(&b);
	for (int i = 0; i < 1000; i++)
		trust_buf_put_u16(&b, (uint16_t)i);
	trust_buf_put_u32(&b, 0x01020304);
	is_int(b.len, 2004, "buffer grows to hold 1000 u16 and one u32");
	is_int(trust_get_u16(b.data + 2 * 999), 999, "u16 written big-endian");
	is_int(trust_get_u32(b.data + 2000), 0x01020304, "u32 written big-endian");
	trust_buf_wipe(&b);
	ok(b.data == NULL && b.len == 0, "wipe frees and resets");
}

static void
test_codes(void)
{
	is_str(trust_role_name(21), "TVS", "role 21 is TVS");
	is_str(trust_role_name(2), "CCM+TFTP", "role 2 is CCM+TFTP");
	ok(trust_role_name(6) == NULL, "role 6 has no name");
	is_int(trust_role_parse("ccm+tftp"), 2, "role names parse case-insensitively");
	is_int(trust_role_parse("HTTPS"), 7, "HTTPS is the old name of APP-SERVER");
	is_int(trust_role_parse("21"), 21, "decimal role codes parse");
	is_int(trust_role_parse("70000"), -1, "role codes above u16 are refused");
	is_int(trust_role_parse("bogus"), -1, "unknown role names are refused");
	is_int(trust_hash_parse("sha512"), 3, "SHA-512 is code 3");
	is_int(trust_hash_size(1), 20, "SHA-1 is 20 bytes");
	is_int(trust_hash_size(9), 0, "unknown hash has no size");
}

static void
test_hex(void)
{
	uint8_t in[3] = { 0x00, 0xab, 0xff }, out[3];
	char s[7];

	trust_hex(in, 3, s);
	is_str(s, "00abff", "hex is lower case");
	is_int(trust_unhex("00ABff", out, sizeof(out)), 3, "unhex takes either case");
	ok(memcmp(in, out, 3) == 0, "unhex round-trips");
	is_int(trust_unhex("0g", out, sizeof(out)), -1, "unhex refuses non-hex");
	is_int(trust_unhex("abc", out, sizeof(out)), -1, "unhex refuses odd length");
	is_int(trust_unhex("0011223344", out, sizeof(out)), -1, "unhex refuses overflow");
}

static void
test_files(void)
{
	char dir[] = "/tmp/tvs-test-util-XXXXXX", path[256];
	struct trust_err err = { 0 };
	struct trust_buf b;
	struct stat st;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/key", dir);
	is_int(trust_file_write_atomic(path, "secret", 6, 0600, &err), 0, "atomic write");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "written with mode 0600");
	is_int(trust_file_read(path, 100, &b, &err), 0, "read back");
	ok(b.len == 6 && memcmp(b.data, "secret", 6) == 0, "same bytes");
	trust_buf_wipe(&b);
	is_int(trust_file_read(path, 5, &b, &err), TRUST_ETOOBIG, "size limit enforced");
	ok(strstr(err.msg, "more than") != NULL, "size error says why: %s", err.msg);
	snprintf(path, sizeof(path), "%s/missing", dir);
	is_int(trust_file_read(path, 5, &b, &err), TRUST_ENOTFOUND, "missing file");
	snprintf(path, sizeof(path), "%s/key", dir);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	test_buf();
	test_codes();
	test_hex();
	test_files();
	return done_testing();
}
