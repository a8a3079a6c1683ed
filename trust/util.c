/* Errors, buffers, codes and file helpers used by every trust module. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "trust.h"

int
trust_errf(struct trust_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int
trust_err_openssl(struct trust_err *err, int code, const char *what)
{
	char reason[256] = "no detail from OpenSSL";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	return trust_errf(err, code, "%s: %s", what, reason);
}

const char *
trust_strerror(int code)
{
	switch (code) {
	case TRUST_OK: return "success";
	case TRUST_EFORMAT: return "malformed input";
	case TRUST_ESIG: return "signature does not verify";
	case TRUST_ENOTFOUND: return "not found";
	case TRUST_EIO: return "I/O error";
	case TRUST_ETOOBIG: return "too big";
	case TRUST_ECRYPTO: return "cryptographic operation failed";
	case TRUST_ESTORE: return "trust store unusable";
	case TRUST_ENOMEM: return "out of memory";
	case TRUST_EINVAL: return "invalid argument";
	case TRUST_ELOCKED: return "locked";
	case TRUST_EEXIST: return "already exists";
	}
	return "unknown error";
}

void
trust_buf_init(struct trust_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
trust_buf_free(struct trust_buf *b)
{
	free(b->data);
	trust_buf_init(b);
}

void
trust_buf_wipe(struct trust_buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	trust_buf_free(b);
}

int
trust_buf_reserve(struct trust_buf *b, size_t extra)
{
	size_t want, cap;
	uint8_t *p;

	if (b->failed)
		return TRUST_ENOMEM;
	if (extra > SIZE_MAX - b->len) {
		b->failed = true;
		return TRUST_ENOMEM;
	}
	want = b->len + extra;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	/* realloc would leave a copy of secrets behind; move by hand */
	p = malloc(cap);
	if (p == NULL) {
		b->failed = true;
		return TRUST_ENOMEM;
	}
	if (b->data != NULL) {
		memcpy(p, b->data, b->len);
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int
trust_buf_put(struct trust_buf *b, const void *p, size_t n)
{
	if (trust_buf_reserve(b, n) != 0)
		return TRUST_ENOMEM;
	if (n != 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int
trust_buf_put_u8(struct trust_buf *b, uint8_t v)
{
	return trust_buf_put(b, &v, 1);
}

int
trust_buf_put_u16(struct trust_buf *b, uint16_t v)
{
	uint8_t p[2] = { v >> 8, v & 0xff };

	return trust_buf_put(b, p, 2);
}

int
trust_buf_put_u32(struct trust_buf *b, uint32_t v)
{
	uint8_t p[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff };

	return trust_buf_put(b, p, 4);
}

int
trust_buf_printf(struct trust_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || trust_buf_reserve(b, (size_t)n + 1) != 0)
		return TRUST_ENOMEM;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

static const struct {
	unsigned code;
	const char *name;
} role_names[] = {
	{ TRUST_ROLE_SAST, "SAST" },
	{ TRUST_ROLE_CCM, "CCM" },
	{ TRUST_ROLE_CCM_TFTP, "CCM+TFTP" },
	{ TRUST_ROLE_TFTP, "TFTP" },
	{ TRUST_ROLE_CAPF, "CAPF" },
	{ TRUST_ROLE_SRST, "SRST" },
	{ TRUST_ROLE_APP_SERVER, "APP-SERVER" },
	{ TRUST_ROLE_TVS, "TVS" },
};

const char *
trust_role_name(unsigned role)
{
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (role_names[i].code == role)
			return role_names[i].name;
	return NULL;
}

int
trust_role_parse(const char *s)
{
	char *end;
	long v;

	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcasecmp(s, role_names[i].name) == 0)
			return (int)role_names[i].code;
	if (strcasecmp(s, "HTTPS") == 0 || strcasecmp(s, "APP_SERVER") == 0)
		return TRUST_ROLE_APP_SERVER;
	if (strcasecmp(s, "CCM_TFTP") == 0)
		return TRUST_ROLE_CCM_TFTP;
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
		return -1;
	return (int)v;
}

const char *
trust_hash_name(unsigned code)
{
	switch (code) {
	case TRUST_HASH_SHA1: return "SHA-1";
	case TRUST_HASH_SHA256: return "SHA-256";
	case TRUST_HASH_SHA512: return "SHA-512";
	}
	return NULL;
}

int
trust_hash_parse(const char *s)
{
	if (strcasecmp(s, "sha1") == 0 || strcasecmp(s, "sha-1") == 0)
		return TRUST_HASH_SHA1;
	if (strcasecmp(s, "sha256") == 0 || strcasecmp(s, "sha-256") == 0)
		return TRUST_HASH_SHA256;
	if (strcasecmp(s, "sha512") == 0 || strcasecmp(s, "sha-512") == 0)
		return TRUST_HASH_SHA512;
	return -1;
}

size_t
trust_hash_size(unsigned code)
{
	switch (code) {
	case TRUST_HASH_SHA1: return 20;
	case TRUST_HASH_SHA256: return 32;
	case TRUST_HASH_SHA512: return 64;
	}
	return 0;
}

void
trust_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
trust_unhex(const char *s, uint8_t *out, size_t outsz)
{
	size_t n = strlen(s);

	if (n % 2 != 0 || n / 2 > outsz)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* Reads the regular file open on fd (closed here); `what` names it in
 * errors. The size is checked before and while reading: a file that grows
 * past max while read is refused, not cut. */
static int
trust_fd_read(int fd, const char *what, size_t max, struct trust_buf *out,
	struct trust_err *err)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return trust_errf(err, TRUST_EIO, "%s: not a regular file", what);
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return trust_errf(err, TRUST_ETOOBIG,
			"%s: %lld bytes, more than the %zu this file may have",
			what, (long long)st.st_size, max);
	}
	if (trust_buf_reserve(out, (size_t)st.st_size + 1) != 0) {
		close(fd);
		return trust_errf(err, TRUST_ENOMEM, "%s: out of memory", what);
	}
	while ((n = read(fd, out->data + out->len, out->cap - out->len)) > 0) {
		out->len += (size_t)n;
		if (out->len > max) {
			close(fd);
			trust_buf_wipe(out);
			return trust_errf(err, TRUST_ETOOBIG, "%s: grew past %zu bytes while read",
				what, max);
		}
		if (out->len == out->cap && trust_buf_reserve(out, 4096) != 0)
			break;
	}
	close(fd);
	if (n < 0 || out->failed) {
		trust_buf_wipe(out);
		return trust_errf(err, TRUST_EIO, "%s: read failed", what);
	}
	return 0;
}

int
trust_file_read(const char *path, size_t max, struct trust_buf *out,
	struct trust_err *err)
{
	int fd;

	trust_buf_init(out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return trust_errf(err, errno == ENOENT ? TRUST_ENOTFOUND : TRUST_EIO,
			"%s: %s", path, strerror(errno));
	return trust_fd_read(fd, path, max, out, err);
}

int
trust_file_read_at(int dirfd, const char *dirname, const char *name, size_t max,
	struct trust_buf *out, struct trust_err *err)
{
	char what[PATH_MAX];
	struct stat st;
	int fd;

	trust_buf_init(out);
	snprintf(what, sizeof(what), "%s/%s", dirname, name);
	if (strchr(name, '/') != NULL || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
		return trust_errf(err, TRUST_EINVAL, "%s: not a plain file name", what);
	/* O_NONBLOCK: a FIFO planted in the folder must not hang the reader;
	 * fstat then refuses it as not a regular file. */
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return trust_errf(err, TRUST_EINVAL, "%s: a symbolic link (never followed)", what);
	if (fd < 0)
		return trust_errf(err, errno == ENOENT ? TRUST_ENOTFOUND : TRUST_EIO,
			"%s: %s", what, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return trust_errf(err, TRUST_EINVAL, "%s: not a regular file", what);
	}
	return trust_fd_read(fd, what, max, out, err);
}

int
trust_fsync_dir(const char *dir, struct trust_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return trust_errf(err, TRUST_EIO, "%s: %s", dir, strerror(errno));
	if (fsync(fd) != 0) {
		int e = errno;

		close(fd);
		return trust_errf(err, TRUST_EIO, "fsync %s: %s", dir, strerror(e));
	}
	close(fd);
	return 0;
}

int
trust_file_write_atomic(const char *path, const void *p, size_t n,
	unsigned mode, struct trust_err *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const uint8_t *c = p;
	size_t off = 0;
	char *slash;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return trust_errf(err, TRUST_EINVAL, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return trust_errf(err, TRUST_EIO, "%s: %s", tmp, strerror(errno));
	/* umask may have narrowed it; keys must be exactly 0600 */
	if (fchmod(fd, mode) != 0)
		goto fail;
	while (off < n) {
		ssize_t w = write(fd, c + off, n - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return trust_fsync_dir(dir, err);
fail:
	{
		int e = errno;

		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return trust_errf(err, TRUST_EIO, "%s: %s", path, strerror(e));
	}
}

int
trust_unix_stale(const char *path, struct trust_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return trust_errf(err, TRUST_EINVAL, "%s: socket path too long", path);
	if (lstat(path, &sb) != 0)
		return 0;
	if (!S_ISSOCK(sb.st_mode))
		return trust_errf(err, TRUST_EIO, "%s exists and is not a socket", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = fd >= 0 ? connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) : -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		return trust_errf(err, TRUST_EEXIST, "%s: a running process answers there", path);
	if (unlink(path) != 0)
		return trust_errf(err, TRUST_EIO, "remove stale %s: %s", path, strerror(errno));
	return 0;
}
