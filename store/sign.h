/*
 * The signing side of the phone world's files, and the making of keys and
 * certificates. Everything declared here holds or uses a private signing
 * key, so it lives in the store library (libtvs_store), which tvsd, the
 * network-facing process, never links (tests/nm-tvsd checks it).
 */
#ifndef STORE_SIGN_H
#define STORE_SIGN_H

#include "cert.h"
#include "file.h"

struct trust_signer {
	const struct trust_cert *cert;
	EVP_PKEY *key;
	unsigned hash;			/* TRUST_HASH_SHA1 or _SHA512 */
	bool signer_version;		/* write tag 28 (1.1, EC support) */
};

struct trust_list_entry {
	const struct trust_cert *cert;	/* NULL: an empty record (§8.8) */
	uint16_t role;
	const char *dns_name;		/* NULL: "" */
	bool has_ip;
	uint8_t ip[4];
};

/*
 * Builders initialise out (any previous content is not freed) and leave it
 * empty on failure. The signer's key must be RSA (512/1024/2048/4096) and
 * belong to its certificate (TRUST_EINVAL otherwise).
 */
/* Build and sign a CTL/ITL; filename is "ITLFile.tlv" or "CTLFile.tlv".
 * TRUST_ETOOBIG when the file would pass TRUST_LIST_MAX. */
int trust_list_build(const struct trust_signer *s, const char *filename,
	uint32_t timestamp, const struct trust_list_entry *e, size_t n,
	struct trust_buf *out, struct trust_err *err);

/* .sgn: filename is the embedded name ("SEP...cnf.xml.sgn"). */
int trust_sgn_sign(const struct trust_signer *s, const char *filename,
	uint32_t timestamp, const uint8_t *payload, size_t len,
	struct trust_buf *out, struct trust_err *err);

/* .enc.sgn: AES-128-CBC, fresh key, '\r' padding, key wrapped for phone. */
int trust_enc_encrypt(const struct trust_signer *s, const char *filename,
	uint32_t timestamp, const struct trust_cert *phone, const uint8_t *plain,
	size_t len, struct trust_buf *out, struct trust_err *err);

/* The short companion config whose certHash is MD5(phone cert DER):
 * <device> with fullConfig false, certHash, encrConfig true (out is
 * initialised here). */
int trust_enc_short_config(const struct trust_cert *phone, struct trust_buf *out);

/* Keys: save writes unencrypted PKCS#8 PEM, mode 0600, atomically. */
int trust_key_save(const char *path, EVP_PKEY *key, struct trust_err *err);
/* out is initialised here; wipe it after (trust_buf_wipe). */
int trust_key_pem(EVP_PKEY *key, struct trust_buf *out);
/* 1024..8192 bits; NULL and err filled on failure. */
EVP_PKEY *trust_key_generate_rsa(unsigned bits, struct trust_err *err);

struct trust_cert_params {
	const char *cn;		/* required */
	const char *ou;		/* optional fields: NULL = absent */
	const char *o;
	const char *l;
	const char *st;
	const char *c;
	unsigned days;		/* validity from now */
	bool ca;		/* basicConstraints CA:TRUE */
};
/* Self-signed, random positive 16-byte serial, SHA-256 signature. */
int trust_cert_selfsign(EVP_PKEY *key, const struct trust_cert_params *p,
	struct trust_cert *out, struct trust_err *err);
/* Issued by issuer_cert/issuer_key (for phone certificates in tests). */
int trust_cert_issue(EVP_PKEY *subject_key, const struct trust_cert_params *p,
	const struct trust_cert *issuer_cert, EVP_PKEY *issuer_key,
	struct trust_cert *out, struct trust_err *err);

/* PKCS#12 (ITLRecovery.p12 of `utils itl reset remotekey`). */
int trust_p12_load(const char *path, const char *pass, EVP_PKEY **key,
	struct trust_cert *cert, struct trust_err *err);

#endif
