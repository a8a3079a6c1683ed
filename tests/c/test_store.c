/* Trust store: init, open, commit, changes, and refusal of damaged stores. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sign.h"
#include "store.h"
#include "party.h"
#include "tap.h"

static char root[256];


/* A fresh store under root, 1024-bit keys to keep the test quick. */
static void
make_store(const char *dir, const char *host)
{
	struct store_init_opts o = { .hostname = host, .key_bits = 1024 };
	struct trust_err err = { 0 };

	party_rm_rf(dir);
	if (store_init(dir, &o, &err) != 0)
		diag("store_init %s: %s", dir, err.msg);
}

static char *
slurp(const char *path, size_t *n)
{
	struct trust_buf b;

	if (trust_file_read(path, 1 << 24, &b, NULL) != 0)
		return NULL;
	trust_buf_put_u8(&b, 0);
	*n = b.len - 1;
	return (char *)b.data;
}

static void
spit(const char *path, const char *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(p, 1, n, f) != n)
		diag("cannot write %s", path);
	if (f != NULL)
		fclose(f);
}

static unsigned
count_objects(const char *dir)
{
	char path[512];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/objects", dir);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static int
mode_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

/* Opening must fail with TRUST_ESTORE and a message containing want. */
static void
refused(const char *dir, const char *want, const char *what)
{
	struct trust_store st;
	struct trust_err err = { 0 };
	int r = store_open(dir, STORE_RDONLY, &st, &err);

	is_int(r, TRUST_ESTORE, "%s: refused", what);
	ok(strstr(err.msg, want) != NULL, "%s: message names it (%s)", what, err.msg);
	if (r == 0)
		store_close(&st);
}


static void
test_init_open(void)
{
	char dir[512], path[600], val[80];
	struct trust_store st;
	struct trust_err err = { 0 };
	struct trust_cert c = { 0 };
	EVP_PKEY *key = NULL;
	struct store_init_opts o = { .hostname = "cucm-pub", .key_bits = 1024 };

	snprintf(dir, sizeof(dir), "%s/s1", root);
	is_int(store_init(dir, &o, &err), 0, "init a new store (%s)", err.msg);
	is_int(store_init(dir, &o, &err), TRUST_EEXIST, "init refuses to replace a store");
	ok(strstr(err.msg, "exists already") != NULL, "... and says so: %s", err.msg);
	is_int(store_open(dir, STORE_RDONLY, &st, &err), 0, "open read-only (%s)", err.msg);
	is_int(st.generation, 1, "a new store is generation 1");
	is_int(st.lockfd, -1, "read-only holds no lock");
	is_str(st.set.hostname, "cucm-pub", "hostname kept");
	is_int(st.set.key_bits, 1024, "key bits kept");
	is_int(st.set.hash, TRUST_HASH_SHA1, "default hash SHA-1");
	is_int(st.set.tftp_role, TRUST_ROLE_CCM_TFTP, "default tftp role CCM+TFTP");
	is_int(st.set.tvs_ttl, 86400, "default TVS TTL");
	is_int(st.set.keep_publications, 5, "default keep 5");
	is_int(st.set.security_mode, MODE_NON_SECURE, "default non-secure");
	ok(store_setting_get(&st.set, 6, val, sizeof(val)) && strcmp(val, "none") == 0,
		"no IPv4 unless given");
	for (int u = 0; u < UNIT_COUNT; u++) {
		is_int(store_own_cert(&st, u, &c, &err), 0, "own %s cert loads", store_unit_name(u));
		is_int(store_own_key(&st, u, &key, &err), 0, "own %s key loads", store_unit_name(u));
		ok(key != NULL && c.x509 != NULL && X509_check_private_key(c.x509, key) == 1,
			"%s key matches its certificate", store_unit_name(u));
		is_int(c.key_bits, 1024, "%s key is 1024 bits", store_unit_name(u));
		snprintf(path, sizeof(path), "%s/objects/%s.key", dir, st.own[u].key.sha256);
		is_int(mode_of(path), 0600, "%s key file is mode 0600", store_unit_name(u));
		if (u == UNIT_CALLMANAGER)
			ok(strncmp(c.subject, "CN=cucm-pub;", 12) == 0, "CallManager CN is the host: %s",
				c.subject);
		if (u == UNIT_ITLRECOVERY)
			ok(strstr(c.subject, "CN=ITLRECOVERY_cucm-pub") != NULL, "ITLRecovery CN: %s",
				c.subject);
		trust_cert_free(&c);
		EVP_PKEY_free(key);
		key = NULL;
	}
	ok(strcmp(st.own[UNIT_TVS].cert.sha256, st.own[UNIT_CALLMANAGER].cert.sha256) != 0,
		"each unit has its own certificate");
	is_int(store_commit(&st, &err), TRUST_EINVAL, "commit needs the lock");
	store_close(&st);
	is_int(count_objects(dir), 2 * UNIT_COUNT, "exactly one cert and one key per unit");
	snprintf(path, sizeof(path), "%s/objects", dir);
	is_int(mode_of(path), 0700, "objects/ is 0700");

	o.force = true;
	o.hostname = "cucm-sub";
	is_int(store_init(dir, &o, &err), 0, "init --force replaces it (%s)", err.msg);
	is_int(store_open(dir, STORE_RDONLY, &st, &err), 0, "open the new store");
	is_int(st.generation, 2, "forced init continues the generation numbering");
	is_str(st.set.hostname, "cucm-sub", "new settings");
	store_close(&st);
	is_int(count_objects(dir), 2 * UNIT_COUNT, "the old store's blobs were collected");

	o.hostname = "bad host";
	is_int(store_init(dir, &o, &err), TRUST_EINVAL, "a host name with a space is refused");
	o.hostname = "ok";
	o.key_bits = 1000;
	is_int(store_init(dir, &o, &err), TRUST_EINVAL, "key bits 1000 refused: %s", err.msg);
	snprintf(path, sizeof(path), "%s/nothing", root);
	is_int(store_open(path, STORE_RDONLY, &st, &err), TRUST_ENOTFOUND, "no store: ENOTFOUND");
}

static void
test_changes(void)
{
	char dir[512], path[600];
	struct trust_store st, st2;
	struct trust_err err = { 0 };
	struct trust_cert a, b, c = { 0 };
	EVP_PKEY *key = trust_key_generate_rsa(1024, &err);
	uint16_t roles[] = { TRUST_ROLE_TVS, TRUST_ROLE_TVS, TRUST_ROLE_APP_SERVER };
	char old_cm[65];

	snprintf(dir, sizeof(dir), "%s/s2", root);
	make_store(dir, "node1");
	a = party_cert_for_key("tvs2.example.com", key);
	b = party_cert_for_key("app.example.com", key);

	is_int(store_open(dir, STORE_LOCK, &st, &err), 0, "open with the lock");
	ok(st.lockfd >= 0, "the lock is held");
	is_int(store_open(dir, STORE_LOCK, &st2, &err), TRUST_ELOCKED, "a second locker is refused");
	ok(strstr(err.msg, "locked by another process") != NULL, "... with: %s", err.msg);
	is_int(store_open(dir, STORE_RDONLY, &st2, &err), 0, "readers are not blocked by the lock");
	store_close(&st2);

	is_int(store_trust_add(&st, "tvs2", roles, 3, 0, &a, &err), 0, "import with roles");
	is_int(st.trusted[0].nroles, 2, "duplicate roles are folded");
	is_int(store_trust_add(&st, "tvs2", roles, 1, 0, &b, &err), TRUST_EEXIST, "same name refused");
	is_int(store_trust_add(&st, "other", roles, 1, 0, &a, &err), TRUST_EEXIST,
		"same certificate under another name refused: %s", err.msg);
	is_int(store_trust_add(&st, "bad name", roles, 1, 0, &b, &err), TRUST_EINVAL,
		"a name with a space is refused");
	is_int(store_trust_add(&st, "app", roles + 2, 1, 3600, &b, &err), 0, "import a second");
	is_int(store_phone_add(&st, "sep00112233aabb", &a, &err), 0, "register a phone cert");
	is_str(st.phones[0].name, "SEP00112233AABB", "phone names are upper-cased");
	is_int(store_phone_add(&st, "SEP0011", &a, &err), TRUST_EINVAL, "short MAC refused");
	snprintf(old_cm, sizeof(old_cm), "%s", st.own[UNIT_CALLMANAGER].cert.sha256);
	is_int(store_own_regen(&st, UNIT_CALLMANAGER, &err), 0, "regenerate CallManager");
	ok(strcmp(old_cm, st.own[UNIT_CALLMANAGER].cert.sha256) != 0, "new certificate");
	is_int(store_commit(&st, &err), 0, "commit (%s)", err.msg);
	is_int(st.generation, 2, "commit bumps the generation");
	is_int(store_gc(&st, &err), 2, "gc removes the old CallManager cert and key");
	is_int(store_commit(&st, &err), 0, "commit again");
	is_int(st.generation, 3, "every commit bumps the generation");
	store_close(&st);

	is_int(store_open(dir, STORE_LOCK, &st, &err), 0, "the lock is free after close");
	is_int(st.generation, 3, "generation is durable");
	is_int(st.ntrusted, 2, "two trusted entries");
	ok(store_trust_find(&st, "app") != NULL && store_trust_find(&st, "app")->ttl == 3600,
		"ttl kept");
	ok(store_trust_find(&st, "tvs2") != NULL &&
		store_trust_find(&st, "tvs2")->roles[0] == TRUST_ROLE_TVS &&
		store_trust_find(&st, "tvs2")->roles[1] == TRUST_ROLE_APP_SERVER, "roles kept in order");
	is_int(store_load_cert(&st, &store_trust_find(&st, "tvs2")->cert, &c, &err), 0,
		"trusted cert loads");
	ok(c.der_len == a.der_len && memcmp(c.der, a.der, a.der_len) == 0, "same bytes");
	trust_cert_free(&c);
	ok(store_phone_find(&st, "SEP00112233aabb") != NULL, "phone found case-insensitively");
	is_int(strcmp(st.own[UNIT_CALLMANAGER].cert.sha256, old_cm) != 0, 1, "regen is durable");
	is_int(store_trust_delete(&st, "nope", &err), TRUST_ENOTFOUND, "delete unknown: ENOTFOUND");
	is_int(store_trust_delete(&st, "tvs2", &err), 0, "delete");
	is_int(store_phone_delete(&st, "SEP00112233AABB", &err), 0, "delete phone");
	is_int(store_commit(&st, &err), 0, "commit the deletes");
	is_int(store_gc(&st, &err), 1, "gc removes the blob only the deleted entries used");
	store_close(&st);
	is_int(store_open(dir, STORE_RDONLY, &st, &err), 0, "reopen");
	is_int(st.ntrusted, 1, "one left");
	is_int(st.nphones, 0, "no phone left");
	store_close(&st);

	/* crash leftovers are ignored by open and removed by gc */
	snprintf(path, sizeof(path), "%s/STORE.tmp.99999", dir);
	spit(path, "junk", 4);
	snprintf(path, sizeof(path), "%s/objects/abc.der.tmp.99999", dir);
	spit(path, "junk", 4);
	is_int(store_open(dir, STORE_LOCK, &st, &err), 0, "temp files are ignored (%s)", err.msg);
	is_int(store_gc(&st, &err), 2, "gc removes both temp files");
	store_close(&st);

	trust_cert_free(&a);
	trust_cert_free(&b);
	EVP_PKEY_free(key);
}

/* Holds the lock in a child while the parent tries. */
static void
test_lock_contention(void)
{
	char dir[512];
	struct trust_store st;
	struct trust_err err = { 0 };
	int pfd[2], status;
	pid_t pid;
	char c;

	snprintf(dir, sizeof(dir), "%s/s3", root);
	make_store(dir, "node3");
	if (pipe(pfd) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		struct trust_store cs;

		close(pfd[0]);
		if (store_open(dir, STORE_LOCK, &cs, NULL) != 0)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		sleep(2);
		store_close(&cs);
		_exit(0);
	}
	close(pfd[1]);
	ok(read(pfd[0], &c, 1) == 1, "child took the lock");
	is_int(store_open(dir, STORE_LOCK, &st, &err), TRUST_ELOCKED, "locked by the child");
	{
		char want[64];

		snprintf(want, sizeof(want), "pid %ld", (long)pid);
		ok(strstr(err.msg, want) != NULL, "message names the holder: %s", err.msg);
	}
	waitpid(pid, &status, 0);
	close(pfd[0]);
	is_int(store_open(dir, STORE_LOCK, &st, &err), 0, "free once the child is gone");
	store_close(&st);
}

static void
rewrite_index(const char *dir, const char *from, const char *to, bool fix_sum)
{
	char path[600], *text, *p, *out;
	size_t n;

	snprintf(path, sizeof(path), "%s/STORE", dir);
	text = slurp(path, &n);
	if (text == NULL || (p = strstr(text, from)) == NULL) {
		diag("'%s' not in the index", from);
		free(text);
		return;
	}
	out = malloc(n + strlen(to) + 100);
	memcpy(out, text, (size_t)(p - text));
	strcpy(out + (p - text), to);
	strcat(out, p + strlen(from));
	if (fix_sum) {
		char *last = strstr(out, "\nsha256 ") + 1;
		uint8_t md[32];
		char hex[65];

		EVP_Digest(out, (size_t)(last - out), md, NULL, EVP_sha256(), NULL);
		trust_hex(md, 32, hex);
		sprintf(last, "sha256 %s\n", hex);
	}
	spit(path, out, strlen(out));
	free(out);
	free(text);
}

static void
test_damage(void)
{
	char dir[512], path[600], *text;
	struct trust_store st;
	struct trust_err err = { 0 };
	size_t n;

	snprintf(dir, sizeof(dir), "%s/s4", root);

	make_store(dir, "dmg");
	rewrite_index(dir, "hostname dmg", "hostname dmh", false);
	refused(dir, "checksum mismatch", "one changed byte in STORE");

	make_store(dir, "dmg");
	snprintf(path, sizeof(path), "%s/STORE", dir);
	text = slurp(path, &n);
	spit(path, text, n / 2);
	refused(dir, "truncated", "STORE cut in half");
	spit(path, text, n - 1);
	refused(dir, "truncated", "STORE missing its last newline");
	spit(path, text, 0);
	refused(dir, "empty", "STORE empty");
	free(text);

	make_store(dir, "dmg");
	rewrite_index(dir, "tvs-store 1\n", "tvs-store 7\n", true);
	refused(dir, "unknown store version '7'", "version 7");

	make_store(dir, "dmg");
	rewrite_index(dir, "tvs-store 1\n", "hello\n", true);
	refused(dir, "not a trust store index", "foreign file");

	make_store(dir, "dmg");
	rewrite_index(dir, "hash sha1\n", "hash md5\n", true);
	refused(dir, "line 5", "bad setting value, checksum fixed");

	make_store(dir, "dmg");
	rewrite_index(dir, "tvs-ttl 86400\n", "", true);
	refused(dir, "lacks the setting 'tvs-ttl'", "missing setting");

	make_store(dir, "dmg");
	rewrite_index(dir, "own TVS ", "own Tomcat ", true);
	refused(dir, "bad 'own' entry", "unknown unit");

	make_store(dir, "dmg");
	rewrite_index(dir, "end\n", "end\nown CAPF x y\n", true);
	refused(dir, "text after 'end'", "line after end");

	make_store(dir, "dmg");
	is_int(store_open(dir, STORE_RDONLY, &st, &err), 0, "intact store opens");
	snprintf(path, sizeof(path), "%s/objects/%s.der", dir, st.own[UNIT_TVS].cert.sha256);
	store_close(&st);
	unlink(path);
	refused(dir, "half-written", "missing blob");

	make_store(dir, "dmg");
	is_int(store_open(dir, STORE_RDONLY, &st, &err), 0, "intact store opens");
	snprintf(path, sizeof(path), "%s/objects/%s.key", dir, st.own[UNIT_CAPF].key.sha256);
	store_close(&st);
	{
		int fd = open(path, O_WRONLY);

		if (fd < 0 || pwrite(fd, "X", 1, 40) != 1)
			diag("cannot damage %s", path);
		if (fd >= 0)
			close(fd);
	}
	refused(dir, "is corrupt", "a flipped byte in a key blob");
	party_rm_rf(dir);
}

/* Mixed mode and auto-registration: the change that joins them is refused. */
static void
test_auto_registration_rule(void)
{
	struct store_settings old, new;
	struct trust_err err;

	memset(&old, 0, sizeof(old));
	old.auto_registration = true;
	new = old;
	store_setting_set(&new, "security-mode", "mixed", &err);
	is_int(store_settings_check_change(&old, &new, &err), TRUST_EINVAL,
		"mixed mode refused while auto-registration is on");
	ok(strstr(err.msg, "set store auto-registration no") != NULL, "says how: %s", err.msg);
	old.auto_registration = new.auto_registration = false;
	is_int(store_settings_check_change(&old, &new, &err), 0, "mixed mode once it is off");
	old = new;
	is_int(store_setting_set(&new, "auto-registration", "yes", &err), 0, "parsed");
	is_int(store_settings_check_change(&old, &new, &err), TRUST_EINVAL,
		"auto-registration refused in mixed mode");
	ok(strstr(err.msg, "non-secure-mode") != NULL, "says how: %s", err.msg);
	/* a store from before the setting: mixed and on; other changes pass */
	old = new;
	store_setting_set(&new, "tvs-ttl", "60", &err);
	is_int(store_settings_check_change(&old, &new, &err), 0, "unrelated change allowed");
	store_setting_set(&new, "security-mode", "non-secure", &err);
	is_int(store_settings_check_change(&old, &new, &err), 0, "leaving mixed mode allowed");
}

static void
test_settings(void)
{
	struct store_settings s;
	struct trust_err err;
	char buf[80];
	const char *k;
	unsigned n = 0;

	memset(&s, 0, sizeof(s));
	is_int(store_setting_set(&s, "security-mode", "mixed", &err), 0, "set mixed");
	is_int(s.security_mode, MODE_MIXED, "mixed");
	is_int(store_setting_set(&s, "hash", "sha512", &err), 0, "set sha512");
	is_int(s.hash, TRUST_HASH_SHA512, "sha512");
	is_int(store_setting_set(&s, "hash", "sha256", &err), TRUST_EINVAL, "sha256 not offered");
	is_int(store_setting_set(&s, "ipv4", "10.0.0.300", &err), TRUST_EINVAL, "bad address");
	ok(strstr(err.msg, "10.0.0.300") != NULL, "message names the value: %s", err.msg);
	is_int(store_setting_set(&s, "ipv4", "10.1.2.3", &err), 0, "address");
	ok(s.has_ipv4 && s.ipv4[3] == 3, "address parsed");
	is_int(store_setting_set(&s, "nope", "1", &err), TRUST_ENOTFOUND, "unknown key");
	is_int(store_setting_set(&s, "tftp-role", "TFTP", &err), 0, "tftp role TFTP");
	is_int(store_setting_set(&s, "tftp-role", "TVS", &err), TRUST_EINVAL, "tftp role TVS refused");
	is_int(store_setting_set(&s, "keep-publications", "0", &err), TRUST_EINVAL, "keep 0 refused");
	while ((k = store_setting_get(&s, n, buf, sizeof(buf))) != NULL)
		n++;
	is_int(n, 12, "twelve settings");
	test_auto_registration_rule();
	s.itl_signer = SIGNER_CALLMANAGER;
	s.reset_signer = false;
	is_int(store_list_signer(&s), UNIT_CALLMANAGER, "CallManager signs by default");
	s.reset_signer = true;
	is_int(store_list_signer(&s), UNIT_ITLRECOVERY, "reset: the other key");
	s.itl_signer = SIGNER_ITLRECOVERY;
	is_int(store_list_signer(&s), UNIT_CALLMANAGER, "reset under itlrecovery: CallManager");
	is_int(store_unit_parse("itlrecovery"), UNIT_ITLRECOVERY, "unit names are case-insensitive");
	is_int(store_unit_parse("tomcat"), -1, "unknown unit");
}

int
main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(root, sizeof(root), "%s/test_store.%ld", t ? t : "/tmp", (long)getpid());
	mkdir(root, 0700);
	test_settings();
	test_init_open();
	test_changes();
	test_lock_contention();
	test_damage();
	party_rm_rf(root);
	return done_testing();
}
