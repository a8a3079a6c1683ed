/* publish_run: the publication's files, their contents, generations. */
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "file.h"
#include "publish.h"
#include "sign.h"
#include "store.h"
#include "party.h"
#include "tap.h"

static char root[256], sdir[300], pdir[300], cdir[300];
static EVP_PKEY *phone_key;
static struct trust_cert phone_cert, app_cert, ccm_peer;


static void
spit(const char *dir, const char *name, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) < 0)
		diag("cannot write %s", path);
	if (f != NULL)
		fclose(f);
}


static unsigned
count_gens(void)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir(pdir);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "gen-", 4) == 0;
	closedir(d);
	return n;
}

static bool
has_temp(void)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(pdir);

	if (d == NULL)
		return false;
	while ((de = readdir(d)) != NULL)
		found |= strstr(de->d_name, ".tmp") != NULL;
	closedir(d);
	return found;
}

static bool
exists(const char *fmt, const char *arg)
{
	char path[700], rel[300];
	struct stat sb;

	snprintf(rel, sizeof(rel), fmt, arg);
	snprintf(path, sizeof(path), "%s/%s", pdir, rel);
	return lstat(path, &sb) == 0;
}

static int
open_store(struct trust_store *st)
{
	struct trust_err err;
	int r = store_open(sdir, STORE_LOCK, st, &err);

	if (r != 0)
		diag("store_open: %s", err.msg);
	return r;
}

/* Publishes with force and returns the result code; opens and closes. */
static int
publish(struct publish_result *r, bool force, struct trust_err *err)
{
	struct publish_opts o = { .config_dir = cdir, .force = force };
	struct trust_store st;
	int rc;

	if (open_store(&st) != 0)
		return -100;
	rc = publish_run(&st, pdir, &o, r, err);
	if (rc != 0)
		diag("publish: %s", err->msg);
	store_close(&st);
	return rc;
}

/* tvs/tvs.key belongs to the tvsd user publish is told (or root), 0400. */
static void
test_tvsd_user(void)
{
	struct publish_result r;
	struct trust_store st;
	struct trust_err err;
	struct passwd *nobody = getpwnam("nobody");
	struct stat key, dir;
	char path[sizeof(r.dir) + 16];

	if (geteuid() != 0 || nobody == NULL) {
		diag("tvsd user: skipped, needs root and the user nobody");
		return;
	}
	if (open_store(&st) != 0)
		return;
	ok(publish_run(&st, pdir, &(struct publish_opts){ .config_dir = cdir, .force = true,
		.tvsd_user = "nobody" }, &r, &err) == 0, "publish for tvsd user nobody");
	snprintf(path, sizeof(path), "%s/tvs/tvs.key", r.dir);
	stat(path, &key);
	snprintf(path, sizeof(path), "%s/tvs", r.dir);
	stat(path, &dir);
	ok(key.st_uid == nobody->pw_uid && (key.st_mode & 0777) == 0400,
		"tvs.key: owner nobody, 0400 (uid %u mode %o)", (unsigned)key.st_uid, key.st_mode & 0777);
	ok(dir.st_uid == 0 && dir.st_gid == nobody->pw_gid && (dir.st_mode & 0777) == 0750,
		"tvs/: root, nobody's group, 0750");
	is_int(publish_run(&st, pdir, &(struct publish_opts){ .config_dir = cdir, .force = true,
		.tvsd_user = "no-such-tvsd-user" }, &r, &err), TRUST_EINVAL,
		"a tvsd user that does not exist is refused: %s", err.msg);
	store_close(&st);
}

static void
set_setting(const char *key, const char *val)
{
	struct trust_store st;
	struct trust_err err;

	if (open_store(&st) != 0)
		return;
	if (store_setting_set(&st.set, key, val, &err) != 0 || store_commit(&st, &err) != 0)
		diag("set %s: %s", key, err.msg);
	store_close(&st);
}

/* The current publication's trust list. */
static int
load_list(const char *name, struct trust_buf *b, struct trust_file *f)
{
	char path[600];
	struct trust_err err;

	snprintf(path, sizeof(path), "%s/current/%s", pdir, name);
	if (trust_file_read(path, 1 << 20, b, &err) != 0)
		return -1;
	if (trust_list_parse(b->data, b->len, f, &err) != 0) {
		diag("parse %s: %s", name, err.msg);
		trust_buf_free(b);
		return -1;
	}
	return 0;
}

