/*
 * publish: one store generation made into the files the fast path serves
 * (PUBLICATION.md). Everything is written into gen-N.tmp.<pid>, each file
 * fsynced; the directory is fsynced and renamed to gen-N; then `current`
 * is switched by renaming a fresh symlink over it. A reader therefore sees
 * the old publication or the new one, complete, and a crash at any point
 * leaves at worst a .tmp directory that the next publish removes.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/evp.h>

#include "sign.h"
#include "publish.h"

#define CONFIG_MAX (16u << 20)
#define CONFIG_FILES_MAX 100000u
#define TVS_MEMBERS_MAX 5	/* phones take up to five TVS members */

struct pub_ctx {
	struct trust_store *st;
	const struct store_settings *set;
	int dfd;			/* the gen-N.tmp.<pid> directory */
	int prev_dfd;			/* the `current` generation, or -1 */
	struct trust_buf index;		/* PUBLICATION lines after the head */
	struct trust_cert own[UNIT_COUNT];
	EVP_PKEY *cm_key;		/* signs configs (TFTP role) */
	EVP_PKEY *list_key;		/* signs ITL and CTL */
	struct trust_cert *tvs;		/* trusted certs with the TVS role */
	const struct store_trusted **tvs_entry;
	size_t ntvs;
	uint32_t now;
	const struct publish_opts *o;
	struct publish_result *r;
	struct trust_err *err;
};

/* ---- writing files into the new generation ------------------------------ */

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Writes name (relative to the temp dir) and lists it in the index as
 * "serve" or "file". Writeback starts at once but the fsync is left to
 * fsync_listed(): a thousand fsyncs in a row each wait for a journal
 * commit, while fsyncs after the writeback mostly find nothing to do.
 */
static int
pub_put(struct pub_ctx *c, const char *kind, const char *name, const void *p, size_t n,
	unsigned mode)
{
	uint8_t md[32];
	char hex[65];
	int fd, e;

	fd = openat(c->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return trust_errf(c->err, TRUST_EIO, "publish %s: %s", name, strerror(errno));
	if (fchmod(fd, mode) != 0 || write_all(fd, p, n) != 0) {
		e = errno;
		close(fd);
		return trust_errf(c->err, TRUST_EIO, "publish %s: %s", name, strerror(e));
	}
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);	/* a hint; fsync follows */
	close(fd);
	EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL);
	trust_hex(md, sizeof(md), hex);
	if (trust_buf_printf(&c->index, "%s %s %zu %s\n", kind, name, n, hex) != 0)
		return trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	return 0;
}

/* fsync of a file or directory (flags O_DIRECTORY) under dfd. */
static int
fsync_at(int dfd, const char *name, int flags, struct trust_err *err)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | flags);
	int r = 0;

	if (fd < 0 || fsync(fd) != 0)
		r = trust_errf(err, TRUST_EIO, "fsync %s: %s", name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

/* fsync every file the index lists so far (before PUBLICATION is written). */
static int
fsync_listed(struct pub_ctx *c)
{
	char name[PATH_MAX];
	const char *p = (const char *)c->index.data, *end = p + c->index.len;
	int r;

	while (p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p)), *nl;
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (sp == NULL || nl == NULL)
			break;
		n = strcspn(sp + 1, " ");
		if (n >= sizeof(name))
			return trust_errf(c->err, TRUST_EINVAL, "publish: name too long");
		memcpy(name, sp + 1, n);
		name[n] = '\0';
		if ((r = fsync_at(c->dfd, name, 0, c->err)) != 0)
			return r;
		p = nl + 1;
	}
	return 0;
}


/* ---- signers and certificates ------------------------------------------- */

static int
load_own(struct pub_ctx *c)
{
	enum store_unit signer = store_list_signer(c->set);
	int r;

	for (int u = 0; u < UNIT_COUNT; u++)
		if ((r = store_own_cert(c->st, u, &c->own[u], c->err)) != 0)
			return r;
	if ((r = store_own_key(c->st, UNIT_CALLMANAGER, &c->cm_key, c->err)) != 0)
		return r;
	return store_own_key(c->st, signer, &c->list_key, c->err);
}

static bool
has_role(const struct store_trusted *t, unsigned role)
{
	for (unsigned i = 0; i < t->nroles; i++)
		if (t->roles[i] == role)
			return true;
	return false;
}

/* The other TVS nodes of the cluster: they go into the ITL and into the
 * <TVS> members of the default config. */
static int
load_tvs_nodes(struct pub_ctx *c)
{
	size_t n = 0;
	int r;

	for (size_t i = 0; i < c->st->ntrusted; i++)
		n += has_role(&c->st->trusted[i], TRUST_ROLE_TVS);
	c->tvs = calloc(n ? n : 1, sizeof(*c->tvs));
	c->tvs_entry = calloc(n ? n : 1, sizeof(*c->tvs_entry));
	if (c->tvs == NULL || c->tvs_entry == NULL)
		return trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->st->ntrusted; i++) {
		const struct store_trusted *t = &c->st->trusted[i];

		if (!has_role(t, TRUST_ROLE_TVS))
			continue;
		if ((r = store_load_cert(c->st, &t->cert, &c->tvs[c->ntvs], c->err)) != 0)
			return r;
		c->tvs_entry[c->ntvs++] = t;
	}
	return 0;
}

