/*
 * Encrypted backups of a trust store (layout in backup.h): a small archive
 * of the store directory, sealed with AES-256-GCM under a scrypt key.
 * Restore decrypts and verifies everything in memory first, then builds
 * the store beside the old one and swaps it in with one rename.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "backup.h"
#include "store.h"

#define MAGIC "TVSBKUP\x01"
#define ARCH_MAGIC "TVSARCH1"
#define SALT_LEN 16
#define NONCE_LEN 12
#define KEY_LEN 32
#define KDF_SCRYPT 1
#define KDF_MAXMEM (256u << 20)
#define NAME_MAX_LEN 1024
#define DEPTH_MAX 8

enum { ENT_END = 0, ENT_FILE = 1, ENT_DIR = 2 };

const struct backup_kdf backup_kdf_default = { .log2_n = 15, .r = 8, .p = 1 };

/* ---- archive ------------------------------------------------------------- */

static void
put_u64(struct trust_buf *b, uint64_t v)
{
	trust_buf_put_u32(b, (uint32_t)(v >> 32));
	trust_buf_put_u32(b, (uint32_t)v);
}

static uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t)trust_get_u32(p) << 32 | trust_get_u32(p + 4);
}

static void
put_entry(struct trust_buf *b, int kind, const char *name, unsigned mode, const void *p,
	size_t n)
{
	trust_buf_put_u8(b, (uint8_t)kind);
	trust_buf_put_u16(b, (uint16_t)strlen(name));
	trust_buf_put(b, name, strlen(name));
	trust_buf_put_u32(b, mode & 07777);
	put_u64(b, n);
	if (n > 0)
		trust_buf_put(b, p, n);
}

/* Not archived: the lock, and what a crashed writer left. */
static bool
skipped(const char *name)
{
	return strcmp(name, "lock") == 0 || strstr(name, ".tmp") != NULL;
}

static int
archive_dir(const char *root, const char *rel, int depth, struct trust_buf *b,
	struct backup_info *info, struct trust_err *err)
{
	char path[PATH_MAX], sub[PATH_MAX];
	struct dirent **names = NULL;
	int n, r = 0;

	if (depth > DEPTH_MAX)
		return trust_errf(err, TRUST_ETOOBIG, "%s/%s: directories nested too deep", root, rel);
	snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
	/* sorted: the same store gives the same archive */
	if ((n = scandir(path, &names, NULL, alphasort)) < 0)
		return trust_errf(err, TRUST_EIO, "%s: %s", path, strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		struct trust_buf data;
		struct stat sb;

		if (r != 0 || strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 || skipped(nm))
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", nm) >= NAME_MAX_LEN ||
		    snprintf(path, sizeof(path), "%s/%s", root, sub) >= (int)sizeof(path)) {
			r = trust_errf(err, TRUST_ETOOBIG, "%s/%s: name too long", rel, nm);
			continue;
		}
		if (lstat(path, &sb) != 0) {
			r = trust_errf(err, TRUST_EIO, "%s: %s", path, strerror(errno));
		} else if (S_ISDIR(sb.st_mode)) {
			put_entry(b, ENT_DIR, sub, sb.st_mode, NULL, 0);
			r = archive_dir(root, sub, depth + 1, b, info, err);
		} else if (S_ISREG(sb.st_mode)) {
			if ((r = trust_file_read(path, BACKUP_MAX, &data, err)) != 0)
				continue;
			put_entry(b, ENT_FILE, sub, sb.st_mode, data.data, data.len);
			info->files++;
			info->bytes += data.len;
			trust_buf_wipe(&data);
		}
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

/* ---- sealing ------------------------------------------------------------- */

static int
derive(const char *pass, size_t passlen, const uint8_t *salt, const struct backup_kdf *k,
	uint8_t *key, struct trust_err *err)
{
	if (EVP_PBE_scrypt(pass, passlen, salt, SALT_LEN, (uint64_t)1 << k->log2_n, k->r, k->p,
	    KDF_MAXMEM, key, KEY_LEN) != 1)
		return trust_err_openssl(err, TRUST_ECRYPTO, "scrypt");
	return 0;
}

static bool
kdf_ok(const struct backup_kdf *k)
{
	return k->log2_n >= 10 && k->log2_n <= 20 && k->r >= 1 && k->r <= 32 && k->p >= 1 &&
		k->p <= 16 && (uint64_t)128 * k->r << k->log2_n <= KDF_MAXMEM / 2;
}

/* AES-256-GCM of in[0..n) into out (same length); tag in/out. */
static int
gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aadlen,
	const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag, struct trust_err *err)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int len, ok;

	ok = x != NULL && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
		EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
		EVP_CipherInit_ex(x, NULL, NULL, key, nonce, enc) == 1 &&
		EVP_CipherUpdate(x, NULL, &len, aad, (int)aadlen) == 1;
	for (size_t off = 0; ok && off < n; ) {
		int chunk = n - off > (1u << 30) ? 1 << 30 : (int)(n - off);

		ok = EVP_CipherUpdate(x, out + off, &len, in + off, chunk) == 1;
		off += (size_t)chunk;
	}
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, BACKUP_TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(x, out + n, &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, BACKUP_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(x);
	if (ok)
		return 0;
	if (!enc)
		return trust_errf(err, TRUST_ESIG, "wrong passphrase, or the backup is damaged "
			"(authentication failed)");
	return trust_err_openssl(err, TRUST_ECRYPTO, "AES-256-GCM");
}

