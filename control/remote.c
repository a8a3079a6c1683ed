/*
 * tvsctl's side of tvs-controld (protocol in cdproto.h): the parsed
 * command goes over as words, the daemon's output comes back as it is
 * written, its questions are asked here on the terminal, and its exit code
 * becomes ours. When no daemon answers, the command runs here instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cdproto.h"
#include "ctl.h"

#define REMOTE_TIMEOUT_MS (10 * 60 * 1000)	/* a publish of 100k certificates */
#define ASK_TIMEOUT_MS (5 * 60 * 1000)

/* A file the command names, opened here and passed to the daemon. */
struct passed {
	uint32_t word;		/* its index among the CD_CMD strings */
	uint32_t kind;		/* CD_FD_* */
	int fd;
	const char *path;	/* as typed */
	char tmp[4096];		/* CD_FD_WRITE: the new file renamed to path at the end */
};

struct words {
	uint8_t buf[CD_PAYLOAD_MAX];
	size_t len;
	uint32_t n;
	bool full;
	struct passed files[CD_FDS_MAX];
	int nfiles;
};

static void
words_add(struct words *w, const char *s)
{
	size_t n = strlen(s) + 1;

	if (w->len + n > sizeof(w->buf) || n > CD_WORD_MAX || w->n == CD_WORDS_MAX) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->n++;
}

/* The daemon may run elsewhere in the file system: relative paths it is
 * given (for its messages: it opens none) are made absolute here. */
static const char *
absolute(const char *p)
{
	static char pool[CTL_MAX_ARGS + CTL_MAX_OPTS + 2][4096];
	static unsigned used;
	char cwd[4096];

	if (p[0] == '/' || used == sizeof(pool) / sizeof(pool[0]) ||
	    getcwd(cwd, sizeof(cwd)) == NULL ||
	    snprintf(pool[used], sizeof(pool[0]), "%s/%s", cwd, p) >= (int)sizeof(pool[0]))
		return p;
	return pool[used++];
}

/*
 * Opens a file word with the operator's own rights. A file to write is
 * created new beside its name (O_EXCL, O_NOFOLLOW, mode 0600) and renamed
 * over the name only when the daemon reports success: the daemon cannot
 * rename through a descriptor, and a failed backup must not leave half a
 * file under the name.
 */
static int
open_file(struct ctl *c, struct passed *f)
{
	f->tmp[0] = '\0';
	if (f->kind == CD_FD_WRITE) {
		if (snprintf(f->tmp, sizeof(f->tmp), "%s.tmp.%d", f->path, (int)getpid()) >=
		    (int)sizeof(f->tmp))
			return ctl_usage(c, "file name too long: %s", f->path);
		f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (f->fd >= 0 && fchmod(f->fd, 0600) != 0) {
			close(f->fd);
			unlink(f->tmp);
			f->fd = -1;
		}
		if (f->fd < 0)
			f->tmp[0] = '\0';
	} else {
		f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
			(f->kind == CD_FD_DIR ? O_DIRECTORY : O_NONBLOCK));
	}
	if (f->fd < 0)
		return ctl_fail(c, "%s: %s", f->path, strerror(errno));
	return CTL_OK;
}

static int
word_file(struct ctl *c, struct words *w, const char *path, int kind)
{
	struct passed *f;
	int rc;

	if (w->nfiles == CD_FDS_MAX)
		return ctl_usage(c, "more than %d files in one command", CD_FDS_MAX);
	f = &w->files[w->nfiles];
	*f = (struct passed){ .word = w->n, .kind = (uint32_t)kind, .path = path };
	if ((rc = open_file(c, f)) != CTL_OK)
		return rc;
	w->nfiles++;
	words_add(w, absolute(path));
	return CTL_OK;
}

/* Closes what was passed; a file written is renamed into place when the
 * command succeeded (then made durable), else removed. */
