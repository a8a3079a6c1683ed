/*
 * tvs-client: speaks TVS the way a phone does (FORMATS §3, §4.3). It opens
 * TLS to the TVS, refuses the server unless its certificate is one of the
 * TVS (role 21) records of the ITL it was given, sends CERT_VERIFICATION or
 * QUERY_CERT and prints the answer. With --load it becomes the load
 * generator of the TVS benchmarks: N transactions (connect, handshake,
 * request, answer, close) over C concurrent connections, optionally
 * resuming TLS sessions like phones that come back within the TTL.
 *
 * One engine serves both: a transaction is a small state machine driven by
 * epoll over non-blocking sockets and SSL objects; single mode is a load of
 * one that prints what it saw.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cert.h"
#include "file.h"
#include "tvs.h"
#include "tvsio.h"

#define TC_EXIT_TRUSTED 0
#define TC_EXIT_UNTRUSTED 1
#define TC_EXIT_USAGE 2
#define TC_EXIT_ERROR 3
#define TC_DEFAULT_CIPHERS "DEFAULT:@SECLEVEL=0"
#define TC_DEFAULT_DEVICE "CP-8861-SEP000000000001"
#define TC_LOAD_MAX 10000000ul

enum tc_cmd { TC_VERIFY, TC_QUERY, TC_RAW };

struct tc_opts {
	enum tc_cmd cmd;
	const char *arg;		/* verify: cert file; raw: hex */
	const char *host, *port, *itl, *device;
	const char *subject, *issuer, *serial, *from_file;
	int min_tls, max_tls;
	const char *ciphers, *ciphersuites;
	unsigned timeout_ms, trickle_ms, answers;
	bool trickle;
	unsigned long load;
	unsigned concurrency, max_seconds;
	bool resume;
};

enum tc_state { TC_IDLE, TC_CONNECTING, TC_HANDSHAKE, TC_SENDING, TC_RECEIVING };

enum tc_outcome { TC_OK, TC_CLOSED, TC_FAILED };

struct tc_slot {
	enum tc_state st;
	int fd;
	SSL *ssl;
	uint32_t events;
	uint64_t start_ns, deadline_ns, next_write_ns;
	size_t sent;
	unsigned answers;		/* received on this connection */
	uint32_t id;
	uint8_t *req;			/* the request with this slot's id */
	SSL_SESSION *session;		/* the last one the server gave this slot */
	struct trust_buf in;
};

struct tc_stats {
	unsigned long started, done, trusted, untrusted, closed, failed;
	unsigned long full, resumed, refused_cert;
	uint64_t *lat_ns;		/* one per completed transaction */
};

struct tc {
	struct tc_opts o;
	SSL_CTX *ctx;
	struct addrinfo *ai;
	struct trust_bytes *tvs_certs;	/* DER of the ITL's role-21 records */
	size_t ntvs;
	uint8_t req[TVS_MSG_MAX];
	size_t reqlen;
	uint8_t req_type;
	int ep;
	struct tc_slot *slots;
	unsigned active;
	struct tc_stats s;
	/* single mode keeps what it saw, to print it */
	char failure[512];
	struct trust_buf answers;	/* every answer received, back to back */
	char tls_desc[128];
	char server_subject[512];
	size_t closed_after;		/* request bytes sent when the server closed */
	uint32_t next_id;
};

/*
 * Each slot resumes its own last session, as each phone does. Sharing one
 * session between concurrent connections fails with TLS 1.3: OpenSSL marks
 * a session spent once a connection that resumed it gets a new ticket.
 */
static bool tc_resume;

static int
tc_fail(struct tc *t, struct tc_slot *sl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void tc_slot_close(struct tc *t, struct tc_slot *sl);

/* The server closed on us: what raw mode and the tests look for. */
static void
tc_closed(struct tc *t, struct tc_slot *sl)
{
	t->s.closed++;
	t->closed_after = sl->sent;
	tc_slot_close(t, sl);
}

static void
tc_slot_close(struct tc *t, struct tc_slot *sl)
{
	if (sl->ssl != NULL) {
		if (sl->st >= TC_SENDING)
			SSL_shutdown(sl->ssl);
		SSL_free(sl->ssl);
	}
	ERR_clear_error();
	if (sl->fd >= 0)
		close(sl->fd);
	trust_buf_free(&sl->in);
	sl->ssl = NULL;
	sl->fd = -1;
	sl->st = TC_IDLE;
	sl->events = 0;
	t->active--;
}

static int
tc_fail(struct tc *t, struct tc_slot *sl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->failure, sizeof(t->failure), fmt, ap);
	va_end(ap);
	t->s.failed++;
	tc_slot_close(t, sl);
	return -1;
}