int
backup_seal(const char *dir, const char *pass, size_t passlen, const struct backup_kdf *kdf,
	struct trust_buf *out, struct backup_info *info, struct trust_err *err)
{
	struct backup_info tmp;
	struct trust_store st;
	struct trust_buf arch;
	uint8_t key[KEY_LEN], *h;
	int r;

	info = info ? info : &tmp;
	memset(info, 0, sizeof(*info));
	kdf = kdf ? kdf : &backup_kdf_default;
	trust_buf_init(out);
	if (!kdf_ok(kdf))
		return trust_errf(err, TRUST_EINVAL, "scrypt parameters out of bounds");
	/* only an intact store is worth a backup */
	if ((r = store_open(dir, STORE_RDONLY, &st, err)) != 0)
		return r;
	info->generation = st.generation;
	store_close(&st);
	trust_buf_init(&arch);
	trust_buf_put(&arch, ARCH_MAGIC, 8);
	if ((r = archive_dir(dir, "", 0, &arch, info, err)) != 0)
		goto out;
	trust_buf_put_u8(&arch, ENT_END);
	if (trust_buf_reserve(out, BACKUP_HEADER_LEN + arch.len + BACKUP_TAG_LEN + 16) != 0 ||
	    arch.failed) {
		r = trust_errf(err, TRUST_ENOMEM, "out of memory");
		goto out;
	}
	trust_buf_put(out, MAGIC, 8);
	trust_buf_put_u32(out, 1);
	trust_buf_put_u32(out, KDF_SCRYPT);
	trust_buf_put_u32(out, kdf->log2_n);
	trust_buf_put_u32(out, kdf->r);
	trust_buf_put_u32(out, kdf->p);
	h = out->data;
	if (RAND_bytes(h + 28, SALT_LEN + NONCE_LEN) != 1) {
		r = trust_err_openssl(err, TRUST_ECRYPTO, "RAND_bytes");
		goto out;
	}
	out->len = 56;
	put_u64(out, arch.len);
	if ((r = derive(pass, passlen, h + 28, kdf, key, err)) != 0 ||
	    (r = gcm(true, key, h + 44, h, BACKUP_HEADER_LEN, arch.data, arch.len,
	    out->data + BACKUP_HEADER_LEN, out->data + BACKUP_HEADER_LEN + arch.len, err)) != 0)
		goto out;
	out->len = BACKUP_HEADER_LEN + arch.len + BACKUP_TAG_LEN;
out:
	OPENSSL_cleanse(key, sizeof(key));
	trust_buf_wipe(&arch);
	if (r != 0)
		trust_buf_free(out);
	return r;
}

int
backup_write(const char *dir, const char *file, const char *pass, size_t passlen,
	const struct backup_kdf *kdf, struct backup_info *info, struct trust_err *err)
{
	struct trust_buf b;
	int r;

	if ((r = backup_seal(dir, pass, passlen, kdf, &b, info, err)) != 0)
		return r;
	r = trust_file_write_atomic(file, b.data, b.len, 0600, err);
	trust_buf_free(&b);
	return r;
}

