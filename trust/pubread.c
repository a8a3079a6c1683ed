/*
 * pub_load: read one publication back (layout in PUBLICATION.md) and trust
 * nothing that the index does not vouch for.
 *
 * The loader is the gate between the control plane's files and the fast
 * path's memory, so it is strict: the index must be complete (`end`), every
 * listed file must exist as a regular file inside the generation directory
 * (no symbolic links at any level), with the listed size and SHA-256, names
 * stay inside the directory, and the generation must agree with the
 * directory name and with the manifest. Anything else refuses the whole
 * publication; the caller keeps serving the one it had.
 *
 * Served files are kept sorted by name so pub_find is a binary search.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cert.h"
#include "publication.h"

#define PUB_INDEX_MAX (4u << 20)
#define PUB_FILE_MAX (256u << 20)	/* one file; the ITL is at most 64 KiB */
#define PUB_ENTRIES_MAX 200000u

struct pub_entry {
	char name[256];
	size_t size;
	uint8_t sha256[32];
	bool serve;
	unsigned line;
	uint8_t *data;		/* loaded bytes (kept for serve, certs, manifest) */
};

struct pub_index {
	uint64_t generation;
	bool has_generation;
	struct pub_entry *e;
	size_t n, cap;
};

static inline bool
pub_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

struct pub_ctx {
	int dirfd;
	const char *dir;
	struct trust_err *err;
};

/* A name that stays inside the generation directory. Served names have
 * no '/'; other files may live one level down in certs/ or tvs/. */
static bool
pub_name_ok(const char *name, bool serve)
{
	const char *base = name;

	if (!serve && (strncmp(name, "certs/", 6) == 0 || strncmp(name, "tvs/", 4) == 0))
		base = strchr(name, '/') + 1;
	if (*base == '\0' || strcmp(base, ".") == 0 || strstr(name, "..") != NULL
	    || strchr(base, '/') != NULL || strcmp(name, "PUBLICATION") == 0)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p == 0x7f)
			return false;
	return true;
}

/* "serve|file NAME SIZE SHA256" */
static int
pub_parse_entry(struct pub_ctx *cx, struct pub_index *ix, char *s, bool serve, unsigned line)
{
	char name[300], hex[80], *end, extra[2];
	unsigned long long size;
	struct pub_entry *e;
	char sizestr[32];

	if (sscanf(s, "%*s %299s %31s %79s %1s", name, sizestr, hex, extra) != 3)
		return trust_errf(cx->err, TRUST_EFORMAT,
			"%s/PUBLICATION:%u: expected '%s NAME SIZE SHA256'", cx->dir, line,
			serve ? "serve" : "file");
	if (strlen(name) > 255 || !pub_name_ok(name, serve))
		return trust_errf(cx->err, TRUST_EFORMAT,
			"%s/PUBLICATION:%u: refused name '%.255s' (outside the directory or not allowed)",
			cx->dir, line, name);
	errno = 0;
	size = strtoull(sizestr, &end, 10);
	if (*end != '\0' || errno != 0 || sizestr[0] == '-' || size > PUB_FILE_MAX)
		return trust_errf(cx->err, TRUST_EFORMAT, "%s/PUBLICATION:%u: bad size '%s' of %s",
			cx->dir, line, sizestr, name);
	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 16;
		struct pub_entry *ne;

		if (ix->n >= PUB_ENTRIES_MAX)
			return trust_errf(cx->err, TRUST_ETOOBIG, "%s/PUBLICATION:%u: more than %u files",
				cx->dir, line, PUB_ENTRIES_MAX);
		ne = realloc(ix->e, cap * sizeof(*ne));
		if (ne == NULL)
			return trust_errf(cx->err, TRUST_ENOMEM, "%s: out of memory", cx->dir);
		ix->e = ne;
		ix->cap = cap;
	}
	e = &ix->e[ix->n];
	memset(e, 0, sizeof(*e));
	if (strlen(hex) != 64 || trust_unhex(hex, e->sha256, 32) != 32)
		return trust_errf(cx->err, TRUST_EFORMAT, "%s/PUBLICATION:%u: bad SHA-256 '%s' of %s",
			cx->dir, line, hex, name);
	for (size_t i = 0; i < ix->n; i++)
		if (strcmp(ix->e[i].name, name) == 0)
			return trust_errf(cx->err, TRUST_EFORMAT,
				"%s/PUBLICATION:%u: %s listed twice (first at line %u)",
				cx->dir, line, name, ix->e[i].line);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->size = (size_t)size;
	e->serve = serve;
	e->line = line;
	ix->n++;
	return 0;
}

