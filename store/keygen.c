/*
 * Making and saving private keys: the store's own keys (mode 0600, every
 * buffer that held key material wiped before it is freed), and the
 * PKCS#12 pairs of `utils itl reset remotekey`.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>

#include "sign.h"

#define P12_FILE_MAX (1024 * 1024)

int
trust_key_pem(EVP_PKEY *key, struct trust_buf *out)
{
	/* secure-memory BIO: its buffer is cleansed when freed */
	BIO *bio = BIO_new(BIO_s_secmem());
	char *p;
	long n;
	int rc = TRUST_ECRYPTO;

	trust_buf_init(out);
	if (bio == NULL)
		return TRUST_ENOMEM;
	if (key != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
		n = BIO_get_mem_data(bio, &p);
		if (n > 0)
			rc = trust_buf_put(out, p, (size_t)n);
	}
	BIO_free(bio);
	return rc;
}

int
trust_key_save(const char *path, EVP_PKEY *key, struct trust_err *err)
{
	struct trust_buf pem;
	int rc;

	rc = trust_key_pem(key, &pem);
	if (rc != 0) {
		trust_buf_wipe(&pem);
		return trust_err_openssl(err, rc, "cannot encode the private key");
	}
	rc = trust_file_write_atomic(path, pem.data, pem.len, 0600, err);
	trust_buf_wipe(&pem);
	return rc;
}

EVP_PKEY *
trust_key_generate_rsa(unsigned bits, struct trust_err *err)
{
	EVP_PKEY *key;

	if (bits < 1024 || bits > 8192 || bits % 8 != 0) {
		trust_errf(err, TRUST_EINVAL, "RSA key size %u is out of range (1024..8192)", bits);
		return NULL;
	}
	key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (key == NULL)
		trust_err_openssl(err, TRUST_ECRYPTO, "RSA key generation");
	return key;
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
	rc = trust_file_read(path, P12_FILE_MAX, &b, err);
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
