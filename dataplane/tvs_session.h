/*
 * The TVS session layer of a worker lcore: TLS (OpenSSL over memory BIOs)
 * plus the TVS codec of trust/tvs.h, fed with the in-order byte stream of
 * one TCP connection and handing back the ciphertext to send. It knows
 * nothing of DPDK or of TCP: the lcore glue moves bytes between this layer
 * and dataplane/tcp.h, and backs the two abstract services it needs (the
 * certificate lookup and the private-key offload queue) with its per-core
 * cache and an rte_ring to a crypto lcore.
 *
 * Objects, and who touches them:
 *
 *   tvs_ticket_keys  one per appliance. The main lcore rotates it on a
 *                    timer; every lcore's OpenSSL ticket callback reads it
 *                    without a lock (see "Ticket keys" below).
 *   tvs_identity     the TVS certificate chain and private key of one
 *                    publication, loaded once by the main lcore.
 *   tvs_tls          one SSL_CTX: versions, ciphers, identity, session-ID
 *                    cache, ticket callback. One per lcore, built by the
 *                    main lcore; reference counted because open sessions
 *                    keep the one they started with.
 *   tvs_engine       per lcore: the tvs_tls for new connections, the
 *                    lookup, the offload queue, scratch and the counters.
 *                    Only its lcore uses it.
 *
 * A publication swap: the main lcore loads the new identity; when it is
 * not tvs_identity_equal to the current one, it builds one tvs_tls per
 * lcore and hands each over with the publication (RCU); the worker calls
 * tvs_engine_set_tls. Open sessions finish on the SSL_CTX they started
 * with; the last of them to end frees it, on the worker.
 *   tvs_session      per connection, owned by its engine's lcore.
 *
 * Resumption. TLS 1.3 resumes with tickets only; TLS 1.0-1.2 with tickets
 * when the phone offers one, else with a session ID. Tickets are sealed
 * with the shared keys, so a phone may come back on any lcore (RSS hashes
 * the new connection's source port). Session IDs live in the SSL_CTX's
 * internal cache of one lcore: a phone that resumes by session ID on
 * another lcore gets a full handshake (counted as such). A shared session
 * cache would need a lock or a cross-lcore hash on every handshake; tickets
 * make it unnecessary.
 *
 * Handshake cost (issue #4). A full handshake costs one RSA private-key
 * operation on the server: the signature of ServerKeyExchange (ECDHE-RSA)
 * or CertificateVerify (TLS 1.3), or the decryption of the premaster
 * secret (RSA key exchange, the AES256-SHA of TLS 1.0 phones). For
 * RSA-2048 that is about a millisecond, during which a worker would not
 * poll its queues. With an offload queue, the engine runs handshakes as
 * OpenSSL ASYNC jobs (SSL_MODE_ASYNC) and the identity's key carries an
 * RSA_METHOD whose private operations, when they run inside such a job,
 * copy their input into a tvs_pkey_job, submit it, and pause the job
 * (ASYNC_pause_job). The session reports TVS_SESS_PENDING, the worker
 * goes back to its packets, and when tvs_engine_poll returns the session
 * the caller resumes it. See tvs_offload.c for why an RSA_METHOD on the
 * provider's own RSA object is the route that works on OpenSSL 3.0 (a
 * "foreign" legacy key cannot do TLS RSA key exchange there). EC keys are
 * not offloaded (their signatures cost tens of microseconds).
 *
 * What the offload buys, measured by tests/c/test_tvs_session.c (thread
 * CPU time of the longest single session call of a full handshake, RSA-2048,
 * median of 15, -O2, 2-vCPU VM where one RSA-2048 private operation takes
 * ~235-290 us): TLS 1.3 405 us inline, 150 us offloaded; TLS 1.0
 * AES256-SHA 332 us inline, 103 us offloaded. What is left is OpenSSL's own
 * handshake work around the key operation (key schedule, Finished, ticket
 * sealing, allocations), about 100 us per step. To bound that too, the
 * glue should budget handshake steps per loop turn: when a burst has used
 * its budget, keep the TCP bytes of connections that are not
 * tvs_session_established() for the next turn.
 *
 * Each worker thread should call ASYNC_init_thread(max, init) once, so the
 * ASYNC jobs (one per handshake in progress, with a 32 KiB stack each) come
 * from a preallocated pool instead of malloc on the first use.
 */
