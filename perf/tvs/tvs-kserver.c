/*
 * tvs-kserver: the kernel-socket TVS server. One thread, epoll, non-blocking
 * OpenSSL; answers with trust/tvs.c from the certificates of a publication
 * (trust/PUBLICATION.md). It is the baseline the DPDK TVS is measured
 * against and the oracle its tests compare with, so it follows the same
 * rules: TLS 1.0 to 1.3 by default (FORMATS §8.11), session IDs and tickets,
 * several requests per connection answered in order (§8.10), and any
 * malformed byte closes the connection.
 *
 * Signals: SIGHUP reloads the publication (keeping the old one if the new
 * one is refused), SIGUSR1 prints the counters, SIGINT/SIGTERM print them
 * and exit.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cert.h"
#include "publication.h"
#include "tvs.h"
#include "tvsio.h"

#define KS_DEFAULT_CIPHERS "DEFAULT:@SECLEVEL=0"
#define KS_SESSION_CONTEXT "tvs-kserver"
#define KS_MALFORMED_LOG 20	/* log the first few, then only count */
#define KS_SWEEP_NS 100000000ull

struct ks_opts {
	const char *pub;
	const char *listen;
	const char *port;
	unsigned max_conns;
	unsigned idle_ms;
	unsigned request_ms;
	int min_tls, max_tls;
	const char *ciphers;
	const char *ciphersuites;
	unsigned session_timeout;
};

/* One certificate the TVS vouches for, with its subject spelt once. */
struct ks_entry {
	const struct pub_cert *pc;
	char *subject;
};

/* A loaded publication: certificate table plus the TLS identity. */
struct ks_table {
	struct publication pub;
	struct ks_entry *entries;
	struct ks_entry **by_sha;	/* sorted by SHA-256 of the DER */
	struct ks_entry **by_isk;	/* sorted by issuer/serial key */
	size_t n;
	SSL_CTX *ctx;
};

enum ks_state { KS_FREE, KS_HANDSHAKE, KS_OPEN };

struct ks_conn {
	enum ks_state state;
	int fd;
	SSL *ssl;
	uint32_t events;		/* registered with epoll */
	uint64_t last_ns;		/* last byte in or out */
	uint64_t deadline_ns;		/* handshake or partial request; 0: none */
	struct trust_buf in;
	struct trust_buf out;
	size_t out_off;
	struct ks_conn *next_free;
};

struct ks_counters {
	uint64_t accepted, refused, closed;
	uint64_t full_handshakes, resumed, handshake_failures;
	uint64_t verify, query, trusted, untrusted;
	uint64_t malformed, truncated, idle_timeouts, request_timeouts, io_errors;
	uint64_t reloads, reload_failures;
};

struct ks_server {
	struct ks_opts o;
	struct ks_table *tab;
	int ep, lfd, sfd;
	struct ks_conn *conns;
	struct ks_conn *free_list;
	unsigned active;
	struct ks_counters c;
	bool quit;
};

/* epoll data for the two non-connection descriptors */
static char ks_listen_tag, ks_signal_tag;
static uint8_t ks_scratch[TVS_MSG_MAX];

/* Both indexes are pointer arrays sorted by a 32-byte key of pub_cert. */
#define KS_KEY(e, off) ((const uint8_t *)(e)->pc + (off))

static int
ks_cmp_key(const void *a, const void *b, void *off)
{
	return memcmp(KS_KEY(*(struct ks_entry *const *)a, (size_t)off),
		KS_KEY(*(struct ks_entry *const *)b, (size_t)off), 32);
}

static void
ks_index_sort(struct ks_entry **v, size_t n, size_t off)
{
	qsort_r(v, n, sizeof(*v), ks_cmp_key, (void *)off);
}