static void
signer_of(const struct pub_ctx *c, enum store_unit u, EVP_PKEY *key, struct trust_signer *s)
{
	s->cert = &c->own[u];
	s->key = key;
	s->hash = c->set->hash;
	s->signer_version = false;
}

/* ---- ITL and CTL -------------------------------------------------------- */

static void
own_entry(const struct pub_ctx *c, struct trust_list_entry *e, enum store_unit u,
	uint16_t role, bool blank)
{
	memset(e, 0, sizeof(*e));
	e->cert = blank ? NULL : &c->own[u];
	e->role = role;
	e->dns_name = c->set->hostname;
	e->has_ip = c->set->has_ipv4;
	memcpy(e->ip, c->set->ipv4, 4);
}

static size_t
itl_entries(const struct pub_ctx *c, struct trust_list_entry *e)
{
	const struct store_settings *s = c->set;
	/* FORMATS §8.8: rollback blanks the TFTP and TVS records only; the
	 * SAST records stay so that the file still verifies */
	bool blank = s->rollback_pre8;
	size_t n = 0;

	if (c->o->itl_signer_cert != NULL) {
		own_entry(c, &e[n], UNIT_ITLRECOVERY, TRUST_ROLE_SAST, false);
		e[n++].cert = c->o->itl_signer_cert;
	}
	if (s->itl_signer == SIGNER_ITLRECOVERY || s->reset_signer)
		own_entry(c, &e[n++], UNIT_ITLRECOVERY, TRUST_ROLE_SAST, false);
	own_entry(c, &e[n++], UNIT_CALLMANAGER, TRUST_ROLE_SAST, false);
	own_entry(c, &e[n++], UNIT_CALLMANAGER, s->tftp_role, blank);
	own_entry(c, &e[n++], UNIT_TVS, TRUST_ROLE_TVS, blank);
	for (size_t i = 0; i < c->ntvs; i++, n++) {
		memset(&e[n], 0, sizeof(e[n]));
		e[n].cert = blank ? NULL : &c->tvs[i];
		e[n].role = TRUST_ROLE_TVS;
		e[n].dns_name = c->tvs_entry[i]->name;
	}
	own_entry(c, &e[n++], UNIT_CAPF, TRUST_ROLE_CAPF, false);
	return n;
}

static int
too_big(struct pub_ctx *c, const char *file, size_t nrec)
{
	return trust_errf(c->err, TRUST_ETOOBIG,
		"%s would be larger than %u bytes with its %zu records (%zu trusted TVS "
		"certificates); phones cannot load it: remove TVS certificates from the trust store",
		file, TRUST_LIST_MAX, nrec, c->ntvs);
}

static int
build_itl(struct pub_ctx *c)
{
	struct trust_list_entry *e = calloc(c->ntvs + 8, sizeof(*e));
	struct trust_signer s;
	struct trust_buf out;
	size_t n;
	int r;

	if (e == NULL)
		return trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	n = itl_entries(c, e);
	signer_of(c, store_list_signer(c->set), c->list_key, &s);
	if (c->o->itl_signer_cert != NULL) {
		s.cert = c->o->itl_signer_cert;
		s.key = c->o->itl_signer_key;
	}
	trust_buf_init(&out);
	r = trust_list_build(&s, "ITLFile.tlv", c->now, e, n, &out, c->err);
	if (r == TRUST_ETOOBIG || (r == 0 && out.len > TRUST_LIST_MAX))
		r = too_big(c, "ITLFile.tlv", n);
	if (r == 0) {
		c->r->itl_size = out.len;
		r = pub_put(c, "serve", "ITLFile.tlv", out.data, out.len, 0644);
	}
	trust_buf_free(&out);
	free(e);
	return r;
}

static bool
is_server_role(unsigned role)
{
	return role == TRUST_ROLE_CCM || role == TRUST_ROLE_CCM_TFTP || role == TRUST_ROLE_TFTP;
}

/* Mixed mode (FORMATS §1.9): the SAST records (CallManager, ITLRecovery),
 * the call-control/TFTP servers, CAPF; never TVS. */
