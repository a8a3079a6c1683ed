/*
 * Building and signing the phone world's signed files: CTL/ITL records and
 * the one header layout (FORMATS §1.2, §1.7) that trust lists, .sgn and
 * .enc.sgn share. Parsing and verifying them is trust/list.c's job, which
 * the network-facing tvsd links; everything here takes a private signing
 * key, so it lives in the store library that tvsd cannot link.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "hdr_build.h"
#include "tlv.h"

static int
modulus_code(int bits)
{
	switch (bits) {
	case 512: return 0;
	case 1024: return 1;
	case 2048: return 2;
	case 4096: return 3;
	}
	return -1;
}

static int
check_signer(const struct trust_signer *s, struct trust_err *err)
{
	int rc;

	if (s == NULL || s->cert == NULL || s->cert->x509 == NULL)
		return trust_errf(err, TRUST_EINVAL, "no signer certificate");
	if ((rc = hdr_need_rsa(s->key, "signer", err)) != 0)
		return rc;
	if (EVP_PKEY_eq(trust_cert_pubkey(s->cert), s->key) != 1) {
		ERR_clear_error();
		return trust_errf(err, TRUST_EINVAL, "the signing key does not belong to "
			"the signer certificate %s", s->cert->subject);
	}
	if (hdr_md(s->hash) == NULL)
		return trust_errf(err, TRUST_EINVAL, "hash code %u is not SHA-1 (1), SHA-256 "
			"(2) or SHA-512 (3)", s->hash);
	if (modulus_code(EVP_PKEY_get_bits(s->key)) < 0)
		return trust_errf(err, TRUST_EINVAL, "RSA-%d has no modulus code; use 1024, "
			"2048 or 4096 bits", EVP_PKEY_get_bits(s->key));
	return 0;
}

/* Header without the signature element; *sig_at is where it goes. */
static int
hdr_unsigned(const struct trust_signer *s, const struct hdr_spec *h, struct trust_buf *b,
	size_t *sig_at, size_t siglen)
{
	static const uint8_t sv[2] = { 1, 1 };
	size_t o, o2, hl_at, total;

	tlv_put(b, HTAG_VERSION, h->version, 2);
	hl_at = b->len;
	tlv_put_u16(b, HTAG_HEADER_LENGTH, 0);
	if (h->signer_version)
		tlv_put(b, HTAG_SIGNER_VERSION, sv, 2);
	o = tlv_open(b, HTAG_SIGNER_INFO);
	if (tlv_put_str(b, HTAG_SIGNER_NAME, s->cert->subject) != 0
	    || tlv_put(b, HTAG_SERIAL_NUMBER, s->cert->serial, s->cert->serial_len) != 0
	    || tlv_put_str(b, HTAG_ISSUER_NAME, s->cert->issuer) != 0)
		return TRUST_ETOOBIG;
	if (tlv_close(b, o) != 0)
		return TRUST_ETOOBIG;
	o = tlv_open(b, HTAG_SIGNATURE_INFO);
	tlv_put_u8(b, HTAG_HASH_ALGORITHM, (uint8_t)s->hash);
	o2 = tlv_open(b, HTAG_SIGNATURE_ALGORITHM_INFO);
	tlv_put_u8(b, HTAG_SIGNATURE_ALGORITHM, 0);
	tlv_put_u8(b, HTAG_SIGNATURE_MODULUS, (uint8_t)modulus_code(EVP_PKEY_get_bits(s->key)));
	tlv_close(b, o2);
	tlv_close(b, o);
	*sig_at = b->len;
	if (tlv_put_str(b, HTAG_FILENAME, h->filename) != 0)
		return TRUST_ETOOBIG;
	tlv_put_u32(b, HTAG_TIMESTAMP, h->timestamp);
	trust_buf_put(b, h->extra, h->extra_len);
	/* pad so that the header with its signature is a multiple of 4 */
	total = b->len + 3 + siglen;
	tlv_put_padding(b, (4 - total % 4) % 4);
	total = b->len + 3 + siglen;
	if (b->failed)
		return TRUST_ENOMEM;
	if (total > 65535)
		return TRUST_ETOOBIG;
	b->data[hl_at + 3] = (uint8_t)(total >> 8);
	b->data[hl_at + 4] = (uint8_t)total;
	return 0;
}

