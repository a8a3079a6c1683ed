/* CTL/ITL build, parse and verify (trust/file.h, FORMATS §1, §8). */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "file.h"
#include "party.h"
#include "sign.h"
#include "tap.h"
#include "tlv.h"

static struct party cm1024, cm2048, tvs2048, capf2048, rec2048, other1024;
static struct trust_buf sample;

static int
sample_load(void)
{
	struct trust_err err = { 0 };
	char path[512];

	snprintf(path, sizeof(path), "%s/ITLFile.csptechnologies-ciscoprovsionerweb.tlv",
		tap_samples_dir());
	if (trust_file_read(path, 1 << 20, &sample, &err) != 0) {
		diag("sample not readable: %s", err.msg);
		return -1;
	}
	return 0;
}

/* Model §8.6 default: the CallManager cert signs and appears as SAST and
 * CCM+TFTP, then TVS and CAPF. Model "itlrecovery": ITLRecovery signs and
 * appears as SAST, the CallManager cert as SAST and CCM+TFTP too. */
static int
build_itl(bool recovery, const struct party *cm, unsigned hash, struct trust_buf *out,
	struct trust_err *err)
{
	struct trust_list_entry e[5];
	struct trust_signer s = { .hash = hash };
	size_t n = 0;

	if (recovery)
		e[n++] = (struct trust_list_entry){ .cert = &rec2048.cert, .role = TRUST_ROLE_SAST };
	e[n++] = (struct trust_list_entry){ .cert = &cm->cert, .role = TRUST_ROLE_SAST,
		.dns_name = "cucm.example.com" };
	e[n++] = (struct trust_list_entry){ .cert = &cm->cert, .role = TRUST_ROLE_CCM_TFTP,
		.dns_name = "cucm.example.com", .has_ip = true, .ip = { 10, 48, 47, 153 } };
	e[n++] = (struct trust_list_entry){ .cert = &tvs2048.cert, .role = TRUST_ROLE_TVS,
		.dns_name = "cucm.example.com" };
	e[n++] = (struct trust_list_entry){ .cert = &capf2048.cert, .role = TRUST_ROLE_CAPF,
		.dns_name = "cucm.example.com" };
	s.cert = recovery ? &rec2048.cert : &cm->cert;
	s.key = recovery ? rec2048.key : cm->key;
	return trust_list_build(&s, "ITLFile.tlv", 1764239999, e, n, out, err);
}

/* Sum of the record's elements as FORMATS §1.4 does it. */
static size_t
record_sum(const struct trust_record *r)
{
	size_t n = 5 + 3 + r->dns_name.len;

	if (r->cert.len > 0)
		n += 3 + r->subject.len + 3 + 2 + 3 + r->issuer.len + 3 + r->serial.len
			+ 3 + r->pubkey.len + 3 + r->signature.len + 3 + r->cert.len;
	else
		n += 3 + 2;
	return n + (r->has_ip ? 7 : 0);
}

/* Tags of the elements of [off, end), in order, into tags[]. */
static size_t
tag_walk(const uint8_t *buf, size_t off, size_t end, uint8_t *tags, size_t max)
{
	struct trust_err err = { 0 };
	struct tlv_reader r;
	struct tlv t;
	size_t n = 0;

	tlv_reader_init(&r, buf, off, end);
	while (n < max && tlv_next(&r, &t, &err) > 0)
		tags[n++] = t.tag;
	return n;
}