static bool
same_cert(const struct trust_record *r, const struct trust_cert *c)
{
	return r->cert.len == c->der_len && memcmp(r->cert.p, c->der, c->der_len) == 0;
}

static void
setup(void)
{
	struct store_init_opts o = { .hostname = "cucm-a", .key_bits = 1024, .has_ipv4 = true,
		.ipv4 = { 10, 0, 0, 5 } };
	struct trust_err err;
	struct trust_store st;
	uint16_t app = TRUST_ROLE_APP_SERVER, ccm = TRUST_ROLE_CCM, tvs = TRUST_ROLE_TVS;
	EVP_PKEY *k = trust_key_generate_rsa(1024, &err);
	struct trust_cert tvs2;

	snprintf(sdir, sizeof(sdir), "%s/store", root);
	snprintf(pdir, sizeof(pdir), "%s/pub", root);
	snprintf(cdir, sizeof(cdir), "%s/configs", root);
	if (store_init(sdir, &o, &err) != 0)
		diag("store_init: %s", err.msg);
	mkdir(cdir, 0700);
	spit(cdir, "SEP001122334455.cnf.xml", "<device><deviceProtocol>SIP</deviceProtocol></device>\n");
	spit(cdir, "SEPAABBCCDDEEFF.cnf.xml", "<device><sshPassword>secret</sshPassword></device>\n");
	spit(cdir, "RingList.xml", "<CiscoIPPhoneRingList></CiscoIPPhoneRingList>\n");
	spit(cdir, ".hidden", "x");
	spit(cdir, "old.cnf.xml.sgn", "signed elsewhere");
	phone_key = trust_key_generate_rsa(1024, &err);
	phone_cert = party_cert_for_key("CP-8861-SEPAABBCCDDEEFF", phone_key);
	app_cert = party_cert_for_key("app.example.com", k);
	ccm_peer = party_cert_for_key("cucm-b", k);
	tvs2 = party_cert_for_key("cucm-b-tvs", k);
	if (open_store(&st) != 0)
		return;
	if (store_trust_add(&st, "app.example.com", &app, 1, 3600, &app_cert, &err) != 0 ||
	    store_trust_add(&st, "cucm-b", &ccm, 1, 0, &ccm_peer, &err) != 0 ||
	    store_trust_add(&st, "cucm-b-tvs", &tvs, 1, 0, &tvs2, &err) != 0 ||
	    store_phone_add(&st, "SEPAABBCCDDEEFF", &phone_cert, &err) != 0 ||
	    store_commit(&st, &err) != 0)
		diag("setup: %s", err.msg);
	store_close(&st);
	trust_cert_free(&tvs2);
	EVP_PKEY_free(k);
}