static int
build_ctl(struct pub_ctx *c)
{
	const struct store_settings *s = c->set;
	struct trust_list_entry *e;
	struct trust_cert *peers;
	struct trust_signer sg;
	struct trust_buf out;
	size_t n = 0, np = 0;
	int r = 0;

	e = calloc(c->st->ntrusted * 8 + 8, sizeof(*e));
	peers = calloc(c->st->ntrusted + 1, sizeof(*peers));
	if (e == NULL || peers == NULL) {
		free(e);
		free(peers);
		return trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	}
	own_entry(c, &e[n++], UNIT_CALLMANAGER, TRUST_ROLE_SAST, false);
	own_entry(c, &e[n++], UNIT_ITLRECOVERY, TRUST_ROLE_SAST, false);
	own_entry(c, &e[n++], UNIT_CALLMANAGER, s->tftp_role, false);
	for (size_t i = 0; i < c->st->ntrusted && r == 0; i++) {
		const struct store_trusted *t = &c->st->trusted[i];
		bool loaded = false;

		for (unsigned k = 0; k < t->nroles && r == 0; k++) {
			if (!is_server_role(t->roles[k]))
				continue;
			if (!loaded && (r = store_load_cert(c->st, &t->cert, &peers[np++], c->err)) != 0)
				break;
			loaded = true;
			memset(&e[n], 0, sizeof(e[n]));
			e[n].cert = &peers[np - 1];
			e[n].role = t->roles[k];
			e[n++].dns_name = t->name;
		}
	}
	own_entry(c, &e[n++], UNIT_CAPF, TRUST_ROLE_CAPF, false);
	trust_buf_init(&out);
	if (r == 0) {
		signer_of(c, store_list_signer(s), c->list_key, &sg);
		r = trust_list_build(&sg, "CTLFile.tlv", c->now, e, n, &out, c->err);
		if (r == TRUST_ETOOBIG || (r == 0 && out.len > TRUST_LIST_MAX))
			r = too_big(c, "CTLFile.tlv", n);
	}
	if (r == 0) {
		c->r->ctl_size = out.len;
		r = pub_put(c, "serve", "CTLFile.tlv", out.data, out.len, 0644);
	}
	trust_buf_free(&out);
	for (size_t i = 0; i < np; i++)
		trust_cert_free(&peers[i]);
	free(peers);
	free(e);
	return r;
}

/* ---- configuration files ------------------------------------------------ */

static void
tvs_address(const struct store_settings *s, char *out, size_t n)
{
	if (s->has_ipv4)
		inet_ntop(AF_INET, s->ipv4, out, (socklen_t)n);
	else
		snprintf(out, n, "%s", s->hostname);
}

/* The default config phones without their own SEP<MAC>.cnf.xml get; its
 * <TVS> block is how phones learn where to ask (FORMATS §3.1). */
static int
default_config(const struct pub_ctx *c, struct trust_buf *b)
{
	char addr[STORE_NAME_MAX];

	tvs_address(c->set, addr, sizeof(addr));
	trust_buf_printf(b,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Default>\n"
		"<callManagerGroup>\n<members>\n<member priority=\"0\">\n<callManager>\n"
		"<name>%s</name>\n<ports>\n<ethernetPhonePort>2000</ethernetPhonePort>\n"
		"<sipPort>5060</sipPort>\n<securedSipPort>5061</securedSipPort>\n</ports>\n"
		"<processNodeName>%s</processNodeName>\n</callManager>\n</member>\n</members>\n"
		"</callManagerGroup>\n"
		"<TVS>\n<members>\n"
		"<member priority=\"0\">\n<port>2445</port>\n<address>%s</address>\n</member>\n",
		c->set->hostname, addr, addr);
	for (size_t i = 0; i < c->ntvs && i + 1 < TVS_MEMBERS_MAX; i++)
		trust_buf_printf(b,
			"<member priority=\"%zu\">\n<port>2445</port>\n<address>%s</address>\n</member>\n",
			i + 1, c->tvs_entry[i]->name);
	trust_buf_printf(b, "</members>\n</TVS>\n</Default>\n");
	return b->failed ? TRUST_ENOMEM : 0;
}

static int
put_signed(struct pub_ctx *c, const char *name, const uint8_t *p, size_t n)
{
	char sgn[NAME_MAX + 8];
	struct trust_signer s;
	struct trust_buf out;
	int r;

	snprintf(sgn, sizeof(sgn), "%s.sgn", name);
	signer_of(c, UNIT_CALLMANAGER, c->cm_key, &s);
	trust_buf_init(&out);
	r = trust_sgn_sign(&s, sgn, c->now, p, n, &out, c->err);
	if (r == 0)
		r = pub_put(c, "serve", sgn, out.data, out.len, 0644);
	trust_buf_free(&out);
	return r;
}

/* SEP<MAC>.cnf.xml of a phone whose certificate is registered: the
 * encrypted full config plus the short signed one that points at it. */
static int
put_encrypted(struct pub_ctx *c, const struct store_phone *ph, const char *name,
	const uint8_t *p, size_t n)
{
	struct trust_cert pc = { 0 };
	struct trust_buf out, shrt;
	struct trust_signer s;
	char enc[NAME_MAX + 16];
	int r;

	if ((r = store_load_cert(c->st, &ph->cert, &pc, c->err)) != 0)
		return r;
	snprintf(enc, sizeof(enc), "%s.enc.sgn", name);
	signer_of(c, UNIT_CALLMANAGER, c->cm_key, &s);
	trust_buf_init(&out);
	trust_buf_init(&shrt);
	r = trust_enc_encrypt(&s, enc, c->now, &pc, p, n, &out, c->err);
	if (r == 0)
		r = pub_put(c, "serve", enc, out.data, out.len, 0644);
	if (r == 0 && trust_enc_short_config(&pc, &shrt) != 0)
		r = trust_errf(c->err, TRUST_ENOMEM, "short config for %s: out of memory", name);
	if (r == 0)
		r = put_signed(c, name, shrt.data, shrt.len);
	trust_buf_free(&out);
	trust_buf_free(&shrt);
	trust_cert_free(&pc);
	return r;
}

/* "SEP<12 hex>.cnf.xml" → the phone entry, if its cert is registered. */
static const struct store_phone *
phone_of(const struct trust_store *st, const char *name)
{
	char dev[16];

	if (strlen(name) != 23 || strcmp(name + 15, ".cnf.xml") != 0)
		return NULL;
	memcpy(dev, name, 15);
	dev[15] = '\0';
	return store_phone_find(st, dev);
}

