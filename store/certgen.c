/*
 * Issuing certificates: the store's own self-signed certificates and, for
 * tests and the phone simulator, certificates issued by another key.
 * OpenSSL does the ASN.1; we decide names (CN first in the CUCM spelling),
 * serials and extensions.
 */
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "sign.h"

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
