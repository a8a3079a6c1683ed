/*
 * pub_verify: a real publication (mixed mode, a signed and an encrypted
 * config) passes; copies of it with one thing changed and PUBLICATION
 * rewritten to match (so pub_load accepts them) are refused, naming the
 * file: a flipped byte in the ITL, the CTL, a .sgn, an .enc.sgn; a .sgn
 * signed by a key the ITL does not know; a tvs.key of another certificate,
 * a truncated one; a tvs.pem that is not the ITL's TVS record; a tvs.key
 * listed without its certificate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "file.h"
#include "publish.h"
#include "pubverify.h"
#include "store.h"
#include "party.h"
#include "tap.h"

static char root[256], good[400];
static struct party phone, stranger;

static int
sh(const char *fmt, const char *a, const char *b)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

static int
slurp(const char *path, struct trust_buf *b)
{
	struct trust_err err;

	if (trust_file_read(path, 1 << 24, b, &err) != 0) {
		diag("%s", err.msg);
		return -1;
	}
	return 0;
}

static int
spit(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");	/* an existing file keeps its mode */
	int rc = f != NULL && fwrite(p, 1, n, f) == n ? 0 : -1;

	if (f != NULL && fclose(f) != 0)
		rc = -1;
	return rc;
}

/* Rewrites every serve/file line of dir/PUBLICATION with the size and
 * SHA-256 the file has now, as someone who can write the directory can. */
static int
reindex(const char *dir)
{
	char path[700], name[300], kind[8], hex[65];
	struct trust_buf idx, out, f;
	uint8_t md[32];
	int rc = 0;

	snprintf(path, sizeof(path), "%s/PUBLICATION", dir);
	if (slurp(path, &idx) != 0)
		return -1;
	trust_buf_init(&out);
	for (char *s = (char *)idx.data, *nl; rc == 0 && s < (char *)idx.data + idx.len; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)((char *)idx.data + idx.len - s));
		*nl = '\0';
		if (sscanf(s, "%7s %299s", kind, name) == 2
		    && (strcmp(kind, "serve") == 0 || strcmp(kind, "file") == 0)) {
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			if (slurp(path, &f) != 0) {
				rc = -1;
				break;
			}
			EVP_Digest(f.data, f.len, md, NULL, EVP_sha256(), NULL);
			trust_hex(md, 32, hex);
			trust_buf_printf(&out, "%s %s %zu %s\n", kind, name, f.len, hex);
			trust_buf_free(&f);
		} else {
			trust_buf_printf(&out, "%s\n", s);
		}
	}
	snprintf(path, sizeof(path), "%s/PUBLICATION", dir);
	if (rc == 0)
		rc = spit(path, out.data, out.len);
	trust_buf_free(&idx);
	trust_buf_free(&out);
	return rc;
}

/* A fresh copy of the good generation; its path in dir. */
static int
copy_good(const char *tag, char *dir, size_t n)
{
	snprintf(dir, n, "%s/%s", root, tag);
	return sh("rm -rf '%s'%s", dir, "") == 0 && sh("cp -a '%s' '%s'", good, dir) == 0 ? 0 : -1;
}

static int
flip(const char *dir, const char *name, long at)
{
	char path[700];
	struct trust_buf b;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (slurp(path, &b) != 0)
		return -1;
	b.data[at < 0 ? (long)b.len + at : at] ^= 0x55;
	rc = spit(path, b.data, b.len);
	trust_buf_free(&b);
	return rc;
}

/*
 * Loads dir (which must load: its index is consistent) and verifies it;
 * checks the code and that the message names `file` and says `why`.
 */
static void
expect_refused(const char *dir, int code, const char *file, const char *why,
	const char *what)
{
	struct publication p;
	struct trust_err err = { 0 };
	int rc;

	if (reindex(dir) != 0 || pub_load(dir, &p, &err) != 0) {
		ok(0, "%s: the tampered copy loads (%s)", what, err.msg);
		return;
	}
	rc = pub_verify(&p, &err);
	is_int(rc, code, "%s: refused", what);
	ok(strstr(err.msg, file) != NULL && strstr(err.msg, why) != NULL,
		"%s: the message names %s and says '%s'", what, file, why);
	if (rc == 0 || strstr(err.msg, why) == NULL)
		diag("message: %s", err.msg);
	pub_free(&p);
}

static void
make_store(const char *sdir, const char *pdir, const char *cdir)
{
	struct store_init_opts o = { .hostname = "cucm-v", .key_bits = 1024 };
	struct publish_opts po = { .config_dir = cdir };
	struct publish_result r;
	struct trust_err err = { 0 };
	struct trust_store st;
	char path[700];
	int rc;

	rc = store_init(sdir, &o, &err);
	if (rc == 0)
		rc = store_open(sdir, STORE_LOCK, &st, &err);
	if (rc != 0) {
		printf("Bail out! store: %s\n", err.msg);
		exit(1);
	}
	mkdir(cdir, 0700);
	snprintf(path, sizeof(path), "%s/SEP001122334455.cnf.xml", cdir);
	spit(path, "<device/>\n", 10);
	snprintf(path, sizeof(path), "%s/SEPAABBCCDDEEFF.cnf.xml", cdir);
	spit(path, "<device><sshPassword>x</sshPassword></device>\n", 47);
	if (store_setting_set(&st.set, "security-mode", "mixed", &err) != 0
	    || store_phone_add(&st, "SEPAABBCCDDEEFF", &phone.cert, &err) != 0
	    || store_commit(&st, &err) != 0 || publish_run(&st, pdir, &po, &r, &err) != 0) {
		printf("Bail out! publish: %s\n", err.msg);
		exit(1);
	}
	store_close(&st);
	snprintf(good, sizeof(good), "%.390s", r.dir);
}