static bool
skipped_name(const char *name)
{
	size_t n = strlen(name);

	/* hidden files and what is signed already are not re-signed */
	return name[0] == '.' || (n > 4 && strcmp(name + n - 4, ".sgn") == 0);
}

static int
check_config_name(struct pub_ctx *c, const char *dir, const char *name)
{
	/* the index is space-separated and phones ask by exact name */
	for (const char *p = name; *p; p++)
		if (!isgraph((unsigned char)*p))
			return trust_errf(c->err, TRUST_EINVAL,
				"config file '%s/%s': names with spaces or control characters cannot be served",
				dir, name);
	if (strlen(name) > 200)
		return trust_errf(c->err, TRUST_EINVAL, "config file '%s/%s': name too long", dir, name);
	return 0;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A config entry publish will not sign: counted in the result, named in
 * its text (first ones only), and the publish goes on without it, so that
 * whoever can write the folder cannot stop a trust change. */
static void
reject_config(struct pub_ctx *c, const char *name, const char *why)
{
	struct publish_result *r = c->r;
	size_t used = strlen(r->rejected);

	r->nrejected++;
	if (used + strlen(name) + strlen(why) + 8 < sizeof(r->rejected))
		snprintf(r->rejected + used, sizeof(r->rejected) - used, "%s%s (%s)",
			used ? ", " : "", name, why);
	else if (used + 5 < sizeof(r->rejected) && strcmp(r->rejected + used - 3, "...") != 0)
		snprintf(r->rejected + used, sizeof(r->rejected) - used, ", ...");
}

/*
 * The entries of the config folder open on dfd that publish signs: every
 * name but hidden ones, what is signed already and subfolders, sorted so
 * that publications are reproducible. What is there but is no regular
 * file (a symbolic link, FIFO, socket, device) is rejected here by name;
 * lstat-style checks are only a first sort: publish_one_config opens each
 * name with O_NOFOLLOW and checks the open file again.
 */
static int
list_configs(struct pub_ctx *c, int dfd, const char *dir, char ***names, size_t *n)
{
	struct dirent *de;
	struct stat sb;
	size_t cap = 0;
	int lfd = dup(dfd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;

	*names = NULL;
	*n = 0;
	if (d == NULL) {
		if (lfd >= 0)
			close(lfd);
		return trust_errf(c->err, TRUST_EIO, "config folder %s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (skipped_name(de->d_name))
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(sb.st_mode))
			continue;
		if (!S_ISREG(sb.st_mode)) {
			reject_config(c, de->d_name, S_ISLNK(sb.st_mode) ? "symbolic link"
				: "not a regular file");
			continue;
		}
		if (*n == CONFIG_FILES_MAX) {
			closedir(d);
			return trust_errf(c->err, TRUST_ETOOBIG, "config folder %s: more than %u "
				"files", dir, CONFIG_FILES_MAX);
		}
		if (*n == cap) {
			char **v = realloc(*names, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (v == NULL)
				break;
			*names = v;
		}
		if (((*names)[*n] = strdup(de->d_name)) == NULL)
			break;
		(*n)++;
	}
	closedir(d);
	if (de != NULL)
		return trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	if (*n > 1)
		qsort(*names, *n, sizeof(**names), cmp_name);
	return 0;
}

static int
publish_one_config(struct pub_ctx *c, int dfd, const char *dir, const char *name,
	bool *have_default)
{
	const struct store_phone *ph;
	struct trust_err why = { 0 };
	struct trust_buf b;
	int r;

	if ((r = check_config_name(c, dir, name)) != 0)
		return r;
	r = trust_file_read_at(dfd, dir, name, CONFIG_MAX, &b, &why);
	if (r == TRUST_EINVAL || r == TRUST_ETOOBIG) {
		/* swapped for a link or a FIFO since the listing, or too big;
		 * the message is "<dir>/<name>: <why>" */
		size_t skip = strlen(dir) + strlen(name) + 3;

		reject_config(c, name, strlen(why.msg) > skip ? why.msg + skip : why.msg);
		return 0;
	}
	if (r != 0)
		return trust_errf(c->err, r, "%s", why.msg);
	if (strcmp(name, "XMLDefault.cnf.xml") == 0) {
		*have_default = true;
		/* without auto-registration no phone may take the default */
		r = c->set->auto_registration ? pub_put(c, "serve", name, b.data, b.len, 0644) : 0;
		if (r == 0 && c->set->auto_registration)
			r = put_signed(c, name, b.data, b.len);
	} else if ((ph = phone_of(c->st, name)) != NULL) {
		r = put_encrypted(c, ph, name, b.data, b.len);
		c->r->nconfigs++;
		c->r->nencrypted++;
	} else {
		r = put_signed(c, name, b.data, b.len);
		c->r->nconfigs += strncmp(name, "SEP", 3) == 0;
	}
	trust_buf_wipe(&b);	/* device configs may carry passwords */
	return r;
}

/*
 * The config folder may be writable by people who must not see the
 * store's keys (finding: a link configs/cm.key -> objects/<key> was
 * published as cm.key.sgn). So the folder itself and every file in it are
 * opened without following symbolic links, relative to the folder
 * (openat), regular files only and size-bounded; nothing outside the
 * folder can be reached through a name in it.
 */
static int
open_config_dir(struct pub_ctx *c, const char *dir, bool required, int *dfd)
{
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dfd >= 0 || (errno == ENOENT && !required))
		return 0;
	if (errno == ELOOP || errno == ENOTDIR)
		return trust_errf(c->err, TRUST_EINVAL, "config folder %s: a symbolic link or "
			"not a folder (links are never followed; name the real folder)", dir);
	return trust_errf(c->err, TRUST_EIO, "config folder %s: %s", dir, strerror(errno));
}

static int
publish_configs(struct pub_ctx *c, const char *config_dir)
{
	char def[PATH_MAX], **names = NULL;
	const char *dir = config_dir;
	bool have_default = false;
	struct trust_buf b;
	size_t n = 0;
	int r, dfd;

	if (dir == NULL) {
		snprintf(def, sizeof(def), "%s/configs", c->st->dir);
		dir = def;
	}
	r = open_config_dir(c, dir, config_dir != NULL, &dfd);
	if (r == 0 && dfd >= 0)
		r = list_configs(c, dfd, dir, &names, &n);
	for (size_t i = 0; i < n && r == 0; i++)
		r = publish_one_config(c, dfd, dir, names[i], &have_default);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (dfd >= 0)
		close(dfd);
	if (r != 0 || have_default || !c->set->auto_registration)
		return r;
	trust_buf_init(&b);
	if ((r = default_config(c, &b)) != 0)
		r = trust_errf(c->err, r, "out of memory");
	if (r == 0)
		r = pub_put(c, "serve", "XMLDefault.cnf.xml", b.data, b.len, 0644);
	if (r == 0)
		r = put_signed(c, "XMLDefault.cnf.xml", b.data, b.len);
	trust_buf_free(&b);
	return r;
}

/* ---- manifest, certs/, tvs/ --------------------------------------------- */

struct mcert {
	const struct store_object *obj;
	uint16_t roles[16];
	unsigned nroles;
	uint32_t ttl;
};

static int
cmp_mcert(const void *a, const void *b)
{
	return strcmp(((const struct mcert *)a)->obj->sha256, ((const struct mcert *)b)->obj->sha256);
}

static int
cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static void
mcert_add_role(struct mcert *m, uint16_t role)
{
	for (unsigned i = 0; i < m->nroles; i++)
		if (m->roles[i] == role)
			return;
	if (m->nroles < 16)
		m->roles[m->nroles++] = role;
}

static void
mcert_set(struct mcert *m, const struct store_object *o, const uint16_t *roles, unsigned n,
	uint32_t ttl)
{
	memset(m, 0, sizeof(*m));
	m->obj = o;
	m->ttl = ttl;
	for (unsigned i = 0; i < n; i++)
		mcert_add_role(m, roles[i]);
}

/* One line per certificate; a cert trusted several ways gets the union of
 * its roles and the shortest TTL. */
static size_t
manifest_collect(const struct pub_ctx *c, struct mcert *m)
{
	const struct store_settings *s = c->set;
	uint16_t cm[2] = { TRUST_ROLE_SAST, s->tftp_role }, sast = TRUST_ROLE_SAST;
	uint16_t tvs = TRUST_ROLE_TVS, capf = TRUST_ROLE_CAPF;
	size_t n = 0, k = 0;

	mcert_set(&m[n++], &c->st->own[UNIT_CALLMANAGER].cert, cm, 2, s->tvs_ttl);
	mcert_set(&m[n++], &c->st->own[UNIT_ITLRECOVERY].cert, &sast, 1, s->tvs_ttl);
	mcert_set(&m[n++], &c->st->own[UNIT_TVS].cert, &tvs, 1, s->tvs_ttl);
	mcert_set(&m[n++], &c->st->own[UNIT_CAPF].cert, &capf, 1, s->tvs_ttl);
	for (size_t i = 0; i < c->st->ntrusted; i++) {
		const struct store_trusted *t = &c->st->trusted[i];

		mcert_set(&m[n++], &t->cert, t->roles, t->nroles, t->ttl ? t->ttl : s->tvs_ttl);
	}
	qsort(m, n, sizeof(*m), cmp_mcert);
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && strcmp(m[k - 1].obj->sha256, m[i].obj->sha256) == 0) {
			for (unsigned j = 0; j < m[i].nroles; j++)
				mcert_add_role(&m[k - 1], m[i].roles[j]);
			if (m[i].ttl < m[k - 1].ttl)
				m[k - 1].ttl = m[i].ttl;
			continue;
		}
		m[k++] = m[i];
	}
	for (size_t i = 0; i < k; i++)
		qsort(m[i].roles, m[i].nroles, sizeof(uint16_t), cmp_u16);
	return k;
}