static int
pub_parse_line(struct pub_ctx *cx, struct pub_index *ix, char *s, unsigned line)
{
	char word[16], *end;

	if (sscanf(s, "%15s", word) != 1)
		return trust_errf(cx->err, TRUST_EFORMAT, "%s/PUBLICATION:%u: empty line",
			cx->dir, line);
	if (strcmp(word, "serve") == 0 || strcmp(word, "file") == 0)
		return pub_parse_entry(cx, ix, s, word[0] == 's', line);
	if (strcmp(word, "generation") == 0 && !ix->has_generation) {
		errno = 0;
		ix->generation = strtoull(s + 11, &end, 10);
		if (s[10] != ' ' || !pub_isdigit(s[11]) || *end != '\0' || errno != 0)
			return trust_errf(cx->err, TRUST_EFORMAT,
				"%s/PUBLICATION:%u: bad generation line", cx->dir, line);
		ix->has_generation = true;
		return 0;
	}
	if (strcmp(word, "created") == 0)
		return 0;
	return trust_errf(cx->err, TRUST_EFORMAT, "%s/PUBLICATION:%u: unexpected line '%.40s'",
		cx->dir, line, s);
}

/* Line 1 "tvs-publication 1", last line "end", entries between. */
static int
pub_parse_index(struct pub_ctx *cx, char *text, size_t len, struct pub_index *ix)
{
	unsigned line = 0;
	bool ended = false;
	char *next;
	int rc;

	if (len == 0 || text[len - 1] != '\n')
		return trust_errf(cx->err, TRUST_EFORMAT,
			"%s/PUBLICATION: truncated (no final newline)", cx->dir);
	for (char *s = text; s < text + len; s = next) {
		next = memchr(s, '\n', (size_t)(text + len - s));
		*next++ = '\0';
		line++;
		if (ended)
			return trust_errf(cx->err, TRUST_EFORMAT,
				"%s/PUBLICATION:%u: text after 'end'", cx->dir, line);
		if (strlen(s) != (size_t)(next - s - 1))
			return trust_errf(cx->err, TRUST_EFORMAT,
				"%s/PUBLICATION:%u: NUL byte", cx->dir, line);
		if (line == 1) {
			if (strcmp(s, "tvs-publication 1") != 0)
				return trust_errf(cx->err, TRUST_EFORMAT,
					"%s/PUBLICATION:1: not 'tvs-publication 1'", cx->dir);
			continue;
		}
		if (strcmp(s, "end") == 0) {
			ended = true;
			continue;
		}
		rc = pub_parse_line(cx, ix, s, line);
		if (rc != 0)
			return rc;
	}
	if (!ended)
		return trust_errf(cx->err, TRUST_EFORMAT,
			"%s/PUBLICATION: no 'end' line (incomplete index)", cx->dir);
	if (!ix->has_generation)
		return trust_errf(cx->err, TRUST_EFORMAT, "%s/PUBLICATION: no generation line",
			cx->dir);
	return 0;
}

