/*
 * tvs-controld: see controld.h for what it is; cdproto.h for the socket.
 *
 *   tvs-controld [--socket PATH] [--group NAME] [--store DIR] [--pub DIR]
 *                [--tvsd PATH] [--serve-timeout MS] [--rollout-interval S]
 *                [--log-level err|warning|notice|info|debug] [--syslog]
 *
 * Runs in the foreground (systemd starts it); SIGTERM/SIGINT stop it
 * cleanly: no new connection is taken, running sessions get a few seconds
 * to finish, the socket file is removed.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "controld.h"
#include "memstat.h"
#include "publish.h"
#include "rollout.h"

#define FIRST_MSG_MS 10000	/* a client that says nothing is dropped */
#define ASK_MS (5 * 60 * 1000)	/* an operator answering a question */
#define STOP_WAIT_MS 10000
#define CD_SESSIONS_MAX 64	/* threads; each is bounded in time */

struct controld cd = {
	.socket = CD_DEFAULT_SOCKET,
	.store = CTL_DEFAULT_STORE,
	.pub = CTL_DEFAULT_PUB,
	.tvsd = "/run/tvs/tvsd.sock",
	.serve_timeout_ms = 60000,	/* tvsd's answer to reload: load + grace period */
	.rollout_interval_s = 5,
	.listen_fd = -1,
	.store_mu = PTHREAD_MUTEX_INITIALIZER,
	.holder_mu = PTHREAD_MUTEX_INITIALIZER,
};

static volatile sig_atomic_t cd_quit;
static int cd_log_level = LOG_INFO;
static bool cd_syslog;

/* ---- logging ------------------------------------------------------------- */

void
cd_log(int prio, const char *fmt, ...)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error", "warning",
		"notice", "info", "debug" };
	char msg[1024];
	va_list ap;

	if (prio > cd_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cd_syslog)
		syslog(prio, "%s", msg);
	else
		fprintf(stderr, "tvs-controld[%d]: %s: %s\n", (int)getpid(), names[prio & 7], msg);
}

long long
cd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- one client ------------------------------------------------------------ */

struct session {
	int fd;
	pid_t pid;
	uid_t uid;
	bool broken;		/* the peer misbehaved or went away: say nothing more */
	long long t0;
	FILE *out;
	FILE *err;
	uint8_t buf[CD_PAYLOAD_MAX + 1];
};

static void
bad_message(struct session *s, const char *what, uint32_t type, size_t len)
{
	CD_COUNT(bad_messages);
	cd_log(LOG_WARNING, "client pid %d: %s (type %u, %zu bytes); connection closed",
		(int)s->pid, what, type, len);
	s->broken = true;
}

/* stdio streams whose bytes go to the client as CD_OUT / CD_ERR. */
static ssize_t
send_text(struct session *s, uint32_t type, const char *p, size_t n)
{
	for (size_t off = 0; off < n && !s->broken; ) {
		size_t k = n - off < CD_TEXT_MAX ? n - off : CD_TEXT_MAX;

		if (cd_send(s->fd, type, p + off, k) != 0)
			s->broken = true;
		off += k;
	}
	return (ssize_t)n;	/* a gone client must not make handlers fail */
}

static ssize_t
out_write(void *cookie, const char *p, size_t n)
{
	return send_text(cookie, CD_OUT, p, n);
}

static ssize_t
err_write(void *cookie, const char *p, size_t n)
{
	struct session *s = cookie;

	fflush(s->out);		/* keep the client's view in order */
	return send_text(s, CD_ERR, p, n);
}

static int
hook_ask(struct ctl *c, bool secret, const char *prompt, char *ans, size_t n)
{
	struct session *s = c->hook_arg;
	size_t plen = strlen(prompt) + 1;
	uint8_t *q;
	struct cd_hdr h;
	uint32_t sec = secret;
	int len;

	fflush(s->out);
	fflush(s->err);
	if (s->broken || plen > CD_TEXT_MAX || (q = malloc(4 + plen)) == NULL)
		return -1;
	memcpy(q, &sec, 4);
	memcpy(q + 4, prompt, plen);
	len = cd_send(s->fd, CD_ASK, q, 4 + plen);
	free(q);
	if (len != 0) {
		s->broken = true;
		return -1;
	}
	len = cd_recv(s->fd, &h, s->buf, CD_PAYLOAD_MAX, ASK_MS);
	if (len < 0 || h.type != CD_ANSWER || !cd_check(h.type, s->buf, (size_t)len, false)) {
		if (len == -1)
			s->broken = true;
		else
			bad_message(s, "expected an answer", h.type, (size_t)(len < 0 ? 0 : len));
		return -1;
	}
	snprintf(ans, n, "%s", (const char *)s->buf);
	OPENSSL_cleanse(s->buf, (size_t)len);
	return 0;
}

