/* The TVS codec, stream framing and answer logic of trust/tvs.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cert.h"
#include "tap.h"
#include "tvs.h"

static uint8_t out[TVS_MSG_MAX];

static struct trust_bytes
bytes(const void *p, size_t n)
{
	return (struct trust_bytes){ p, n };
}

static struct trust_bytes
str(const char *s)
{
	return bytes(s, strlen(s));
}

static bool
view_is(struct trust_bytes v, const void *p, size_t n)
{
	return v.p != NULL && v.len == n && memcmp(v.p, p, n) == 0;
}

/* Appends tag | len | value to buf at *n. */
static void
put_elem(uint8_t *buf, size_t *n, uint8_t tag, const void *v, size_t len)
{
	buf[(*n)++] = tag;
	buf[(*n)++] = (uint8_t)(len >> 8);
	buf[(*n)++] = (uint8_t)len;
	memcpy(buf + *n, v, len);
	*n += len;
}

static void
put_hdr(uint8_t *buf, uint8_t type, uint32_t id, size_t area)
{
	uint8_t h[TVS_HDR_LEN] = { 0x57, 1, type, 0, (uint8_t)(id >> 24), (uint8_t)(id >> 16),
		(uint8_t)(id >> 8), (uint8_t)id, (uint8_t)(area >> 8), (uint8_t)area };

	memcpy(buf, h, sizeof(h));
}

static const uint8_t fake_der_a[] = { 0x30, 0x82, 0x00, 0x05, 'c', 'e', 'r', 't', 'A' };
static const uint8_t fake_der_b[] = { 0x30, 0x82, 0x00, 0x05, 'c', 'e', 'r', 't', 'B' };
static const uint8_t serial19[19] = { 0x3d, 0x00, 0x81, 0x7f, 0x10, 0x20, 0x30, 0x40, 0x50,
	0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0 };

static void
test_verify_roundtrip(void)
{
	struct tvs_request rq = { .type = TVS_CERT_VERIFY_REQ, .id = 0x3e9 }, got;
	struct trust_err err = { 0 };
	size_t n = 0;

	rq.device = str("CP-8861-SEPB000B4BA0AEE");
	rq.cert = bytes(fake_der_a, sizeof(fake_der_a));
	is_int(tvs_request_build(&rq, out, sizeof(out), &n, &err), 0, "verify request builds");
	is_int(n, 10 + 3 + 24 + 3 + sizeof(fake_der_a), "verify request: header + device + cert");
	ok(memcmp(out, "\x57\x01\x01\x00\x00\x00\x03\xe9", 8) == 0, "header 57 01 01 00 000003e9");
	is_int(trust_get_u16(out + 8), n - 10, "area length covers the elements");
	ok(out[10] == 1 && trust_get_u16(out + 11) == 24 && out[13] == 0x01,
		"device element: tag 1, length 1+23, marker 0x01");
	is_int(tvs_request_parse(out, n, &got, &err), 0, "verify request parses: %s", err.msg);
	is_int(got.type, TVS_CERT_VERIFY_REQ, "type survives");
	is_int(got.id, 0x3e9, "id survives");
	ok(view_is(got.device, "CP-8861-SEPB000B4BA0AEE", 23), "device name without marker");
	ok(view_is(got.cert, fake_der_a, sizeof(fake_der_a)), "certificate bytes survive");
	ok(got.subject.p == NULL && got.issuer.p == NULL && got.serial.p == NULL,
		"no query elements appear");
	is_int(got.len, n, "parsed length is the message length");
}