/* Opens dir/name refusing symbolic links at every level; st filled. */
static int
pub_open_beneath(int dirfd, const char *name, struct stat *st)
{
	const char *slash = strchr(name, '/');
	int fd, sub = -1;

	if (slash != NULL) {
		char d[16];

		if ((size_t)(slash - name) >= sizeof(d))
			return -1;
		memcpy(d, name, (size_t)(slash - name));
		d[slash - name] = '\0';
		sub = openat(dirfd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return -1;
		dirfd = sub;
		name = slash + 1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (sub >= 0)
		close(sub);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

static int
pub_read_exact(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	uint8_t extra;
	ssize_t r;

	while (got < n) {
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	/* The file must end where the index says. */
	return read(fd, &extra, 1) == 0 ? 0 : -1;
}

static bool
pub_is_key(const char *name)
{
	return strncmp(name, "tvs/", 4) == 0 && strstr(name, ".key") != NULL;
}

/* Reads one entry into e->data, checks size and digest. */
static int
pub_read_entry(struct pub_ctx *cx, struct pub_entry *e)
{
	uint8_t md[32];
	struct stat st;
	int fd, rc = 0;

	fd = pub_open_beneath(cx->dirfd, e->name, &st);
	if (fd < 0)
		return trust_errf(cx->err, TRUST_EIO, "%s/%s: %s (listed at PUBLICATION:%u)",
			cx->dir, e->name, errno == ELOOP ? "is a symbolic link"
			: errno == EINVAL ? "not a regular file" : strerror(errno), e->line);
	if ((size_t)st.st_size != e->size) {
		close(fd);
		return trust_errf(cx->err, TRUST_ESIG, "%s/%s: %lld bytes, PUBLICATION:%u says %zu",
			cx->dir, e->name, (long long)st.st_size, e->line, e->size);
	}
	if (pub_is_key(e->name) && (st.st_mode & 077) != 0) {
		close(fd);
		return trust_errf(cx->err, TRUST_EINVAL, "%s/%s: private key has mode %03o, not 0600",
			cx->dir, e->name, (unsigned)(st.st_mode & 0777));
	}
	e->data = malloc(e->size ? e->size : 1);
	if (e->data == NULL) {
		close(fd);
		return trust_errf(cx->err, TRUST_ENOMEM, "%s/%s: out of memory", cx->dir, e->name);
	}
	if (pub_read_exact(fd, e->data, e->size) != 0)
		rc = trust_errf(cx->err, TRUST_EIO, "%s/%s: changed while read", cx->dir, e->name);
	close(fd);
	if (rc == 0 && EVP_Digest(e->data, e->size, md, NULL, EVP_sha256(), NULL) != 1)
		rc = trust_err_openssl(cx->err, TRUST_ECRYPTO, "SHA-256");
	if (rc == 0 && memcmp(md, e->sha256, 32) != 0)
		rc = trust_errf(cx->err, TRUST_ESIG,
			"%s/%s: SHA-256 differs from PUBLICATION:%u", cx->dir, e->name, e->line);
	if (pub_is_key(e->name)) {
		OPENSSL_cleanse(e->data, e->size);
		free(e->data);
		e->data = NULL;
	}
	return rc;
}

static struct pub_entry *
pub_index_find(struct pub_index *ix, const char *name)
{
	for (size_t i = 0; i < ix->n; i++)
		if (strcmp(ix->e[i].name, name) == 0)
			return &ix->e[i];
	return NULL;
}

/* "cert SHA256 ROLES TTL certs/SHA256.der" */
static int
pub_manifest_cert(struct pub_ctx *cx, struct pub_index *ix, char *s, unsigned line,
	struct pub_cert *pc)
{
	char hex[80], roles[64], ttl[16], path[300], want[80];
	struct trust_cert c;
	struct pub_entry *e;
	char *r, *save, *end;
	int rc;

	if (sscanf(s, "cert %79s %63s %15s %299s", hex, roles, ttl, path) != 4
	    || strlen(hex) != 64 || trust_unhex(hex, pc->sha256, 32) != 32)
		return trust_errf(cx->err, TRUST_EFORMAT,
			"%s/manifest:%u: expected 'cert SHA256 ROLES TTL certs/SHA256.der'",
			cx->dir, line);
	snprintf(want, sizeof(want), "certs/%s.der", hex);
	e = pub_index_find(ix, path);
	if (strcmp(path, want) != 0 || e == NULL || e->serve)
		return trust_errf(cx->err, TRUST_EFORMAT,
			"%s/manifest:%u: certificate file %.200s is not %s listed in PUBLICATION",
			cx->dir, line, path, want);
	if (memcmp(e->sha256, pc->sha256, 32) != 0)
		return trust_errf(cx->err, TRUST_ESIG, "%s/manifest:%u: %s has another digest",
			cx->dir, line, path);
	errno = 0;
	pc->ttl = (uint32_t)strtoul(ttl, &end, 10);
	if (*end != '\0' || errno != 0 || !pub_isdigit(ttl[0]))
		return trust_errf(cx->err, TRUST_EFORMAT, "%s/manifest:%u: bad TTL '%s'",
			cx->dir, line, ttl);
	for (r = strtok_r(roles, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save)) {
		unsigned long v = strtoul(r, &end, 10);

		if (*end != '\0' || !pub_isdigit(r[0]) || v > 255 || pc->nroles == 8)
			return trust_errf(cx->err, TRUST_EFORMAT, "%s/manifest:%u: bad role list",
				cx->dir, line);
		pc->roles[pc->nroles++] = (uint8_t)v;
	}
	rc = trust_cert_from_der(e->data, e->size, &c, cx->err);
	if (rc != 0) {
		char why[sizeof(cx->err->msg)];

		snprintf(why, sizeof(why), "%s", cx->err->msg);
		return trust_errf(cx->err, rc, "%s/%s: %.300s", cx->dir, path, why);
	}
	rc = trust_issuer_serial_key(c.issuer, strlen(c.issuer), c.serial, c.serial_len,
		pc->issuer_serial);
	trust_cert_free(&c);
	if (rc != 0)
		return trust_errf(cx->err, rc, "%s/%s: issuer name not understood", cx->dir, path);
	pc->der = e->data;	/* ownership moves to the publication */
	pc->der_len = e->size;
	e->data = NULL;
	return 0;
}

static int
pub_parse_manifest(struct pub_ctx *cx, struct pub_index *ix, struct publication *p)
{
	struct pub_entry *m = pub_index_find(ix, "manifest");
	unsigned line = 0, n = 0;
	bool ended = false;
	char *text, *s, *next;
	uint64_t gen;
	int rc = 0;

	if (m == NULL)
		return 0;	/* a publication with no TVS data (hand-made for tests) */
	text = malloc(m->size + 1);
	if (text == NULL)
		return trust_errf(cx->err, TRUST_ENOMEM, "%s/manifest: out of memory", cx->dir);
	memcpy(text, m->data, m->size);
	text[m->size] = '\0';
	for (s = text; *s != '\0'; s++)
		n += *s == '\n';
	n++;	/* a last line without newline */
	p->certs = calloc(n ? n : 1, sizeof(*p->certs));
	if (p->certs == NULL)
		rc = trust_errf(cx->err, TRUST_ENOMEM, "%s/manifest: out of memory", cx->dir);
	for (s = text; rc == 0 && *s != '\0'; s = next) {
		next = strchr(s, '\n');
		if (next == NULL)
			next = s + strlen(s);
		else
			*next++ = '\0';
		line++;
		if (ended)
			rc = trust_errf(cx->err, TRUST_EFORMAT, "%s/manifest:%u: text after 'end'",
				cx->dir, line);
		else if (line == 1 && strcmp(s, "tvs-manifest 1") != 0)
			rc = trust_errf(cx->err, TRUST_EFORMAT, "%s/manifest:1: not 'tvs-manifest 1'",
				cx->dir);
		else if (line == 1)
			continue;
		else if (strcmp(s, "end") == 0)
			ended = true;
		else if (sscanf(s, "generation %" SCNu64, &gen) == 1) {
			if (gen != p->generation)
				rc = trust_errf(cx->err, TRUST_EFORMAT,
					"%s/manifest:%u: generation %" PRIu64 ", PUBLICATION says %" PRIu64,
					cx->dir, line, gen, p->generation);
		} else if (strncmp(s, "cert ", 5) == 0 && p->ncerts < n)
			rc = pub_manifest_cert(cx, ix, s, line, &p->certs[p->ncerts++]);
		else
			rc = trust_errf(cx->err, TRUST_EFORMAT, "%s/manifest:%u: unexpected line",
				cx->dir, line);
	}
	if (rc == 0 && !ended)
		rc = trust_errf(cx->err, TRUST_EFORMAT, "%s/manifest: no 'end' line", cx->dir);
	free(text);
	return rc;
}

/* The generation directory of path: itself, or what `current` points to. */
static int
pub_resolve(const char *path, char *dir, size_t dirsz, struct trust_err *err)
{
	char buf[PATH_MAX], real[PATH_MAX];
	const char *base;
	struct stat st;

	snprintf(buf, sizeof(buf), "%s/PUBLICATION", path);
	if (lstat(buf, &st) != 0) {
		snprintf(buf, sizeof(buf), "%s/current", path);
		if (lstat(buf, &st) != 0)
			return trust_errf(err, TRUST_ENOTFOUND,
				"%s: neither a publication nor a root with 'current'", path);
	} else
		snprintf(buf, sizeof(buf), "%s", path);
	if (realpath(buf, real) == NULL)
		return trust_errf(err, TRUST_ENOTFOUND, "%s: %s", buf, strerror(errno));
	base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	if (strstr(base, ".tmp") != NULL)
		return trust_errf(err, TRUST_EFORMAT, "%s: a publish in progress, not a publication",
			real);
	if (strlen(real) >= dirsz)
		return trust_errf(err, TRUST_EINVAL, "%s: path too long", real);
	snprintf(dir, dirsz, "%s", real);
	return 0;
}

static int
pub_read_index(struct pub_ctx *cx, struct pub_index *ix)
{
	struct stat st;
	char *text;
	int fd, rc;

	fd = pub_open_beneath(cx->dirfd, "PUBLICATION", &st);
	if (fd < 0)
		return trust_errf(cx->err, TRUST_ENOTFOUND, "%s/PUBLICATION: %s", cx->dir,
			strerror(errno));
	if ((size_t)st.st_size > PUB_INDEX_MAX) {
		close(fd);
		return trust_errf(cx->err, TRUST_ETOOBIG, "%s/PUBLICATION: larger than %u bytes",
			cx->dir, PUB_INDEX_MAX);
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL || pub_read_exact(fd, (uint8_t *)text, (size_t)st.st_size) != 0) {
		close(fd);
		free(text);
		return trust_errf(cx->err, TRUST_EIO, "%s/PUBLICATION: read failed", cx->dir);
	}
	close(fd);
	text[st.st_size] = '\0';
	rc = pub_parse_index(cx, text, (size_t)st.st_size, ix);
	free(text);
	return rc;
}

/* gen-%08llu must carry the index's generation. */
static int
pub_check_dirname(struct pub_ctx *cx, uint64_t gen)
{
	const char *base = strrchr(cx->dir, '/') ? strrchr(cx->dir, '/') + 1 : cx->dir;
	unsigned long long n;
	char *end;

	if (strncmp(base, "gen-", 4) != 0)
		return 0;	/* a directory given by hand: nothing to compare */
	n = strtoull(base + 4, &end, 10);
	if (*end != '\0' || n != gen)
		return trust_errf(cx->err, TRUST_EFORMAT,
			"%s: directory name disagrees with PUBLICATION generation %" PRIu64,
			cx->dir, gen);
	return 0;
}

static int
pub_cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct pub_file *)a)->name, ((const struct pub_file *)b)->name);
}

