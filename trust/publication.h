/*
 * Reading a publication: the immutable, self-describing directory of one
 * store generation that the fast path serves (PUBLICATION.md). This and
 * the directory layout are the only contract between the store library
 * that writes publications (store/publish.h) and tvsd, which reads them.
 * pub_load checks every file against its digest.
 */
#ifndef TRUST_PUBLICATION_H
#define TRUST_PUBLICATION_H

#include <stdint.h>

#include "trust.h"

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
/* The index and manifest parsers of pub_load on bytes in memory, for the
 * fuzzer: every listed file reads as `file`, the manifest as `manifest`. */
int pub_parse_mem(const char *index, size_t ilen, const uint8_t *manifest, size_t mlen,
	const uint8_t *file, size_t flen, struct publication *p, struct trust_err *err);

#endif