static void
test_first_publication(void)
{
	struct trust_store st;
	struct trust_cert own[UNIT_COUNT];
	struct publish_result r;
	struct publication p;
	struct trust_err err;
	struct trust_buf b, plain;
	struct trust_file f;
	struct trust_bytes payload;
	const struct pub_file *pf;
	EVP_PKEY *cm_key = NULL;
	char md5[33];
	struct stat sb;
	char path[700];

	is_int(publish(&r, false, &err), 0, "first publish");
	is_int(r.generation, 2, "the publication has the store's generation");
	ok(strstr(r.dir, "/gen-00000002") != NULL, "directory gen-00000002: %s", r.dir);
	is_int(r.ctl_size, 0, "no CTL in non-secure mode");
	is_int(r.nconfigs, 2, "two device configs");
	is_int(r.nencrypted, 1, "one of them encrypted");
	is_int(r.ncerts, 7, "4 own + 3 trusted certificates in the manifest");
	ok(!exists("current/%s", "CTLFile.tlv"), "no CTLFile.tlv");

	is_int(pub_load(pdir, &p, &err), 0, "pub_load accepts it (%s)", err.msg);
	is_int(p.generation, 2, "pub_load sees generation 2");
	is_int(p.ncerts, 7, "pub_load sees 7 certificates");
	ok(pub_find(&p, "ITLFile.tlv") != NULL, "serves ITLFile.tlv");
	ok(pub_find(&p, "XMLDefault.cnf.xml") != NULL, "serves XMLDefault.cnf.xml");
	ok(pub_find(&p, "XMLDefault.cnf.xml.sgn") != NULL, "serves XMLDefault.cnf.xml.sgn");
	ok(pub_find(&p, "SEP001122334455.cnf.xml.sgn") != NULL, "serves the signed config");
	ok(pub_find(&p, "SEPAABBCCDDEEFF.cnf.xml.enc.sgn") != NULL, "serves the encrypted config");
	ok(pub_find(&p, "SEPAABBCCDDEEFF.cnf.xml.sgn") != NULL, "and its short config");
	ok(pub_find(&p, "RingList.xml.sgn") != NULL, "serves other files signed");
	ok(pub_find(&p, ".hidden.sgn") == NULL, "hidden files are not published");
	ok(pub_find(&p, "old.cnf.xml.sgn.sgn") == NULL, ".sgn files are not signed again");
	ok(pub_find(&p, "SEP001122334455.cnf.xml") == NULL, "device configs are not served unsigned");
	pf = pub_find(&p, "XMLDefault.cnf.xml");
	ok(pf != NULL && memmem(pf->data, pf->len, "<address>10.0.0.5</address>", 27) != NULL,
		"the default config names our TVS");
	ok(pf != NULL && memmem(pf->data, pf->len, "<address>cucm-b-tvs</address>", 29) != NULL,
		"and the other TVS node");
	ok(pf != NULL && memmem(pf->data, pf->len, "<port>2445</port>", 17) != NULL, "on port 2445");

	if (open_store(&st) != 0)
		return;
	for (int u = 0; u < UNIT_COUNT; u++)
		store_own_cert(&st, u, &own[u], &err);
	store_own_key(&st, UNIT_CALLMANAGER, &cm_key, &err);
	store_close(&st);

	is_int(load_list("ITLFile.tlv", &b, &f), 0, "ITL parses");
	is_int(trust_list_verify(&f, NULL, &err), 0, "ITL verifies with its own signer (%s)", err.msg);
	is_int(trust_list_verify(&f, &own[UNIT_CALLMANAGER], &err), 0, "and with CallManager");
	is_int(f.nrecs, 5, "5 records: CallManager x2, TVS, other TVS, CAPF");
	if (f.nrecs == 5) {
		is_int(f.recs[0].role, TRUST_ROLE_SAST, "1: SAST");
		ok(same_cert(&f.recs[0], &own[UNIT_CALLMANAGER]), "1: the CallManager cert");
		is_int(f.recs[1].role, TRUST_ROLE_CCM_TFTP, "2: CCM+TFTP");
		ok(same_cert(&f.recs[1], &own[UNIT_CALLMANAGER]), "2: the CallManager cert");
		is_int(f.recs[2].role, TRUST_ROLE_TVS, "3: TVS");
		ok(same_cert(&f.recs[2], &own[UNIT_TVS]), "3: our TVS cert");
		is_int(f.recs[3].role, TRUST_ROLE_TVS, "4: TVS (imported node)");
		ok(f.recs[3].dns_name.len == 11 && memcmp(f.recs[3].dns_name.p, "cucm-b-tvs", 11) == 0,
			"4: DNS name is the entry name");
		is_int(f.recs[4].role, TRUST_ROLE_CAPF, "5: CAPF");
		ok(same_cert(&f.recs[4], &own[UNIT_CAPF]), "5: the CAPF cert");
		ok(trust_list_signer(&f) == &f.recs[0], "the SAST CallManager record signs");
		ok(f.recs[0].has_ip && f.recs[0].ip[3] == 5, "our records carry the IPv4 address");
	}
	trust_file_free(&f);
	trust_buf_free(&b);

	pf = pub_find(&p, "SEP001122334455.cnf.xml.sgn");
	ok(pf != NULL && trust_sgn_verify(pf->data, pf->len, &own[UNIT_CALLMANAGER], &payload,
		&err) == 0, "device config .sgn verifies with CallManager");
	ok(pf != NULL && payload.len == 54 && memcmp(payload.p, "<device><deviceProtocol>", 24) == 0,
		"and carries the config");
	pf = pub_find(&p, "SEPAABBCCDDEEFF.cnf.xml.enc.sgn");
	ok(pf != NULL && trust_enc_decrypt(pf->data, pf->len, &own[UNIT_CALLMANAGER], phone_key,
		&plain, &err) == 0, "the .enc.sgn decrypts with the phone key (%s)", err.msg);
	ok(pf != NULL && plain.len == 51 && memmem(plain.data, plain.len, "secret", 6) != NULL,
		"to the original config");
	trust_buf_wipe(&plain);
	pf = pub_find(&p, "SEPAABBCCDDEEFF.cnf.xml.sgn");
	trust_hex(phone_cert.md5, 16, md5);
	ok(pf != NULL && trust_sgn_verify(pf->data, pf->len, &own[UNIT_CALLMANAGER], &payload,
		&err) == 0 && memmem(payload.p, payload.len, md5, 32) != NULL,
		"the short config is signed and carries the phone cert's MD5");
	ok(pf != NULL && memmem(payload.p, payload.len, "secret", 6) == NULL,
		"the short config does not leak the full config");

	snprintf(path, sizeof(path), "%s/current/tvs/tvs.key", pdir);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0400, "tvs/tvs.key is 0400");
	pub_free(&p);
	for (int u = 0; u < UNIT_COUNT; u++)
		trust_cert_free(&own[u]);
	EVP_PKEY_free(cm_key);
}

