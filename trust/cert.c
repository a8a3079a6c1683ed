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

/* X.509 names are built in DER order C, ST, L, O, OU, CN so that the CUCM
 * spelling (reverse order) starts with CN. */
static X509_NAME *
cert_name(const struct trust_cert_params *p)
{
	const struct {
		const char *type;
		const char *val;
	} f[] = {
		{ "C", p->c }, { "ST", p->st }, { "L", p->l },
		{ "O", p->o }, { "OU", p->ou }, { "CN", p->cn },
	};
	X509_NAME *n = X509_NAME_new();

	if (n == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].val == NULL || f[i].val[0] == '\0')
			continue;
		if (X509_NAME_add_entry_by_txt(n, f[i].type, MBSTRING_UTF8,
			(const unsigned char *)f[i].val, -1, -1, 0) != 1) {
			X509_NAME_free(n);
			return NULL;
		}
	}
	return n;
}

/* Random positive 16-byte serial: top bit clear (no 0x00 sign byte
 * needed) and the next bit set (so it is exactly 16 bytes). */
static int
cert_random_serial(X509 *x)
{
	uint8_t r[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[0] = (uint8_t)((r[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(r, sizeof(r), NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int
cert_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (e == NULL)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok == 1 ? 0 : -1;
}

static int
cert_extensions(X509 *x, X509 *issuer, bool ca)
{
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (cert_add_ext(x, &ctx, NID_basic_constraints,
		ca ? "critical,CA:TRUE" : "critical,CA:FALSE") != 0
	    || cert_add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0)
		return -1;
	if (ca)
		return cert_add_ext(x, &ctx, NID_key_usage,
			"critical,keyCertSign,cRLSign,digitalSignature");
	/* server certificates: TLS both ways, and the RSA key wraps AES keys */
	if (cert_add_ext(x, &ctx, NID_key_usage,
		"critical,digitalSignature,keyEncipherment,dataEncipherment") != 0
	    || cert_add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") != 0)
		return -1;
	if (issuer != x)
		return cert_add_ext(x, &ctx, NID_authority_key_identifier, "keyid");
	return 0;
}

static int
cert_make(EVP_PKEY *key, const struct trust_cert_params *p, X509 *issuer,
	EVP_PKEY *issuer_key, struct trust_cert *out, struct trust_err *err)
{
	X509_NAME *name = NULL;
	X509 *x = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (key == NULL || p == NULL || p->cn == NULL || p->cn[0] == '\0')
		return trust_errf(err, TRUST_EINVAL, "a certificate needs a key and a CN");
	if (p->days == 0 || p->days > 100 * 366)
		return trust_errf(err, TRUST_EINVAL, "validity of %u days is out of range",
			p->days);
	x = X509_new();
	name = cert_name(p);
	if (x == NULL || name == NULL)
		goto fail;
	if (X509_set_version(x, X509_VERSION_3) != 1 || cert_random_serial(x) != 0
	    || X509_set_subject_name(x, name) != 1
	    || X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) != 1
	    || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL
	    || X509_time_adj_ex(X509_getm_notAfter(x), (int)p->days, 0, NULL) == NULL
	    || X509_set_pubkey(x, key) != 1
	    || cert_extensions(x, issuer != NULL ? issuer : x, p->ca) != 0)
		goto fail;
	if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(name);
	rc = trust_cert_from_x509(x, out, err);
	X509_free(x);
	return rc;
fail:
	X509_NAME_free(name);
	X509_free(x);
	return trust_err_openssl(err, TRUST_ECRYPTO, "cannot create certificate");
}

int
trust_cert_selfsign(EVP_PKEY *key, const struct trust_cert_params *p,
	struct trust_cert *out, struct trust_err *err)
{
	return cert_make(key, p, NULL, NULL, out, err);
}

int
trust_cert_issue(EVP_PKEY *subject_key, const struct trust_cert_params *p,
	const struct trust_cert *issuer_cert, EVP_PKEY *issuer_key,
	struct trust_cert *out, struct trust_err *err)
{
	if (issuer_cert == NULL || issuer_cert->x509 == NULL || issuer_key == NULL) {
		memset(out, 0, sizeof(*out));
		return trust_errf(err, TRUST_EINVAL, "an issued certificate needs its issuer");
	}
	if (X509_check_private_key(issuer_cert->x509, issuer_key) != 1) {
		memset(out, 0, sizeof(*out));
		return trust_err_openssl(err, TRUST_EINVAL,
			"issuer key does not match the issuer certificate");
	}
	return cert_make(subject_key, p, issuer_cert->x509, issuer_key, out, err);
}

int
trust_p12_load(const char *path, const char *pass, EVP_PKEY **key,
	struct trust_cert *cert, struct trust_err *err)
{
	struct trust_buf b;
	const unsigned char *p;
	PKCS12 *p12;
	X509 *x = NULL;
	int rc;

	*key = NULL;
	memset(cert, 0, sizeof(*cert));
	rc = trust_file_read(path, CERT_FILE_MAX, &b, err);
	if (rc != 0)
		return rc;
	p = b.data;
	p12 = d2i_PKCS12(NULL, &p, (long)b.len);
	trust_buf_wipe(&b);
	if (p12 == NULL)
		return trust_err_openssl(err, TRUST_EFORMAT, path);
	if (PKCS12_parse(p12, pass != NULL ? pass : "", key, &x, NULL) != 1) {
		PKCS12_free(p12);
		return trust_err_openssl(err, TRUST_ECRYPTO,
			"PKCS#12 cannot be opened (wrong password?)");
	}
	PKCS12_free(p12);
	if (*key == NULL || x == NULL) {
		EVP_PKEY_free(*key);
		*key = NULL;
		X509_free(x);
		return trust_errf(err, TRUST_EFORMAT, "%s: needs both a key and a certificate",
			path);
	}
	rc = trust_cert_from_x509(x, cert, err);
	X509_free(x);
	if (rc != 0) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	return rc;
}