#ifndef DP_TVS_SESSION_H
#define DP_TVS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/rsa.h>

#include "publication.h"
#include "tvs.h"

#define TVS_DEFAULT_CIPHERS	"DEFAULT:@SECLEVEL=0"
#define TVS_DEFAULT_SESSION_TIMEOUT 7200	/* s, session IDs and tickets */
#define TVS_DEFAULT_SESSION_CACHE 20000		/* session IDs per lcore */
#define TVS_SESS_INPUT_MAX	(256u * 1024)	/* ciphertext buffered, not yet read */
#define TVS_SESS_OUTPUT_MAX	(2u * TVS_MSG_MAX) /* answers held before we stop reading */
#define TVS_PKEY_MAX		1024		/* RSA-8192 */

/*
 * Ticket keys. A keyset is immutable once published: the key that seals
 * new tickets and the one before it, which still opens old tickets (a
 * ticket opened with it is renewed under the current key). Readers take
 * the keyset pointer with tvs_ticket_keys_get (an acquire load) inside
 * their read-side critical section and keep it no longer than one call of
 * the OpenSSL callback, which copies the key bytes into the cipher and MAC
 * contexts. The writer (one thread: the main lcore) calls rotate, which
 * publishes the new keyset with a release store and hands back the retired
 * one; the caller frees it with tvs_keyset_free once every reader has
 * passed a quiescent state (rte_rcu_qsbr_synchronize in tvsd, immediately
 * in single-threaded tests). With rotation period T, a ticket resumes for
 * at least T and at most 2T after it was issued: two rotations retire its
 * key. The session timeout should not exceed T.
 */
#define TVS_TICKET_NAME_LEN 16

struct tvs_ticket_key {
	uint8_t name[TVS_TICKET_NAME_LEN];
	uint8_t aes[32];		/* AES-256-CBC */
	uint8_t hmac[32];		/* HMAC-SHA256 */
};

struct tvs_keyset {
	struct tvs_ticket_key cur;
	struct tvs_ticket_key prev;
	bool has_prev;
	uint64_t serial;		/* rotations so far */
};

struct tvs_ticket_keys;

struct tvs_ticket_keys *tvs_ticket_keys_new(struct trust_err *err);
/* Writer only. NULL (and err) when no randomness: the old keys stay. */
struct tvs_keyset *tvs_ticket_keys_rotate(struct tvs_ticket_keys *tk,
	struct trust_err *err);
const struct tvs_keyset *tvs_ticket_keys_get(const struct tvs_ticket_keys *tk);
void tvs_keyset_free(struct tvs_keyset *ks);		/* wipes */
void tvs_ticket_keys_free(struct tvs_ticket_keys *tk);	/* no reader left */

/*
 * Identity: the TVS certificate chain and key of a publication. The key
 * is loaded so that its RSA private operations can be offloaded;
 * tvs_identity_offloadable says whether that worked (an RSA key) or not
 * (EC: signed inline). fingerprint is SHA-256 over the chain's DER, so
 * the main lcore can tell whether a publication swap brings a new TVS
 * certificate and the tvs_tls objects must be rebuilt.
 */
struct tvs_identity;

struct tvs_identity *tvs_identity_load(const char *cert_path, const char *key_path,
	struct trust_err *err);
struct tvs_identity *tvs_identity_from_pub(const struct publication *p,
	struct trust_err *err);
bool tvs_identity_equal(const struct tvs_identity *a, const struct tvs_identity *b);
bool tvs_identity_offloadable(const struct tvs_identity *id);
/* SHA-256 over the chain's DER (the leaf's fingerprint for a chain of one). */
const uint8_t *tvs_identity_fingerprint(const struct tvs_identity *id);
void tvs_identity_free(struct tvs_identity *id);