static int
ks_search(struct ks_entry *const *v, size_t n, size_t off, const uint8_t key[32],
	struct tvs_entry *e)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ks_entry *k = v[mid];
		int c = memcmp(key, KS_KEY(k, off), 32);

		if (c == 0) {
			e->der = k->pc->der;
			e->der_len = k->pc->der_len;
			e->roles = k->pc->roles;
			e->nroles = k->pc->nroles;
			e->ttl = k->pc->ttl;
			e->subject = k->subject;
			e->subject_len = k->subject != NULL ? strlen(k->subject) : 0;
			return 1;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

static int
ks_by_sha256(void *ctx, const uint8_t sha[32], struct tvs_entry *e)
{
	const struct ks_table *t = ctx;

	return ks_search(t->by_sha, t->n, offsetof(struct pub_cert, sha256), sha, e);
}

static int
ks_by_isk(void *ctx, const uint8_t key[32], struct tvs_entry *e)
{
	const struct ks_table *t = ctx;

	return ks_search(t->by_isk, t->n, offsetof(struct pub_cert, issuer_serial), key, e);
}

static void
ks_table_free(struct ks_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; t->entries != NULL && i < t->n; i++)
		free(t->entries[i].subject);
	free(t->entries);
	free(t->by_sha);
	free(t->by_isk);
	SSL_CTX_free(t->ctx);
	pub_free(&t->pub);
	free(t);
}

static int
ks_ctx_identity(SSL_CTX *ctx, const struct publication *p, struct trust_err *err)
{
	EVP_PKEY *key = NULL;
	int rc;

	if (SSL_CTX_use_certificate_chain_file(ctx, p->tvs_cert_path) != 1)
		return trust_err_openssl(err, TRUST_ECRYPTO, p->tvs_cert_path);
	rc = trust_key_load(p->tvs_key_path, &key, err);
	if (rc != 0)
		return rc;
	rc = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1
		? 0 : trust_err_openssl(err, TRUST_ECRYPTO, p->tvs_key_path);
	EVP_PKEY_free(key);
	return rc;
}

static SSL_CTX *
ks_ctx_new(const struct ks_opts *o, const struct publication *p, struct trust_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		trust_err_openssl(err, TRUST_ECRYPTO, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, o->min_tls) != 1
	    || SSL_CTX_set_max_proto_version(ctx, o->max_tls) != 1
	    || SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1
	    || (o->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1)) {
		trust_err_openssl(err, TRUST_EINVAL, "TLS versions or ciphers");
		goto fail;
	}
	if (ks_ctx_identity(ctx, p, err) != 0)
		goto fail;
	/* phones resume: keep both session IDs (server cache) and tickets */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)KS_SESSION_CONTEXT,
		sizeof(KS_SESSION_CONTEXT) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 50000);
	SSL_CTX_set_timeout(ctx, o->session_timeout);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
		| SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1);	/* one read per burst, not per record */
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Subjects are spelt once at load so QUERY_CERT never parses X.509. */
static int
ks_table_index(struct ks_table *t, struct trust_err *err)
{
	size_t n = t->pub.ncerts ? t->pub.ncerts : 1;

	t->entries = calloc(n, sizeof(*t->entries));
	t->by_sha = calloc(n, sizeof(*t->by_sha));
	t->by_isk = calloc(n, sizeof(*t->by_isk));
	if (t->entries == NULL || t->by_sha == NULL || t->by_isk == NULL)
		return trust_errf(err, TRUST_ENOMEM, "certificate table of %zu entries", n);
	for (; t->n < t->pub.ncerts; t->n++) {
		struct ks_entry *k = &t->entries[t->n];
		struct trust_cert c;

		k->pc = &t->pub.certs[t->n];
		memset(&c, 0, sizeof(c));
		if (trust_cert_from_der(k->pc->der, k->pc->der_len, &c, err) != 0)
			return err->code;
		k->subject = c.subject;
		c.subject = NULL;
		trust_cert_free(&c);
		t->by_sha[t->n] = t->by_isk[t->n] = k;
	}
	ks_index_sort(t->by_sha, t->n, offsetof(struct pub_cert, sha256));
	ks_index_sort(t->by_isk, t->n, offsetof(struct pub_cert, issuer_serial));
	return 0;
}

