/*
 * libFuzzer harness: arbitrary bytes through every trust-file entry point
 * (trust_list_parse, trust_file_parse, verify, strip, decrypt) and the name
 * and serial helpers. Besides sanitizer findings it aborts when a parser
 * breaks its own contract: a view outside the input, a record outside the
 * file, or a failure without a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_need.h"
#include "file.h"
#include "sign.h"

static EVP_PKEY *key;
static struct trust_cert cert;

static void
need_message(int rc, const struct trust_err *err, const char *what)
{
	if (rc != 0)
		need(err->msg[0] != '\0' && err->code == rc, what);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct trust_err err = { 0 };
	struct trust_cert_params p = { .cn = "fuzz", .o = "tvs", .days = 1 };

	(void)argc;
	(void)argv;
	key = trust_key_generate_rsa(1024, &err);
	if (key == NULL || trust_cert_selfsign(key, &p, &cert, &err) != 0) {
		fprintf(stderr, "fuzz setup: %s\n", err.msg);
		exit(1);
	}
	return 0;
}

static void
fuzz_header_views(const struct trust_file *f, const uint8_t *d, size_t n)
{
	const struct trust_header *h = &f->hdr;

	need(h->header_len <= n, "header length within the file");
	need_view(&h->signer_name, d, h->header_len, "signer name in the header");
	need_view(&h->signer_serial, d, h->header_len, "signer serial in the header");
	need_view(&h->signer_issuer, d, h->header_len, "signer issuer in the header");
	need_view(&h->signature, d, h->header_len, "signature in the header");
	need_view(&h->iv, d, h->header_len, "IV in the header");
	need_view(&h->enc_key, d, h->header_len, "wrapped key in the header");
	need_view(&h->enc_hash, d, h->header_len, "digest in the header");
	need(f->payload.len == n - h->header_len, "payload is the rest of the file");
}

static void
fuzz_list(const uint8_t *d, size_t n)
{
	struct trust_err err = { 0 };
	struct trust_file f;
	uint8_t k[32];
	int rc;

	rc = trust_list_parse(d, n, &f, &err);
	need_message(rc, &err, "list parse error has a message");
	if (rc == 0) {
		fuzz_header_views(&f, d, n);
		for (size_t i = 0; i < f.nrecs; i++) {
			const struct trust_record *r = &f.recs[i];
			struct trust_cert c;

			need(r->off >= f.hdr.header_len && r->off + r->len <= n,
				"record inside the file");
			need_view(&r->subject, d + r->off, r->len, "subject in its record");
			need_view(&r->issuer, d + r->off, r->len, "issuer in its record");
			need_view(&r->serial, d + r->off, r->len, "serial in its record");
			need_view(&r->cert, d + r->off, r->len, "cert in its record");
			need(trust_name_equal((const char *)r->issuer.p, r->issuer.len,
				(const char *)r->issuer.p, r->issuer.len), "a name equals itself");
			trust_name_equal((const char *)r->issuer.p, r->issuer.len,
				(const char *)r->subject.p, r->subject.len);
			trust_issuer_serial_key((const char *)r->issuer.p, r->issuer.len,
				r->serial.p, r->serial.len, k);
			if (r->cert.len > 0 && trust_cert_from_der(r->cert.p, r->cert.len, &c,
				&err) == 0)
				trust_cert_free(&c);
		}
		trust_list_signer(&f);
		rc = trust_list_verify(&f, NULL, &err);
		need_message(rc, &err, "list verify error has a message");
		rc = trust_list_verify(&f, &cert, &err);
		need_message(rc, &err, "list verify (given cert) error has a message");
	}
	trust_file_free(&f);
}

static void
fuzz_file(const uint8_t *d, size_t n)
{
	struct trust_err err = { 0 };
	struct trust_bytes pl;
	struct trust_file f;
	struct trust_buf out;
	int rc;

	rc = trust_file_parse(d, n, &f, &err);
	need_message(rc, &err, "file parse error has a message");
	if (rc == 0) {
		fuzz_header_views(&f, d, n);
		rc = trust_file_verify(&f, key, &err);
		need_message(rc, &err, "file verify error has a message");
	}
	trust_file_free(&f);
	rc = trust_sgn_strip(d, n, &pl, &err);
	need(rc != 0 || (pl.p >= d && pl.p + pl.len == d + n), "stripped payload is the tail");
	rc = trust_sgn_verify(d, n, &cert, &pl, &err);
	need_message(rc, &err, ".sgn verify error has a message");
	rc = trust_enc_decrypt(d, n, NULL, key, &out, &err);
	need_message(rc, &err, "decrypt error has a message");
	need(rc == 0 || out.len == 0, "no plaintext on failure");
	trust_buf_wipe(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint8_t k[32];

	fuzz_list(d, n);
	fuzz_file(d, n);
	/* the bytes as a DN and as a serial */
	need(trust_name_equal((const char *)d, n, (const char *)d, n), "a name equals itself");
	trust_issuer_serial_key((const char *)d, n, d, n < 64 ? n : 64, k);
	return 0;
}
