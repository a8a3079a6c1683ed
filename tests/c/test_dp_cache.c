/*
 * The per-lcore certificate caches of dataplane/dp_cache.c on a real EAL
 * (--no-huge): tables built from a publication made here with real
 * certificates, single and bulk lookups, tvs_answer through the bound
 * lookup, two generations alive at once, and every byte back after free.
 *
 * Run: test_dp_cache --no-huge -m 256 --no-pci --file-prefix=test_dp_cache -l 0
 * TAP on stdout; exit 0 pass, 1 fail, 77 when EAL cannot start here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "cert.h"
#include "dp_cache.h"
#include "publication.h"
#include "sign.h"
#include "tap.h"
#include "tvs.h"

#define NCERTS 1000
#define OTHER_LCORE 1		/* not running: a table only needs its socket */

static struct trust_cert certs[NCERTS + 1];	/* the last one is never published */
static EVP_PKEY *key;				/* signed them all */
static uint8_t msg_buf[TVS_MSG_MAX];

/* Heap bytes and blocks in use, over every socket. */
static void
heap_used(size_t *bytes, unsigned *blocks)
{
	*bytes = 0;
	*blocks = 0;
	for (unsigned i = 0; i < rte_socket_count(); i++) {
		struct rte_malloc_socket_stats st;

		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0) {
			*bytes += st.heap_allocsz_bytes;
			*blocks += st.alloc_count;
		}
	}
}

static int
make_certs(void)
{
	struct trust_err err = { 0 };

	key = trust_key_generate_rsa(1024, &err);
	if (key == NULL) {
		diag("key: %s", err.msg);
		return -1;
	}
	for (unsigned i = 0; i <= NCERTS; i++) {
		char cn[64];
		struct trust_cert_params cp = { .cn = cn, .ou = "VTG", .o = "Test, Inc.",
			.l = "Lyon", .c = "FR", .days = 30 };

		snprintf(cn, sizeof(cn), "cache-%u.example", i);
		if (trust_cert_selfsign(key, &cp, &certs[i], &err) != 0) {
			diag("cert %u: %s", i, err.msg);
			return -1;
		}
	}
	return 0;
}

/* A publication of certs[first..first+n), as pub_load would fill it. */
static void
make_pub(struct publication *p, uint64_t gen, unsigned first, unsigned n)
{
	memset(p, 0, sizeof(*p));
	p->generation = gen;
	p->certs = calloc(n ? n : 1, sizeof(*p->certs));
	p->ncerts = n;
	for (unsigned i = 0; i < n; i++) {
		const struct trust_cert *c = &certs[first + i];
		struct pub_cert *pc = &p->certs[i];

		memcpy(pc->sha256, c->sha256, 32);
		trust_issuer_serial_key(c->issuer, strlen(c->issuer), c->serial, c->serial_len,
			pc->issuer_serial);
		pc->nroles = 1 + (first + i) % 3;
		for (unsigned r = 0; r < pc->nroles; r++)
			pc->roles[r] = (uint8_t)(r + (first + i) % 5);
		pc->ttl = (first + i) % 10 == 0 ? 0 : 600 + first + i;
		pc->der = malloc(c->der_len);
		memcpy(pc->der, c->der, c->der_len);
		pc->der_len = c->der_len;
	}
}

static void
free_pub(struct publication *p)
{
	for (size_t i = 0; i < p->ncerts; i++)
		free(p->certs[i].der);
	free(p->certs);
	memset(p, 0, sizeof(*p));
}

static bool
entry_is(const struct dp_cache_entry *e, const struct pub_cert *pc, const struct trust_cert *c)
{
	return e != NULL && e->der_len == pc->der_len && memcmp(e->der, pc->der, pc->der_len) == 0
		&& e->der != pc->der && e->ttl == pc->ttl && e->nroles == pc->nroles
		&& memcmp(e->roles, pc->roles, pc->nroles) == 0 && e->subject != NULL
		&& strcmp(e->subject, c->subject) == 0 && e->subject_len == strlen(c->subject);
}

