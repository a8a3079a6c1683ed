/* .enc.sgn encryption and decryption (trust/file.h, FORMATS §2.2). */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "file.h"
#include "party.h"
#include "sign.h"
#include "tap.h"
#include "tlv.h"

static struct party tftp, capf, phone, phone1024, other_phone;
static uint8_t text[3000];

static int
encrypt(size_t len, unsigned hash, const struct party *ph, struct trust_buf *out,
	struct trust_err *err)
{
	struct trust_signer s = { .cert = &tftp.cert, .key = tftp.key, .hash = hash };

	return trust_enc_encrypt(&s, "SEP001122334455.cnf.xml.enc.sgn", 1700000000, &ph->cert,
		text, len, out, err);
}

/* Tags of the elements r reads, in order; containers stay unopened. */
static size_t
walk(struct tlv_reader *r, uint8_t *tags, struct tlv *saved, size_t max)
{
	struct trust_err err = { 0 };
	struct tlv t;
	size_t n = 0;

	while (n < max && tlv_next(r, &t, &err) > 0 && t.tag != TLV_PADDING) {
		saved[n] = t;
		tags[n++] = t.tag;
	}
	return n;
}

static void
test_layout(void)
{
	static const uint8_t hdr_order[] = { 1, 2, 3, 7, 12, 14, 15, 16, 26, 27 };
	struct trust_err err = { 0 };
	struct tlv_reader r, r16, sub;
	struct trust_file f;
	struct trust_buf b;
	struct tlv t[16], t16[4], tsub[8];
	uint8_t tags[16], digest[64];
	size_t n;

	is_int(encrypt(1000, TRUST_HASH_SHA1, &phone, &b, &err), 0, "encrypted: %s", err.msg);
	is_int(trust_file_parse(b.data, b.len, &f, &err), 0, "parses");
	ok(f.hdr.version[0] == 2 && f.hdr.version[1] == 0, "VERSION 2.0");
	ok(f.hdr.encrypted, "has ENCRYPTION_INFO");
	is_int(f.hdr.iv.len, 16, "16-byte IV");
	is_int(f.hdr.enc_padding, 16 - 1000 % 16, "padding count in tag 20");
	is_int(f.hdr.key_size, 2048, "KEY_SIZE = 8 x wrapped key");
	is_int(f.hdr.enc_key.len, 256, "key wrapped to the 2048-bit phone key");
	is_int(f.hdr.key_alg, 1, "key algorithm 1");
	is_int(f.hdr.enc_hash_alg, TRUST_HASH_SHA1, "digest algorithm = signer's");
	EVP_Digest(text, 1000, digest, NULL, EVP_sha1(), NULL);
	ok(f.hdr.enc_hash.len == 20 && memcmp(f.hdr.enc_hash.p, digest, 20) == 0,
		"tag 27 is SHA-1 of the plaintext");
	is_int(f.payload.len, 1008, "ciphertext is the padded length");
	ok(memmem(b.data, b.len, text, 64) == NULL, "plaintext does not appear in the file");
	is_int(f.hdr.header_len % 4, 0, "header multiple of 4");

	tlv_reader_init(&r, b.data, 0, f.hdr.header_len);
	n = walk(&r, tags, t, 16);
	ok(n == sizeof(hdr_order) && memcmp(tags, hdr_order, n) == 0,
		"header order 1, 2, 3, 7, 12, 14, 15, 16, 26, 27, padding");
	tlv_reader_enter(&r16, &r, &t[7]);
	n = walk(&r16, tags, t16, 4);
	ok(n == 2 && tags[0] == 17 && tags[1] == 21, "16 holds 17 and 21");
	tlv_reader_enter(&sub, &r16, &t16[0]);
	n = walk(&sub, tags, tsub, 8);
	ok(n == 3 && tags[0] == 18 && tags[1] == 19 && tags[2] == 20, "17 holds 18, 19, 20");
	tlv_reader_enter(&sub, &r16, &t16[1]);
	n = walk(&sub, tags, tsub, 8);
	ok(n == 4 && tags[0] == 22 && tags[1] == 23 && tags[2] == 24 && tags[3] == 25,
		"21 holds 22, 23, 24, 25");
	trust_file_free(&f);
	trust_buf_free(&b);
}

