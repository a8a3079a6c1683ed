/*
 * The on-disk trust store (layout and guarantees in STORE.md).
 *
 * The index is a short text file whose last line is the SHA-256 of all the
 * lines above it; blobs are named by the SHA-256 of their bytes. Opening
 * checks both, so a torn, truncated or edited store is refused with the
 * reason instead of being half-used. Changes write their blobs first and
 * the index last, each with write-temp, fsync, rename, fsync-dir.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sign.h"
#include "store.h"

#define STORE_INDEX_MAX (64u << 20)
#define STORE_BLOB_MAX (1u << 20)
#define STORE_OPEN_TRIES 3

static const char *const unit_names[UNIT_COUNT] = {
	[UNIT_CALLMANAGER] = "CallManager",
	[UNIT_ITLRECOVERY] = "ITLRecovery",
	[UNIT_TVS] = "TVS",
	[UNIT_CAPF] = "CAPF",
};

const char *
store_unit_name(enum store_unit u)
{
	return (unsigned)u < UNIT_COUNT ? unit_names[u] : NULL;
}

int
store_unit_parse(const char *s)
{
	for (int u = 0; u < UNIT_COUNT; u++)
		if (strcasecmp(s, unit_names[u]) == 0)
			return u;
	return -1;
}

enum store_unit
store_list_signer(const struct store_settings *s)
{
	bool recovery = s->itl_signer == SIGNER_ITLRECOVERY;

	/* `utils itl reset`: the other SAST key signs until the flag is cleared */
	if (s->reset_signer)
		recovery = !recovery;
	return recovery ? UNIT_ITLRECOVERY : UNIT_CALLMANAGER;
}

/* ---- settings ---------------------------------------------------------- */

static const char *const setting_keys[] = {
	"security-mode", "itl-signer", "hash", "tftp-role", "tvs-ttl", "hostname",
	"ipv4", "rollback-pre8", "reset-signer", "keep-publications", "key-bits",
	"auto-registration",
};
#define NSETTINGS (sizeof(setting_keys) / sizeof(setting_keys[0]))
/* the keys every STORE has; later ones were added since and default */
#define NSETTINGS_REQUIRED 11

static bool
valid_hostname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= STORE_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static int
parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *out < min || *out > max)
		return -1;
	return 0;
}