/* TLS settings (FORMATS §8.11); zero fields take the defaults. */
struct tvs_tls_conf {
	int min_version;		/* 0: TLS1_VERSION */
	int max_version;		/* 0: TLS1_3_VERSION */
	const char *ciphers;		/* TLS <= 1.2; NULL: TVS_DEFAULT_CIPHERS */
	const char *ciphersuites;	/* TLS 1.3; NULL: OpenSSL's */
	unsigned session_timeout;	/* s; 0: TVS_DEFAULT_SESSION_TIMEOUT */
	unsigned session_cache;		/* 0: TVS_DEFAULT_SESSION_CACHE */
};

struct tvs_tls;

/* tk may be NULL (no tickets: session IDs only) and must outlive the
 * tvs_tls. id's certificate and key are referenced by the SSL_CTX, so
 * id itself may be freed once the contexts are built. */
struct tvs_tls *tvs_tls_new(const struct tvs_tls_conf *conf, const struct tvs_identity *id,
	struct tvs_ticket_keys *tk, struct trust_err *err);
void tvs_tls_ref(struct tvs_tls *t);
void tvs_tls_put(struct tvs_tls *t);	/* frees at the last reference */

/*
 * One private-key operation, as a crypto lcore sees it. The worker fills
 * it and submits it; the crypto side calls tvs_pkey_job_run, which
 * computes the raw RSA operation (padding is done by OpenSSL before and
 * after) and then sets done with a release store; the job comes back to
 * the worker through the queue's poll. The job belongs to a session: it
 * must come back even when the connection died meanwhile.
 */
enum tvs_pkey_op { TVS_PKEY_SIGN = 1, TVS_PKEY_DECRYPT = 2 };

struct tvs_pkey_job {
	enum tvs_pkey_op op;
	int padding;
	RSA *rsa;			/* the identity's: reference held by the SSL_CTX */
	int inlen;
	uint8_t in[TVS_PKEY_MAX];
	int outlen;			/* result: bytes, or -1 */
	uint8_t out[TVS_PKEY_MAX];
	uint64_t submit_ns;		/* CLOCK_MONOTONIC, for latency counters */
	int done;			/* 1 once out/outlen are written */
	void *owner;			/* the session */
};

void tvs_pkey_job_run(struct tvs_pkey_job *job);	/* thread-safe */

/*
 * The offload queue: submit hands a job over (0) or refuses it (-1, queue
 * full: the operation then runs inline, counted in offload_inline); poll
 * returns up to max finished jobs. Both are called by the worker only.
 */
struct tvs_offload {
	int (*submit)(void *ctx, struct tvs_pkey_job *job);
	unsigned (*poll)(void *ctx, struct tvs_pkey_job **jobs, unsigned max);
	void *ctx;
};

/*
 * Counters of one engine; the names are the telemetry keys. Each session
 * ends once, in closes (close_notify, FIN, ours) or aborts; the reason of
 * an abort is counted too (handshake_failures, malformed TVS messages,
 * tls_errors after the handshake, overflow, internal_errors). truncated:
 * the peer left inside a request. offloaded jobs came back after
 * offload_ns in all (divide for the mean); offload_inline: the queue was
 * full or memory short, the operation ran on the worker.
 */
#define TVS_COUNTERS(X) \
	X(sessions) X(handshakes_full) X(resumed_ticket) X(resumed_session_id) \
	X(handshake_failures) X(tls1_0) X(tls1_1) X(tls1_2) X(tls1_3) \
	X(req_verify) X(req_query) X(trusted) X(untrusted) \
	X(malformed) X(tls_errors) X(truncated) X(overflow) X(internal_errors) \
	X(closes) X(aborts) X(async_pauses) X(offloaded) X(offload_inline) \
	X(offload_ns)

enum tvs_counter {
#define TVS_ENUM(n) TVS_C_ ## n,
	TVS_COUNTERS(TVS_ENUM)
#undef TVS_ENUM
	TVS_C_MAX
};

extern const char *const tvs_counter_names[TVS_C_MAX];

struct tvs_stats {
	uint64_t c[TVS_C_MAX];
};

struct tvs_engine;
struct tvs_session;

/* tls is referenced; lk is copied; off may be NULL (handshakes inline). */
struct tvs_engine *tvs_engine_new(struct tvs_tls *tls, const struct tvs_lookup *lk,
	const struct tvs_offload *off, struct trust_err *err);