static void
test_query_roundtrip(void)
{
	struct tvs_request rq = { .type = TVS_QUERY_CERT_REQ, .id = 7 }, got;
	struct trust_err err = { 0 };
	size_t n = 0;

	rq.subject = str("CN=ucm;OU=TAC;O=Cisco;C=AU");
	rq.issuer = str("CN=ca;O=Cisco");
	rq.serial = bytes(serial19, sizeof(serial19));
	is_int(tvs_request_build(&rq, out, sizeof(out), &n, &err), 0, "query request builds");
	ok(out[10] == TVS_TAG_SUBJECT && out[13 + 26] == '\0', "subject in tag 3, NUL-terminated");
	ok(out[10 + 30] == TVS_TAG_ISSUER && out[10 + 30 + 17] == TVS_TAG_SERIAL,
		"issuer in tag 5, serial in tag 6 (FORMATS 8.9)");
	is_int(tvs_request_parse(out, n, &got, &err), 0, "query request parses: %s", err.msg);
	ok(view_is(got.subject, rq.subject.p, rq.subject.len), "subject without its NUL");
	ok(view_is(got.issuer, rq.issuer.p, rq.issuer.len), "issuer without its NUL");
	ok(view_is(got.serial, serial19, sizeof(serial19)),
		"serial with '=' and NUL bytes stays a serial");
	ok(got.device.p == NULL, "no device element was sent");
}

static void
test_response_roundtrip(void)
{
	static const uint8_t roles[] = { 0, 3 };
	struct tvs_response rs = { .type = TVS_QUERY_CERT_RES, .id = 0x3ea, .status = 0 }, got;
	struct trust_err err = { 0 };
	size_t n = 0;

	rs.cert = bytes(fake_der_b, sizeof(fake_der_b));
	rs.roles = bytes(roles, 2);
	rs.has_ttl = true;
	rs.ttl = 86400;
	is_int(tvs_response_build(&rs, out, sizeof(out), &n, &err), 0, "query response builds");
	ok(memcmp(out + 10, "\x07\x00\x01\x00\x02", 5) == 0, "status 0 first, then certificate");
	ok(memcmp(out + n - 12, "\x08\x00\x02\x00\x03\x09\x00\x04\x00\x01\x51\x80", 12) == 0,
		"the last 12 bytes are roles {0,3} and TTL 86400, as in the C-213407 dump");
	ok(out[3] == 0, "reserved byte 0");
	is_int(tvs_response_parse(out, n, &got, &err), 0, "query response parses: %s", err.msg);
	ok(got.status == 0 && got.id == 0x3ea && got.type == TVS_QUERY_CERT_RES,
		"status, id and type survive");
	ok(view_is(got.roles, roles, 2) && got.has_ttl && got.ttl == 86400, "roles and TTL survive");
	ok(view_is(got.cert, fake_der_b, sizeof(fake_der_b)), "certificate survives");

	memset(&rs, 0, sizeof(rs));
	rs.type = TVS_CERT_VERIFY_RES;
	rs.status = TVS_STATUS_UNTRUSTED;
	is_int(tvs_response_build(&rs, out, sizeof(out), &n, &err), 0, "status-only response builds");
	is_int(n, 14, "status-only response is 14 bytes");
	is_int(tvs_response_parse(out, n, &got, &err), 0, "status-only response parses");
	ok(got.status == 1 && got.roles.p == NULL && !got.has_ttl && got.cert.p == NULL,
		"not trusted: status 1 and nothing else");

	out[10] = TVS_TAG_ROLES;	/* status element renamed: now missing */
	ok(tvs_response_parse(out, n, &got, &err) == TRUST_EFORMAT
		&& strstr(err.msg, "no status") != NULL, "a response without status is refused");
	is_int(tvs_response_build(&rs, out, 13, &n, &err), TRUST_ETOOBIG,
		"a response that does not fit the buffer is refused");
}

