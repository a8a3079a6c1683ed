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

#include <inttypes.h>

#include "cdproto.h"
#include "ctl.h"
#include "jflat.h"
#include "tvsd_link.h"

#define REPLY_MAX (1u << 20)

static const char *
tvsd_socket(const struct ctl *c)
{
	const char *s = ctl_opt(c, "socket");

	if (s == NULL)
		s = getenv("TVS_TVSD_SOCKET");
	return s != NULL ? s : TVSD_DEFAULT_SOCKET;
}

/* Sends cmd, reads one reply line (bounded in size and time) into *out. */
static int
tvsd_ask(struct ctl *c, const char *cmd, char **out)
{
	const char *path = tvsd_socket(c);
	char err[256];
	int fd = tvsd_connect(path, err, sizeof(err)), rc;

	*out = NULL;
	if (fd < 0)
		return ctl_fail(c, "cannot reach tvsd at %s: %s (is it running? --socket PATH)",
			path, err);
	rc = tvsd_request(fd, cmd, 5000, REPLY_MAX, out, err, sizeof(err));
	close(fd);
	if (rc != 0)
		return ctl_fail(c, "tvsd at %s: %s", path, err);
	return CTL_OK;
}

/* Asks, then parses; prints tvsd's own error when it says ok:false. */
static int
tvsd_query(struct ctl *c, const char *cmd, char **raw, struct jflat *f)
{
	const char *okv, *e;
	int rc;

	memset(f, 0, sizeof(*f));
	if ((rc = tvsd_ask(c, cmd, raw)) != CTL_OK)
		return rc;
	if (jflat_parse(f, *raw) != 0 || (okv = jflat_get(f, "ok")) == NULL)
		return ctl_fail(c, "tvsd answered '%s' with something that is not its JSON", cmd);
	if (strcmp(okv, "true") != 0)
		return ctl_fail(c, "tvsd: %s", (e = jflat_get(f, "error")) ? e : "failed");
	return CTL_OK;
}

int
cmd_show_tvs_status(struct ctl *c)
{
	struct jflat f;
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
	jflat_free(&f);
	free(raw);
	return rc;
}

/* One row per counter of "stats.total", a column per lcore. */
int
cmd_show_tvs_stats(struct ctl *c)
{
	static const char total[] = "stats.total.", lc[] = "stats.lcores.";
	char lcores[64][16], path[JFLAT_PATH * 2];
	unsigned nl = 0;
	struct jflat f;
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
				(int)sizeof(path) ? jflat_get(&f, path) : NULL;
			printf(" %14s", v ? v : "-");
		}
		putchar('\n');
	}
out:
	jflat_free(&f);
	free(raw);
	return rc;
}

/* ---- show memory ----------------------------------------------------------- */

static void
print_mem(struct ctl *c, const char *who, const struct cd_memory *m)
{
	if (!m->jemalloc) {
		fprintf(c->out, "%s: not built with jemalloc (libc malloc): no statistics\n", who);
		return;
	}
	fprintf(c->out, "%s (jemalloc):\n", who);
	fprintf(c->out, "  %-10s %14" PRIu64 "\n  %-10s %14" PRIu64 "\n  %-10s %14" PRIu64
		"\n  %-10s %14" PRIu64 "\n  %-10s %14" PRIu64 "\n", "allocated", m->allocated,
		"active", m->active, "resident", m->resident, "retained", m->retained, "mapped",
		m->mapped);
}

int
cmd_show_memory(struct ctl *c)
{
	struct cd_memory m;
	struct jflat f = { 0 };
	char err[256], *raw = NULL;
	int rc = CTL_OK, got = 0;

	if (ctl_remote_query(c, CD_MEMORY, &m, sizeof(m), err, sizeof(err)) == 0) {
		got++;
		if (c->json)
			fprintf(c->out, "{\"controld\":{\"jemalloc\":%s,\"allocated\":%" PRIu64
				",\"active\":%" PRIu64 ",\"resident\":%" PRIu64 ",\"retained\":%" PRIu64
				",\"mapped\":%" PRIu64 "}}\n", m.jemalloc ? "true" : "false", m.allocated,
				m.active, m.resident, m.retained, m.mapped);
		else
			print_mem(c, "tvs-controld", &m);
	} else {
		fprintf(c->errf, "tvsctl: %s\n", err);
	}
	if (tvsd_query(c, "memory", &raw, &f) == CTL_OK) {
		got++;
		if (c->json) {
			fprintf(c->out, "%s\n", raw);
		} else {
			fprintf(c->out, "tvsd at %s:\n", tvsd_socket(c));
			for (size_t i = 0; i < f.n; i++)
				if (strcmp(f.p[i].path, "ok") != 0)
					fprintf(c->out, "  %-32s %s\n", f.p[i].path, f.p[i].val);
		}
	}
	jflat_free(&f);
	free(raw);
	if (got == 0)
		rc = CTL_FAIL;
	return rc;
}