int
backup_write_fd(const char *dir, int fd, const char *pass, size_t passlen,
	const struct backup_kdf *kdf, struct backup_info *info, struct trust_err *err)
{
	struct trust_buf b;
	size_t off = 0;
	int r;

	if ((r = backup_seal(dir, pass, passlen, kdf, &b, info, err)) != 0)
		return r;
	while (off < b.len) {
		ssize_t w = pwrite(fd, b.data + off, b.len - off, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off < b.len || fsync(fd) != 0)
		r = trust_errf(err, TRUST_EIO, "writing the backup: %s", strerror(errno));
	trust_buf_free(&b);
	return r;
}

/* ---- opening ------------------------------------------------------------- */

/* Header checks, key, tag: the archive in plain (wiped by the caller). */
static int
unseal(const uint8_t *p, size_t n, const char *pass, size_t passlen, struct trust_buf *plain,
	struct trust_err *err)
{
	struct backup_kdf k;
	uint8_t key[KEY_LEN], tag[BACKUP_TAG_LEN];
	uint64_t len;
	int r;

	trust_buf_init(plain);
	if (n < BACKUP_HEADER_LEN + BACKUP_TAG_LEN || memcmp(p, MAGIC, 8) != 0)
		return trust_errf(err, TRUST_EFORMAT, n < 8 || memcmp(p, MAGIC, 8) != 0 ?
			"not a trust store backup (bad magic at offset 0)" :
			"backup truncated: %zu bytes, less than its header and tag", n);
	if (trust_get_u32(p + 8) != 1)
		return trust_errf(err, TRUST_EFORMAT, "backup version %u at offset 8 is not 1",
			trust_get_u32(p + 8));
	if (trust_get_u32(p + 12) != KDF_SCRYPT)
		return trust_errf(err, TRUST_EFORMAT, "unknown KDF %u at offset 12",
			trust_get_u32(p + 12));
	k = (struct backup_kdf){ trust_get_u32(p + 16), trust_get_u32(p + 20),
		trust_get_u32(p + 24) };
	if (!kdf_ok(&k))
		return trust_errf(err, TRUST_EFORMAT, "scrypt parameters at offset 16 out of bounds "
			"(log2 N %u, r %u, p %u)", k.log2_n, k.r, k.p);
	len = get_u64(p + 56);
	if (len != n - BACKUP_HEADER_LEN - BACKUP_TAG_LEN)
		return trust_errf(err, TRUST_EFORMAT, "backup is %zu bytes but its header at offset "
			"56 says %llu bytes of data (truncated or extended)", n,
			(unsigned long long)len);
	if (trust_buf_reserve(plain, (size_t)len + 16) != 0)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	memcpy(tag, p + BACKUP_HEADER_LEN + len, BACKUP_TAG_LEN);
	if ((r = derive(pass, passlen, p + 28, &k, key, err)) == 0)
		r = gcm(false, key, p + 44, p, BACKUP_HEADER_LEN, p + BACKUP_HEADER_LEN, (size_t)len,
			plain->data, tag, err);
	OPENSSL_cleanse(key, sizeof(key));
	if (r == 0)
		plain->len = (size_t)len;
	return r;
}

static bool
safe_name(const char *s, size_t n)
{
	if (n == 0 || s[0] == '/' || memchr(s, '\0', n) != NULL)
		return false;
	for (size_t i = 0, start = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		if (i == start || (i - start == 2 && s[start] == '.' && s[start + 1] == '.') ||
		    (i - start == 1 && s[start] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

static int
write_entry(const char *dir, const char *name, int kind, unsigned mode, const uint8_t *data,
	size_t len, struct trust_err *err)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return trust_errf(err, TRUST_EINVAL, "path too long: %s", name);
	if (kind == ENT_DIR) {
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return trust_errf(err, TRUST_EIO, "mkdir %s: %s", path, strerror(errno));
		return chmod(path, (mode & 0755) | 0700) == 0 ? 0 :
			trust_errf(err, TRUST_EIO, "chmod %s: %s", path, strerror(errno));
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return trust_errf(err, TRUST_EIO, "create %s: %s", path, strerror(errno));
	for (size_t off = 0; off < len; ) {
		ssize_t w = write(fd, data + off, len - off);

		if (w <= 0 && errno != EINTR) {
			close(fd);
			return trust_errf(err, TRUST_EIO, "write %s: %s", path, strerror(errno));
		}
		off += w > 0 ? (size_t)w : 0;
	}
	/* keys stay 0600 whatever the archive says; others at most 0644 */
	if (fchmod(fd, (mode & 0077) == 0 ? 0600 : (mode & 0644) | 0600) != 0 || fsync(fd) != 0) {
		close(fd);
		return trust_errf(err, TRUST_EIO, "%s: %s", path, strerror(errno));
	}
	close(fd);
	return 0;
}

/* The archive into dir (which exists, empty). */
static int
extract(const struct trust_buf *a, const char *dir, struct backup_info *info,
	struct trust_err *err)
{
	const uint8_t *p = a->data, *end = a->data + a->len;
	char name[NAME_MAX_LEN + 1];
	int r;

	if (a->len < 9 || memcmp(p, ARCH_MAGIC, 8) != 0)
		return trust_errf(err, TRUST_EFORMAT, "backup archive: bad magic");
	for (p += 8; p < end && *p != ENT_END; ) {
		size_t off = (size_t)(p - a->data), nlen;
		uint64_t size;
		unsigned mode;
		int kind = *p;

		if (kind != ENT_FILE && kind != ENT_DIR)
			return trust_errf(err, TRUST_EFORMAT, "archive offset %zu: unknown entry kind %d",
				off, kind);
		if ((size_t)(end - p) < 3 || (size_t)(end - p) < 3 + (nlen = trust_get_u16(p + 1)) + 12)
			return trust_errf(err, TRUST_EFORMAT, "archive offset %zu: entry truncated", off);
		if (nlen > NAME_MAX_LEN || !safe_name((const char *)p + 3, nlen))
			return trust_errf(err, TRUST_EFORMAT, "archive offset %zu: unsafe name", off);
		memcpy(name, p + 3, nlen);
		name[nlen] = '\0';
		p += 3 + nlen;
		mode = trust_get_u32(p);
		size = get_u64(p + 4);
		p += 12;
		if (size > (uint64_t)(end - p) || (kind == ENT_DIR && size != 0))
			return trust_errf(err, TRUST_EFORMAT, "archive offset %zu: %s: bad size %llu",
				off, name, (unsigned long long)size);
		if ((r = write_entry(dir, name, kind, mode, p, (size_t)size, err)) != 0)
			return r;
		info->files += kind == ENT_FILE;
		info->bytes += (size_t)size;
		p += size;
	}
	if (p + 1 != end)
		return trust_errf(err, TRUST_EFORMAT, "backup archive: %s", p >= end ?
			"no end marker" : "bytes after the end marker");
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The restored store numbers on from the one it replaces. */
static int
renumber(const char *tmp, uint64_t old_gen, struct backup_info *info, struct trust_err *err)
{
	struct trust_store st;
	int r;

	if ((r = store_open(tmp, STORE_LOCK, &st, err)) != 0)
		return r;
	if (st.generation <= old_gen) {
		st.generation = old_gen;
		r = store_commit(&st, err);
	}
	info->generation = st.generation;
	store_close(&st);
	return r;
}

static int
swap_in(const char *tmp, const char *dir, struct trust_err *err)
{
	char parent[PATH_MAX], *slash;
	struct stat sb;

	if (lstat(dir, &sb) == 0) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0)
			return trust_errf(err, TRUST_EIO, "swap %s and %s: %s", tmp, dir, strerror(errno));
	} else if (rename(tmp, dir) != 0) {
		return trust_errf(err, TRUST_EIO, "rename %s to %s: %s", tmp, dir, strerror(errno));
	}
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		snprintf(parent, sizeof(parent), ".");
	return trust_fsync_dir(parent, err);
}

int
backup_restore_mem(const uint8_t *p, size_t n, const char *pass, size_t passlen,
	const char *dir, struct backup_info *info, struct trust_err *err)
{
	struct backup_info tmpinfo;
	struct trust_buf plain;
	char tmp[PATH_MAX], obj[PATH_MAX + 16];
	uint64_t old_gen;
	struct stat sb;
	int r, lockfd = -1;

	info = info ? info : &tmpinfo;
	memset(info, 0, sizeof(*info));
	if ((r = unseal(p, n, pass, passlen, &plain, err)) != 0)
		goto out;
	if (snprintf(tmp, sizeof(tmp), "%s.restore.tmp.%ld", dir, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		r = trust_errf(err, TRUST_EINVAL, "store path too long");
		goto out;
	}
	rm_tree(tmp);
	snprintf(obj, sizeof(obj), "%s/objects", tmp);
	if ((r = store_mkdir_p(tmp, 0700, err)) != 0 || (r = extract(&plain, tmp, info, err)) != 0)
		goto fail;
	if (stat(obj, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		r = trust_errf(err, TRUST_ESTORE, "the backup holds no objects directory");
		goto fail;
	}
	/* the old store, damaged or not, is locked against writers while it goes */
	old_gen = store_generation_hint(dir);
	if (lstat(dir, &sb) == 0 && (lockfd = store_lock(dir, err)) < 0) {
		r = lockfd;
		goto fail;
	}
	if ((r = renumber(tmp, old_gen, info, err)) != 0 || (r = swap_in(tmp, dir, err)) != 0)
		goto fail;
	rm_tree(tmp);		/* the old store now */
	goto out;
fail:
	rm_tree(tmp);
out:
	if (lockfd >= 0)
		close(lockfd);
	trust_buf_wipe(&plain);
	return r;
}

int
backup_restore(const char *file, const char *pass, size_t passlen, const char *dir,
	struct backup_info *info, struct trust_err *err)
{
	struct trust_buf b;
	int r;

	if ((r = trust_file_read(file, BACKUP_MAX, &b, err)) != 0)
		return r;
	r = backup_restore_mem(b.data, b.len, pass, passlen, dir, info, err);
	trust_buf_free(&b);
	return r;
}