static int
parse_bool(const char *s, bool *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = true;
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

static bool
valid_key_bits(unsigned long b)
{
	return b == 1024 || b == 2048 || b == 3072 || b == 4096;
}

int
store_setting_set(struct store_settings *s, const char *key, const char *val,
	struct trust_err *err)
{
	unsigned long u;
	int h;

	if (strcmp(key, "security-mode") == 0) {
		if (strcasecmp(val, "non-secure") == 0)
			s->security_mode = MODE_NON_SECURE;
		else if (strcasecmp(val, "mixed") == 0)
			s->security_mode = MODE_MIXED;
		else
			goto bad;
	} else if (strcmp(key, "itl-signer") == 0) {
		if (strcasecmp(val, "callmanager") == 0)
			s->itl_signer = SIGNER_CALLMANAGER;
		else if (strcasecmp(val, "itlrecovery") == 0)
			s->itl_signer = SIGNER_ITLRECOVERY;
		else
			goto bad;
	} else if (strcmp(key, "hash") == 0) {
		h = trust_hash_parse(val);
		if (h != TRUST_HASH_SHA1 && h != TRUST_HASH_SHA512)
			goto bad;
		s->hash = (unsigned)h;
	} else if (strcmp(key, "tftp-role") == 0) {
		h = trust_role_parse(val);
		if (h != TRUST_ROLE_TFTP && h != TRUST_ROLE_CCM_TFTP)
			goto bad;
		s->tftp_role = (uint16_t)h;
	} else if (strcmp(key, "tvs-ttl") == 0) {
		if (parse_uint(val, 1, UINT32_MAX, &u) != 0)
			goto bad;
		s->tvs_ttl = (uint32_t)u;
	} else if (strcmp(key, "hostname") == 0) {
		if (!valid_hostname(val))
			goto bad;
		snprintf(s->hostname, sizeof(s->hostname), "%s", val);
	} else if (strcmp(key, "ipv4") == 0) {
		if (strcmp(val, "none") == 0)
			s->has_ipv4 = false;
		else if (inet_pton(AF_INET, val, s->ipv4) == 1)
			s->has_ipv4 = true;
		else
			goto bad;
	} else if (strcmp(key, "rollback-pre8") == 0) {
		if (parse_bool(val, &s->rollback_pre8) != 0)
			goto bad;
	} else if (strcmp(key, "reset-signer") == 0) {
		if (parse_bool(val, &s->reset_signer) != 0)
			goto bad;
	} else if (strcmp(key, "auto-registration") == 0) {
		if (parse_bool(val, &s->auto_registration) != 0)
			goto bad;
	} else if (strcmp(key, "keep-publications") == 0) {
		if (parse_uint(val, 1, 1000, &u) != 0)
			goto bad;
		s->keep_publications = (unsigned)u;
	} else if (strcmp(key, "key-bits") == 0) {
		if (parse_uint(val, 1024, 4096, &u) != 0 || !valid_key_bits(u))
			goto bad;
		s->key_bits = (unsigned)u;
	} else {
		return trust_errf(err, TRUST_ENOTFOUND, "unknown setting '%s'", key);
	}
	return 0;
bad:
	return trust_errf(err, TRUST_EINVAL, "setting %s: bad value '%s' (%s)", key, val,
		strcmp(key, "security-mode") == 0 ? "non-secure or mixed" :
		strcmp(key, "itl-signer") == 0 ? "callmanager or itlrecovery" :
		strcmp(key, "hash") == 0 ? "sha1 or sha512" :
		strcmp(key, "tftp-role") == 0 ? "TFTP or CCM+TFTP" :
		strcmp(key, "tvs-ttl") == 0 ? "seconds, at least 1" :
		strcmp(key, "hostname") == 0 ? "letters, digits, '-' and '.', at most 63" :
		strcmp(key, "ipv4") == 0 ? "dotted IPv4 address or none" :
		strcmp(key, "keep-publications") == 0 ? "1 to 1000" :
		strcmp(key, "key-bits") == 0 ? "1024, 2048, 3072 or 4096" : "yes or no");
}

const char *
store_setting_get(const struct store_settings *s, unsigned i, char *buf, size_t n)
{
	char ip[INET_ADDRSTRLEN];

	if (i >= NSETTINGS)
		return NULL;
	switch (i) {
	case 0: snprintf(buf, n, "%s", s->security_mode == MODE_MIXED ? "mixed" : "non-secure"); break;
	case 1: snprintf(buf, n, "%s", s->itl_signer == SIGNER_ITLRECOVERY ? "itlrecovery" : "callmanager"); break;
	case 2: snprintf(buf, n, "%s", s->hash == TRUST_HASH_SHA512 ? "sha512" : "sha1"); break;
	case 3: snprintf(buf, n, "%s", trust_role_name(s->tftp_role)); break;
	case 4: snprintf(buf, n, "%u", (unsigned)s->tvs_ttl); break;
	case 5: snprintf(buf, n, "%s", s->hostname); break;
	case 6:
		if (s->has_ipv4)
			inet_ntop(AF_INET, s->ipv4, ip, sizeof(ip));
		snprintf(buf, n, "%s", s->has_ipv4 ? ip : "none");
		break;
	case 7: snprintf(buf, n, "%s", s->rollback_pre8 ? "yes" : "no"); break;
	case 8: snprintf(buf, n, "%s", s->reset_signer ? "yes" : "no"); break;
	case 9: snprintf(buf, n, "%u", s->keep_publications); break;
	case 10: snprintf(buf, n, "%u", s->key_bits); break;
	case 11: snprintf(buf, n, "%s", s->auto_registration ? "yes" : "no"); break;
	}
	return setting_keys[i];
}

int
store_settings_check_change(const struct store_settings *old, const struct store_settings *new,
	struct trust_err *err)
{
	if (new->security_mode != MODE_MIXED || !new->auto_registration)
		return 0;
	if (old->security_mode != MODE_MIXED)
		return trust_errf(err, TRUST_EINVAL, "refusing to switch to mixed mode while "
			"auto-registration is on (phones that register themselves get no "
			"configuration of their own to authenticate); turn it off first: "
			"tvsctl set store auto-registration no");
	if (!old->auto_registration)
		return trust_errf(err, TRUST_EINVAL, "refusing to turn auto-registration on in "
			"mixed mode (phones that register themselves get no configuration of their "
			"own to authenticate); switch to non-secure mode first: "
			"tvsctl utils ctl set-cluster non-secure-mode");
	return 0;
}

static void
settings_default(struct store_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->security_mode = MODE_NON_SECURE;
	s->itl_signer = SIGNER_CALLMANAGER;
	s->hash = TRUST_HASH_SHA1;
	s->tftp_role = TRUST_ROLE_CCM_TFTP;
	s->tvs_ttl = 86400;
	s->keep_publications = 5;
	s->key_bits = 2048;
	s->auto_registration = true;
}

/* ---- paths, locks, objects ---------------------------------------------- */

static int
path_of(char *out, size_t n, struct trust_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
path_of(char *out, size_t n, struct trust_err *err, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n)
		return trust_errf(err, TRUST_EINVAL, "path too long under %.200s", out);
	return 0;
}

static int
object_path(const char *dir, const struct store_object *o, const char *ext, char *out,
	size_t n, struct trust_err *err)
{
	return path_of(out, n, err, "%s/objects/%s.%s", dir, o->sha256, ext);
}

static void
sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[32];

	EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL);
	trust_hex(md, sizeof(md), out);
}

static bool
valid_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
			return false;
	return true;
}

/*
 * Reads a blob and checks it is what its name says. *missing tells a
 * caller that may retry (a concurrent gc) that the blob is not there.
 */
static int
object_read(const char *dir, const struct store_object *o, const char *ext,
	struct trust_buf *out, bool *missing, struct trust_err *err)
{
	char path[PATH_MAX], got[65];
	struct trust_err e2;
	int r;

	if (missing != NULL)
		*missing = false;
	if ((r = object_path(dir, o, ext, path, sizeof(path), err)) != 0)
		return r;
	r = trust_file_read(path, STORE_BLOB_MAX, out, &e2);
	if (r == TRUST_ENOTFOUND) {
		if (missing != NULL)
			*missing = true;
		return trust_errf(err, TRUST_ESTORE,
			"trust store %s is half-written: objects/%s.%s named by STORE is missing",
			dir, o->sha256, ext);
	}
	if (r != 0)
		return trust_errf(err, TRUST_ESTORE, "trust store %s: %s", dir, e2.msg);
	sha256_hex(out->data, out->len, got);
	if (strcmp(got, o->sha256) != 0) {
		trust_buf_wipe(out);
		return trust_errf(err, TRUST_ESTORE,
			"trust store %s is corrupt: objects/%s.%s has SHA-256 %s",
			dir, o->sha256, ext, got);
	}
	return 0;
}

/* Content-addressed: a blob that is already there with the right bytes is
 * kept, anything else is (re)written atomically. */
static int
object_put(const char *dir, const void *p, size_t n, const char *ext, unsigned mode,
	struct store_object *o, struct trust_err *err)
{
	char path[PATH_MAX];
	struct trust_buf old;
	struct trust_err e2;
	int r;

