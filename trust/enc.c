/*
 * Opening encrypted configs (.enc.sgn, FORMATS §2.2) with a phone's key:
 * AES-128-CBC under a key wrapped with RSA PKCS#1 v1.5, the plaintext
 * digest in tag 27, signed like a .sgn. Key and plaintext copies are wiped
 * before they are freed. Encrypting (with the TFTP signing key) is
 * store/enc_sign.c.
 */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "enc_priv.h"
#include "hdr.h"
#include "tlv.h"

int
enc_need_rsa_phone(EVP_PKEY *key, struct trust_err *err)
{
	if (key == NULL)
		return trust_errf(err, TRUST_EINVAL, "no phone key");
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		return trust_errf(err, TRUST_EINVAL, "the phone key is %s; encrypted configs "
			"wrap the AES key with RSA only",
			EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "not RSA");
	return 0;
}

int
enc_cipher(bool encrypt, const uint8_t *key, const uint8_t *iv, const uint8_t *in,
	size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0, ok;

	ok = ctx != NULL && n <= INT_MAX
		&& EVP_CipherInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv, encrypt) == 1
		&& EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
		&& EVP_CipherUpdate(ctx, out, &l1, in, (int)n) == 1
		&& EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1
		&& (size_t)(l1 + l2) == n;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* Everything decryption needs must be present and of the right size. */
static int
enc_check_header(const struct trust_file *f, EVP_PKEY *phone_key, struct trust_err *err)
{
	const struct trust_header *h = &f->hdr;
	const EVP_MD *md = hdr_md(h->enc_hash_alg);

	if (!h->encrypted)
		return trust_errf(err, TRUST_EFORMAT, "not an encrypted file: no "
			"ENCRYPTION_INFO (tag 16) in the header");
	if (h->iv.len != ENC_BLOCK)
		return trust_errf(err, TRUST_EFORMAT, "IV (tag 19) is %zu bytes, expected 16",
			h->iv.len);
	if (h->key_alg != 0 && h->key_alg != ENC_KEY_ALG_AES128)
		return trust_errf(err, TRUST_EFORMAT, "key algorithm (tag 24) %u is not AES-128 "
			"(1)", h->key_alg);
	if (h->enc_padding < 1 || h->enc_padding > ENC_BLOCK)
		return trust_errf(err, TRUST_EFORMAT, "padding (tag 20) of %u bytes is not "
			"1..16", h->enc_padding);
	if (md == NULL)
		return trust_errf(err, TRUST_EFORMAT, "plaintext hash algorithm (tag 26) %u is "
			"unknown", h->enc_hash_alg);
	if (h->enc_hash.len != (size_t)EVP_MD_get_size(md))
		return trust_errf(err, TRUST_EFORMAT, "plaintext hash (tag 27) is %zu bytes, "
			"%s needs %d", h->enc_hash.len, trust_hash_name(h->enc_hash_alg),
			EVP_MD_get_size(md));
	if (f->payload.len == 0 || f->payload.len % ENC_BLOCK != 0)
		return trust_errf(err, TRUST_EFORMAT, "ciphertext of %zu bytes is not a whole "
			"number of AES blocks", f->payload.len);
	if (h->enc_key.len != (size_t)EVP_PKEY_get_size(phone_key))
		return trust_errf(err, TRUST_ECRYPTO, "the AES key is wrapped for an RSA-%zu "
			"key; this phone key is RSA-%d", 8 * h->enc_key.len,
			EVP_PKEY_get_bits(phone_key));
	return 0;
}

static int
enc_unwrap(EVP_PKEY *priv, const struct trust_bytes *wrapped, uint8_t key[ENC_KEY_LEN])
{
	uint8_t buf[1024];
	size_t n = sizeof(buf);
	EVP_PKEY_CTX *ctx;
	int ok;

	if (wrapped->len > sizeof(buf))
		return -1;
	ctx = EVP_PKEY_CTX_new(priv, NULL);
	ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1
		&& EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1
		&& EVP_PKEY_decrypt(ctx, buf, &n, wrapped->p, wrapped->len) == 1
		&& n == ENC_KEY_LEN;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (ok)
		memcpy(key, buf, ENC_KEY_LEN);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok ? 0 : -1;
}

static int
enc_open(const struct trust_file *f, EVP_PKEY *phone_key, struct trust_buf *out,
	struct trust_err *err)
{
	const struct trust_header *h = &f->hdr;
	uint8_t key[ENC_KEY_LEN], digest[EVP_MAX_MD_SIZE];
	const EVP_MD *md = hdr_md(h->enc_hash_alg);
	size_t n = f->payload.len;
	int rc;

	if (enc_unwrap(phone_key, &h->enc_key, key) != 0)
		return trust_errf(err, TRUST_ECRYPTO, "cannot unwrap the AES key with this "
			"phone key (not the key it was encrypted for?)");
	if (trust_buf_reserve(out, n) != 0) {
		OPENSSL_cleanse(key, sizeof(key));
		return trust_errf(err, TRUST_ENOMEM, "out of memory for %zu bytes", n);
	}
	rc = enc_cipher(false, key, h->iv.p, f->payload.p, n, out->data);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0)
		return trust_err_openssl(err, TRUST_ECRYPTO, "AES-128-CBC decryption");
	out->len = n;
	for (size_t i = n - h->enc_padding; i < n; i++)
		if (out->data[i] != ENC_PAD_CHAR)
			return trust_errf(err, TRUST_ESIG, "decrypted padding is not %u '\\r' "
				"bytes: wrong key or damaged file", h->enc_padding);
	out->len = n - h->enc_padding;
	if (EVP_Digest(out->data, out->len, digest, NULL, md, NULL) != 1)
		return trust_err_openssl(err, TRUST_ECRYPTO, "plaintext digest");
	if (CRYPTO_memcmp(digest, h->enc_hash.p, h->enc_hash.len) != 0)
		return trust_errf(err, TRUST_ESIG, "%s of the decrypted config does not match "
			"the header (tag 27)", trust_hash_name(h->enc_hash_alg));
	return 0;
}

int
trust_enc_decrypt(const uint8_t *buf, size_t len, const struct trust_cert *signer,
	EVP_PKEY *phone_key, struct trust_buf *out, struct trust_err *err)
{
	struct trust_file f;
	int rc;

	trust_buf_init(out);
	if ((rc = enc_need_rsa_phone(phone_key, err)) != 0)
		return rc;
	rc = trust_file_parse(buf, len, &f, err);
	if (rc == 0 && signer != NULL)
		rc = trust_file_verify(&f, trust_cert_pubkey(signer), err);
	if (rc == 0)
		rc = enc_check_header(&f, phone_key, err);
	if (rc == 0)
		rc = enc_open(&f, phone_key, out, err);
	if (rc != 0)
		trust_buf_wipe(out);
	trust_file_free(&f);
	return rc;
}