static void
test_roundtrips(void)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 31, 32, 1000, sizeof(text) };
	struct trust_err err = { 0 };
	struct trust_buf b, plain;
	struct trust_file f;
	int bad = 0, badpad = 0;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (int h = 0; h < 2; h++) {
			unsigned hash = h ? TRUST_HASH_SHA512 : TRUST_HASH_SHA1;
			int rc = encrypt(lens[i], hash, h ? &phone1024 : &phone, &b, &err);

			rc = rc ? rc : trust_enc_decrypt(b.data, b.len, &tftp.cert,
				h ? phone1024.key : phone.key, &plain, &err);
			if (rc != 0 || plain.len != lens[i] || memcmp(plain.data, text, lens[i]) != 0) {
				diag("length %zu %s: %s", lens[i], trust_hash_name(hash), err.msg);
				bad++;
			}
			trust_file_parse(b.data, b.len, &f, &err);
			if (f.hdr.enc_padding != 16 - lens[i] % 16
			    || f.hdr.enc_hash.len != trust_hash_size(hash))
				badpad++;
			trust_file_free(&f);
			trust_buf_wipe(&plain);
			trust_buf_free(&b);
		}
	is_int(bad, 0, "lengths 0..3000, SHA-1 and SHA-512, 2048 and 1024-bit phones: "
		"decrypt gives the original bytes");
	is_int(badpad, 0, "padding 1..16 (16 for whole blocks) and digest size by hash");
}

static void
test_fresh(void)
{
	struct trust_err err = { 0 };
	struct trust_file f1, f2;
	struct trust_buf a, b;

	encrypt(100, TRUST_HASH_SHA1, &phone, &a, &err);
	encrypt(100, TRUST_HASH_SHA1, &phone, &b, &err);
	trust_file_parse(a.data, a.len, &f1, &err);
	trust_file_parse(b.data, b.len, &f2, &err);
	ok(memcmp(f1.hdr.iv.p, f2.hdr.iv.p, 16) != 0, "fresh IV per file");
	ok(memcmp(f1.hdr.enc_key.p, f2.hdr.enc_key.p, 256) != 0, "fresh wrapped key per file");
	ok(memcmp(f1.payload.p, f2.payload.p, f1.payload.len) != 0, "different ciphertext");
	trust_file_free(&f1);
	trust_file_free(&f2);
	trust_buf_free(&a);
	trust_buf_free(&b);
}

