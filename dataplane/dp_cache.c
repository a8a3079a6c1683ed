/*
 * Per-lcore certificate caches (design in dp_cache.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "cert.h"
#include "dp_cache.h"

#define DP_CACHE_BUILD_TRIES 3	/* table doubled after a full cuckoo path */

struct dp_cache {
	struct rte_hash *h;
	struct dp_cache_counters *ctr;
	unsigned lcore;
	int socket;			/* where h and the entries are */
	unsigned ncerts;
	struct dp_cache_counters own;	/* when the builder gave none */
} __rte_cache_aligned;

struct dp_cache_set {
	uint64_t generation;
	unsigned ncerts, nkeys, ndup;
	size_t bytes;
	struct dp_cache_entry *block[RTE_MAX_NUMA_NODES];	/* entries per socket */
	struct dp_cache *lcore[RTE_MAX_LCORE];
};

/* What the build works out once for all sockets. */
struct dp_cache_src {
	char **subject;			/* malloc'd, CUCM style; NULL: too long to keep */
	size_t block_size;		/* entries + subjects + DER of one socket */
};

static uint32_t dp_cache_seq;		/* main lcore only: unique table names */

static int
dp_cache_fail(char *msg, size_t msgsz, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, msgsz, fmt, ap);
	va_end(ap);
	rte_errno = err;
	return -1;
}

/*
 * The keys are SHA-256 digests (of a DER, or of issuer and serial), so
 * their first four bytes are already uniformly distributed: hashing them
 * again would buy nothing. Only the manifest's keys are ever inserted; a
 * key a peer makes up can only miss.
 */
static uint32_t
dp_cache_hash(const void *key, uint32_t len __rte_unused, uint32_t init)
{
	uint32_t v;

	memcpy(&v, key, sizeof(v));
	return v ^ init;
}

static void
dp_cache_src_free(struct dp_cache_src *src, size_t n)
{
	if (src->subject != NULL)
		for (size_t i = 0; i < n; i++)
			free(src->subject[i]);
	free(src->subject);
	src->subject = NULL;
}

/* Reads one DER header (definite length, inside [*p, end)); *p goes to
 * its content. */
static int
dp_cache_der_hdr(const uint8_t **p, const uint8_t *end, int *tag, int *cls, long *len)
{
	int rc = ASN1_get_object(p, len, tag, cls, end - *p);

	return (rc & 0x80) != 0 || (rc & 0x01) != 0 || *len > end - *p ? -1 : 0;
}

/*
 * The CUCM-style subject of a DER certificate. Only the subject Name is
 * decoded: d2i_X509 would also decode the public key through OpenSSL 3's
 * provider decoders, which costs about 130 us per certificate here and
 * made a 100,000-certificate cache take 24 s to build. The walk:
 * Certificate SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
 * serialNumber, signature, issuer, validity, subject, ... } ... }.
 */
static char *
dp_cache_subject(const uint8_t *der, size_t der_len)
{
	const uint8_t *p = der, *end = der + der_len, *at;
	X509_NAME *name;
	char *s;
	long len;
	int tag, cls;

	if (dp_cache_der_hdr(&p, end, &tag, &cls, &len) != 0 || tag != V_ASN1_SEQUENCE)
		return NULL;
	end = p + len;
	if (dp_cache_der_hdr(&p, end, &tag, &cls, &len) != 0 || tag != V_ASN1_SEQUENCE)
		return NULL;
	end = p + len;		/* tbsCertificate */
	at = p;
	if (dp_cache_der_hdr(&p, end, &tag, &cls, &len) != 0)
		return NULL;
	if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0)
		p += len;	/* version */
	else
		p = at;		/* v1: none */
	for (unsigned i = 0; i < 4; i++) {	/* serial, signature, issuer, validity */
		if (dp_cache_der_hdr(&p, end, &tag, &cls, &len) != 0)
			return NULL;
		p += len;
	}
	name = d2i_X509_NAME(NULL, &p, end - p);
	if (name == NULL)
		return NULL;
	s = trust_name_cucm(name);
	X509_NAME_free(name);
	return s;
}