static int
hook_published(struct ctl *c, struct trust_store *st, uint64_t gen)
{
	struct session *s = c->hook_arg;

	(void)st;
	return cd_serve(c, gen, s->t0);
}

/* The store is committed and still locked: publish, then have it served. */
static int
hook_committed(struct ctl *c, struct trust_store *st)
{
	struct publish_opts o = { .force = true, .itl_signer_cert = c->itl_cert,
		.itl_signer_key = c->itl_key };
	struct publish_result r;
	struct trust_err err = { 0 };

	if (publish_run(st, cd.pub, &o, &r, &err) != 0) {
		cd_log(LOG_ERR, "publish of store generation %" PRIu64 " failed: %s", st->generation,
			err.msg);
		return ctl_fail(c, "publish failed: %s; the change is in the store (generation %"
			PRIu64 ") and tvsd keeps serving the previous publication", err.msg,
			st->generation);
	}
	CD_COUNT(published);
	cd_log(LOG_INFO, "published generation %" PRIu64 " (%s)", r.generation, r.dir);
	if (r.nrejected)
		cd_log(LOG_WARNING, "config folder entries not published: %u: %s", r.nrejected,
			r.rejected);
	if (rollout_note_publish(cd.pub, st->own[UNIT_TVS].cert.sha256, r.generation, &err) != 0)
		cd_log(LOG_WARNING, "rollout: %s", err.msg);
	return hook_published(c, st, r.generation);
}

static void
hook_rollout(struct ctl *c)
{
	(void)c;
	cd_rollout_refresh();
}

static const struct ctl_hooks cd_hooks = {
	.ask = hook_ask,
	.committed = hook_committed,
	.published = hook_published,
	.rollout_refresh = hook_rollout,
};

static bool
same_dir(const char *a, const char *real)
{
	char ra[PATH_MAX];

	return realpath(a, ra) != NULL && strcmp(ra, real) == 0;
}

/* store_mu is held by someone else: say who, since when. */
static int
locked(struct ctl *c)
{
	char who[sizeof(cd.holder)];
	long long since;

	pthread_mutex_lock(&cd.holder_mu);
	memcpy(who, cd.holder, sizeof(who));
	since = cd.holder_since;
	pthread_mutex_unlock(&cd.holder_mu);
	CD_COUNT(locked);
	ctl_fail(c, "locked: the trust store is busy with %s for %lld ms; try again when it is done",
		who[0] ? who : "another session", cd_now_ms() - since);
	return CTL_LOCKED;
}

static void
set_holder(struct session *s, const struct ctl *c)
{
	char words[128] = "";

	for (int i = 0; i < CTL_MAX_WORDS && c->cmd->words[i]; i++) {
		strncat(words, i ? " " : "", sizeof(words) - strlen(words) - 1);
		strncat(words, c->cmd->words[i], sizeof(words) - strlen(words) - 1);
	}
	pthread_mutex_lock(&cd.holder_mu);
	snprintf(cd.holder, sizeof(cd.holder), "'%s' of tvsctl pid %d (uid %u)", words,
		(int)s->pid, (unsigned)s->uid);
	cd.holder_since = cd_now_ms();
	pthread_mutex_unlock(&cd.holder_mu);
}

static int
run_parsed(struct session *s, struct ctl *c)
{
	int rc;

	if (!(c->cmd->flags & (CTL_F_CHANGE | CTL_F_DAEMON)))
		return ctl_fail(c, "'%s' is not a controld command; tvsctl runs it itself",
			c->cmd->words[0]);
	if (!(c->cmd->flags & CTL_F_CHANGE))
		return c->cmd->fn(c);
	if (pthread_mutex_trylock(&cd.store_mu) != 0)
		return locked(c);
	set_holder(s, c);
	cd_log(LOG_INFO, "%s", cd.holder);
	rc = c->cmd->fn(c);
	pthread_mutex_lock(&cd.holder_mu);
	cd.holder[0] = '\0';
	pthread_mutex_unlock(&cd.holder_mu);
	pthread_mutex_unlock(&cd.store_mu);
	return rc;
}

