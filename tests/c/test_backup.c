/*
 * store/backup: a store sealed with a passphrase comes back with the same
 * keys; a wrong passphrase, any truncation, any flipped byte is refused
 * before anything is written, and a refused restore leaves the store it
 * would have replaced exactly as it was.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "store.h"
#include "tap.h"

static const struct backup_kdf fast = { .log2_n = 10, .r = 1, .p = 1 };
static const char pass[] = "correct horse battery staple";

static char root[256];

static void
make_store(const char *dir, const char *host)
{
	struct store_init_opts o = { .hostname = host, .key_bits = 1024 };
	struct trust_err err = { 0 };
	char path[512];
	FILE *f;

	if (store_init(dir, &o, &err) != 0)
		diag("store_init %s: %s", dir, err.msg);
	snprintf(path, sizeof(path), "%s/configs", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/configs/SEP001122334455.cnf.xml", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "<device>%s</device>\n", host);
		fclose(f);
	}
}

static struct trust_buf
slurp(const char *path)
{
	struct trust_buf b;
	struct trust_err err;

	if (trust_file_read(path, 1 << 24, &b, &err) != 0)
		trust_buf_init(&b);
	return b;
}

static bool
same_file(const char *a, const char *b)
{
	struct trust_buf x = slurp(a), y = slurp(b);
	bool same = x.len > 0 && x.len == y.len && memcmp(x.data, y.data, x.len) == 0;

	trust_buf_free(&x);
	trust_buf_free(&y);
	return same;
}

static bool
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* Nothing but the expected entries in root: no temporary leftovers. */
static unsigned
leftovers(void)
{
	DIR *d = opendir(root);
	struct dirent *de;
	unsigned n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".tmp") != NULL;
	if (d != NULL)
		closedir(d);
	return n;
}

static void
test_round_trip(const char *src, const struct trust_buf *b)
{
	struct trust_store a, r;
	struct trust_err err = { 0 };
	struct backup_info info;
	char dst[300], p1[400], p2[400];
	struct stat sb;

	snprintf(dst, sizeof(dst), "%s/restored", root);
	is_int(backup_restore_mem(b->data, b->len, pass, strlen(pass), dst, &info, &err), 0,
		"restore into a new directory (%s)", err.msg);
	ok(store_open(src, STORE_RDONLY, &a, &err) == 0, "the original opens");
	ok(store_open(dst, STORE_RDONLY, &r, &err) == 0, "the restored store opens (%s)", err.msg);
	for (int u = 0; u < UNIT_COUNT; u++) {
		is_str(r.own[u].cert.sha256, a.own[u].cert.sha256, "%s: same certificate",
			store_unit_name(u));
		is_str(r.own[u].key.sha256, a.own[u].key.sha256, "%s: same key", store_unit_name(u));
		snprintf(p1, sizeof(p1), "%s/objects/%s.key", dst, r.own[u].key.sha256);
		ok(stat(p1, &sb) == 0 && (sb.st_mode & 0777) == 0600, "%s: key file is 0600",
			store_unit_name(u));
	}
	is_int(info.generation, a.generation, "a new store keeps the backup's generation");
	ok(info.files >= 9, "every file came back (%u)", info.files);
	snprintf(p1, sizeof(p1), "%s/configs/SEP001122334455.cnf.xml", src);
	snprintf(p2, sizeof(p2), "%s/configs/SEP001122334455.cnf.xml", dst);
	ok(same_file(p1, p2), "the config folder came back");
	snprintf(p2, sizeof(p2), "%s/lock", dst);
	store_close(&a);
	store_close(&r);
	is_int(leftovers(), 0, "no temporary directory left");
}