/* New connections use tls from now on; open ones keep theirs. */
void tvs_engine_set_tls(struct tvs_engine *e, struct tvs_tls *tls);
void tvs_engine_set_lookup(struct tvs_engine *e, const struct tvs_lookup *lk);
/*
 * Collect finished private-key jobs. Returns up to max sessions that can
 * go on: call tvs_session_resume on each. Sessions freed while their job
 * was out are finished and freed here, not returned.
 */
unsigned tvs_engine_poll(struct tvs_engine *e, struct tvs_session **ready, unsigned max);
unsigned tvs_engine_pending(const struct tvs_engine *e);	/* jobs out */
const struct tvs_stats *tvs_engine_stats(const struct tvs_engine *e);
/* Every session freed and tvs_engine_pending() == 0 first. */
void tvs_engine_free(struct tvs_engine *e);

/*
 * What a session call leaves behind, as bits; 0 means "waiting for the
 * peer". After every call, send what tvs_session_output hands out, then:
 *   PENDING  a private-key job is out: wait for tvs_engine_poll;
 *   BACKLOG  requests wait behind TVS_SESS_OUTPUT_MAX bytes of unsent
 *            answers: call tvs_session_resume once they are sent;
 *   CLOSE    the TVS conversation is over (close_notify queued when the
 *            TLS session was up): send the output, then FIN;
 *   ABORT    protocol error, counted: send the output (an alert) if the
 *            connection still can, then close. Reported once; later calls
 *            return ABORT or CLOSE again without counting.
 */
enum {
	TVS_SESS_OUTPUT = 1 << 0,
	TVS_SESS_PENDING = 1 << 1,
	TVS_SESS_BACKLOG = 1 << 2,
	TVS_SESS_CLOSE = 1 << 3,
	TVS_SESS_ABORT = 1 << 4,
};

/* NULL when out of memory (counted in internal_errors). */
struct tvs_session *tvs_session_new(struct tvs_engine *e, void *cookie);
/* Ciphertext from TCP, in order. */
unsigned tvs_session_input(struct tvs_session *s, const uint8_t *p, size_t len);
/*
 * Ciphertext from TCP, buffered only: nothing runs until the next
 * tvs_session_resume. For the glue's handshake budget: bytes of a
 * handshake that must wait for the next loop turn. Returns the flags
 * (ABORT when the input buffer overflows).
 */
unsigned tvs_session_push(struct tvs_session *s, const uint8_t *p, size_t len);
/* Go on after PENDING or BACKLOG. */
unsigned tvs_session_resume(struct tvs_session *s);
/* Copies up to cap bytes of ciphertext to send; returns how many. */
size_t tvs_session_output(struct tvs_session *s, uint8_t *buf, size_t cap);
size_t tvs_session_output_len(const struct tvs_session *s);
/*
 * The output in place, without copying: peek returns how many bytes p
 * points at (valid until the next call on s); consume drops the first n
 * of them once the transport took them.
 */
size_t tvs_session_output_peek(struct tvs_session *s, const uint8_t **p);
void tvs_session_output_consume(struct tvs_session *s, size_t n);
/* The peer sent FIN (or RST): an unfinished request is counted. */
unsigned tvs_session_eof(struct tvs_session *s);
/* We close (idle timeout, shutdown): queues close_notify if TLS is up. */
unsigned tvs_session_close(struct tvs_session *s);
void tvs_session_free(struct tvs_session *s);

void *tvs_session_cookie(const struct tvs_session *s);
/* Why the session aborted or closed, one line; "" while it is fine. */
const char *tvs_session_error(const struct tvs_session *s);
bool tvs_session_established(const struct tvs_session *s);
/*
 * The peer owes us bytes: the handshake is not done, or a request has
 * started and is not complete. The glue bounds how long that may last.
 */
bool tvs_session_waiting(const struct tvs_session *s);
int tvs_session_version(const struct tvs_session *s);	/* TLS1_x_VERSION, 0 */
bool tvs_session_resumed(const struct tvs_session *s);

#endif
