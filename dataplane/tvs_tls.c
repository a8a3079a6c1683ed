/*
 * TLS contexts of the TVS: the shared ticket keys, the identity of a
 * publication and one SSL_CTX per lcore (see tvs_session.h).
 */
#define OPENSSL_SUPPRESS_DEPRECATED	/* RSA_set_default_method, see tvs_offload.c */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cert.h"
#include "tvs_priv.h"

#define TVS_SESSION_ID_CONTEXT "tvsd"

struct tvs_ticket_keys {
	struct tvs_keyset *live;	/* atomic: release store, acquire load */
};

struct tvs_identity {
	X509 *cert;
	STACK_OF(X509) *chain;		/* what follows the leaf in the PEM */
	EVP_PKEY *key;
	uint8_t fingerprint[32];
	bool offloadable;
};

struct tvs_tls {
	SSL_CTX *ctx;
	struct tvs_ticket_keys *tk;
	EVP_CIPHER *aes;		/* fetched once, not per ticket */
	bool offloadable;
	int refs;			/* atomic */
};

/* ---- ticket keys ---- */

static int
tvs_ticket_key_make(struct tvs_ticket_key *k)
{
	return RAND_bytes(k->name, sizeof(k->name)) == 1
		&& RAND_priv_bytes(k->aes, sizeof(k->aes)) == 1
		&& RAND_priv_bytes(k->hmac, sizeof(k->hmac)) == 1 ? 0 : -1;
}

static struct tvs_keyset *
tvs_keyset_new(const struct tvs_keyset *older, struct trust_err *err)
{
	struct tvs_keyset *ks = calloc(1, sizeof(*ks));

	if (ks == NULL) {
		trust_errf(err, TRUST_ENOMEM, "ticket keys: out of memory");
		return NULL;
	}
	if (tvs_ticket_key_make(&ks->cur) != 0) {
		tvs_keyset_free(ks);
		trust_err_openssl(err, TRUST_ECRYPTO, "ticket keys: RAND_bytes");
		return NULL;
	}
	if (older != NULL) {
		ks->prev = older->cur;
		ks->has_prev = true;
		ks->serial = older->serial + 1;
	}
	return ks;
}

void
tvs_keyset_free(struct tvs_keyset *ks)
{
	if (ks == NULL)
		return;
	OPENSSL_cleanse(ks, sizeof(*ks));
	free(ks);
}

struct tvs_ticket_keys *
tvs_ticket_keys_new(struct trust_err *err)
{
	struct tvs_ticket_keys *tk = calloc(1, sizeof(*tk));

	if (tk == NULL) {
		trust_errf(err, TRUST_ENOMEM, "ticket keys: out of memory");
		return NULL;
	}
	tk->live = tvs_keyset_new(NULL, err);
	if (tk->live == NULL) {
		free(tk);
		return NULL;
	}
	return tk;
}

struct tvs_keyset *
tvs_ticket_keys_rotate(struct tvs_ticket_keys *tk, struct trust_err *err)
{
	/* one writer: its own load needs no ordering */
	struct tvs_keyset *old = __atomic_load_n(&tk->live, __ATOMIC_RELAXED);
	struct tvs_keyset *ks = tvs_keyset_new(old, err);

	if (ks == NULL)
		return NULL;
	__atomic_store_n(&tk->live, ks, __ATOMIC_RELEASE);
	return old;
}

const struct tvs_keyset *
tvs_ticket_keys_get(const struct tvs_ticket_keys *tk)
{
	return __atomic_load_n(&tk->live, __ATOMIC_ACQUIRE);
}

void
tvs_ticket_keys_free(struct tvs_ticket_keys *tk)
{
	if (tk == NULL)
		return;
	tvs_keyset_free(tk->live);
	free(tk);
}

/* ---- identity ---- */

static int
tvs_chain_load(struct tvs_identity *id, const char *path, struct trust_err *err)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;

	if (bio == NULL)
		return trust_err_openssl(err, TRUST_EIO, path);
	id->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	id->chain = sk_X509_new_null();
	while (id->cert != NULL && id->chain != NULL
	    && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(id->chain, x) == 0) {
			X509_free(x);
			break;
		}
	}
	BIO_free(bio);
	if (id->cert == NULL || id->chain == NULL)
		return trust_err_openssl(err, TRUST_EFORMAT, path);
	ERR_clear_error();	/* the loop ends on "no start line" */
	return 0;
}