static struct ks_table *
ks_table_load(const struct ks_opts *o, struct trust_err *err)
{
	struct ks_table *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		trust_errf(err, TRUST_ENOMEM, "out of memory");
		return NULL;
	}
	if (pub_load(o->pub, &t->pub, err) != 0) {
		free(t);
		return NULL;
	}
	if (ks_table_index(t, err) != 0 || (t->ctx = ks_ctx_new(o, &t->pub, err)) == NULL) {
		ks_table_free(t);
		return NULL;
	}
	return t;
}

static void
ks_counters_print(const struct ks_server *s)
{
	const struct ks_counters *c = &s->c;

	printf("tvs-kserver: counters generation=%" PRIu64 " active=%u accepted=%" PRIu64
		" refused=%" PRIu64 " closed=%" PRIu64 " full_handshakes=%" PRIu64
		" resumed=%" PRIu64 " handshake_failures=%" PRIu64 " verify=%" PRIu64
		" query=%" PRIu64 " trusted=%" PRIu64 " untrusted=%" PRIu64 " malformed=%" PRIu64
		" truncated=%" PRIu64 " idle_timeouts=%" PRIu64 " request_timeouts=%" PRIu64
		" io_errors=%" PRIu64 " reloads=%" PRIu64 " reload_failures=%" PRIu64 "\n",
		s->tab->pub.generation, s->active, c->accepted, c->refused, c->closed,
		c->full_handshakes, c->resumed, c->handshake_failures, c->verify, c->query,
		c->trusted, c->untrusted, c->malformed, c->truncated, c->idle_timeouts,
		c->request_timeouts, c->io_errors, c->reloads, c->reload_failures);
	fflush(stdout);
}

static void
ks_close(struct ks_server *s, struct ks_conn *c, bool notify)
{
	if (notify && c->state == KS_OPEN)
		SSL_shutdown(c->ssl);	/* best effort: one close_notify, no wait */
	SSL_free(c->ssl);
	ERR_clear_error();
	close(c->fd);		/* also drops it from the epoll set */
	trust_buf_free(&c->in);
	trust_buf_free(&c->out);
	memset(c, 0, sizeof(*c));
	c->state = KS_FREE;
	c->next_free = s->free_list;
	s->free_list = c;
	s->active--;
	s->c.closed++;
}

