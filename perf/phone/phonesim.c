/*
 * phonesim: a fleet of simulated Security-by-Default phones booting against
 * a TFTP server and its TVS, on kernel sockets (README.md).
 *
 * Each phone boots like FORMATS §1.9 says: CTLSEP<MAC>.tlv, ITLSEP<MAC>.tlv,
 * then its config (.enc.sgn with a key, .sgn, XMLDefault, unsigned last),
 * and asks a TVS of its ITL about any signer it does not know. phtrust.c
 * makes every decision; this file only moves bytes: one epoll loop drives
 * up to --concurrency phones, each with at most one socket at a time (a
 * UDP socket per TFTP transfer, driven by the tgproto state machine, or a
 * non-blocking TLS connection to a TVS).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "phonesim.h"
#include "sign.h"
#include "tgopts.h"
#include "tgproto.h"
#include "tvsio.h"

#define PH_EXIT_OK 0
#define PH_EXIT_NOT_ALL 1
#define PH_EXIT_USAGE 2
#define PH_EXIT_ERROR 3
#define PH_PHONES_MAX (1u << 24)	/* MACs from one seed stay distinct */
#define PH_TVS_CAND_MAX (2 * PH_TVS_MAX + 8)
#define PH_TICK_NS 5000000ull
#define PH_CIPHERS "DEFAULT:@SECLEVEL=0"

enum ph_cmd { CMD_BOOT, CMD_KEYGEN, CMD_MACS };

struct ph_opts {
	enum ph_cmd cmd;
	uint32_t server_ip;
	uint16_t tftp_port;
	uint32_t phones, concurrency;
	unsigned max_seconds;
	uint64_t mac_base;
	bool mac_base_set;
	uint64_t seed;
	uint32_t src_ip, src_count;
	const char *state_dir, *keys_dir;
	bool gen_keys;
	unsigned key_bits;
	struct ph_tvs_addr tvs[PH_TVS_MAX];
	size_t ntvs;
	unsigned tvs_timeout_ms;
	const char *model;
	bool json, per_phone;
	struct tg_params tp;
};

enum ph_stage { ST_CTL, ST_ITL, ST_CFG, ST_DONE };
enum ph_io { IO_NONE, IO_TFTP, IO_TVS };
enum ph_tvs_state { TS_CONNECTING, TS_HANDSHAKE, TS_SENDING, TS_RECEIVING };

/* A phone while it boots; the slot is reused by the next phone. */
struct ph_live {
	struct ph_result *r;
	uint32_t index;
	uint32_t src_ip;
	enum ph_stage stage;
	unsigned cand;			/* config candidate being tried */
	bool transfer_failed;		/* some transfer ended in an error */
	bool keep_state;		/* its state file did not load: leave it alone */
	struct ph_trust trust;
	EVP_PKEY *key;
	/* the one socket */
	enum ph_io io;
	int fd;
	uint32_t events;
	/* TFTP */
	struct tg_xfer x;
	struct trust_buf file;		/* what was fetched, kept during a TVS query */
	char name[PH_NAME_MAX];
	enum ph_config_kind kind;
	/* TVS */
	struct ph_query q;
	char pending[PH_WHY_MAX];	/* why a TVS is asked */
	struct ph_tvs_addr cand_tvs[PH_TVS_CAND_MAX];
	size_t ncand_tvs, tvs_idx;
	enum ph_tvs_state ts;
	SSL *ssl;
	struct trust_buf in, out;
	size_t out_off;
	uint32_t req_id;
	uint64_t tvs_deadline;
	char tvs_err[160];
};

struct ph_fleet {
	struct ph_opts o;
	struct ph_result *res;
	struct ph_live *slots;
	uint32_t next, live;
	int ep;
	SSL_CTX *ctx;
	uint64_t t0, deadline;
	uint8_t rx[65536];
	uint8_t tx[TG_RRQ_MAX];
};

static volatile sig_atomic_t ph_stop;

static void
ph_on_signal(int sig)
{
	(void)sig;
	ph_stop = 1;
}

static const struct {
	const char *suffix;
	bool per_device;
	enum ph_config_kind kind;
} ph_cands[] = {
	{ ".cnf.xml.enc.sgn", true, PH_CFG_ENC },
	{ ".cnf.xml.sgn", true, PH_CFG_SGN },
	{ ".cnf.xml.sgn", false, PH_CFG_SGN },
	{ ".cnf.xml", true, PH_CFG_UNSIGNED },
	{ ".cnf.xml", false, PH_CFG_UNSIGNED },
};
#define PH_NCANDS (sizeof(ph_cands) / sizeof(ph_cands[0]))

static void ph_fetched(struct ph_fleet *fl, struct ph_live *lv, int rc, const char *why,
	uint64_t now);
static void ph_next_stage(struct ph_fleet *fl, struct ph_live *lv, uint64_t now);
static void ph_decide(struct ph_fleet *fl, struct ph_live *lv, const struct tvs_response *rs,
	uint64_t now);

/* ---- phones: names, keys, state ------------------------------------------ */