/* The QUERY_CERT request of the C-213407 dump: 153 bytes. */
static size_t
c213407_request(uint8_t *buf, uint8_t issuer_tag, uint8_t serial_tag, bool serial_first)
{
	static const char dev[] = "\x01" "CP-8861-SEPB000B4BA0AEE";
	static const char subj[] =
		"CN=ucm11pub.collab.example.com.au;OU=Voice;O=Example;L=Perth;C=AU";
	static const char issuer[] = "CN=Sub-CA;O=Exam;C=AU";
	size_t n = TVS_HDR_LEN;

	put_elem(buf, &n, TVS_TAG_DEVICE, dev, sizeof(dev) - 1);
	put_elem(buf, &n, TVS_TAG_SUBJECT, subj, sizeof(subj));
	if (serial_first)
		put_elem(buf, &n, serial_tag, serial19, sizeof(serial19));
	put_elem(buf, &n, issuer_tag, issuer, 22);	/* 21 characters + NUL */
	if (!serial_first)
		put_elem(buf, &n, serial_tag, serial19, sizeof(serial19));
	put_hdr(buf, TVS_QUERY_CERT_REQ, 0x3e9, n - TVS_HDR_LEN);
	return n;
}

static void
test_c213407(void)
{
	static const uint8_t hdr[] = { 0x57, 0x01, 0x03, 0x00, 0x00, 0x00, 0x03, 0xe9, 0x00, 0x8f };
	uint8_t buf[256], buf2[256];
	struct tvs_request rq, rq2;
	struct trust_err err = { 0 };
	size_t n = c213407_request(buf, TVS_TAG_ISSUER, TVS_TAG_SERIAL, false), m = 0;

	is_int(n, 153, "the C-213407 query request is 153 bytes");
	ok(memcmp(buf, hdr, sizeof(hdr)) == 0, "its header is 57 01 03 00 000003e9 008f");
	is_int(tvs_request_parse(buf, n, &rq, &err), 0, "it parses: %s", err.msg);
	is_int(rq.subject.len, 65, "subject of 65 characters (length 0x42 with the NUL)");
	is_int(rq.issuer.len, 21, "issuer of 21 characters");
	ok(view_is(rq.serial, serial19, 19), "serial of 19 raw bytes");
	ok(view_is(rq.device, "CP-8861-SEPB000B4BA0AEE", 23), "device CP-8861-SEPB000B4BA0AEE");
	is_int(tvs_request_build(&rq, buf2, sizeof(buf2), &m, &err), 0, "rebuilt from the parse");
	ok(m == n && memcmp(buf, buf2, n) == 0, "the rebuild is byte-identical");

	n = c213407_request(buf, 4, 5, true);
	is_int(tvs_request_parse(buf, n, &rq2, &err), 0, "serial in tag 4 before issuer in tag 5");
	ok(view_is(rq2.serial, serial19, 19) && view_is(rq2.issuer, "CN=Sub-CA;O=Exam;C=AU", 21),
		"tags 4/5 are told apart by content");
	n = c213407_request(buf, 6, 5, false);
	is_int(tvs_request_parse(buf, n, &rq2, &err), 0, "issuer in tag 6, serial in tag 5");
	ok(view_is(rq2.serial, serial19, 19) && view_is(rq2.issuer, "CN=Sub-CA;O=Exam;C=AU", 21),
		"tags 6/5 are told apart by content");
}

static void
test_truncations(void)
{
	uint8_t buf[256];
	struct tvs_request rq;
	struct trust_err err;
	size_t n = c213407_request(buf, TVS_TAG_ISSUER, TVS_TAG_SERIAL, false), need;
	unsigned bad_parse = 0, bad_frame = 0, no_msg = 0;

	for (size_t k = 0; k < n; k++) {
		/* an exact-size copy, so that ASan sees any read past the end */
		uint8_t *cut = malloc(k ? k : 1);

		memcpy(cut, buf, k);
		err.msg[0] = '\0';
		if (tvs_request_parse(cut, k, &rq, &err) != TRUST_EFORMAT)
			bad_parse++;
		else if (err.msg[0] == '\0')
			no_msg++;
		if (tvs_frame(cut, k, &need, &err) != TVS_FRAME_MORE || need == 0 || k + need > n
		    || (k >= TVS_HDR_LEN && k + need != n))
			bad_frame++;
		free(cut);
	}
	is_int(bad_parse, 0, "every truncation of the 153 bytes is refused");
	is_int(no_msg, 0, "every refusal says why");
	is_int(bad_frame, 0, "framing asks for exactly the missing bytes once the header is in");
	is_int(tvs_frame(buf, n, &need, &err), TVS_FRAME_DONE, "all 153 bytes: one message");
	is_int(need, 153, "of 153 bytes");
}

