/* The ITL rollout file, see rollout.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout.h"

static pthread_mutex_t rollout_mu = PTHREAD_MUTEX_INITIALIZER;

static int
path_of(const char *pub_dir, char *out, size_t n, struct trust_err *err)
{
	if (snprintf(out, n, "%s/%s", pub_dir, ROLLOUT_FILE) >= (int)n)
		return trust_errf(err, TRUST_EINVAL, "publication root path too long");
	return 0;
}

static int
cmp_mac(const void *a, const void *b)
{
	return strcmp(((const struct rollout_phone *)a)->mac, ((const struct rollout_phone *)b)->mac);
}

const struct rollout_phone *
rollout_find(const struct rollout *r, const char *mac)
{
	struct rollout_phone key;

	snprintf(key.mac, sizeof(key.mac), "%s", mac);
	return r->sorted ? bsearch(&key, r->v, r->sorted, sizeof(*r->v), cmp_mac) : NULL;
}

static bool
valid_mac(const char *s)
{
	size_t i;

	for (i = 0; i < 12; i++)
		if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i]))
			return false;
	return s[12] == '\0';
}

/*
 * Updates a phone of the sorted part, or appends it (a batch of puts
 * names each phone once: the file and tvsd's table have unique MACs);
 * sort() after the batch. 1 if something changed.
 */
static int
put(struct rollout *r, const char *mac, uint64_t gen, int64_t t)
{
	struct rollout_phone *p = (struct rollout_phone *)rollout_find(r, mac);

	if (p != NULL) {
		if (t < p->time || (t == p->time && gen == p->gen))
			return 0;
		p->gen = gen;
		p->time = t;
		return 1;
	}
	if (r->n == ROLLOUT_MAX_PHONES)
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct rollout_phone *v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		r->v = v;
		r->cap = cap;
	}
	snprintf(r->v[r->n].mac, sizeof(r->v[r->n].mac), "%s", mac);
	r->v[r->n].gen = gen;
	r->v[r->n].time = t;
	r->n++;
	return 1;
}

static void
sort(struct rollout *r)
{
	if (r->n > 1)
		qsort(r->v, r->n, sizeof(*r->v), cmp_mac);
	r->sorted = r->n;
}

static int
parse_line(struct rollout *r, char *line, unsigned no, bool *end, struct trust_err *err)
{
	char word[16], mac[16], sha[80];
	unsigned long long a, b;
	long long t;

	if (sscanf(line, "%15s", word) != 1)
		goto bad;
	if (strcmp(word, "end") == 0) {
		*end = true;
		return 0;
	}
	if (strcmp(word, "tvs") == 0 && sscanf(line, "tvs %79s %llu", sha, &a) == 2 &&
	    strlen(sha) == 64) {
		memcpy(r->tvs_sha, sha, 65);
		r->tvs_since = a;
		return 0;
	}
	if (strcmp(word, "newest") == 0 && sscanf(line, "newest %llu", &b) == 1) {
		r->newest = b;
		return 0;
	}
	if (strcmp(word, "phone") == 0 && sscanf(line, "phone %15s %llu %lld", mac, &a, &t) == 3 &&
	    valid_mac(mac)) {
		if (put(r, mac, a, t) < 0)
			return trust_errf(err, TRUST_ENOMEM, "out of memory");
		return 0;
	}
bad:
	return trust_errf(err, TRUST_EFORMAT, "rollout line %u: cannot parse '%.60s'", no, line);
}