static void
test_good(void)
{
	struct publication p;
	struct trust_err err = { 0 };

	is_int(pub_load(good, &p, &err), 0, "the publication loads");
	ok(pub_find(&p, "CTLFile.tlv") != NULL
		&& pub_find(&p, "SEP001122334455.cnf.xml.sgn") != NULL
		&& pub_find(&p, "SEPAABBCCDDEEFF.cnf.xml.enc.sgn") != NULL,
		"it serves a CTL, a .sgn and an .enc.sgn");
	is_int(pub_verify(&p, &err), 0, "and verifies");
	if (err.msg[0])
		diag("%s", err.msg);
	pub_free(&p);
}

static void
test_flipped(void)
{
	char dir[500];

	/* the middle of a list is inside a record: signed bytes */
	copy_good("itl", dir, sizeof(dir));
	flip(dir, "ITLFile.tlv", 2000);
	expect_refused(dir, TRUST_ESIG, "/ITLFile.tlv", "does not verify", "ITL flipped");
	copy_good("ctl", dir, sizeof(dir));
	flip(dir, "CTLFile.tlv", 2000);
	expect_refused(dir, TRUST_ESIG, "/CTLFile.tlv", "does not verify", "CTL flipped");
	/* the last byte of a .sgn is its payload */
	copy_good("sgn", dir, sizeof(dir));
	flip(dir, "SEP001122334455.cnf.xml.sgn", -1);
	expect_refused(dir, TRUST_ESIG, "/SEP001122334455.cnf.xml.sgn", "does not verify",
		".sgn flipped");
	copy_good("enc", dir, sizeof(dir));
	flip(dir, "SEPAABBCCDDEEFF.cnf.xml.enc.sgn", -1);
	expect_refused(dir, TRUST_ESIG, "/SEPAABBCCDDEEFF.cnf.xml.enc.sgn", "does not verify",
		".enc.sgn flipped");
}

static void
test_foreign_signer(void)
{
	struct trust_signer s = { .cert = &stranger.cert, .key = stranger.key,
		.hash = TRUST_HASH_SHA1 };
	struct trust_err err = { 0 };
	struct trust_buf b;
	char dir[500], path[700];

	copy_good("foreign", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/XMLDefault.cnf.xml.sgn", dir);
	if (trust_sgn_sign(&s, "XMLDefault.cnf.xml.sgn", 1, (const uint8_t *)"<x/>", 4, &b,
	    &err) != 0 || spit(path, b.data, b.len) != 0)
		diag("sign: %s", err.msg);
	trust_buf_free(&b);
	expect_refused(dir, TRUST_ENOTFOUND, "/XMLDefault.cnf.xml.sgn",
		"is not a record of ITLFile.tlv", ".sgn signed by a key the ITL does not know");
}

static void
test_tvs_identity(void)
{
	struct trust_err err = { 0 };
	struct trust_buf b;
	char dir[500], path[700];

	copy_good("otherkey", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tvs/tvs.key", dir);
	if (trust_key_save(path, stranger.key, &err) != 0)
		diag("%s", err.msg);
	expect_refused(dir, TRUST_EINVAL, "/tvs/tvs.key", "not the key of the certificate",
		"tvs.key of another certificate");

	copy_good("trunc", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tvs/tvs.key", dir);
	if (slurp(path, &b) == 0)
		spit(path, b.data, b.len / 2);
	trust_buf_free(&b);
	expect_refused(dir, TRUST_EFORMAT, "/tvs/tvs.key", "not a usable private key",
		"tvs.key truncated");

	/* a pair that matches, but is not the TVS the ITL announces */
	copy_good("otherpair", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tvs/tvs.key", dir);
	trust_key_save(path, stranger.key, &err);
	snprintf(path, sizeof(path), "%s/tvs/tvs.pem", dir);
	if (trust_cert_pem(&stranger.cert, &b) == 0)
		spit(path, b.data, b.len);
	trust_buf_free(&b);
	expect_refused(dir, TRUST_ENOTFOUND, "/tvs/tvs.pem", "TVS record(s) of ITLFile.tlv",
		"tvs.pem that is not the ITL's TVS");

	copy_good("nopem", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/PUBLICATION", dir);
	sh("sed -i '/ tvs\\/tvs.pem /d' '%s'%s", path, "");
	snprintf(path, sizeof(path), "%s/tvs/tvs.pem", dir);
	remove(path);
	expect_refused(dir, TRUST_ENOTFOUND, "/tvs/tvs.key", "listed without tvs/tvs.pem",
		"tvs.key without tvs.pem");
}

int
main(void)
{
	const char *t = getenv("TMPDIR");
	char sdir[300], pdir[300], cdir[300];

	snprintf(root, sizeof(root), "%s/test_pubverify.%ld", t ? t : "/tmp", (long)getpid());
	mkdir(root, 0700);
	snprintf(sdir, sizeof(sdir), "%s/store", root);
	snprintf(pdir, sizeof(pdir), "%s/pub", root);
	snprintf(cdir, sizeof(cdir), "%s/configs", root);
	party_make(&phone, 1024, "CP-8861-SEPAABBCCDDEEFF", NULL);
	party_make(&stranger, 1024, "stranger", NULL);
	make_store(sdir, pdir, cdir);
	test_good();
	test_flipped();
	test_foreign_signer();
	test_tvs_identity();
	party_free(&phone);
	party_free(&stranger);
	party_rm_rf(root);
	return done_testing();
}