static void
tc_want(struct tc *t, struct tc_slot *sl, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = sl };

	if (sl->events == events)
		return;
	if (epoll_ctl(t->ep, sl->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, sl->fd, &ev) == 0)
		sl->events = events;
}

static int
tc_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tc_slot *sl = SSL_get_app_data(ssl);

	if (!tc_resume || sl == NULL)
		return 0;
	SSL_SESSION_free(sl->session);
	sl->session = sess;
	return 1;			/* we keep the reference */
}

/* A phone trusts a TVS only if its certificate is a TVS record of its ITL. */
static bool
tc_server_trusted(struct tc *t, SSL *ssl)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	unsigned char *der = NULL;
	int len = x != NULL ? i2d_X509(x, &der) : -1;
	bool found = false;

	for (size_t i = 0; len > 0 && i < t->ntvs && !found; i++)
		found = t->tvs_certs[i].len == (size_t)len
			&& memcmp(t->tvs_certs[i].p, der, (size_t)len) == 0;
	if (t->o.load == 0 && x != NULL) {
		struct trust_cert c;

		memset(&c, 0, sizeof(c));
		if (len > 0 && trust_cert_from_der(der, (size_t)len, &c, NULL) == 0)
			snprintf(t->server_subject, sizeof(t->server_subject), "%s", c.subject);
		trust_cert_free(&c);
	}
	OPENSSL_free(der);
	return found;
}

static int
tc_connected(struct tc *t, struct tc_slot *sl)
{
	bool resumed = SSL_session_reused(sl->ssl);

	*(resumed ? &t->s.resumed : &t->s.full) += 1;
	if (t->o.load == 0)
		snprintf(t->tls_desc, sizeof(t->tls_desc), "%s %s, %s", SSL_get_version(sl->ssl),
			SSL_get_cipher_name(sl->ssl), resumed ? "resumed session" : "full handshake");
	if (!tc_server_trusted(t, sl->ssl)) {
		t->s.refused_cert++;
		return tc_fail(t, sl, "server certificate%s%s is not a TVS record of %s: refused",
			t->server_subject[0] ? " " : "", t->server_subject, t->o.itl);
	}
	sl->st = TC_SENDING;
	return 0;
}

static int
tc_start(struct tc *t, struct tc_slot *sl, uint64_t now)
{
	int fd = socket(t->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	t->s.started++;
	t->active++;
	sl->fd = fd;
	sl->st = TC_CONNECTING;
	sl->events = 0;
	sl->start_ns = now;
	sl->deadline_ns = now + (uint64_t)t->o.timeout_ms * 1000000u;
	sl->next_write_ns = 0;
	sl->sent = 0;
	sl->answers = 0;
	sl->id = t->next_id++;
	trust_buf_init(&sl->in);
	if (fd < 0)
		return tc_fail(t, sl, "socket: %s", strerror(errno));
	/* the id of each transaction differs, as a phone's session id does;
	 * raw bytes go out as given */
	if (t->o.cmd != TC_RAW) {
		sl->req[4] = (uint8_t)(sl->id >> 24);
		sl->req[5] = (uint8_t)(sl->id >> 16);
		sl->req[6] = (uint8_t)(sl->id >> 8);
		sl->req[7] = (uint8_t)sl->id;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, t->ai->ai_addr, t->ai->ai_addrlen) != 0 && errno != EINPROGRESS)
		return tc_fail(t, sl, "connect to %s port %s: %s", t->o.host, t->o.port,
			strerror(errno));
	tc_want(t, sl, EPOLLOUT);
	return 0;
}

static int
tc_step_connect(struct tc *t, struct tc_slot *sl)
{
	int e = 0;
	socklen_t el = sizeof(e);

	if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0)
		return tc_fail(t, sl, "connect to %s port %s: %s", t->o.host, t->o.port,
			strerror(e ? e : errno));
	sl->ssl = SSL_new(t->ctx);
	if (sl->ssl == NULL || SSL_set_fd(sl->ssl, sl->fd) != 1)
		return tc_fail(t, sl, "SSL_new failed");
	SSL_set_app_data(sl->ssl, sl);
	if (t->o.resume && sl->session != NULL)
		SSL_set_session(sl->ssl, sl->session);
	SSL_set_connect_state(sl->ssl);
	sl->st = TC_HANDSHAKE;
	return 0;
}

static int
tc_step_handshake(struct tc *t, struct tc_slot *sl)
{
	char e[256];
	enum tvsio_rc r = tvsio_handshake(sl->ssl);

	if (r == TVSIO_WANT_READ || r == TVSIO_WANT_WRITE) {
		tc_want(t, sl, r == TVSIO_WANT_READ ? EPOLLIN : EPOLLOUT);
		return 1;
	}
	if (r != TVSIO_OK)
		return tc_fail(t, sl, "TLS handshake: %s", tvsio_ssl_error(e, sizeof(e)));
	return tc_connected(t, sl);
}

