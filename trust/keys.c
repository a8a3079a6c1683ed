/*
 * Private keys: PEM files of mode 0600; every buffer that held key
 * material is wiped before it is freed.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cert.h"

#define KEY_FILE_MAX (256 * 1024)

int
trust_key_load(const char *path, EVP_PKEY **key, struct trust_err *err)
{
	struct trust_buf b;
	BIO *bio;
	int rc;

	*key = NULL;
	rc = trust_file_read(path, KEY_FILE_MAX, &b, err);
	if (rc != 0)
		return rc;
	bio = BIO_new_mem_buf(b.data, (int)b.len);
	if (bio != NULL) {
		/* no passphrase callback: a locked key must fail, not prompt */
		*key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
		if (*key == NULL) {
			const unsigned char *p = b.data;

			ERR_clear_error();
			*key = d2i_AutoPrivateKey(NULL, &p, (long)b.len);
		}
	}
	BIO_free(bio);
	trust_buf_wipe(&b);
	if (*key == NULL)
		return trust_err_openssl(err, TRUST_EFORMAT, path);
	return 0;
}

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
