/*
 * tvs-controld: see controld.h for what it is; cdproto.h for the socket.
 *
 *   tvs-controld [--socket PATH] [--group NAME] [--store DIR] [--pub DIR]
 *                [--tvsd PATH] [--serve-timeout MS] [--rollout-interval S]
 *                [--admin-group NAME] [--key-group NAME] [--level 'WORDS=N']...
 *                [--sessions-per-uid N] [--session-max S]
 *                [--log-level err|warning|notice|info|debug] [--syslog]
 *
 * Runs in the foreground (systemd starts it); SIGTERM/SIGINT stop it
 * cleanly: no new connection is taken, running sessions get a few seconds
 * to finish, the socket file is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
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
#include "tvsd_link.h"

#define QUERY_MS 10000		/* a session's whole time until its command */
#define ASK_MS (5 * 60 * 1000)	/* an operator answering a question */
#define STOP_WAIT_MS 10000
#define CD_SESSIONS_MAX 64	/* threads; each is bounded in time */

struct controld cd = {
	.socket = CD_DEFAULT_SOCKET,
	.store = CTL_DEFAULT_STORE,
	.pub = CTL_DEFAULT_PUB,
	.tvsd = "/run/tvs/tvsd.sock",
	.admin_group = "tvsadmin",
	.sessions_per_uid = 8,
	.session_max_ms = 15 * 60 * 1000,
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
	int slot;		/* in slots[] */
	pid_t pid;
	uid_t uid;
	struct cd_peer peer;
	bool broken;		/* the peer misbehaved or went away: say nothing more */
	long long t_accept;
	long long deadline;	/* the session ends then, whatever it is doing */
	long long t0;
	struct cd_fd fd_for[CD_FDS_MAX];	/* CD_FD received, for the command */
	int fds[CD_FDS_MAX];
	int nfds;
	char **words;		/* of the CD_CMD, in buf */
	int nwords;
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
/* Past its end the session says nothing more and is counted once. */
static bool
expired(struct session *s)
{
	if (cd_now_ms() < s->deadline)
		return false;
	if (!s->broken) {
		CD_COUNT(expired);
		cd_log(LOG_NOTICE, "client pid %d (uid %u): session time over after %lld ms; "
			"connection closed", (int)s->pid, (unsigned)s->uid, cd_now_ms() - s->t_accept);
	}
	s->broken = true;
	return true;
}

/* A wait for the client: at most ms, and never past the session's end. */
static int
recv_ms(const struct session *s, int ms)
{
	long long left = s->deadline - cd_now_ms();

	return left < 1 ? 1 : left < ms ? (int)left : ms;
}

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
	if (s->broken || expired(s) || plen > CD_TEXT_MAX || (q = malloc(4 + plen)) == NULL)
		return -1;
	memcpy(q, &sec, 4);
	memcpy(q + 4, prompt, plen);
	len = cd_send(s->fd, CD_ASK, q, 4 + plen);
	free(q);
	if (len != 0) {
		s->broken = true;
		return -1;
	}
	len = cd_recv(s->fd, &h, s->buf, CD_PAYLOAD_MAX, recv_ms(s, ASK_MS));
	if (len < 0 || h.type != CD_ANSWER || !cd_check(h.type, s->buf, (size_t)len, false)) {
		if (len == -1 && !expired(s))
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
	if (c->configs_rejected) {
		cd_log(LOG_WARNING, "config folder entries not published: %u: %s",
			c->configs_rejected, c->configs_rejected_names);
		__atomic_add_fetch(&cd.stats.configs_rejected, c->configs_rejected,
			__ATOMIC_RELAXED);
	}
	c->configs_rejected = 0;
	c->configs_rejected_names = NULL;
	return cd_serve(c, gen, s->t0);
}

/* The store is committed and still locked: publish, then have it served. */
static int
hook_committed(struct ctl *c, struct trust_store *st)
{
	struct publish_opts o = { .force = true, .itl_signer_cert = c->itl_cert,
		.itl_signer_key = c->itl_key, .tvsd_user = cd.tvsd_user };
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
	c->configs_rejected = r.nrejected;
	c->configs_rejected_names = r.rejected;
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

/* The index among the CD_CMD strings of the one that holds p; -1 when p
 * is none of them (then no descriptor can stand for it). */
static int
word_index(char *const *words, int n, const char *p)
{
	int j = -1;

	if (n == 0 || p < words[0] || p > words[n - 1] + strlen(words[n - 1]))
		return -1;
	for (int i = 0; i < n; i++)
		if (words[i] <= p)
			j = i;
	return j;
}

static int
bind_one(struct session *s, struct ctl *c, const char *word, int kind)
{
	int idx = word_index(s->words, s->nwords, word);
	char why[128];

	for (int i = 0; i < s->nfds && c->nfiles < CD_FDS_MAX; i++) {
		if (s->fds[i] < 0 || (int)s->fd_for[i].word != idx)
			continue;
		if ((int)s->fd_for[i].kind != kind || !cd_fd_ok(s->fds[i], (uint32_t)kind, why,
		    sizeof(why))) {
			if ((int)s->fd_for[i].kind != kind)
				snprintf(why, sizeof(why), "passed as the wrong kind of file");
			CD_COUNT(bad_files);
			cd_log(LOG_NOTICE, "client pid %d: %s: %s", (int)s->pid, word, why);
			return ctl_fail(c, "%s: %s", word, why);
		}
		c->files[c->nfiles].word = word;
		c->files[c->nfiles].fd = s->fds[i];
		snprintf(c->files[c->nfiles].path, sizeof(c->files[0].path), "/proc/self/fd/%d",
			s->fds[i]);
		c->nfiles++;
		return CTL_OK;
	}
	CD_COUNT(bad_files);
	cd_log(LOG_NOTICE, "client pid %d: no descriptor for %s", (int)s->pid, word);
	return ctl_fail(c, "%s: controld opens no file a client names; tvsctl passes it "
		"opened (SCM_RIGHTS), and this client did not", word);
}

/* Every file word of the command gets the descriptor the client passed
 * for it; controld opens none of them by name. */
static int
bind_files(struct session *s, struct ctl *c)
{
	for (int i = 0; i < c->nopts; i++)
		if (c->opts[i].val != NULL && ctl_opt_file(c->opts[i].name) &&
		    bind_one(s, c, c->opts[i].val, ctl_opt_file(c->opts[i].name)) != CTL_OK)
			return CTL_FAIL;
	for (int i = 0; i < c->nargs; i++)
		if (ctl_arg_file(c->cmd, i) &&
		    bind_one(s, c, c->args[i], ctl_arg_file(c->cmd, i)) != CTL_OK)
			return CTL_FAIL;
	return CTL_OK;
}

static int
run_parsed(struct session *s, struct ctl *c)
{
	char why[600];
	int rc;

	if (!(c->cmd->flags & (CTL_F_CHANGE | CTL_F_DAEMON)))
		return ctl_fail(c, "'%s' is not a controld command; tvsctl runs it itself",
			c->cmd->words[0]);
	if (!cd_auth_check(&s->peer, c, why, sizeof(why))) {
		cd_log(LOG_NOTICE, "client pid %d: refused: %s", (int)s->pid, why);
		return ctl_fail(c, "%s", why);
	}
	if (bind_files(s, c) != CTL_OK)
		return CTL_FAIL;
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
	s->words = words;
	s->nwords = n;
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
	c.tvsd_user = cd.tvsd_user;
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

static void
send_stats(struct session *s)
{
	struct cd_stats st;

	for (size_t i = 0; i < sizeof(st) / sizeof(uint64_t); i++)
		((uint64_t *)&st)[i] = __atomic_load_n(&((uint64_t *)&cd.stats)[i], __ATOMIC_RELAXED);
	cd_send(s->fd, CD_STATS, &st, sizeof(st));
}

/* A CD_FD: kept for the command that follows. */
static void
take_fd(struct session *s, int fd, size_t n)
{
	if (s->nfds == CD_FDS_MAX) {
		close(fd);
		bad_message(s, "more descriptors than a command takes", CD_FD, n);
		return;
	}
	memcpy(&s->fd_for[s->nfds], s->buf, sizeof(s->fd_for[0]));
	s->fds[s->nfds++] = fd;
}

/* One message; false when the session is over. */
static bool
session_step(struct session *s)
{
	struct cd_hdr h;
	int fd = -1, nfd = 0, n;

	if (expired(s))
		return false;
	n = cd_recv_fds(s->fd, &h, s->buf, CD_PAYLOAD_MAX, recv_ms(s, QUERY_MS), &fd, 1, &nfd);
	if (n == -1) {
		if (errno == ETIMEDOUT)
			expired(s);
		return false;
	}
	if (n == -2) {
		bad_message(s, "message cut short, with an impossible header or more than one "
			"descriptor", h.type, h.len);
		return false;
	}
	if (!cd_check(h.type, s->buf, (size_t)n, false) || (nfd == 1) != (h.type == CD_FD)) {
		if (nfd == 1)
			close(fd);
		bad_message(s, nfd == 1 ? "a descriptor on a message that takes none" :
			h.type == CD_FD ? "CD_FD without its descriptor" : "malformed message",
			h.type, (size_t)n);
		return false;
	}
	s->t0 = cd_now_ms();
	if (h.type == CD_FD) {
		take_fd(s, fd, (size_t)n);
	} else if (h.type == CD_CMD) {
		/* the command may ask the operator: the whole session gets longer */
		s->deadline = s->t_accept + cd.session_max_ms;
		run_command(s, (size_t)n);
		return false;
	} else if (h.type == CD_MEMORY) {
		struct cd_memory m;

		ctl_memstat(&m);
		cd_send(s->fd, CD_MEMORY, &m, sizeof(m));
	} else if (h.type == CD_STATS) {
		send_stats(s);
	} else {
		bad_message(s, "unexpected message", h.type, (size_t)n);
	}
	return !s->broken;
}

/* Session slots, so that one uid cannot hold them all. */
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	bool used;
	uid_t uid;
} slots[CD_SESSIONS_MAX];

/* A free slot for uid, or -1 with *mine the sessions uid already has. */
static int
slot_take(uid_t uid, int *mine)
{
	int free_slot = -1;

	*mine = 0;
	pthread_mutex_lock(&slots_mu);
	for (int i = 0; i < CD_SESSIONS_MAX; i++) {
		if (!slots[i].used && free_slot < 0)
			free_slot = i;
		else if (slots[i].used && slots[i].uid == uid)
			(*mine)++;
	}
	if (*mine >= cd.sessions_per_uid)
		free_slot = -1;
	if (free_slot >= 0) {
		slots[free_slot].used = true;
		slots[free_slot].uid = uid;
	}
	pthread_mutex_unlock(&slots_mu);
	return free_slot;
}

static void
slot_free(int i)
{
	pthread_mutex_lock(&slots_mu);
	slots[i].used = false;
	pthread_mutex_unlock(&slots_mu);
}

static void *
session_main(void *arg)
{
	struct session *s = arg;

	while (session_step(s))
		;
	for (int i = 0; i < s->nfds; i++)
		close(s->fds[i]);	/* unused ones too */
	close(s->fd);
	OPENSSL_cleanse(s->buf, sizeof(s->buf));
	slot_free(s->slot);
	free(s);
	__atomic_sub_fetch(&cd.active, 1, __ATOMIC_RELEASE);
	return NULL;
}

static long long busy_logged;	/* accept_one runs on the main thread only */
static int busy_quiet;

/* No slot: the client is told why (CD_ERR, then CD_DONE 1) and counted. */
static void
refuse_busy(int fd, const struct cd_peer *p, int mine)
{
	char msg[256];
	uint32_t code = CTL_FAIL;
	int n;

	CD_COUNT(busy);
	if (mine >= cd.sessions_per_uid)
		n = snprintf(msg, sizeof(msg), "tvs-controld: uid %u already has %d sessions "
			"(--sessions-per-uid); try again when one ends\n", (unsigned)p->uid, mine);
	else
		n = snprintf(msg, sizeof(msg), "tvs-controld: all %d sessions are busy; try again\n",
			CD_SESSIONS_MAX);
	/* a client retrying in a loop must not flood the log: one line a second */
	if (cd_now_ms() - busy_logged >= 1000) {
		cd_log(LOG_WARNING, "connection of pid %d (uid %u) refused: %.*s (%d more refused "
			"in the last second)", (int)p->pid, (unsigned)p->uid, n - 15, msg + 14,
			busy_quiet);
		busy_logged = cd_now_ms();
		busy_quiet = 0;
	} else {
		busy_quiet++;
	}
	/* a fresh socket's buffer takes these few bytes; never wait for them */
	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	cd_send(fd, CD_ERR, msg, (size_t)n);
	cd_send(fd, CD_DONE, &code, sizeof(code));
	close(fd);
}

static void
accept_one(void)
{
	int fd = accept4(cd.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct cd_peer peer;
	struct session *s;
	pthread_attr_t at;
	pthread_t t;
	int slot, mine;

	if (fd < 0)
		return;
	CD_COUNT(clients);
	if (cd_peer_get(fd, &peer) != 0) {
		close(fd);
		return;
	}
	if ((slot = slot_take(peer.uid, &mine)) < 0) {
		refuse_busy(fd, &peer, mine);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		slot_free(slot);
		close(fd);
		return;
	}
	s->fd = fd;
	s->slot = slot;
	s->peer = peer;
	s->pid = peer.pid;
	s->uid = peer.uid;
	s->t_accept = cd_now_ms();
	s->deadline = s->t_accept + QUERY_MS;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	__atomic_add_fetch(&cd.active, 1, __ATOMIC_ACQUIRE);
	if (pthread_create(&t, &at, session_main, s) != 0) {
		__atomic_sub_fetch(&cd.active, 1, __ATOMIC_RELEASE);
		cd_log(LOG_ERR, "cannot start a session thread: %s", strerror(errno));
		slot_free(slot);
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
	c.tvsd_user = cd.tvsd_user;
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
		"                    [--tvsd PATH] [--tvsd-user NAME] [--serve-timeout MS]\n"
		"                    [--rollout-interval S]\n"
		"                    [--admin-group NAME] [--key-group NAME] [--level 'WORDS=N']...\n"
		"                    [--sessions-per-uid N] [--session-max S]\n"
		"                    [--log-level err|warning|notice|info|debug] [--syslog]\n"
		"defaults: --socket %s --store %s --pub %s --tvsd %s\n"
		"          --serve-timeout %d --rollout-interval %d (0: only on demand)\n"
		"          --admin-group %s --key-group '' (root only) --sessions-per-uid %d\n"
		"          --session-max %d\n"
		"          --tvsd-user: owner of tvs/tvs.key in publications (default "
		PUBLISH_TVSD_USER " when that user exists, else root)\n"
		"levels (tvsctl help): 0 root, --group, admin and key groups; 1 root, admin and key\n"
		"groups; 4 root and the key group\n",
		CD_DEFAULT_SOCKET, CTL_DEFAULT_STORE, CTL_DEFAULT_PUB, cd.tvsd,
		cd.serve_timeout_ms, cd.rollout_interval_s, cd.admin_group ? cd.admin_group : "''",
		cd.sessions_per_uid, cd.session_max_ms / 1000);
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
		{ "admin-group", required_argument, NULL, 'A' },
		{ "key-group", required_argument, NULL, 'K' },
		{ "level", required_argument, NULL, 'L' },
		{ "sessions-per-uid", required_argument, NULL, 'u' },
		{ "session-max", required_argument, NULL, 'm' },
		{ "store", required_argument, NULL, 'S' },
		{ "pub", required_argument, NULL, 'p' },
		{ "tvsd", required_argument, NULL, 't' },
		{ "tvsd-user", required_argument, NULL, 'U' },
		{ "serve-timeout", required_argument, NULL, 'T' },
		{ "rollout-interval", required_argument, NULL, 'r' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "syslog", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o, secs;

	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 's': cd.socket = optarg; break;
		case 'g': cd.group = optarg; break;
		case 'A': cd.admin_group = optarg[0] ? optarg : NULL; break;
		case 'K': cd.key_group = optarg[0] ? optarg : NULL; break;
		case 'L':
			if (cd_auth_level_opt(optarg) != 0)
				goto bad;
			break;
		case 'u':
			if (parse_int(optarg, 1, CD_SESSIONS_MAX, &cd.sessions_per_uid) != 0)
				goto bad;
			break;
		case 'm':
			if (parse_int(optarg, 10, 86400, &secs) != 0)
				goto bad;
			cd.session_max_ms = secs * 1000;
			break;
		case 'S': cd.store = optarg; break;
		case 'p': cd.pub = optarg; break;
		case 't': cd.tvsd = optarg; break;
		case 'U': cd.tvsd_user = optarg; break;
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
		return cd_auth_setup();
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

	errno = 0;
	if (cd.tvsd_user != NULL && strcmp(cd.tvsd_user, "root") != 0 &&
	    getpwnam(cd.tvsd_user) == NULL) {
		cd_log(LOG_ERR, "--tvsd-user %s: %s", cd.tvsd_user,
			errno ? strerror(errno) : "no such user");
		return -1;
	}
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
 * first `tvsctl publish`. One killed after `current` switched, but before
 * tvsd reloaded, leaves tvsd on the older generation: so when the store
 * is not ahead, a running tvsd is still asked to serve `current` (a reload
 * of what it serves already costs one verification of the publication).
 * That runs beside the daemon, which answers its clients meanwhile.
 */
static void *
serve_current_main(void *arg)
{
	uint64_t cur = (uint64_t)(uintptr_t)arg;
	struct ctl c = { 0 };
	char *text = NULL;
	size_t len = 0;
	int rc;

	if ((c.out = open_memstream(&text, &len)) != NULL) {
		c.errf = c.out;
		rc = cd_serve(&c, cur, cd_now_ms());
		fclose(c.out);
		cd_log(rc == CTL_OK ? LOG_INFO : LOG_WARNING, "at start, generation %" PRIu64
			" (current): %s", cur, text ? text : "");
		free(text);
	}
	__atomic_sub_fetch(&cd.active, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
serve_current(uint64_t cur)
{
	char err[300];
	pthread_attr_t at;
	pthread_t t;
	int fd = tvsd_connect(cd.tvsd, err, sizeof(err));

	if (fd < 0) {
		cd_log(LOG_INFO, "tvsd is not running at %s; it loads generation %" PRIu64
			" (current) when it starts", cd.tvsd, cur);
		return;
	}
	close(fd);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	__atomic_add_fetch(&cd.active, 1, __ATOMIC_ACQUIRE);
	if (pthread_create(&t, &at, serve_current_main, (void *)(uintptr_t)cur) != 0) {
		__atomic_sub_fetch(&cd.active, 1, __ATOMIC_RELEASE);
		cd_log(LOG_ERR, "cannot start the start-up reload: %s", strerror(errno));
	}
	pthread_attr_destroy(&at);
}

static void
catch_up(void)
{
	uint64_t cur = cd_current_generation();
	char why[160];

	if (cur == 0) {
		cd_log(LOG_NOTICE, "nothing published under %s yet; run 'tvsctl publish'", cd.pub);
		return;
	}
	if (store_gen_at_start <= cur) {
		serve_current(cur);
		return;
	}
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