/* Whole request at once, or one byte per tick with --trickle. */
static int
tc_step_send(struct tc *t, struct tc_slot *sl, uint64_t now)
{
	char e[256];

	while (sl->sent < t->reqlen) {
		size_t n = t->o.trickle ? 1 : t->reqlen - sl->sent;
		int r;

		if (t->o.trickle && now < sl->next_write_ns) {
			tc_want(t, sl, EPOLLIN);	/* a close from the server still shows */
			return 1;
		}
		errno = 0;
		r = SSL_write(sl->ssl, sl->req + sl->sent, (int)n);
		if (r <= 0) {
			int se = SSL_get_error(sl->ssl, r);

			if (se == SSL_ERROR_WANT_WRITE || se == SSL_ERROR_WANT_READ) {
				tc_want(t, sl, se == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
				return 1;
			}
			if (sl->sent > 0 && (se == SSL_ERROR_SYSCALL || se == SSL_ERROR_ZERO_RETURN)) {
				tc_closed(t, sl);
				return -1;
			}
			return tc_fail(t, sl, "sending the request: %s",
				tvsio_ssl_error(e, sizeof(e)));
		}
		sl->sent += (size_t)r;
		sl->next_write_ns = now + (uint64_t)t->o.trickle_ms * 1000000u;
	}
	sl->st = TC_RECEIVING;
	return 0;
}

/* While a trickle waits for its next byte: did the server give up on us? */
static int
tc_peek_close(struct tc *t, struct tc_slot *sl)
{
	char e[256];
	enum tvsio_rc r = tvsio_read(sl->ssl, &sl->in, TVS_MSG_MAX);

	if (r == TVSIO_EOF) {
		tc_closed(t, sl);
		return -1;
	}
	if (r == TVSIO_ERROR)
		return tc_fail(t, sl, "while sending: %s", tvsio_ssl_error(e, sizeof(e)));
	return 1;
}

static int
tc_got_answer(struct tc *t, struct tc_slot *sl, size_t n, uint64_t now)
{
	struct tvs_response rs;
	struct trust_err err = { 0 };

	if (tvs_response_parse(sl->in.data, n, &rs, &err) != 0)
		return tc_fail(t, sl, "bad answer: %s", err.msg);
	/* raw bytes carry their own ids, which we do not interpret */
	if (t->o.cmd != TC_RAW && (rs.id != sl->id || rs.type != t->req_type + 1))
		return tc_fail(t, sl, "answer %s id %u does not match request %s id %u",
			tvs_type_name(rs.type), rs.id, tvs_type_name(t->req_type), sl->id);
	if (t->o.load == 0 && trust_buf_put(&t->answers, sl->in.data, n) != 0)
		return tc_fail(t, sl, "out of memory");
	memmove(sl->in.data, sl->in.data + n, sl->in.len - n);
	sl->in.len -= n;
	if (++sl->answers < t->o.answers)
		return 0;		/* more answers due on this connection */
	*(rs.status == TVS_STATUS_TRUSTED ? &t->s.trusted : &t->s.untrusted) += 1;
	if (t->s.lat_ns != NULL)
		t->s.lat_ns[t->s.done] = now - sl->start_ns;
	t->s.done++;
	tc_slot_close(t, sl);
	return 1;
}

static int
tc_step_receive(struct tc *t, struct tc_slot *sl, uint64_t now)
{
	struct trust_err err = { 0 };
	char e[256];
	size_t n;

	for (;;) {
		enum tvsio_rc r;

		if (sl->in.len > 0) {
			int fr = tvs_frame(sl->in.data, sl->in.len, &n, &err);

			if (fr < 0)
				return tc_fail(t, sl, "bad answer: %s", err.msg);
			if (fr == TVS_FRAME_DONE) {
				int rc = tc_got_answer(t, sl, n, now);

				if (rc != 0)
					return rc;
				continue;
			}
		}
		r = tvsio_read(sl->ssl, &sl->in, TVS_MSG_MAX);
		if (r == TVSIO_WANT_READ || r == TVSIO_WANT_WRITE) {
			tc_want(t, sl, r == TVSIO_WANT_READ ? EPOLLIN : EPOLLOUT);
			return 1;
		}
		if (r == TVSIO_EOF && sl->in.len == 0) {
			tc_closed(t, sl);
			return -1;
		}
		if (r != TVSIO_OK)
			return tc_fail(t, sl, "reading the answer: %s",
				r == TVSIO_EOF ? "connection closed mid-answer"
				: tvsio_ssl_error(e, sizeof(e)));
	}
}

/* Advance one transaction as far as it goes without blocking. */
static void
tc_step(struct tc *t, struct tc_slot *sl, uint64_t now)
{
	int rc = 0;

	while (rc == 0 && sl->st != TC_IDLE) {
		switch (sl->st) {
		case TC_CONNECTING:
			rc = tc_step_connect(t, sl);
			break;
		case TC_HANDSHAKE:
			rc = tc_step_handshake(t, sl);
			break;
		case TC_SENDING:
			rc = tc_step_send(t, sl, now);
			/* in a trickle, a byte read now can only be a close */
			if (rc == 1 && t->o.trickle && sl->st == TC_SENDING)
				rc = tc_peek_close(t, sl);
			break;
		case TC_RECEIVING:
			rc = tc_step_receive(t, sl, now);
			break;
		case TC_IDLE:
			break;
		}
	}
}

static uint64_t
tc_next_timer(struct tc *t, uint64_t now)
{
	uint64_t next = now + 100000000u;

	for (unsigned i = 0; i < t->o.concurrency; i++) {
		struct tc_slot *sl = &t->slots[i];

		if (sl->st == TC_IDLE)
			continue;
		if (sl->deadline_ns < next)
			next = sl->deadline_ns;
		if (sl->st == TC_SENDING && t->o.trickle && sl->next_write_ns < next)
			next = sl->next_write_ns;
	}
	return next;
}

static void
tc_timers(struct tc *t, uint64_t now)
{
	for (unsigned i = 0; i < t->o.concurrency; i++) {
		struct tc_slot *sl = &t->slots[i];

		if (sl->st == TC_IDLE)
			continue;
		if (now >= sl->deadline_ns)
			tc_fail(t, sl, "no answer within %u ms", t->o.timeout_ms);
		else if (sl->st == TC_SENDING && t->o.trickle && now >= sl->next_write_ns)
			tc_step(t, sl, now);
	}
}

static void
tc_run(struct tc *t)
{
	uint64_t t0 = tvsio_now_ns();
	uint64_t end = t0 + (uint64_t)t->o.max_seconds * 1000000000u;
	unsigned long n = t->o.load ? t->o.load : 1;
	struct epoll_event evs[256];

	for (;;) {
		uint64_t now = tvsio_now_ns(), next;
		int k;

		for (unsigned i = 0; i < t->o.concurrency && t->s.started < n && now < end; i++)
			if (t->slots[i].st == TC_IDLE && tc_start(t, &t->slots[i], now) == 0)
				tc_step(t, &t->slots[i], now);
		if (t->active == 0 && (t->s.started >= n || now >= end))
			break;
		next = tc_next_timer(t, now);
		k = epoll_wait(t->ep, evs, 256, next > now ? (int)((next - now + 999999) / 1000000) : 0);
		now = tvsio_now_ns();
		for (int i = 0; i < k; i++) {
			struct tc_slot *sl = evs[i].data.ptr;

			if (sl->st != TC_IDLE)
				tc_step(t, sl, now);
		}
		tc_timers(t, now);
	}
}

static int
tc_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
tc_quantile_ms(const uint64_t *v, unsigned long n, double q)
{
	unsigned long i;

	if (n == 0)
		return 0;
	i = (unsigned long)(q * (double)(n - 1) + 0.5);
	return (double)v[i] / 1e6;
}

static int
tc_report_load(struct tc *t, double secs)
{
	struct tc_stats *s = &t->s;
	double tps = secs > 0 ? (double)s->done / secs : 0;
	double p50, p99, max;

	qsort(s->lat_ns, s->done, sizeof(*s->lat_ns), tc_cmp_u64);
	p50 = tc_quantile_ms(s->lat_ns, s->done, 0.50);
	p99 = tc_quantile_ms(s->lat_ns, s->done, 0.99);
	max = s->done ? (double)s->lat_ns[s->done - 1] / 1e6 : 0;
	printf("load: %lu transactions in %.3f s: %.1f/s, concurrency %u, resume %s\n",
		s->done, secs, tps, t->o.concurrency, t->o.resume ? "yes" : "no");
	printf("handshakes: %lu full, %lu resumed\n", s->full, s->resumed);
	printf("latency: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", p50, p99, max);
	printf("answers: %lu trusted, %lu not trusted; failures %lu (closed by server %lu, "
		"server refused by ITL %lu)\n", s->trusted, s->untrusted, s->failed + s->closed,
		s->closed, s->refused_cert);
	if (s->failed > 0)
		printf("last failure: %s\n", t->failure);
	printf("{\"tool\":\"tvs-client\",\"request\":\"%s\",\"target\":\"%s:%s\","
		"\"transactions\":%lu,\"started\":%lu,\"seconds\":%.3f,\"tps\":%.1f,"
		"\"concurrency\":%u,\"resume\":%s,\"full_handshakes\":%lu,\"resumed\":%lu,"
		"\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"trusted\":%lu,"
		"\"untrusted\":%lu,\"failures\":%lu}\n",
		tvs_type_name(t->req_type), t->o.host, t->o.port, s->done, s->started, secs, tps,
		t->o.concurrency, t->o.resume ? "true" : "false", s->full, s->resumed,
		p50, p99, max, s->trusted, s->untrusted, s->failed + s->closed);
	return s->failed + s->closed == 0 && s->done == s->started ? 0 : TC_EXIT_ERROR;
}

static void
tc_print_roles(struct trust_bytes roles)
{
	printf("roles:");
	for (size_t i = 0; i < roles.len; i++) {
		const char *nm = trust_role_name(roles.p[i]);

		if (nm != NULL)
			printf(" %s", nm);
		else
			printf(" %u", roles.p[i]);
	}
	printf("\n");
}

static void
tc_print_answer(const struct tvs_response *rs)
{
	struct trust_cert c;

	printf("answer: %s id %u, %zu bytes\n", tvs_type_name(rs->type), rs->id, rs->len);
	printf("status: %u (%s)\n", rs->status, rs->status == TVS_STATUS_TRUSTED ? "trusted"
		: "not trusted");
	if (rs->roles.p != NULL)
		tc_print_roles(rs->roles);
	if (rs->has_ttl)
		printf("ttl: %u\n", rs->ttl);
	if (rs->cert.p != NULL) {
		memset(&c, 0, sizeof(c));
		if (trust_cert_from_der(rs->cert.p, rs->cert.len, &c, NULL) == 0)
			printf("certificate: %s\n", c.subject);
		else
			printf("certificate: %zu bytes, not X.509\n", rs->cert.len);
		trust_cert_free(&c);
	}
}

static int
tc_report_one(struct tc *t)
{
	struct tvs_response rs = { .status = TVS_STATUS_UNTRUSTED };
	size_t off = 0, n;

	if (t->tls_desc[0] != '\0')
		printf("tls: %s\nserver: %s\n", t->tls_desc, t->server_subject);
	/* answers were framed and parsed on the way in */
	while (off < t->answers.len
	    && tvs_frame(t->answers.data + off, t->answers.len - off, &n, NULL) == TVS_FRAME_DONE
	    && tvs_response_parse(t->answers.data + off, n, &rs, NULL) == 0) {
		tc_print_answer(&rs);
		off += n;
	}
	if (t->s.closed > 0) {
		printf("closed: the server closed the connection after %zu of %zu request bytes\n",
			t->closed_after, t->reqlen);
		return t->o.cmd == TC_RAW ? 0 : TC_EXIT_ERROR;
	}
	if (t->s.failed > 0 || off == 0) {
		fprintf(stderr, "tvs-client: %s\n", t->failure);
		return TC_EXIT_ERROR;
	}
	return rs.status == TVS_STATUS_TRUSTED ? TC_EXIT_TRUSTED : TC_EXIT_UNTRUSTED;
}

/* ---- setup -------------------------------------------------------------- */

static int
tc_load_itl(struct tc *t, struct trust_buf *buf, struct trust_file *f, struct trust_err *err)
{
	int rc = trust_file_read(t->o.itl, TRUST_LIST_MAX + 1, buf, err);

	if (rc == 0 && trust_list_parse(buf->data, buf->len, f, err) != 0) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		return trust_errf(err, err->code, "ITL %s: %s", t->o.itl, why);
	}
	if (rc != 0)
		return rc;
	t->tvs_certs = calloc(f->nrecs ? f->nrecs : 1, sizeof(*t->tvs_certs));
	if (t->tvs_certs == NULL)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	for (size_t i = 0; i < f->nrecs; i++)
		if (f->recs[i].has_role && f->recs[i].role == TRUST_ROLE_TVS
		    && f->recs[i].cert.len > 0)
			t->tvs_certs[t->ntvs++] = f->recs[i].cert;
	if (t->ntvs == 0)
		return trust_errf(err, TRUST_ENOTFOUND,
			"%s has no TVS (role 21) record with a certificate: a phone would not talk to any TVS",
			t->o.itl);
	return 0;
}