	sha256_hex(p, n, o->sha256);
	if ((r = object_path(dir, o, ext, path, sizeof(path), err)) != 0)
		return r;
	if (object_read(dir, o, ext, &old, NULL, &e2) == 0) {
		trust_buf_wipe(&old);
		return 0;
	}
	return trust_file_write_atomic(path, p, n, mode, err);
}

static int
lock_take(const char *dir, struct trust_err *err)
{
	char path[PATH_MAX], pid[32] = "";
	ssize_t n;
	int fd, r;

	if ((r = path_of(path, sizeof(path), err, "%s/lock", dir)) != 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return trust_errf(err, errno == ENOENT ? TRUST_ENOTFOUND : TRUST_EIO,
			"%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK && pid[0] != '\0')
			return trust_errf(err, TRUST_ELOCKED,
				"trust store %s is locked by another process (pid %s); try again when it is done",
				dir, pid);
		if (e == EWOULDBLOCK)
			return trust_errf(err, TRUST_ELOCKED,
				"trust store %s is locked by another process; try again when it is done", dir);
		return trust_errf(err, TRUST_EIO, "lock %s: %s", path, strerror(e));
	}
	/* the pid is only a hint for the message above; the flock is the lock */
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, strlen(pid), 0) < 0)
		(void)0;
	return fd;
}

/* ---- the index ---------------------------------------------------------- */

static int
index_format(const struct trust_store *st, uint64_t generation, struct trust_buf *b)
{
	char val[STORE_NAME_MAX + 16], sum[65];
	const char *key;

	trust_buf_printf(b, "tvs-store %d\ngeneration %llu\n", STORE_VERSION,
		(unsigned long long)generation);
	for (unsigned i = 0; (key = store_setting_get(&st->set, i, val, sizeof(val))) != NULL; i++)
		trust_buf_printf(b, "%s %s\n", key, val);
	for (int u = 0; u < UNIT_COUNT; u++)
		trust_buf_printf(b, "own %s %s %s\n", unit_names[u], st->own[u].cert.sha256,
			st->own[u].key.sha256);
	for (size_t i = 0; i < st->ntrusted; i++) {
		const struct store_trusted *t = &st->trusted[i];

		trust_buf_printf(b, "trust %s ", t->name);
		for (unsigned k = 0; k < t->nroles; k++)
			trust_buf_printf(b, "%s%u", k ? "," : "", t->roles[k]);
		trust_buf_printf(b, " %u %s\n", (unsigned)t->ttl, t->cert.sha256);
	}
	for (size_t i = 0; i < st->nphones; i++)
		trust_buf_printf(b, "phone %s %s\n", st->phones[i].name, st->phones[i].cert.sha256);
	trust_buf_printf(b, "end\n");
	if (b->failed)
		return TRUST_ENOMEM;
	sha256_hex(b->data, b->len, sum);
	return trust_buf_printf(b, "sha256 %s\n", sum);
}

struct index_parser {
	const char *dir;
	unsigned line;
	bool seen_setting[NSETTINGS];
	bool seen_own[UNIT_COUNT];
	bool seen_generation;
};

static int
parse_roles(const char *s, struct store_trusted *t)
{
	char copy[128], *save = NULL, *tok;

	if (snprintf(copy, sizeof(copy), "%s", s) >= (int)sizeof(copy))
		return -1;
	t->nroles = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long v;

		if (t->nroles == 8 || parse_uint(tok, 0, 65535, &v) != 0)
			return -1;
		t->roles[t->nroles++] = (uint16_t)v;
	}
	return t->nroles ? 0 : -1;
}

static void *
grow(void *p, size_t n, size_t size)
{
	/* arrays grow by powers of two; n is the count before the append */
	if (n != 0 && (n & (n - 1)) != 0)
		return p;
	return realloc(p, (n ? 2 * n : 8) * size);
}

static int
parse_entry(struct index_parser *ip, struct trust_store *st, char **w, int nw,
	struct trust_err *err)
{
	if (strcmp(w[0], "own") == 0 && nw == 4) {
		int u = store_unit_parse(w[1]);

		if (u < 0 || ip->seen_own[u] || !valid_hex64(w[2]) || !valid_hex64(w[3]))
			goto bad;
		ip->seen_own[u] = true;
		snprintf(st->own[u].cert.sha256, 65, "%s", w[2]);
		snprintf(st->own[u].key.sha256, 65, "%s", w[3]);
	} else if (strcmp(w[0], "trust") == 0 && nw == 5) {
		struct store_trusted t = { 0 };
		unsigned long ttl;
		void *p;

		if (strlen(w[1]) >= STORE_NAME_MAX || store_trust_find(st, w[1]) != NULL ||
		    parse_roles(w[2], &t) != 0 || parse_uint(w[3], 0, UINT32_MAX, &ttl) != 0 ||
		    !valid_hex64(w[4]))
			goto bad;
		snprintf(t.name, sizeof(t.name), "%s", w[1]);
		t.ttl = (uint32_t)ttl;
		snprintf(t.cert.sha256, 65, "%s", w[4]);
		if ((p = grow(st->trusted, st->ntrusted, sizeof(t))) == NULL)
			return trust_errf(err, TRUST_ENOMEM, "out of memory");
		st->trusted = p;
		st->trusted[st->ntrusted++] = t;
	} else if (strcmp(w[0], "phone") == 0 && nw == 3) {
		struct store_phone ph = { 0 };
		void *p;

		if (strlen(w[1]) >= STORE_NAME_MAX || store_phone_find(st, w[1]) != NULL ||
		    !valid_hex64(w[2]))
			goto bad;
		snprintf(ph.name, sizeof(ph.name), "%s", w[1]);
		snprintf(ph.cert.sha256, 65, "%s", w[2]);
		if ((p = grow(st->phones, st->nphones, sizeof(ph))) == NULL)
			return trust_errf(err, TRUST_ENOMEM, "out of memory");
		st->phones = p;
		st->phones[st->nphones++] = ph;
	} else {
		goto bad;
	}
	return 0;
bad:
	return trust_errf(err, TRUST_ESTORE, "trust store %s: STORE line %u: bad '%s' entry",
		ip->dir, ip->line, w[0]);
}

