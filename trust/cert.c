/*
 * X.509 facts for records, lookups and the store (FORMATS §1.3, §1.8,
 * §8.1, §8.2), and certificate generation. OpenSSL parses and signs; this
 * file only extracts and spells what the phone formats need.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cert.h"

#define CERT_FILE_MAX (1024 * 1024)

/* DER INTEGER content bytes: i2d gives tag | length | content. */
static int
cert_serial(X509 *x, struct trust_cert *c)
{
	const ASN1_INTEGER *ai = X509_get0_serialNumber(x);
	unsigned char *der = NULL, *p;
	int n = i2d_ASN1_INTEGER(ai, &der);
	size_t hl, clen;

	if (n < 3)
		goto bad;
	p = der;
	if (p[1] & 0x80) {
		size_t nl = p[1] & 0x7f;

		if (nl == 0 || nl > 2 || (size_t)n < 2 + nl)
			goto bad;
		hl = 2 + nl;
	} else {
		hl = 2;
	}
	clen = (size_t)n - hl;
	if (clen == 0 || clen > sizeof(c->serial))
		goto bad;
	memcpy(c->serial, p + hl, clen);
	c->serial_len = clen;
	OPENSSL_free(der);
	return 0;
bad:
	OPENSSL_free(der);
	return -1;
}

/* RSA: PKCS#1 RSAPublicKey DER; EC: X9.62 uncompressed point; anything
 * else: its SubjectPublicKeyInfo. c->pubkey is OpenSSL memory. */
static int
cert_pubkey(EVP_PKEY *pk, struct trust_cert *c)
{
	unsigned char *der = NULL;
	EVP_PKEY *dup;
	size_t len = 0;
	int n;

	c->key_type = EVP_PKEY_get_base_id(pk);
	c->key_bits = EVP_PKEY_get_bits(pk);
	if (c->key_type != EVP_PKEY_EC) {
		n = c->key_type == EVP_PKEY_RSA ? i2d_PublicKey(pk, &der) : i2d_PUBKEY(pk, &der);
		if (n <= 0)
			return -1;
		c->pubkey = der;
		c->pubkey_len = (size_t)n;
		return 0;
	}
	/* the certificate may carry a compressed point; ask for the long form */
	dup = EVP_PKEY_dup(pk);
	if (dup != NULL
	    && EVP_PKEY_set_utf8_string_param(dup, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
		"uncompressed") == 1
	    && EVP_PKEY_get_octet_string_param(dup, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
		NULL, 0, &len) == 1
	    && (c->pubkey = OPENSSL_malloc(len)) != NULL
	    && EVP_PKEY_get_octet_string_param(dup, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
		c->pubkey, len, &len) == 1)
		c->pubkey_len = len;
	EVP_PKEY_free(dup);
	return c->pubkey_len > 0 ? 0 : -1;
}

static int
cert_digests(struct trust_cert *c)
{
	return EVP_Digest(c->der, c->der_len, c->sha1, NULL, EVP_sha1(), NULL) == 1
		&& EVP_Digest(c->der, c->der_len, c->sha256, NULL, EVP_sha256(), NULL) == 1
		&& EVP_Digest(c->der, c->der_len, c->md5, NULL, EVP_md5(), NULL) == 1 ? 0 : -1;
}