static int
sign_bytes(EVP_PKEY *key, const EVP_MD *md, const uint8_t *p, size_t n, uint8_t *sig,
	size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1
		&& EVP_DigestSign(ctx, sig, siglen, p, n) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int
hdr_build_signed(const struct trust_signer *s, const struct hdr_spec *h,
	struct trust_buf *out, struct trust_err *err)
{
	struct trust_buf b;
	uint8_t sig[1024];
	size_t sig_at = 0, siglen;
	int rc;

	trust_buf_init(out);
	if ((rc = check_signer(s, err)) != 0)
		return rc;
	if (h->filename == NULL || h->filename[0] == '\0')
		return trust_errf(err, TRUST_EINVAL, "%s: no file name for the header", h->what);
	siglen = (size_t)EVP_PKEY_get_size(s->key);
	if (siglen > sizeof(sig))
		return trust_errf(err, TRUST_EINVAL, "RSA-%d signatures are too large",
			EVP_PKEY_get_bits(s->key));
	trust_buf_init(&b);
	rc = hdr_unsigned(s, h, &b, &sig_at, siglen);
	if (rc == TRUST_ETOOBIG) {
		trust_buf_free(&b);
		return trust_errf(err, rc, "%s %s: the header would exceed 65,535 bytes "
			"(names or extra elements too long)", h->what, h->filename);
	}
	if (rc == 0 && h->max_len != 0 && b.len + 3 + siglen + h->body_len > h->max_len) {
		rc = trust_errf(err, TRUST_ETOOBIG, "%s %s would be %zu bytes; phones cannot "
			"load more than %zu", h->what, h->filename, b.len + 3 + siglen + h->body_len,
			h->max_len);
		trust_buf_free(&b);
		return rc;
	}
	if (rc == 0)
		rc = trust_buf_put(&b, h->body, h->body_len);
	if (rc != 0) {
		trust_buf_free(&b);
		return trust_errf(err, TRUST_ENOMEM, "%s: out of memory", h->what);
	}
	if (sign_bytes(s->key, hdr_md(s->hash), b.data, b.len, sig, &siglen) != 0) {
		trust_buf_free(&b);
		return trust_err_openssl(err, TRUST_ECRYPTO, "signing");
	}
	trust_buf_reserve(out, b.len + 3 + siglen);
	trust_buf_put(out, b.data, sig_at);
	tlv_put(out, HTAG_SIGNATURE, sig, siglen);
	trust_buf_put(out, b.data + sig_at, b.len - sig_at);
	trust_buf_free(&b);
	if (out->failed) {
		trust_buf_free(out);
		return trust_errf(err, TRUST_ENOMEM, "%s: out of memory", h->what);
	}
	return 0;
}

/* One record in CUCM order 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 (FORMATS §8.4);
 * without a certificate only 1, 2, 4, 10 (the empty record of §1.4, §8.8). */
static int
record_build(struct trust_buf *b, const struct trust_list_entry *e)
{
	const struct trust_cert *c = e->cert;
	size_t start = b->len, n;

	tlv_put_u16(b, RTAG_RECORD_LENGTH, 0);
	if (tlv_put_str(b, RTAG_DNS_NAME, e->dns_name != NULL ? e->dns_name : "") == TRUST_ETOOBIG)
		return TRUST_ETOOBIG;
	if (c != NULL) {
		if (tlv_put_str(b, RTAG_SUBJECT_NAME, c->subject) == TRUST_ETOOBIG
		    || tlv_put_u16(b, RTAG_ROLE, e->role) != 0
		    || tlv_put_str(b, RTAG_ISSUER_NAME, c->issuer) == TRUST_ETOOBIG
		    || tlv_put(b, RTAG_SERIAL_NUMBER, c->serial, c->serial_len) != 0
		    || tlv_put(b, RTAG_PUBLIC_KEY, c->pubkey, c->pubkey_len) == TRUST_ETOOBIG
		    || tlv_put(b, RTAG_SIGNATURE, c->sig, c->sig_len) == TRUST_ETOOBIG
		    || tlv_put(b, RTAG_CERTIFICATE, c->der, c->der_len) == TRUST_ETOOBIG)
			return TRUST_ETOOBIG;
	} else {
		tlv_put_u16(b, RTAG_ROLE, e->role);
	}
	if (e->has_ip)
		tlv_put(b, RTAG_IP_ADDRESS, e->ip, 4);
	if (b->failed)
		return TRUST_ENOMEM;
	n = b->len - start;
	if (n > 65535)
		return TRUST_ETOOBIG;
	b->data[start + 3] = (uint8_t)(n >> 8);
	b->data[start + 4] = (uint8_t)n;
	return 0;
}

int
trust_list_build(const struct trust_signer *s, const char *filename,
	uint32_t timestamp, const struct trust_list_entry *e, size_t n,
	struct trust_buf *out, struct trust_err *err)
{
	struct hdr_spec h = {
		.version = { 1, 2 },
		.signer_version = s != NULL && s->signer_version,
		.filename = filename,
		.timestamp = timestamp,
		.max_len = TRUST_LIST_MAX,
		.what = "trust list",
	};
	struct trust_buf body;
	int rc;

	trust_buf_init(out);
	trust_buf_init(&body);
	for (size_t i = 0; i < n; i++) {
		rc = record_build(&body, &e[i]);
		if (rc == 0 && body.len > TRUST_LIST_MAX)
			rc = TRUST_ETOOBIG;
		if (rc != 0) {
			trust_buf_free(&body);
			if (rc == TRUST_ENOMEM)
				return trust_errf(err, rc, "out of memory for records");
			return trust_errf(err, rc, "%s: records pass 65,535 bytes at record %zu "
				"of %zu; phones cannot load a larger trust list",
				filename != NULL ? filename : "trust list", i + 1, n);
		}
	}
	h.body = body.data;
	h.body_len = body.len;
	rc = hdr_build_signed(s, &h, out, err);
	trust_buf_free(&body);
	return rc;
}


int
trust_sgn_sign(const struct trust_signer *s, const char *filename,
	uint32_t timestamp, const uint8_t *payload, size_t len,
	struct trust_buf *out, struct trust_err *err)
{
	struct hdr_spec h = {
		.version = { 1, 0 },
		.filename = filename,
		.timestamp = timestamp,
		.body = payload,
		.body_len = len,
		.what = ".sgn",
	};

	return hdr_build_signed(s, &h, out, err);
}