/* Moves the served entries into p->files, sorted by name. */
static int
pub_take_files(struct pub_ctx *cx, struct pub_index *ix, struct publication *p)
{
	size_t n = 0;

	for (size_t i = 0; i < ix->n; i++)
		n += ix->e[i].serve;
	p->files = calloc(n ? n : 1, sizeof(*p->files));
	if (p->files == NULL)
		return trust_errf(cx->err, TRUST_ENOMEM, "%s: out of memory", cx->dir);
	for (size_t i = 0; i < ix->n; i++) {
		struct pub_entry *e = &ix->e[i];
		struct pub_file *f;

		if (!e->serve)
			continue;
		f = &p->files[p->nfiles++];
		snprintf(f->name, sizeof(f->name), "%s", e->name);
		f->data = e->data;
		f->len = e->size;
		memcpy(f->sha256, e->sha256, 32);
		e->data = NULL;
	}
	qsort(p->files, p->nfiles, sizeof(*p->files), pub_cmp_file);
	if (pub_find(p, "ITLFile.tlv") == NULL)
		return trust_errf(cx->err, TRUST_EFORMAT, "%s: serves no ITLFile.tlv", cx->dir);
	return 0;
}

/* dir/name into out, or "" when it does not fit. */
static void
pub_join(char *out, size_t outsz, const char *dir, const char *name)
{
	size_t d = strlen(dir), n = strlen(name);

	out[0] = '\0';
	if (d + 1 + n >= outsz)
		return;
	memcpy(out, dir, d);
	out[d] = '/';
	memcpy(out + d + 1, name, n + 1);
}

