/*
 * Private to the trust and store libraries: what decrypting (trust/enc.c)
 * and encrypting (store/enc_sign.c) .enc.sgn files share (FORMATS §2.2).
 */
#ifndef TRUST_ENC_PRIV_H
#define TRUST_ENC_PRIV_H

#include <stdbool.h>

#include "file.h"

#define ENC_KEY_LEN 16
#define ENC_BLOCK 16
#define ENC_KEY_ALG_AES128 1
#define ENC_PAD_CHAR '\r'

/* TRUST_EINVAL unless key is an RSA key (the AES key is wrapped with RSA). */
int enc_need_rsa_phone(EVP_PKEY *key, struct trust_err *err);
/* AES-128-CBC without OpenSSL's padding: the input is already a multiple
 * of the block size ('\r' padding). */
int enc_cipher(bool encrypt, const uint8_t *key, const uint8_t *iv, const uint8_t *in,
	size_t n, uint8_t *out);

#endif