/* Subjects, worked out once: the TVS never parses X.509 per request. */
static int
dp_cache_src_init(const struct publication *p, struct dp_cache_src *src, char *msg,
	size_t msgsz)
{
	size_t sz = RTE_ALIGN_CEIL(p->ncerts * sizeof(struct dp_cache_entry),
		RTE_CACHE_LINE_SIZE);

	src->subject = calloc(p->ncerts ? p->ncerts : 1, sizeof(*src->subject));
	if (src->subject == NULL)
		return dp_cache_fail(msg, msgsz, ENOMEM, "certificate cache: out of memory");
	for (size_t i = 0; i < p->ncerts; i++) {
		const struct pub_cert *pc = &p->certs[i];
		char *subj;

		if (pc->der_len == 0 || pc->der_len > UINT32_MAX || pc->nroles > DP_CACHE_ROLES_MAX)
			return dp_cache_fail(msg, msgsz, EINVAL,
				"certificate cache: manifest certificate %zu (%02x%02x%02x%02x...): "
				"%zu bytes of DER, %u roles", i, pc->sha256[0], pc->sha256[1],
				pc->sha256[2], pc->sha256[3], pc->der_len, pc->nroles);
		subj = dp_cache_subject(pc->der, pc->der_len);
		ERR_clear_error();
		if (subj == NULL)
			return dp_cache_fail(msg, msgsz, EINVAL,
				"certificate cache: manifest certificate %zu (%02x%02x%02x%02x...): "
				"no subject name can be decoded from its DER", i, pc->sha256[0],
				pc->sha256[1], pc->sha256[2], pc->sha256[3]);
		/* a subject no TVS message could carry: tvs_answer reads the DER */
		if (strlen(subj) <= UINT16_MAX) {
			src->subject[i] = subj;
			sz += strlen(subj) + 1;
		} else
			free(subj);
		sz += pc->der_len;
	}
	src->block_size = RTE_MAX(sz, (size_t)RTE_CACHE_LINE_SIZE);	/* rte_zmalloc refuses 0 */
	return 0;
}

/* rte_malloc on the socket, else anywhere (--no-huge puts all on 0). */
static void *
dp_cache_zmalloc(const char *what, size_t sz, int socket)
{
	void *m = rte_zmalloc_socket(what, sz, RTE_CACHE_LINE_SIZE, socket);

	if (m == NULL && socket != SOCKET_ID_ANY)
		m = rte_zmalloc_socket(what, sz, RTE_CACHE_LINE_SIZE, SOCKET_ID_ANY);
	return m;
}

/* One socket's entries: the array first, then subjects, then DER. */
static struct dp_cache_entry *
dp_cache_block(const struct publication *p, const struct dp_cache_src *src, int socket)
{
	struct dp_cache_entry *ents = dp_cache_zmalloc("tvs_cert_entries", src->block_size,
		socket);
	uint8_t *w;

	if (ents == NULL)
		return NULL;
	w = (uint8_t *)ents + RTE_ALIGN_CEIL(p->ncerts * sizeof(*ents), RTE_CACHE_LINE_SIZE);
	for (size_t i = 0; i < p->ncerts; i++) {
		const struct pub_cert *pc = &p->certs[i];
		struct dp_cache_entry *e = &ents[i];

		if (src->subject[i] != NULL) {
			size_t len = strlen(src->subject[i]);

			memcpy(w, src->subject[i], len + 1);
			e->subject = (const char *)w;
			e->subject_len = (uint16_t)len;
			w += len + 1;
		}
		memcpy(w, pc->der, pc->der_len);
		e->der = w;
		e->der_len = (uint32_t)pc->der_len;
		w += pc->der_len;
		e->ttl = pc->ttl;
		e->nroles = (uint8_t)pc->nroles;
		memcpy(e->roles, pc->roles, pc->nroles);
	}
	return ents;
}

/* The entries of socket, made by the first of its lcores. */
static int
dp_cache_socket(struct dp_cache_set *s, const struct publication *p,
	const struct dp_cache_src *src, int socket)
{
	if (s->block[socket] != NULL)
		return 0;
	s->block[socket] = dp_cache_block(p, src, socket);
	if (s->block[socket] == NULL)
		return -1;
	s->bytes += src->block_size;
	return 0;
}

static struct rte_hash *
dp_cache_table(uint64_t generation, unsigned lcore, uint32_t entries, int socket)
{
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = entries,
		.key_len = DP_CACHE_KEY_LEN,
		.hash_func = dp_cache_hash,
		.hash_func_init_val = 0,
		.socket_id = socket,
		.extra_flag = 0,	/* immutable once published: see dp_cache.h */
	};
	struct rte_hash *h;

	/* unique among live tables, and short enough for the ring "HT_<name>" */
	snprintf(name, sizeof(name), "c%" PRIx32 "_g%" PRIx32 "_l%u", dp_cache_seq++,
		(uint32_t)generation, lcore);
	h = rte_hash_create(&hp);
	if (h == NULL && rte_errno == ENOMEM && socket != SOCKET_ID_ANY) {
		hp.socket_id = SOCKET_ID_ANY;
		h = rte_hash_create(&hp);
	}
	return h;
}

