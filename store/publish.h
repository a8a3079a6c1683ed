/*
 * Publishing: one store generation made into the immutable publication
 * directory that the fast path serves (trust/PUBLICATION.md). publish
 * writes everything into a temporary directory, fsyncs it, renames it to
 * gen-<N>, then switches the `current` symlink by rename. Reading one back
 * is trust/publication.h's, the only contract between the two sides.
 */
#ifndef STORE_PUBLISH_H
#define STORE_PUBLISH_H

#include "publication.h"
#include "store.h"

struct publish_opts {
	const char *config_dir;		/* NULL: <store>/configs */
	uint32_t timestamp;		/* 0: now */
	bool force;			/* republish an existing generation */
	/* `utils itl reset remotekey`: this pair (an ITLRecovery.p12 from
	 * elsewhere) signs the ITL of this publication only, and its
	 * certificate goes in as a SAST record; NULL: the store's signer. */
	const struct trust_cert *itl_signer_cert;
	EVP_PKEY *itl_signer_key;
	/* owner of tvs/tvs.key (0400): tvsd's user, which reads it once it
	 * has left root. NULL: PUBLISH_TVSD_USER when that user exists (else
	 * root keeps it); "root": root; any other name must exist. */
	const char *tvsd_user;
};

#define PUBLISH_TVSD_USER "tvsd"

struct publish_result {
	uint64_t generation;
	char dir[4096];			/* the gen-<N> directory */
	size_t itl_size;
	size_t ctl_size;		/* 0 when not in mixed mode */
	unsigned nconfigs;		/* signed device configs */
	unsigned nencrypted;
	unsigned ncerts;		/* certificates in the manifest */
	/* Config folder entries not published: symbolic links, FIFOs and
	 * other non-files, files over 16 MiB. The first ones, "name (why)". */
	unsigned nrejected;
	char rejected[1024];
};

int publish_run(struct trust_store *st, const char *pub_root,
	const struct publish_opts *o, struct publish_result *r, struct trust_err *err);

#endif