static void
test_manifest(void)
{
	struct trust_buf b;
	struct trust_err err;
	char path[600], want[200], hex[65];

	snprintf(path, sizeof(path), "%s/current/manifest", pdir);
	if (trust_file_read(path, 1 << 20, &b, &err) != 0) {
		ok(0, "manifest readable: %s", err.msg);
		return;
	}
	trust_buf_put_u8(&b, 0);
	ok(strncmp((char *)b.data, "tvs-manifest 1\ngeneration 2\n", 28) == 0, "manifest head");
	ok(b.len > 5 && strcmp((char *)b.data + b.len - 5, "end\n") == 0, "manifest ends with end");
	trust_hex(app_cert.sha256, 32, hex);
	snprintf(want, sizeof(want), "cert %s 7 3600 certs/%s.der\n", hex, hex);
	ok(strstr((char *)b.data, want) != NULL, "app server: role 7, its own TTL");
	trust_hex(ccm_peer.sha256, 32, hex);
	snprintf(want, sizeof(want), "cert %s 1 86400 certs/%s.der\n", hex, hex);
	ok(strstr((char *)b.data, want) != NULL, "peer CCM: role 1, default TTL");
	ok(strstr((char *)b.data, " 0,2 86400 ") != NULL, "CallManager: SAST and CCM+TFTP");
	ok(strstr((char *)b.data, " 21 86400 ") != NULL, "a TVS line");
	ok(strstr((char *)b.data, " 4 86400 ") != NULL, "a CAPF line");
	trust_buf_free(&b);
}