/* 1 when added, 0 when the key was there already, < 0 (-ENOSPC...) */
static int
dp_cache_add(struct rte_hash *h, const uint8_t key[DP_CACHE_KEY_LEN], struct dp_cache_entry *e)
{
	int rc;

	if (rte_hash_lookup(h, key) >= 0)
		return 0;
	rc = rte_hash_add_key_data(h, key, e);
	return rc == 0 ? 1 : rc;
}

/* Fills h with both keys of every certificate; counts duplicates. */
static int
dp_cache_fill(struct rte_hash *h, const struct publication *p, struct dp_cache_entry *ents,
	unsigned *nkeys, unsigned *ndup)
{
	*nkeys = *ndup = 0;
	for (size_t i = 0; i < p->ncerts; i++) {
		const uint8_t *keys[2] = { p->certs[i].sha256, p->certs[i].issuer_serial };

		for (unsigned k = 0; k < 2; k++) {
			int rc = dp_cache_add(h, keys[k], &ents[i]);

			if (rc < 0)
				return rc;
			*nkeys += (unsigned)rc;
			*ndup += (unsigned)(rc == 0);
		}
	}
	return 0;
}

static int
dp_cache_lcore_build(struct dp_cache_set *s, const struct publication *p, unsigned lcore,
	int socket, struct dp_cache_counters *ctr, char *msg, size_t msgsz)
{
	/* at most 80 % of the slots: cuckoo inserts then essentially never fail */
	uint32_t entries = (uint32_t)RTE_MAX(2 * p->ncerts + p->ncerts / 2, (size_t)8);
	struct dp_cache *c = dp_cache_zmalloc("tvs_cert_cache", sizeof(*c), socket);
	int rc = -ENOSPC;

	if (c == NULL)
		return dp_cache_fail(msg, msgsz, ENOMEM,
			"certificate cache: out of memory for lcore %u", lcore);
	s->bytes += sizeof(*c);
	s->lcore[lcore] = c;
	c->lcore = lcore;
	c->socket = socket;
	c->ncerts = (unsigned)p->ncerts;
	c->ctr = ctr != NULL ? ctr : &c->own;
	for (unsigned t = 0; t < DP_CACHE_BUILD_TRIES && rc == -ENOSPC; t++, entries *= 2) {
		rte_hash_free(c->h);
		c->h = dp_cache_table(s->generation, lcore, entries, socket);
		if (c->h == NULL)
			return dp_cache_fail(msg, msgsz, rte_errno,
				"certificate cache: rte_hash of %u entries for lcore %u: %s",
				entries, lcore, rte_strerror(rte_errno));
		/* every table gets the same keys: the counts are per table */
		rc = dp_cache_fill(c->h, p, s->block[socket], &s->nkeys, &s->ndup);
	}
	if (rc != 0)
		return dp_cache_fail(msg, msgsz, -rc,
			"certificate cache: %zu certificates do not fit lcore %u's table: %s",
			p->ncerts, lcore, strerror(-rc));
	return 0;
}

struct dp_cache_set *
dp_cache_set_build(const struct publication *p, const unsigned *lcores, unsigned n,
	struct dp_cache_counters *const *ctrs, char *msg, size_t msgsz)
{
	struct dp_cache_src src = { 0 };
	struct dp_cache_set *s;
	int rc = 0;

	s = rte_zmalloc("tvs_cert_set", sizeof(*s), RTE_CACHE_LINE_SIZE);
	if (s == NULL) {
		dp_cache_fail(msg, msgsz, ENOMEM, "certificate cache: out of memory");
		return NULL;
	}
	s->generation = p->generation;
	s->ncerts = (unsigned)p->ncerts;
	s->bytes = sizeof(*s);
	if (p->ncerts > UINT32_MAX / 8)
		rc = dp_cache_fail(msg, msgsz, E2BIG, "certificate cache: %zu certificates",
			p->ncerts);
	if (rc == 0)
		rc = dp_cache_src_init(p, &src, msg, msgsz);
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		unsigned l = lcores[i];
		int socket = l < RTE_MAX_LCORE ? (int)rte_lcore_to_socket_id(l) : -1;