static void
test_single(const struct publication *p, const struct dp_cache *c)
{
	struct dp_cache_counters *ctr = dp_cache_counters(c);
	struct dp_cache_counters before = *ctr;
	unsigned bad_sha = 0, bad_is = 0, bad_same = 0, bad_miss = 0;

	for (size_t i = 0; i < p->ncerts; i++) {
		const struct dp_cache_entry *a = dp_cache_lookup(c, p->certs[i].sha256);
		const struct dp_cache_entry *b = dp_cache_lookup(c, p->certs[i].issuer_serial);

		bad_sha += !entry_is(a, &p->certs[i], &certs[i]);
		bad_is += !entry_is(b, &p->certs[i], &certs[i]);
		bad_same += a != b;
	}
	for (unsigned i = 0; i < 500; i++) {
		uint8_t key[32];

		RAND_bytes(key, sizeof(key));
		bad_miss += dp_cache_lookup(c, key) != NULL;
	}
	bad_miss += dp_cache_lookup(c, certs[NCERTS].sha256) != NULL;
	is_int(bad_sha, 0, "lcore %u: every certificate found by SHA-256, DER/roles/TTL/subject right",
		dp_cache_lcore(c));
	is_int(bad_is, 0, "lcore %u: every certificate found by issuer/serial", dp_cache_lcore(c));
	is_int(bad_same, 0, "lcore %u: both keys lead to the same entry", dp_cache_lcore(c));
	is_int(bad_miss, 0, "lcore %u: 501 unknown keys miss", dp_cache_lcore(c));
	is_int(ctr->lookups - before.lookups, 2 * p->ncerts + 501, "lookups counted");
	is_int(ctr->hits - before.hits, 2 * p->ncerts, "hits counted");
	is_int(ctr->misses - before.misses, 501, "misses counted");
}

/* A burst: position i misses when i % 3 == 1, else hits by either key. */
static void
test_bulk(const struct publication *p, const struct dp_cache *c, unsigned n)
{
	uint8_t miss[128][32];
	const void *keys[128];
	const struct dp_cache_entry *got[128], *want[128];
	struct dp_cache_counters before;
	unsigned wanted_hits = 0, wrong = 0, hits;

	for (unsigned i = 0; i < n; i++) {
		const struct pub_cert *pc = &p->certs[(i * 37 + 11) % p->ncerts];

		got[i] = (const void *)&got;	/* must be overwritten */
		if (i % 3 == 1) {
			RAND_bytes(miss[i], 32);
			keys[i] = miss[i];
			want[i] = NULL;
			continue;
		}
		keys[i] = i % 2 ? pc->sha256 : pc->issuer_serial;
		want[i] = dp_cache_lookup(c, keys[i]);
		wanted_hits += want[i] != NULL;
	}
	before = *dp_cache_counters(c);
	hits = dp_cache_lookup_bulk(c, keys, n, got);
	for (unsigned i = 0; i < n; i++)
		wrong += got[i] != want[i];
	ok(wanted_hits == n - (n + 1) / 3, "burst of %u: %u hits expected", n, wanted_hits);
	is_int(hits, wanted_hits, "burst of %u: hit count", n);
	is_int(wrong, 0, "burst of %u: each position has its entry or NULL", n);
	is_int(dp_cache_counters(c)->lookups - before.lookups, n, "burst of %u: lookups counted", n);
	is_int(dp_cache_counters(c)->misses - before.misses, n - wanted_hits,
		"burst of %u: misses counted", n);
}

/* One request through tvs_answer with c's lookup; the parsed response. */
static int
answer(const struct dp_cache *c, const struct tvs_request *rq, struct tvs_response *rs)
{
	struct tvs_lookup lk = dp_cache_tvs_lookup(c);
	struct trust_err err = { 0 };
	struct tvs_request parsed;
	static uint8_t req[TVS_MSG_MAX];
	size_t n, outlen;
	int st;

	if (tvs_request_build(rq, req, sizeof(req), &n, &err) != 0
	    || tvs_request_parse(req, n, &parsed, &err) != 0) {
		diag("request: %s", err.msg);
		return -100;
	}
	st = tvs_answer(&parsed, &lk, msg_buf, sizeof(msg_buf), &outlen, &err);
	if (st < 0 || tvs_response_parse(msg_buf, outlen, rs, &err) != 0) {
		diag("answer: %s", err.msg);
		return -101;
	}
	return st;
}

static struct trust_bytes
view(const void *p, size_t n)
{
	return (struct trust_bytes){ p, n };
}