static struct trust_bytes
tc_strview(const struct trust_bytes *b)
{
	struct trust_bytes v = *b;

	if (v.len > 0 && v.p[v.len - 1] == '\0')
		v.len--;
	return v;
}

/* Signer name, issuer and serial of a CTL/ITL/.sgn/.enc.sgn header. */
static int
tc_query_from_file(struct tc *t, struct tvs_request *rq, struct trust_buf *buf,
	struct trust_file *f, struct trust_err *err)
{
	int rc = trust_file_read(t->o.from_file, 64u << 20, buf, err);

	if (rc == 0)
		rc = trust_file_parse(buf->data, buf->len, f, err);
	if (rc != 0)
		return rc;
	rq->subject = tc_strview(&f->hdr.signer_name);
	rq->issuer = tc_strview(&f->hdr.signer_issuer);
	rq->serial = f->hdr.signer_serial;
	if (rq->issuer.len == 0 || rq->serial.len == 0)
		return trust_errf(err, TRUST_EFORMAT, "%s: header names no signer issuer/serial",
			t->o.from_file);
	return 0;
}

/* Hex with optional ':' separators, as openssl and CUCM print serials. */
static int
tc_serial(const char *hex, uint8_t *out, size_t outsz, size_t *n, struct trust_err *err)
{
	char clean[2 * TRUST_SERIAL_MAX + 1];
	const char *p = hex;
	size_t k = 0;
	int r;

	if (strncasecmp(p, "0x", 2) == 0)
		p += 2;
	for (; *p != '\0'; p++)
		if (*p != ':' && k + 1 < sizeof(clean))
			clean[k++] = *p;
	clean[k] = '\0';
	if (k % 2 == 1) {
		memmove(clean + 1, clean, k + 1);
		clean[0] = '0';
	}
	r = trust_unhex(clean, out, outsz);
	if (r <= 0)
		return trust_errf(err, TRUST_EINVAL, "--serial %s: not a hex serial number", hex);
	*n = (size_t)r;
	return 0;
}