int
rollout_load(const char *pub_dir, struct rollout *r, struct trust_err *err)
{
	char path[4096], line[256];
	unsigned no = 0;
	bool end = false;
	FILE *f;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if ((rc = path_of(pub_dir, path, sizeof(path), err)) != 0)
		return rc;
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : trust_errf(err, TRUST_EIO, "%s: %s", path, strerror(errno));
	if (fgets(line, sizeof(line), f) == NULL || strcmp(line, "tvs-rollout 1\n") != 0)
		rc = trust_errf(err, TRUST_EFORMAT, "%s: not a rollout file (version 1)", path);
	no = 1;
	while (rc == 0 && !end && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		rc = parse_line(r, line, ++no, &end, err);
	}
	fclose(f);
	sort(r);
	if (rc == 0 && !end)
		rc = trust_errf(err, TRUST_EFORMAT, "%s: truncated (no end line)", path);
	if (rc != 0)
		rollout_free(r);
	return rc;
}

void
rollout_free(struct rollout *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static int
save(const char *pub_dir, const struct rollout *r, struct trust_err *err)
{
	struct trust_buf b;
	char path[4096];
	int rc;

	if ((rc = path_of(pub_dir, path, sizeof(path), err)) != 0)
		return rc;
	trust_buf_init(&b);
	trust_buf_printf(&b, "tvs-rollout 1\n");
	if (r->tvs_sha[0])
		trust_buf_printf(&b, "tvs %s %" PRIu64 "\n", r->tvs_sha, r->tvs_since);
	trust_buf_printf(&b, "newest %" PRIu64 "\n", r->newest);
	for (size_t i = 0; i < r->n; i++)
		trust_buf_printf(&b, "phone %s %" PRIu64 " %" PRId64 "\n", r->v[i].mac, r->v[i].gen,
			r->v[i].time);
	trust_buf_printf(&b, "end\n");
	rc = b.failed ? trust_errf(err, TRUST_ENOMEM, "out of memory") :
		trust_file_write_atomic(path, b.data, b.len, 0644, err);
	trust_buf_free(&b);
	return rc;
}

int
rollout_note_publish(const char *pub_dir, const char *tvs_sha, uint64_t gen,
	struct trust_err *err)
{
	struct rollout r;
	int rc;

	pthread_mutex_lock(&rollout_mu);
	if ((rc = rollout_load(pub_dir, &r, err)) == 0) {
		if (strcmp(r.tvs_sha, tvs_sha) != 0) {
			snprintf(r.tvs_sha, sizeof(r.tvs_sha), "%s", tvs_sha);
			r.tvs_since = gen;
		}
		if (gen > r.newest)
			r.newest = gen;
		rc = save(pub_dir, &r, err);
		rollout_free(&r);
	}
	pthread_mutex_unlock(&rollout_mu);
	return rc;
}

/* tvsd's entries: {"mac":"001122AABBCC","generation":G,"time":T,...}. */
static int
merge(struct rollout *r, const json_t *doc)
{
	const json_t *entries = json_object_get(doc, "entries"), *e;
	int changed = 0;
	size_t i;

	if (!json_is_array(entries))
		return -1;
	json_array_foreach(entries, i, e) {
		const json_t *mac = json_object_get(e, "mac"), *gen = json_object_get(e, "generation");
		const json_t *t = json_object_get(e, "time");
		int k;

		if (!json_is_string(mac) || !valid_mac(json_string_value(mac)) ||
		    !json_is_integer(gen) || json_integer_value(gen) < 0 || !json_is_integer(t))
			return -1;
		if ((k = put(r, json_string_value(mac), (uint64_t)json_integer_value(gen),
		    json_integer_value(t))) < 0)
			return -1;
		changed += k;
	}
	sort(r);
	return changed;
}

int
rollout_merge_tvsd(const char *pub_dir, const json_t *doc, struct trust_err *err)
{
	struct rollout r;
	int rc;

	pthread_mutex_lock(&rollout_mu);
	if ((rc = rollout_load(pub_dir, &r, err)) == 0) {
		rc = merge(&r, doc);
		if (rc < 0)
			rc = trust_errf(err, TRUST_EFORMAT, "tvsd's rollout reply does not parse");
		else if (rc > 0 && save(pub_dir, &r, err) != 0)
			rc = err->code;
		rollout_free(&r);
	}
	pthread_mutex_unlock(&rollout_mu);
	return rc;
}