static void
check_itl(const struct trust_buf *b, bool recovery, const struct party *cm, unsigned hash)
{
	const char *what = recovery ? "ITLRecovery-signed" : "CallManager-signed";
	const struct party *signer = recovery ? &rec2048 : cm;
	static const uint8_t rec_order[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	static const uint8_t hdr_order[] = { 1, 2, 3, 7, 12, 14, 15 };
	struct trust_err err = { 0 };
	const struct trust_record *sr;
	size_t keylen = cm->cert.key_bits == 2048 ? 270 : 140;
	size_t siglen = cm->cert.key_bits == 2048 ? 256 : 128;
	struct trust_file f;
	uint8_t tags[16];
	size_t n, i0 = recovery ? 1 : 0, hl;

	is_int(trust_list_parse(b->data, b->len, &f, &err), 0, "%s %s ITL parses: %s", what,
		trust_hash_name(hash), err.msg);
	is_int(f.nrecs, recovery ? 5 : 4, "record count");
	ok(f.hdr.version[0] == 1 && f.hdr.version[1] == 2, "VERSION 1.2");
	ok(!f.hdr.has_signer_version, "no SIGNER_VERSION unless asked");
	is_int(f.hdr.hash_alg, hash, "hash code");
	is_int(f.hdr.modulus, signer->cert.key_bits == 2048 ? 2 : 1, "modulus code");
	is_int(f.hdr.header_len % 4, 0, "header length is a multiple of 4");
	hl = 5 + 5 + 3 + (3 + f.hdr.signer_name.len + 3 + f.hdr.signer_serial.len + 3
		+ f.hdr.signer_issuer.len) + 3 + 15 + 3 + f.hdr.signature.len + 3 + 12 + 3 + 4;
	ok(f.hdr.header_len >= hl && f.hdr.header_len - hl < 4,
		"HEADER_LENGTH %u = %zu + padding (FORMATS §1.4 arithmetic)", f.hdr.header_len, hl);
	is_str((const char *)f.hdr.signer_name.p, signer->cert.subject, "signer name");
	is_str((const char *)f.hdr.filename.p, "ITLFile.tlv", "filename");
	is_int(f.hdr.timestamp, 1764239999, "timestamp");
	n = tag_walk(b->data, 0, f.hdr.header_len, tags, sizeof(tags));
	ok(n >= 7 && memcmp(tags, hdr_order, 7) == 0 && (n == 7 || tags[7] == TLV_PADDING),
		"header order 1, 2, 3, 7, 12, 14, 15, padding");
	n = tag_walk(b->data, 13, 13 + 3 + f.hdr.signer_name.len + 3 + f.hdr.signer_serial.len
		+ 3 + f.hdr.signer_issuer.len, tags, sizeof(tags));
	ok(n == 3 && tags[0] == 4 && tags[1] == 5 && tags[2] == 6, "signer info 4, 5, 6");

	is_int(f.recs[i0].role, TRUST_ROLE_SAST, "CallManager SAST record");
	is_int(f.recs[i0 + 1].role, TRUST_ROLE_CCM_TFTP, "CallManager CCM+TFTP record");
	is_int(f.recs[i0 + 2].role, TRUST_ROLE_TVS, "TVS record");
	is_int(f.recs[i0 + 3].role, TRUST_ROLE_CAPF, "CAPF record");
	for (size_t i = 0; i < f.nrecs; i++) {
		const struct trust_record *r = &f.recs[i];

		n = tag_walk(b->data, r->off, r->off + r->len, tags, sizeof(tags));
		ok(n == 9 + (size_t)r->has_ip && memcmp(tags, rec_order, 9) == 0
			&& (!r->has_ip || tags[9] == 10), "record %zu in CUCM order", i);
		is_int(r->len, record_sum(r), "record %zu: RECORD_LENGTH = elements + 5", i);
	}
	{
		const struct trust_record *r = &f.recs[i0 + 1];

		is_int(r->pubkey.len, keylen, "key element is 3+%zu", keylen);
		is_int(r->signature.len, siglen, "signature element is 3+%zu", siglen);
		ok(r->cert.len == cm->cert.der_len && memcmp(r->cert.p, cm->cert.der,
			r->cert.len) == 0, "certificate bytes");
		ok(r->has_ip && r->ip[0] == 10 && r->ip[3] == 153, "IP address element");
		ok(trust_serial_equal(r->serial.p, r->serial.len, cm->cert.serial,
			cm->cert.serial_len), "serial");
		is_str((const char *)r->issuer.p, cm->cert.issuer, "issuer string");
		is_str((const char *)r->dns_name.p, "cucm.example.com", "DNS name");
	}
	sr = trust_list_signer(&f);
	ok(sr == &f.recs[0], "signer is the first SAST record");
	is_int(trust_list_verify(&f, NULL, &err), 0, "verifies with its own SAST record: %s",
		err.msg);
	is_int(trust_list_verify(&f, &signer->cert, &err), 0, "verifies with the signer cert");
	is_int(trust_list_verify(&f, &other1024.cert, &err), TRUST_ESIG,
		"a different cert does not verify");
	ok(err.msg[0] != '\0', "message: %s", err.msg);
	is_int(trust_list_verify(&f, recovery ? &cm->cert : &tvs2048.cert, &err), TRUST_ESIG,
		"a same-size different key does not verify");
	is_int(f.nwarnings, 0, "no warnings");
	trust_file_free(&f);
}

static void
test_roundtrips(void)
{
	struct trust_err err = { 0 };
	struct trust_buf b;

	for (int rec = 0; rec < 2; rec++)
		for (int h = 0; h < 2; h++) {
			unsigned hash = h ? TRUST_HASH_SHA512 : TRUST_HASH_SHA1;
			const struct party *cm = rec ? &cm2048 : (h ? &cm2048 : &cm1024);

			is_int(build_itl(rec, cm, hash, &b, &err), 0, "build ITL: %s", err.msg);
			check_itl(&b, rec, cm, hash);
			trust_buf_free(&b);
		}
	build_itl(false, &cm2048, TRUST_HASH_SHA1, &b, &err);
	diag("ITL, default model, 2048-bit keys (SAST + CCM+TFTP + TVS + CAPF), SHA-1: %zu bytes "
		"(certificates of %zu, %zu, %zu bytes DER)", b.len, cm2048.cert.der_len,
		tvs2048.cert.der_len, capf2048.cert.der_len);
	trust_buf_free(&b);
	build_itl(true, &cm2048, TRUST_HASH_SHA1, &b, &err);
	diag("ITL, itlrecovery model, 2048-bit keys (5 records), SHA-1: %zu bytes", b.len);
	trust_buf_free(&b);
}

static void
test_ctl_and_empty(void)
{
	struct trust_err err = { 0 };
	struct trust_list_entry e[3] = {
		{ .cert = &cm2048.cert, .role = TRUST_ROLE_SAST },
		{ .cert = NULL, .role = TRUST_ROLE_CCM_TFTP, .dns_name = "10.48.47.153",
		  .has_ip = true, .ip = { 10, 48, 47, 153 } },
		{ .cert = &capf2048.cert, .role = TRUST_ROLE_CAPF },
	};
	struct trust_signer s = { .cert = &cm2048.cert, .key = cm2048.key,
		.hash = TRUST_HASH_SHA1, .signer_version = true };
	struct trust_file f;
	struct trust_buf b;
	uint8_t tags[8];

	is_int(trust_list_build(&s, "CTLFile.tlv", 1, e, 3, &b, &err), 0, "CTL built");
	is_int(trust_list_parse(b.data, b.len, &f, &err), 0, "CTL parses");
	is_str((const char *)f.hdr.filename.p, "CTLFile.tlv", "CTL filename");
	ok(f.hdr.has_signer_version && f.hdr.signer_version[0] == 1
		&& f.hdr.signer_version[1] == 1, "SIGNER_VERSION 1.1 when asked");
	is_int(f.recs[1].len, 33, "empty record is 33 bytes (FORMATS §1.4)");
	ok(f.recs[1].cert.len == 0 && f.recs[1].role == TRUST_ROLE_CCM_TFTP,
		"empty record: no cert, role kept");
	ok(tag_walk(b.data, f.recs[1].off, f.recs[1].off + 33, tags, 8) == 4 && tags[0] == 1
		&& tags[1] == 2 && tags[2] == 4 && tags[3] == 10, "empty record is 1, 2, 4, 10");
	is_int(trust_list_verify(&f, NULL, &err), 0, "CTL verifies");
	trust_file_free(&f);
	trust_buf_free(&b);

	e[1].has_ip = false;
	e[1].dns_name = NULL;
	trust_list_build(&s, "ITLFile.tlv", 1, e, 3, &b, &err);
	trust_list_parse(b.data, b.len, &f, &err);
	is_int(f.recs[1].len, 5 + 4 + 5, "empty record without IP or name is 14 bytes");
	trust_file_free(&f);
	trust_buf_free(&b);
}

static void
test_build_errors(void)
{
	struct trust_err err = { 0 };
	struct trust_list_entry e[60];
	struct trust_signer s = { .cert = &cm2048.cert, .key = cm2048.key,
		.hash = TRUST_HASH_SHA1 };
	struct trust_cert ec_cert;
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct trust_cert_params cp = { .cn = "ec", .days = 1 };
	struct trust_buf b;

	for (size_t i = 0; i < 60; i++)
		e[i] = (struct trust_list_entry){ .cert = &cm2048.cert, .role = TRUST_ROLE_TVS };
	is_int(trust_list_build(&s, "ITLFile.tlv", 1, e, 60, &b, &err), TRUST_ETOOBIG,
		"60 records of 2048-bit certs are refused");
	ok(strstr(err.msg, "65,535") != NULL, "message: %s", err.msg);
	ok(b.len == 0, "nothing is returned");
	/* the limit is exact: n records fit, one more does not */
	{
		struct trust_file f;
		size_t n = 1;
		int rc;

		while ((rc = trust_list_build(&s, "ITLFile.tlv", 1, e, n + 1, &b, &err)) == 0) {
			trust_buf_free(&b);
			n++;
		}
		is_int(rc, TRUST_ETOOBIG, "%zu records are too many", n + 1);
		is_int(trust_list_build(&s, "ITLFile.tlv", 1, e, n, &b, &err), 0,
			"%zu records fit", n);
		trust_list_parse(b.data, b.len, &f, &err);
		ok(b.len <= TRUST_LIST_MAX && b.len + f.recs[0].len > TRUST_LIST_MAX,
			"%zu bytes fit, %zu more would not", b.len, (size_t)f.recs[0].len);
		trust_file_free(&f);
		trust_buf_free(&b);
	}

	trust_cert_selfsign(ec, &cp, &ec_cert, &err);
	s.cert = &ec_cert;
	s.key = ec;
	is_int(trust_list_build(&s, "ITLFile.tlv", 1, e, 1, &b, &err), TRUST_EINVAL,
		"EC signer refused");
	ok(strstr(err.msg, "RSA") != NULL, "message: %s", err.msg);
	s.cert = &cm2048.cert;
	s.key = cm1024.key;
	is_int(trust_list_build(&s, "ITLFile.tlv", 1, e, 1, &b, &err), TRUST_EINVAL,
		"key of another cert refused");
	ok(strstr(err.msg, "does not belong") != NULL, "message: %s", err.msg);
	s.key = cm2048.key;
	s.hash = 7;
	is_int(trust_list_build(&s, "ITLFile.tlv", 1, e, 1, &b, &err), TRUST_EINVAL,
		"unknown hash refused");
	s.hash = TRUST_HASH_SHA1;

	/* verifying with an EC cert */
	{
		struct trust_file f;

		build_itl(false, &cm1024, TRUST_HASH_SHA1, &b, &err);
		trust_list_parse(b.data, b.len, &f, &err);
		is_int(trust_list_verify(&f, &ec_cert, &err), TRUST_EINVAL,
			"EC cert cannot verify an RSA signature");
		ok(strstr(err.msg, "RSA") != NULL, "message: %s", err.msg);
		trust_file_free(&f);
		trust_buf_free(&b);
	}
	trust_cert_free(&ec_cert);
	EVP_PKEY_free(ec);
}

static void
test_sample(void)
{
	static const unsigned roles[] = { TRUST_ROLE_SAST, TRUST_ROLE_CCM, TRUST_ROLE_CCM,
		TRUST_ROLE_APP_SERVER, TRUST_ROLE_APP_SERVER };
	struct trust_err err = { 0 };
	struct trust_file f;
	struct trust_cert c;
	const struct trust_record *sr;
	size_t bad_parse = 0, bad_verify = 0, passed = 0;

	is_int(trust_list_parse(sample.data, sample.len, &f, &err), 0, "sample parses: %s",
		err.msg);
	is_int(sample.len, 10370, "sample is 10370 bytes");
	is_int(f.nrecs, 5, "5 records");
	for (size_t i = 0; i < 5 && i < f.nrecs; i++)
		is_int(f.recs[i].role, roles[i], "record %zu is %s", i, trust_role_name(roles[i]));
	is_int(f.hdr.header_len, 388, "header length 388");
	is_int(f.hdr.hash_alg, TRUST_HASH_SHA1, "SHA-1");
	is_int(f.hdr.modulus, 2, "2048-bit");
	ok(f.hdr.has_signer_version && f.hdr.signer_version[0] == 1
		&& f.hdr.signer_version[1] == 0, "SIGNER_VERSION 1.0");
	is_int(f.recs[0].len, 1484, "first record 1484 bytes");
	is_int(f.recs[3].pubkey.len, 526, "4096-bit key element is 526 bytes");
	is_int(f.recs[0].pubkey.len, 270, "2048-bit key element is 270 bytes");
	is_str((const char *)f.hdr.signer_name.p, "CN=SAST,O=SAST,OU=SAST", "signer name");
	sr = trust_list_signer(&f);
	ok(sr == &f.recs[0], "signer is the SAST record");
	is_int(trust_list_verify(&f, NULL, &err), 0, "sample verifies: %s", err.msg);
	is_int(trust_cert_from_der(sr->cert.p, sr->cert.len, &c, &err), 0, "signer cert parses");
	ok(trust_name_equal((const char *)sr->subject.p, sr->subject.len, c.subject,
		strlen(c.subject)), "record subject (RFC 4514 style) equals our CUCM spelling %s",
		c.subject);
	is_int(trust_list_verify(&f, &c, &err), 0, "verifies with the signer cert given");
	is_int(trust_list_verify(&f, &cm2048.cert, &err), TRUST_ESIG, "not with another cert");
	trust_cert_free(&c);
	is_int(f.nwarnings, 0, "no unknown tags");
	trust_file_free(&f);

	/* every single-byte change is caught, and nothing crashes */
	for (size_t off = 0; off < sample.len; off++) {
		uint8_t *p = sample.data + off, keep = *p;

		for (int m = 0; m < 2; m++) {
			*p = keep ^ (m ? 0x80 : 0x01);
			if (trust_list_parse(sample.data, sample.len, &f, NULL) != 0)
				bad_parse++;
			else if (trust_list_verify(&f, NULL, NULL) != 0)
				bad_verify++;
			else
				passed++;
			trust_file_free(&f);
		}
		*p = keep;
	}
	is_int(passed, 0, "all %zu flipped files refused (%zu by parse, %zu by verify)",
		2 * sample.len, bad_parse, bad_verify);

	/* every truncation is caught */
	passed = 0;
	for (size_t n = 0; n < sample.len; n++) {
		if (trust_list_parse(sample.data, n, &f, NULL) == 0
		    && trust_list_verify(&f, NULL, NULL) == 0)
			passed++;
		trust_file_free(&f);
	}
	is_int(passed, 0, "all %zu truncations refused", sample.len);
}

/* The sample with one change at off; parse result and message. */
static int
parse_changed(size_t off, uint8_t v, struct trust_err *err)
{
	struct trust_file f;
	uint8_t keep = sample.data[off];
	int rc;

	sample.data[off] = v;
	rc = trust_list_parse(sample.data, sample.len, &f, err);
	sample.data[off] = keep;
	trust_file_free(&f);
	return rc;
}

static void
test_bad_input(void)
{
	struct trust_err err = { 0 };
	struct trust_file f;
	uint8_t *big = calloc(1, 65536);

	is_int(trust_list_parse(sample.data, 0, &f, &err), TRUST_EFORMAT, "zero-length file");
	is_str(err.msg, "empty file", "message says so");
	is_int(trust_file_parse(NULL, 0, &f, &err), TRUST_EFORMAT, "empty .sgn");
	memcpy(big, sample.data, sample.len);
	is_int(trust_list_parse(big, 65536, &f, &err), TRUST_ETOOBIG, "65,536-byte file");
	ok(strstr(err.msg, "65536 bytes") != NULL, "message: %s", err.msg);
	is_int(trust_list_parse(big, 65535, &f, &err), TRUST_EFORMAT,
		"65,535 bytes is allowed but zero padding after the records is not a record");
	free(big);

	/* SIGNER_INFO (offset 15) claims one byte more / less than it holds */
	is_int(parse_changed(17, 0x48, &err), TRUST_EFORMAT, "container one byte too long");
	ok(strstr(err.msg, "offset") != NULL, "message: %s", err.msg);
	is_int(parse_changed(17, 0x46, &err), TRUST_EFORMAT, "container one byte too short");
	ok(strstr(err.msg, "container tag 3 at offset 15") != NULL, "message: %s", err.msg);
	/* SIGNATURE_INFO (offset 89) */
	is_int(parse_changed(91, 0x0e, &err), TRUST_EFORMAT, "SIGNATURE_INFO too short");
	ok(strstr(err.msg, "container tag 7 at offset 89") != NULL, "message: %s", err.msg);
	/* HEADER_LENGTH past the end of the file: 0x0184 -> 0xff84 */
	is_int(parse_changed(8, 0xff, &err), TRUST_EFORMAT, "header length past the end");
	is_str(err.msg, "tag 2 at offset 5: header length 65412 runs past the end of the file "
		"(10370 bytes)", "message names tag, offset and size");
	/* first RECORD_LENGTH past the end: 0x05cc -> 0xf5cc */
	is_int(parse_changed(391, 0xf5, &err), TRUST_EFORMAT, "record length past the end");
	ok(strstr(err.msg, "tag 1 at offset 388") != NULL, "message: %s", err.msg);
	/* a record element running past its record: last record's length - 1 */
	trust_list_parse(sample.data, sample.len, &f, &err);
	{
		size_t lo = f.recs[4].off + 4;

		is_int(parse_changed(lo, (uint8_t)(sample.data[lo] - 1), &err), TRUST_EFORMAT,
			"record one byte short");
		ok(strstr(err.msg, "the record at offset") != NULL, "message: %s", err.msg);
	}
	trust_file_free(&f);
	/* VERSION with a wrong length */
	is_int(parse_changed(2, 3, &err), TRUST_EFORMAT, "VERSION of length 3");
	is_str(err.msg, "tag 1 at offset 0: length 3, expected 2", "message");
	/* the FILENAME tag (offset 366) made unknown: skipped with a warning */
	sample.data[366] = 0x63;
	is_int(trust_list_parse(sample.data, sample.len, &f, &err), 0, "unknown tag skipped");
	is_int(f.nwarnings, 1, "and counted");
	is_str(f.warning, "tag 99 at offset 366: unknown in the header, 12 bytes skipped",
		"first warning kept");
	is_int(trust_list_verify(&f, NULL, &err), TRUST_ESIG, "but the signature breaks");
	trust_file_free(&f);
	sample.data[366] = HTAG_FILENAME;
	/* a duplicate: FILENAME tag turned into a second TIMESTAMP */
	is_int(parse_changed(366, HTAG_TIMESTAMP, &err), TRUST_EFORMAT, "wrong-length TIMESTAMP");
	is_int(parse_changed(381, HTAG_FILENAME, &err), TRUST_EFORMAT, "duplicate FILENAME");
	ok(strstr(err.msg, "twice") != NULL, "message: %s", err.msg);
}

/*
 * A list written by hand in another legal order (UCM's: signer info 4, 6,
 * 5; records 1, 3, 5, 6, 4, 7, 8, 9; containers reversed), with the header
 * serial carrying a 0x00 sign byte, signed here by the §1.7 rule. Our
 * parser must accept it and verify it.
 */
static void
test_other_order(void)
{
	const struct trust_cert *c = &cm1024.cert;
	struct trust_err err = { 0 };
	uint8_t serial0[TRUST_SERIAL_MAX + 1] = { 0 }, sig[128];
	struct trust_buf b, out;
	struct trust_file f;
	size_t hl_at, sig_at, o, o2, rl, siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memcpy(serial0 + 1, c->serial, c->serial_len);
	trust_buf_init(&b);
	tlv_put(&b, 1, "\x01\x02", 2);
	hl_at = b.len;
	tlv_put_u16(&b, 2, 0);
	tlv_put(&b, 28, "\x01\x00", 2);
	o = tlv_open(&b, 3);
	tlv_put_str(&b, 4, c->subject);
	tlv_put_str(&b, 6, "C=PL,ST=Malopolska,L=Krakow,O=Cisco,OU=TAC,CN=cucm1024");
	tlv_put(&b, 5, serial0, c->serial_len + 1);
	tlv_close(&b, o);
	o = tlv_open(&b, 7);
	o2 = tlv_open(&b, 9);
	tlv_put_u8(&b, 11, 1);
	tlv_put_u8(&b, 10, 0);
	tlv_close(&b, o2);
	tlv_put_u8(&b, 8, TRUST_HASH_SHA512);
	tlv_close(&b, o);
	sig_at = b.len;
	tlv_put_u32(&b, 15, 42);
	tlv_put_str(&b, 14, "ITLFile.tlv");
	tlv_put_padding(&b, (4 - (b.len + 3 + 128) % 4) % 4);
	b.data[hl_at + 3] = (uint8_t)((b.len + 131) >> 8);
	b.data[hl_at + 4] = (uint8_t)(b.len + 131);
	rl = b.len;
	tlv_put_u16(&b, 1, 0);
	tlv_put_str(&b, 3, c->subject);
	tlv_put_str(&b, 5, c->issuer);
	tlv_put(&b, 6, c->serial, c->serial_len);
	tlv_put_u16(&b, 4, TRUST_ROLE_SAST);
	tlv_put(&b, 7, c->pubkey, c->pubkey_len);
	tlv_put(&b, 8, c->sig, c->sig_len);
	tlv_put(&b, 9, c->der, c->der_len);
	tlv_put_str(&b, 2, "late-dns-name");
	b.data[rl + 3] = (uint8_t)((b.len - rl) >> 8);
	b.data[rl + 4] = (uint8_t)(b.len - rl);
	EVP_DigestSignInit(ctx, NULL, EVP_sha512(), NULL, cm1024.key);
	EVP_DigestSign(ctx, sig, &siglen, b.data, b.len);
	EVP_MD_CTX_free(ctx);
	trust_buf_init(&out);
	trust_buf_put(&out, b.data, sig_at);
	tlv_put(&out, 12, sig, siglen);
	trust_buf_put(&out, b.data + sig_at, b.len - sig_at);

	is_int(trust_list_parse(out.data, out.len, &f, &err), 0, "other order parses: %s",
		err.msg);
	is_int(f.hdr.signer_serial.len, c->serial_len + 1, "header serial kept its 0x00");
	ok(trust_list_signer(&f) == &f.recs[0], "signer found across serial spellings and "
		"issuer spellings");
	is_str((const char *)f.recs[0].dns_name.p, "late-dns-name", "DNS name read at the end");
	is_int(trust_list_verify(&f, NULL, &err), 0, "hand-signed SHA-512 list verifies: %s",
		err.msg);
	trust_file_free(&f);
	trust_buf_free(&out);
	trust_buf_free(&b);
}

int
main(void)
{
	party_make(&cm1024, 1024, "cucm1024", NULL);
	party_make(&cm2048, 2048, "cucm", NULL);
	party_make(&tvs2048, 2048, "tvs", NULL);
	party_make(&capf2048, 2048, "CAPF-12345678", NULL);
	party_make(&rec2048, 2048, "ITLRECOVERY_cucm", NULL);
	party_make(&other1024, 1024, "other", NULL);

	test_roundtrips();
	test_ctl_and_empty();
	test_build_errors();
	test_other_order();
	if (sample_load() == 0) {
		test_sample();
		test_bad_input();
	} else {
		ok(0, "shared sample ITL is readable (set TVS_SAMPLES)");
	}
	trust_buf_free(&sample);
	party_free(&cm1024);
	party_free(&cm2048);
	party_free(&tvs2048);
	party_free(&capf2048);
	party_free(&rec2048);
	party_free(&other1024);
	return done_testing();
}