static void
run_command(struct session *s, size_t len)
{
	static const cookie_io_functions_t out_io = { .write = out_write };
	static const cookie_io_functions_t err_io = { .write = err_write };
	char *words[CD_WORDS_MAX];
	struct ctl c = { 0 };
	uint32_t flags, code;
	int n, k = 0, rc;

	CD_COUNT(commands);
	n = cd_cmd_words(s->buf, len, &flags, words, CD_WORDS_MAX);
	if ((flags & CD_F_STORE) && !same_dir(words[k++], cd.store_real)) {
		cd_send(s->fd, CD_NOT_MINE, cd.store_real, strlen(cd.store_real) + 1);
		return;
	}
	if ((flags & CD_F_PUB) && !same_dir(words[k++], cd.pub_real)) {
		cd_send(s->fd, CD_NOT_MINE, cd.store_real, strlen(cd.store_real) + 1);
		return;
	}
	s->out = fopencookie(s, "w", out_io);
	s->err = fopencookie(s, "w", err_io);
	if (s->out == NULL || s->err == NULL)
		goto out;
	setvbuf(s->err, NULL, _IOLBF, 0);
	c.store_dir = cd.store;
	c.pub_dir = cd.pub;
	c.controld = "none";
	c.out = s->out;
	c.errf = s->err;
	c.hooks = &cd_hooks;
	c.hook_arg = s;
	c.yes = flags & CD_F_YES;
	c.json = flags & CD_F_JSON;
	rc = ctl_parse(&c, n - k, words + k);
	if (rc == CTL_OK)
		rc = run_parsed(s, &c);
	fflush(s->out);
	fflush(s->err);
	code = (uint32_t)rc;
	if (!s->broken)
		cd_send(s->fd, CD_DONE, &code, sizeof(code));
	cd_log(rc == CTL_OK ? LOG_DEBUG : LOG_NOTICE, "client pid %d: exit code %d", (int)s->pid,
		rc);
out:
	if (s->out)
		fclose(s->out);
	if (s->err)
		fclose(s->err);
}

