/*
 * show tvs status / show tvs stats: ask the running tvsd over its control
 * socket ([tvsd] control-socket; messages in dataplane/dpctl_proto.h) and
 * print the JSON document it answers for people, or pass it through with
 * --json. The documents are read with jansson.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdproto.h"
#include "ctl.h"
#include "tvsd_link.h"

#define TVSD_TIMEOUT_MS 5000

static const char *
tvsd_socket(const struct ctl *c)
{
	const char *s = ctl_opt(c, "socket");

	if (s == NULL)
		s = getenv("TVS_TVSD_SOCKET");
	return s != NULL ? s : TVSD_DEFAULT_SOCKET;
}

/* One request on its own connection: the document (and its text). */
static int
tvsd_query(struct ctl *c, uint32_t type, char **raw, json_t **doc)
{
	const char *path = tvsd_socket(c);
	char err[512];
	int fd = tvsd_connect(path, err, sizeof(err));

	*raw = NULL;
	*doc = NULL;
	if (fd < 0)
		return ctl_fail(c, "cannot reach tvsd at %s: %s (is it running? --socket PATH)",
			path, err);
	*doc = tvsd_json(fd, type, TVSD_TIMEOUT_MS, raw, err, sizeof(err));
	close(fd);
	if (*doc == NULL)
		return ctl_fail(c, "tvsd at %s: %s", path, err);
	return CTL_OK;
}

/* A scalar as text: strings as they are, numbers, true/false/null. */
static void
scalar_text(const json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, n, "%g", json_real_value(v));
	else
		snprintf(out, n, "%s", json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
}

/* Every scalar of the document as "path value", one a line (arrays
 * indexed from 0: workers.0 1); the top-level "ok" is left out. */
static void
print_flat(FILE *out, const json_t *v, const char *path, int width)
{
	char sub[256], val[256];
	const char *key;
	json_t *e;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e) {
			if (*path == '\0' && strcmp(key, "ok") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
			print_flat(out, e, sub, width);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			snprintf(sub, sizeof(sub), "%s.%zu", path, i);
			print_flat(out, e, sub, width);
		}
	} else if (json_is_string(v)) {
		/* whole, however long (hashes, paths, tvsd's error texts) */
		fprintf(out, "  %-*s %s\n", width, path, json_string_value(v));
	} else if (json_is_integer(v) && strcmp(path, "uptime") == 0) {
		fprintf(out, "  %-*s %" JSON_INTEGER_FORMAT " s\n", width, path,
			json_integer_value(v));
	} else if (json_is_integer(v) && strcmp(path, "loaded") == 0) {
		ctl_time((long)json_integer_value(v), val, sizeof(val));
		fprintf(out, "  %-*s %s\n", width, path, val);
	} else {
		scalar_text(v, val, sizeof(val));
		fprintf(out, "  %-*s %s\n", width, path, val);
	}
}

int
cmd_show_tvs_status(struct ctl *c)
{
	json_t *doc;
	char *raw;
	int rc = tvsd_query(c, DPCTL_STATUS, &raw, &doc);

	if (rc == CTL_OK && c->json) {
		puts(raw);
	} else if (rc == CTL_OK) {
		printf("tvsd at %s\n", tvsd_socket(c));
		print_flat(stdout, doc, "", 24);
	}
	json_decref(doc);
	free(raw);
	return rc;
}

/* One row per counter of stats.total, a column per lcore of stats.lcores. */
static void
print_stats_table(const json_t *stats)
{
	const json_t *total = json_object_get(stats, "total"), *lcores = json_object_get(stats, "lcores");
	const char *name, *lc;
	char val[64];
	json_t *v, *per;

	printf("%-28s %14s", "counter", "total");
	json_object_foreach((json_t *)lcores, lc, per)
		printf(" %11s%-3s", "lcore ", lc);
	putchar('\n');
	json_object_foreach((json_t *)total, name, v) {
		scalar_text(v, val, sizeof(val));
		printf("%-28s %14s", name, val);
		json_object_foreach((json_t *)lcores, lc, per) {
			const json_t *x = json_object_get(per, name);

			if (x != NULL)
				scalar_text(x, val, sizeof(val));
			printf(" %14s", x != NULL ? val : "-");
		}
		putchar('\n');
	}
}

int
cmd_show_tvs_stats(struct ctl *c)
{
	json_t *doc;
	char *raw;
	int rc = tvsd_query(c, DPCTL_STATS, &raw, &doc);

	if (rc == CTL_OK && c->json)
		puts(raw);
	else if (rc == CTL_OK)
		print_stats_table(json_object_get(doc, "stats"));
	json_decref(doc);
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
	json_t *doc = NULL;
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
	if (tvsd_query(c, DPCTL_MEMORY, &raw, &doc) == CTL_OK) {
		got++;
		if (c->json) {
			fprintf(c->out, "%s\n", raw);
		} else {
			fprintf(c->out, "tvsd at %s:\n", tvsd_socket(c));
			print_flat(c->out, doc, "", 32);
		}
	}
	json_decref(doc);
	free(raw);
	if (got == 0)
		rc = CTL_FAIL;
	return rc;
}