static void
test_failures(void)
{
	struct trust_err err = { 0 };
	struct trust_buf b, plain;
	struct trust_file f;
	struct trust_cert ec_cert;
	struct trust_cert_params cp = { .cn = "SEPEC", .days = 1 };
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	int rc;

	encrypt(500, TRUST_HASH_SHA1, &phone, &b, &err);
	rc = trust_enc_decrypt(b.data, b.len, &tftp.cert, other_phone.key, &plain, &err);
	ok(rc == TRUST_ECRYPTO || rc == TRUST_ESIG, "wrong phone key fails: %s", err.msg);
	ok(plain.data == NULL && plain.len == 0, "and gives nothing back");
	is_int(trust_enc_decrypt(b.data, b.len, &tftp.cert, phone1024.key, &plain, &err),
		TRUST_ECRYPTO, "phone key of another size fails");
	ok(strstr(err.msg, "RSA-2048") != NULL, "message: %s", err.msg);
	is_int(trust_enc_decrypt(b.data, b.len, &phone.cert, phone.key, &plain, &err),
		TRUST_ESIG, "wrong signer cert fails");

	trust_file_parse(b.data, b.len, &f, &err);
	b.data[f.hdr.header_len + 40] ^= 0x10;
	is_int(trust_enc_decrypt(b.data, b.len, &tftp.cert, phone.key, &plain, &err),
		TRUST_ESIG, "tampered ciphertext: signature fails");
	rc = trust_enc_decrypt(b.data, b.len, NULL, phone.key, &plain, &err);
	is_int(rc, TRUST_ESIG, "tampered ciphertext without signer: digest fails");
	ok(strstr(err.msg, "tag 27") != NULL, "message: %s", err.msg);
	b.data[f.hdr.header_len + 40] ^= 0x10;
	b.data[b.len - 1] ^= 0x01;	/* last block: the '\r' padding breaks */
	is_int(trust_enc_decrypt(b.data, b.len, NULL, phone.key, &plain, &err), TRUST_ESIG,
		"tampered last block: padding fails");
	ok(strstr(err.msg, "padding") != NULL, "message: %s", err.msg);
	b.data[b.len - 1] ^= 0x01;
	is_int(trust_enc_decrypt(b.data, b.len, NULL, phone.key, &plain, &err), 0,
		"restored file decrypts without a signer");
	trust_buf_wipe(&plain);
	is_int(trust_enc_decrypt(b.data, b.len - 16, NULL, phone.key, &plain, &err),
		TRUST_ESIG, "a block cut off fails");
	is_int(trust_enc_decrypt(b.data, b.len - 5, NULL, phone.key, &plain, &err),
		TRUST_EFORMAT, "a partial block fails");
	ok(strstr(err.msg, "AES blocks") != NULL, "message: %s", err.msg);
	trust_file_free(&f);

	{
		size_t passed = 0;

		for (size_t i = 0; i < b.len; i += 3) {
			b.data[i] ^= 0x20;
			if (trust_enc_decrypt(b.data, b.len, &tftp.cert, phone.key, &plain, NULL) == 0)
				passed++;
			trust_buf_wipe(&plain);
			b.data[i] ^= 0x20;
		}
		is_int(passed, 0, "changes at every third offset are refused");
	}
	trust_buf_free(&b);

	trust_cert_selfsign(ec, &cp, &ec_cert, &err);
	{
		struct trust_signer s = { .cert = &tftp.cert, .key = tftp.key,
			.hash = TRUST_HASH_SHA1 };

		is_int(trust_enc_encrypt(&s, "x.enc.sgn", 1, &ec_cert, text, 10, &b, &err),
			TRUST_EINVAL, "EC phone certificate refused");
		ok(strstr(err.msg, "EC") != NULL && strstr(err.msg, "RSA") != NULL,
			"message: %s", err.msg);
	}
	encrypt(10, TRUST_HASH_SHA1, &phone, &b, &err);
	is_int(trust_enc_decrypt(b.data, b.len, &tftp.cert, ec, &plain, &err), TRUST_EINVAL,
		"EC phone key refused");
	trust_buf_free(&b);
	{
		struct trust_signer s = { .cert = &tftp.cert, .key = tftp.key,
			.hash = TRUST_HASH_SHA1 };

		trust_sgn_sign(&s, "x.sgn", 1, text, 10, &b, &err);
		is_int(trust_enc_decrypt(b.data, b.len, &tftp.cert, phone.key, &plain, &err),
			TRUST_EFORMAT, "a plain .sgn is not encrypted");
		ok(strstr(err.msg, "tag 16") != NULL, "message: %s", err.msg);
		trust_buf_free(&b);
	}
	trust_cert_free(&ec_cert);
	EVP_PKEY_free(ec);
}

static void
test_short_config(void)
{
	struct trust_buf b;
	unsigned char md[16];
	unsigned mdlen;
	char hex[33], want[64];

	is_int(trust_enc_short_config(&phone.cert, &b), 0, "short config");
	trust_buf_put_u8(&b, 0);
	X509_digest(phone.cert.x509, EVP_md5(), md, &mdlen);
	trust_hex(md, 16, hex);
	snprintf(want, sizeof(want), "<certHash>%s</certHash>", hex);
	ok(strstr((char *)b.data, want) != NULL, "certHash is MD5 of the phone cert DER");
	ok(strncmp((char *)b.data, "<device>", 8) == 0
		&& strstr((char *)b.data, "</device>\n") != NULL, "one <device> element");
	ok(strstr((char *)b.data, "<fullConfig>false</fullConfig>") != NULL, "fullConfig false");
	ok(strstr((char *)b.data, "<encrConfig>true</encrConfig>") != NULL, "encrConfig true");
	trust_buf_free(&b);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t)("<device><fullConfig>true</fullConfig></device>\n"[i % 48]);
	party_make(&tftp, 2048, "cucm", NULL);
	party_make(&capf, 2048, "CAPF-1234", NULL);
	party_make(&phone, 2048, "SEP001122334455", &capf);
	party_make(&phone1024, 1024, "SEP00112233AABB", &capf);
	party_make(&other_phone, 2048, "SEP0011223344FF", &capf);
	test_layout();
	test_roundtrips();
	test_fresh();
	test_failures();
	test_short_config();
	party_free(&tftp);
	party_free(&capf);
	party_free(&phone);
	party_free(&phone1024);
	party_free(&other_phone);
	return done_testing();
}