		if (socket < 0 || socket >= RTE_MAX_NUMA_NODES)
			rc = dp_cache_fail(msg, msgsz, EINVAL,
				"certificate cache: lcore %u has no NUMA socket", l);
		else if (s->lcore[l] != NULL)
			rc = dp_cache_fail(msg, msgsz, EEXIST,
				"certificate cache: lcore %u given twice", l);
		else if (dp_cache_socket(s, p, &src, socket) != 0)
			rc = dp_cache_fail(msg, msgsz, ENOMEM,
				"certificate cache: out of memory for %zu bytes of entries on socket %d",
				src.block_size, socket);
		else
			rc = dp_cache_lcore_build(s, p, l, socket, ctrs != NULL ? ctrs[i] : NULL,
				msg, msgsz);
	}
	dp_cache_src_free(&src, p->ncerts);
	if (rc != 0) {
		dp_cache_set_free(s);
		return NULL;
	}
	return s;
}

void
dp_cache_set_free(struct dp_cache_set *s)
{
	if (s == NULL)
		return;
	for (unsigned l = 0; l < RTE_MAX_LCORE; l++) {
		if (s->lcore[l] == NULL)
			continue;
		rte_hash_free(s->lcore[l]->h);
		rte_free(s->lcore[l]);
	}
	for (int k = 0; k < RTE_MAX_NUMA_NODES; k++)
		rte_free(s->block[k]);
	rte_free(s);
}

const struct dp_cache *
dp_cache_of_lcore(const struct dp_cache_set *s, unsigned lcore)
{
	return s != NULL && lcore < RTE_MAX_LCORE ? s->lcore[lcore] : NULL;
}

unsigned
dp_cache_set_certs(const struct dp_cache_set *s)
{
	return s->ncerts;
}

unsigned
dp_cache_set_keys(const struct dp_cache_set *s)
{
	return s->nkeys;
}

unsigned
dp_cache_set_duplicates(const struct dp_cache_set *s)
{
	return s->ndup;
}

size_t
dp_cache_set_bytes(const struct dp_cache_set *s)
{
	return s->bytes;
}

unsigned
dp_cache_certs(const struct dp_cache *c)
{
	return c->ncerts;
}

unsigned
dp_cache_lcore(const struct dp_cache *c)
{
	return c->lcore;
}

struct dp_cache_counters *
dp_cache_counters(const struct dp_cache *c)
{
	return c->ctr;
}

const struct dp_cache_entry *
dp_cache_lookup(const struct dp_cache *c, const uint8_t key[DP_CACHE_KEY_LEN])
{
	void *data;

	c->ctr->lookups++;
	if (rte_hash_lookup_data(c->h, key, &data) < 0) {
		c->ctr->misses++;
		return NULL;
	}
	c->ctr->hits++;
	return data;
}

unsigned
dp_cache_lookup_bulk(const struct dp_cache *c, const void *const keys[], unsigned n,
	const struct dp_cache_entry *entries[])
{
	unsigned hits = 0;

	for (unsigned off = 0; off < n; off += RTE_HASH_LOOKUP_BULK_MAX) {
		unsigned m = RTE_MIN(n - off, (unsigned)RTE_HASH_LOOKUP_BULK_MAX);
		void *data[RTE_HASH_LOOKUP_BULK_MAX];
		uint64_t mask = 0;

		if (rte_hash_lookup_bulk_data(c->h, (const void **)(uintptr_t)(keys + off), m,
		    &mask, data) < 0)
			mask = 0;	/* only for bad arguments, which m never is */
		for (unsigned i = 0; i < m; i++)
			entries[off + i] = (mask >> i) & 1 ? data[i] : NULL;
		hits += (unsigned)__builtin_popcountll(mask);
	}
	c->ctr->lookups += n;
	c->ctr->hits += hits;
	c->ctr->misses += n - hits;
	return hits;
}

void
dp_cache_entry_tvs(const struct dp_cache_entry *ce, struct tvs_entry *e)
{
	e->der = ce->der;
	e->der_len = ce->der_len;
	e->roles = ce->roles;
	e->nroles = ce->nroles;
	e->ttl = ce->ttl;
	e->subject = ce->subject;
	e->subject_len = ce->subject_len;
}

/* Both of the codec's lookups: the keys of either kind share one table. */
static int
dp_cache_tvs_find(void *ctx, const uint8_t key[32], struct tvs_entry *e)
{
	const struct dp_cache_entry *ce = dp_cache_lookup(ctx, key);

	if (ce == NULL)
		return 0;
	dp_cache_entry_tvs(ce, e);
	return 1;
}

struct tvs_lookup
dp_cache_tvs_lookup(const struct dp_cache *c)
{
	return (struct tvs_lookup){
		.by_sha256 = dp_cache_tvs_find,
		.by_issuer_serial = dp_cache_tvs_find,
		.ctx = (void *)(uintptr_t)c,
	};
}