static int
parse_line(struct index_parser *ip, struct trust_store *st, char *line, struct trust_err *err)
{
	char *w[6], *save = NULL;
	struct trust_err e2;
	int nw = 0;

	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (nw == 6)
			return trust_errf(err, TRUST_ESTORE,
				"trust store %s: STORE line %u: too many fields", ip->dir, ip->line);
		w[nw++] = t;
	}
	if (nw == 0)
		return trust_errf(err, TRUST_ESTORE, "trust store %s: STORE line %u is empty",
			ip->dir, ip->line);
	if (strcmp(w[0], "generation") == 0) {
		unsigned long long g;
		char *end;

		errno = 0;
		g = nw == 2 && isdigit((unsigned char)w[1][0]) ? strtoull(w[1], &end, 10) : 0;
		if (ip->seen_generation || nw != 2 || !isdigit((unsigned char)w[1][0]) ||
		    errno != 0 || *end != '\0')
			return trust_errf(err, TRUST_ESTORE,
				"trust store %s: STORE line %u: bad generation", ip->dir, ip->line);
		ip->seen_generation = true;
		st->generation = g;
		return 0;
	}
	for (unsigned i = 0; i < NSETTINGS; i++) {
		if (strcmp(w[0], setting_keys[i]) != 0)
			continue;
		if (nw != 2 || ip->seen_setting[i] ||
		    store_setting_set(&st->set, w[0], w[1], &e2) != 0)
			return trust_errf(err, TRUST_ESTORE, "trust store %s: STORE line %u: %s",
				ip->dir, ip->line, nw != 2 ? "expected one value" :
				ip->seen_setting[i] ? "setting given twice" : e2.msg);
		ip->seen_setting[i] = true;
		return 0;
	}
	return parse_entry(ip, st, w, nw, err);
}

/* First line and checksum line: what makes a file a complete index. */
static int
index_check_frame(const char *dir, char *text, size_t len, size_t *body_len,
	struct trust_err *err)
{
	char want[65], *last, *nl;
	unsigned long v;

	nl = memchr(text, '\n', len);
	if (nl == NULL || strncmp(text, "tvs-store ", 10) != 0)
		return trust_errf(err, TRUST_ESTORE,
			"trust store %s: STORE is not a trust store index%s", dir,
			len == 0 ? " (it is empty)" : " (its first line is not 'tvs-store <version>')");
	*nl = '\0';
	if (parse_uint(text + 10, 0, ULONG_MAX, &v) != 0 || v != STORE_VERSION)
		return trust_errf(err, TRUST_ESTORE,
			"trust store %s: unknown store version '%.20s' (this program reads version %d)",
			dir, text + 10, STORE_VERSION);
	*nl = '\n';
	if (text[len - 1] != '\n')
		return trust_errf(err, TRUST_ESTORE,
			"trust store %s: STORE is truncated (it does not end with a complete line)", dir);
	text[len - 1] = '\0';
	last = strrchr(text, '\n');
	last = last ? last + 1 : text;
	if (strncmp(last, "sha256 ", 7) != 0 || !valid_hex64(last + 7))
		return trust_errf(err, TRUST_ESTORE,
			"trust store %s: STORE is truncated (its last line is not the sha256 checksum)",
			dir);
	*body_len = (size_t)(last - text);
	sha256_hex(text, *body_len, want);
	if (strcmp(want, last + 7) != 0)
		return trust_errf(err, TRUST_ESTORE,
			"trust store %s: STORE checksum mismatch (the index was changed or damaged; "
			"restore it from a backup)", dir);
	return 0;
}

static int
index_parse(const char *dir, char *text, size_t len, struct trust_store *st,
	struct trust_err *err)
{
	struct index_parser ip = { .dir = dir, .line = 1 };
	char *p, *nl, *end;
	size_t body = 0;
	bool ended = false;
	int r;

	if ((r = index_check_frame(dir, text, len, &body, err)) != 0)
		return r;
	end = text + body;
	p = memchr(text, '\n', len) + 1;
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		*nl = '\0';
		ip.line++;
		if (ended)
			return trust_errf(err, TRUST_ESTORE,
				"trust store %s: STORE line %u: text after 'end'", dir, ip.line);
		if (strcmp(p, "end") == 0) {
			ended = true;
			continue;
		}
		if ((r = parse_line(&ip, st, p, err)) != 0)
			return r;
	}
	if (!ended)
		return trust_errf(err, TRUST_ESTORE, "trust store %s: STORE has no 'end' line", dir);
	if (!ip.seen_generation)
		return trust_errf(err, TRUST_ESTORE, "trust store %s: STORE has no generation", dir);
	for (unsigned i = 0; i < NSETTINGS_REQUIRED; i++)
		if (!ip.seen_setting[i])
			return trust_errf(err, TRUST_ESTORE,
				"trust store %s: STORE lacks the setting '%s'", dir, setting_keys[i]);
	for (int u = 0; u < UNIT_COUNT; u++)
		if (!ip.seen_own[u])
			return trust_errf(err, TRUST_ESTORE,
				"trust store %s: STORE has no certificate for unit %s", dir, unit_names[u]);
	return 0;
}

/* ---- open, close, commit ------------------------------------------------ */