static void
test_answer(const struct publication *p, const struct dp_cache *c)
{
	const char *dev = "CP-8865-SEP001122334455";
	unsigned k = 7;		/* TTL 607 */
	const struct pub_cert *pc = &p->certs[k];
	struct tvs_request rq = { .type = TVS_CERT_VERIFY_REQ, .id = 41,
		.device = view(dev, strlen(dev)), .cert = view(certs[k].der, certs[k].der_len) };
	struct tvs_response rs;

	is_int(answer(c, &rq, &rs), TVS_STATUS_TRUSTED, "verify: known certificate trusted");
	ok(rs.id == 41 && rs.status == 0 && rs.has_ttl && rs.ttl == pc->ttl
		&& rs.roles.len == pc->nroles && memcmp(rs.roles.p, pc->roles, pc->nroles) == 0,
		"verify: status 0, the manifest's roles and TTL %u", pc->ttl);
	rq.cert = view(certs[10].der, certs[10].der_len);
	answer(c, &rq, &rs);
	ok(rs.status == 0 && rs.ttl == TVS_TTL_DEFAULT, "verify: TTL 0 in the manifest is %u",
		TVS_TTL_DEFAULT);
	rq.cert = view(certs[NCERTS].der, certs[NCERTS].der_len);
	ok(answer(c, &rq, &rs) == TVS_STATUS_UNTRUSTED && rs.status == 1 && !rs.has_ttl,
		"verify: unknown certificate is status 1");

	rq = (struct tvs_request){ .type = TVS_QUERY_CERT_REQ, .id = 42,
		.device = view(dev, strlen(dev)),
		.issuer = view(certs[k].issuer, strlen(certs[k].issuer)),
		.serial = view(certs[k].serial, certs[k].serial_len),
		.subject = view(certs[k].subject, strlen(certs[k].subject)) };
	ok(answer(c, &rq, &rs) == TVS_STATUS_TRUSTED && rs.status == 0 && rs.ttl == pc->ttl
		&& rs.cert.len == pc->der_len && memcmp(rs.cert.p, pc->der, pc->der_len) == 0,
		"query: issuer/serial/subject found, the DER sent back");
	rq.subject = view(certs[k + 1].subject, strlen(certs[k + 1].subject));
	ok(answer(c, &rq, &rs) == TVS_STATUS_UNTRUSTED && rs.status == 1,
		"query: another subject is status 1");
	rq.subject = view(certs[NCERTS].subject, 0);
	rq.subject.p = NULL;
	rq.serial = view(certs[NCERTS].serial, certs[NCERTS].serial_len);
	ok(answer(c, &rq, &rs) == TVS_STATUS_UNTRUSTED && rs.status == 1,
		"query: unknown serial is status 1");
}

static void
test_generations(void)
{
	struct dp_cache_counters ctr = { 0 }, *ctrs[1] = { &ctr };
	unsigned lc = rte_lcore_id();
	struct publication a, b;
	struct dp_cache_set *sa, *sb;
	const struct dp_cache *ca, *cb;
	char msg[300];
	unsigned cross = 0, own = 0;

	make_pub(&a, 21, 0, 100);
	make_pub(&b, 22, 100, 150);
	sa = dp_cache_set_build(&a, &lc, 1, ctrs, msg, sizeof(msg));
	sb = dp_cache_set_build(&b, &lc, 1, ctrs, msg, sizeof(msg));
	ok(sa != NULL && sb != NULL, "two generations built for the same lcore");
	if (sa == NULL || sb == NULL) {
		dp_cache_set_free(sa);
		dp_cache_set_free(sb);
		free_pub(&a);
		free_pub(&b);
		return;
	}
	ca = dp_cache_of_lcore(sa, lc);
	cb = dp_cache_of_lcore(sb, lc);
	for (unsigned i = 0; i < 250; i++) {
		bool in_a = i < 100;

		own += (dp_cache_lookup(in_a ? ca : cb, certs[i].sha256) != NULL);
		cross += (dp_cache_lookup(in_a ? cb : ca, certs[i].sha256) != NULL);
	}
	is_int(own, 250, "each generation finds its own certificates");
	is_int(cross, 0, "and none of the other's");
	is_int(ctr.lookups, 500, "both generations count into the lcore's counters");
	dp_cache_set_free(sa);
	own = 0;
	for (unsigned i = 0; i < 150; i++)
		own += dp_cache_lookup(cb, b.certs[i].issuer_serial) != NULL;
	is_int(own, 150, "the newer generation still answers after the older is freed");
	dp_cache_set_free(sb);
	free_pub(&a);
	free_pub(&b);
}

