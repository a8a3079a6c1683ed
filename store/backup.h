/*
 * Disaster-recovery backups of a trust store: the whole store directory
 * (index, certificates, keys, configs) in one file, encrypted with a
 * passphrase. Restoring one brings back the same keys, so phones keep
 * trusting the ITLs the rebuilt appliance signs.
 *
 * File layout (integers big-endian):
 *
 *   off  size
 *     0     8  magic "TVSBKUP\x01"
 *     8     4  version (1)
 *    12     4  KDF (1: scrypt)
 *    16     4  log2 of scrypt N
 *    20     4  scrypt r
 *    24     4  scrypt p
 *    28    16  salt (random)
 *    44    12  AES-GCM nonce (random)
 *    56     8  ciphertext length L
 *    64     L  AES-256-GCM ciphertext of the archive; the 64 header
 *              bytes are its additional authenticated data
 *  64+L    16  GCM tag
 *
 * The key is scrypt(passphrase, salt, N, r, p), 32 bytes. A file whose
 * length is not exactly 80 + L, whose KDF parameters are out of bounds
 * (they decide how much memory and time a restore takes) or whose tag
 * does not verify is refused before anything is written.
 *
 * The archive: "TVSARCH1", then entries {u8 kind (1 file, 2 directory),
 * u16 name length, name (relative, no "..", no empty component), u32
 * mode, u64 size, size bytes (files only)}, then a u8 0. Directories come
 * before what they contain. The lock file and crash leftovers (*.tmp.*)
 * are not archived.
 */
#ifndef STORE_BACKUP_H
#define STORE_BACKUP_H

#include "trust.h"

#define BACKUP_HEADER_LEN 64
#define BACKUP_TAG_LEN 16
#define BACKUP_MAX (256u << 20)		/* largest backup file read */

struct backup_kdf {
	unsigned log2_n;		/* 10..20 */
	unsigned r;			/* 1..32 */
	unsigned p;			/* 1..16 */
};

/* What backup_seal uses when given NULL: N = 2^15, r = 8, p = 1 (32 MiB). */
extern const struct backup_kdf backup_kdf_default;

struct backup_info {
	unsigned files;
	size_t bytes;			/* archived file bytes */
	uint64_t generation;		/* of the store, as restored */
};

/* The store at dir, archived and encrypted into out. */
int backup_seal(const char *dir, const char *pass, size_t passlen,
	const struct backup_kdf *kdf, struct trust_buf *out, struct backup_info *info,
	struct trust_err *err);
/* backup_seal, written to file atomically with mode 0600. */
int backup_write(const char *dir, const char *file, const char *pass, size_t passlen,
	const struct backup_kdf *kdf, struct backup_info *info, struct trust_err *err);
/*
 * backup_seal, written from offset 0 to fd (a file someone else opened:
 * tvs-controld writes what tvsctl created) and fsync'ed. Not atomic by
 * itself: no rename is possible through a descriptor, so a failure can
 * leave a partial file; the opener writes into a new temporary file and
 * renames it over the name only once this returned 0 (tvsctl does), or
 * removes it.
 */
int backup_write_fd(const char *dir, int fd, const char *pass, size_t passlen,
	const struct backup_kdf *kdf, struct backup_info *info, struct trust_err *err);

/*
 * Replaces the store at dir (which may be absent or damaged) with the one
 * in the backup bytes p[0..n): decrypts and checks it, writes it into a
 * temporary directory beside dir, opens it as a store (every check of
 * store_open), then swaps it in with one rename(2) (RENAME_EXCHANGE when
 * dir exists) under dir's lock. If the backup's generation is not newer
 * than the replaced store's, it is committed once more with the next
 * number, so a generation is never published twice with different
 * content. On any failure dir is left as it was.
 */
int backup_restore_mem(const uint8_t *p, size_t n, const char *pass, size_t passlen,
	const char *dir, struct backup_info *info, struct trust_err *err);
int backup_restore(const char *file, const char *pass, size_t passlen, const char *dir,
	struct backup_info *info, struct trust_err *err);

#endif