static void
store_reset(struct trust_store *st)
{
	free(st->trusted);
	free(st->phones);
	st->trusted = NULL;
	st->phones = NULL;
	st->ntrusted = st->nphones = 0;
	st->generation = 0;
	memset(st->own, 0, sizeof(st->own));
	settings_default(&st->set);
}

static int
check_object(const struct trust_store *st, const struct store_object *o, const char *ext,
	bool *missing, struct trust_err *err)
{
	struct trust_buf b;
	int r;

	if ((r = object_read(st->dir, o, ext, &b, missing, err)) == 0)
		trust_buf_wipe(&b);
	return r;
}

static int
check_objects(const struct trust_store *st, bool *missing, struct trust_err *err)
{
	int r;

	for (int u = 0; u < UNIT_COUNT; u++)
		if ((r = check_object(st, &st->own[u].cert, "der", missing, err)) != 0 ||
		    (r = check_object(st, &st->own[u].key, "key", missing, err)) != 0)
			return r;
	for (size_t i = 0; i < st->ntrusted; i++)
		if ((r = check_object(st, &st->trusted[i].cert, "der", missing, err)) != 0)
			return r;
	for (size_t i = 0; i < st->nphones; i++)
		if ((r = check_object(st, &st->phones[i].cert, "der", missing, err)) != 0)
			return r;
	return 0;
}

static bool
index_unchanged(const char *path, const struct trust_buf *seen)
{
	struct trust_buf now;
	bool same;

	if (trust_file_read(path, STORE_INDEX_MAX, &now, NULL) != 0)
		return true;
	same = now.len == seen->len && memcmp(now.data, seen->data, now.len) == 0;
	trust_buf_free(&now);
	return same;
}

static int
store_load(struct trust_store *st, struct trust_err *err)
{
	char path[PATH_MAX];
	struct trust_buf idx, copy;
	bool missing = false;
	int r;

	if ((r = path_of(path, sizeof(path), err, "%s/STORE", st->dir)) != 0)
		return r;
	for (int tries = 1;; tries++) {
		r = trust_file_read(path, STORE_INDEX_MAX, &idx, err);
		if (r == TRUST_ENOTFOUND)
			return trust_errf(err, TRUST_ENOTFOUND, "no trust store at %s (STORE is missing)",
				st->dir);
		if (r != 0)
			return r;
		store_reset(st);
		trust_buf_init(&copy);
		trust_buf_put(&copy, idx.data, idx.len);	/* parsing writes NULs */
		r = idx.len == 0 ? trust_errf(err, TRUST_ESTORE,
			"trust store %s: STORE is empty (truncated)", st->dir) :
			index_parse(st->dir, (char *)idx.data, idx.len, st, err);
		if (r == 0)
			r = check_objects(st, &missing, err);
		trust_buf_free(&idx);
		/*
		 * A missing blob means a half-written store only if the index did
		 * not change meanwhile: a writer's gc may have removed what the
		 * index we read named.
		 */
		if (r == 0 || !missing || tries == STORE_OPEN_TRIES || copy.failed ||
		    index_unchanged(path, &copy)) {
			trust_buf_free(&copy);
			break;
		}
		trust_buf_free(&copy);
	}
	if (r != 0)
		store_reset(st);
	return r;
}

int
store_open(const char *dir, int flags, struct trust_store *st, struct trust_err *err)
{
	struct stat sb;
	int r;

	memset(st, 0, sizeof(*st));
	st->lockfd = -1;
	settings_default(&st->set);
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return trust_errf(err, TRUST_ENOTFOUND, "no trust store at %s (%s)", dir,
			errno == 0 || S_ISDIR(sb.st_mode) ? "not a directory" : strerror(errno));
	if ((st->dir = strdup(dir)) == NULL)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	if (flags & STORE_LOCK) {
		if ((r = lock_take(dir, err)) < 0)
			goto fail;
		st->lockfd = r;
	}
	if ((r = store_load(st, err)) != 0)
		goto fail;
	return 0;
fail:
	store_close(st);
	return r;
}

void
store_close(struct trust_store *st)
{
	if (st->lockfd >= 0)
		close(st->lockfd);	/* releases the flock */
	st->lockfd = -1;
	free(st->dir);
	st->dir = NULL;
	store_reset(st);
}

int
store_commit(struct trust_store *st, struct trust_err *err)
{
	char path[PATH_MAX];
	struct trust_buf b;
	int r;

	if (st->lockfd < 0)
		return trust_errf(err, TRUST_EINVAL,
			"trust store %s was opened read-only; changes need the lock", st->dir);
	if ((r = path_of(path, sizeof(path), err, "%s/STORE", st->dir)) != 0)
		return r;
	trust_buf_init(&b);
	if (index_format(st, st->generation + 1, &b) != 0) {
		trust_buf_free(&b);
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	}
	r = trust_file_write_atomic(path, b.data, b.len, 0644, err);
	trust_buf_free(&b);
	if (r == 0)
		st->generation++;
	return r;
}

/* ---- blob access -------------------------------------------------------- */

int
store_load_cert(const struct trust_store *st, const struct store_object *o,
	struct trust_cert *c, struct trust_err *err)
{
	struct trust_buf b;
	int r;

	struct trust_err e2;

	if ((r = object_read(st->dir, o, "der", &b, NULL, err)) != 0)
		return r;
	r = trust_cert_from_der(b.data, b.len, c, &e2);
	trust_buf_free(&b);
	if (r != 0)
		return trust_errf(err, TRUST_ESTORE, "trust store %s: objects/%s.der: %s",
			st->dir, o->sha256, e2.msg);
	return 0;
}