/*
 * certs/<sha256>.der files are named by their content, so the one of the
 * previous generation is this generation's file too: a hard link costs no
 * write and no X.509 parse, which is most of a publish when the store
 * trusts thousands of certificates and one of them changed. The linked
 * bytes are hashed again, so a damaged old file is written afresh rather
 * than carried over. Returns 1 when linked, 0 to write it, <0 on error.
 */
static int
link_previous(struct pub_ctx *c, const char *name, const char *sha256)
{
	EVP_MD_CTX *md = NULL;
	uint8_t buf[4096], d[32];
	size_t size = 0;
	bool ok = false;
	char hex[65];
	ssize_t n;
	int fd;

	if (c->prev_dfd < 0 || linkat(c->prev_dfd, name, c->dfd, name, 0) != 0)
		return 0;
	fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && (md = EVP_MD_CTX_new()) != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		while ((n = read(fd, buf, sizeof(buf))) > 0 && EVP_DigestUpdate(md, buf, (size_t)n))
			size += (size_t)n;
		ok = n == 0 && EVP_DigestFinal_ex(md, d, NULL);
	}
	EVP_MD_CTX_free(md);
	if (fd >= 0)
		close(fd);
	if (ok) {
		trust_hex(d, sizeof(d), hex);
		ok = strcmp(hex, sha256) == 0;
	}
	if (!ok) {
		unlinkat(c->dfd, name, 0);
		return 0;
	}
	if (trust_buf_printf(&c->index, "file %s %zu %s\n", name, size, hex) != 0)
		return trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	return 1;
}