struct tc_material {
	struct trust_cert cert;
	struct trust_buf file;
	struct trust_file parsed;
	uint8_t serial[TRUST_SERIAL_MAX];
	uint8_t raw[TVS_MSG_MAX];
};

static int
tc_build_request(struct tc *t, struct tc_material *m, struct trust_err *err)
{
	struct tvs_request rq = { .id = 1 };
	size_t n = 0;
	int rc;

	rq.device = (struct trust_bytes){ (const uint8_t *)t->o.device, strlen(t->o.device) };
	switch (t->o.cmd) {
	case TC_RAW:
		rc = trust_unhex(t->o.arg, t->req, sizeof(t->req));
		if (rc <= 0)
			return trust_errf(err, TRUST_EINVAL, "raw: %s is not hex", t->o.arg);
		t->reqlen = (size_t)rc;
		t->req_type = t->reqlen > 2 ? t->req[2] : 0;
		return t->reqlen >= 8 ? 0 : trust_errf(err, TRUST_EINVAL,
			"raw: at least 8 bytes (the id is written at offset 4)");
	case TC_VERIFY:
		rq.type = TVS_CERT_VERIFY_REQ;
		rc = trust_cert_load(t->o.arg, &m->cert, err);
		if (rc != 0)
			return rc;
		rq.cert = (struct trust_bytes){ m->cert.der, m->cert.der_len };
		break;
	case TC_QUERY:
		rq.type = TVS_QUERY_CERT_REQ;
		if (t->o.from_file != NULL) {
			rc = tc_query_from_file(t, &rq, &m->file, &m->parsed, err);
			if (rc != 0)
				return rc;
			break;
		}
		if (t->o.issuer == NULL || t->o.serial == NULL)
			return trust_errf(err, TRUST_EINVAL,
				"query needs --issuer and --serial, or --from-file");
		rc = tc_serial(t->o.serial, m->serial, sizeof(m->serial), &n, err);
		if (rc != 0)
			return rc;
		rq.serial = (struct trust_bytes){ m->serial, n };
		rq.issuer = (struct trust_bytes){ (const uint8_t *)t->o.issuer, strlen(t->o.issuer) };
		if (t->o.subject != NULL)
			rq.subject = (struct trust_bytes){ (const uint8_t *)t->o.subject,
				strlen(t->o.subject) };
		break;
	}
	t->req_type = rq.type;
	return tvs_request_build(&rq, t->req, sizeof(t->req), &t->reqlen, err);
}