static void
test_generations(void)
{
	struct publish_result r;
	struct trust_err err;
	char path[600], link[64];
	ssize_t n;

	is_int(publish(&r, false, &err), TRUST_EEXIST, "publishing an unchanged store: EEXIST");
	ok(strstr(err.msg, "published already") != NULL, "... says so: %s", err.msg);
	is_int(publish(&r, true, &err), 0, "force publishes again");
	is_int(r.generation, 3, "as a new generation");
	is_int(count_gens(), 2, "both generations are kept");
	ok(exists("%s", "gen-00000002") && exists("%s", "gen-00000003"), "gen 2 and 3");

	set_setting("keep-publications", "2");
	snprintf(path, sizeof(path), "%s/gen-00000001.tmp.999999999", pdir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/gen-00000007.tmp", pdir);
	mkdir(path, 0755);
	is_int(publish(&r, false, &err), 0, "publish after a change");
	is_int(publish(&r, true, &err), 0, "and again");
	is_int(r.generation, 5, "generation 5 (the setting change was 4)");
	is_int(count_gens(), 2, "keep-publications 2 prunes the older ones");
	ok(exists("%s", "gen-00000005") && exists("%s", "gen-00000004") &&
		!exists("%s", "gen-00000003"), "the two newest remain");
	ok(!exists("%s", "gen-00000001.tmp.999999999") && !exists("%s", "gen-00000007.tmp"),
		"stale temp directories are removed");
	snprintf(path, sizeof(path), "%s/current", pdir);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	is_str(link, "gen-00000005", "current is a relative link to the newest");
}

/* Certificate files are carried over from `current` as hard links, and a
 * damaged one is written afresh instead. */
static ino_t
cert_inode(unsigned long long gen, const char *name)
{
	char path[900];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/gen-%08llu/certs/%s", pdir, gen, name);
	return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

static void
test_cert_links(void)
{
	struct publish_result r;
	struct publication pub;
	struct trust_err err;
	char path[900], first[300] = "";
	unsigned n = 0, linked = 0;
	struct dirent *de;
	DIR *d;

	is_int(publish(&r, true, &err), 0, "publish once more");
	snprintf(path, sizeof(path), "%s/gen-%08llu/certs", pdir, (unsigned long long)r.generation);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		if (first[0] == '\0')
			snprintf(first, sizeof(first), "%s", de->d_name);
		if (cert_inode(r.generation, de->d_name) == cert_inode(r.generation - 1, de->d_name))
			linked++;
	}
	closedir(d);
	ok(n > 0 && linked == n, "all %u certificate files are links to the previous ones (%u)",
		n, linked);
	snprintf(path, sizeof(path), "%s/gen-%08llu/certs/%s", pdir,
		(unsigned long long)r.generation, first);
	truncate(path, 10);			/* damaged in both generations */
	is_int(publish(&r, true, &err), 0, "publish after damage to a previous file");
	ok(cert_inode(r.generation, first) != cert_inode(r.generation - 1, first),
		"the damaged file is not carried over");
	is_int(pub_load(pdir, &pub, &err), 0, "the new publication loads (digests check)");
	pub_free(&pub);
}

static void
test_mixed_and_rollback(void)
{
	struct trust_cert cm = { 0 }, rec = { 0 };
	struct publish_result r;
	struct trust_store st;
	struct trust_err err;
	struct trust_buf b;
	struct trust_file f;
	unsigned sast = 0, tvs = 0, ccm = 0;

	if (open_store(&st) != 0)
		return;
	store_own_cert(&st, UNIT_CALLMANAGER, &cm, &err);
	store_own_cert(&st, UNIT_ITLRECOVERY, &rec, &err);
	store_close(&st);

	set_setting("security-mode", "mixed");
	is_int(publish(&r, false, &err), 0, "publish in mixed mode");
	ok(r.ctl_size > 0 && exists("current/%s", "CTLFile.tlv"), "a CTLFile.tlv");
	if (load_list("CTLFile.tlv", &b, &f) == 0) {
		is_int(trust_list_verify(&f, NULL, &err), 0, "the CTL verifies (%s)", err.msg);
		for (size_t i = 0; i < f.nrecs; i++) {
			sast += f.recs[i].role == TRUST_ROLE_SAST;
			tvs += f.recs[i].role == TRUST_ROLE_TVS;
			ccm += f.recs[i].role == TRUST_ROLE_CCM && same_cert(&f.recs[i], &ccm_peer);
		}
		is_int(sast, 2, "two SAST records (CallManager, ITLRecovery)");
		is_int(tvs, 0, "no TVS record in the CTL");
		is_int(ccm, 1, "the peer CCM server is in the CTL");
		trust_file_free(&f);
		trust_buf_free(&b);
	}

	set_setting("rollback-pre8", "yes");
	is_int(publish(&r, false, &err), 0, "publish prepared for rollback");
	if (load_list("ITLFile.tlv", &b, &f) == 0) {
		is_int(trust_list_verify(&f, &cm, &err), 0, "still signed by CallManager (%s)",
			err.msg);
		is_int(f.nrecs, 5, "same record count");
		if (f.nrecs == 5) {
			ok(f.recs[0].cert.len > 0, "SAST record kept");
			ok(f.recs[1].cert.len == 0 && f.recs[1].role == TRUST_ROLE_CCM_TFTP,
				"the TFTP record is empty");
			ok(f.recs[2].cert.len == 0 && f.recs[3].cert.len == 0 &&
				f.recs[2].role == TRUST_ROLE_TVS, "the TVS records are empty");
			ok(f.recs[1].has_ip && f.recs[1].dns_name.len == 7,
				"empty records keep DNS name and address");
			ok(f.recs[4].cert.len > 0, "CAPF kept");
		}
		trust_file_free(&f);
		trust_buf_free(&b);
	}
	set_setting("rollback-pre8", "no");
	set_setting("security-mode", "non-secure");

	set_setting("itl-signer", "itlrecovery");
	is_int(publish(&r, false, &err), 0, "publish with itl-signer itlrecovery");
	if (load_list("ITLFile.tlv", &b, &f) == 0) {
		is_int(trust_list_verify(&f, &rec, &err), 0, "signed by ITLRecovery (%s)", err.msg);
		is_int(f.nrecs, 6, "6 records");
		ok(f.nrecs > 0 && same_cert(trust_list_signer(&f), &rec) &&
			f.recs[0].role == TRUST_ROLE_SAST, "ITLRecovery is the first SAST record");
		trust_file_free(&f);
		trust_buf_free(&b);
	}
	set_setting("reset-signer", "yes");
	is_int(publish(&r, false, &err), 0, "publish with reset-signer");
	if (load_list("ITLFile.tlv", &b, &f) == 0) {
		is_int(trust_list_verify(&f, &cm, &err), 0, "signed by the other key, CallManager");
		trust_file_free(&f);
		trust_buf_free(&b);
	}
	set_setting("itl-signer", "callmanager");
	is_int(publish(&r, false, &err), 0, "reset-signer under callmanager");
	if (load_list("ITLFile.tlv", &b, &f) == 0) {
		is_int(trust_list_verify(&f, &rec, &err), 0, "signed by ITLRecovery");
		is_int(f.nrecs, 6, "which appears in the ITL");
		trust_file_free(&f);
		trust_buf_free(&b);
	}
	set_setting("reset-signer", "no");
	trust_cert_free(&cm);
	trust_cert_free(&rec);
}

/* Without auto-registration no default config is served, not even one
 * from the config folder; the device configs are. */
static void
test_auto_registration(void)
{
	struct publish_result r;
	struct trust_err err;

	set_setting("auto-registration", "no");
	is_int(publish(&r, false, &err), 0, "publish without auto-registration (%s)", err.msg);
	ok(!exists("current/%s", "XMLDefault.cnf.xml") &&
		!exists("current/%s", "XMLDefault.cnf.xml.sgn"), "no XMLDefault.cnf.xml(.sgn)");
	ok(exists("current/%s", "SEP001122334455.cnf.xml.sgn"), "device configs still signed");
	set_setting("auto-registration", "yes");
	is_int(publish(&r, false, &err), 0, "publish with auto-registration");
	ok(exists("current/%s", "XMLDefault.cnf.xml.sgn"), "XMLDefault.cnf.xml.sgn again");
}

static void
test_too_big(void)
{
	struct trust_store st;
	struct publish_result r;
	struct trust_err err;
	uint16_t tvs = TRUST_ROLE_TVS;
	EVP_PKEY *k = trust_key_generate_rsa(1024, &err);
	unsigned before = count_gens();
	char name[32];
	int rc;

	if (open_store(&st) != 0)
		return;
	for (int i = 0; i < 70; i++) {
		struct trust_cert c;

		snprintf(name, sizeof(name), "tvs-node-%02d", i);
		c = party_cert_for_key(name, k);
		if (store_trust_add(&st, name, &tvs, 1, 0, &c, &err) != 0)
			diag("add %s: %s", name, err.msg);
		trust_cert_free(&c);
	}
	store_commit(&st, &err);
	rc = publish_run(&st, pdir, &(struct publish_opts){ .config_dir = cdir }, &r, &err);
	is_int(rc, TRUST_ETOOBIG, "74 TVS records make the ITL too big");
	ok(strstr(err.msg, "65535") != NULL && strstr(err.msg, "ITLFile.tlv") != NULL,
		"the message says which file and the limit: %s", err.msg);
	is_int(count_gens(), before, "no publication was made");
	ok(!has_temp(), "and no temp directory was left behind");
	store_close(&st);
	EVP_PKEY_free(k);

	{
		struct trust_store ro;

		store_open(sdir, STORE_RDONLY, &ro, &err);
		is_int(publish_run(&ro, pdir, NULL, &r, &err), TRUST_EINVAL,
			"publishing needs the store lock");
		store_close(&ro);
	}
}

/*
 * Finding 1 of issue 10: whoever can write the config folder linked
 * configs/cm.key to the CallManager key in the store, and publish signed
 * the key into the publication as cm.key.sgn, served to anyone. Links,
 * FIFOs and oversized files are now refused by name and counted; the
 * publish goes on with the rest.
 */
static void
test_config_folder_hostile(void)
{
	struct trust_store st;
	struct publish_result r;
	struct publication p;
	struct trust_err err;
	char key[700], link_path[700], fifo[700], big[700], cfg_link[700];
	FILE *f;
	int rc;

	if (open_store(&st) != 0)
		return;
	snprintf(key, sizeof(key), "%s/objects/%s.key", sdir, st.own[UNIT_CALLMANAGER].key.sha256);
	store_close(&st);
	snprintf(link_path, sizeof(link_path), "%s/cm.key", cdir);
	snprintf(fifo, sizeof(fifo), "%s/pipe.xml", cdir);
	snprintf(big, sizeof(big), "%s/huge.xml", cdir);
	ok(access(key, R_OK) == 0, "the CallManager key file is %s", key);
	ok(symlink(key, link_path) == 0, "configs/cm.key -> the CallManager key");
	ok(mkfifo(fifo, 0600) == 0, "a FIFO in the config folder (would hang a plain open)");
	if ((f = fopen(big, "w")) != NULL) {
		/* sparse: one byte past the 16 MiB a config may have */
		fseek(f, (16L << 20), SEEK_SET);
		fputc('x', f);
		fclose(f);
	}
	memset(&r, 0, sizeof(r));
	rc = publish(&r, true, &err);
	ok(rc == 0, "publish goes on: %s", rc ? err.msg : "ok");
	is_int(r.nrejected, 3, "three entries refused and counted");
	ok(strstr(r.rejected, "cm.key (symbolic link)") != NULL, "named with the reason: %s",
		r.rejected);
	ok(strstr(r.rejected, "pipe.xml (not a regular file)") != NULL, "the FIFO named");
	ok(strstr(r.rejected, "huge.xml (") != NULL, "the oversized file named");
	ok(pub_load(pdir, &p, &err) == 0, "the publication loads");
	ok(pub_find(&p, "cm.key.sgn") == NULL, "the key is not published");
	ok(pub_find(&p, "pipe.xml.sgn") == NULL && pub_find(&p, "huge.xml.sgn") == NULL,
		"neither is the FIFO nor the oversized file");
	ok(pub_find(&p, "RingList.xml.sgn") != NULL, "the regular configs still are");
	pub_free(&p);
	unlink(link_path);
	unlink(fifo);
	unlink(big);

	/* the folder itself must not be a link either */
	snprintf(cfg_link, sizeof(cfg_link), "%s/configs-link", root);
	ok(symlink(cdir, cfg_link) == 0, "a link to the config folder");
	{
		struct publish_opts o = { .config_dir = cfg_link, .force = true };

		if (open_store(&st) == 0) {
			rc = publish_run(&st, pdir, &o, &r, &err);
			store_close(&st);
			ok(rc == TRUST_EINVAL && strstr(err.msg, "symbolic link") != NULL,
				"a linked config folder is refused: %s", err.msg);
		}
	}
	unlink(cfg_link);
}

int
main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(root, sizeof(root), "%s/test_publish.%ld", t ? t : "/tmp", (long)getpid());
	mkdir(root, 0700);
	setup();
	test_first_publication();
	test_manifest();
	test_generations();
	test_cert_links();
	test_mixed_and_rollback();
	test_auto_registration();
	test_config_folder_hostile();
	test_tvsd_user();
	test_too_big();
	trust_cert_free(&phone_cert);
	trust_cert_free(&app_cert);
	trust_cert_free(&ccm_peer);
	EVP_PKEY_free(phone_key);
	party_rm_rf(root);
	return done_testing();
}
