/*
 * What the tvs_*.c files of the session layer share and nobody else
 * needs: the SSL_CTX behind a tvs_tls, and the hooks between the
 * offloading RSA_METHOD (tvs_offload.c) and the sessions (tvs_session.c).
 */
#ifndef DP_TVS_PRIV_H
#define DP_TVS_PRIV_H

#include <openssl/ssl.h>

#include "tvs_session.h"

/* tvs_session_pkey: not in an offload context, compute inline. */
#define TVS_PKEY_INLINE (-2)

/* tvs_tls.c */
SSL_CTX *tvs_tls_ctx(const struct tvs_tls *t);
bool tvs_tls_offloadable(const struct tvs_tls *t);

/* tvs_offload.c */
const RSA_METHOD *tvs_rsa_method(void);
int tvs_rsa_inline(enum tvs_pkey_op op, int flen, const uint8_t *from, uint8_t *to,
	RSA *rsa, int padding);
/* Whether key's private operations go through tvs_rsa_method (probed). */
bool tvs_rsa_key_hooked(EVP_PKEY *key);

/* tvs_session.c: called by the RSA_METHOD and the ticket callback */
int tvs_session_pkey(enum tvs_pkey_op op, int flen, const uint8_t *from, uint8_t *to,
	RSA *rsa, int padding);
void tvs_session_ticket_opened(SSL *ssl);

#endif
