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
