/*
 * X.509 facts that CTL/ITL records, TVS lookups and the store need.
 * OpenSSL does the ASN.1; we only decide how the facts are spelt
 * (FORMATS §1.8, §8.1, §8.2). Making keys and certificates is store/'s
 * (sign.h).
 */
#ifndef TRUST_CERT_H
#define TRUST_CERT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "trust.h"

#define TRUST_SERIAL_MAX 64

struct trust_cert {
	X509 *x509;
	uint8_t *der;
	size_t der_len;
	char *subject;		/* CUCM style: "CN=a;OU=b;O=c;L=d;ST=e;C=f" */
	char *issuer;
	uint8_t serial[TRUST_SERIAL_MAX]; /* DER INTEGER content bytes */
	size_t serial_len;
	uint8_t *pubkey;	/* RSA: PKCS#1 RSAPublicKey DER; EC: X9.62 point */
	size_t pubkey_len;
	const uint8_t *sig;	/* signatureValue bytes, inside x509 */
	size_t sig_len;
	int key_type;		/* EVP_PKEY_RSA, EVP_PKEY_EC */
	int key_bits;
	uint8_t sha1[20];
	uint8_t sha256[32];
	uint8_t md5[16];
	long not_after;		/* Unix time */
};

/*
 * All constructors overwrite *c (no need to initialise it, nothing in it is
 * freed) and leave it zeroed on failure; trust_cert_free accepts a zeroed
 * struct. The DER must be exactly one certificate, no trailing bytes.
 */
int trust_cert_from_der(const uint8_t *der, size_t len, struct trust_cert *c,
	struct trust_err *err);
/* First certificate of a PEM (or DER) file. */
int trust_cert_load(const char *path, struct trust_cert *c, struct trust_err *err);
/* Takes its own reference on x; the caller still owns (and frees) x. */
int trust_cert_from_x509(X509 *x, struct trust_cert *c, struct trust_err *err);
/* An independent copy (its own reference and strings). */
int trust_cert_copy(const struct trust_cert *src, struct trust_cert *dst,
	struct trust_err *err);
void trust_cert_free(struct trust_cert *c);
/* out is initialised here; free it with trust_buf_free. */
int trust_cert_pem(const struct trust_cert *c, struct trust_buf *out);
EVP_PKEY *trust_cert_pubkey(const struct trust_cert *c); /* borrowed */

/*
 * Names. Accepts CUCM style (';') and RFC 4514 style (','), either order,
 * quoted values, backslash escapes; equal when the sorted lists of
 * (upper-case short attribute name, value) pairs are equal.
 */
bool trust_name_equal(const char *a, size_t alen, const char *b, size_t blen);
/* Serials compare after leading 0x00 bytes are stripped (FORMATS §8.2). */
bool trust_serial_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* CUCM spelling of a DN (CN first, ';'-separated; ';', '\\' and '"' in
 * values backslash-escaped); malloc'd, NULL when out of memory. */
char *trust_name_cucm(const X509_NAME *name);
/* SHA-256 of normalised issuer + stripped serial: the key of TVS cache and
 * QUERY_CERT lookups (encoding documented in names.c). TRUST_EFORMAT when
 * the issuer is not a DN. */
int trust_issuer_serial_key(const char *issuer, size_t ilen, const uint8_t *serial,
	size_t slen, uint8_t out[32]);

/* Keys: PEM files (unencrypted PKCS#8, traditional PEM or DER); the read
 * buffer is wiped. tvsd loads its one TLS key with it. */
int trust_key_load(const char *path, EVP_PKEY **key, struct trust_err *err);


#endif