static void
expect_bad(const uint8_t *buf, size_t n, const char *what, const char *needle)
{
	struct tvs_request rq;
	struct trust_err err = { 0 };
	int rc = tvs_request_parse(buf, n, &rq, &err);

	if (!ok(rc == TRUST_EFORMAT && strstr(err.msg, needle) != NULL, "%s", what))
		diag("rc %d, message \"%s\", want it to contain \"%s\"", rc, err.msg, needle);
}

static void
test_malformed(void)
{
	uint8_t buf[256], m[256];
	size_t n = c213407_request(buf, TVS_TAG_ISSUER, TVS_TAG_SERIAL, false), k;
	struct trust_err err;

	memcpy(m, buf, n);
	m[0] = 0x55;
	expect_bad(m, n, "wrong discriminator", "offset 0: discriminator 0x55");
	ok(tvs_frame(m, 1, &k, &err) == TRUST_EFORMAT, "framing refuses it at the first byte");
	memcpy(m, buf, n);
	m[1] = 2;
	expect_bad(m, n, "wrong version", "offset 1: version 2");
	memcpy(m, buf, n);
	m[2] = 9;
	expect_bad(m, n, "unknown type", "offset 2: unknown message type 9");
	ok(tvs_frame(m, 3, &k, &err) == TRUST_EFORMAT, "framing refuses it at the third byte");
	memcpy(m, buf, n);
	m[2] = TVS_QUERY_CERT_RES;
	expect_bad(m, n, "a response type sent as a request", "not a request");

	memcpy(m, buf, n);
	m[9] = (uint8_t)(m[9] + 1);	/* area one byte longer than what follows */
	expect_bad(m, n, "length field past the end", "offset 8: element area length 144 runs past");
	memcpy(m, buf, n);
	m[n] = 0;
	expect_bad(m, n + 1, "a byte after the element area", "after the end of the element area");

	memcpy(m, buf, n);
	m[10 + 27 + 1] = 0x01;		/* subject length 0x142 > what is left */
	expect_bad(m, n, "element past the message",
		"tag 3 at offset 37: length 322 runs past the message end at offset 153");
	k = TVS_HDR_LEN;
	put_elem(m, &k, TVS_TAG_CERT, fake_der_a, sizeof(fake_der_a));
	put_hdr(m, TVS_CERT_VERIFY_REQ, 1, k - TVS_HDR_LEN);
	m[12]++;			/* the only element claims one byte more */
	expect_bad(m, k, "last element one byte too long",
		"tag 2 at offset 10: length 10 runs past the message end at offset 22");
	put_hdr(m, TVS_CERT_VERIFY_REQ, 1, 2);
	m[10] = 2;
	m[11] = 0;
	expect_bad(m, 12, "a cut element header", "offset 10: 2 byte(s) left");

	k = TVS_HDR_LEN;
	put_elem(m, &k, TVS_TAG_CERT, fake_der_a, sizeof(fake_der_a));
	put_elem(m, &k, TVS_TAG_CERT, fake_der_b, sizeof(fake_der_b));
	put_hdr(m, TVS_CERT_VERIFY_REQ, 1, k - TVS_HDR_LEN);
	expect_bad(m, k, "duplicate certificate", "tag 2 at offset 22: duplicate");
	k = TVS_HDR_LEN;
	put_elem(m, &k, 4, "CN=a", 5);
	put_elem(m, &k, 5, "CN=b", 5);
	put_elem(m, &k, 6, "\x01\x02", 2);
	put_hdr(m, TVS_QUERY_CERT_REQ, 1, k - TVS_HDR_LEN);
	expect_bad(m, k, "three issuer/serial elements", "a third issuer/serial");
	k = TVS_HDR_LEN;
	put_elem(m, &k, 4, "CN=a", 5);
	put_elem(m, &k, 6, "CN=b", 5);
	put_hdr(m, TVS_QUERY_CERT_REQ, 1, k - TVS_HDR_LEN);
	expect_bad(m, k, "two issuers in tags 4 and 6", "a second issuer name (the first was tag 4)");

	k = TVS_HDR_LEN;
	put_elem(m, &k, TVS_TAG_DEVICE, "\x01" "CP-1", 5);
	put_hdr(m, TVS_CERT_VERIFY_REQ, 1, k - TVS_HDR_LEN);
	expect_bad(m, k, "verify without certificate", "no certificate (tag 2)");
	k = TVS_HDR_LEN;
	put_elem(m, &k, TVS_TAG_ISSUER, "CN=a", 5);
	put_hdr(m, TVS_QUERY_CERT_REQ, 1, k - TVS_HDR_LEN);
	expect_bad(m, k, "query without serial", "no serial number");
	k = TVS_HDR_LEN;
	put_elem(m, &k, TVS_TAG_SERIAL, "\x05", 1);
	put_hdr(m, TVS_QUERY_CERT_REQ, 1, k - TVS_HDR_LEN);
	expect_bad(m, k, "query without issuer", "no issuer name");
}

