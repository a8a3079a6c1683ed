/*
 * The TLS + TVS session layer of dataplane/tvs_session.h, driven by an
 * in-memory OpenSSL client: versions and ciphers, answers, several
 * requests per connection, trickles, malformed input, resumption across
 * "lcores" with shared ticket keys and their rotation, and handshakes
 * whose private-key operation goes to a pthread standing in for the
 * crypto lcore. Prints (does not assert) how long one handshake step
 * blocks the caller with and without the offload.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cert.h"
#include "party.h"
#include "sign.h"
#include "tap.h"
#include "tvs.h"
#include "tvs_session.h"

#define MAX_ITER 20000
#define POLL_WAIT_NS 5000000000ull

/* ---- the certificate table: a plain array ---- */

struct entry {
	struct trust_cert *c;
	uint8_t isk[32];
	uint8_t roles[2];
	uint32_t ttl;
};

struct table {
	struct entry e[4];
	unsigned n;
};

static void
entry_fill(const struct entry *k, struct tvs_entry *e)
{
	e->der = k->c->der;
	e->der_len = k->c->der_len;
	e->roles = k->roles;
	e->nroles = sizeof(k->roles);
	e->ttl = k->ttl;
	e->subject = k->c->subject;
	e->subject_len = strlen(k->c->subject);
}

static int
tab_by_sha(void *ctx, const uint8_t sha[32], struct tvs_entry *e)
{
	struct table *t = ctx;

	for (unsigned i = 0; i < t->n; i++)
		if (memcmp(t->e[i].c->sha256, sha, 32) == 0) {
			entry_fill(&t->e[i], e);
			return 1;
		}
	return 0;
}

static int
tab_by_isk(void *ctx, const uint8_t key[32], struct tvs_entry *e)
{
	struct table *t = ctx;

	for (unsigned i = 0; i < t->n; i++)
		if (memcmp(t->e[i].isk, key, 32) == 0) {
			entry_fill(&t->e[i], e);
			return 1;
		}
	return 0;
}

static struct table tab;
static struct tvs_lookup lookup = { tab_by_sha, tab_by_isk, &tab };

/* ---- a pthread standing in for the crypto lcore ---- */

#define Q_SIZE 64

struct oq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tvs_pkey_job *in[Q_SIZE], *out[Q_SIZE];
	unsigned nin, nout;
	bool hold, quit;
	unsigned ran;
	pthread_t th;
};