/* Every refusal leaves victim byte for byte as it was. */
static void
test_refusals(const struct trust_buf *b)
{
	struct trust_err err = { 0 };
	char victim[300], index[400], saved[400], absent[300];
	struct trust_buf copy;
	unsigned refused = 0, tried = 0, wrote = 0;

	snprintf(victim, sizeof(victim), "%s/victim", root);
	snprintf(absent, sizeof(absent), "%s/absent", root);
	snprintf(index, sizeof(index), "%s/STORE", victim);
	snprintf(saved, sizeof(saved), "%s/STORE.saved", root);
	make_store(victim, "victim");
	{
		struct trust_buf x = slurp(index);

		trust_file_write_atomic(saved, x.data, x.len, 0644, &err);
		trust_buf_free(&x);
	}

	is_int(backup_restore_mem(b->data, b->len, "wrong", 5, victim, NULL, &err), TRUST_ESIG,
		"a wrong passphrase is refused: %s", err.msg);
	ok(strstr(err.msg, "passphrase") != NULL, "the message names the passphrase");
	ok(same_file(index, saved), "the store is untouched after a wrong passphrase");
	is_int(backup_restore_mem(b->data, b->len, "wrong", 5, absent, NULL, &err), TRUST_ESIG,
		"wrong passphrase, no store yet");
	ok(!exists(absent), "nothing is created for a refused restore");

	for (size_t n = 0; n < b->len; n++) {
		tried++;
		if (backup_restore_mem(b->data, n, pass, strlen(pass), victim, NULL, &err) != 0)
			refused++;
	}
	is_int(refused, tried, "every truncation (%u) is refused", tried);

	/* a truncation whose header was fixed up to match: only the tag can tell */
	trust_buf_init(&copy);
	trust_buf_put(&copy, b->data, b->len);
	refused = tried = 0;
	for (size_t cut = 1; cut < b->len - BACKUP_HEADER_LEN - BACKUP_TAG_LEN; cut += 997) {
		uint64_t len = b->len - BACKUP_HEADER_LEN - BACKUP_TAG_LEN - cut;

		memcpy(copy.data, b->data, b->len);
		for (int i = 0; i < 8; i++)
			copy.data[56 + i] = (uint8_t)(len >> (56 - 8 * i));
		memmove(copy.data + BACKUP_HEADER_LEN + len,
			copy.data + b->len - BACKUP_TAG_LEN, BACKUP_TAG_LEN);
		tried++;
		refused += backup_restore_mem(copy.data, b->len - cut, pass, strlen(pass), victim,
			NULL, &err) == TRUST_ESIG;
	}
	is_int(refused, tried, "a cut with a consistent header (%u) fails authentication", tried);

	refused = tried = 0;
	for (size_t i = 0; i < b->len; i++) {
		memcpy(copy.data, b->data, b->len);
		copy.data[i] ^= (uint8_t)(1u << (tap_prng() % 8));
		tried++;
		if (backup_restore_mem(copy.data, b->len, pass, strlen(pass), victim, NULL, &err) != 0)
			refused++;
		else
			wrote++;
	}
	is_int(refused, tried, "a flipped bit in any of the %u bytes is refused", tried);
	is_int(wrote, 0, "no damaged backup was restored");
	ok(same_file(index, saved), "after all of that the store is byte for byte the same");
	is_int(leftovers(), 0, "and no temporary directory is left");

	memcpy(copy.data, b->data, b->len);
	copy.data[19] = 40;	/* log2 N = 40: 128 TiB of scrypt memory */
	is_int(backup_restore_mem(copy.data, b->len, pass, strlen(pass), victim, NULL, &err),
		TRUST_EFORMAT, "absurd scrypt parameters are refused before deriving: %s", err.msg);
	trust_buf_free(&copy);
}