static void
test_lenient(void)
{
	uint8_t m[128];
	size_t k = TVS_HDR_LEN;
	struct tvs_request rq;
	struct trust_err err = { 0 };

	put_elem(m, &k, 0x42, "zz", 2);
	put_elem(m, &k, TVS_TAG_SERIAL, "CN=looks;O=like a name", 23);
	put_elem(m, &k, TVS_TAG_ISSUER, "CN=x;O=y", 9);
	put_hdr(m, TVS_QUERY_CERT_REQ, 5, k - TVS_HDR_LEN);
	is_int(tvs_request_parse(m, k, &rq, &err), 0, "unknown tags are skipped: %s", err.msg);
	is_int(rq.nunknown, 1, "and counted");
	ok(view_is(rq.issuer, "CN=x;O=y", 8) && view_is(rq.serial, "CN=looks;O=like a name", 23),
		"two name-like values in tags 5/6 are read by tag number");
}

static void
test_trickle(void)
{
	uint8_t buf[512];
	size_t n1 = c213407_request(buf, TVS_TAG_ISSUER, TVS_TAG_SERIAL, false), n2, need = 0;
	struct tvs_request rq = { .type = TVS_CERT_VERIFY_REQ, .id = 2 };
	struct trust_err err;
	unsigned more = 0;
	int rc = TVS_FRAME_MORE;
	size_t k;

	for (k = 1; k <= n1; k++) {
		rc = tvs_frame(buf, k, &need, &err);
		if (rc != TVS_FRAME_MORE)
			break;
		more++;
	}
	is_int(more, n1 - 1, "1-byte trickle: 'need more' for each of the first 152 bytes");
	ok(rc == TVS_FRAME_DONE && k == n1 && need == n1, "complete exactly at the last byte");

	rq.cert = bytes(fake_der_a, sizeof(fake_der_a));
	is_int(tvs_request_build(&rq, buf + n1, sizeof(buf) - n1, &n2, &err), 0, "second message");
	is_int(tvs_frame(buf, n1 + n2, &need, &err), TVS_FRAME_DONE, "two in one buffer: done");
	is_int(need, n1, "the first is 153 bytes");
	is_int(tvs_frame(buf + n1, n2, &need, &err), TVS_FRAME_DONE, "then the second");
	is_int(need, n2, "of its own length");
	is_int(tvs_frame(buf + n1, 5, &need, &err), TVS_FRAME_MORE, "partial second");
	is_int(need, 5, "needs the rest of its header first");
}