int
store_load_key(const struct trust_store *st, const struct store_object *o,
	EVP_PKEY **key, struct trust_err *err)
{
	struct trust_buf b;
	BIO *bio;
	int r;

	*key = NULL;
	if ((r = object_read(st->dir, o, "key", &b, NULL, err)) != 0)
		return r;
	bio = BIO_new_mem_buf(b.data, (int)b.len);
	if (bio != NULL)
		*key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	trust_buf_wipe(&b);
	if (*key == NULL)
		return trust_err_openssl(err, TRUST_ESTORE, "trust store key object");
	return 0;
}

int
store_own_cert(const struct trust_store *st, enum store_unit u, struct trust_cert *c,
	struct trust_err *err)
{
	if ((unsigned)u >= UNIT_COUNT)
		return trust_errf(err, TRUST_EINVAL, "no unit %d", (int)u);
	return store_load_cert(st, &st->own[u].cert, c, err);
}

int
store_own_key(const struct trust_store *st, enum store_unit u, EVP_PKEY **key,
	struct trust_err *err)
{
	if ((unsigned)u >= UNIT_COUNT)
		return trust_errf(err, TRUST_EINVAL, "no unit %d", (int)u);
	return store_load_key(st, &st->own[u].key, key, err);
}

/* ---- changes ------------------------------------------------------------ */

static int
need_lock(const struct trust_store *st, struct trust_err *err)
{
	if (st->lockfd < 0)
		return trust_errf(err, TRUST_EINVAL,
			"trust store %s was opened read-only; changes need the lock", st->dir);
	return 0;
}

int
store_own_set(struct trust_store *st, enum store_unit u, const struct trust_cert *c,
	EVP_PKEY *key, struct trust_err *err)
{
	struct store_own own;
	struct trust_buf pem;
	int r;

	if ((r = need_lock(st, err)) != 0)
		return r;
	if ((unsigned)u >= UNIT_COUNT)
		return trust_errf(err, TRUST_EINVAL, "no unit %d", (int)u);
	if (X509_check_private_key(c->x509, key) != 1)
		return trust_err_openssl(err, TRUST_EINVAL,
			"the private key does not belong to the certificate");
	trust_buf_init(&pem);
	if (trust_key_pem(key, &pem) != 0) {
		trust_buf_wipe(&pem);
		return trust_errf(err, TRUST_ECRYPTO, "cannot encode the %s key", unit_names[u]);
	}
	r = object_put(st->dir, pem.data, pem.len, "key", 0600, &own.key, err);
	trust_buf_wipe(&pem);
	if (r == 0)
		r = object_put(st->dir, c->der, c->der_len, "der", 0644, &own.cert, err);
	if (r == 0)
		st->own[u] = own;
	return r;
}

/* CUCM-like names: CallManager and TVS carry the host name, ITLRecovery and
 * CAPF a prefix; OU says which unit a certificate belongs to. */
static void
own_params(const struct trust_store *st, enum store_unit u, char *cn, size_t n,
	struct trust_cert_params *p)
{
	const char *h = st->set.hostname;

	memset(p, 0, sizeof(*p));
	switch (u) {
	case UNIT_ITLRECOVERY: snprintf(cn, n, "ITLRECOVERY_%s", h); break;
	case UNIT_CAPF: snprintf(cn, n, "CAPF-%s", h); break;
	default: snprintf(cn, n, "%s", h); break;
	}
	p->cn = cn;
	p->ou = unit_names[u];
	p->o = "TVS Appliance";
	/* CUCM 12 gives ITLRecovery 20 years: it is the key of last resort */
	p->days = u == UNIT_ITLRECOVERY ? 7300 : 1825;
	p->ca = u == UNIT_CAPF;
}

int
store_own_regen(struct trust_store *st, enum store_unit u, struct trust_err *err)
{
	struct trust_cert_params p;
	struct trust_cert c = { 0 };
	char cn[STORE_NAME_MAX + 16];
	EVP_PKEY *key;
	int r;

	if ((r = need_lock(st, err)) != 0)
		return r;
	if ((unsigned)u >= UNIT_COUNT)
		return trust_errf(err, TRUST_EINVAL, "no unit %d", (int)u);
	if ((key = trust_key_generate_rsa(st->set.key_bits, err)) == NULL)
		return err ? err->code : TRUST_ECRYPTO;
	own_params(st, u, cn, sizeof(cn), &p);
	r = trust_cert_selfsign(key, &p, &c, err);
	if (r == 0)
		r = store_own_set(st, u, &c, key, err);
	trust_cert_free(&c);
	EVP_PKEY_free(key);
	return r;
}

static bool
valid_entry_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= STORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-@+", s[i]))
			return false;
	return true;
}

const struct store_trusted *
store_trust_find(const struct trust_store *st, const char *name)
{
	for (size_t i = 0; i < st->ntrusted; i++)
		if (strcmp(st->trusted[i].name, name) == 0)
			return &st->trusted[i];
	return NULL;
}

const struct store_phone *
store_phone_find(const struct trust_store *st, const char *name)
{
	for (size_t i = 0; i < st->nphones; i++)
		if (strcasecmp(st->phones[i].name, name) == 0)
			return &st->phones[i];
	return NULL;
}