static int
publish_manifest(struct pub_ctx *c, unsigned long long gen)
{
	struct mcert *m = calloc(c->st->ntrusted + UNIT_COUNT, sizeof(*m));
	struct trust_cert cert = { 0 };
	struct trust_buf b;
	char name[96];
	size_t n;
	int r = 0;

	if (m == NULL)
		return trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	n = manifest_collect(c, m);
	trust_buf_init(&b);
	trust_buf_printf(&b, "tvs-manifest 1\ngeneration %llu\n", gen);
	for (size_t i = 0; i < n && r == 0; i++) {
		trust_buf_printf(&b, "cert %s ", m[i].obj->sha256);
		for (unsigned k = 0; k < m[i].nroles; k++)
			trust_buf_printf(&b, "%s%u", k ? "," : "", m[i].roles[k]);
		trust_buf_printf(&b, " %u certs/%s.der\n", (unsigned)m[i].ttl, m[i].obj->sha256);
		snprintf(name, sizeof(name), "certs/%s.der", m[i].obj->sha256);
		if ((r = link_previous(c, name, m[i].obj->sha256)) != 0) {
			r = r > 0 ? 0 : r;
			continue;
		}
		if ((r = store_load_cert(c->st, m[i].obj, &cert, c->err)) == 0)
			r = pub_put(c, "file", name, cert.der, cert.der_len, 0644);
		trust_cert_free(&cert);
	}
	trust_buf_printf(&b, "end\n");
	if (r == 0 && b.failed)
		r = trust_errf(c->err, TRUST_ENOMEM, "out of memory");
	if (r == 0)
		r = pub_put(c, "file", "manifest", b.data, b.len, 0644);
	c->r->ncerts = (unsigned)n;
	trust_buf_free(&b);
	free(m);
	return r;
}

/*
 * Who reads tvs/tvs.key: tvsd's user (publish_opts.tvsd_user), so that tvsd
 * loads its key once unprivileged while every other key stays in the store
 * (root, 0700). 1 with the ids, 0 when root keeps it, or an error.
 */
static int
tvs_key_owner(struct pub_ctx *c, uid_t *uid, gid_t *gid)
{
	const char *name = c->o->tvsd_user ? c->o->tvsd_user : PUBLISH_TVSD_USER;
	struct passwd *pw;

	if (strcmp(name, "root") == 0 || (c->o->tvsd_user == NULL && geteuid() != 0))
		return 0;
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL && c->o->tvsd_user == NULL && errno == 0)
		return 0;	/* no tvsd user on this machine: root's, as the store's keys */
	if (pw == NULL)
		return trust_errf(c->err, TRUST_EINVAL, "tvsd user '%s': %s", name,
			errno ? strerror(errno) : "no such user");
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 1;
}

/* tvs/ root:<tvsd's group> 0750, tvs.pem 0644, tvs.key <tvsd> 0400. */
static int
publish_tvs_identity(struct pub_ctx *c)
{
	struct trust_buf pem;
	EVP_PKEY *key = NULL;
	uid_t uid = 0;
	gid_t gid = 0;
	int r, owner;

	if ((owner = tvs_key_owner(c, &uid, &gid)) < 0)
		return owner;
	if (trust_cert_pem(&c->own[UNIT_TVS], &pem) != 0) {
		trust_buf_free(&pem);
		return trust_errf(c->err, TRUST_ENOMEM, "TVS certificate: cannot encode");
	}
	r = pub_put(c, "file", "tvs/tvs.pem", pem.data, pem.len, 0644);
	trust_buf_free(&pem);
	if (r != 0 || (r = store_own_key(c->st, UNIT_TVS, &key, c->err)) != 0)
		return r;
	if (trust_key_pem(key, &pem) != 0)
		r = trust_errf(c->err, TRUST_ECRYPTO, "TVS key: cannot encode");
	else
		r = pub_put(c, "file", "tvs/tvs.key", pem.data, pem.len, 0400);
	trust_buf_wipe(&pem);
	EVP_PKEY_free(key);
	if (r == 0 && owner == 1 &&
	    (fchownat(c->dfd, "tvs/tvs.key", uid, gid, AT_SYMLINK_NOFOLLOW) != 0 ||
	    fchownat(c->dfd, "tvs", 0, gid, AT_SYMLINK_NOFOLLOW) != 0 ||
	    fchmodat(c->dfd, "tvs", 0750, 0) != 0))
		r = trust_errf(c->err, TRUST_EIO, "publish tvs/ for user %s: %s",
			c->o->tvsd_user ? c->o->tvsd_user : PUBLISH_TVSD_USER, strerror(errno));
	return r;
}