static int
tc_tls_setup(struct tc *t, struct trust_err *err)
{
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL)
		return trust_err_openssl(err, TRUST_ECRYPTO, "SSL_CTX_new");
	if (SSL_CTX_set_min_proto_version(t->ctx, t->o.min_tls) != 1
	    || SSL_CTX_set_max_proto_version(t->ctx, t->o.max_tls) != 1
	    || SSL_CTX_set_cipher_list(t->ctx, t->o.ciphers) != 1
	    || (t->o.ciphersuites != NULL
		&& SSL_CTX_set_ciphersuites(t->ctx, t->o.ciphersuites) != 1))
		return trust_err_openssl(err, TRUST_EINVAL, "TLS versions or ciphers");
	/* no CA check: like a phone, the ITL decides (tc_server_trusted) */
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_read_ahead(t->ctx, 1);	/* one read per burst, not per record */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT
		| SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(t->ctx, tc_new_session);
	return 0;
}

static int
tc_net_setup(struct tc *t, struct trust_err *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	int rc = getaddrinfo(t->o.host, t->o.port, &hints, &t->ai);

	if (rc != 0)
		return trust_errf(err, TRUST_EINVAL, "%s port %s: %s", t->o.host, t->o.port,
			gai_strerror(rc));
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->slots = calloc(t->o.concurrency, sizeof(*t->slots));
	if (t->o.load != 0)
		t->s.lat_ns = calloc(t->o.load, sizeof(*t->s.lat_ns));
	if (t->ep < 0 || t->slots == NULL || (t->o.load != 0 && t->s.lat_ns == NULL))
		return trust_errf(err, TRUST_ENOMEM, "setup: %s", strerror(errno));
	for (unsigned i = 0; i < t->o.concurrency; i++) {
		t->slots[i].fd = -1;
		t->slots[i].req = malloc(t->reqlen);
		if (t->slots[i].req == NULL)
			return trust_errf(err, TRUST_ENOMEM, "out of memory");
		memcpy(t->slots[i].req, t->req, t->reqlen);
	}
	return 0;
}