/* A table of two certificates for tvs_answer. */
struct fake {
	uint8_t sha_a[32];
	uint8_t isk[32];
	const uint8_t *der_for_a;	/* what the hash of A maps to */
	const char *subject;
	const uint8_t *qder;
	size_t qder_len;
	uint32_t ttl;
	unsigned calls;
};

static const uint8_t fake_roles[] = { TRUST_ROLE_SAST, TRUST_ROLE_TFTP };

static int
fake_by_sha(void *ctx, const uint8_t sha[32], struct tvs_entry *e)
{
	struct fake *f = ctx;

	f->calls++;
	if (memcmp(sha, f->sha_a, 32) != 0)
		return 0;
	e->der = f->der_for_a;
	e->der_len = sizeof(fake_der_a);
	e->roles = fake_roles;
	e->nroles = 2;
	e->ttl = f->ttl;
	return 1;
}

static int
fake_by_isk(void *ctx, const uint8_t key[32], struct tvs_entry *e)
{
	struct fake *f = ctx;

	f->calls++;
	if (memcmp(key, f->isk, 32) != 0)
		return 0;
	e->der = f->qder;
	e->der_len = f->qder_len;
	e->roles = fake_roles;
	e->nroles = 2;
	e->ttl = f->ttl;
	e->subject = f->subject;
	e->subject_len = f->subject ? strlen(f->subject) : 0;
	return 1;
}

static int
answer(const struct tvs_request *rq, struct fake *f, struct tvs_response *rs)
{
	struct tvs_lookup lk = { fake_by_sha, fake_by_isk, f };
	struct trust_err err = { 0 };
	size_t n = 0;
	int st = tvs_answer(rq, &lk, out, sizeof(out), &n, &err);

	if (st < 0 || tvs_response_parse(out, n, rs, &err) != 0) {
		diag("answer failed: %s", err.msg);
		return -1;
	}
	return st;
}

static void
test_answer_verify(struct fake *f)
{
	struct tvs_request rq = { .type = TVS_CERT_VERIFY_REQ, .id = 11 };
	struct tvs_response rs;

	rq.cert = bytes(fake_der_a, sizeof(fake_der_a));
	f->der_for_a = fake_der_a;
	is_int(answer(&rq, f, &rs), TVS_STATUS_TRUSTED, "verify of a known certificate: trusted");
	ok(rs.type == TVS_CERT_VERIFY_RES && rs.id == 11 && rs.reserved == 0,
		"answer is type 2, id echoed, reserved 0");
	ok(rs.status == 0 && view_is(rs.roles, fake_roles, 2) && rs.has_ttl && rs.ttl == 86400,
		"status 0, roles SAST+TFTP, TTL 86400 by default");
	ok(rs.cert.p == NULL, "verify answers carry no certificate");
	f->ttl = 3600;
	answer(&rq, f, &rs);
	is_int(rs.ttl, 3600, "the entry's TTL is used when set");

	f->der_for_a = fake_der_b;
	is_int(answer(&rq, f, &rs), TVS_STATUS_UNTRUSTED, "hash hit but DER differs: not trusted");
	ok(rs.status == 1 && rs.roles.p == NULL && !rs.has_ttl, "status 1 alone");
	f->der_for_a = fake_der_a;
	rq.cert = bytes(fake_der_b, sizeof(fake_der_b));
	is_int(answer(&rq, f, &rs), TVS_STATUS_UNTRUSTED, "unknown certificate: not trusted");
}