int
trust_cert_from_x509(X509 *x, struct trust_cert *c, struct trust_err *err)
{
	const ASN1_BIT_STRING *sig = NULL;
	EVP_PKEY *pk;
	struct tm tm;
	int n;

	memset(c, 0, sizeof(*c));
	if (x == NULL || X509_up_ref(x) != 1)
		return trust_errf(err, TRUST_EINVAL, "no certificate");
	c->x509 = x;
	n = i2d_X509(x, &c->der);
	if (n <= 0) {
		trust_cert_free(c);
		return trust_err_openssl(err, TRUST_EFORMAT, "certificate cannot be encoded");
	}
	c->der_len = (size_t)n;
	c->subject = trust_name_cucm(X509_get_subject_name(x));
	c->issuer = trust_name_cucm(X509_get_issuer_name(x));
	if (c->subject == NULL || c->issuer == NULL) {
		trust_cert_free(c);
		return trust_errf(err, TRUST_EFORMAT, "certificate name cannot be decoded");
	}
	if (cert_serial(x, c) != 0) {
		trust_cert_free(c);
		return trust_errf(err, TRUST_EFORMAT,
			"certificate serial number is empty or longer than %d bytes",
			TRUST_SERIAL_MAX);
	}
	pk = X509_get0_pubkey(x);
	if (pk == NULL || cert_pubkey(pk, c) != 0) {
		trust_cert_free(c);
		return trust_err_openssl(err, TRUST_EFORMAT,
			"certificate public key cannot be decoded");
	}
	X509_get0_signature(&sig, NULL, x);
	if (sig == NULL || ASN1_STRING_length(sig) <= 0) {
		trust_cert_free(c);
		return trust_errf(err, TRUST_EFORMAT, "certificate has no signature");
	}
	c->sig = ASN1_STRING_get0_data(sig);
	c->sig_len = (size_t)ASN1_STRING_length(sig);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
		trust_cert_free(c);
		return trust_errf(err, TRUST_EFORMAT, "certificate notAfter cannot be read");
	}
	c->not_after = (long)timegm(&tm);
	if (cert_digests(c) != 0) {
		trust_cert_free(c);
		return trust_err_openssl(err, TRUST_ECRYPTO, "certificate digest");
	}
	return 0;
}

int
trust_cert_from_der(const uint8_t *der, size_t len, struct trust_cert *c,
	struct trust_err *err)
{
	const unsigned char *p = der;
	X509 *x;
	int rc;

	memset(c, 0, sizeof(*c));
	if (len == 0 || len > LONG_MAX)
		return trust_errf(err, TRUST_EFORMAT, "certificate is %zu bytes", len);
	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL)
		return trust_err_openssl(err, TRUST_EFORMAT, "certificate is not DER X.509");
	if ((size_t)(p - der) != len) {
		X509_free(x);
		return trust_errf(err, TRUST_EFORMAT,
			"certificate DER is %zu bytes but %zu follow it",
			(size_t)(p - der), len - (size_t)(p - der));
	}
	rc = trust_cert_from_x509(x, c, err);
	X509_free(x);
	return rc;
}

int
trust_cert_copy(const struct trust_cert *src, struct trust_cert *dst,
	struct trust_err *err)
{
	return trust_cert_from_x509(src->x509, dst, err);
}

int
trust_cert_load(const char *path, struct trust_cert *c, struct trust_err *err)
{
	struct trust_buf b;
	X509 *x = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = trust_file_read(path, CERT_FILE_MAX, &b, err);
	if (rc != 0)
		return rc;
	if (b.len >= 10 && memmem(b.data, b.len, "-----BEGIN", 10) != NULL) {
		BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);

		if (bio != NULL)
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (x == NULL) {
			trust_buf_free(&b);
			return trust_err_openssl(err, TRUST_EFORMAT, path);
		}
		rc = trust_cert_from_x509(x, c, err);
		X509_free(x);
	} else {
		rc = trust_cert_from_der(b.data, b.len, c, err);
	}
	trust_buf_free(&b);
	if (rc != 0 && err != NULL) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		trust_errf(err, rc, "%s: %s", path, msg);
	}
	return rc;
}

void
trust_cert_free(struct trust_cert *c)
{
	if (c == NULL)
		return;
	X509_free(c->x509);
	OPENSSL_free(c->der);
	free(c->subject);
	free(c->issuer);
	OPENSSL_free(c->pubkey);
	memset(c, 0, sizeof(*c));
}

int
trust_cert_pem(const struct trust_cert *c, struct trust_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int rc = TRUST_ENOMEM;

	trust_buf_init(out);
	if (bio == NULL)
		return TRUST_ENOMEM;
	if (PEM_write_bio_X509(bio, c->x509) == 1) {
		n = BIO_get_mem_data(bio, &p);
		if (n > 0)
			rc = trust_buf_put(out, p, (size_t)n);
	}
	BIO_free(bio);
	return rc;
}

EVP_PKEY *
trust_cert_pubkey(const struct trust_cert *c)
{
	return c->x509 != NULL ? X509_get0_pubkey(c->x509) : NULL;
}