int
store_trust_add(struct trust_store *st, const char *name, const uint16_t *roles,
	unsigned nroles, uint32_t ttl, const struct trust_cert *c, struct trust_err *err)
{
	struct store_trusted t = { 0 };
	char hex[65];
	void *p;
	int r;

	if ((r = need_lock(st, err)) != 0)
		return r;
	if (!valid_entry_name(name))
		return trust_errf(err, TRUST_EINVAL,
			"bad name '%s': use 1 to 63 letters, digits and ._-@+", name);
	if (nroles == 0 || nroles > 8)
		return trust_errf(err, TRUST_EINVAL, "a trusted certificate needs 1 to 8 roles, not %u",
			nroles);
	if (store_trust_find(st, name) != NULL)
		return trust_errf(err, TRUST_EEXIST, "a trusted certificate named '%s' exists already",
			name);
	trust_hex(c->sha256, 32, hex);
	for (size_t i = 0; i < st->ntrusted; i++)
		if (strcmp(st->trusted[i].cert.sha256, hex) == 0)
			return trust_errf(err, TRUST_EEXIST,
				"this certificate is trusted already as '%s'; delete that entry to change its roles",
				st->trusted[i].name);
	snprintf(t.name, sizeof(t.name), "%s", name);
	for (unsigned i = 0; i < nroles; i++) {
		bool dup = false;

		for (unsigned k = 0; k < t.nroles; k++)
			dup |= t.roles[k] == roles[i];
		if (!dup)
			t.roles[t.nroles++] = roles[i];
	}
	t.ttl = ttl;
	if ((r = object_put(st->dir, c->der, c->der_len, "der", 0644, &t.cert, err)) != 0)
		return r;
	if ((p = grow(st->trusted, st->ntrusted, sizeof(t))) == NULL)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	st->trusted = p;
	st->trusted[st->ntrusted++] = t;
	return 0;
}

int
store_trust_delete(struct trust_store *st, const char *name, struct trust_err *err)
{
	const struct store_trusted *t;
	size_t i;
	int r;

	if ((r = need_lock(st, err)) != 0)
		return r;
	if ((t = store_trust_find(st, name)) == NULL)
		return trust_errf(err, TRUST_ENOTFOUND, "no trusted certificate named '%s'", name);
	i = (size_t)(t - st->trusted);
	memmove(&st->trusted[i], &st->trusted[i + 1], (st->ntrusted - i - 1) * sizeof(*t));
	st->ntrusted--;
	return 0;
}

