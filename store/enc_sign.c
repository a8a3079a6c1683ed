/*
 * Encrypting configs for one phone (.enc.sgn, FORMATS §2.2): AES-128-CBC
 * under a fresh key and IV per file, the key wrapped with RSA PKCS#1 v1.5
 * to the phone's certificate, signed like a .sgn with the TFTP key.
 * Decryption (trust/enc.c) needs no signing key and stays key-free.
 */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "enc_priv.h"
#include "hdr_build.h"
#include "tlv.h"

static int
enc_wrap(EVP_PKEY *pub, const uint8_t *key, uint8_t *out, size_t *outlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	int ok;

	ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1
		&& EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1
		&& EVP_PKEY_encrypt(ctx, out, outlen, key, ENC_KEY_LEN) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* Tags 16{17{18,19,20},21{22,23,24,25}}, 26, 27. */
static int
enc_extra(struct trust_buf *x, const uint8_t *iv, unsigned pad, const uint8_t *wrapped,
	size_t wlen, unsigned hash, const uint8_t *digest, size_t dlen)
{
	size_t o16, o;

	o16 = tlv_open(x, HTAG_ENCRYPTION_INFO);
	o = tlv_open(x, HTAG_IV_INFO);
	tlv_put_u8(x, HTAG_ENC_UNKNOWN1, 0);
	tlv_put(x, HTAG_IV, iv, ENC_BLOCK);
	tlv_put_u16(x, HTAG_ENCRYPTION_PADDING, (uint16_t)pad);
	tlv_close(x, o);
	o = tlv_open(x, HTAG_KEY_INFO);
	tlv_put_u8(x, HTAG_ENC_UNKNOWN2, 0);
	tlv_put_u16(x, HTAG_KEY_SIZE, (uint16_t)(8 * wlen));
	tlv_put_u8(x, HTAG_KEY_ALGORITHM, ENC_KEY_ALG_AES128);
	tlv_put(x, HTAG_ENCRYPTED_KEY, wrapped, wlen);
	tlv_close(x, o);
	tlv_close(x, o16);
	tlv_put_u8(x, HTAG_ENCRYPTION_HASH_ALGORITHM, (uint8_t)hash);
	tlv_put(x, HTAG_ENCRYPTION_HASH, digest, dlen);
	return x->failed ? TRUST_ENOMEM : 0;
}

int
trust_enc_encrypt(const struct trust_signer *s, const char *filename,
	uint32_t timestamp, const struct trust_cert *phone, const uint8_t *plain,
	size_t len, struct trust_buf *out, struct trust_err *err)
{
	struct hdr_spec h = {
		.version = { 2, 0 },
		.filename = filename,
		.timestamp = timestamp,
		.what = ".enc.sgn",
	};
	uint8_t key[ENC_KEY_LEN], iv[ENC_BLOCK], wrapped[1024], digest[EVP_MAX_MD_SIZE];
	size_t wlen = sizeof(wrapped), pad = ENC_BLOCK - len % ENC_BLOCK;
	struct trust_buf padded, ct, extra;
	const EVP_MD *md;
	EVP_PKEY *pub;
	int rc;

	trust_buf_init(out);
	if (phone == NULL || phone->x509 == NULL)
		return trust_errf(err, TRUST_EINVAL, "no phone certificate to encrypt for");
	pub = trust_cert_pubkey(phone);
	if ((rc = enc_need_rsa_phone(pub, err)) != 0)
		return rc;
	if ((size_t)EVP_PKEY_get_size(pub) > sizeof(wrapped))
		return trust_errf(err, TRUST_EINVAL, "phone key RSA-%d is too large",
			EVP_PKEY_get_bits(pub));
	md = hdr_md(s != NULL ? s->hash : 0);
	if (md == NULL)
		return trust_errf(err, TRUST_EINVAL, "no signer, or its hash code is unknown");
	if (plain == NULL && len > 0)
		return trust_errf(err, TRUST_EINVAL, "no plaintext");

	trust_buf_init(&padded);
	trust_buf_init(&ct);
	trust_buf_init(&extra);
	rc = TRUST_ECRYPTO;
	if (RAND_priv_bytes(key, sizeof(key)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1) {
		trust_err_openssl(err, rc, "random AES key and IV");
		goto out;
	}
	trust_buf_put(&padded, plain, len);
	for (size_t i = 0; i < pad; i++)
		trust_buf_put_u8(&padded, ENC_PAD_CHAR);
	if (padded.failed || trust_buf_reserve(&ct, padded.len) != 0) {
		rc = trust_errf(err, TRUST_ENOMEM, "out of memory for %zu bytes", len);
		goto out;
	}
	if (enc_cipher(true, key, iv, padded.data, padded.len, ct.data) != 0) {
		trust_err_openssl(err, rc, "AES-128-CBC encryption");
		goto out;
	}
	ct.len = padded.len;
	if (enc_wrap(pub, key, wrapped, &wlen) != 0) {
		trust_err_openssl(err, rc, "wrapping the AES key for the phone");
		goto out;
	}
	if (EVP_Digest(plain != NULL ? plain : (const uint8_t *)"", len, digest, NULL, md,
		NULL) != 1) {
		trust_err_openssl(err, rc, "plaintext digest");
		goto out;
	}
	if (enc_extra(&extra, iv, (unsigned)pad, wrapped, wlen, s->hash, digest,
		(size_t)EVP_MD_get_size(md)) != 0) {
		rc = trust_errf(err, TRUST_ENOMEM, "out of memory");
		goto out;
	}
	h.extra = extra.data;
	h.extra_len = extra.len;
	h.body = ct.data;
	h.body_len = ct.len;
	rc = hdr_build_signed(s, &h, out, err);
out:
	OPENSSL_cleanse(key, sizeof(key));
	trust_buf_wipe(&padded);
	trust_buf_free(&ct);
	trust_buf_free(&extra);
	return rc;
}

int
trust_enc_short_config(const struct trust_cert *phone, struct trust_buf *out)
{
	char hash[2 * sizeof(phone->md5) + 1];

	trust_buf_init(out);
	trust_hex(phone->md5, sizeof(phone->md5), hash);
	return trust_buf_printf(out,
		"<device>\n"
		"<fullConfig>false</fullConfig>\n"
		"<certHash>%s</certHash>\n"
		"<encrConfig>true</encrConfig>\n"
		"</device>\n", hash);
}