static int
files_done(struct ctl *c, struct words *w, int rc)
{
	for (int i = 0; i < w->nfiles; i++) {
		struct passed *f = &w->files[i];

		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		if (f->tmp[0] == '\0')
			continue;
		if (rc != CTL_OK)
			unlink(f->tmp);
		else if (rename(f->tmp, f->path) != 0) {
			rc = ctl_fail(c, "%s: %s (the backup is in %s)", f->path, strerror(errno),
				f->tmp);
		} else {
			char dir[4096], *slash;
			int d;

			snprintf(dir, sizeof(dir), "%s", f->path);
			slash = strrchr(dir, '/');
			if (slash == NULL)
				snprintf(dir, sizeof(dir), ".");
			else
				*(slash == dir ? slash + 1 : slash) = '\0';
			if ((d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
				fsync(d);
				close(d);
			}
		}
	}
	w->nfiles = 0;
	return rc;
}

/* The command as words: its words, "--opt [val]"..., "--", the arguments;
 * the files among them are opened here. */
static int
words_of(struct ctl *c, struct words *w)
{
	uint32_t flags = 0;
	int rc = CTL_OK;

	w->len = 8;
	if (c->yes)
		flags |= CD_F_YES;
	if (c->json)
		flags |= CD_F_JSON;
	if (c->store_given) {
		flags |= CD_F_STORE;
		words_add(w, absolute(c->store_dir));
	}
	if (c->pub_given) {
		flags |= CD_F_PUB;
		words_add(w, absolute(c->pub_dir));
	}
	for (int i = 0; i < CTL_MAX_WORDS && c->cmd->words[i]; i++)
		words_add(w, c->cmd->words[i]);
	for (int i = 0; i < c->nopts && rc == CTL_OK; i++) {
		char opt[128];

		snprintf(opt, sizeof(opt), "--%s", c->opts[i].name);
		words_add(w, opt);
		if (c->opts[i].val == NULL)
			continue;
		if (ctl_opt_file(c->opts[i].name))
			rc = word_file(c, w, c->opts[i].val, ctl_opt_file(c->opts[i].name));
		else
			words_add(w, c->opts[i].val);
	}
	words_add(w, "--");
	for (int i = 0; i < c->nargs && rc == CTL_OK; i++) {
		if (ctl_arg_file(c->cmd, i))
			rc = word_file(c, w, c->args[i], ctl_arg_file(c->cmd, i));
		else
			words_add(w, c->args[i]);
	}
	memcpy(w->buf, &flags, 4);
	memcpy(w->buf + 4, &w->n, 4);
	return rc;
}

static bool
no_daemon(const char *path)
{
	return path == NULL || path[0] == '\0' || strcmp(path, "none") == 0;
}

/* A connected socket; -1 when there is no daemon (said once when a socket
 * file is there but nobody answers). */
static int
connect_daemon(struct ctl *c, bool quiet)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd;

	if (no_daemon(c->controld) || strlen(c->controld) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, c->controld, strlen(c->controld) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (!quiet && stat(c->controld, &sb) == 0)
		fprintf(c->errf, "tvsctl: controld not running (%s: %s); %s\n", c->controld,
			strerror(errno), c->cmd->flags & CTL_F_CHANGE ?
			"changing the store directly" : "reading the store directly");
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The daemon's question, asked here; answers "" when there is no terminal
 * for a confirmation (the daemon then cancels and we say why). */
static int
answer(int fd, const uint8_t *p, bool *notty)
{
	uint32_t secret;
	char ans[CD_ANSWER_MAX];
	int rc;

	memcpy(&secret, p, 4);
	ans[0] = '\0';
	if (secret) {
		if (ctl_tty_secret((const char *)p + 4, ans, sizeof(ans)) != 0)
			*notty = true;
	} else if (isatty(STDIN_FILENO)) {
		printf("%s\nDo you want to continue? (y/n): ", (const char *)p + 4);
		fflush(stdout);
		if (fgets(ans, sizeof(ans), stdin) == NULL)
			ans[0] = '\0';
		ans[strcspn(ans, "\r\n")] = '\0';
	} else {
		*notty = true;
	}
	rc = cd_send(fd, CD_ANSWER, ans, strlen(ans) + 1);
	OPENSSL_cleanse(ans, sizeof(ans));
	return rc;
}

static int
converse(struct ctl *c, int fd)
{
	static uint8_t buf[CD_PAYLOAD_MAX + 1];
	bool notty = false;
	struct cd_hdr h;
	uint32_t code;
	int n;

	for (;;) {
		n = cd_recv(fd, &h, buf, CD_PAYLOAD_MAX, REMOTE_TIMEOUT_MS);
		if (n < 0 || !cd_check(h.type, buf, (size_t)n, true))
			return ctl_fail(c, "controld at %s: %s", c->controld, n == -1 ? (errno ?
				"no answer" : "closed the connection before the end of the command") :
				"sent a malformed message");
		switch (h.type) {
		case CD_OUT:
			fwrite(buf, 1, (size_t)n, c->out);
			break;
		case CD_ERR:
			fflush(c->out);
			fwrite(buf, 1, (size_t)n, c->errf);
			break;
		case CD_ASK:
			fflush(c->out);
			if (answer(fd, buf, &notty) != 0)
				return ctl_fail(c, "controld at %s: connection lost", c->controld);
			break;
		case CD_DONE:
			memcpy(&code, buf, 4);
			fflush(c->out);
			if (notty && code != CTL_OK)
				return ctl_usage(c, "'%s%s%s' needs an answer and stdin is not a "
					"terminal; add --yes to confirm (and --passphrase-file F for a "
					"passphrase)", c->cmd->words[0], c->cmd->words[1] ? " " : "",
					c->cmd->words[1] ? c->cmd->words[1] : "");
			return (int)code;
		case CD_NOT_MINE:
			buf[n] = '\0';
			fprintf(c->errf, "tvsctl: controld manages the store %s, not %s; %s\n",
				(const char *)buf, c->store_dir, "working on the store directly");
			return CTL_OFFLINE;
		default:
			return ctl_fail(c, "controld at %s: unexpected message type %u", c->controld,
				h.type);
		}
	}
}

/* The command's files, then the command. */
static int
send_command(int fd, const struct words *w)
{
	for (int i = 0; i < w->nfiles; i++)
		if (cd_send_fd(fd, w->files[i].word, w->files[i].kind, w->files[i].fd) != 0)
			return CTL_FAIL;
	return cd_send(fd, CD_CMD, w->buf, w->len) != 0 ? CTL_FAIL : CTL_OK;
}

int
ctl_remote_run(struct ctl *c)
{
	static struct words w;
	int fd, rc;

	memset(&w, 0, sizeof(w));
	if ((fd = connect_daemon(c, false)) < 0)
		return CTL_OFFLINE;
	rc = words_of(c, &w);
	if (rc == CTL_OK && w.full)
		rc = ctl_usage(c, "command line too long for controld");
	/* a daemon that refuses the session says why and closes, maybe before
	 * the command is sent: its answer is read either way */
	if (rc == CTL_OK && (send_command(fd, &w) == CTL_OK || errno == EPIPE ||
	    errno == ECONNRESET))
		rc = converse(c, fd);
	else if (rc == CTL_OK)
		rc = ctl_fail(c, "controld at %s: %s", c->controld, strerror(errno));
	close(fd);
	return files_done(c, &w, rc);
}

int
ctl_remote_query(struct ctl *c, uint32_t type, void *reply, size_t len, char *err,
	size_t errsz)
{
	uint8_t buf[256];
	struct cd_hdr h;
	int fd = connect_daemon(c, true), n;

	if (fd < 0) {
		snprintf(err, errsz, "controld not running at %s", no_daemon(c->controld) ? "-" :
			c->controld);
		return -1;
	}
	/* a refusal may have come (and the socket closed) before the query */
	(void)cd_send(fd, type, NULL, 0);
	n = cd_recv(fd, &h, buf, sizeof(buf) - 1, 5000);
	close(fd);
	if (n > 0 && h.type == CD_ERR && cd_check(h.type, buf, (size_t)n, true)) {
		buf[n] = '\0';
		snprintf(err, errsz, "controld at %s: %s", c->controld, (const char *)buf);
		err[strcspn(err, "\n")] = '\0';
		return -1;
	}
	if (n < 0 || h.type != type || !cd_check(type, buf, (size_t)n, true) || (size_t)n != len) {
		snprintf(err, errsz, "controld at %s gave no answer", c->controld);
		return -1;
	}
	memcpy(reply, buf, len);
	return 0;
}