static uint64_t
ph_mix(uint64_t x)
{
	/* splitmix64: spreads a small seed over all bits */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Phone i's MAC: --mac-base + i, or a locally administered prefix drawn
 * from the seed with i in the low 24 bits. */
static uint64_t
ph_mac(const struct ph_opts *o, uint32_t i)
{
	uint64_t base = o->mac_base_set ? o->mac_base
		: 0x020000000000ull | ((ph_mix(o->seed) & 0xffffull) << 24);

	return (base + i) & 0xffffffffffffull;
}

static void
ph_path(char *out, size_t n, const char *dir, const char *sep, const char *ext)
{
	snprintf(out, n, "%s/%s%s", dir, sep, ext);
}

/* A key and self-signed certificate for a phone that has none (its LSC). */
static int
ph_keygen_one(const struct ph_opts *o, const char *sep, struct trust_err *err)
{
	char kp[4096], cp[4096], cn[64];
	struct trust_cert_params prm = { .cn = cn, .ou = "phonesim", .o = "Simulated Phones",
		.days = 3650 };
	struct trust_cert c;
	struct trust_buf pem;
	EVP_PKEY *key;
	struct stat sb;
	int rc;

	ph_path(kp, sizeof(kp), o->keys_dir, sep, ".key");
	ph_path(cp, sizeof(cp), o->keys_dir, sep, ".pem");
	if (stat(kp, &sb) == 0 && stat(cp, &sb) == 0)
		return 0;
	snprintf(cn, sizeof(cn), "CP-%s-%s", o->model, sep);
	if ((key = trust_key_generate_rsa(o->key_bits, err)) == NULL)
		return err->code;
	rc = trust_cert_selfsign(key, &prm, &c, err);
	if (rc == 0)
		rc = trust_key_save(kp, key, err);
	if (rc == 0 && trust_cert_pem(&c, &pem) == 0) {
		rc = trust_file_write_atomic(cp, pem.data, pem.len, 0644, err);
		trust_buf_free(&pem);
	} else if (rc == 0) {
		rc = trust_errf(err, TRUST_ENOMEM, "%s: out of memory", cp);
	}
	trust_cert_free(&c);
	EVP_PKEY_free(key);
	return rc;
}

static int
ph_keygen_all(const struct ph_fleet *fl)
{
	struct trust_err err = { 0 };

	if (mkdir(fl->o.keys_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "phonesim: --phone-keys %s: %s\n", fl->o.keys_dir, strerror(errno));
		return -1;
	}
	for (uint32_t i = 0; i < fl->o.phones && !ph_stop; i++) {
		if (ph_keygen_one(&fl->o, fl->res[i].sep, &err) != 0) {
			fprintf(stderr, "phonesim: %s\n", err.msg);
			return -1;
		}
	}
	return 0;
}

/* The phone's LSC key, if --phone-keys has one for it. */
static int
ph_load_key(const struct ph_fleet *fl, struct ph_live *lv, struct trust_err *err)
{
	char kp[4096];
	struct stat sb;

	if (fl->o.keys_dir == NULL)
		return 0;
	ph_path(kp, sizeof(kp), fl->o.keys_dir, lv->r->sep, ".key");
	if (stat(kp, &sb) != 0)
		return 0;
	return trust_key_load(kp, &lv->key, err);
}

static void
ph_state_path(const struct ph_fleet *fl, const struct ph_result *r, char *out, size_t n)
{
	ph_path(out, n, fl->o.state_dir, r->sep, ".state");
}

/* ---- the one socket of a phone ----------------------------------------------- */

static void
ph_want(struct ph_fleet *fl, struct ph_live *lv, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = lv };

	if (lv->events == events)
		return;
	if (epoll_ctl(fl->ep, lv->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, lv->fd, &ev) == 0)
		lv->events = events;
}

static void
ph_close_io(struct ph_live *lv)
{
	if (lv->ssl != NULL) {
		SSL_free(lv->ssl);
		lv->ssl = NULL;
	}
	ERR_clear_error();
	if (lv->fd >= 0)
		close(lv->fd);	/* also leaves the epoll set */
	lv->fd = -1;
	lv->events = 0;
	lv->io = IO_NONE;
}

/* A socket of the type given, bound to the phone's address if it has one. */
static int
ph_socket(struct ph_live *lv, int type, char *why, size_t whysz)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(lv->src_ip) };

	lv->fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lv->fd < 0) {
		snprintf(why, whysz, "socket: %s", strerror(errno));
		return -1;
	}
	if (lv->src_ip != 0 && bind(lv->fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
		snprintf(why, whysz, "bind to the phone's address: %s", strerror(errno));
		close(lv->fd);
		lv->fd = -1;
		return -1;
	}
	return 0;
}

/* ---- TFTP ------------------------------------------------------------------ */

enum { FETCH_OK, FETCH_NOTFOUND, FETCH_ERROR };

static void
ph_send(struct ph_fleet *fl, struct ph_live *lv, size_t len)
{
	struct sockaddr_in to = {
		.sin_family = AF_INET,
		.sin_port = htons(lv->x.tid ? lv->x.tid : fl->o.tftp_port),
		.sin_addr.s_addr = htonl(fl->o.server_ip),
	};

	/* a lost datagram is what the retransmission timer is for */
	(void)sendto(lv->fd, fl->tx, len, 0, (struct sockaddr *)&to, sizeof(to));
}

static void
ph_fetch(struct ph_fleet *fl, struct ph_live *lv, const char *name, uint64_t now)
{
	char why[PH_WHY_MAX];
	size_t len;

	snprintf(lv->name, sizeof(lv->name), "%s", name);
	trust_buf_free(&lv->file);
	if (ph_socket(lv, SOCK_DGRAM, why, sizeof(why)) != 0) {
		ph_fetched(fl, lv, FETCH_ERROR, why, now);
		return;
	}
	lv->io = IO_TFTP;
	ph_want(fl, lv, EPOLLIN);
	len = tg_start(&lv->x, &fl->o.tp, name, now, fl->tx);
	ph_send(fl, lv, len);
}

static void
ph_fetch_end(struct ph_fleet *fl, struct ph_live *lv, enum tg_action a, const uint8_t *pl,
	size_t len, uint64_t now)
{
	char why[PH_WHY_MAX];
	int rc = FETCH_OK;

	lv->r->retransmits += lv->x.retransmits;
	lv->r->dups += lv->x.dups;
	ph_close_io(lv);
	if (a == TG_FAIL && lv->x.fail == TG_FAIL_ERROR_PKT) {
		int ml = len > 4 ? (int)strnlen((const char *)pl + 4, len - 4) : 0;

		rc = lv->x.error_code == 1 ? FETCH_NOTFOUND : FETCH_ERROR;
		snprintf(why, sizeof(why), "TFTP error %u%s%.*s", lv->x.error_code,
			ml ? ": " : "", ml > 100 ? 100 : ml, ml ? (const char *)pl + 4 : "");
	} else if (a == TG_FAIL) {
		rc = FETCH_ERROR;
		snprintf(why, sizeof(why), "TFTP %s after %u retransmits",
			tg_fail_name(lv->x.fail), lv->x.retransmits);
	} else {
		why[0] = '\0';
	}
	ph_fetched(fl, lv, rc, why, now);
}

static void
ph_tftp_act(struct ph_fleet *fl, struct ph_live *lv, enum tg_action a, size_t outlen,
	const uint8_t *pl, size_t len, uint64_t now)
{
	if (outlen > 0)
		ph_send(fl, lv, outlen);
	if (a == TG_DONE || a == TG_FAIL)
		ph_fetch_end(fl, lv, a, pl, len, now);
}

