/*
 * show tvs status / show tvs stats: ask the running tvsd over its control
 * socket ([tvsd] control-socket; protocol at the top of dataplane/dp_ctl.c:
 * one command line, one JSON line back) and print the answer for people,
 * or pass the JSON through with --json.
 *
 * The replies are small JSON documents that tvsd itself writes, so a flat
 * scanner that turns them into "path value" pairs (stats.total.rx_pkts 12)
 * is all we need; a JSON library would be a dependency for 80 lines.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define TVSD_SOCKET "/run/tvs/tvsd.sock"
#define REPLY_MAX (1u << 20)
#define PAIRS_MAX 4096
#define PATH_LEN 96

struct pair {
	char path[PATH_LEN];
	char val[64];
};

struct flat {
	struct pair *p;
	size_t n;
	const char *s;		/* scanner position */
	int bad;
};

static const char *
tvsd_socket(const struct ctl *c)
{
	const char *s = ctl_opt(c, "socket");

	if (s == NULL)
		s = getenv("TVS_TVSD_SOCKET");
	return s != NULL ? s : TVSD_SOCKET;
}

/* Sends cmd, reads one reply line (bounded in size and time) into *out. */
static int
tvsd_ask(struct ctl *c, const char *cmd, char **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = tvsd_socket(c);
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	int fd = -1;

	*out = NULL;
	if (buf == NULL)
		return ctl_fail(c, "out of memory");
	if (strlen(path) >= sizeof(sa.sun_path)) {
		free(buf);
		return ctl_usage(c, "control socket path too long: %s", path);
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		free(buf);
		return ctl_fail(c, "cannot reach tvsd at %s: %s (is it running? --socket PATH)",
			path, strerror(e));
	}
	dprintf(fd, "%s\n", cmd);
	while (len == 0 || buf[len - 1] != '\n') {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = cap < REPLY_MAX ? realloc(buf, cap * 2) : NULL;

			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		if (poll(&p, 1, 5000) != 1 || (n = read(fd, buf + len, cap - len - 1)) <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len == 0 || buf[len - 1] != '\n') {
		free(buf);
		return ctl_fail(c, "tvsd at %s gave no complete answer to '%s' within 5 s", path, cmd);
	}
	buf[len - 1] = '\0';
	*out = buf;
	return CTL_OK;
}

static void flat_value(struct flat *f, const char *path);

static void
flat_ws(struct flat *f)
{
	while (*f->s == ' ' || *f->s == '\t' || *f->s == '\n' || *f->s == '\r')
		f->s++;
}

/* A string into out (escapes kept as written but for \" and \\). */
static void
flat_string(struct flat *f, char *out, size_t n)
{
	size_t k = 0;

	if (*f->s != '"') {
		f->bad = 1;
		return;
	}
	for (f->s++; *f->s != '\0' && *f->s != '"'; f->s++) {
		if (*f->s == '\\' && f->s[1] != '\0')
			f->s++;
		if (k + 1 < n)
			out[k++] = *f->s;
	}
	out[k] = '\0';
	if (*f->s != '"')
		f->bad = 1;
	else
		f->s++;
}

static void
flat_add(struct flat *f, const char *path, const char *val, size_t n)
{
	struct pair *p;

	if (f->n == PAIRS_MAX)
		return;
	p = &f->p[f->n++];
	snprintf(p->path, sizeof(p->path), "%s", path);
	snprintf(p->val, sizeof(p->val), "%.*s", (int)(n < sizeof(p->val) ? n : sizeof(p->val) - 1), val);
}

static void
flat_container(struct flat *f, const char *path, char close, bool keyed)
{
	char key[PATH_LEN], sub[PATH_LEN];
	unsigned i = 0;

	f->s++;
	flat_ws(f);
	while (!f->bad && *f->s != close) {
		if (keyed) {
			flat_string(f, key, sizeof(key));
			flat_ws(f);
			if (*f->s++ != ':')
				f->bad = 1;
		} else {
			snprintf(key, sizeof(key), "%u", i++);
		}
		if (snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key) >=
		    (int)sizeof(sub))
			f->bad = 1;	/* deeper than any reply of tvsd */
		flat_value(f, sub);
		flat_ws(f);
		if (*f->s == ',')
			f->s++;
		else if (*f->s != close)
			f->bad = 1;
		flat_ws(f);
	}
	if (*f->s == close)
		f->s++;
}