static void
test_refusals(void)
{
	unsigned lcores[2] = { rte_lcore_id(), rte_lcore_id() }, bad = RTE_MAX_LCORE;
	struct publication p;
	struct dp_cache_set *s;
	char msg[300] = "", twice[64];
	uint8_t keep;

	make_pub(&p, 30, 0, 20);
	s = dp_cache_set_build(&p, lcores, 2, NULL, msg, sizeof(msg));
	snprintf(twice, sizeof(twice), "lcore %u given twice", lcores[0]);
	ok(s == NULL && strstr(msg, twice) != NULL, "the same lcore twice: %s", msg);
	s = dp_cache_set_build(&p, &bad, 1, NULL, msg, sizeof(msg));
	ok(s == NULL && strstr(msg, "no NUMA socket") != NULL, "lcore %u: %s", bad, msg);
	keep = p.certs[5].der[0];
	p.certs[5].der[0] = 0x31;	/* not a SEQUENCE any more */
	s = dp_cache_set_build(&p, lcores, 1, NULL, msg, sizeof(msg));
	ok(s == NULL && strstr(msg, "manifest certificate 5 (") != NULL,
		"a DER that does not parse names its certificate: %s", msg);
	p.certs[5].der[0] = keep;

	/* two certificates claiming one issuer and serial: the first keeps it */
	memcpy(p.certs[9].issuer_serial, p.certs[3].issuer_serial, 32);
	s = dp_cache_set_build(&p, lcores, 1, NULL, msg, sizeof(msg));
	ok(s != NULL, "a shared issuer/serial key still builds");
	if (s != NULL) {
		const struct dp_cache *c = dp_cache_of_lcore(s, lcores[0]);

		is_int(dp_cache_set_duplicates(s), 1, "one duplicate key counted");
		is_int(dp_cache_set_keys(s), 39, "39 keys for 20 certificates");
		ok(entry_is(dp_cache_lookup(c, p.certs[3].issuer_serial), &p.certs[3], &certs[3]),
			"the shared key leads to the first certificate");
		ok(entry_is(dp_cache_lookup(c, p.certs[9].sha256), &p.certs[9], &certs[9]),
			"the second is still found by SHA-256");
		is_int(dp_cache_counters(c)->lookups, 2, "a cache with no counters given counts itself");
		dp_cache_set_free(s);
	}
	free_pub(&p);

	make_pub(&p, 31, 0, 0);
	s = dp_cache_set_build(&p, lcores, 1, NULL, msg, sizeof(msg));
	ok(s != NULL && dp_cache_lookup(dp_cache_of_lcore(s, lcores[0]), certs[0].sha256) == NULL
		&& dp_cache_set_certs(s) == 0, "a publication without certificates: all miss");
	dp_cache_set_free(s);
	free_pub(&p);
}

/* Subjects come from a walk to the subject Name: v1 (no version field)
 * and v3 certificates, and DER cut anywhere, which must fail cleanly. */
static void
test_subjects(void)
{
	unsigned lc = rte_lcore_id(), cut_built = 0;
	X509 *v1 = X509_dup(certs[3].x509);
	struct trust_cert c1 = { 0 };
	struct trust_err err = { 0 };
	struct publication p;
	struct dp_cache_set *s;
	const struct dp_cache_entry *e;
	char msg[300];
	uint8_t *der;
	size_t len;

	ok(v1 != NULL && X509_set_version(v1, X509_VERSION_1) == 1
		&& X509_sign(v1, key, EVP_sha256()) > 0
		&& trust_cert_from_x509(v1, &c1, &err) == 0, "a v1 certificate made");
	make_pub(&p, 40, 3, 1);
	free(p.certs[0].der);
	p.certs[0].der = malloc(c1.der_len);
	memcpy(p.certs[0].der, c1.der, c1.der_len);
	p.certs[0].der_len = c1.der_len;
	s = dp_cache_set_build(&p, &lc, 1, NULL, msg, sizeof(msg));
	e = s != NULL ? dp_cache_lookup(dp_cache_of_lcore(s, lc), p.certs[0].sha256) : NULL;
	ok(e != NULL && c1.subject != NULL && strcmp(e->subject, c1.subject) == 0,
		"v1 certificate: subject %s", e != NULL ? e->subject : msg);
	dp_cache_set_free(s);

	der = p.certs[0].der;
	len = p.certs[0].der_len;
	for (size_t cut = 0; cut < len; cut++) {
		p.certs[0].der_len = cut;
		p.certs[0].der = malloc(cut ? cut : 1);	/* exact size: ASan sees over-reads */
		memcpy(p.certs[0].der, der, cut);
		s = dp_cache_set_build(&p, &lc, 1, NULL, msg, sizeof(msg));
		cut_built += s != NULL;
		dp_cache_set_free(s);
		free(p.certs[0].der);
	}
	p.certs[0].der = der;
	p.certs[0].der_len = len;
	is_int(cut_built, 0, "DER cut at each of %zu lengths: refused every time", len);
	free_pub(&p);
	trust_cert_free(&c1);
	X509_free(v1);
}

