/*
 * Signed files of the phone world: CTL/ITL trust lists (FORMATS §1), .sgn
 * (§2.1) and .enc.sgn (§2.2). They share one header layout and one
 * signature rule (§1.7); the body is records or a payload.
 */
#ifndef TRUST_FILE_H
#define TRUST_FILE_H

#include <openssl/evp.h>

#include "cert.h"
#include "trust.h"

#define TRUST_LIST_MAX 65535u	/* phones cannot load a larger CTL/ITL */

/* Header tags, FORMATS §1.2 and §2.2. */
enum trust_htag {
	HTAG_VERSION = 1,
	HTAG_HEADER_LENGTH = 2,
	HTAG_SIGNER_INFO = 3,
	HTAG_SIGNER_NAME = 4,
	HTAG_SERIAL_NUMBER = 5,
	HTAG_ISSUER_NAME = 6,
	HTAG_SIGNATURE_INFO = 7,
	HTAG_HASH_ALGORITHM = 8,
	HTAG_SIGNATURE_ALGORITHM_INFO = 9,
	HTAG_SIGNATURE_ALGORITHM = 10,
	HTAG_SIGNATURE_MODULUS = 11,
	HTAG_SIGNATURE = 12,
	HTAG_PADDING = 13,
	HTAG_FILENAME = 14,
	HTAG_TIMESTAMP = 15,
	HTAG_ENCRYPTION_INFO = 16,
	HTAG_IV_INFO = 17,
	HTAG_ENC_UNKNOWN1 = 18,
	HTAG_IV = 19,
	HTAG_ENCRYPTION_PADDING = 20,
	HTAG_KEY_INFO = 21,
	HTAG_ENC_UNKNOWN2 = 22,
	HTAG_KEY_SIZE = 23,
	HTAG_KEY_ALGORITHM = 24,
	HTAG_ENCRYPTED_KEY = 25,
	HTAG_ENCRYPTION_HASH_ALGORITHM = 26,
	HTAG_ENCRYPTION_HASH = 27,
	HTAG_SIGNER_VERSION = 28,
};

/* Record tags, FORMATS §1.3. */
enum trust_rtag {
	RTAG_RECORD_LENGTH = 1,
	RTAG_DNS_NAME = 2,
	RTAG_SUBJECT_NAME = 3,
	RTAG_ROLE = 4,
	RTAG_ISSUER_NAME = 5,
	RTAG_SERIAL_NUMBER = 6,
	RTAG_PUBLIC_KEY = 7,
	RTAG_SIGNATURE = 8,
	RTAG_CERTIFICATE = 9,
	RTAG_IP_ADDRESS = 10,
	RTAG_CERTIFICATE_HASH = 11,
	RTAG_HASH_ALGORITHM = 12,
};

struct trust_header {
	uint8_t version[2];
	uint16_t header_len;
	bool has_signer_version;
	uint8_t signer_version[2];
	struct trust_bytes signer_name;	/* string views include the NUL */
	struct trust_bytes signer_serial;
	struct trust_bytes signer_issuer;
	unsigned hash_alg;
	unsigned sig_alg;
	unsigned modulus;
	struct trust_bytes signature;
	size_t sig_off;			/* offset of the tag-12 element */
	struct trust_bytes filename;
	bool has_timestamp;
	uint32_t timestamp;
	/* .enc.sgn only */
	bool encrypted;
	struct trust_bytes iv;
	uint16_t enc_padding;
	uint16_t key_size;
	unsigned key_alg;
	struct trust_bytes enc_key;
	unsigned enc_hash_alg;
	struct trust_bytes enc_hash;
};

struct trust_record {
	size_t off;
	uint16_t len;			/* RECORD_LENGTH */
	struct trust_bytes dns_name;
	struct trust_bytes subject;
	struct trust_bytes issuer;
	struct trust_bytes serial;
	struct trust_bytes pubkey;
	struct trust_bytes signature;
	struct trust_bytes cert;	/* DER; len 0 in an empty record */
	struct trust_bytes cert_hash;
	bool has_role;
	uint16_t role;
	bool has_ip;
	uint8_t ip[4];
	unsigned hash_alg;
};

struct trust_file {
	const uint8_t *buf;
	size_t len;
	struct trust_header hdr;
	struct trust_record *recs;	/* trust lists only */
	size_t nrecs;
	struct trust_bytes payload;	/* .sgn/.enc.sgn: bytes after the header */
	unsigned nwarnings;		/* unknown tags skipped, leniently */
	char warning[256];		/* the first of them */
};

/*
 * Parsers fill *f (no need to initialise it) with views into buf, which
 * must outlive f; call trust_file_free afterwards, also after a failure.
 * Element order inside the header, containers and records is free;
 * unknown tags are skipped and counted in nwarnings; lengths that cross
 * their file, header, record or container end are errors naming tag and
 * offset; single-use tags may not repeat.
 */
/* Parse the header only: .sgn and .enc.sgn. */
int trust_file_parse(const uint8_t *buf, size_t len, struct trust_file *f,
	struct trust_err *err);
/* Parse header and records: CTL/ITL. Refuses more than 65,535 bytes. */
int trust_list_parse(const uint8_t *buf, size_t len, struct trust_file *f,
	struct trust_err *err);
void trust_file_free(struct trust_file *f);

/* Verify the signature of a parsed file (any kind) with key. */
int trust_file_verify(const struct trust_file *f, EVP_PKEY *key,
	struct trust_err *err);
/* The SAST record whose serial matches the header's signer serial, or NULL. */
const struct trust_record *trust_list_signer(const struct trust_file *f);
/*
 * Verify a trust list: with signer == NULL the key comes from the list's
 * own signer record (trust on first use); otherwise from the caller's
 * certificate (an ITL already installed, or what a TVS returned).
 */
int trust_list_verify(const struct trust_file *f, const struct trust_cert *signer,
	struct trust_err *err);

/* Verify with the given signer certificate and return the payload view. */
int trust_sgn_verify(const uint8_t *buf, size_t len, const struct trust_cert *signer,
	struct trust_bytes *payload, struct trust_err *err);
int trust_sgn_strip(const uint8_t *buf, size_t len, struct trust_bytes *payload,
	struct trust_err *err);

/* Verify signature (signer may be NULL to skip), unwrap with phone_key,
 * decrypt, check the plaintext digest; out (initialised here) receives the
 * plaintext, and is wiped on failure. A wrong phone key gives
 * TRUST_ECRYPTO (or TRUST_ESIG should the unwrap happen to succeed);
 * damaged ciphertext TRUST_ESIG; an EC phone key TRUST_EINVAL. */
int trust_enc_decrypt(const uint8_t *buf, size_t len, const struct trust_cert *signer,
	EVP_PKEY *phone_key, struct trust_buf *out, struct trust_err *err);

#endif
