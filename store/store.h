/*
 * The trust store of one appliance: its own certificates and keys by unit,
 * the certificates it trusts with their roles, registered phone
 * certificates and settings. Layout (see STORE.md):
 *
 *   <dir>/STORE          the index: version, generation, settings, entries,
 *                        and a SHA-256 of all of it on the last line
 *   <dir>/objects/<sha256>.der   certificates, named by the SHA-256 of the DER
 *   <dir>/objects/<sha256>.key   private keys (PKCS#8 PEM, mode 0600), named
 *                                by the SHA-256 of the file
 *   <dir>/lock           flock()ed by whoever changes the store
 *
 * A change writes its new blobs first, then replaces STORE atomically
 * (temp, fsync, rename, fsync dir): a crash leaves either the old or the
 * new store, never a mix. Opening checks the index checksum and the
 * digest of every blob it names, and refuses, with the reason, a store
 * that fails any check. Nothing is repaired silently.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <openssl/evp.h>

#include "cert.h"
#include "trust.h"

#define STORE_VERSION 1
#define STORE_NAME_MAX 64

enum store_unit {
	UNIT_CALLMANAGER,	/* the TFTP signer */
	UNIT_ITLRECOVERY,
	UNIT_TVS,
	UNIT_CAPF,
	UNIT_COUNT
};

const char *store_unit_name(enum store_unit u);	/* "CallManager", ... */
int store_unit_parse(const char *s);		/* case-insensitive; -1 */

enum store_mode { MODE_NON_SECURE, MODE_MIXED };
enum store_signer { SIGNER_CALLMANAGER, SIGNER_ITLRECOVERY };

struct store_settings {
	enum store_mode security_mode;
	enum store_signer itl_signer;
	unsigned hash;			/* TRUST_HASH_SHA1 / _SHA512 */
	uint16_t tftp_role;		/* TRUST_ROLE_TFTP or _CCM_TFTP */
	uint32_t tvs_ttl;		/* seconds, TVS answers */
	char hostname[STORE_NAME_MAX];	/* DNS_NAME of our records */
	bool has_ipv4;
	uint8_t ipv4[4];
	bool rollback_pre8;		/* FORMATS §8.8 */
	bool reset_signer;		/* `utils itl reset`: sign with the other SAST */
	unsigned keep_publications;
	unsigned key_bits;
	bool auto_registration;		/* publish XMLDefault.cnf.xml */
};

struct store_object {
	char sha256[65];		/* hex; names objects/<sha256>.<ext> */
};

struct store_own {
	struct store_object cert;
	struct store_object key;
};

struct store_trusted {
	char name[STORE_NAME_MAX];
	uint16_t roles[8];
	unsigned nroles;
	uint32_t ttl;			/* 0: the store's tvs_ttl */
	struct store_object cert;
};

struct store_phone {
	char name[STORE_NAME_MAX];	/* SEP<MAC> */
	struct store_object cert;
};

struct trust_store {
	char *dir;
	int lockfd;			/* -1 when opened read-only */
	uint64_t generation;
	struct store_settings set;
	struct store_own own[UNIT_COUNT];
	struct store_trusted *trusted;
	size_t ntrusted;
	struct store_phone *phones;
	size_t nphones;
};

struct store_init_opts {
	const char *hostname;		/* NULL: gethostname() */
	bool has_ipv4;
	uint8_t ipv4[4];
	unsigned key_bits;		/* 0: 2048 */
	enum store_signer itl_signer;
	unsigned hash;			/* 0: SHA-1 */
	bool force;			/* replace an existing store */
};

/* Creates a complete store with fresh self-signed certificates. */
int store_init(const char *dir, const struct store_init_opts *o, struct trust_err *err);

#define STORE_RDONLY 0
#define STORE_LOCK 1	/* take the lock; TRUST_ELOCKED if someone holds it */
int store_open(const char *dir, int flags, struct trust_store *st, struct trust_err *err);
void store_close(struct trust_store *st);
/* Writes the index with generation + 1. Requires STORE_LOCK. */
int store_commit(struct trust_store *st, struct trust_err *err);

/* Blob access by object. */
int store_load_cert(const struct trust_store *st, const struct store_object *o,
	struct trust_cert *c, struct trust_err *err);
int store_load_key(const struct trust_store *st, const struct store_object *o,
	EVP_PKEY **key, struct trust_err *err);
int store_own_cert(const struct trust_store *st, enum store_unit u,
	struct trust_cert *c, struct trust_err *err);
int store_own_key(const struct trust_store *st, enum store_unit u,
	EVP_PKEY **key, struct trust_err *err);

/* Changes: each updates st in memory; store_commit makes it durable. */
int store_own_regen(struct trust_store *st, enum store_unit u, struct trust_err *err);
int store_own_set(struct trust_store *st, enum store_unit u, const struct trust_cert *c,
	EVP_PKEY *key, struct trust_err *err);
int store_trust_add(struct trust_store *st, const char *name, const uint16_t *roles,
	unsigned nroles, uint32_t ttl, const struct trust_cert *c, struct trust_err *err);
int store_trust_delete(struct trust_store *st, const char *name, struct trust_err *err);
int store_phone_add(struct trust_store *st, const char *name, const struct trust_cert *c,
	struct trust_err *err);
int store_phone_delete(struct trust_store *st, const char *name, struct trust_err *err);
/* Removes blobs no entry names any more (after a commit), and temp files
 * left by a crash. Requires STORE_LOCK. Returns how many files went, or
 * a negative error. */
int store_gc(struct trust_store *st, struct trust_err *err);

const struct store_trusted *store_trust_find(const struct trust_store *st, const char *name);
const struct store_phone *store_phone_find(const struct trust_store *st, const char *name);

/*
 * Settings by the names the index uses ("security-mode", "hash", ...), for
 * `tvsctl set store` / `show store`. set validates and names what is wrong;
 * get writes the i-th setting's value into buf and returns its key, or
 * NULL past the last one.
 */
int store_setting_set(struct store_settings *s, const char *key, const char *val,
	struct trust_err *err);
const char *store_setting_get(const struct store_settings *s, unsigned i, char *buf,
	size_t n);
/*
 * The rule a change from old to new settings must keep (as CUCM does):
 * mixed mode and auto-registration exclude each other, since a phone that
 * registers itself gets no configuration of its own to authenticate. Only
 * the change that would bring them together is refused (a store written
 * before the setting existed loads with auto-registration on whatever its
 * mode). Returns 0, or TRUST_EINVAL with the reason and the way out.
 */
int store_settings_check_change(const struct store_settings *old,
	const struct store_settings *new, struct trust_err *err);
/* The store's lock (what STORE_LOCK takes) without reading the index, for
 * replacing a store that may be damaged: a file descriptor to close, or a
 * negative error (TRUST_ELOCKED naming the holder). */
int store_lock(const char *dir, struct trust_err *err);
/* The generation the index at dir names, read leniently (a damaged or
 * missing index gives 0): for numbering what replaces it. */
uint64_t store_generation_hint(const char *dir);
/* mkdir -p with mode for each directory it creates. */
int store_mkdir_p(const char *dir, unsigned mode, struct trust_err *err);
/* The unit whose key signs the ITL (and the CTL) under these settings. */
enum store_unit store_list_signer(const struct store_settings *s);

#endif
