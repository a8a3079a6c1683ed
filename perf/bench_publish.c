/*
 * bench_publish: how long publish_run takes for a realistic store.
 *
 * Builds a store with --certs trusted certificates (APP-SERVER role, plus
 * two TVS peers that go into the ITL), --configs device configs of which
 * --encrypted have a registered phone certificate, then publishes --runs
 * times (each a new generation, as `tvsctl publish --force` does) and
 * prints every run and the median, min and max. With --json FILE it also
 * appends the median as a result row (perf/README.md, "Benchmark result
 * rows").
 *
 * Generating 1,000 RSA keys would take minutes and measure nothing about
 * publishing, so all trusted certificates share one RSA-2048 key; each is
 * still its own certificate (own CN, serial, signature, digest). The four
 * own units get their own keys of --key-bits.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "publish.h"
#include "sign.h"
#include "store.h"

struct bench_opts {
	const char *dir;
	unsigned certs;
	unsigned configs;
	unsigned encrypted;
	unsigned runs;
	unsigned key_bits;
	bool keep;
	const char *json;	/* result rows appended here, or NULL */
};

/* What publish_run measured, for the result row. */
struct bench_result {
	double median_ms, min_ms, max_ms, first_ms, open_ms;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
die(const char *what, const struct trust_err *err)
{
	fprintf(stderr, "bench_publish: %s: %s\n", what, err->msg);
	return 1;
}

static int
write_configs(const char *dir, unsigned n)
{
	char path[4300];
	FILE *f;

	mkdir(dir, 0700);
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/SEP%012X.cnf.xml", dir, i);
		if ((f = fopen(path, "w")) == NULL)
			return -1;
		/* about the size of a real SIP phone config */
		fprintf(f, "<device xsi:type=\"axl:XIPPhone\" ctiid=\"%u\">\n<fullConfig>true</fullConfig>\n"
			"<deviceProtocol>SIP</deviceProtocol>\n", i);
		for (int k = 0; k < 60; k++)
			fprintf(f, "<param%d>value of parameter %d for device %u</param%d>\n", k, k, i, k);
		fprintf(f, "</device>\n");
		fclose(f);
	}
	return 0;
}

