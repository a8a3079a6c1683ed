/*
 * Publications: the immutable, self-describing directory of one store
 * generation that the fast path serves (layout in PUBLICATION.md).
 * publish writes everything into a temporary directory, fsyncs it, renames
 * it to gen-<N>, then switches the `current` symlink by rename.
 * pub_load reads one back and checks every file against its digest; it is
 * what tvsd and the tests use.
 */
#ifndef TRUST_PUBLISH_H
#define TRUST_PUBLISH_H

#include "store.h"
#include "trust.h"

struct publish_opts {
	const char *config_dir;		/* NULL: <store>/configs */
	uint32_t timestamp;		/* 0: now */
	bool force;			/* republish an existing generation */
	/* `utils itl reset remotekey`: this pair (an ITLRecovery.p12 from
	 * elsewhere) signs the ITL of this publication only, and its
	 * certificate goes in as a SAST record; NULL: the store's signer. */
	const struct trust_cert *itl_signer_cert;
	EVP_PKEY *itl_signer_key;
};

struct publish_result {
	uint64_t generation;
	char dir[4096];			/* the gen-<N> directory */
	size_t itl_size;
	size_t ctl_size;		/* 0 when not in mixed mode */
	unsigned nconfigs;		/* signed device configs */
	unsigned nencrypted;
	unsigned ncerts;		/* certificates in the manifest */
};

int publish_run(struct trust_store *st, const char *pub_root,
	const struct publish_opts *o, struct publish_result *r, struct trust_err *err);

/* One file the fast path serves over TFTP. */
struct pub_file {
	char name[256];
	uint8_t *data;
	size_t len;
	uint8_t sha256[32];
};

/* One certificate the TVS knows. */
struct pub_cert {
	uint8_t sha256[32];
	uint8_t issuer_serial[32];	/* trust_issuer_serial_key() */
	uint8_t roles[8];
	unsigned nroles;
	uint32_t ttl;
	uint8_t *der;
	size_t der_len;
};

struct publication {
	uint64_t generation;
	char dir[4096];
	struct pub_file *files;
	size_t nfiles;
	struct pub_cert *certs;
	size_t ncerts;
	char tvs_cert_path[4096];	/* TLS identity of the TVS */
	char tvs_key_path[4096];
};

/* path: a pub_root (follows `current`) or a gen-<N> directory. */
int pub_load(const char *path, struct publication *p, struct trust_err *err);
void pub_free(struct publication *p);
const struct pub_file *pub_find(const struct publication *p, const char *name);

#endif