static int
tvs_fingerprint(struct tvs_identity *id, struct trust_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

	for (int i = -1; ok && i < sk_X509_num(id->chain); i++) {
		X509 *x = i < 0 ? id->cert : sk_X509_value(id->chain, i);
		unsigned char *der = NULL;
		int n = i2d_X509(x, &der);

		ok = n > 0 && EVP_DigestUpdate(md, der, (size_t)n) == 1;
		OPENSSL_free(der);
	}
	ok = ok && EVP_DigestFinal_ex(md, id->fingerprint, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : trust_err_openssl(err, TRUST_ECRYPTO, "TVS certificate digest");
}

/* The key, loaded so that the provider's RSA object carries our method. */
static int
tvs_key_load(struct tvs_identity *id, const char *path, struct trust_err *err)
{
	const RSA_METHOD *ours = tvs_rsa_method(), *old = RSA_get_default_method();
	int rc;

	if (ours != NULL)
		RSA_set_default_method(ours);
	rc = trust_key_load(path, &id->key, err);
	RSA_set_default_method(old);
	if (rc != 0)
		return rc;
	if (X509_check_private_key(id->cert, id->key) != 1)
		return trust_err_openssl(err, TRUST_EINVAL, path);
	id->offloadable = ours != NULL && tvs_rsa_key_hooked(id->key);
	return 0;
}

struct tvs_identity *
tvs_identity_load(const char *cert_path, const char *key_path, struct trust_err *err)
{
	struct tvs_identity *id = calloc(1, sizeof(*id));

	if (id == NULL) {
		trust_errf(err, TRUST_ENOMEM, "TVS identity: out of memory");
		return NULL;
	}
	if (tvs_chain_load(id, cert_path, err) != 0 || tvs_fingerprint(id, err) != 0
	    || tvs_key_load(id, key_path, err) != 0) {
		tvs_identity_free(id);
		return NULL;
	}
	return id;
}

struct tvs_identity *
tvs_identity_from_pub(const struct publication *p, struct trust_err *err)
{
	return tvs_identity_load(p->tvs_cert_path, p->tvs_key_path, err);
}

bool
tvs_identity_equal(const struct tvs_identity *a, const struct tvs_identity *b)
{
	return memcmp(a->fingerprint, b->fingerprint, sizeof(a->fingerprint)) == 0
		&& EVP_PKEY_eq(a->key, b->key) == 1;
}

bool
tvs_identity_offloadable(const struct tvs_identity *id)
{
	return id->offloadable;
}

const uint8_t *
tvs_identity_fingerprint(const struct tvs_identity *id)
{
	return id->fingerprint;
}

void
tvs_identity_free(struct tvs_identity *id)
{
	if (id == NULL)
		return;
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	EVP_PKEY_free(id->key);
	free(id);
}

/* ---- SSL_CTX ---- */

/*
 * Seal a new ticket with the current key, or open one with the current
 * (1) or previous (2: OpenSSL then issues a fresh ticket) key, or any key
 * under TLS 1.3 (2, see below); 0 sends the phone through a full handshake. The keyset pointer is not kept past
 * this call: the key bytes are copied into the two contexts.
 */
static int
tvs_ticket_cb(SSL *ssl, unsigned char name[TVS_TICKET_NAME_LEN],
	unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tvs_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const struct tvs_keyset *ks = tvs_ticket_keys_get(t->tk);
	const struct tvs_ticket_key *k = &ks->cur;
	OSSL_PARAM params[3];
	int rc = 1;

	if (enc) {
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(t->aes)) != 1)
			return -1;
		memcpy(name, k->name, TVS_TICKET_NAME_LEN);
	} else if (memcmp(name, ks->cur.name, TVS_TICKET_NAME_LEN) != 0) {
		if (!ks->has_prev || memcmp(name, ks->prev.name, TVS_TICKET_NAME_LEN) != 0)
			return 0;
		k = &ks->prev;
		rc = 2;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
		sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1
	    || EVP_CipherInit_ex(cctx, t->aes, NULL, k->aes, iv, enc) != 1)
		return -1;
	if (!enc)
		tvs_session_ticket_opened(ssl);
	/*
	 * TLS 1.3 tickets are single use: OpenSSL sends a resumed client a
	 * new one only when the callback asks for renewal (its built-in key
	 * path always does), else every other connection of a phone would be
	 * a full handshake.
	 */
	if (!enc && SSL_version(ssl) >= TLS1_3_VERSION)
		rc = 2;
	return rc;
}