static void
ks_want(struct ks_server *s, struct ks_conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events != events && epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

static void
ks_malformed(struct ks_server *s, struct ks_conn *c, const char *why)
{
	if (s->c.malformed++ < KS_MALFORMED_LOG)
		fprintf(stderr, "tvs-kserver: closing connection: %s\n", why);
	ks_close(s, c, true);
}

/* Answer every complete request in c->in; false when c was closed. */
static bool
ks_answer_all(struct ks_server *s, struct ks_conn *c)
{
	struct tvs_lookup lk = { ks_by_sha256, ks_by_isk, s->tab };
	struct trust_err err = { 0 };
	size_t used, olen;
	int st, rc;

	while (c->in.len > 0) {
		uint8_t type = c->in.len > 2 ? c->in.data[2] : 0;

		rc = tvs_handle(c->in.data, c->in.len, &lk, &used, ks_scratch,
			sizeof(ks_scratch), &olen, &st, &err);
		if (rc == TVS_FRAME_MORE)
			break;
		if (rc != TVS_FRAME_DONE) {
			ks_malformed(s, c, err.msg);
			return false;
		}
		*(type == TVS_QUERY_CERT_REQ ? &s->c.query : &s->c.verify) += 1;
		*(st == TVS_STATUS_TRUSTED ? &s->c.trusted : &s->c.untrusted) += 1;
		if (trust_buf_put(&c->out, ks_scratch, olen) != 0) {
			s->c.io_errors++;
			ks_close(s, c, false);
			return false;
		}
		memmove(c->in.data, c->in.data + used, c->in.len - used);
		c->in.len -= used;
	}
	/* a partial request has request_ms from its first byte to complete */
	if (c->in.len == 0)
		c->deadline_ns = 0;
	else if (c->deadline_ns == 0)
		c->deadline_ns = tvsio_now_ns() + (uint64_t)s->o.request_ms * 1000000u;
	return true;
}

/*
 * Drive an open connection as far as it goes: flush pending answers, answer
 * what is buffered, read more. Reading stops while answers are pending, so
 * a client that sends without reading holds at most one message of ours.
 */
static void
ks_conn_run(struct ks_server *s, struct ks_conn *c)
{
	enum tvsio_rc r;

	for (;;) {
		if (c->out.len > 0) {
			r = tvsio_flush(c->ssl, &c->out, &c->out_off);
			if (r != TVSIO_OK)
				break;
			c->last_ns = tvsio_now_ns();
		}
		if (!ks_answer_all(s, c))
			return;
		if (c->out.len > 0)
			continue;
		r = tvsio_read(c->ssl, &c->in, TVS_MSG_MAX);
		if (r != TVSIO_OK)
			break;
		c->last_ns = tvsio_now_ns();
	}
	if (r == TVSIO_WANT_READ || r == TVSIO_WANT_WRITE) {
		ks_want(s, c, r == TVSIO_WANT_READ ? EPOLLIN : EPOLLOUT);
		return;
	}
	if (r == TVSIO_EOF && c->in.len > 0) {
		if (s->c.truncated++ < KS_MALFORMED_LOG)
			fprintf(stderr, "tvs-kserver: peer closed after %zu byte(s) of a request\n",
				c->in.len);
	} else if (r == TVSIO_ERROR) {
		s->c.io_errors++;
	}
	ks_close(s, c, false);
}

static void
ks_conn_event(struct ks_server *s, struct ks_conn *c)
{
	enum tvsio_rc r;

	if (c->state == KS_HANDSHAKE) {
		r = tvsio_handshake(c->ssl);
		if (r == TVSIO_WANT_READ || r == TVSIO_WANT_WRITE) {
			ks_want(s, c, r == TVSIO_WANT_READ ? EPOLLIN : EPOLLOUT);
			return;
		}
		if (r != TVSIO_OK) {
			s->c.handshake_failures++;
			ks_close(s, c, false);
			return;
		}
		*(SSL_session_reused(c->ssl) ? &s->c.resumed : &s->c.full_handshakes) += 1;
		c->state = KS_OPEN;
		c->deadline_ns = 0;
		c->last_ns = tvsio_now_ns();
	}
	ks_conn_run(s, c);
}

static void
ks_accept_one(struct ks_server *s, int fd)
{
	struct ks_conn *c = s->free_list;
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t now = tvsio_now_ns();
	int one = 1;

	if (c == NULL) {
		s->c.refused++;
		close(fd);
		return;
	}
	c->ssl = SSL_new(s->tab->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
		s->c.io_errors++;
		close(fd);
		return;
	}
	SSL_set_accept_state(c->ssl);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->free_list = c->next_free;
	c->next_free = NULL;
	c->fd = fd;
	c->state = KS_HANDSHAKE;
	c->events = EPOLLIN;
	c->last_ns = now;
	c->deadline_ns = now + (uint64_t)s->o.request_ms * 1000000u;
	ev.data.ptr = c;
	s->active++;
	s->c.accepted++;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		s->c.io_errors++;
		ks_close(s, c, false);
		return;
	}
	ks_conn_event(s, c);	/* the ClientHello is often already there */
}

static void
ks_accept_all(struct ks_server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
			    && errno != ECONNABORTED)
				fprintf(stderr, "tvs-kserver: accept: %s\n", strerror(errno));
			return;
		}
		ks_accept_one(s, fd);
	}
}

static void
ks_sweep(struct ks_server *s, uint64_t now)
{
	uint64_t idle = (uint64_t)s->o.idle_ms * 1000000u;

	for (unsigned i = 0; i < s->o.max_conns; i++) {
		struct ks_conn *c = &s->conns[i];

		if (c->state == KS_FREE)
			continue;
		if (c->deadline_ns != 0 && now > c->deadline_ns) {
			if (c->state == KS_HANDSHAKE)
				s->c.handshake_failures++;
			else
				s->c.request_timeouts++;
			ks_close(s, c, false);
		} else if (now - c->last_ns > idle) {
			s->c.idle_timeouts++;
			ks_close(s, c, true);
		}
	}
}