static void
test_answer_query(struct fake *f)
{
	struct tvs_request rq = { .type = TVS_QUERY_CERT_REQ, .id = 12 };
	struct tvs_response rs;

	rq.issuer = str("CN=Example-CA;O=Ex;C=AU");
	rq.serial = bytes(serial19, 19);
	is_int(answer(&rq, f, &rs), TVS_STATUS_TRUSTED, "query by issuer+serial, no subject: trusted");
	ok(rs.type == TVS_QUERY_CERT_RES && rs.id == 12, "answer is type 4, id echoed");
	ok(view_is(rs.cert, f->qder, f->qder_len), "the certificate comes back");
	ok(view_is(rs.roles, fake_roles, 2) && rs.ttl == TVS_TTL_DEFAULT, "with roles and TTL");

	rq.issuer = str("C=AU, O=Ex, CN=Example-CA");
	is_int(answer(&rq, f, &rs), TVS_STATUS_TRUSTED, "issuer in RFC 4514 spelling finds it too");
	rq.subject = str("C=AU,L=Sydney,O=Example,OU=Voice,CN=ucm11pub");
	is_int(answer(&rq, f, &rs), TVS_STATUS_TRUSTED, "subject given in another spelling matches");
	rq.subject = str("CN=someone-else;C=AU");
	is_int(answer(&rq, f, &rs), TVS_STATUS_UNTRUSTED, "subject that differs: not trusted");
	ok(rs.cert.p == NULL && rs.roles.p == NULL, "and nothing but the status");
	rq.subject.p = NULL;
	rq.serial = bytes(serial19, 18);
	is_int(answer(&rq, f, &rs), TVS_STATUS_UNTRUSTED, "unknown serial: not trusted");
	rq.serial = bytes("\x00\x00\x3d\x00\x81\x7f\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0"
		"\xc0\xd0\xe0\xf0", 21);
	is_int(answer(&rq, f, &rs), TVS_STATUS_TRUSTED, "serial with leading 0x00 bytes matches");
}

/* A real certificate, so that the subject can come from the DER. */
static X509 *
make_cert(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();

	if (k == NULL || x == NULL || nm == NULL)
		goto fail;
	X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"AU", -1, -1, 0);
	X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"Ex; Ltd", -1, -1, 0);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"ucm", -1, -1, 0);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 77);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(x, nm);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	if (X509_sign(x, k, EVP_sha256()) == 0)
		goto fail;
	X509_NAME_free(nm);
	EVP_PKEY_free(k);
	return x;
fail:
	X509_NAME_free(nm);
	X509_free(x);
	EVP_PKEY_free(k);
	return NULL;
}

static void
test_answer_der_subject(struct fake *f)
{
	struct tvs_request rq = { .type = TVS_QUERY_CERT_REQ, .id = 13 };
	struct tvs_response rs;
	X509 *x = make_cert();
	unsigned char *der = NULL;
	int len = x ? i2d_X509(x, &der) : -1;

	if (!ok(len > 0, "test certificate made"))
		return;
	f->qder = der;
	f->qder_len = (size_t)len;
	f->subject = NULL;
	rq.issuer = str("CN=Example-CA;O=Ex;C=AU");
	rq.serial = bytes(serial19, 19);
	rq.subject = str("CN=ucm;O=Ex\\; Ltd;C=AU");
	is_int(answer(&rq, f, &rs), TVS_STATUS_TRUSTED,
		"no subject in the table: taken from the DER, matches");
	rq.subject = str("CN=ucm;O=Ex;C=AU");
	is_int(answer(&rq, f, &rs), TVS_STATUS_UNTRUSTED, "and refuses a different one");
	OPENSSL_free(der);
	X509_free(x);
}