int
main(int argc, char **argv)
{
	struct dp_cache_counters ctr0 = { 0 }, *ctrs[2] = { &ctr0, NULL };
	unsigned lcores[2];
	struct publication p;
	struct dp_cache_set *s;
	size_t bytes0, bytes1, bytes2;
	unsigned blocks0, blocks1, blocks2;
	char msg[300];

	if (rte_eal_init(argc, argv) < 0) {
		printf("1..0 # SKIP EAL cannot start here: %s\n", rte_strerror(rte_errno));
		return 77;
	}
	if (make_certs() != 0) {
		ok(0, "test certificates made");
		return done_testing();
	}
	lcores[0] = rte_lcore_id();
	lcores[1] = OTHER_LCORE;
	make_pub(&p, 5, 0, NCERTS);
	heap_used(&bytes0, &blocks0);
	s = dp_cache_set_build(&p, lcores, 2, ctrs, msg, sizeof(msg));
	if (!ok(s != NULL, "cache of %u certificates built for lcores %u and %u", NCERTS,
	    lcores[0], lcores[1])) {
		diag("%s", msg);
		return done_testing();
	}
	heap_used(&bytes1, &blocks1);
	diag("rte_malloc: %zu bytes in %u blocks for %u certificates on 2 lcores "
		"(%zu counted by the set: one entry block)", bytes1 - bytes0, blocks1 - blocks0,
		NCERTS, dp_cache_set_bytes(s));
	is_int(dp_cache_set_certs(s), NCERTS, "set: %u certificates", NCERTS);
	is_int(dp_cache_set_keys(s), 2 * NCERTS, "set: two keys each");
	is_int(dp_cache_set_duplicates(s), 0, "set: no duplicate key");
	ok(dp_cache_of_lcore(s, lcores[0]) != dp_cache_of_lcore(s, lcores[1])
		&& dp_cache_of_lcore(s, 2) == NULL, "one table per lcore given, none for others");
	ok(dp_cache_counters(dp_cache_of_lcore(s, lcores[0])) == &ctr0,
		"lcore %u counts into the counters given", lcores[0]);
	for (unsigned i = 0; i < 2; i++) {
		const struct dp_cache *c = dp_cache_of_lcore(s, lcores[i]);

		is_int(dp_cache_certs(c), NCERTS, "lcore %u: %u certificates", lcores[i], NCERTS);
		test_single(&p, c);
	}
	test_bulk(&p, dp_cache_of_lcore(s, lcores[0]), 16);
	test_bulk(&p, dp_cache_of_lcore(s, lcores[0]), 32);
	test_bulk(&p, dp_cache_of_lcore(s, lcores[1]), 100);	/* more than one rte_hash bulk */
	test_answer(&p, dp_cache_of_lcore(s, lcores[0]));
	test_generations();
	test_refusals();
	test_subjects();
	dp_cache_set_free(s);
	free_pub(&p);
	heap_used(&bytes2, &blocks2);
	ok(bytes2 == bytes0 && blocks2 == blocks0,
		"after free, the heap is back to %zu bytes in %u blocks", bytes0, blocks0);
	if (bytes2 != bytes0)
		diag("got %zu bytes in %u blocks", bytes2, blocks2);
	for (unsigned i = 0; i <= NCERTS; i++)
		trust_cert_free(&certs[i]);
	EVP_PKEY_free(key);
	rte_eal_cleanup();
	return done_testing();
}