/* A good backup replaces an existing, different store and numbers on. */
static void
test_replace(const char *src, const struct trust_buf *b)
{
	struct trust_store a, v;
	struct trust_err err = { 0 };
	struct backup_info info;
	char victim[300];
	uint64_t old;

	snprintf(victim, sizeof(victim), "%s/victim", root);
	old = store_generation_hint(victim);
	is_int(backup_restore_mem(b->data, b->len, pass, strlen(pass), victim, &info, &err), 0,
		"restore over an existing store (%s)", err.msg);
	ok(store_open(src, STORE_RDONLY, &a, &err) == 0 &&
		store_open(victim, STORE_RDONLY, &v, &err) == 0, "both open");
	is_str(v.own[UNIT_CALLMANAGER].key.sha256, a.own[UNIT_CALLMANAGER].key.sha256,
		"the replaced store has the backup's CallManager key");
	ok(v.generation > old, "its generation %llu follows the replaced one's %llu",
		(unsigned long long)v.generation, (unsigned long long)old);
	store_close(&a);
	store_close(&v);
	is_int(leftovers(), 0, "the old store is gone, no temporary left");
}

/* Through a descriptor someone else opened (tvs-controld writes what
 * tvsctl created): the whole backup from offset 0, and it restores. */
static void
test_write_fd(const char *src)
{
	struct trust_err err = { 0 };
	struct backup_info info;
	char path[300], dst[300];
	struct stat sb;
	int fd;

	snprintf(path, sizeof(path), "%s/by-fd.bak", root);
	snprintf(dst, sizeof(dst), "%s/from-fd", root);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	is_int(backup_write_fd(src, fd, pass, strlen(pass), &fast, &info, &err), 0,
		"backup_write_fd (%s)", err.msg);
	ok(fstat(fd, &sb) == 0 && sb.st_size > BACKUP_HEADER_LEN && (sb.st_mode & 07777) == 0600,
		"the descriptor's file holds it, mode as its opener made it");
	close(fd);
	is_int(backup_restore(path, pass, strlen(pass), dst, &info, &err), 0,
		"and it restores (%s)", err.msg);
	is_int(backup_write_fd(src, -1, pass, strlen(pass), &fast, &info, &err), TRUST_EIO,
		"a bad descriptor: an I/O error");
}

int
main(void)
{
	struct trust_err err = { 0 };
	struct trust_buf b, b2;
	struct backup_info info;
	char src[300];

	snprintf(root, sizeof(root), "/tmp/test_backup.XXXXXX");
	if (mkdtemp(root) == NULL) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(src, sizeof(src), "%s/store", root);
	make_store(src, "cucm-pub");

	is_int(backup_seal(src, pass, strlen(pass), &fast, &b, &info, &err), 0, "seal (%s)",
		err.msg);
	ok(b.len > BACKUP_HEADER_LEN + BACKUP_TAG_LEN && memcmp(b.data, "TVSBKUP\x01", 8) == 0,
		"the file starts with the magic");
	ok(memmem(b.data, b.len, "PRIVATE KEY", 11) == NULL &&
		memmem(b.data, b.len, "tvs-store", 9) == NULL, "no key or index in clear");
	is_int(backup_seal(src, pass, strlen(pass), &fast, &b2, NULL, &err), 0, "seal again");
	ok(b2.len == b.len && memcmp(b.data + 28, b2.data + 28, 28) != 0,
		"salt and nonce differ between two backups");
	trust_buf_free(&b2);
	{
		struct backup_kdf bad = { .log2_n = 30, .r = 8, .p = 1 };

		is_int(backup_seal(src, pass, strlen(pass), &bad, &b2, NULL, &err), TRUST_EINVAL,
			"sealing refuses scrypt parameters a restore would refuse");
	}

	test_round_trip(src, &b);
	test_refusals(&b);
	test_replace(src, &b);
	test_write_fd(src);
	trust_buf_free(&b);
	{
		char missing[300];

		snprintf(missing, sizeof(missing), "%s/nothing", root);
		ok(backup_seal(missing, pass, strlen(pass), &fast, &b, NULL, &err) != 0,
			"no backup of a store that is not there: %s", err.msg);
	}
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			diag("could not remove %s", root);
	}
	return done_testing();
}