static void
test_handle(struct fake *f)
{
	struct tvs_lookup lk = { fake_by_sha, fake_by_isk, f };
	struct tvs_request rq = { .type = TVS_CERT_VERIFY_REQ };
	struct tvs_response rs;
	struct trust_err err = { 0 };
	uint8_t in[512];
	size_t len = 0, n, used = 0, olen;
	int st = -1, rc;

	rq.id = 100;
	rq.cert = bytes(fake_der_a, sizeof(fake_der_a));
	tvs_request_build(&rq, in, sizeof(in), &n, &err);
	len += n;
	rq.id = 101;
	rq.cert = bytes(fake_der_b, sizeof(fake_der_b));
	tvs_request_build(&rq, in + len, sizeof(in) - len, &n, &err);
	len += n;

	rc = tvs_handle(in, len, &lk, &used, out, sizeof(out), &olen, &st, &err);
	ok(rc == TVS_FRAME_DONE && used == len - n && st == 0, "first of two requests: trusted");
	tvs_response_parse(out, olen, &rs, &err);
	is_int(rs.id, 100, "answered first, with its id");
	rc = tvs_handle(in + used, len - used, &lk, &n, out, sizeof(out), &olen, &st, &err);
	ok(rc == TVS_FRAME_DONE && used + n == len && st == 1, "second: not trusted");
	tvs_response_parse(out, olen, &rs, &err);
	is_int(rs.id, 101, "answered second, with its id");
	rc = tvs_handle(in, 9, &lk, &used, out, sizeof(out), &olen, &st, &err);
	ok(rc == TVS_FRAME_MORE && used == 0 && olen == 0, "a partial request waits");
	in[2] = TVS_QUERY_CERT_RES;
	rc = tvs_handle(in, 3, &lk, &used, out, sizeof(out), &olen, &st, &err);
	ok(rc == TRUST_EFORMAT && strstr(err.msg, "offset 2: type 4 is not a request"),
		"a response sent to the server is refused at its type byte: %s", err.msg);
	in[0] = 'G';
	rc = tvs_handle(in, 4, &lk, &used, out, sizeof(out), &olen, &st, &err);
	ok(rc == TRUST_EFORMAT && strstr(err.msg, "offset 0: discriminator 0x47"),
		"garbage is malformed: %s", err.msg);
}

/* Every single-byte corruption of a valid request either parses or is
 * refused with a message; under ASan this also proves no read is out of
 * bounds. */
static void
test_mutations(void)
{
	uint8_t buf[256];
	size_t n = c213407_request(buf, TVS_TAG_ISSUER, TVS_TAG_SERIAL, false);
	static const uint8_t vals[] = { 0x00, 0x01, 0x02, 0x06, 0x7f, 0x80, 0xff };
	struct tvs_request rq;
	struct trust_err err;
	unsigned silent = 0, runs = 0;

	for (size_t i = 0; i < n; i++) {
		for (size_t v = 0; v < sizeof(vals); v++) {
			uint8_t *m = malloc(n);

			memcpy(m, buf, n);
			m[i] = vals[v];
			err.msg[0] = '\0';
			if (tvs_request_parse(m, n, &rq, &err) != 0 && err.msg[0] == '\0')
				silent++;
			runs++;
			free(m);
		}
	}
	ok(runs == n * sizeof(vals) && silent == 0,
		"%u corrupted requests: each parses or says why", runs);
}

int
main(void)
{
	struct fake f;
	unsigned mdlen;

	test_verify_roundtrip();
	test_query_roundtrip();
	test_response_roundtrip();
	test_c213407();
	test_truncations();
	test_malformed();
	test_lenient();
	test_trickle();

	memset(&f, 0, sizeof(f));
	EVP_Digest(fake_der_a, sizeof(fake_der_a), f.sha_a, &mdlen, EVP_sha256(), NULL);
	ok(trust_issuer_serial_key("CN=Example-CA;O=Ex;C=AU", 23, serial19, 19, f.isk) == 0,
		"issuer/serial key of the fake table");
	f.qder = fake_der_b;
	f.qder_len = sizeof(fake_der_b);
	f.subject = "CN=ucm11pub;OU=Voice;O=Example;L=Sydney;C=AU";
	test_answer_verify(&f);
	f.ttl = 0;
	test_answer_query(&f);
	test_answer_der_subject(&f);
	test_handle(&f);
	test_mutations();
	return done_testing();
}
