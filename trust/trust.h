/*
 * trust: the DPDK-free core shared by tvsctl, the daemons and the tests.
 *
 * Conventions of the whole library:
 *  - functions return 0 on success or a negative TRUST_E* code; when they
 *    fail they fill the caller's struct trust_err with one line that names
 *    what was wrong (byte offset and tag for file parsing, path for I/O);
 *  - parsed views (struct trust_bytes) point into the caller's buffer, which
 *    must outlive them;
 *  - all crypto and X.509 goes through OpenSSL 3 EVP APIs.
 */
#ifndef TRUST_TRUST_H
#define TRUST_TRUST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum trust_errcode {
	TRUST_OK = 0,
	TRUST_EFORMAT = -1,	/* malformed file or message */
	TRUST_ESIG = -2,	/* signature or digest does not verify */
	TRUST_ENOTFOUND = -3,	/* signer, certificate, unit, name unknown */
	TRUST_EIO = -4,		/* file system error */
	TRUST_ETOOBIG = -5,	/* over a format limit (65,535-byte lists) */
	TRUST_ECRYPTO = -6,	/* OpenSSL refused an operation */
	TRUST_ESTORE = -7,	/* store corrupt, half-written or unknown version */
	TRUST_ENOMEM = -8,
	TRUST_EINVAL = -9,	/* caller's argument out of range */
	TRUST_ELOCKED = -10,	/* store locked by another process */
	TRUST_EEXIST = -11,	/* already exists */
};

struct trust_err {
	int code;
	char msg[512];
};

/* Fill err (if not NULL) and return code. */
int trust_errf(struct trust_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Append OpenSSL's error queue (first reason) to err->msg, clear the queue. */
int trust_err_openssl(struct trust_err *err, int code, const char *what);
const char *trust_strerror(int code);

/* Growable byte buffer; a failed allocation sticks in ->failed. */
struct trust_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
};

void trust_buf_init(struct trust_buf *b);
void trust_buf_free(struct trust_buf *b);
/* Like free, but wipes the bytes first (key material, plaintext). */
void trust_buf_wipe(struct trust_buf *b);
int trust_buf_reserve(struct trust_buf *b, size_t extra);
int trust_buf_put(struct trust_buf *b, const void *p, size_t n);
int trust_buf_put_u8(struct trust_buf *b, uint8_t v);
int trust_buf_put_u16(struct trust_buf *b, uint16_t v);
int trust_buf_put_u32(struct trust_buf *b, uint32_t v);
int trust_buf_printf(struct trust_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A view into someone else's buffer. */
struct trust_bytes {
	const uint8_t *p;
	size_t len;
};

static inline uint16_t
trust_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
trust_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Role ("function") codes of CTL/ITL records, FORMATS §1.5. */
enum trust_role {
	TRUST_ROLE_SAST = 0,
	TRUST_ROLE_CCM = 1,
	TRUST_ROLE_CCM_TFTP = 2,
	TRUST_ROLE_TFTP = 3,
	TRUST_ROLE_CAPF = 4,
	TRUST_ROLE_SRST = 5,
	TRUST_ROLE_APP_SERVER = 7,
	TRUST_ROLE_TVS = 21,
};

/* "SAST", "CCM+TFTP", ...; NULL for codes we do not know. */
const char *trust_role_name(unsigned role);
/* Accepts the names above case-insensitively, "HTTPS" for APP-SERVER, and
 * decimal codes; returns the code or -1. */
int trust_role_parse(const char *s);

/* Hash codes of header tag 8 / record tag 12 / enc tag 26, FORMATS §1.6. */
enum trust_hash {
	TRUST_HASH_SHA1 = 1,
	TRUST_HASH_SHA256 = 2,
	TRUST_HASH_SHA512 = 3,
};

const char *trust_hash_name(unsigned code);	/* "SHA-1", ... or NULL */
int trust_hash_parse(const char *s);		/* "sha1"/"sha512"/...; -1 */
size_t trust_hash_size(unsigned code);		/* 0 when unknown */

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void trust_hex(const uint8_t *p, size_t n, char *out);
/* Parse hex (no separators), returns bytes written or -1. */
int trust_unhex(const char *s, uint8_t *out, size_t outsz);

/* Whole-file helpers: read refuses files larger than max. */
int trust_file_read(const char *path, size_t max, struct trust_buf *out,
	struct trust_err *err);
/* Reads name inside the directory open on dirfd (dirname only names it in
 * errors), never following a symbolic link. TRUST_EINVAL for what is not
 * a regular file (a link, FIFO, device, folder) or a name with '/',
 * TRUST_ETOOBIG over max. For folders that others can write. */
int trust_file_read_at(int dirfd, const char *dirname, const char *name, size_t max,
	struct trust_buf *out, struct trust_err *err);
/* Atomic and durable: temp file in the same directory, fsync, rename,
 * fsync of the directory. */
int trust_file_write_atomic(const char *path, const void *p, size_t n,
	unsigned mode, struct trust_err *err);
int trust_fsync_dir(const char *dir, struct trust_err *err);
/* Before a daemon binds its UNIX socket: a socket file left by a dead
 * process is removed (0, also when there is none); one that a live process
 * answers is TRUST_EEXIST, anything else there TRUST_EIO. */
int trust_unix_stale(const char *path, struct trust_err *err);

#endif