static void *
session_main(void *arg)
{
	struct session *s = arg;
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct cd_hdr h;
	int n;

	if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0) {
		s->pid = cr.pid;
		s->uid = cr.uid;
	}
	while (!s->broken) {
		n = cd_recv(s->fd, &h, s->buf, CD_PAYLOAD_MAX, FIRST_MSG_MS);
		if (n == -1)
			break;
		if (n == -2) {
			bad_message(s, "message cut short or with an impossible header", h.type, h.len);
			break;
		}
		if (!cd_check(h.type, s->buf, (size_t)n, false)) {
			bad_message(s, "malformed message", h.type, (size_t)n);
			break;
		}
		s->t0 = cd_now_ms();
		if (h.type == CD_CMD) {
			run_command(s, (size_t)n);
			break;
		} else if (h.type == CD_MEMORY) {
			struct cd_memory m;

			ctl_memstat(&m);
			cd_send(s->fd, CD_MEMORY, &m, sizeof(m));
		} else if (h.type == CD_STATS) {
			struct cd_stats st;

			for (size_t i = 0; i < sizeof(st) / sizeof(uint64_t); i++)
				((uint64_t *)&st)[i] = __atomic_load_n(&((uint64_t *)&cd.stats)[i],
					__ATOMIC_RELAXED);
			cd_send(s->fd, CD_STATS, &st, sizeof(st));
		} else {
			bad_message(s, "unexpected message", h.type, (size_t)n);
		}
	}
	close(s->fd);
	OPENSSL_cleanse(s->buf, sizeof(s->buf));
	free(s);
	__atomic_sub_fetch(&cd.active, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
accept_one(void)
{
	int fd = accept4(cd.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct session *s;
	pthread_attr_t at;
	pthread_t t;

	if (fd < 0)
		return;
	CD_COUNT(clients);
	if (__atomic_load_n(&cd.active, __ATOMIC_ACQUIRE) >= CD_SESSIONS_MAX) {
		cd_log(LOG_WARNING, "more than %d sessions; one connection refused", CD_SESSIONS_MAX);
		close(fd);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(fd);
		return;
	}
	s->fd = fd;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	__atomic_add_fetch(&cd.active, 1, __ATOMIC_ACQUIRE);
	if (pthread_create(&t, &at, session_main, s) != 0) {
		__atomic_sub_fetch(&cd.active, 1, __ATOMIC_RELEASE);
		cd_log(LOG_ERR, "cannot start a session thread: %s", strerror(errno));
		close(fd);
		free(s);
	}
	pthread_attr_destroy(&at);
}

/* ---- the config folder ----------------------------------------------------- */

/*
 * Device configs are files dropped into <store>/configs (by an operator or
 * provisioning); adding, changing or removing one is published like a
 * tvsctl change. Copies and editors come as bursts of events: publish once
 * the folder has been quiet for WATCH_SETTLE_MS. The watch is renewed now
 * and then because a restore swaps in a new store directory (re-adding the
 * same inode is a no-op).
 */
#define WATCH_SETTLE_MS 200

static int watch_fd = -1;
static long long watch_due;	/* 0: nothing pending */

static void
watch_renew(void)
{
	char dir[PATH_MAX], index[PATH_MAX];

	/* Never make a store it does not hold: the folder is created only
	 * inside a store that has its index (a wiped store, between a
	 * `disaster_recovery` wipe and its restore, stays wiped). */
	snprintf(dir, sizeof(dir), "%s/configs", cd.store);
	snprintf(index, sizeof(index), "%s/STORE", cd.store);
	if (access(index, F_OK) != 0 || (mkdir(dir, 0755) != 0 && errno != EEXIST))
		return;
	(void)inotify_add_watch(watch_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
		IN_DELETE);
}

static void
watch_read(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(watch_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n; ) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			/* dot files: editors' and rsync's temporaries; an
			 * overflow may hide anything */
			if ((ev->len > 0 && ev->name[0] != '.') || (ev->mask & IN_Q_OVERFLOW))
				watch_due = cd_now_ms() + WATCH_SETTLE_MS;
			p += sizeof(*ev) + ev->len;
		}
	}
}

/*
 * `tvsctl publish --force` run by the daemon itself (why: what made it
 * publish, for "locked" answers and the log); its output goes to the log.
 * Force: the store may not have changed (the config folder did), yet a new
 * generation must be served. -1 when a session holds the store.
 */
static int
self_publish(const char *why)
{
	char w0[] = "publish", w1[] = "--force", *argv[] = { w0, w1, NULL };
	struct session *s;
	struct ctl c = { 0 };
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (pthread_mutex_trylock(&cd.store_mu) != 0)
		return -1;
	if ((s = calloc(1, sizeof(*s))) == NULL || (c.out = open_memstream(&text, &len)) == NULL) {
		pthread_mutex_unlock(&cd.store_mu);
		free(s);
		return 0;
	}
	pthread_mutex_lock(&cd.holder_mu);
	snprintf(cd.holder, sizeof(cd.holder), "'publish' of %s", why);
	cd.holder_since = cd_now_ms();
	pthread_mutex_unlock(&cd.holder_mu);
	s->fd = -1;
	s->t0 = cd_now_ms();
	c.errf = c.out;
	c.store_dir = cd.store;
	c.pub_dir = cd.pub;
	c.controld = "none";
	c.hooks = &cd_hooks;
	c.hook_arg = s;
	rc = ctl_parse(&c, 2, argv);
	if (rc == CTL_OK)
		rc = c.cmd->fn(&c);
	pthread_mutex_lock(&cd.holder_mu);
	cd.holder[0] = '\0';
	pthread_mutex_unlock(&cd.holder_mu);
	pthread_mutex_unlock(&cd.store_mu);
	fclose(c.out);
	cd_log(rc == CTL_OK ? LOG_INFO : LOG_WARNING, "%s: publish exit %d: %s", why, rc,
		text ? text : "");
	free(text);
	free(s);
	return 0;
}

static void
watch_publish(void)
{
	char why[PATH_MAX + 32];

	snprintf(why, sizeof(why), "a change in %s/configs", cd.store);
	if (self_publish(why) != 0)
		watch_due = cd_now_ms() + WATCH_SETTLE_MS;	/* after the session */
	else
		watch_due = 0;
}