/* ---- generations: scan, switch, prune ----------------------------------- */

/* "gen-%08llu" exactly: returns true and the number. */
static bool
gen_name(const char *s, unsigned long long *gen)
{
	char *end;

	if (strncmp(s, "gen-", 4) != 0 || !isdigit((unsigned char)s[4]))
		return false;
	errno = 0;
	*gen = strtoull(s + 4, &end, 10);
	return errno == 0 && *end == '\0' && end - (s + 4) >= 8;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int
rm_tree(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A temp name of a publish still running somewhere else is left alone. */
static bool
stale_temp(const char *name)
{
	const char *t = strstr(name, ".tmp");
	long pid;

	if (t == NULL || (t[4] != '\0' && t[4] != '.'))
		return false;
	if (t[4] == '\0')
		return true;
	pid = strtol(t + 5, NULL, 10);
	return pid <= 0 || (pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

static int
cmp_gen_desc(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

struct gens {
	unsigned long long *v;
	size_t n;
	unsigned long long max;
};

static int
scan_gens(const char *root, struct gens *g, bool remove_stale, struct trust_err *err)
{
	struct dirent *de;
	size_t cap = 0;
	char path[PATH_MAX];
	DIR *d;

	memset(g, 0, sizeof(*g));
	if ((d = opendir(root)) == NULL)
		return trust_errf(err, TRUST_EIO, "publication root %s: %s", root, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		unsigned long long gen;

		if (remove_stale && (strncmp(de->d_name, "gen-", 4) == 0 ||
		    strncmp(de->d_name, "current.", 8) == 0) && stale_temp(de->d_name)) {
			snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
			rm_tree(path);
			continue;
		}
		if (!gen_name(de->d_name, &gen))
			continue;
		if (g->n == cap) {
			unsigned long long *v = realloc(g->v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (v == NULL) {
				closedir(d);
				return trust_errf(err, TRUST_ENOMEM, "out of memory");
			}
			g->v = v;
		}
		g->v[g->n++] = gen;
		if (gen > g->max)
			g->max = gen;
	}
	closedir(d);
	return 0;
}

static bool
current_gen(const char *root, unsigned long long *gen)
{
	char path[PATH_MAX], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/current", root);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return gen_name(target, gen);
}

/* Keeps the newest `keep` generations and whatever `current` names. */
static int
prune(const char *root, unsigned keep, struct trust_err *err)
{
	unsigned long long cur = 0;
	bool has_cur = current_gen(root, &cur);
	char path[PATH_MAX];
	struct gens g;
	int r;

	if ((r = scan_gens(root, &g, true, err)) != 0)
		return r;
	qsort(g.v, g.n, sizeof(*g.v), cmp_gen_desc);
	for (size_t i = keep; i < g.n; i++) {
		if (has_cur && g.v[i] == cur)
			continue;
		snprintf(path, sizeof(path), "%s/gen-%08llu", root, g.v[i]);
		if (rm_tree(path) != 0 && errno != ENOENT) {
			r = trust_errf(err, TRUST_EIO, "remove %s: %s", path, strerror(errno));
			break;
		}
	}
	free(g.v);
	return r != 0 ? r : trust_fsync_dir(root, err);
}

static int
switch_current(const char *root, const char *gen, struct trust_err *err)
{
	char link[PATH_MAX], cur[PATH_MAX];

	snprintf(link, sizeof(link), "%s/current.tmp.%ld", root, (long)getpid());
	snprintf(cur, sizeof(cur), "%s/current", root);
	unlink(link);
	if (symlink(gen, link) != 0)
		return trust_errf(err, TRUST_EIO, "symlink %s: %s", link, strerror(errno));
	if (rename(link, cur) != 0) {
		int e = errno;

		unlink(link);
		return trust_errf(err, TRUST_EIO, "rename %s over %s: %s", link, cur, strerror(e));
	}
	return trust_fsync_dir(root, err);
}

/*
 * The generation to publish: the store's, unless it is published already.
 * Then force commits the store once more, so that the new publication gets
 * a new number and published directories stay immutable.
 */
static int
pick_generation(struct trust_store *st, const char *root, bool force, struct trust_err *err)
{
	struct gens g;
	int r;

	if ((r = scan_gens(root, &g, false, err)) != 0)
		return r;
	free(g.v);
	if (st->generation > g.max)
		return 0;
	if (!force)
		return trust_errf(err, TRUST_EEXIST,
			"store generation %llu is published already (newest publication gen-%08llu); "
			"nothing changed since, publish again only with force",
			(unsigned long long)st->generation, g.max);
	st->generation = g.max;
	return store_commit(st, err);
}

/* ---- the whole run ------------------------------------------------------ */

static int
publish_body(struct pub_ctx *c, const struct publish_opts *o, unsigned long long gen)
{
	struct trust_buf head;
	int r;

	if ((r = load_own(c)) != 0 || (r = load_tvs_nodes(c)) != 0 || (r = build_itl(c)) != 0)
		return r;
	if (c->set->security_mode == MODE_MIXED && (r = build_ctl(c)) != 0)
		return r;
	if ((r = publish_configs(c, o->config_dir)) != 0 ||
	    (r = publish_manifest(c, gen)) != 0 ||
	    (r = publish_tvs_identity(c)) != 0)
		return r;
	/* one syncfs writes everything back and commits the journal once, so
	 * the per-file fsyncs that follow (what we rely on) are cheap */
	(void)syncfs(c->dfd);
	if ((r = fsync_listed(c)) != 0)
		return r;
	trust_buf_init(&head);
	trust_buf_printf(&head, "tvs-publication 1\ngeneration %llu\ncreated %u\n", gen,
		(unsigned)c->now);
	trust_buf_put(&head, c->index.data, c->index.len);
	trust_buf_printf(&head, "end\n");
	/* PUBLICATION last: a directory with it is complete */
	r = head.failed ? trust_errf(c->err, TRUST_ENOMEM, "out of memory") :
		pub_put(c, "file", "PUBLICATION", head.data, head.len, 0644);
	trust_buf_free(&head);
	if (r == 0)
		r = fsync_at(c->dfd, "PUBLICATION", 0, c->err);
	if (r == 0 && ((r = fsync_at(c->dfd, "certs", O_DIRECTORY, c->err)) != 0 ||
	    (r = fsync_at(c->dfd, "tvs", O_DIRECTORY, c->err)) != 0))
		return r;
	if (r == 0 && fsync(c->dfd) != 0)
		r = trust_errf(c->err, TRUST_EIO, "fsync publication: %s", strerror(errno));
	return r;
}

static void
ctx_free(struct pub_ctx *c)
{
	for (int u = 0; u < UNIT_COUNT; u++)
		trust_cert_free(&c->own[u]);
	for (size_t i = 0; i < c->ntvs; i++)
		trust_cert_free(&c->tvs[i]);
	free(c->tvs);
	free(c->tvs_entry);
	EVP_PKEY_free(c->cm_key);
	EVP_PKEY_free(c->list_key);
	trust_buf_free(&c->index);
	if (c->dfd >= 0)
		close(c->dfd);
	if (c->prev_dfd >= 0)
		close(c->prev_dfd);
}

int
publish_run(struct trust_store *st, const char *pub_root, const struct publish_opts *o,
	struct publish_result *r, struct trust_err *err)
{
	static const struct publish_opts none;
	struct pub_ctx c = { .st = st, .set = &st->set, .dfd = -1, .prev_dfd = -1, .r = r,
		.err = err };
	char tmp[PATH_MAX], fin[PATH_MAX], name[64];
	unsigned long long gen;
	int rc;

	o = o ? o : &none;
	c.o = o;
	memset(r, 0, sizeof(*r));
	if (st->lockfd < 0)
		return trust_errf(err, TRUST_EINVAL,
			"publishing needs the store lock (open the store with STORE_LOCK)");
	if ((rc = store_mkdir_p(pub_root, 0755, err)) != 0 || (rc = pick_generation(st, pub_root, o->force, err)) != 0)
		return rc;
	gen = st->generation;
	c.now = o->timestamp ? o->timestamp : (uint32_t)time(NULL);
	snprintf(name, sizeof(name), "gen-%08llu", gen);
	if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp.%ld", pub_root, name, (long)getpid()) >=
	    (int)sizeof(tmp) || snprintf(fin, sizeof(fin), "%s/%s", pub_root, name) >= (int)sizeof(fin))
		return trust_errf(err, TRUST_EINVAL, "publication root path too long");
	rm_tree(tmp);
	/* tvsd reads them as its own user: no umask may narrow them */
	if (mkdir(tmp, 0755) != 0 || (c.dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fchmod(c.dfd, 0755) != 0 || mkdirat(c.dfd, "certs", 0755) != 0 ||
	    fchmodat(c.dfd, "certs", 0755, 0) != 0 || mkdirat(c.dfd, "tvs", 0700) != 0) {
		rc = trust_errf(err, TRUST_EIO, "publish into %s: %s", tmp, strerror(errno));
		goto fail;
	}
	trust_buf_init(&c.index);
	snprintf(fin, sizeof(fin), "%s/current", pub_root);
	c.prev_dfd = open(fin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);	/* none at first */
	snprintf(fin, sizeof(fin), "%s/%s", pub_root, name);
	if ((rc = publish_body(&c, o, gen)) != 0)
		goto fail;
	if (rename(tmp, fin) != 0) {
		rc = trust_errf(err, TRUST_EIO, "rename %s to %s: %s", tmp, fin, strerror(errno));
		goto fail;
	}
	if ((rc = trust_fsync_dir(pub_root, err)) != 0 || (rc = switch_current(pub_root, name, err)) != 0)
		goto out;
	r->generation = gen;
	snprintf(r->dir, sizeof(r->dir), "%s", fin);
	rc = prune(pub_root, st->set.keep_publications, err);
	goto out;
fail:
	rm_tree(tmp);
out:
	ctx_free(&c);
	return rc;
}