static void
pub_tvs_paths(struct pub_index *ix, struct publication *p)
{
	if (pub_index_find(ix, "tvs/tvs.pem") != NULL)
		pub_join(p->tvs_cert_path, sizeof(p->tvs_cert_path), p->dir, "tvs/tvs.pem");
	if (pub_index_find(ix, "tvs/tvs.key") != NULL)
		pub_join(p->tvs_key_path, sizeof(p->tvs_key_path), p->dir, "tvs/tvs.key");
}

/* With every entry read (rc 0): the manifest, the served files, the TVS
 * identity; then the index is freed, and p too on failure. */
static int
pub_finish(struct pub_ctx *cx, struct pub_index *ix, struct publication *p, int rc)
{
	if (rc == 0)
		rc = pub_parse_manifest(cx, ix, p);
	if (rc == 0)
		rc = pub_take_files(cx, ix, p);
	if (rc == 0)
		pub_tvs_paths(ix, p);
	for (size_t i = 0; i < ix->n; i++)
		free(ix->e[i].data);
	free(ix->e);
	if (rc != 0)
		pub_free(p);
	return rc;
}

int
pub_load(const char *path, struct publication *p, struct trust_err *err)
{
	struct pub_index ix = { 0 };
	struct pub_ctx cx = { .dirfd = -1, .dir = p->dir, .err = err };
	int rc;

	memset(p, 0, sizeof(*p));
	rc = pub_resolve(path, p->dir, sizeof(p->dir), err);
	if (rc != 0)
		return rc;
	cx.dirfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cx.dirfd < 0)
		rc = trust_errf(err, TRUST_EIO, "%s: %s", p->dir, strerror(errno));
	if (rc == 0)
		rc = pub_read_index(&cx, &ix);
	if (rc == 0)
		rc = pub_check_dirname(&cx, ix.generation);
	p->generation = ix.generation;
	for (size_t i = 0; rc == 0 && i < ix.n; i++)
		rc = pub_read_entry(&cx, &ix.e[i]);
	if (cx.dirfd >= 0)
		close(cx.dirfd);
	return pub_finish(&cx, &ix, p, rc);
}