/* ---- the listening socket -------------------------------------------------- */

static int
listen_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct trust_err err = { 0 };
	char dir[sizeof(sa.sun_path)], *slash;
	gid_t gid = (gid_t)-1;
	mode_t old;
	int fd;

	if (strlen(cd.socket) >= sizeof(sa.sun_path)) {
		cd_log(LOG_ERR, "socket path too long: %s", cd.socket);
		return -1;
	}
	memcpy(sa.sun_path, cd.socket, strlen(cd.socket) + 1);
	memcpy(dir, sa.sun_path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (store_mkdir_p(dir, 0755, &err) != 0) {
			cd_log(LOG_ERR, "%s", err.msg);
			return -1;
		}
	}
	if (cd.group != NULL) {
		struct group *g = getgrnam(cd.group);

		if (g == NULL) {
			cd_log(LOG_ERR, "--group %s: no such group", cd.group);
			return -1;
		}
		gid = g->gr_gid;
	}
	if (trust_unix_stale(sa.sun_path, &err) != 0) {
		cd_log(LOG_ERR, "%s", err.msg);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0117);	/* never a moment with a wider mode than 0660 */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		umask(old);
		cd_log(LOG_ERR, "socket %s: %s", cd.socket, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	if (chmod(cd.socket, 0660) != 0 ||
	    (chown(cd.socket, geteuid() == 0 ? 0 : (uid_t)-1, gid) != 0 && gid != (gid_t)-1) ||
	    listen(fd, 64) != 0) {
		cd_log(LOG_ERR, "socket %s: %s", cd.socket, strerror(errno));
		close(fd);
		unlink(cd.socket);
		return -1;
	}
	cd.listen_fd = fd;
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static void
on_signal(int sig)
{
	(void)sig;
	cd_quit = 1;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: tvs-controld [--socket PATH] [--group NAME] [--store DIR] [--pub DIR]\n"
		"                    [--tvsd PATH] [--serve-timeout MS] [--rollout-interval S]\n"
		"                    [--log-level err|warning|notice|info|debug] [--syslog]\n"
		"defaults: --socket %s --store %s --pub %s --tvsd %s\n"
		"          --serve-timeout %d --rollout-interval %d (0: only on demand)\n",
		CD_DEFAULT_SOCKET, CTL_DEFAULT_STORE, CTL_DEFAULT_PUB, cd.tvsd,
		cd.serve_timeout_ms, cd.rollout_interval_s);
}

static int
parse_level(const char *s)
{
	static const struct { const char *n; int l; } lv[] = { { "err", LOG_ERR },
		{ "error", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG } };

	for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++)
		if (strcmp(s, lv[i].n) == 0)
			return lv[i].l;
	return -1;
}

static int
parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int
parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "group", required_argument, NULL, 'g' },
		{ "store", required_argument, NULL, 'S' },
		{ "pub", required_argument, NULL, 'p' },
		{ "tvsd", required_argument, NULL, 't' },
		{ "serve-timeout", required_argument, NULL, 'T' },
		{ "rollout-interval", required_argument, NULL, 'r' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "syslog", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 's': cd.socket = optarg; break;
		case 'g': cd.group = optarg; break;
		case 'S': cd.store = optarg; break;
		case 'p': cd.pub = optarg; break;
		case 't': cd.tvsd = optarg; break;
		case 'y': cd_syslog = true; break;
		case 'h': usage(stdout); exit(0);
		case 'T':
			if (parse_int(optarg, 1, 600000, &cd.serve_timeout_ms) != 0)
				goto bad;
			break;
		case 'r':
			if (parse_int(optarg, 0, 86400, &cd.rollout_interval_s) != 0)
				goto bad;
			break;
		case 'l':
			if ((cd_log_level = parse_level(optarg)) < 0)
				goto bad;
			break;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind == argc)
		return 0;
	fprintf(stderr, "tvs-controld: unexpected argument '%s'\n", argv[optind]);
	return -1;
bad:
	fprintf(stderr, "tvs-controld: bad value '%s' (see --help)\n", optarg);
	return -1;
}

static uint64_t store_gen_at_start;