/* ---- command line ------------------------------------------------------- */

static void
tc_usage(FILE *f)
{
	fprintf(f,
		"usage: tvs-client --itl ITLFILE [options] verify CERT.pem\n"
		"       tvs-client --itl ITLFILE [options] query --issuer DN --serial HEX [--subject DN]\n"
		"       tvs-client --itl ITLFILE [options] query --from-file SIGNED_FILE\n"
		"       tvs-client --itl ITLFILE [options] raw HEX   (test aid: send bytes as they are)\n"
		"options:\n"
		"  --host H, --port N      TVS address (default 127.0.0.1 port 2445)\n"
		"  --itl FILE              the phone's ITL: the server must present one of its\n"
		"                          TVS (role 21) certificates\n"
		"  --device NAME           device name sent (default %s)\n"
		"  --tls1 | --tls1_2 | --tls1_3   only this TLS version (default 1.0 .. 1.3)\n"
		"  --cipher STR, --ciphersuites STR   TLS <= 1.2 list / TLS 1.3 suites\n"
		"  --timeout MS            per transaction (default 5000)\n"
		"  --trickle MS            send the request one byte per TLS record, MS apart\n"
		"  --answers N             raw: wait for N answers on the connection (default 1)\n"
		"  --load N --concurrency C [--resume] [--max-seconds S]\n"
		"                          N transactions over C connections at a time, each a\n"
		"                          new TLS connection (with --resume, each of the C\n"
		"                          resumes its own last session, as phones do);\n"
		"                          stops after S seconds (default 60)\n"
		"exit: 0 trusted, 1 not trusted, 2 usage, 3 error (raw: 0 when the server closed)\n",
		TC_DEFAULT_DEVICE);
}

static int
tc_pin_version(struct tc_opts *o, int v)
{
	o->min_tls = o->max_tls = v;
	return 0;
}

/* One option; returns -1 when its value is bad. */
static int
tc_option(struct tc_opts *o, int ch, const char *arg)
{
	unsigned long v = 0;
	int bad = 0;

	switch (ch) {
	case 'H': o->host = arg; break;
	case 'p': o->port = arg; bad = tvsio_number(arg, 1, 65535, &v); break;
	case 'I': o->itl = arg; break;
	case 'd': o->device = arg; break;
	case 's': o->subject = arg; break;
	case 'i': o->issuer = arg; break;
	case 'n': o->serial = arg; break;
	case 'f': o->from_file = arg; break;
	case '0': return tc_pin_version(o, TLS1_VERSION);
	case '2': return tc_pin_version(o, TLS1_2_VERSION);
	case '3': return tc_pin_version(o, TLS1_3_VERSION);
	case 'c': o->ciphers = arg; break;
	case 'C': o->ciphersuites = arg; break;
	case 't': bad = tvsio_number(arg, 1, 3600000, &v); o->timeout_ms = (unsigned)v; break;
	case 'T': bad = tvsio_number(arg, 0, 60000, &v); o->trickle_ms = (unsigned)v;
		o->trickle = true; break;
	case 'L': bad = tvsio_number(arg, 1, TC_LOAD_MAX, &v); o->load = v; break;
	case 'N': bad = tvsio_number(arg, 1, 10000, &v); o->concurrency = (unsigned)v; break;
	case 'M': bad = tvsio_number(arg, 1, 86400, &v); o->max_seconds = (unsigned)v; break;
	case 'R': o->resume = true; break;
	case 'A': bad = tvsio_number(arg, 1, 1000, &v); o->answers = (unsigned)v; break;
	default: return -1;
	}
	return bad;
}