void
pub_free(struct publication *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i].data);
	for (size_t i = 0; i < p->ncerts; i++)
		free(p->certs[i].der);
	free(p->files);
	free(p->certs);
	p->files = NULL;
	p->certs = NULL;
	p->nfiles = p->ncerts = 0;
}

const struct pub_file *
pub_find(const struct publication *p, const char *name)
{
	size_t lo = 0, hi = p->nfiles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, p->files[mid].name);

		if (c == 0)
			return &p->files[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* An entry's bytes without a file: the manifest's or the stand-in's. */
static int
pub_mem_entry(struct pub_ctx *cx, struct pub_entry *e, const uint8_t *manifest, size_t mlen,
	const uint8_t *file, size_t flen)
{
	bool is_manifest = strcmp(e->name, "manifest") == 0;

	if (pub_is_key(e->name))
		return 0;	/* pub_read_entry keeps no key bytes either */
	e->size = is_manifest ? mlen : flen;
	e->data = malloc(e->size ? e->size : 1);
	if (e->data == NULL)
		return trust_errf(cx->err, TRUST_ENOMEM, "%s/%s: out of memory", cx->dir, e->name);
	if (e->size != 0)
		memcpy(e->data, is_manifest ? manifest : file, e->size);
	return 0;
}

/*
 * pub_load's parsers on bytes in memory, for the fuzzer
 * (tests/fuzz/fuzz_pub.c). Fuzzing pub_load on a directory built from the
 * input would stop at the first SHA-256 check (mutated bytes never match
 * the digest the index lists) and spend each run in the file system; here
 * the index is parsed as it is, every file it lists reads as `file` (the
 * manifest as `manifest`) with its size taken as listed and its digest as
 * right, and nothing is opened. The parsing code is pub_load's own.
 */
int
pub_parse_mem(const char *index, size_t ilen, const uint8_t *manifest, size_t mlen,
	const uint8_t *file, size_t flen, struct publication *p, struct trust_err *err)
{
	struct pub_index ix = { 0 };
	struct pub_ctx cx = { .dirfd = -1, .dir = p->dir, .err = err };
	char *text = malloc(ilen + 1);
	int rc;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "memory");
	if (text == NULL)
		return trust_errf(err, TRUST_ENOMEM, "memory/PUBLICATION: out of memory");
	if (ilen != 0)
		memcpy(text, index, ilen);
	text[ilen] = '\0';
	rc = pub_parse_index(&cx, text, ilen, &ix);
	free(text);
	p->generation = ix.generation;
	for (size_t i = 0; rc == 0 && i < ix.n; i++)
		rc = pub_mem_entry(&cx, &ix.e[i], manifest, mlen, file, flen);
	return pub_finish(&cx, &ix, p, rc);
}