/* The store must open; the publication root is created if need be. */
static int
check_dirs(void)
{
	struct trust_err err = { 0 };
	struct trust_store st;

	if (store_open(cd.store, STORE_RDONLY, &st, &err) != 0) {
		cd_log(LOG_ERR, "%s", err.msg);
		return -1;
	}
	cd_log(LOG_NOTICE, "trust store %s, generation %" PRIu64, cd.store, st.generation);
	store_gen_at_start = st.generation;
	store_close(&st);
	if (store_mkdir_p(cd.pub, 0755, &err) != 0) {
		cd_log(LOG_ERR, "%s", err.msg);
		return -1;
	}
	if (realpath(cd.store, cd.store_real) == NULL || realpath(cd.pub, cd.pub_real) == NULL) {
		cd_log(LOG_ERR, "realpath: %s", strerror(errno));
		return -1;
	}
	/* the paths it says and hands to handlers do not depend on its cwd */
	cd.store = cd.store_real;
	cd.pub = cd.pub_real;
	return 0;
}

/*
 * A change is committed to the store before it is published, so a
 * controld killed between the two (or a change made with tvsctl offline
 * while it was down) leaves the store ahead of `current`, and nothing else
 * would ever publish it. At start, publish it and have tvsd serve it.
 * Only when something was published before: a new store waits for its
 * first `tvsctl publish`.
 */
static void
catch_up(void)
{
	uint64_t cur = cd_current_generation();
	char why[160];

	if (cur == 0) {
		cd_log(LOG_NOTICE, "nothing published under %s yet; run 'tvsctl publish'", cd.pub);
		return;
	}
	if (store_gen_at_start <= cur)
		return;
	snprintf(why, sizeof(why), "store generation %" PRIu64 ", ahead of the published "
		"generation %" PRIu64, store_gen_at_start, cur);
	cd_log(LOG_WARNING, "%s (a change committed but not published): publishing it", why);
	self_publish(why);
}

static void
main_loop(void)
{
	long long next_rollout = cd_now_ms(), next_renew = 0;

	while (!cd_quit) {
		struct pollfd p[2] = { { .fd = cd.listen_fd, .events = POLLIN },
			{ .fd = watch_fd, .events = POLLIN } };
		long long now = cd_now_ms();
		int wait = watch_due && watch_due - now < 200 ? (int)(watch_due - now) : 200;

		if (poll(p, watch_fd >= 0 ? 2 : 1, wait < 0 ? 0 : wait) > 0) {
			if (p[0].revents & POLLIN)
				accept_one();
			if (p[1].revents & POLLIN)
				watch_read();
		}
		if (watch_fd >= 0 && cd_now_ms() >= next_renew) {
			watch_renew();
			next_renew = cd_now_ms() + 1000;
		}
		if (watch_due && cd_now_ms() >= watch_due)
			watch_publish();
		if (cd.rollout_interval_s > 0 && cd_now_ms() >= next_rollout) {
			cd_rollout_refresh();
			next_rollout = cd_now_ms() + cd.rollout_interval_s * 1000LL;
		}
	}
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	long long stop;

	if (parse_args(argc, argv) != 0)
		return 1;
	if (cd_syslog)
		openlog("tvs-controld", LOG_PID, LOG_DAEMON);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (check_dirs() != 0 || listen_socket() != 0)
		return 1;
	cd.stats.pid = (uint64_t)getpid();
	if ((watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		cd_log(LOG_WARNING, "inotify: %s; changes in %s/configs need 'tvsctl publish'",
			strerror(errno), cd.store);
	cd_log(LOG_NOTICE, "listening on %s (mode 0660%s%s), publications %s, tvsd %s",
		cd.socket, cd.group ? ", group " : "", cd.group ? cd.group : "", cd.pub, cd.tvsd);
	catch_up();
	main_loop();
	cd_log(LOG_NOTICE, "stopping");
	close(cd.listen_fd);
	unlink(cd.socket);
	stop = cd_now_ms() + STOP_WAIT_MS;
	while (__atomic_load_n(&cd.active, __ATOMIC_ACQUIRE) > 0 && cd_now_ms() < stop)
		usleep(10000);
	if (__atomic_load_n(&cd.active, __ATOMIC_ACQUIRE) > 0)
		cd_log(LOG_WARNING, "%d session(s) still running; exiting anyway", cd.active);
	return 0;
}