static void
ph_tftp_input(struct ph_fleet *fl, struct ph_live *lv)
{
	for (unsigned budget = 64; lv->io == IO_TFTP && budget > 0; budget--) {
		struct sockaddr_in from;
		socklen_t fl_len = sizeof(from);
		ssize_t n = recvfrom(lv->fd, fl->rx, sizeof(fl->rx), 0, (struct sockaddr *)&from,
			&fl_len);
		uint64_t before = lv->x.bytes, now;
		enum tg_action a;
		size_t outlen;

		if (n < 0)
			return;
		if (ntohl(from.sin_addr.s_addr) != fl->o.server_ip)
			continue;
		now = tvsio_now_ns();
		a = tg_input(&lv->x, &fl->o.tp, now, ntohs(from.sin_port), fl->rx, (size_t)n,
			fl->tx, &outlen);
		/* tgproto counts the bytes of each new block: keep them */
		if (lv->x.bytes > before) {
			size_t got = (size_t)(lv->x.bytes - before);

			if (lv->file.len + got > PH_CONFIG_MAX
			    || trust_buf_put(&lv->file, fl->rx + 4, got) != 0) {
				lv->r->retransmits += lv->x.retransmits;
				ph_close_io(lv);
				ph_fetched(fl, lv, FETCH_ERROR, "file too large or out of memory", now);
				return;
			}
		}
		ph_tftp_act(fl, lv, a, outlen, fl->rx, (size_t)n, now);
	}
}

/* ---- TVS --------------------------------------------------------------------- */

static void
ph_tvs_add(struct ph_live *lv, const char *host, uint16_t port)
{
	for (size_t i = 0; i < lv->ncand_tvs; i++)
		if (lv->cand_tvs[i].port == port && strcmp(lv->cand_tvs[i].host, host) == 0)
			return;
	if (lv->ncand_tvs < PH_TVS_CAND_MAX && strlen(host) < PH_HOST_MAX) {
		snprintf(lv->cand_tvs[lv->ncand_tvs].host, PH_HOST_MAX, "%s", host);
		lv->cand_tvs[lv->ncand_tvs++].port = port;
	}
}

/* Where to ask: the config's TVS members, the ITL's TVS record addresses,
 * then --tvs. */
static void
ph_tvs_candidates(const struct ph_fleet *fl, struct ph_live *lv)
{
	const struct ph_installed *itl = &lv->trust.itl;

	lv->ncand_tvs = 0;
	for (size_t i = 0; i < lv->trust.ntvs; i++)
		ph_tvs_add(lv, lv->trust.tvs[i].host, lv->trust.tvs[i].port);
	for (size_t i = 0; ph_has(itl) && i < itl->f.nrecs; i++) {
		const struct trust_record *r = &itl->f.recs[i];
		char ip[INET_ADDRSTRLEN];

		if (r->has_role && r->role == TRUST_ROLE_TVS && r->cert.len > 0 && r->has_ip
		    && inet_ntop(AF_INET, r->ip, ip, sizeof(ip)) != NULL)
			ph_tvs_add(lv, ip, TVS_PORT);
	}
	for (size_t i = 0; i < fl->o.ntvs; i++)
		ph_tvs_add(lv, fl->o.tvs[i].host, fl->o.tvs[i].port);
}

static void ph_tvs_try(struct ph_fleet *fl, struct ph_live *lv, uint64_t now);

