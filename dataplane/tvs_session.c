/*
 * One TVS connection: TLS over two memory BIOs, the TVS stream framing on
 * the plaintext, answers in order (FORMATS §8.10), and the hand-off of
 * handshake private-key operations to the offload queue (tvs_session.h).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tvs_priv.h"

#define TVS_READ_CHUNK 16384		/* one TLS record of plaintext */
#define TVS_POLL_BURST 32

const char *const tvs_counter_names[TVS_C_MAX] = {
#define TVS_NAME(n) #n,
	TVS_COUNTERS(TVS_NAME)
#undef TVS_NAME
};

struct tvs_engine {
	struct tvs_tls *tls;
	struct tvs_lookup lk;
	struct tvs_offload off;
	bool has_off;
	unsigned pending;		/* jobs out */
	struct tvs_stats st;
	uint8_t scratch[TVS_MSG_MAX];	/* one answer */
	uint8_t rbuf[TVS_READ_CHUNK];	/* one record of plaintext */
};

enum tvs_state { TVS_HANDSHAKE, TVS_OPEN, TVS_CLOSED, TVS_ABORTED };

struct tvs_session {
	struct tvs_engine *e;
	struct tvs_tls *tls;		/* the one it started with */
	SSL *ssl;
	BIO *rbio, *wbio;		/* owned by ssl */
	void *cookie;
	enum tvs_state state;
	bool pending;			/* job out at the offload queue */
	bool zombie;			/* freed while pending */
	bool backlog;
	bool ticket_opened;		/* the ticket callback found its key */
	bool established;		/* the handshake completed */
	struct tvs_pkey_job *job;	/* while handshaking with offload */
	struct trust_buf in;		/* plaintext not yet answered */
	char why[200];
};

/* The session whose SSL call is running on this thread: the RSA_METHOD
 * finds it here when it is entered from inside the handshake's job. */
static __thread struct tvs_session *tvs_cur;

static uint64_t
tvs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void
tvs_count(struct tvs_session *s, enum tvs_counter c)
{
	s->e->st.c[c]++;
}

/* ---- engine ---- */

struct tvs_engine *
tvs_engine_new(struct tvs_tls *tls, const struct tvs_lookup *lk,
	const struct tvs_offload *off, struct trust_err *err)
{
	struct tvs_engine *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		trust_errf(err, TRUST_ENOMEM, "TVS engine: out of memory");
		return NULL;
	}
	tvs_tls_ref(tls);
	e->tls = tls;
	e->lk = *lk;
	if (off != NULL && off->submit != NULL && off->poll != NULL) {
		e->off = *off;
		e->has_off = true;
	}
	return e;
}

void
tvs_engine_set_tls(struct tvs_engine *e, struct tvs_tls *tls)
{
	tvs_tls_ref(tls);
	tvs_tls_put(e->tls);
	e->tls = tls;
}

void
tvs_engine_set_lookup(struct tvs_engine *e, const struct tvs_lookup *lk)
{
	e->lk = *lk;
}

unsigned
tvs_engine_pending(const struct tvs_engine *e)
{
	return e->pending;
}

const struct tvs_stats *
tvs_engine_stats(const struct tvs_engine *e)
{
	return &e->st;
}

void
tvs_engine_free(struct tvs_engine *e)
{
	if (e == NULL)
		return;
	tvs_tls_put(e->tls);
	free(e);
}

/* ---- session state ---- */

static unsigned
tvs_flags(const struct tvs_session *s)
{
	unsigned f = 0;

	if (BIO_ctrl_pending(s->wbio) > 0)
		f |= TVS_SESS_OUTPUT;
	if (s->pending)
		f |= TVS_SESS_PENDING;
	if (s->backlog)
		f |= TVS_SESS_BACKLOG;
	if (s->state == TVS_CLOSED)
		f |= TVS_SESS_CLOSE;
	else if (s->state == TVS_ABORTED)
		f |= TVS_SESS_ABORT;
	return f;
}

