/* .sgn signing, verification and stripping (trust/file.h, FORMATS §2.1). */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "file.h"
#include "party.h"
#include "sign.h"
#include "tap.h"
#include "tlv.h"

static struct party tftp1024, tftp2048, other2048;

static const char config[] =
	"<device><deviceProtocol>SIP</deviceProtocol><devicePool><name>Default</name>"
	"</devicePool><loadInformation>sip88xx.14-2-1-0001-14</loadInformation></device>\n";

static void
test_roundtrip(const struct party *p, unsigned hash)
{
	static const uint8_t order[] = { 1, 2, 3, 7, 12, 14, 15 };
	struct trust_signer s = { .cert = &p->cert, .key = p->key, .hash = hash,
		.signer_version = true };
	struct trust_err err = { 0 };
	struct trust_bytes pl;
	struct trust_file f;
	struct trust_buf b;
	struct tlv_reader r;
	struct tlv t;
	size_t n = 0;
	bool in_order = true;

	is_int(trust_sgn_sign(&s, "SEP001122334455.cnf.xml.sgn", 1700000000,
		(const uint8_t *)config, strlen(config), &b, &err), 0, "RSA-%d %s .sgn signed: %s",
		p->cert.key_bits, trust_hash_name(hash), err.msg);
	is_int(trust_file_parse(b.data, b.len, &f, &err), 0, "parses");
	ok(f.hdr.version[0] == 1 && f.hdr.version[1] == 0, "VERSION 1.0");
	ok(!f.hdr.has_signer_version, "no SIGNER_VERSION in a .sgn, even when the signer has it");
	is_int(f.hdr.header_len % 4, 0, "header length multiple of 4");
	is_int(f.hdr.signature.len, p->cert.key_bits / 8, "signature size");
	is_str((const char *)f.hdr.filename.p, "SEP001122334455.cnf.xml.sgn", "embedded name");
	ok(f.payload.len == strlen(config) && memcmp(f.payload.p, config, f.payload.len) == 0,
		"payload follows HEADER_LENGTH");
	tlv_reader_init(&r, b.data, 0, f.hdr.header_len);
	while (tlv_next(&r, &t, &err) > 0 && t.tag != TLV_PADDING)
		in_order &= n < sizeof(order) && t.tag == order[n++];
	ok(in_order && n == sizeof(order), "header order 1, 2, 3, 7, 12, 14, 15");
	trust_file_free(&f);

	is_int(trust_sgn_verify(b.data, b.len, &p->cert, &pl, &err), 0, "verifies");
	ok(pl.len == strlen(config) && memcmp(pl.p, config, pl.len) == 0, "verified payload");
	is_int(trust_sgn_verify(b.data, b.len, &other2048.cert, &pl, &err), TRUST_ESIG,
		"wrong signer refused");
	ok(pl.p == NULL && pl.len == 0, "no payload on failure");
	is_int(trust_sgn_strip(b.data, b.len, &pl, &err), 0, "strip");
	ok(pl.len == strlen(config) && memcmp(pl.p, config, pl.len) == 0, "stripped payload");
	b.data[b.len - 2] ^= 1;
	is_int(trust_sgn_verify(b.data, b.len, &p->cert, &pl, &err), TRUST_ESIG,
		"changed payload refused: %s", err.msg);
	trust_buf_free(&b);
}

static void
test_every_byte(void)
{
	struct trust_signer s = { .cert = &tftp1024.cert, .key = tftp1024.key,
		.hash = TRUST_HASH_SHA1 };
	struct trust_err err = { 0 };
	struct trust_bytes pl;
	struct trust_buf b;
	size_t passed = 0;

	trust_sgn_sign(&s, "a.sgn", 1, (const uint8_t *)config, strlen(config), &b, &err);
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x04;
		if (trust_sgn_verify(b.data, b.len, &tftp1024.cert, &pl, NULL) == 0)
			passed++;
		b.data[i] ^= 0x04;
	}
	is_int(passed, 0, "every one of %zu single-byte changes refused", b.len);
	passed = 0;
	for (size_t n = 0; n < b.len; n++)
		if (trust_sgn_verify(b.data, n, &tftp1024.cert, &pl, NULL) == 0)
			passed++;
	is_int(passed, 0, "every truncation refused");
	trust_buf_free(&b);
}

static void
test_edges(void)
{
	struct trust_signer s = { .cert = &tftp2048.cert, .key = tftp2048.key,
		.hash = TRUST_HASH_SHA512 };
	struct trust_err err = { 0 };
	struct trust_bytes pl;
	struct trust_buf b;
	uint8_t *big = malloc(200000);
	struct trust_cert ec_cert;
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct trust_cert_params cp = { .cn = "ec", .days = 1 };

	is_int(trust_sgn_sign(&s, "empty.sgn", 1, NULL, 0, &b, &err), 0, "empty payload signed");
	is_int(trust_sgn_verify(b.data, b.len, &tftp2048.cert, &pl, &err), 0, "and verifies");
	is_int(pl.len, 0, "empty payload back");
	trust_buf_free(&b);

	for (size_t i = 0; i < 200000; i++)
		big[i] = (uint8_t)(i * 7);
	is_int(trust_sgn_sign(&s, "Desktops/320x212x12/bg.png.sgn", 1, big, 200000, &b, &err),
		0, ".sgn has no 64 KB limit");
	is_int(trust_sgn_verify(b.data, b.len, &tftp2048.cert, &pl, &err), 0, "200 KB verifies");
	ok(pl.len == 200000 && memcmp(pl.p, big, 200000) == 0, "200 KB payload back");
	is_int(trust_sgn_verify(b.data, b.len, NULL, &pl, &err), TRUST_EINVAL, "signer required");
	trust_cert_selfsign(ec, &cp, &ec_cert, &err);
	is_int(trust_sgn_verify(b.data, b.len, &ec_cert, &pl, &err), TRUST_EINVAL,
		"EC signer cert refused");
	ok(strstr(err.msg, "EC") != NULL, "message: %s", err.msg);
	trust_buf_free(&b);

	is_int(trust_sgn_sign(&s, NULL, 1, big, 10, &b, &err), TRUST_EINVAL, "name required");
	is_int(trust_sgn_strip((const uint8_t *)config, strlen(config), &pl, &err),
		TRUST_EFORMAT, "an unsigned XML file is not a .sgn");
	ok(strstr(err.msg, "offset 0") != NULL, "message: %s", err.msg);
	is_int(trust_sgn_strip(big, 0, &pl, &err), TRUST_EFORMAT, "empty file");
	trust_cert_free(&ec_cert);
	EVP_PKEY_free(ec);
	free(big);
}

int
main(void)
{
	party_make(&tftp1024, 1024, "tftp1024", NULL);
	party_make(&tftp2048, 2048, "tftp2048", NULL);
	party_make(&other2048, 2048, "other", NULL);
	test_roundtrip(&tftp1024, TRUST_HASH_SHA1);
	test_roundtrip(&tftp2048, TRUST_HASH_SHA1);
	test_roundtrip(&tftp2048, TRUST_HASH_SHA512);
	test_every_byte();
	test_edges();
	party_free(&tftp1024);
	party_free(&tftp2048);
	party_free(&other2048);
	return done_testing();
}