/* This TVS did not answer: remember why, try the next one. */
static void
ph_tvs_next(struct ph_fleet *fl, struct ph_live *lv, uint64_t now, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
ph_tvs_next(struct ph_fleet *fl, struct ph_live *lv, uint64_t now, const char *fmt, ...)
{
	const struct ph_tvs_addr *a = &lv->cand_tvs[lv->tvs_idx];
	char msg[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(lv->tvs_err, sizeof(lv->tvs_err), "%s:%u %s", a->host, a->port, msg);
	ph_close_io(lv);
	trust_buf_free(&lv->in);
	trust_buf_free(&lv->out);
	lv->tvs_idx++;
	ph_tvs_try(fl, lv, now);
}

static int
ph_tvs_resolve(const struct ph_tvs_addr *a, struct sockaddr_in *sa)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(a->port);
	if (inet_pton(AF_INET, a->host, &sa->sin_addr) == 1)
		return 0;
	/* a host name in a config: resolved the simple (blocking) way */
	if (getaddrinfo(a->host, NULL, &hints, &ai) != 0)
		return -1;
	sa->sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
	freeaddrinfo(ai);
	return 0;
}

/* Every TVS tried: go on with what we have (or have not). */
static void
ph_tvs_exhausted(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	lv->r->tvs_failed++;
	snprintf(lv->r->tvs_last, sizeof(lv->r->tvs_last), "no answer: %.140s", lv->tvs_err);
	ph_decide(fl, lv, NULL, now);
}

static void
ph_tvs_try(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	struct sockaddr_in sa;
	char why[PH_WHY_MAX];
	int one = 1;

	if (lv->tvs_idx >= lv->ncand_tvs) {
		ph_tvs_exhausted(fl, lv, now);
		return;
	}
	if (ph_tvs_resolve(&lv->cand_tvs[lv->tvs_idx], &sa) != 0) {
		ph_tvs_next(fl, lv, now, "does not resolve");
		return;
	}
	if (ph_socket(lv, SOCK_STREAM, why, sizeof(why)) != 0) {
		ph_tvs_next(fl, lv, now, "%s", why);
		return;
	}
	setsockopt(lv->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	lv->io = IO_TVS;
	lv->ts = TS_CONNECTING;
	lv->tvs_deadline = now + (uint64_t)fl->o.tvs_timeout_ms * 1000000u;
	trust_buf_init(&lv->in);
	trust_buf_init(&lv->out);
	lv->out_off = 0;
	if (connect(lv->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		ph_tvs_next(fl, lv, now, "connect: %s", strerror(errno));
		return;
	}
	ph_want(fl, lv, EPOLLOUT);
}

static void
ph_tvs_begin(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	lv->r->tvs_queries++;
	lv->req_id = 1000 + lv->r->tvs_queries;
	lv->tvs_idx = 0;
	snprintf(lv->tvs_err, sizeof(lv->tvs_err), "the phone knows no TVS address");
	ph_tvs_candidates(fl, lv);
	ph_tvs_try(fl, lv, now);
}

/* A phone talks only to a TVS whose certificate is a TVS record of its ITL. */
static bool
ph_tvs_server_ok(struct ph_live *lv, char *subject, size_t n)
{
	struct trust_bytes certs[PH_TVS_CAND_MAX];
	X509 *x = SSL_get0_peer_certificate(lv->ssl);
	unsigned char *der = NULL;
	int len = x != NULL ? i2d_X509(x, &der) : -1;
	size_t nc = ph_tvs_certs(&lv->trust, certs, PH_TVS_CAND_MAX);
	bool found = false;
	struct trust_cert c;

	snprintf(subject, n, "no certificate");
	for (size_t i = 0; len > 0 && i < nc && !found; i++)
		found = certs[i].len == (size_t)len && memcmp(certs[i].p, der, (size_t)len) == 0;
	if (len > 0 && trust_cert_from_der(der, (size_t)len, &c, NULL) == 0) {
		snprintf(subject, n, "%s", c.subject);
		trust_cert_free(&c);
	}
	OPENSSL_free(der);
	return found;
}

static int
ph_tvs_request(struct ph_fleet *fl, struct ph_live *lv)
{
	char dev[64];
	struct tvs_request rq = { .type = TVS_QUERY_CERT_REQ, .id = lv->req_id,
		.subject = lv->q.subject, .issuer = lv->q.issuer, .serial = lv->q.serial };

	snprintf(dev, sizeof(dev), "CP-%s-%s", fl->o.model, lv->r->sep);
	rq.device = (struct trust_bytes){ (const uint8_t *)dev, strlen(dev) };
	if (trust_buf_reserve(&lv->out, TVS_MSG_MAX) != 0)
		return -1;
	return tvs_request_build(&rq, lv->out.data, lv->out.cap, &lv->out.len, NULL);
}

static int
ph_tvs_handshake(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	char e[256], subject[256];
	enum tvsio_rc r = tvsio_handshake(lv->ssl);

	if (r == TVSIO_WANT_READ || r == TVSIO_WANT_WRITE) {
		ph_want(fl, lv, r == TVSIO_WANT_READ ? EPOLLIN : EPOLLOUT);
		return 1;
	}
	if (r != TVSIO_OK) {
		ph_tvs_next(fl, lv, now, "TLS handshake: %s", tvsio_ssl_error(e, sizeof(e)));
		return -1;
	}
	if (!ph_tvs_server_ok(lv, subject, sizeof(subject))) {
		ph_tvs_next(fl, lv, now, "presented %.80s, not a TVS certificate of the ITL",
			subject);
		return -1;
	}
	if (ph_tvs_request(fl, lv) != 0) {
		ph_tvs_next(fl, lv, now, "the query does not fit in a TVS message");
		return -1;
	}
	lv->ts = TS_SENDING;
	return 0;
}

/* The whole answer is in lv->in[0..n): parse it and let the phone decide. */
static void
ph_tvs_answer(struct ph_fleet *fl, struct ph_live *lv, size_t n, uint64_t now)
{
	const struct ph_tvs_addr *a = &lv->cand_tvs[lv->tvs_idx];
	struct trust_err err = { 0 };
	struct tvs_response rs;

	if (tvs_response_parse(lv->in.data, n, &rs, &err) != 0) {
		ph_tvs_next(fl, lv, now, "bad answer: %.100s", err.msg);
		return;
	}
	if (rs.type != TVS_QUERY_CERT_RES || rs.id != lv->req_id) {
		ph_tvs_next(fl, lv, now, "answer %s id %u to QUERY_CERT id %u",
			tvs_type_name(rs.type), rs.id, lv->req_id);
		return;
	}
	SSL_shutdown(lv->ssl);
	ph_close_io(lv);
	*(rs.status == TVS_STATUS_TRUSTED ? &lv->r->tvs_trusted : &lv->r->tvs_untrusted) += 1;
	snprintf(lv->r->tvs_last, sizeof(lv->r->tvs_last), "%s:%u said %s", a->host, a->port,
		rs.status == TVS_STATUS_TRUSTED ? "trusted" : "untrusted");
	ph_decide(fl, lv, &rs, now);	/* rs points into lv->in */
	trust_buf_free(&lv->in);
	trust_buf_free(&lv->out);
}

static int
ph_tvs_receive(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	char e[256];

	for (;;) {
		enum tvsio_rc r;
		size_t n;

		if (lv->in.len > 0) {
			int fr = tvs_frame(lv->in.data, lv->in.len, &n, NULL);

			if (fr < 0) {
				ph_tvs_next(fl, lv, now, "answer is not a TVS message");
				return -1;
			}
			if (fr == TVS_FRAME_DONE) {
				ph_tvs_answer(fl, lv, n, now);
				return -1;
			}
		}
		r = tvsio_read(lv->ssl, &lv->in, TVS_MSG_MAX);
		if (r == TVSIO_WANT_READ || r == TVSIO_WANT_WRITE) {
			ph_want(fl, lv, r == TVSIO_WANT_READ ? EPOLLIN : EPOLLOUT);
			return 1;
		}
		if (r != TVSIO_OK) {
			ph_tvs_next(fl, lv, now, "reading the answer: %s", r == TVSIO_EOF
				? "closed before the answer" : tvsio_ssl_error(e, sizeof(e)));
			return -1;
		}
	}
}

static int
ph_tvs_connected(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	int e = 0;
	socklen_t el = sizeof(e);

	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);

	if (getsockopt(lv->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
		ph_tvs_next(fl, lv, now, "connect: %s", strerror(e ? e : errno));
		return -1;
	}
	/* woken by an event of this slot's previous socket: still connecting */
	if (getpeername(lv->fd, (struct sockaddr *)&peer, &pl) != 0) {
		ph_want(fl, lv, EPOLLOUT);
		return 1;
	}
	lv->ssl = SSL_new(fl->ctx);
	if (lv->ssl == NULL || SSL_set_fd(lv->ssl, lv->fd) != 1) {
		ph_tvs_next(fl, lv, now, "SSL_new failed");
		return -1;
	}
	SSL_set_connect_state(lv->ssl);
	lv->ts = TS_HANDSHAKE;
	return 0;
}

/* Advance the TVS exchange as far as it goes without blocking. */
static void
ph_tvs_step(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	char e[256];
	int rc = 0;

	while (rc == 0 && lv->io == IO_TVS) {
		enum tvsio_rc r;

		switch (lv->ts) {
		case TS_CONNECTING:
			rc = ph_tvs_connected(fl, lv, now);
			break;
		case TS_HANDSHAKE:
			rc = ph_tvs_handshake(fl, lv, now);
			break;
		case TS_SENDING:
			r = tvsio_flush(lv->ssl, &lv->out, &lv->out_off);
			if (r == TVSIO_WANT_READ || r == TVSIO_WANT_WRITE) {
				ph_want(fl, lv, r == TVSIO_WANT_READ ? EPOLLIN : EPOLLOUT);
				rc = 1;
			} else if (r != TVSIO_OK) {
				ph_tvs_next(fl, lv, now, "sending: %s", tvsio_ssl_error(e, sizeof(e)));
				rc = -1;
			} else {
				lv->ts = TS_RECEIVING;
			}
			break;
		case TS_RECEIVING:
			rc = ph_tvs_receive(fl, lv, now);
			break;
		}
	}
}

/* ---- the boot ------------------------------------------------------------------ */

static void
ph_sha1_hex(const struct trust_buf *b, char *out)
{
	uint8_t md[20];
	unsigned n = 0;

	out[0] = '\0';
	if (b->len > 0 && EVP_Digest(b->data, b->len, md, &n, EVP_sha1(), NULL) == 1)
		trust_hex(md, n, out);
}

static void
ph_finish(struct ph_fleet *fl, struct ph_live *lv, enum ph_outcome out, uint64_t now)
{
	struct ph_result *r = lv->r;
	struct trust_err err = { 0 };
	char path[4096];

	r->outcome = out;
	r->t_end = now;
	ph_sha1_hex(&lv->trust.itl.bytes, r->itl_sha1);
	r->itl_installs = lv->trust.itl_installs;
	r->boots = lv->trust.boots;
	r->ntvs = lv->trust.ntvs;
	if (fl->o.state_dir != NULL && out != PH_OUT_ABORTED && !lv->keep_state) {
		ph_state_path(fl, r, path, sizeof(path));
		if (ph_state_save(path, &lv->trust, &err) != 0)
			fprintf(stderr, "phonesim: %s: state not saved: %s\n", r->sep, err.msg);
	}
	ph_close_io(lv);
	trust_buf_wipe(&lv->file);
	trust_buf_free(&lv->in);
	trust_buf_free(&lv->out);
	ph_trust_free(&lv->trust);
	EVP_PKEY_free(lv->key);
	lv->key = NULL;
	lv->r = NULL;
	lv->stage = ST_DONE;
	fl->live--;
}

/* The outcome once the config step is over. */
static enum ph_outcome
ph_outcome_of(const struct ph_live *lv, bool no_key)
{
	const struct ph_result *r = lv->r;

	if (r->ctl.how == PH_REJECTED || r->itl.how == PH_REJECTED)
		return PH_OUT_TL_FAILED;
	if (r->cfg.how == PH_REJECTED)
		return PH_OUT_CFG_REJECTED;
	if (r->cfg.how != PH_NONE)
		return no_key ? PH_OUT_NO_KEY : PH_OUT_PROVISIONED;
	return lv->transfer_failed ? PH_OUT_FAILED : PH_OUT_NO_CONFIG;
}

static struct ph_step *
ph_cur_step(struct ph_live *lv)
{
	return lv->stage == ST_CTL ? &lv->r->ctl : lv->stage == ST_ITL ? &lv->r->itl
		: &lv->r->cfg;
}

/* Try the next config candidate, or finish when none is left. */
static void
ph_next_config(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	char name[PH_NAME_MAX];

	for (; lv->cand < PH_NCANDS; lv->cand++) {
		if (ph_cands[lv->cand].kind == PH_CFG_ENC && lv->key == NULL)
			continue;
		snprintf(name, sizeof(name), "%s%s", ph_cands[lv->cand].per_device ? lv->r->sep
			: "XMLDefault", ph_cands[lv->cand].suffix);
		lv->kind = ph_cands[lv->cand++].kind;
		ph_fetch(fl, lv, name, now);
		return;
	}
	if (!lv->transfer_failed)
		snprintf(lv->r->cfg.why, sizeof(lv->r->cfg.why), "no config file on the server");
	ph_finish(fl, lv, ph_outcome_of(lv, false), now);
}

static void
ph_next_stage(struct ph_fleet *fl, struct ph_live *lv, uint64_t now)
{
	char name[PH_NAME_MAX];

	if (ph_stop || now >= fl->deadline) {
		ph_finish(fl, lv, PH_OUT_ABORTED, now);
		return;
	}
	switch (lv->stage) {
	case ST_CTL:
		lv->stage = ST_ITL;
		snprintf(name, sizeof(name), "ITL%s.tlv", lv->r->sep);
		ph_fetch(fl, lv, name, now);
		break;
	case ST_ITL:
		lv->stage = ST_CFG;
		lv->cand = 0;
		ph_next_config(fl, lv, now);
		break;
	default:
		break;
	}
}

static void
ph_fetched(struct ph_fleet *fl, struct ph_live *lv, int rc, const char *why, uint64_t now)
{
	struct ph_step *s = ph_cur_step(lv);

	if (rc == FETCH_OK) {
		snprintf(s->file, sizeof(s->file), "%s", lv->name);
		s->error = false;
		ph_decide(fl, lv, NULL, now);
		return;
	}
	if (rc == FETCH_ERROR) {
		lv->transfer_failed = true;
		s->error = true;
		snprintf(s->file, sizeof(s->file), "%s", lv->name);
		snprintf(s->why, sizeof(s->why), "%s", why);
	} else if (lv->stage != ST_CFG) {
		snprintf(s->why, sizeof(s->why), "%s not found%s", lv->name,
			lv->stage == ST_CTL ? " (non-secure mode)" : "");
	}
	if (lv->stage == ST_CFG && !(rc == FETCH_ERROR && lv->x.fail == TG_FAIL_TIMEOUT))
		ph_next_config(fl, lv, now);
	else if (lv->stage == ST_CFG)
		ph_finish(fl, lv, ph_outcome_of(lv, false), now);
	else
		ph_next_stage(fl, lv, now);
}

/* A TVS was asked and did not answer: the signer stays unknown. */
static enum ph_how
ph_no_answer(struct ph_live *lv, char *why, size_t whysz)
{
	snprintf(why, whysz, "%.90s, no TVS answered: %.130s", lv->pending, lv->tvs_err);
	return PH_REJECTED;
}

static void
ph_decide_list(struct ph_fleet *fl, struct ph_live *lv, const struct tvs_response *rs,
	uint64_t now)
{
	enum ph_list k = lv->stage == ST_CTL ? PH_CTL : PH_ITL;
	struct ph_step *s = ph_cur_step(lv);
	struct trust_err err = { 0 };
	enum ph_how h;

	h = ph_check_list(&lv->trust, k, lv->file.data, lv->file.len, rs, (int64_t)time(NULL),
		&lv->q, s->why, sizeof(s->why));
	if (h == PH_NEED_TVS) {
		snprintf(lv->pending, sizeof(lv->pending), "%s", s->why);
		ph_tvs_begin(fl, lv, now);
		return;
	}
	s->how = h;
	if (h != PH_REJECTED && h != PH_UNCHANGED
	    && ph_install_list(&lv->trust, k, lv->file.data, lv->file.len, &err) != 0) {
		s->how = PH_REJECTED;
		snprintf(s->why, sizeof(s->why), "install: %.200s", err.msg);
	}
	ph_next_stage(fl, lv, now);
}

static bool
ph_short_config(const struct trust_buf *plain)
{
	return plain->len > 0 && memmem(plain->data, plain->len, "<encrConfig>true</encrConfig>",
		29) != NULL && memmem(plain->data, plain->len, "<fullConfig>false</fullConfig>",
		30) != NULL;
}

static void
ph_decide_config(struct ph_fleet *fl, struct ph_live *lv, const struct tvs_response *rs,
	uint64_t now)
{
	struct ph_step *s = &lv->r->cfg;
	struct trust_buf plain;
	bool no_key;
	size_t n;
	enum ph_how h;

	h = ph_check_config(&lv->trust, lv->kind, lv->file.data, lv->file.len, lv->key, rs,
		(int64_t)time(NULL), &lv->q, &plain, s->why, sizeof(s->why));
	if (h == PH_NEED_TVS) {
		snprintf(lv->pending, sizeof(lv->pending), "%s", s->why);
		ph_tvs_begin(fl, lv, now);
		return;
	}
	s->how = h;
	lv->r->cfg_encrypted = h != PH_REJECTED && lv->kind == PH_CFG_ENC;
	no_key = h != PH_REJECTED && ph_short_config(&plain);
	if (no_key)
		snprintf(s->why + strlen(s->why), sizeof(s->why) - strlen(s->why),
			"; short config only: the full config is encrypted for this phone");
	/* the TVS list of the config is where this phone asks from now on */
	if (h != PH_REJECTED && (n = ph_config_tvs(plain.data, plain.len, lv->trust.tvs,
		PH_TVS_MAX)) > 0)
		lv->trust.ntvs = n;
	trust_buf_wipe(&plain);
	ph_finish(fl, lv, ph_outcome_of(lv, no_key), now);
}

static void
ph_decide(struct ph_fleet *fl, struct ph_live *lv, const struct tvs_response *rs,
	uint64_t now)
{
	struct ph_step *s = ph_cur_step(lv);

	if (rs == NULL && lv->pending[0] != '\0') {
		/* the TVS round ended without an answer */
		s->how = ph_no_answer(lv, s->why, sizeof(s->why));
		lv->pending[0] = '\0';
		if (lv->stage == ST_CFG)
			ph_finish(fl, lv, ph_outcome_of(lv, false), now);
		else
			ph_next_stage(fl, lv, now);
		return;
	}
	lv->pending[0] = '\0';
	if (lv->stage == ST_CFG)
		ph_decide_config(fl, lv, rs, now);
	else
		ph_decide_list(fl, lv, rs, now);
}

static void
ph_begin(struct ph_fleet *fl, struct ph_live *lv, uint32_t idx, uint64_t now)
{
	struct ph_result *r = &fl->res[idx];
	struct trust_err err = { 0 };
	char path[4096];
	int rc = 0;

	memset(lv, 0, sizeof(*lv));
	lv->fd = -1;
	lv->r = r;
	lv->index = idx;
	lv->src_ip = fl->o.src_count ? fl->o.src_ip + idx % fl->o.src_count : 0;
	lv->stage = ST_CTL;
	trust_buf_init(&lv->file);
	ph_trust_init(&lv->trust);
	r->started = true;
	r->t_start = now;
	fl->live++;
	if (fl->o.state_dir != NULL) {
		ph_state_path(fl, r, path, sizeof(path));
		rc = ph_state_load(path, &lv->trust, &err);
	}
	if (rc == 0)
		rc = ph_load_key(fl, lv, &err);
	if (rc != 0) {
		r->ctl.error = true;
		snprintf(r->ctl.why, sizeof(r->ctl.why), "%.240s", err.msg);
		lv->keep_state = true;
		ph_finish(fl, lv, PH_OUT_FAILED, now);
		return;
	}
	lv->trust.boots++;
	snprintf(path, sizeof(path), "CTL%s.tlv", r->sep);
	ph_fetch(fl, lv, path, now);
}

/* ---- the loop ---------------------------------------------------------------------- */

static void
ph_timers(struct ph_fleet *fl, uint64_t now)
{
	for (uint32_t i = 0; i < fl->o.concurrency; i++) {
		struct ph_live *lv = &fl->slots[i];
		enum tg_action a;
		size_t outlen;

		if (lv->r == NULL)
			continue;
		if (ph_stop || now >= fl->deadline) {
			ph_finish(fl, lv, PH_OUT_ABORTED, now);
		} else if (lv->io == IO_TFTP) {
			a = tg_timer(&lv->x, &fl->o.tp, now, fl->tx, &outlen);
			if (a != TG_NONE)
				ph_tftp_act(fl, lv, a, outlen, NULL, 0, now);
		} else if (lv->io == IO_TVS && now >= lv->tvs_deadline) {
			ph_tvs_next(fl, lv, now, "no answer within %u ms", fl->o.tvs_timeout_ms);
		}
	}
}

static void
ph_run(struct ph_fleet *fl)
{
	struct epoll_event ev[256];
	uint64_t now = tvsio_now_ns(), last_tick = now;

	fl->t0 = now;
	fl->deadline = now + (uint64_t)fl->o.max_seconds * 1000000000ull;
	for (;;) {
		int n;

		for (uint32_t i = 0; i < fl->o.concurrency && fl->next < fl->o.phones
		     && !ph_stop && now < fl->deadline; i++)
			if (fl->slots[i].r == NULL)
				ph_begin(fl, &fl->slots[i], fl->next++, now);
		if (fl->live == 0 && (fl->next >= fl->o.phones || ph_stop || now >= fl->deadline))
			break;
		n = epoll_wait(fl->ep, ev, 256, 2);
		now = tvsio_now_ns();
		for (int k = 0; k < n; k++) {
			struct ph_live *lv = ev[k].data.ptr;

			if (lv->io == IO_TFTP)
				ph_tftp_input(fl, lv);
			else if (lv->io == IO_TVS)
				ph_tvs_step(fl, lv, now);
		}
		/* fresh: the handlers above started transfers at later times */
		now = tvsio_now_ns();
		if (now - last_tick >= PH_TICK_NS || ph_stop || now >= fl->deadline) {
			ph_timers(fl, now);
			last_tick = now;
		}
	}
}

/* ---- options ---------------------------------------------------------------------- */

static void
ph_usage(FILE *f)
{
	fprintf(f,
		"usage: phonesim [boot] --server IP [options]   boot a fleet of phones\n"
		"       phonesim keygen --phone-keys DIR [--phones N] [--mac-base HEX | --seed S]\n"
		"       phonesim macs [--phones N] [--mac-base HEX | --seed S]   print the MACs\n"
		"fleet:\n"
		"  --phones N            phones (default 1); phone i has MAC --mac-base + i,\n"
		"  --mac-base HEX        or, without it, a prefix drawn from --seed S (default 1)\n"
		"  --seed S\n"
		"  --concurrency C       phones booting at once (default 1)\n"
		"  --max-seconds S       stop starting and abort what runs after S s (default 60)\n"
		"  --src-range A-B       phone i sends from address A + i mod (B - A + 1);\n"
		"                        also A+N for N addresses (default: the kernel chooses)\n"
		"  --state DIR           per-phone trust kept in DIR/SEP<MAC>.state: a second run\n"
		"                        boots the phones with what the first installed\n"
		"  --phone-keys DIR      LSC keys DIR/SEP<MAC>.key (+ .pem): such phones ask for\n"
		"                        SEP<MAC>.cnf.xml.enc.sgn first\n"
		"  --gen-keys            create missing keys and self-signed certificates there\n"
		"  --key-bits N          RSA size of created keys (default 2048)\n"
		"  --model M             device model of the TVS device name (default 8861)\n"
		"TFTP:\n"
		"  --server IP, --tftp-port N (default 69)\n"
		"  --blksize N (default 1428, 0: none), --windowsize N (default 0: lock-step)\n"
		"  --timeout-ms N (default 1000), --retries N (default 5)\n"
		"TVS:\n"
		"  --tvs HOST[:PORT]     asked after the config's <TVS> members and the ITL's TVS\n"
		"                        record addresses (repeatable, port default 2445)\n"
		"  --tvs-timeout-ms N    per connection (default 5000)\n"
		"report:\n"
		"  --json                one JSON document instead of text\n"
		"  --quiet               text: the summary only, no block per phone\n"
		"exit: 0 every phone provisioned, 1 not every phone, 2 usage, 3 error\n");
}

static int
ph_number(const char *name, const char *s, unsigned long min, unsigned long max,
	unsigned long *v)
{
	if (tvsio_number(s, min, max, v) == 0)
		return 0;
	fprintf(stderr, "phonesim: --%s %s: a number from %lu to %lu is expected\n", name, s,
		min, max);
	return -1;
}

static int
ph_src_range(struct ph_opts *o, const char *s)
{
	char first[32];
	const char *sep = strpbrk(s, "-+");
	uint32_t last;
	unsigned long n;

	if (sep == NULL || (size_t)(sep - s) >= sizeof(first))
		return -1;
	memcpy(first, s, (size_t)(sep - s));
	first[sep - s] = '\0';
	if (tg_parse_ipv4(first, &o->src_ip) != 0 || o->src_ip == 0)
		return -1;
	if (*sep == '+') {
		if (tvsio_number(sep + 1, 1, 65536, &n) != 0)
			return -1;
		o->src_count = (uint32_t)n;
		return 0;
	}
	if (tg_parse_ipv4(sep + 1, &last) != 0 || last < o->src_ip || last - o->src_ip >= 65536)
		return -1;
	o->src_count = last - o->src_ip + 1;
	return 0;
}

static int
ph_option(struct ph_opts *o, int ch, const char *name, const char *arg)
{
	unsigned long v = 0;
	char *e;

	switch (ch) {
	case 'S':
		if (tg_parse_ipv4(arg, &o->server_ip) != 0) {
			fprintf(stderr, "phonesim: --server %s: not an IPv4 address\n", arg);
			return -1;
		}
		return 0;
	case 'P': if (ph_number(name, arg, 1, 65535, &v)) return -1; o->tftp_port = (uint16_t)v; return 0;
	case 'n': if (ph_number(name, arg, 1, PH_PHONES_MAX, &v)) return -1; o->phones = (uint32_t)v; return 0;
	case 'c': if (ph_number(name, arg, 1, 100000, &v)) return -1; o->concurrency = (uint32_t)v; return 0;
	case 'M': if (ph_number(name, arg, 1, 86400, &v)) return -1; o->max_seconds = (unsigned)v; return 0;
	case 's': if (ph_number(name, arg, 0, ULONG_MAX, &v)) return -1; o->seed = v; return 0;
	case 'm':
		errno = 0;
		o->mac_base = strtoull(arg, &e, 16);
		if (errno != 0 || e == arg || *e != '\0' || o->mac_base > 0xffffffffffffull) {
			fprintf(stderr, "phonesim: --mac-base %s: 12 hex digits expected\n", arg);
			return -1;
		}
		o->mac_base_set = true;
		return 0;
	case 'r':
		if (ph_src_range(o, arg) != 0) {
			fprintf(stderr, "phonesim: --src-range %s: FIRST-LAST or FIRST+COUNT of IPv4 "
				"addresses expected\n", arg);
			return -1;
		}
		return 0;
	case 'd': o->state_dir = arg; return 0;
	case 'k': o->keys_dir = arg; return 0;
	case 'g': o->gen_keys = true; return 0;
	case 'b': if (ph_number(name, arg, 1024, 4096, &v)) return -1; o->key_bits = (unsigned)v; return 0;
	case 'o': o->model = arg; return 0;
	case 'B': if (ph_number(name, arg, 0, 65464, &v)) return -1; o->tp.blksize = (uint16_t)v; return 0;
	case 'W': if (ph_number(name, arg, 0, 64, &v)) return -1; o->tp.windowsize = (uint16_t)v; return 0;
	case 'T': if (ph_number(name, arg, 1, 60000, &v)) return -1; o->tp.timeout_ns = v * 1000000ull; return 0;
	case 'R': if (ph_number(name, arg, 0, 50, &v)) return -1; o->tp.retries = (uint8_t)v; return 0;
	case 'V':
		if (o->ntvs == PH_TVS_MAX || ph_tvs_addr_parse(arg, &o->tvs[o->ntvs]) != 0) {
			fprintf(stderr, "phonesim: --tvs %s: HOST[:PORT] expected (at most %d)\n", arg,
				PH_TVS_MAX);
			return -1;
		}
		o->ntvs++;
		return 0;
	case 't': if (ph_number(name, arg, 1, 600000, &v)) return -1; o->tvs_timeout_ms = (unsigned)v; return 0;
	case 'j': o->json = true; return 0;
	case 'q': o->per_phone = false; return 0;
	}
	return -1;
}

static int
ph_parse(int argc, char **argv, struct ph_opts *o)
{
	static const struct option lo[] = {
		{ "server", required_argument, NULL, 'S' },
		{ "tftp-port", required_argument, NULL, 'P' },
		{ "phones", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "max-seconds", required_argument, NULL, 'M' },
		{ "seed", required_argument, NULL, 's' },
		{ "mac-base", required_argument, NULL, 'm' },
		{ "src-range", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 'd' },
		{ "phone-keys", required_argument, NULL, 'k' },
		{ "gen-keys", no_argument, NULL, 'g' },
		{ "key-bits", required_argument, NULL, 'b' },
		{ "model", required_argument, NULL, 'o' },
		{ "blksize", required_argument, NULL, 'B' },
		{ "windowsize", required_argument, NULL, 'W' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "retries", required_argument, NULL, 'R' },
		{ "tvs", required_argument, NULL, 'V' },
		{ "tvs-timeout-ms", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, li = 0;

	while ((ch = getopt_long(argc, argv, "h", lo, &li)) != -1) {
		if (ch == 'h') {
			ph_usage(stdout);
			exit(0);
		}
		if (ch == '?' || ph_option(o, ch, lo[li].name, optarg) != 0)
			return -1;
	}
	if (optind < argc) {
		const char *cmd = argv[optind++];

		if (strcmp(cmd, "boot") == 0)
			o->cmd = CMD_BOOT;
		else if (strcmp(cmd, "keygen") == 0)
			o->cmd = CMD_KEYGEN;
		else if (strcmp(cmd, "macs") == 0)
			o->cmd = CMD_MACS;
		else {
			fprintf(stderr, "phonesim: unknown command '%s' (boot, keygen, macs)\n", cmd);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "phonesim: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->cmd == CMD_BOOT && o->server_ip == 0) {
		fprintf(stderr, "phonesim: --server IP is required\n");
		return -1;
	}
	if (o->cmd == CMD_KEYGEN && o->keys_dir == NULL) {
		fprintf(stderr, "phonesim: keygen needs --phone-keys DIR\n");
		return -1;
	}
	if (o->gen_keys && o->keys_dir == NULL) {
		fprintf(stderr, "phonesim: --gen-keys needs --phone-keys DIR\n");
		return -1;
	}
	if (o->concurrency > o->phones)
		o->concurrency = o->phones;
	return 0;
}

/* ---- setup ----------------------------------------------------------------------- */

static int
ph_tls_setup(struct ph_fleet *fl)
{
	fl->ctx = SSL_CTX_new(TLS_client_method());
	if (fl->ctx == NULL || SSL_CTX_set_min_proto_version(fl->ctx, TLS1_VERSION) != 1
	    || SSL_CTX_set_cipher_list(fl->ctx, PH_CIPHERS) != 1) {
		fprintf(stderr, "phonesim: OpenSSL client context refused\n");
		return -1;
	}
	/* no CA check: like a phone, the ITL decides (ph_tvs_server_ok) */
	SSL_CTX_set_verify(fl->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(fl->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	return 0;
}

static int
ph_setup(struct ph_fleet *fl)
{
	struct rlimit rl;

	fl->res = calloc(fl->o.phones, sizeof(*fl->res));
	fl->slots = calloc(fl->o.concurrency, sizeof(*fl->slots));
	if (fl->res == NULL || fl->slots == NULL) {
		fprintf(stderr, "phonesim: out of memory for %u phones\n", fl->o.phones);
		return -1;
	}
	for (uint32_t i = 0; i < fl->o.phones; i++) {
		fl->res[i].mac = ph_mac(&fl->o, i);
		snprintf(fl->res[i].sep, sizeof(fl->res[i].sep), "SEP%012llX",
			(unsigned long long)fl->res[i].mac);
		fl->res[i].outcome = PH_OUT_ABORTED;
	}
	for (uint32_t i = 0; i < fl->o.concurrency; i++)
		fl->slots[i].fd = -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < fl->o.concurrency + 64u) {
		rl.rlim_cur = fl->o.concurrency + 64u < rl.rlim_max ? fl->o.concurrency + 64u
			: rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (fl->o.state_dir != NULL && mkdir(fl->o.state_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "phonesim: --state %s: %s\n", fl->o.state_dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int
ph_boot(struct ph_fleet *fl)
{
	struct ph_fleet_report fr;
	uint32_t ok = 0;

	if (fl->o.gen_keys && ph_keygen_all(fl) != 0)
		return PH_EXIT_ERROR;
	if (ph_tls_setup(fl) != 0)
		return PH_EXIT_ERROR;
	fl->ep = epoll_create1(EPOLL_CLOEXEC);
	if (fl->ep < 0) {
		fprintf(stderr, "phonesim: epoll: %s\n", strerror(errno));
		return PH_EXIT_ERROR;
	}
	ph_run(fl);
	fr = (struct ph_fleet_report){ .r = fl->res, .n = fl->o.phones,
		.concurrency = fl->o.concurrency, .t0 = fl->t0, .t_end = tvsio_now_ns(),
		.per_phone = fl->o.per_phone };
	if (fl->o.json)
		ph_report_json(stdout, &fr);
	else
		ph_report_text(stdout, &fr);
	for (uint32_t i = 0; i < fl->o.phones; i++)
		ok += fl->res[i].outcome == PH_OUT_PROVISIONED;
	close(fl->ep);
	return ok == fl->o.phones ? PH_EXIT_OK : PH_EXIT_NOT_ALL;
}

int
main(int argc, char **argv)
{
	static struct ph_fleet fl;
	int rc;

	fl.o = (struct ph_opts){ .cmd = CMD_BOOT, .tftp_port = TG_PORT, .phones = 1,
		.concurrency = 1, .max_seconds = 60, .seed = 1, .key_bits = 2048,
		.tvs_timeout_ms = 5000, .model = "8861", .per_phone = true,
		.tp = { .blksize = 1428, .tsize = true, .retries = 5, .timeout_ns = 1000000000ull,
			.expect_size = -1 } };
	if (ph_parse(argc, argv, &fl.o) != 0) {
		fprintf(stderr, "phonesim: see phonesim --help\n");
		return PH_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, ph_on_signal);
	signal(SIGTERM, ph_on_signal);
	if (ph_setup(&fl) != 0)
		return PH_EXIT_ERROR;
	switch (fl.o.cmd) {
	case CMD_MACS:
		for (uint32_t i = 0; i < fl.o.phones; i++)
			printf("%s\n", fl.res[i].sep);
		rc = PH_EXIT_OK;
		break;
	case CMD_KEYGEN:
		rc = ph_keygen_all(&fl) == 0 ? PH_EXIT_OK : PH_EXIT_ERROR;
		break;
	default:
		rc = ph_boot(&fl);
		break;
	}
	SSL_CTX_free(fl.ctx);
	free(fl.slots);
	free(fl.res);
	return rc;
}
