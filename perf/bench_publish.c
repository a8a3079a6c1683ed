/*
 * bench_publish: how long publish_run takes for a realistic store.
 *
 * Builds a store with --certs trusted certificates (APP-SERVER role, plus
 * two TVS peers that go into the ITL), --configs device configs of which
 * --encrypted have a registered phone certificate, then publishes --runs
 * times (each a new generation, as `tvsctl publish --force` does) and
 * prints every run and the median, min and max.
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
#include <time.h>
#include <unistd.h>

#include "publish.h"
#include "store.h"

struct bench_opts {
	const char *dir;
	unsigned certs;
	unsigned configs;
	unsigned encrypted;
	unsigned runs;
	unsigned key_bits;
	bool keep;
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
	char path[4200];
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

static int
run(const struct bench_opts *o, const char *sdir, const char *pdir, const char *cdir)
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
	qsort(t, o->runs, sizeof(*t), cmp_double);
	printf("publish (store open + publish_run, fsync on): median %.1f ms, min %.1f ms, "
		"max %.1f ms over %u runs\n", o->runs % 2 ? t[o->runs / 2] :
		(t[o->runs / 2 - 1] + t[o->runs / 2]) / 2, t[0], t[o->runs - 1], o->runs);
	printf("of which store_open (index checksum + every object's digest): %.1f ms on average\n",
		open_ms / o->runs);
	free(t);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_publish [--dir DIR] [--certs N] [--configs N] "
		"[--encrypted N] [--runs N] [--key-bits N] [--keep]\n");
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
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = { .dir = NULL, .certs = 1000, .configs = 100, .encrypted = 10,
		.runs = 7, .key_bits = 2048 };
	char root[4096], sdir[4200], pdir[4200], cdir[4200], cmd[4300];
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
	rc = run(&o, sdir, pdir, cdir);
	if (!o.keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_publish: could not remove %s\n", root);
	} else {
		printf("kept %s\n", root);
	}
	return rc;
}