static void *
oq_main(void *arg)
{
	struct oq *q = arg;

	pthread_mutex_lock(&q->mu);
	while (!q->quit) {
		struct tvs_pkey_job *j;

		if (q->nin == 0 || q->hold) {
			pthread_cond_wait(&q->cv, &q->mu);
			continue;
		}
		j = q->in[0];
		memmove(q->in, q->in + 1, --q->nin * sizeof(q->in[0]));
		pthread_mutex_unlock(&q->mu);
		tvs_pkey_job_run(j);
		pthread_mutex_lock(&q->mu);
		q->out[q->nout++] = j;
		q->ran++;
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static int
oq_submit(void *ctx, struct tvs_pkey_job *j)
{
	struct oq *q = ctx;
	int rc = -1;

	pthread_mutex_lock(&q->mu);
	if (q->nin + q->nout < Q_SIZE) {
		q->in[q->nin++] = j;
		pthread_cond_signal(&q->cv);
		rc = 0;
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static unsigned
oq_poll(void *ctx, struct tvs_pkey_job **jobs, unsigned max)
{
	struct oq *q = ctx;
	unsigned n;

	pthread_mutex_lock(&q->mu);
	n = q->nout < max ? q->nout : max;
	memcpy(jobs, q->out, n * sizeof(jobs[0]));
	memmove(q->out, q->out + n, (q->nout - n) * sizeof(q->out[0]));
	q->nout -= n;
	pthread_mutex_unlock(&q->mu);
	return n;
}

static void
oq_hold(struct oq *q, bool hold)
{
	pthread_mutex_lock(&q->mu);
	q->hold = hold;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void
oq_start(struct oq *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (pthread_create(&q->th, NULL, oq_main, q) != 0) {
		printf("Bail out! pthread_create: %s\n", strerror(errno));
		exit(1);
	}
}

static void
oq_stop(struct oq *q)
{
	pthread_mutex_lock(&q->mu);
	q->quit = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->th, NULL);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
}

/* ---- the client side ---- */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct conn {
	SSL *c;
	BIO *crd, *cwr;		/* client's read and write BIOs */
	struct tvs_engine *e;
	struct tvs_session *s;
	unsigned flags;		/* last session result */
	unsigned seen;		/* every flag ever returned */
	size_t chunk;		/* client -> server bytes per input call; 0: all */
	uint64_t max_step_ns;	/* longest single session call, thread CPU time */
	bool no_wait;		/* leave a pending session pending */
};

static SSL_CTX *
client_ctx(int version, const char *ciphers, bool no_ticket)
{
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());

	SSL_CTX_set_min_proto_version(cc, version ? version : TLS1_VERSION);
	SSL_CTX_set_max_proto_version(cc, version ? version : TLS1_3_VERSION);
	SSL_CTX_set_cipher_list(cc, ciphers ? ciphers : "DEFAULT:@SECLEVEL=0");
	SSL_CTX_set_session_cache_mode(cc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	if (no_ticket)
		SSL_CTX_set_options(cc, SSL_OP_NO_TICKET);
	return cc;
}

static void
conn_open(struct conn *k, SSL_CTX *cc, struct tvs_engine *e, SSL_SESSION *resume)
{
	memset(k, 0, sizeof(*k));
	k->c = SSL_new(cc);
	k->crd = BIO_new(BIO_s_mem());
	k->cwr = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(k->crd, -1);
	SSL_set_bio(k->c, k->crd, k->cwr);
	SSL_set_connect_state(k->c);
	if (resume != NULL)
		SSL_set_session(k->c, resume);
	k->e = e;
	k->s = tvs_session_new(e, k);
}

static void
conn_close(struct conn *k)
{
	tvs_session_free(k->s);
	SSL_free(k->c);
	ERR_clear_error();
}

/* Thread CPU time: what the call cost this lcore, preemption excluded
 * (the VM running the tests is shared, wall clock would measure that). */
static uint64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
note(struct conn *k, unsigned flags, uint64_t t0)
{
	uint64_t dt = cpu_ns() - t0;

	if (dt > k->max_step_ns)
		k->max_step_ns = dt;
	k->flags = flags;
	k->seen |= flags;
}

/* Wait (bounded) for the offload to hand this session back, then resume. */
static bool
conn_wait_job(struct conn *k)
{
	struct tvs_session *ready[4];
	uint64_t t0 = now_ns();

	while (now_ns() - t0 < POLL_WAIT_NS) {
		unsigned n = tvs_engine_poll(k->e, ready, 4);

		for (unsigned i = 0; i < n; i++)
			if (ready[i] == k->s) {
				uint64_t t1 = cpu_ns();

				note(k, tvs_session_resume(k->s), t1);
				return true;
			}
		usleep(100);
	}
	return false;
}

/* Move bytes both ways until nothing moves; the client handshakes too. */
static void
pump(struct conn *k)
{
	uint8_t buf[65536];

	for (int i = 0; i < MAX_ITER; i++) {
		size_t avail = BIO_ctrl_pending(k->cwr), n;
		bool moved = false;

		if (!SSL_is_init_finished(k->c) && SSL_do_handshake(k->c) <= 0)
			ERR_clear_error();
		avail = BIO_ctrl_pending(k->cwr);
		if (avail > 0 && !(k->flags & (TVS_SESS_CLOSE | TVS_SESS_ABORT))) {
			size_t want = k->chunk && k->chunk < avail ? k->chunk : avail;
			uint64_t t0;

			want = want < sizeof(buf) ? want : sizeof(buf);
			BIO_read(k->cwr, buf, (int)want);
			t0 = cpu_ns();
			note(k, tvs_session_input(k->s, buf, want), t0);
			moved = true;
		}
		if ((k->flags & TVS_SESS_PENDING) && !k->no_wait && conn_wait_job(k))
			moved = true;
		while ((n = tvs_session_output(k->s, buf, sizeof(buf))) > 0) {
			BIO_write(k->crd, buf, (int)n);
			moved = true;
		}
		if (k->flags & TVS_SESS_BACKLOG) {
			note(k, tvs_session_resume(k->s), cpu_ns());
			moved = true;
		}
		if (!moved)
			return;
	}
}

static bool
conn_handshake(struct conn *k)
{
	pump(k);
	return SSL_is_init_finished(k->c) && tvs_session_established(k->s);
}

/* Read responses off the client until n are complete; false on timeout. */
static bool
conn_read(struct conn *k, struct trust_buf *rx, unsigned n)
{
	uint8_t buf[4096];
	size_t got;

	for (int i = 0; i < MAX_ITER; i++) {
		size_t off = 0, need;
		unsigned have = 0;

		while (have < n && tvs_frame(rx->data + off, rx->len - off, &need, NULL)
		    == TVS_FRAME_DONE) {
			off += need;
			have++;
		}
		if (have == n)
			return true;
		pump(k);
		if (SSL_read_ex(k->c, buf, sizeof(buf), &got) == 1)
			trust_buf_put(rx, buf, got);
		else if (SSL_get_error(k->c, 0) != SSL_ERROR_WANT_READ
		    && BIO_ctrl_pending(k->crd) == 0)
			return false;
	}
	return false;
}

static size_t
verify_request(uint8_t *out, size_t cap, uint32_t id, const struct trust_cert *c)
{
	struct tvs_request rq = { .type = TVS_CERT_VERIFY_REQ, .id = id };
	size_t n = 0;

	rq.device = (struct trust_bytes){ (const uint8_t *)"CP-8861-SEP001122334455", 23 };
	rq.cert = (struct trust_bytes){ c->der, c->der_len };
	if (tvs_request_build(&rq, out, cap, &n, NULL) != 0)
		return 0;
	return n;
}

static size_t
query_request(uint8_t *out, size_t cap, uint32_t id, const struct trust_cert *c)
{
	struct tvs_request rq = { .type = TVS_QUERY_CERT_REQ, .id = id };
	size_t n = 0;

	rq.subject = (struct trust_bytes){ (const uint8_t *)c->subject, strlen(c->subject) };
	rq.issuer = (struct trust_bytes){ (const uint8_t *)c->issuer, strlen(c->issuer) };
	rq.serial = (struct trust_bytes){ c->serial, c->serial_len };
	if (tvs_request_build(&rq, out, cap, &n, NULL) != 0)
		return 0;
	return n;
}

/* Send one request, parse the one response into rs (views into rx). */
static bool
conn_ask(struct conn *k, const uint8_t *rq, size_t len, struct trust_buf *rx,
	struct tvs_response *rs)
{
	size_t w;
	struct trust_err err = { 0 };

	rx->len = 0;
	if (SSL_write_ex(k->c, rq, len, &w) != 1 || !conn_read(k, rx, 1))
		return false;
	return tvs_response_parse(rx->data, rx->len, rs, &err) == 0;
}

/* ---- fixtures ---- */

static struct party tvs_id_party, tvs_id2_party, known, unknown;
static char dir[] = "/tmp/test_tvs_session.XXXXXX";
static char cert_path[256], key_path[256], cert2_path[256], key2_path[256];

static void
write_identity(const struct party *p, const char *cpath, const char *kpath)
{
	struct trust_err err = { 0 };
	struct trust_buf pem;

	if (trust_cert_pem(&p->cert, &pem) != 0
	    || trust_file_write_atomic(cpath, pem.data, pem.len, 0644, &err) != 0
	    || trust_key_save(kpath, p->key, &err) != 0) {
		printf("Bail out! cannot write the TVS identity: %s\n", err.msg);
		exit(1);
	}
	trust_buf_free(&pem);
}

static void
fixtures(void)
{
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	party_make(&tvs_id_party, 2048, "tvs.example.com", NULL);
	party_make(&tvs_id2_party, 2048, "tvs2.example.com", NULL);
	party_make(&known, 1024, "ucm.example.com", NULL);
	party_make(&unknown, 1024, "rogue.example.com", NULL);
	snprintf(cert_path, sizeof(cert_path), "%s/tvs.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/tvs.key", dir);
	snprintf(cert2_path, sizeof(cert2_path), "%s/tvs2.pem", dir);
	snprintf(key2_path, sizeof(key2_path), "%s/tvs2.key", dir);
	write_identity(&tvs_id_party, cert_path, key_path);
	write_identity(&tvs_id2_party, cert2_path, key2_path);

	tab.e[0].c = &known.cert;
	tab.e[0].roles[0] = TRUST_ROLE_SAST;
	tab.e[0].roles[1] = TRUST_ROLE_TFTP;
	tab.e[0].ttl = 3600;
	trust_issuer_serial_key(known.cert.issuer, strlen(known.cert.issuer), known.cert.serial,
		known.cert.serial_len, tab.e[0].isk);
	tab.n = 1;
}

static void
fixtures_free(void)
{
	unlink(cert_path);
	unlink(key_path);
	unlink(cert2_path);
	unlink(key2_path);
	rmdir(dir);
	party_free(&tvs_id_party);
	party_free(&tvs_id2_party);
	party_free(&known);
	party_free(&unknown);
}

static struct tvs_identity *ident, *ident2;
static struct tvs_ticket_keys *tkeys;

static struct tvs_engine *
engine(const struct tvs_tls_conf *conf, const struct tvs_identity *id,
	const struct tvs_offload *off)
{
	struct trust_err err = { 0 };
	struct tvs_tls *t = tvs_tls_new(conf, id, tkeys, &err);
	struct tvs_engine *e = t != NULL ? tvs_engine_new(t, &lookup, off, &err) : NULL;

	if (e == NULL) {
		printf("Bail out! engine: %s\n", err.msg);
		exit(1);
	}
	tvs_tls_put(t);
	return e;
}

static uint64_t
ctr(const struct tvs_engine *e, enum tvs_counter c)
{
	return tvs_engine_stats(e)->c[c];
}

/* ---- tests ---- */

static void
test_identity(void)
{
	struct trust_err err = { 0 };
	struct tvs_identity *again = tvs_identity_load(cert_path, key_path, &err);
	struct tvs_identity *bad = tvs_identity_load(cert_path, key2_path, &err);
	struct publication pub;
	struct tvs_identity *from_pub;

	ok(ident != NULL && ident2 != NULL && again != NULL, "identities load");
	ok(tvs_identity_offloadable(ident), "an RSA identity's key goes through the offload method");
	ok(tvs_identity_equal(ident, again), "the same files make an equal identity");
	ok(!tvs_identity_equal(ident, ident2), "a new certificate makes a different identity");
	ok(bad == NULL && strstr(err.msg, "tvs2.key") != NULL,
		"a key that does not match the certificate is refused, naming it: %s", err.msg);
	tvs_identity_free(again);
	tvs_identity_free(bad);
	memset(&pub, 0, sizeof(pub));
	snprintf(pub.tvs_cert_path, sizeof(pub.tvs_cert_path), "%s", cert2_path);
	snprintf(pub.tvs_key_path, sizeof(pub.tvs_key_path), "%s", key2_path);
	from_pub = tvs_identity_from_pub(&pub, &err);
	ok(from_pub != NULL && tvs_identity_equal(from_pub, ident2),
		"a publication's tvs/tvs.pem and tvs/tvs.key make the identity");
	tvs_identity_free(from_pub);
}

/* Handshake at one version and cipher; one verify request for cert. */
static void
check_version(int version, const char *ciphers, const char *want_cipher,
	enum tvs_counter vc, const char *what)
{
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(version, ciphers, false);
	struct trust_buf rx;
	struct tvs_response rs;
	uint8_t rq[4096];
	struct conn k;
	size_t n = verify_request(rq, sizeof(rq), 0x3e9, &known.cert);

	trust_buf_init(&rx);
	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "%s: handshake completes", what);
	is_int(tvs_session_version(k.s), version, "%s: version negotiated", what);
	if (want_cipher != NULL)
		is_str(SSL_get_cipher(k.c), want_cipher, "%s: cipher", what);
	is_int(ctr(e, vc), 1, "%s: counted under its version", what);
	is_int(ctr(e, TVS_C_handshakes_full), 1, "%s: one full handshake", what);
	ok(conn_ask(&k, rq, n, &rx, &rs), "%s: CERT_VERIFICATION answered", what);
	ok(rs.type == TVS_CERT_VERIFY_RES && rs.id == 0x3e9 && rs.status == TVS_STATUS_TRUSTED,
		"%s: known certificate: status 0, id echoed", what);
	ok(rs.roles.len == 2 && rs.roles.p[0] == TRUST_ROLE_SAST
		&& rs.roles.p[1] == TRUST_ROLE_TFTP && rs.has_ttl && rs.ttl == 3600,
		"%s: roles SAST+TFTP and TTL 3600", what);
	trust_buf_free(&rx);
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

static void
test_versions(void)
{
	check_version(TLS1_VERSION, "AES256-SHA:@SECLEVEL=0", "AES256-SHA", TVS_C_tls1_0,
		"TLS 1.0 AES256-SHA");
	check_version(TLS1_2_VERSION, NULL, NULL, TVS_C_tls1_2, "TLS 1.2");
	check_version(TLS1_3_VERSION, NULL, NULL, TVS_C_tls1_3, "TLS 1.3");
}

static void
test_minimum_version(void)
{
	struct tvs_tls_conf conf = { .min_version = TLS1_2_VERSION };
	struct tvs_engine *e = engine(&conf, ident, NULL);
	SSL_CTX *cc = client_ctx(TLS1_VERSION, "AES256-SHA:@SECLEVEL=0", false);
	struct conn k;

	conn_open(&k, cc, e, NULL);
	ok(!conn_handshake(&k), "minimum TLS 1.2: a TLS 1.0 phone is refused");
	ok(k.flags & TVS_SESS_ABORT, "the session aborts");
	is_int(ctr(e, TVS_C_handshake_failures), 1, "counted as a handshake failure");
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

static void
test_answers(void)
{
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(0, NULL, false);
	struct trust_buf rx;
	struct tvs_response rs, rs2;
	uint8_t rq[8192];
	struct conn k;
	size_t n, m, w;

	trust_buf_init(&rx);
	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "answers: handshake");
	n = verify_request(rq, sizeof(rq), 7, &unknown.cert);
	ok(conn_ask(&k, rq, n, &rx, &rs) && rs.status == TVS_STATUS_UNTRUSTED
		&& rs.roles.p == NULL && !rs.has_ttl, "unknown certificate: status 1 and nothing else");
	n = query_request(rq, sizeof(rq), 8, &known.cert);
	ok(conn_ask(&k, rq, n, &rx, &rs) && rs.type == TVS_QUERY_CERT_RES && rs.id == 8
		&& rs.status == TVS_STATUS_TRUSTED, "QUERY_CERT of a known certificate: status 0");
	ok(rs.cert.len == known.cert.der_len
		&& memcmp(rs.cert.p, known.cert.der, rs.cert.len) == 0,
		"QUERY_CERT returns the certificate");

	/* two requests in one write: two answers, in order */
	n = verify_request(rq, sizeof(rq), 100, &unknown.cert);
	m = verify_request(rq + n, sizeof(rq) - n, 101, &known.cert);
	rx.len = 0;
	ok(SSL_write_ex(k.c, rq, n + m, &w) == 1 && conn_read(&k, &rx, 2),
		"two requests on one connection: two answers");
	ok(tvs_frame(rx.data, rx.len, &n, NULL) == TVS_FRAME_DONE
		&& tvs_response_parse(rx.data, n, &rs, NULL) == 0
		&& tvs_response_parse(rx.data + n, rx.len - n, &rs2, NULL) == 0
		&& rs.id == 100 && rs.status == 1 && rs2.id == 101 && rs2.status == 0,
		"answered in order: id 100 untrusted, then id 101 trusted");
	is_int(ctr(e, TVS_C_req_verify), 3, "three verify requests counted");
	is_int(ctr(e, TVS_C_req_query), 1, "one query counted");
	is_int(ctr(e, TVS_C_trusted), 2, "two trusted answers");
	is_int(ctr(e, TVS_C_untrusted), 2, "two untrusted answers");

	/* client close_notify: graceful close, ours comes back */
	SSL_shutdown(k.c);
	pump(&k);
	ok(k.flags & TVS_SESS_CLOSE, "the peer's close_notify closes the session");
	is_int(ctr(e, TVS_C_closes), 1, "one close counted");
	is_int(ctr(e, TVS_C_aborts), 0, "no abort");
	ok(SSL_get_shutdown(k.c) & SSL_RECEIVED_SHUTDOWN || SSL_read_ex(k.c, rq, 1, &w) == 0,
		"our close_notify reached the client");
	trust_buf_free(&rx);
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

/* Every TLS byte in its own input call, and the request one byte per record. */
static void
test_trickle(void)
{
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(TLS1_2_VERSION, NULL, false);
	struct trust_buf rx;
	struct tvs_response rs;
	uint8_t rq[4096];
	struct conn k;
	size_t n = verify_request(rq, sizeof(rq), 42, &known.cert), w;
	bool sent = true;

	trust_buf_init(&rx);
	conn_open(&k, cc, e, NULL);
	k.chunk = 1;
	ok(conn_handshake(&k), "1-byte trickle: the handshake completes");
	for (size_t i = 0; i < n && sent; i++) {
		sent = SSL_write_ex(k.c, rq + i, 1, &w) == 1;
		pump(&k);
	}
	ok(sent && conn_read(&k, &rx, 1) && tvs_response_parse(rx.data, rx.len, &rs, NULL) == 0
		&& rs.id == 42 && rs.status == TVS_STATUS_TRUSTED,
		"a request sent one byte per record, each record one byte per call, is answered");
	ok(!(k.seen & (TVS_SESS_ABORT | TVS_SESS_CLOSE)), "the trickle never closed the session");
	is_int(ctr(e, TVS_C_malformed) + ctr(e, TVS_C_tls_errors), 0, "nothing counted as bad");
	trust_buf_free(&rx);
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

/* A client that sends 300 queries before reading: answers are held back
 * at TVS_SESS_OUTPUT_MAX and the rest follow as the output drains. */
static void
test_backlog(void)
{
	enum { N = 300 };
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(0, NULL, false);
	struct trust_buf tx, rx;
	struct conn k;
	uint8_t *buf = malloc(TVS_SESS_INPUT_MAX);
	size_t n, w, off = 0, need;
	unsigned f, rounds = 0, answers = 0;
	bool in_order = true;

	trust_buf_init(&tx);
	trust_buf_init(&rx);
	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "backlog: handshake");
	for (unsigned i = 0; i < N; i++) {
		trust_buf_reserve(&tx, 4096);
		tx.len += query_request(tx.data + tx.len, 4096, i, &known.cert);
	}
	SSL_write_ex(k.c, tx.data, tx.len, &w);
	n = (size_t)BIO_read(k.cwr, buf, TVS_SESS_INPUT_MAX);
	f = tvs_session_input(k.s, buf, n);
	ok((f & TVS_SESS_BACKLOG) && tvs_session_output_len(k.s) >= TVS_SESS_OUTPUT_MAX
		&& tvs_session_output_len(k.s) < TVS_SESS_OUTPUT_MAX + 2 * TVS_MSG_MAX,
		"%u queries at once: answers stop near TVS_SESS_OUTPUT_MAX (%zu bytes held)", N,
		tvs_session_output_len(k.s));
	while ((f & TVS_SESS_BACKLOG) && rounds++ < 1000) {
		while ((n = tvs_session_output(k.s, buf, TVS_SESS_INPUT_MAX)) > 0)
			BIO_write(k.crd, buf, (int)n);
		f = tvs_session_resume(k.s);
	}
	while ((n = tvs_session_output(k.s, buf, TVS_SESS_INPUT_MAX)) > 0)
		BIO_write(k.crd, buf, (int)n);
	while (SSL_read_ex(k.c, buf, TVS_SESS_INPUT_MAX, &n) == 1)
		trust_buf_put(&rx, buf, n);
	while (tvs_frame(rx.data + off, rx.len - off, &need, NULL) == TVS_FRAME_DONE) {
		struct tvs_response rs;

		in_order &= tvs_response_parse(rx.data + off, need, &rs, NULL) == 0
			&& rs.id == answers && rs.status == TVS_STATUS_TRUSTED;
		off += need;
		answers++;
	}
	ok(rounds >= 1 && !(f & (TVS_SESS_BACKLOG | TVS_SESS_ABORT)),
		"resuming after each drain clears the backlog (%u rounds)", rounds);
	is_int(answers, N, "every query is answered");
	ok(in_order, "in order, all trusted");
	free(buf);
	trust_buf_free(&tx);
	trust_buf_free(&rx);
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

/* After the handshake, the client sends plaintext bytes; expect counter c. */
static void
check_bad_request(const uint8_t *msg, size_t len, enum tvs_counter c, const char *what)
{
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(0, NULL, false);
	struct conn k;
	size_t w;

	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "%s: handshake", what);
	SSL_write_ex(k.c, msg, len, &w);
	pump(&k);
	ok(k.flags & TVS_SESS_ABORT, "%s: the session aborts (%s)", what,
		tvs_session_error(k.s));
	is_int(ctr(e, c), 1, "%s: counted as %s", what, tvs_counter_names[c]);
	is_int(ctr(e, TVS_C_aborts), 1, "%s: one abort", what);
	ok(tvs_session_input(k.s, (const uint8_t *)"x", 1) & TVS_SESS_ABORT
		&& ctr(e, TVS_C_aborts) == 1, "%s: later input changes nothing", what);
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

static void
test_malformed(void)
{
	/* header area 5 bytes; its element says 100 */
	static const uint8_t elem_past[] = { 0x57, 1, 1, 0, 0, 0, 0, 1, 0, 5,
		TVS_TAG_CERT, 0, 100, 0x30, 0x82 };
	static const uint8_t http[] = "GET / HTTP/1.0\r\n\r\n";
	static const uint8_t response[] = { 0x57, 1, TVS_CERT_VERIFY_RES, 0, 0, 0, 0, 1, 0, 4,
		TVS_TAG_STATUS, 0, 1, 0 };

	check_bad_request(http, sizeof(http) - 1, TVS_C_malformed, "garbage after the handshake");
	check_bad_request(elem_past, sizeof(elem_past), TVS_C_malformed,
		"an element past the message");
	check_bad_request(response, sizeof(response), TVS_C_malformed, "a response sent to us");
}

static void
test_tls_garbage(void)
{
	static const uint8_t junk[] = "\x16\x03\x01\x00\x05hello, this is not TLS at all";
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(0, NULL, false);
	struct conn k;
	unsigned f;

	conn_open(&k, cc, e, NULL);
	f = tvs_session_input(k.s, junk, sizeof(junk) - 1);
	ok(f & TVS_SESS_ABORT, "TLS garbage before the handshake aborts (%s)",
		tvs_session_error(k.s));
	is_int(ctr(e, TVS_C_handshake_failures), 1, "counted as a handshake failure");
	ok(f & TVS_SESS_OUTPUT, "an alert is queued for the peer");
	conn_close(&k);

	/* garbage records on an established connection */
	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "TLS garbage after the handshake: handshake");
	f = tvs_session_input(k.s, (const uint8_t *)"\x17\x03\x03\x00\x20" "0123456789abcdef"
		"0123456789abcdef", 37);
	ok(f & TVS_SESS_ABORT, "a record that does not decrypt aborts (%s)",
		tvs_session_error(k.s));
	is_int(ctr(e, TVS_C_tls_errors), 1, "counted as a TLS error");
	is_int(ctr(e, TVS_C_aborts), 2, "two aborts in all");
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

static void
test_truncated(void)
{
	/* area length 100, only 10 element bytes arrive */
	static const uint8_t part[] = { 0x57, 1, 1, 0, 0, 0, 0, 9, 0, 100,
		TVS_TAG_DEVICE, 0, 24, 1, 'C', 'P', '-', '8', '8', '6' };
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(0, NULL, false);
	struct conn k;
	size_t w;

	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "length past the end: handshake");
	SSL_write_ex(k.c, part, sizeof(part), &w);
	pump(&k);
	ok(k.flags == 0, "a length past what arrived waits for more");
	ok(tvs_session_eof(k.s) & TVS_SESS_CLOSE, "then the peer's FIN closes the session");
	is_int(ctr(e, TVS_C_truncated), 1, "counted as truncated");
	conn_close(&k);

	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "close_notify inside a request: handshake");
	SSL_write_ex(k.c, part, sizeof(part), &w);
	SSL_shutdown(k.c);
	pump(&k);
	ok(k.flags & TVS_SESS_CLOSE, "close_notify inside a request closes");
	is_int(ctr(e, TVS_C_truncated), 2, "counted as truncated");

	ok(tvs_session_close(k.s) & TVS_SESS_CLOSE, "closing twice is harmless");
	is_int(ctr(e, TVS_C_closes), 2, "each session closed once");
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

/* A full handshake on e; returns the client's session (for resumption). */
static SSL_SESSION *
get_session(SSL_CTX *cc, struct tvs_engine *e, SSL_SESSION *resume, bool *reused)
{
	struct trust_buf rx;
	struct tvs_response rs;
	uint8_t rq[4096];
	struct conn k;
	SSL_SESSION *got = NULL;
	size_t n = verify_request(rq, sizeof(rq), 1, &known.cert);

	trust_buf_init(&rx);
	conn_open(&k, cc, e, resume);
	/* a request and its answer also carry the TLS 1.3 ticket */
	if (conn_handshake(&k) && conn_ask(&k, rq, n, &rx, &rs)) {
		got = SSL_get1_session(k.c);
		*reused = SSL_session_reused(k.c) == 1;
	}
	/* a clean close, or OpenSSL marks the client's session not resumable */
	SSL_shutdown(k.c);
	pump(&k);
	trust_buf_free(&rx);
	conn_close(&k);
	return got;
}

/* A first connection on from, then one on to with the client's session:
 * 1 resumed, 0 full handshake, -1 something failed. */
static int
resumes(SSL_CTX *cc, struct tvs_engine *from, struct tvs_engine *to)
{
	bool first = true, again = false;
	SSL_SESSION *s1 = get_session(cc, from, NULL, &first);
	SSL_SESSION *s2 = s1 != NULL && !first ? get_session(cc, to, s1, &again) : NULL;

	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	return s2 == NULL ? -1 : again;
}

static void
test_resumption(void)
{
	struct tvs_engine *a = engine(NULL, ident, NULL), *b = engine(NULL, ident, NULL);
	SSL_CTX *c13 = client_ctx(TLS1_3_VERSION, NULL, false);
	SSL_CTX *c12 = client_ctx(TLS1_2_VERSION, NULL, false);
	SSL_CTX *cid = client_ctx(TLS1_2_VERSION, NULL, true);

	is_int(resumes(c13, a, b), 1,
		"TLS 1.3: a ticket from lcore A resumes on lcore B (shared ticket keys)");
	is_int(ctr(b, TVS_C_resumed_ticket), 1, "lcore B counts a ticket resumption");
	is_int(ctr(a, TVS_C_handshakes_full), 1, "lcore A counts the full handshake");
	is_int(resumes(c12, a, b), 1, "TLS 1.2: a ticket from lcore A resumes on lcore B");
	is_int(ctr(b, TVS_C_resumed_ticket), 2, "counted as a ticket resumption");
	is_int(resumes(cid, a, a), 1, "TLS 1.2 without tickets: the session ID resumes on lcore A");
	is_int(ctr(a, TVS_C_resumed_session_id), 1, "counted as a session-ID resumption");
	is_int(resumes(cid, a, b), 0,
		"a session ID from lcore A on lcore B: full handshake (per-lcore cache)");
	SSL_CTX_free(c13);
	SSL_CTX_free(c12);
	SSL_CTX_free(cid);
	tvs_engine_free(a);
	tvs_engine_free(b);
}

static void
test_rotation(void)
{
	struct tvs_engine *a = engine(NULL, ident, NULL), *b = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(TLS1_2_VERSION, NULL, false);
	struct trust_err err = { 0 };
	SSL_SESSION *t1, *t2, *t3;
	bool reused;
	uint64_t serial = tvs_ticket_keys_get(tkeys)->serial;

	t1 = get_session(cc, a, NULL, &reused);
	t2 = get_session(cc, a, NULL, &reused);
	tvs_keyset_free(tvs_ticket_keys_rotate(tkeys, &err));
	is_int(tvs_ticket_keys_get(tkeys)->serial, serial + 1, "rotation publishes a new keyset");
	t3 = get_session(cc, b, t1, &reused);
	ok(t3 != NULL && reused, "after one rotation, a ticket of the previous key resumes");
	is_int(ctr(b, TVS_C_resumed_ticket), 1, "counted as a ticket resumption");
	SSL_SESSION_free(t3);
	tvs_keyset_free(tvs_ticket_keys_rotate(tkeys, &err));
	t3 = get_session(cc, b, t2, &reused);
	ok(t3 != NULL && !reused, "after two rotations, the same key's ticket: full handshake");
	is_int(ctr(b, TVS_C_handshakes_full), 1, "counted as a full handshake");
	SSL_SESSION_free(t1);
	SSL_SESSION_free(t2);
	SSL_SESSION_free(t3);
	SSL_CTX_free(cc);
	tvs_engine_free(a);
	tvs_engine_free(b);
}

/* A publication swap with a new TVS certificate: new connections get it. */
static void
test_identity_swap(void)
{
	struct tvs_engine *e = engine(NULL, ident, NULL);
	SSL_CTX *cc = client_ctx(0, NULL, false);
	struct trust_err err = { 0 };
	struct tvs_tls *t2 = tvs_tls_new(NULL, ident2, tkeys, &err);
	struct trust_buf rx;
	struct tvs_response rs;
	uint8_t rq[4096];
	struct conn old, k;
	size_t n = verify_request(rq, sizeof(rq), 5, &known.cert);
	X509 *peer;

	trust_buf_init(&rx);
	conn_open(&old, cc, e, NULL);
	ok(conn_handshake(&old), "swap: a connection before the swap");
	tvs_engine_set_tls(e, t2);
	tvs_tls_put(t2);
	conn_open(&k, cc, e, NULL);
	ok(conn_handshake(&k), "swap: a connection after the swap");
	peer = SSL_get1_peer_certificate(k.c);
	ok(peer != NULL && X509_cmp(peer, tvs_id2_party.cert.x509) == 0,
		"the new connection sees the new TVS certificate");
	X509_free(peer);
	peer = SSL_get1_peer_certificate(old.c);
	ok(peer != NULL && X509_cmp(peer, tvs_id_party.cert.x509) == 0,
		"the old one kept the old certificate");
	X509_free(peer);
	ok(conn_ask(&old, rq, n, &rx, &rs) && rs.status == TVS_STATUS_TRUSTED,
		"and is still answered");
	trust_buf_free(&rx);
	conn_close(&old);
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

static void
check_offload(struct oq *q, int version, const char *ciphers, const char *what)
{
	struct tvs_offload off = { oq_submit, oq_poll, q };
	struct tvs_engine *e = engine(NULL, ident, &off);
	SSL_CTX *cc = client_ctx(version, ciphers, false);
	struct trust_buf rx;
	struct tvs_response rs;
	uint8_t rq[4096], buf[16384];
	struct conn k;
	size_t n = verify_request(rq, sizeof(rq), 77, &known.cert);
	unsigned f = 0;

	trust_buf_init(&rx);
	oq_hold(q, true);
	conn_open(&k, cc, e, NULL);
	/* feed client flights until the session parks on its private-key job */
	for (int i = 0; i < 10 && !(f & TVS_SESS_PENDING); i++) {
		size_t m;

		if (SSL_do_handshake(k.c) <= 0)
			ERR_clear_error();
		m = (size_t)BIO_read(k.cwr, buf, sizeof(buf));
		if (m > 0 && m <= sizeof(buf))
			f = tvs_session_input(k.s, buf, m);
		while ((m = tvs_session_output(k.s, buf, sizeof(buf))) > 0)
			BIO_write(k.crd, buf, (int)m);
	}
	ok(f & TVS_SESS_PENDING, "%s: the session reports pending while the job is out", what);
	is_int(tvs_engine_pending(e), 1, "%s: one job out", what);
	ok(tvs_session_resume(k.s) & TVS_SESS_PENDING, "%s: resuming early changes nothing",
		what);
	k.flags = f;
	oq_hold(q, false);
	ok(conn_handshake(&k), "%s: the handshake completes once the job is back", what);
	ok(ctr(e, TVS_C_offloaded) == 1 && ctr(e, TVS_C_async_pauses) >= 1
		&& ctr(e, TVS_C_offload_inline) == 0, "%s: one operation offloaded", what);
	ok(conn_ask(&k, rq, n, &rx, &rs) && rs.id == 77 && rs.status == TVS_STATUS_TRUSTED,
		"%s: and the connection answers", what);
	trust_buf_free(&rx);
	conn_close(&k);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
}

static void
test_offload(void)
{
	struct oq q;
	struct tvs_offload off = { oq_submit, oq_poll, &q };
	struct tvs_engine *e;
	SSL_CTX *cc;
	struct conn k;
	struct tvs_session *ready[4];
	uint64_t t0;

	oq_start(&q);
	check_offload(&q, TLS1_3_VERSION, NULL, "offload TLS 1.3 (CertificateVerify)");
	check_offload(&q, TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384",
		"offload TLS 1.2 ECDHE-RSA (ServerKeyExchange)");
	check_offload(&q, TLS1_VERSION, "AES256-SHA:@SECLEVEL=0",
		"offload TLS 1.0 AES256-SHA (RSA key exchange)");

	/* a connection that dies while its job is out is freed at poll */
	e = engine(NULL, ident, &off);
	cc = client_ctx(TLS1_3_VERSION, NULL, false);
	oq_hold(&q, true);
	conn_open(&k, cc, e, NULL);
	k.no_wait = true;
	pump(&k);
	ok(k.flags & TVS_SESS_PENDING, "zombie: session pending");
	ok(tvs_session_eof(k.s) & TVS_SESS_PENDING, "zombie: FIN while pending keeps it pending");
	conn_close(&k);
	oq_hold(&q, false);
	for (t0 = now_ns(); tvs_engine_pending(e) > 0 && now_ns() - t0 < POLL_WAIT_NS;)
		if (tvs_engine_poll(e, ready, 4) == 0)
			usleep(100);
	is_int(tvs_engine_pending(e), 0, "zombie: its job came back and it was freed");

	/* a peer that floods while the job is out */
	oq_hold(&q, true);
	conn_open(&k, cc, e, NULL);
	k.no_wait = true;
	pump(&k);
	{
		static uint8_t flood[TVS_SESS_INPUT_MAX + 1];
		unsigned f = tvs_session_input(k.s, flood, sizeof(flood));

		ok((f & TVS_SESS_ABORT) && (f & TVS_SESS_PENDING),
			"a flood past TVS_SESS_INPUT_MAX aborts (%s)", tvs_session_error(k.s));
		is_int(ctr(e, TVS_C_overflow), 1, "counted as overflow");
	}
	conn_close(&k);
	oq_hold(&q, false);
	for (t0 = now_ns(); tvs_engine_pending(e) > 0 && now_ns() - t0 < POLL_WAIT_NS;)
		if (tvs_engine_poll(e, ready, 4) == 0)
			usleep(100);
	is_int(tvs_engine_pending(e), 0, "and its job is collected");
	SSL_CTX_free(cc);
	tvs_engine_free(e);
	oq_stop(&q);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median over rounds of the longest single session call of a handshake. */
static uint64_t
block_ns(const struct tvs_offload *off, int version, const char *ciphers, unsigned rounds,
	bool *all_ok)
{
	struct tvs_engine *e = engine(NULL, ident, off);
	SSL_CTX *cc = client_ctx(version, ciphers, false);
	uint64_t v[32];
	struct conn k;

	*all_ok = true;
	for (unsigned i = 0; i < rounds; i++) {
		conn_open(&k, cc, e, NULL);
		*all_ok &= conn_handshake(&k);
		v[i] = k.max_step_ns;
		conn_close(&k);
	}
	qsort(v, rounds, sizeof(v[0]), cmp_u64);
	SSL_CTX_free(cc);
	tvs_engine_free(e);
	return v[rounds / 2];
}

static void
test_measure(void)
{
	static const struct { int v; const char *ciphers, *name; } m[] = {
		{ TLS1_3_VERSION, NULL, "TLS 1.3" },
		{ TLS1_VERSION, "AES256-SHA:@SECLEVEL=0", "TLS 1.0 AES256-SHA" },
	};
	struct oq q;
	struct tvs_offload off = { oq_submit, oq_poll, &q };

	oq_start(&q);
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		bool ok1, ok2;
		uint64_t inl = block_ns(NULL, m[i].v, m[i].ciphers, 15, &ok1);
		uint64_t ofl = block_ns(&off, m[i].v, m[i].ciphers, 15, &ok2);

		ok(ok1 && ok2, "measure %s: every handshake completed", m[i].name);
		diag("RSA-2048 %s full handshake, longest session call (CPU time, median of 15):"
			" inline %.1f us, offloaded %.1f us", m[i].name, inl / 1e3, ofl / 1e3);
	}
	oq_stop(&q);
}

int
main(void)
{
	struct trust_err err = { 0 };

	fixtures();
	ASYNC_init_thread(0, 8);	/* what each worker lcore does */
	ident = tvs_identity_load(cert_path, key_path, &err);
	ident2 = tvs_identity_load(cert2_path, key2_path, &err);
	tkeys = tvs_ticket_keys_new(&err);
	if (ident == NULL || ident2 == NULL || tkeys == NULL) {
		printf("Bail out! setup: %s\n", err.msg);
		return 1;
	}
	test_identity();
	test_versions();
	test_minimum_version();
	test_answers();
	test_trickle();
	test_backlog();
	test_malformed();
	test_tls_garbage();
	test_truncated();
	test_resumption();
	test_rotation();
	test_identity_swap();
	test_offload();
	test_measure();
	tvs_identity_free(ident);
	tvs_identity_free(ident2);
	tvs_ticket_keys_free(tkeys);
	fixtures_free();
	ASYNC_cleanup_thread();
	return done_testing();
}