static void
ks_reload(struct ks_server *s)
{
	struct trust_err err = { 0 };
	struct ks_table *t = ks_table_load(&s->o, &err);

	if (t == NULL) {
		s->c.reload_failures++;
		fprintf(stderr, "tvs-kserver: reload refused, keeping generation %" PRIu64 ": %s\n",
			s->tab->pub.generation, err.msg);
		return;
	}
	/* open connections keep their SSL, which holds a reference to the
	 * old SSL_CTX; the old table is only used inside ks_answer_all */
	ks_table_free(s->tab);
	s->tab = t;
	s->c.reloads++;
	printf("tvs-kserver: reloaded generation %" PRIu64 ", %zu certificates\n",
		t->pub.generation, t->n);
	fflush(stdout);
}

static void
ks_signals(struct ks_server *s)
{
	struct signalfd_siginfo si;

	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			ks_reload(s);
			break;
		case SIGUSR1:
			ks_counters_print(s);
			break;
		default:
			s->quit = true;
		}
	}
}

static int
ks_listen(struct ks_server *s)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
		.ai_socktype = SOCK_STREAM }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	int one = 1, rc = getaddrinfo(s->o.listen, s->o.port, &hints, &ai);

	if (rc != 0) {
		fprintf(stderr, "tvs-kserver: %s port %s: %s\n", s->o.listen, s->o.port,
			gai_strerror(rc));
		return -1;
	}
	s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || bind(s->lfd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s->lfd, 1024) != 0
	    || getsockname(s->lfd, (struct sockaddr *)&ss, &sl) != 0) {
		fprintf(stderr, "tvs-kserver: listen on %s port %s: %s\n", s->o.listen, s->o.port,
			strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
		NI_NUMERICHOST | NI_NUMERICSERV);
	printf("tvs-kserver: listening on %s port %s, generation %" PRIu64 ", %zu certificates\n",
		host, serv, s->tab->pub.generation, s->tab->n);
	fflush(stdout);
	return 0;
}

static int
ks_setup(struct ks_server *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t set;

	s->conns = calloc(s->o.max_conns, sizeof(*s->conns));
	if (s->conns == NULL)
		return -1;
	for (unsigned i = s->o.max_conns; i-- > 0;) {
		s->conns[i].next_free = s->free_list;
		s->free_list = &s->conns[i];
	}
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->sfd < 0 || s->ep < 0 || ks_listen(s) != 0)
		return -1;
	ev.data.ptr = &ks_listen_tag;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev) != 0)
		return -1;
	ev.data.ptr = &ks_signal_tag;
	return epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &ev);
}

static void
ks_run(struct ks_server *s)
{
	struct epoll_event evs[256];
	uint64_t last_sweep = tvsio_now_ns();

	while (!s->quit) {
		int n = epoll_wait(s->ep, evs, 256, 100);
		uint64_t now;

		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &ks_listen_tag)
				ks_accept_all(s);
			else if (p == &ks_signal_tag)
				ks_signals(s);
			else if (((struct ks_conn *)p)->state != KS_FREE)
				ks_conn_event(s, p);
		}
		now = tvsio_now_ns();
		if (now - last_sweep >= KS_SWEEP_NS) {
			ks_sweep(s, now);
			last_sweep = now;
		}
	}
}