static void
flat_value(struct flat *f, const char *path)
{
	char str[256];
	const char *start;

	flat_ws(f);
	if (*f->s == '{') {
		flat_container(f, path, '}', true);
	} else if (*f->s == '[') {
		flat_container(f, path, ']', false);
	} else if (*f->s == '"') {
		flat_string(f, str, sizeof(str));
		flat_add(f, path, str, strlen(str));
	} else {
		start = f->s;
		while (*f->s != '\0' && strchr(",}] \t\r\n", *f->s) == NULL)
			f->s++;
		if (f->s == start)
			f->bad = 1;
		else
			flat_add(f, path, start, (size_t)(f->s - start));
	}
}

static const char *
flat_get(const struct flat *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->p[i].path, path) == 0)
			return f->p[i].val;
	return NULL;
}

/* Asks, then parses; prints tvsd's own error when it says ok:false. */
static int
tvsd_query(struct ctl *c, const char *cmd, char **raw, struct flat *f)
{
	const char *okv, *e;
	int rc;

	memset(f, 0, sizeof(*f));
	if ((rc = tvsd_ask(c, cmd, raw)) != CTL_OK)
		return rc;
	f->p = calloc(PAIRS_MAX, sizeof(*f->p));
	if (f->p == NULL)
		return ctl_fail(c, "out of memory");
	f->s = *raw;
	flat_value(f, "");
	if (f->bad || (okv = flat_get(f, "ok")) == NULL)
		return ctl_fail(c, "tvsd answered '%s' with something that is not its JSON", cmd);
	if (strcmp(okv, "true") != 0)
		return ctl_fail(c, "tvsd: %s", (e = flat_get(f, "error")) ? e : "failed");
	return CTL_OK;
}

int
cmd_show_tvs_status(struct ctl *c)
{
	struct flat f;
	char *raw = NULL;
	int rc = tvsd_query(c, "status", &raw, &f);

	if (rc == CTL_OK && c->json) {
		puts(raw);
	} else if (rc == CTL_OK) {
		printf("tvsd at %s\n", tvsd_socket(c));
		for (size_t i = 0; i < f.n; i++)
			if (strcmp(f.p[i].path, "ok") != 0)
				printf("  %-24s %s\n", f.p[i].path, f.p[i].val);
	}
	free(f.p);
	free(raw);
	return rc;
}

/* One row per counter of "stats.total", a column per lcore. */
int
cmd_show_tvs_stats(struct ctl *c)
{
	static const char total[] = "stats.total.", lc[] = "stats.lcores.";
	char lcores[64][16], path[PATH_LEN * 2];
	unsigned nl = 0;
	struct flat f;
	char *raw = NULL;
	int rc = tvsd_query(c, "stats", &raw, &f);

	if (rc != CTL_OK || c->json) {
		if (rc == CTL_OK)
			puts(raw);
		goto out;
	}
	for (size_t i = 0; i < f.n; i++) {	/* lcore ids, in order of appearance */
		const char *p = f.p[i].path, *dot;

		if (strncmp(p, lc, sizeof(lc) - 1) != 0 || (dot = strchr(p + sizeof(lc) - 1, '.')) == NULL)
			continue;
		if (nl > 0 && strncmp(lcores[nl - 1], p + sizeof(lc) - 1,
		    (size_t)(dot - p) - (sizeof(lc) - 1)) == 0 &&
		    lcores[nl - 1][(size_t)(dot - p) - (sizeof(lc) - 1)] == '\0')
			continue;
		if (nl < 64)
			snprintf(lcores[nl++], sizeof(lcores[0]), "%.*s",
				(int)((size_t)(dot - p) - (sizeof(lc) - 1)), p + sizeof(lc) - 1);
	}
	printf("%-28s %14s", "counter", "total");
	for (unsigned k = 0; k < nl; k++)
		printf(" %11s%-3s", "lcore ", lcores[k]);
	putchar('\n');
	for (size_t i = 0; i < f.n; i++) {
		const char *name = f.p[i].path + sizeof(total) - 1;

		if (strncmp(f.p[i].path, total, sizeof(total) - 1) != 0)
			continue;
		printf("%-28s %14s", name, f.p[i].val);
		for (unsigned k = 0; k < nl; k++) {
			const char *v;

			v = snprintf(path, sizeof(path), "%s%s.%s", lc, lcores[k], name) <
				(int)sizeof(path) ? flat_get(&f, path) : NULL;
			printf(" %14s", v ? v : "-");
		}
		putchar('\n');
	}
out:
	free(f.p);
	free(raw);
	return rc;
}