static int
tvs_ctx_versions(SSL_CTX *ctx, const struct tvs_tls_conf *c, struct trust_err *err)
{
	if (SSL_CTX_set_min_proto_version(ctx, c->min_version ? c->min_version : TLS1_VERSION) != 1
	    || SSL_CTX_set_max_proto_version(ctx,
		c->max_version ? c->max_version : TLS1_3_VERSION) != 1)
		return trust_err_openssl(err, TRUST_EINVAL, "TLS versions");
	if (SSL_CTX_set_cipher_list(ctx, c->ciphers ? c->ciphers : TVS_DEFAULT_CIPHERS) != 1)
		return trust_err_openssl(err, TRUST_EINVAL, "TLS cipher list");
	if (c->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, c->ciphersuites) != 1)
		return trust_err_openssl(err, TRUST_EINVAL, "TLS 1.3 ciphersuites");
	return 0;
}

static int
tvs_ctx_identity(SSL_CTX *ctx, const struct tvs_identity *id, struct trust_err *err)
{
	if (SSL_CTX_use_certificate(ctx, id->cert) != 1
	    || SSL_CTX_set1_chain(ctx, id->chain) != 1
	    || SSL_CTX_use_PrivateKey(ctx, id->key) != 1
	    || SSL_CTX_check_private_key(ctx) != 1)
		return trust_err_openssl(err, TRUST_EINVAL, "TVS certificate and key");
	return 0;
}

static void
tvs_ctx_sessions(SSL_CTX *ctx, const struct tvs_tls_conf *c, bool tickets)
{
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TVS_SESSION_ID_CONTEXT,
		sizeof(TVS_SESSION_ID_CONTEXT) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, c->session_cache ? c->session_cache
		: TVS_DEFAULT_SESSION_CACHE);
	SSL_CTX_set_timeout(ctx, c->session_timeout ? c->session_timeout
		: TVS_DEFAULT_SESSION_TIMEOUT);
	if (tickets) {
		SSL_CTX_set_num_tickets(ctx, 1);
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tvs_ticket_cb);
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
}

struct tvs_tls *
tvs_tls_new(const struct tvs_tls_conf *conf, const struct tvs_identity *id,
	struct tvs_ticket_keys *tk, struct trust_err *err)
{
	static const struct tvs_tls_conf defaults;
	struct tvs_tls *t = calloc(1, sizeof(*t));
	const struct tvs_tls_conf *c = conf != NULL ? conf : &defaults;

	if (t == NULL) {
		trust_errf(err, TRUST_ENOMEM, "TLS context: out of memory");
		return NULL;
	}
	t->refs = 1;
	t->tk = tk;
	t->offloadable = id->offloadable;
	t->ctx = SSL_CTX_new(TLS_server_method());
	t->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (t->ctx == NULL || t->aes == NULL) {
		trust_err_openssl(err, TRUST_ECRYPTO, "SSL_CTX_new");
		goto fail;
	}
	if (tvs_ctx_versions(t->ctx, c, err) != 0 || tvs_ctx_identity(t->ctx, id, err) != 0)
		goto fail;
	SSL_CTX_set_app_data(t->ctx, t);
	tvs_ctx_sessions(t->ctx, c, tk != NULL);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
		| SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(t->ctx, 1);	/* one BIO read per burst, not per record */
	return t;
fail:
	tvs_tls_put(t);
	return NULL;
}

void
tvs_tls_ref(struct tvs_tls *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void
tvs_tls_put(struct tvs_tls *t)
{
	if (t == NULL || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	SSL_CTX_free(t->ctx);
	EVP_CIPHER_free(t->aes);
	free(t);
}

SSL_CTX *
tvs_tls_ctx(const struct tvs_tls *t)
{
	return t->ctx;
}

bool
tvs_tls_offloadable(const struct tvs_tls *t)
{
	return t->offloadable;
}