static int
tc_parse(int argc, char **argv, struct tc_opts *o)
{
	static const struct option lo[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "itl", required_argument, NULL, 'I' },
		{ "device", required_argument, NULL, 'd' },
		{ "subject", required_argument, NULL, 's' },
		{ "issuer", required_argument, NULL, 'i' },
		{ "serial", required_argument, NULL, 'n' },
		{ "from-file", required_argument, NULL, 'f' },
		{ "tls1", no_argument, NULL, '0' },
		{ "tls1_2", no_argument, NULL, '2' },
		{ "tls1_3", no_argument, NULL, '3' },
		{ "cipher", required_argument, NULL, 'c' },
		{ "ciphersuites", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "trickle", required_argument, NULL, 'T' },
		{ "load", required_argument, NULL, 'L' },
		{ "concurrency", required_argument, NULL, 'N' },
		{ "max-seconds", required_argument, NULL, 'M' },
		{ "resume", no_argument, NULL, 'R' },
		{ "answers", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, li = 0;
	const char *cmd;

	while ((ch = getopt_long(argc, argv, "h", lo, &li)) != -1) {
		if (ch == 'h') {
			tc_usage(stdout);
			exit(0);
		}
		if (tc_option(o, ch, optarg) != 0) {
			if (ch != '?')
				fprintf(stderr, "tvs-client: bad value for --%s: %s\n", lo[li].name, optarg);
			return -1;
		}
	}
	cmd = optind < argc ? argv[optind] : "";
	if (strcmp(cmd, "verify") == 0 || strcmp(cmd, "raw") == 0) {
		o->cmd = cmd[0] == 'v' ? TC_VERIFY : TC_RAW;
		if (optind + 2 != argc) {
			fprintf(stderr, "tvs-client: %s takes one argument\n", cmd);
			return -1;
		}
		o->arg = argv[optind + 1];
	} else if (strcmp(cmd, "query") == 0 && optind + 1 == argc) {
		o->cmd = TC_QUERY;
	} else {
		fprintf(stderr, "tvs-client: a command is needed: verify, query or raw\n");
		return -1;
	}
	if (o->itl == NULL) {
		fprintf(stderr, "tvs-client: --itl FILE is required (a phone trusts a TVS only through its ITL)\n");
		return -1;
	}
	if (o->load == 0)
		o->concurrency = 1;
	return 0;
}

static void
tc_free(struct tc *t, struct tc_material *m)
{
	trust_cert_free(&m->cert);
	trust_file_free(&m->parsed);
	trust_buf_free(&m->file);
	SSL_CTX_free(t->ctx);
	if (t->ai != NULL)
		freeaddrinfo(t->ai);
	if (t->ep >= 0)
		close(t->ep);
	for (unsigned i = 0; t->slots != NULL && i < t->o.concurrency; i++) {
		free(t->slots[i].req);
		SSL_SESSION_free(t->slots[i].session);
	}
	free(t->slots);
	free(t->s.lat_ns);
	free(t->tvs_certs);
	trust_buf_free(&t->answers);
}

int
main(int argc, char **argv)
{
	static struct tc t;
	static struct tc_material m;
	struct trust_buf itl;
	struct trust_file itlf;
	struct trust_err err = { 0 };
	uint64_t t0;
	int rc;

	t.o = (struct tc_opts){ .host = "127.0.0.1", .port = "2445",
		.device = TC_DEFAULT_DEVICE, .min_tls = TLS1_VERSION, .max_tls = TLS1_3_VERSION,
		.ciphers = TC_DEFAULT_CIPHERS, .timeout_ms = 5000, .concurrency = 1, .answers = 1,
		.max_seconds = 60 };
	t.ep = -1;
	t.next_id = 1;
	if (tc_parse(argc, argv, &t.o) != 0) {
		tc_usage(stderr);
		return TC_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	tc_resume = t.o.resume;
	trust_buf_init(&itl);
	memset(&itlf, 0, sizeof(itlf));
	rc = tc_load_itl(&t, &itl, &itlf, &err);
	if (rc == 0)
		rc = tc_build_request(&t, &m, &err);
	if (rc == 0)
		rc = tc_tls_setup(&t, &err);
	if (rc == 0)
		rc = tc_net_setup(&t, &err);
	if (rc != 0) {
		fprintf(stderr, "tvs-client: %s\n", err.msg);
		rc = rc == TRUST_EINVAL ? TC_EXIT_USAGE : TC_EXIT_ERROR;
	} else {
		t0 = tvsio_now_ns();
		tc_run(&t);
		rc = t.o.load ? tc_report_load(&t, (double)(tvsio_now_ns() - t0) / 1e9)
			: tc_report_one(&t);
	}
	tc_free(&t, &m);
	trust_file_free(&itlf);
	trust_buf_free(&itl);
	return rc;
}