static void
ks_usage(FILE *f)
{
	fprintf(f,
		"usage: tvs-kserver --pub DIR [options]\n"
		"  --pub DIR             publication root (follows current) or gen-N directory\n"
		"  --listen ADDR         address to bind (default 127.0.0.1)\n"
		"  --port N              TCP port (default 2445; 0 picks a free one, printed)\n"
		"  --max-conns N         open connections at most (default 1024)\n"
		"  --idle-timeout MS     close a silent connection after MS (default 30000)\n"
		"  --request-timeout MS  a handshake or a started request must complete\n"
		"                        within MS (default 10000)\n"
		"  --min-tls V / --max-tls V   1.0, 1.1, 1.2, 1.3 (default 1.0 .. 1.3)\n"
		"  --cipher STR          TLS <= 1.2 cipher list (default %s)\n"
		"  --ciphersuites STR    TLS 1.3 suites (default OpenSSL's)\n"
		"  --session-timeout S   lifetime of session IDs and tickets (default 7200)\n",
		KS_DEFAULT_CIPHERS);
}

static int
ks_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;

	if (tvsio_number(s, min, max, &v) != 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
ks_parse(int argc, char **argv, struct ks_opts *o)
{
	static const struct option lo[] = {
		{ "pub", required_argument, NULL, 'P' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "request-timeout", required_argument, NULL, 'r' },
		{ "min-tls", required_argument, NULL, '<' },
		{ "max-tls", required_argument, NULL, '>' },
		{ "cipher", required_argument, NULL, 'c' },
		{ "ciphersuites", required_argument, NULL, 'C' },
		{ "session-timeout", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned port;
	int ch, li = 0, bad = 0;

	while ((ch = getopt_long(argc, argv, "h", lo, &li)) != -1) {
		switch (ch) {
		case 'P': o->pub = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'p': o->port = optarg; bad |= ks_uint(optarg, 0, 65535, &port); break;
		case 'm': bad |= ks_uint(optarg, 1, 1000000, &o->max_conns); break;
		case 'i': bad |= ks_uint(optarg, 1, 86400000, &o->idle_ms); break;
		case 'r': bad |= ks_uint(optarg, 1, 86400000, &o->request_ms); break;
		case '<': bad |= (o->min_tls = tvsio_tls_version(optarg)) == 0 ? -1 : 0; break;
		case '>': bad |= (o->max_tls = tvsio_tls_version(optarg)) == 0 ? -1 : 0; break;
		case 'c': o->ciphers = optarg; break;
		case 'C': o->ciphersuites = optarg; break;
		case 's': bad |= ks_uint(optarg, 1, 864000, &o->session_timeout); break;
		case 'h': ks_usage(stdout); exit(0);
		default: bad = -1;
		}
		if (bad) {
			if (ch != '?')
				fprintf(stderr, "tvs-kserver: bad value for --%s: %s\n",
					lo[li].name, optarg);
			return -1;
		}
	}
	if (o->pub == NULL || optind != argc) {
		fprintf(stderr, "tvs-kserver: %s\n", o->pub == NULL ? "--pub DIR is required"
			: "unexpected argument");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct ks_server s;
	struct trust_err err = { 0 };

	s.o = (struct ks_opts){ .listen = "127.0.0.1", .port = "2445", .max_conns = 1024,
		.idle_ms = 30000, .request_ms = 10000, .min_tls = TLS1_VERSION,
		.max_tls = TLS1_3_VERSION, .ciphers = KS_DEFAULT_CIPHERS,
		.session_timeout = 7200 };
	if (ks_parse(argc, argv, &s.o) != 0) {
		ks_usage(stderr);
		return 2;
	}
	s.tab = ks_table_load(&s.o, &err);
	if (s.tab == NULL) {
		fprintf(stderr, "tvs-kserver: %s: %s\n", s.o.pub, err.msg);
		return 1;
	}
	if (ks_setup(&s) != 0) {
		fprintf(stderr, "tvs-kserver: setup failed: %s\n", strerror(errno));
		return 1;
	}
	ks_run(&s);
	for (unsigned i = 0; i < s.o.max_conns; i++)
		if (s.conns[i].state != KS_FREE)
			ks_close(&s, &s.conns[i], true);
	ks_counters_print(&s);
	close(s.lfd);
	close(s.sfd);
	close(s.ep);
	free(s.conns);
	ks_table_free(s.tab);
	return 0;
}