static int
fill_store(const struct bench_opts *o, const char *sdir)
{
	struct store_init_opts io = { .hostname = "bench-pub", .key_bits = o->key_bits };
	struct trust_cert_params p = { .o = "Bench", .days = 365 };
	uint16_t app = TRUST_ROLE_APP_SERVER, tvs = TRUST_ROLE_TVS;
	struct trust_store st;
	struct trust_err err;
	EVP_PKEY *key;
	char cn[64];
	double t0 = now_ms();

	if (store_init(sdir, &io, &err) != 0)
		return die("store_init", &err);
	if ((key = trust_key_generate_rsa(2048, &err)) == NULL)
		return die("key", &err);
	if (store_open(sdir, STORE_LOCK, &st, &err) != 0)
		return die("store_open", &err);
	for (unsigned i = 0; i < o->certs + o->encrypted; i++) {
		struct trust_cert c;
		int r;

		snprintf(cn, sizeof(cn), i < o->certs ? "app%04u.example.com" : "SEP%012X", i < o->certs ?
			i : i - o->certs);
		p.cn = cn;
		if (trust_cert_selfsign(key, &p, &c, &err) != 0)
			return die("selfsign", &err);
		if (i >= o->certs)
			r = store_phone_add(&st, cn, &c, &err);
		else
			r = store_trust_add(&st, cn, i < 2 ? &tvs : &app, 1, 0, &c, &err);
		trust_cert_free(&c);
		if (r != 0)
			return die("add", &err);
	}
	if (store_commit(&st, &err) != 0)
		return die("commit", &err);
	store_close(&st);
	EVP_PKEY_free(key);
	printf("setup: store with %u trusted certificates (2 TVS peers) and %u phone certificates "
		"in %.0f ms\n", o->certs, o->encrypted, now_ms() - t0);
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(const double *sorted, unsigned n)
{
	return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static int
run(const struct bench_opts *o, const char *sdir, const char *pdir, const char *cdir,
	struct bench_result *res)
{
	struct publish_opts po = { .config_dir = cdir, .force = true };
	struct publish_result r = { 0 };
	double *t = calloc(o->runs, sizeof(*t)), open_ms = 0;
	struct trust_store st;
	struct trust_err err;

	if (t == NULL)
		return 1;
	for (unsigned i = 0; i < o->runs; i++) {
		double t0 = now_ms();

		if (store_open(sdir, STORE_LOCK, &st, &err) != 0)
			return die("store_open", &err);
		open_ms += now_ms() - t0;
		if (publish_run(&st, pdir, &po, &r, &err) != 0)
			return die("publish_run", &err);
		store_close(&st);
		t[i] = now_ms() - t0;
		printf("run %u: %.1f ms (generation %llu)\n", i + 1, t[i],
			(unsigned long long)r.generation);
	}
	printf("publication: ITL %zu bytes, %u device configs (%u encrypted), %u certificates "
		"in the manifest\n", r.itl_size, r.nconfigs, r.nencrypted, r.ncerts);
	res->first_ms = t[0];
	qsort(t, o->runs, sizeof(*t), cmp_double);
	res->median_ms = median(t, o->runs);
	res->min_ms = t[0];
	res->max_ms = t[o->runs - 1];
	res->open_ms = open_ms / o->runs;
	printf("publish (store open + publish_run, fsync on): median %.1f ms, min %.1f ms, "
		"max %.1f ms over %u runs\n", res->median_ms, res->min_ms, res->max_ms, o->runs);
	printf("of which store_open (index checksum + every object's digest): %.1f ms on average\n",
		res->open_ms);
	free(t);
	return 0;
}

/* The file system under dir, by name: fsync costs what it costs there. */
static const char *
fs_name(const char *dir, char *buf, size_t len)
{
	static const struct { long magic; const char *name; } known[] = {
		{ 0x01021994, "tmpfs" }, { 0xEF53, "ext4" }, { 0x58465342, "xfs" },
		{ 0x9123683E, "btrfs" }, { 0x794C7630, "overlayfs" }, { 0x2FC12FC1, "zfs" },
	};
	struct statfs sf;

	if (statfs(dir, &sf) != 0)
		return "unknown file system";
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if ((long)sf.f_type == known[i].magic)
			return known[i].name;
	snprintf(buf, len, "file system 0x%lx", (unsigned long)sf.f_type);
	return buf;
}

/* A JSON string of s (quotes and backslashes escaped, controls dropped). */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

/*
 * The median as one result row. No baseline: nothing else publishes this
 * store; the same bench on tmpfs is a different setting (what is left
 * without fsync), its own row when run, not a reference to divide by.
 */
static int
write_row(const struct bench_opts *o, const char *dir, const struct bench_result *res)
{
	char fsbuf[64], fig[160], set[512];
	const char *fs = fs_name(dir, fsbuf, sizeof(fsbuf));
	FILE *f = fopen(o->json, "a");

	if (f == NULL) {
		fprintf(stderr, "bench_publish: cannot append to %s: %m\n", o->json);
		return 1;
	}
	snprintf(fig, sizeof(fig), "Publish a store of %u trusted certificates (median), %s",
		o->certs, fs);
	snprintf(set, sizeof(set), "store open + publish_run, fsync on, %s in %s; %u configs "
		"(%u encrypted), RSA-%u own keys; %u runs (run 1 writes every certificate, later "
		"runs link unchanged ones)", fs, dir, o->configs, o->encrypted, o->key_bits, o->runs);
	fputs("{\"bench\": \"publish\", \"figure\": ", f);
	json_str(f, fig);
	fprintf(f, ", \"value\": %.1f, \"unit\": \"ms\", \"workers\": null, "
		"\"higher_is_better\": false, \"baseline\": null, \"baseline_value\": null, "
		"\"settings\": ", res->median_ms);
	json_str(f, set);
	fprintf(f, ", \"first_ms\": %.1f, \"min_ms\": %.1f, \"max_ms\": %.1f, "
		"\"store_open_ms\": %.1f, \"runs\": %u, \"file_system\": ", res->first_ms,
		res->min_ms, res->max_ms, res->open_ms, o->runs);
	json_str(f, fs);
	fputs("}\n", f);
	if (fclose(f) != 0) {
		fprintf(stderr, "bench_publish: cannot write %s: %m\n", o->json);
		return 1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_publish [--dir DIR] [--certs N] [--configs N] "
		"[--encrypted N] [--runs N] [--key-bits N] [--keep] [--json FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "certs", required_argument, NULL, 'c' },
		{ "configs", required_argument, NULL, 'f' },
		{ "encrypted", required_argument, NULL, 'e' },
		{ "runs", required_argument, NULL, 'r' },
		{ "key-bits", required_argument, NULL, 'k' },
		{ "keep", no_argument, NULL, 'K' },
		{ "json", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = { .dir = NULL, .certs = 1000, .configs = 100, .encrypted = 10,
		.runs = 7, .key_bits = 2048 };
	char root[4096], sdir[4200], pdir[4200], cdir[4200], cmd[4300];
	struct bench_result res = { 0 };
	int c, rc;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dir = optarg; break;
		case 'c': o.certs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'f': o.configs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'e': o.encrypted = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': o.runs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'k': o.key_bits = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'K': o.keep = true; break;
		case 'j': o.json = optarg; break;
		default: usage();
		}
	}
	if (o.runs == 0 || o.encrypted > o.configs)
		usage();
	snprintf(root, sizeof(root), "%s/bench_publish.%ld", o.dir ? o.dir : "/var/tmp",
		(long)getpid());
	if (mkdir(root, 0700) != 0) {
		perror(root);
		return 1;
	}
	snprintf(sdir, sizeof(sdir), "%s/store", root);
	snprintf(pdir, sizeof(pdir), "%s/pub", root);
	snprintf(cdir, sizeof(cdir), "%s/configs", root);
	if (write_configs(cdir, o.configs) != 0 || fill_store(&o, sdir) != 0)
		return 1;
	rc = run(&o, sdir, pdir, cdir, &res);
	if (rc == 0 && o.json != NULL)
		rc = write_row(&o, o.dir ? o.dir : "/var/tmp", &res);
	if (!o.keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_publish: could not remove %s\n", root);
	} else {
		printf("kept %s\n", root);
	}
	return rc;
}