static bool
valid_phone_name(const char *s)
{
	if (strlen(s) != 15 || strncasecmp(s, "SEP", 3) != 0)
		return false;
	for (int i = 3; i < 15; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

int
store_phone_add(struct trust_store *st, const char *name, const struct trust_cert *c,
	struct trust_err *err)
{
	struct store_phone ph = { 0 };
	struct store_phone *old;
	void *p;
	int r;

	if ((r = need_lock(st, err)) != 0)
		return r;
	if (!valid_phone_name(name))
		return trust_errf(err, TRUST_EINVAL,
			"bad phone name '%s': expected SEP followed by the 12 hex digits of its MAC", name);
	if (c->key_type != EVP_PKEY_RSA)
		return trust_errf(err, TRUST_EINVAL,
			"the certificate of %s has no RSA key; encrypted configs need RSA", name);
	/* the index and config file names use SEP + upper-case MAC */
	ph.name[0] = 'S', ph.name[1] = 'E', ph.name[2] = 'P';
	for (int i = 3; i < 15; i++)
		ph.name[i] = (char)toupper((unsigned char)name[i]);
	if ((r = object_put(st->dir, c->der, c->der_len, "der", 0644, &ph.cert, err)) != 0)
		return r;
	old = (struct store_phone *)store_phone_find(st, ph.name);
	if (old != NULL) {
		*old = ph;	/* `set phone cert` again replaces the certificate */
		return 0;
	}
	if ((p = grow(st->phones, st->nphones, sizeof(ph))) == NULL)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	st->phones = p;
	st->phones[st->nphones++] = ph;
	return 0;
}

int
store_phone_delete(struct trust_store *st, const char *name, struct trust_err *err)
{
	const struct store_phone *ph;
	size_t i;
	int r;

	if ((r = need_lock(st, err)) != 0)
		return r;
	if ((ph = store_phone_find(st, name)) == NULL)
		return trust_errf(err, TRUST_ENOTFOUND, "no certificate registered for phone '%s'",
			name);
	i = (size_t)(ph - st->phones);
	memmove(&st->phones[i], &st->phones[i + 1], (st->nphones - i - 1) * sizeof(*ph));
	st->nphones--;
	return 0;
}

/* ---- garbage collection ------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "<sha>.der" / "<sha>.key" names this store's index refers to. */
static char **
referenced_names(const struct trust_store *st, size_t *n)
{
	size_t cap = 2 * UNIT_COUNT + st->ntrusted + st->nphones, k = 0;
	char **v = calloc(cap, sizeof(*v));

	if (v == NULL)
		return NULL;
	for (int u = 0; u < UNIT_COUNT; u++) {
		asprintf(&v[k++], "%s.der", st->own[u].cert.sha256);
		asprintf(&v[k++], "%s.key", st->own[u].key.sha256);
	}
	for (size_t i = 0; i < st->ntrusted; i++)
		asprintf(&v[k++], "%s.der", st->trusted[i].cert.sha256);
	for (size_t i = 0; i < st->nphones; i++)
		asprintf(&v[k++], "%s.der", st->phones[i].cert.sha256);
	for (size_t i = 0; i < k; i++) {
		if (v[i] == NULL) {
			for (size_t j = 0; j < k; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	}
	qsort(v, k, sizeof(*v), cmp_str);
	*n = k;
	return v;
}

static bool
is_object_name(const char *s)
{
	char hex[65];

	if (strlen(s) != 68 || (strcmp(s + 64, ".der") != 0 && strcmp(s + 64, ".key") != 0))
		return false;
	memcpy(hex, s, 64);
	hex[64] = '\0';
	return valid_hex64(hex);
}

/* Removes from dir what keep() says is garbage; returns the count. */
static int
sweep(const char *path, bool (*garbage)(const char *, void *), void *arg,
	struct trust_err *err)
{
	struct dirent *de;
	int count = 0, dfd;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return trust_errf(err, TRUST_EIO, "%s: %s", path, strerror(errno));
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !garbage(de->d_name, arg))
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0)
			count++;
		else if (errno != ENOENT) {
			int e = errno;

			closedir(d);
			return trust_errf(err, TRUST_EIO, "%s/%s: %s", path, de->d_name, strerror(e));
		}
	}
	closedir(d);
	return count;
}

struct refs {
	char **v;
	size_t n;
};

static bool
object_garbage(const char *name, void *arg)
{
	const struct refs *r = arg;
	const char *key = name;

	/* temp files of a writer that died; we hold the lock, so no one else writes */
	if (strstr(name, ".tmp.") != NULL)
		return true;
	return is_object_name(name) && bsearch(&key, r->v, r->n, sizeof(*r->v), cmp_str) == NULL;
}

static bool
index_temp(const char *name, void *arg)
{
	(void)arg;
	return strncmp(name, "STORE.tmp.", 10) == 0;
}

int
store_gc(struct trust_store *st, struct trust_err *err)
{
	char path[PATH_MAX];
	struct refs refs;
	int r, n;

	if ((r = need_lock(st, err)) != 0)
		return r;
	if ((refs.v = referenced_names(st, &refs.n)) == NULL)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	r = path_of(path, sizeof(path), err, "%s/objects", st->dir);
	n = r == 0 ? sweep(path, object_garbage, &refs, err) : r;
	for (size_t i = 0; i < refs.n; i++)
		free(refs.v[i]);
	free(refs.v);
	if (n < 0)
		return n;
	if ((r = sweep(st->dir, index_temp, NULL, err)) < 0)
		return r;
	n += r;
	if (n > 0 && (r = trust_fsync_dir(path, err)) != 0)
		return r;
	return n;
}

/* ---- init --------------------------------------------------------------- */

int
store_mkdir_p(const char *dir, unsigned mode, struct trust_err *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return trust_errf(err, TRUST_EINVAL, "bad store directory '%s'", dir);
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return trust_errf(err, TRUST_EIO, "mkdir %s: %s", buf, strerror(errno));
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

/* The generation of an index we are about to replace, read without any
 * check: a forced init continues the numbering so that publications of the
 * new store sort after the old ones. */
static uint64_t
old_generation(const char *dir)
{
	char path[PATH_MAX], *g;
	struct trust_buf b;
	uint64_t gen = 0;

	snprintf(path, sizeof(path), "%s/STORE", dir);
	if (trust_file_read(path, STORE_INDEX_MAX, &b, NULL) != 0)
		return 0;
	if (trust_buf_put_u8(&b, 0) == 0 && (g = strstr((char *)b.data, "\ngeneration ")) != NULL)
		gen = strtoull(g + 12, NULL, 10);
	trust_buf_free(&b);
	return gen;
}

uint64_t
store_generation_hint(const char *dir)
{
	return old_generation(dir);
}

int
store_lock(const char *dir, struct trust_err *err)
{
	return lock_take(dir, err);
}

static int
init_settings(struct store_settings *s, const struct store_init_opts *o, struct trust_err *err)
{
	char host[256];

	settings_default(s);
	if (o->hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			return trust_errf(err, TRUST_EIO, "gethostname: %s", strerror(errno));
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';	/* CUCM uses the short name */
	} else {
		snprintf(host, sizeof(host), "%s", o->hostname);
	}
	if (!valid_hostname(host))
		return trust_errf(err, TRUST_EINVAL,
			"bad host name '%s': use letters, digits, '-' and '.', at most 63", host);
	snprintf(s->hostname, sizeof(s->hostname), "%.63s", host);
	if (o->key_bits != 0 && !valid_key_bits(o->key_bits))
		return trust_errf(err, TRUST_EINVAL, "bad key size %u: use 1024, 2048, 3072 or 4096",
			o->key_bits);
	if (o->key_bits != 0)
		s->key_bits = o->key_bits;
	if (o->hash != 0 && o->hash != TRUST_HASH_SHA1 && o->hash != TRUST_HASH_SHA512)
		return trust_errf(err, TRUST_EINVAL, "bad hash code %u: use SHA-1 or SHA-512", o->hash);
	if (o->hash != 0)
		s->hash = o->hash;
	s->itl_signer = o->itl_signer;
	s->has_ipv4 = o->has_ipv4;
	memcpy(s->ipv4, o->ipv4, 4);
	return 0;
}

int
store_init(const char *dir, const struct store_init_opts *o, struct trust_err *err)
{
	struct trust_store st = { .lockfd = -1 };
	char path[PATH_MAX];
	int r;

	if ((r = init_settings(&st.set, o, err)) != 0)
		return r;
	if ((r = store_mkdir_p(dir, 0700, err)) != 0 ||
	    (r = path_of(path, sizeof(path), err, "%s/objects", dir)) != 0 ||
	    (r = store_mkdir_p(path, 0700, err)) != 0)
		return r;
	if ((st.lockfd = lock_take(dir, err)) < 0)
		return st.lockfd;
	if ((st.dir = strdup(dir)) == NULL) {
		r = trust_errf(err, TRUST_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = path_of(path, sizeof(path), err, "%s/STORE", dir)) != 0)
		goto out;
	if (access(path, F_OK) == 0 && !o->force) {
		r = trust_errf(err, TRUST_EEXIST,
			"a trust store exists already at %s; replacing it needs force", dir);
		goto out;
	}
	st.generation = old_generation(dir);
	for (int u = 0; u < UNIT_COUNT; u++)
		if ((r = store_own_regen(&st, (enum store_unit)u, err)) != 0)
			goto out;
	if ((r = trust_fsync_dir(dir, err)) != 0 || (r = store_commit(&st, err)) != 0)
		goto out;
	r = store_gc(&st, err);
	r = r < 0 ? r : 0;
out:
	store_close(&st);
	return r;
}