static void
tvs_why(struct tvs_session *s, const char *fmt, va_list ap)
{
	unsigned long e = ERR_peek_error();
	size_t n;

	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	n = strlen(s->why);
	if (e != 0 && n + 3 < sizeof(s->why)) {
		memcpy(s->why + n, ": ", 2);
		ERR_error_string_n(e, s->why + n + 2, sizeof(s->why) - n - 2);
	}
	ERR_clear_error();
}

/* Ends the session once; c is the counter that says why. */
static void
tvs_end(struct tvs_session *s, enum tvs_state st, enum tvs_counter c, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
tvs_end(struct tvs_session *s, enum tvs_state st, enum tvs_counter c, const char *fmt, ...)
{
	va_list ap;

	if (s->state == TVS_CLOSED || s->state == TVS_ABORTED)
		return;
	va_start(ap, fmt);
	tvs_why(s, fmt, ap);
	va_end(ap);
	s->state = st;
	s->backlog = false;
	if (c != TVS_C_MAX)
		tvs_count(s, c);
	tvs_count(s, st == TVS_ABORTED ? TVS_C_aborts : TVS_C_closes);
}

/* close_notify into the output; best effort, never waits for the peer's */
static void
tvs_notify(struct tvs_session *s)
{
	if (s->state == TVS_OPEN && SSL_shutdown(s->ssl) < 0)
		ERR_clear_error();
}

/* ---- handshake ---- */

static void
tvs_established(struct tvs_session *s)
{
	static const enum tvs_counter by_version[] = { TVS_C_tls1_0, TVS_C_tls1_1,
		TVS_C_tls1_2, TVS_C_tls1_3 };
	int v = SSL_version(s->ssl);

	s->state = TVS_OPEN;
	s->established = true;
	if (!SSL_session_reused(s->ssl))
		tvs_count(s, TVS_C_handshakes_full);
	else
		tvs_count(s, s->ticket_opened ? TVS_C_resumed_ticket : TVS_C_resumed_session_id);
	if (v >= TLS1_VERSION && v <= TLS1_3_VERSION)
		tvs_count(s, by_version[v - TLS1_VERSION]);
	/* reads and writes need no job: spare them the context switches */
	SSL_clear_mode(s->ssl, SSL_MODE_ASYNC);
	OPENSSL_free(s->job);
	s->job = NULL;
}

/* One step; true when the connection is open afterwards. */
static bool
tvs_handshake(struct tvs_session *s)
{
	int rc, e;

	tvs_cur = s;
	rc = SSL_do_handshake(s->ssl);
	tvs_cur = NULL;
	if (rc == 1) {
		tvs_established(s);
		return true;
	}
	e = SSL_get_error(s->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || (e == SSL_ERROR_WANT_ASYNC && s->pending))
		return false;
	tvs_end(s, TVS_ABORTED, TVS_C_handshake_failures, "TLS handshake failed (%s)",
		e == SSL_ERROR_SSL ? "protocol" : e == SSL_ERROR_WANT_ASYNC_JOB ? "no async job"
		: "internal");
	return false;
}

/*
 * Called by the RSA_METHOD, inside the handshake's ASYNC job: submit the
 * operation and sleep until tvs_engine_poll has seen it come back and the
 * caller has resumed the handshake. Anything that prevents that (no
 * session, no job, no queue, a full queue, no memory) computes inline.
 */
int
tvs_session_pkey(enum tvs_pkey_op op, int flen, const uint8_t *from, uint8_t *to, RSA *rsa,
	int padding)
{
	struct tvs_session *s = tvs_cur;
	struct tvs_pkey_job *j;

	if (s == NULL || !s->e->has_off || ASYNC_get_current_job() == NULL || flen <= 0
	    || flen > TVS_PKEY_MAX)
		return TVS_PKEY_INLINE;
	if (s->job == NULL && (s->job = OPENSSL_malloc(sizeof(*s->job))) == NULL) {
		tvs_count(s, TVS_C_offload_inline);
		return TVS_PKEY_INLINE;
	}
	j = s->job;
	j->op = op;
	j->padding = padding;
	j->rsa = rsa;
	j->inlen = flen;
	memcpy(j->in, from, (size_t)flen);
	j->outlen = -1;
	j->done = 0;
	j->owner = s;
	j->submit_ns = tvs_now_ns();
	if (s->e->off.submit(s->e->off.ctx, j) != 0) {
		tvs_count(s, TVS_C_offload_inline);
		return TVS_PKEY_INLINE;
	}
	s->pending = true;
	s->e->pending++;
	tvs_count(s, TVS_C_offloaded);
	/* a resume before the job is back (new input) just sleeps again */
	while (!__atomic_load_n(&j->done, __ATOMIC_ACQUIRE) || s->pending) {
		tvs_count(s, TVS_C_async_pauses);
		if (ASYNC_pause_job() != 1)
			return -1;
	}
	if (j->outlen > 0) {
		memcpy(to, j->out, (size_t)j->outlen);
		/* a decryption's output holds the premaster secret */
		OPENSSL_cleanse(j->out, (size_t)j->outlen);
	}
	return j->outlen;
}

void
tvs_session_ticket_opened(SSL *ssl)
{
	struct tvs_session *s = SSL_get_app_data(ssl);

	if (s != NULL)
		s->ticket_opened = true;
}

/* ---- requests ---- */

/* Answer every complete request in s->in; false when the session ended. */
static bool
tvs_answer_all(struct tvs_session *s)
{
	struct tvs_engine *e = s->e;
	struct trust_err err = { 0 };
	size_t used, olen, wrote;
	int st, rc;

	while (s->in.len > 0) {
		uint8_t type = s->in.len > 2 ? s->in.data[2] : 0;

		rc = tvs_handle(s->in.data, s->in.len, &e->lk, &used, e->scratch,
			sizeof(e->scratch), &olen, &st, &err);
		if (rc == TVS_FRAME_MORE)
			return true;
		if (rc != TVS_FRAME_DONE) {
			tvs_notify(s);
			tvs_end(s, TVS_ABORTED, rc == TRUST_EFORMAT ? TVS_C_malformed
				: TVS_C_internal_errors, "%s", err.msg);
			return false;
		}
		tvs_count(s, type == TVS_QUERY_CERT_REQ ? TVS_C_req_query : TVS_C_req_verify);
		tvs_count(s, st == TVS_STATUS_TRUSTED ? TVS_C_trusted : TVS_C_untrusted);
		if (SSL_write_ex(s->ssl, e->scratch, olen, &wrote) != 1) {
			tvs_end(s, TVS_ABORTED, TVS_C_internal_errors, "TLS write of an answer");
			return false;
		}
		memmove(s->in.data, s->in.data + used, s->in.len - used);
		s->in.len -= used;
	}
	return true;
}

/* The peer's close_notify, or a TLS error after the handshake. */
static void
tvs_read_failed(struct tvs_session *s, int rc)
{
	int e = SSL_get_error(s->ssl, rc);

	if (e == SSL_ERROR_ZERO_RETURN) {
		enum tvs_counter c = s->in.len > 0 ? TVS_C_truncated : TVS_C_MAX;

		tvs_notify(s);
		tvs_end(s, TVS_CLOSED, c, "peer sent close_notify%s",
			s->in.len > 0 ? " inside a request" : "");
		return;
	}
	tvs_end(s, TVS_ABORTED, e == SSL_ERROR_SSL ? TVS_C_tls_errors : TVS_C_internal_errors,
		"TLS read failed");
}

/*
 * Read and answer until the TLS input runs dry. Plaintext is read into the
 * engine's buffer and only what a request still lacks stays with the
 * session, so an idle connection holds no more than its partial request
 * (tvs_answer_all leaves less than TVS_MSG_MAX behind).
 */
static void
tvs_serve(struct tvs_session *s)
{
	size_t got;
	int rc;

	while (s->state == TVS_OPEN && tvs_answer_all(s)) {
		s->backlog = BIO_ctrl_pending(s->wbio) >= TVS_SESS_OUTPUT_MAX;
		if (s->backlog)
			return;
		rc = SSL_read_ex(s->ssl, s->e->rbuf, sizeof(s->e->rbuf), &got);
		if (rc != 1) {
			if (SSL_get_error(s->ssl, rc) != SSL_ERROR_WANT_READ)
				tvs_read_failed(s, rc);
			return;
		}
		if (trust_buf_put(&s->in, s->e->rbuf, got) != 0) {
			tvs_end(s, TVS_ABORTED, TVS_C_internal_errors, "out of memory for a request");
			return;
		}
	}
}

static unsigned
tvs_drive(struct tvs_session *s)
{
	if (s->pending || s->zombie)
		return tvs_flags(s);
	if (s->state == TVS_HANDSHAKE && !tvs_handshake(s))
		return tvs_flags(s);
	tvs_serve(s);
	return tvs_flags(s);
}

/* ---- session API ---- */

struct tvs_session *
tvs_session_new(struct tvs_engine *e, void *cookie)
{
	struct tvs_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		goto nomem;
	s->e = e;
	s->cookie = cookie;
	s->ssl = SSL_new(tvs_tls_ctx(e->tls));
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL) {
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		SSL_free(s->ssl);
		free(s);
		goto nomem;
	}
	/* an empty input BIO means "more to come", not end of file */
	BIO_set_mem_eof_return(s->rbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_accept_state(s->ssl);
	SSL_set_app_data(s->ssl, s);
	if (e->has_off && tvs_tls_offloadable(e->tls))
		SSL_set_mode(s->ssl, SSL_MODE_ASYNC);
	tvs_tls_ref(e->tls);
	s->tls = e->tls;
	trust_buf_init(&s->in);
	s->state = TVS_HANDSHAKE;
	e->st.c[TVS_C_sessions]++;
	return s;
nomem:
	ERR_clear_error();
	e->st.c[TVS_C_internal_errors]++;
	return NULL;
}

static bool
tvs_buffer_input(struct tvs_session *s, const uint8_t *p, size_t len)
{
	if (BIO_ctrl_pending(s->rbio) + len > TVS_SESS_INPUT_MAX) {
		tvs_end(s, TVS_ABORTED, TVS_C_overflow,
			"peer sent %zu bytes more than the %u we buffer", len, TVS_SESS_INPUT_MAX);
		return false;
	}
	if (BIO_write(s->rbio, p, (int)len) != (int)len) {
		tvs_end(s, TVS_ABORTED, TVS_C_internal_errors, "out of memory for TLS input");
		return false;
	}
	return true;
}

unsigned
tvs_session_input(struct tvs_session *s, const uint8_t *p, size_t len)
{
	if (s->state == TVS_CLOSED || s->state == TVS_ABORTED || len == 0)
		return tvs_flags(s);
	if (!tvs_buffer_input(s, p, len))
		return tvs_flags(s);
	return tvs_drive(s);
}

unsigned
tvs_session_push(struct tvs_session *s, const uint8_t *p, size_t len)
{
	if (s->state != TVS_CLOSED && s->state != TVS_ABORTED && len > 0)
		tvs_buffer_input(s, p, len);
	return tvs_flags(s);
}

unsigned
tvs_session_resume(struct tvs_session *s)
{
	if (s->state == TVS_CLOSED || s->state == TVS_ABORTED)
		return tvs_flags(s);
	return tvs_drive(s);
}

size_t
tvs_session_output(struct tvs_session *s, uint8_t *buf, size_t cap)
{
	int n;

	if (cap > INT_MAX)
		cap = INT_MAX;
	n = BIO_read(s->wbio, buf, (int)cap);
	return n > 0 ? (size_t)n : 0;
}

size_t
tvs_session_output_len(const struct tvs_session *s)
{
	return BIO_ctrl_pending(s->wbio);
}

size_t
tvs_session_output_peek(struct tvs_session *s, const uint8_t **p)
{
	char *data = NULL;
	long n = BIO_get_mem_data(s->wbio, &data);

	*p = (const uint8_t *)data;
	return n > 0 ? (size_t)n : 0;
}

void
tvs_session_output_consume(struct tvs_session *s, size_t n)
{
	/* a memory BIO drops read bytes only by reading them */
	while (n > 0) {
		int k = BIO_read(s->wbio, s->e->rbuf, (int)(n < sizeof(s->e->rbuf) ? n
			: sizeof(s->e->rbuf)));

		if (k <= 0)
			break;
		n -= (size_t)k;
	}
}

unsigned
tvs_session_eof(struct tvs_session *s)
{
	if (s->state == TVS_HANDSHAKE)
		tvs_end(s, TVS_CLOSED, TVS_C_handshake_failures, "peer closed during the handshake");
	else if (s->in.len > 0 || BIO_ctrl_pending(s->rbio) > 0)
		tvs_end(s, TVS_CLOSED, TVS_C_truncated, "peer closed inside a request");
	else
		tvs_end(s, TVS_CLOSED, TVS_C_MAX, "peer closed");
	return tvs_flags(s);
}

unsigned
tvs_session_close(struct tvs_session *s)
{
	tvs_notify(s);
	tvs_end(s, TVS_CLOSED, TVS_C_MAX, "closed by the server");
	return tvs_flags(s);
}

static void
tvs_session_destroy(struct tvs_session *s)
{
	/* SSL_free drops the session from the session-ID cache unless the
	 * connection was shut down; phones often just close TCP. TLS errors
	 * have already removed it (fatal alerts do). */
	if (s->established)
		SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(s->ssl);
	ERR_clear_error();
	tvs_tls_put(s->tls);
	trust_buf_wipe(&s->in);
	OPENSSL_clear_free(s->job, s->job != NULL ? sizeof(*s->job) : 0);
	free(s);
}

void
tvs_session_free(struct tvs_session *s)
{
	if (s == NULL)
		return;
	if (s->pending) {
		/* the crypto lcore still writes into s->job: finish at poll */
		s->zombie = true;
		return;
	}
	tvs_session_destroy(s);
}

/* A zombie's job is back: let its ASYNC job run to its end, then free. */
static void
tvs_session_bury(struct tvs_session *s)
{
	if (s->state == TVS_HANDSHAKE || SSL_waiting_for_async(s->ssl)) {
		SSL_do_handshake(s->ssl);
		ERR_clear_error();
	}
	tvs_session_destroy(s);
}

unsigned
tvs_engine_poll(struct tvs_engine *e, struct tvs_session **ready, unsigned max)
{
	struct tvs_pkey_job *jobs[TVS_POLL_BURST];
	unsigned n, k = 0;
	uint64_t now;

	if (!e->has_off || e->pending == 0)
		return 0;
	n = e->off.poll(e->off.ctx, jobs, max < TVS_POLL_BURST ? max : TVS_POLL_BURST);
	now = tvs_now_ns();
	for (unsigned i = 0; i < n; i++) {
		struct tvs_session *s = jobs[i]->owner;

		s->pending = false;
		e->pending--;
		e->st.c[TVS_C_offload_ns] += now - jobs[i]->submit_ns;
		if (s->zombie)
			tvs_session_bury(s);
		else
			ready[k++] = s;
	}
	return k;
}

void *
tvs_session_cookie(const struct tvs_session *s)
{
	return s->cookie;
}

const char *
tvs_session_error(const struct tvs_session *s)
{
	return s->why;
}

bool
tvs_session_established(const struct tvs_session *s)
{
	return s->state == TVS_OPEN;
}

bool
tvs_session_waiting(const struct tvs_session *s)
{
	if (s->state == TVS_HANDSHAKE)
		return true;
	/* SSL_has_pending: a record started, read ahead into OpenSSL's buffer */
	return s->state == TVS_OPEN && (s->in.len > 0 || BIO_ctrl_pending(s->rbio) > 0
		|| SSL_has_pending(s->ssl));
}

int
tvs_session_version(const struct tvs_session *s)
{
	return s->state == TVS_HANDSHAKE ? 0 : SSL_version(s->ssl);
}

bool
tvs_session_resumed(const struct tvs_session *s)
{
	return SSL_session_reused(s->ssl) == 1;
}
