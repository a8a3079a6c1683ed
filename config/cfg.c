/*
 * tvsd configuration: schema table, INI loading, validation, docs.
 *
 * rte_cfgfile does the INI parsing but knows no line numbers and skips
 * some malformed lines silently, so we first scan the text ourselves: the
 * scan rejects what rte_cfgfile would drop or truncate, and remembers the
 * line of every section and key so that each later error can name it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cfgfile.h>

#include "cfg.h"

#define CFG_FILE_MAX (1 << 20)
#define CFG_LINE_MAX (CFG_NAME_LEN + CFG_VALUE_LEN)	/* rte_cfgfile's buffer */
#define CFG_COMMENT '#'

enum cfg_sec {
	SEC_TVSD,
	SEC_TFTP,
	SEC_TVS,
	SEC_PORT,	/* port0 .. port<CFG_MAX_PORTS-1> */
};

enum cfg_type {
	T_PATH,		/* absolute path, fits the field */
	T_UINT,
	T_BOOL,
	T_LOGLEVEL,
	T_IPV4_PREFIX,	/* address/prefix */
	T_LCORES,	/* "all" or a list like 1,3-5 */
	T_STRING,	/* any text that fits the field */
	T_CHOICE,	/* one word of choices, stored as its index (uint8_t) */
};

struct cfg_item {
	enum cfg_sec sec;
	const char *key;
	enum cfg_type type;
	unsigned long min, max;	/* T_UINT */
	const char *def;	/* NULL: required */
	size_t off;		/* in struct tvs_config, or struct cfg_port */
	size_t size;
	const char *help;
	const char *choices;	/* T_CHOICE: words separated by '|' */
};

#define CF(f) offsetof(struct tvs_config, f), sizeof(((struct tvs_config *)0)->f)
#define PF(f) offsetof(struct cfg_port, f), sizeof(((struct cfg_port *)0)->f)

static const struct cfg_item cfg_schema[] = {
	{ SEC_TVSD, "publications", T_PATH, 0, 0, "/var/lib/tvs/publications",
		CF(publications),
		"publication root written by `tvsctl publish`; tvsd serves `<publications>/current`" },
	{ SEC_TVSD, "control-socket", T_PATH, 0, 0, "/run/tvs/tvsd.sock",
		CF(control_socket),
		"UNIX socket for `reload`, `status`, `stats` (binary messages: "
		"dataplane/dpctl_proto.h), mode 0660" },
	{ SEC_TVSD, "control-idle-ms", T_UINT, 100, 3600000, "10000", CF(control_idle_ms),
		"a control socket client that neither sends a request nor takes its replies for "
		"this long is closed" },
	{ SEC_TVSD, "workers", T_LCORES, 0, 0, "all", 0, 0,
		"worker lcores: `all` (every lcore of EAL's -l but the main one) or a list like `1,3-4`" },
	{ SEC_TVSD, "log-level", T_LOGLEVEL, 0, 0, "info", CF(log_level),
		"level of the `tvs.*` log types: emerg alert crit err warning notice info debug" },
	{ SEC_TVSD, "user", T_STRING, 0, 0, "tvsd", CF(user),
		"user tvsd becomes once set up (EAL, ports, control socket, telemetry), keeping only "
		"the capabilities its ports still use (README.md, \"Privileges\"); it must exist when "
		"tvsd starts as root (`systemd-sysusers`); `root` keeps root, with a warning" },
	{ SEC_TVSD, "mbufs", T_UINT, 1023, 1048575, "8191", CF(mbufs),
		"packet buffers per NUMA socket (a power of two minus one fits the mempool best)" },

	{ SEC_TFTP, "max-blksize", T_UINT, 8, 65464, "1468", CF(tftp.max_blksize),
		"largest blksize option granted (RFC 2348); also capped by the interface MTU" },
	{ SEC_TFTP, "max-windowsize", T_UINT, 1, 65535, "16", CF(tftp.max_windowsize),
		"largest windowsize option granted (RFC 7440)" },
	{ SEC_TFTP, "timeout-ms", T_UINT, 10, 60000, "1000", CF(tftp.timeout_ms),
		"retransmission timeout when the client asks for none" },
	{ SEC_TFTP, "retries", T_UINT, 0, 20, "5", CF(tftp.retries),
		"retransmissions before a transfer is given up" },
	{ SEC_TFTP, "max-transfers-per-core", T_UINT, 1, 16384, "1024",
		CF(tftp.max_transfers),
		"concurrent transfers of one worker lcore (each uses one UDP port)" },
	{ SEC_TFTP, "port-base", T_UINT, 1024, 65535, "49152", CF(tftp.port_base),
		"first transfer port; worker i owns [base + i*max, base + (i+1)*max)" },
	{ SEC_TFTP, "max-transfers-per-source", T_UINT, 1, 16384, "32",
		CF(tftp.max_per_source),
		"transfers one client address may hold at once on one worker lcore; one more RRQ "
		"gets ERROR 0 (counted in tftp_err_per_source)" },
	{ SEC_TFTP, "max-timeout-s", T_UINT, 1, 255, "5", CF(tftp.max_timeout_s),
		"largest RFC 2349 `timeout` option honoured; a larger one is left out of the OACK "
		"and the transfer uses timeout-ms (counted in tftp_timeout_ignored)" },
	{ SEC_TFTP, "max-transfer-s", T_UINT, 1, 86400, "300", CF(tftp.max_life_s),
		"a transfer still running after this ends with ERROR 0 (counted in "
		"tftp_err_expired), however steadily its client acknowledges" },

	{ SEC_TVS, "enabled", T_BOOL, 0, 0, "yes", CF(tvs.enabled),
		"serve TVS (TLS on TCP) from the worker lcores" },
	{ SEC_TVS, "port", T_UINT, 1, 65535, "2445", CF(tvs.port),
		"TCP port of the TVS (FORMATS section 3.1)" },
	{ SEC_TVS, "max-conns-per-core", T_UINT, 1, 65536, "1024", CF(tvs.max_conns),
		"TCP connections one worker lcore holds; beyond, a handshake is refused with RST" },
	{ SEC_TVS, "max-conns-per-source", T_UINT, 1, 65536, "64", CF(tvs.max_per_source),
		"open TCP connections (TIME_WAIT aside) one client address may hold on one worker "
		"lcore; beyond, RST (counted in tcp_refused_per_source)" },
	{ SEC_TVS, "max-handshakes-per-source", T_UINT, 1, 65536, "32",
		CF(tvs.max_handshakes_per_source),
		"of those, connections whose TLS handshake is not finished; beyond, RST (counted "
		"in tcp_refused_unready_per_source)" },
	{ SEC_TVS, "idle-timeout-ms", T_UINT, 100, 3600000, "30000", CF(tvs.idle_timeout_ms),
		"an open connection without progress (no byte in or acknowledged) is reset" },
	{ SEC_TVS, "request-timeout-ms", T_UINT, 100, 600000, "10000",
		CF(tvs.request_timeout_ms),
		"the TLS handshake, and each request once started, must complete within this; "
		"else the connection is closed (counted in tvs_request_timeouts)" },
	{ SEC_TVS, "min-tls", T_CHOICE, 0, 0, "1.0", CF(tvs.min_tls),
		"lowest TLS version accepted: 1.0 1.1 1.2 1.3 (7900-series phones speak 1.0)",
		"1.0|1.1|1.2|1.3" },
	{ SEC_TVS, "max-tls", T_CHOICE, 0, 0, "1.3", CF(tvs.max_tls),
		"highest TLS version accepted: 1.0 1.1 1.2 1.3", "1.0|1.1|1.2|1.3" },
	{ SEC_TVS, "ciphers", T_STRING, 0, 0, "DEFAULT:@SECLEVEL=0", CF(tvs.ciphers),
		"OpenSSL cipher list for TLS 1.0-1.2; @SECLEVEL=0 keeps AES256-SHA for TLS 1.0 "
		"phones (FORMATS section 8.11)" },
	{ SEC_TVS, "ciphersuites", T_STRING, 0, 0, "default", CF(tvs.ciphersuites),
		"OpenSSL TLS 1.3 ciphersuites, `default` for OpenSSL's" },
	{ SEC_TVS, "offload", T_CHOICE, 0, 0, "thread", CF(tvs.offload),
		"where RSA private-key operations of handshakes run: `none` (inline on the worker) "
		"or `thread` (an EAL control thread, while the worker goes on polling)",
		"none|thread" },
	{ SEC_TVS, "handshake-budget", T_UINT, 1, 1024, "4", CF(tvs.handshake_budget),
		"TLS handshake steps one worker runs per loop turn; later ones wait for the next "
		"turn so that packets and TFTP keep flowing" },
	{ SEC_TVS, "ticket-rotate-s", T_UINT, 60, 86400, "3600", CF(tvs.ticket_rotate_s),
		"session-ticket key rotation period; a ticket resumes for one to two periods, "
		"session IDs for one" },
	{ SEC_TVS, "session-cache", T_UINT, 1, 1000000, "20000", CF(tvs.session_cache),
		"TLS session IDs cached per worker lcore (tickets need no cache)" },

	{ SEC_PORT, "address", T_IPV4_PREFIX, 0, 0, NULL, 0, 0,
		"IPv4 address and prefix length of the port, e.g. `10.99.0.2/24` (required)" },
	{ SEC_PORT, "vlan", T_UINT, 0, 4094, "0", PF(vlan),
		"802.1Q VLAN id of the traffic; 0 means untagged" },
	{ SEC_PORT, "mtu", T_UINT, 68, 9600, "1500", PF(mtu),
		"IP MTU; a PMD that cannot set it keeps its own (warning)" },
	{ SEC_PORT, "promiscuous", T_BOOL, 0, 0, "no", PF(promiscuous),
		"receive frames for other MAC addresses too (warning when unsupported)" },
	{ SEC_PORT, "rx-desc", T_UINT, 64, 4096, "1024", PF(rx_desc),
		"RX ring size of each queue (adjusted to the PMD's limits)" },
	{ SEC_PORT, "tx-desc", T_UINT, 64, 4096, "1024", PF(tx_desc),
		"TX ring size of each queue (adjusted to the PMD's limits)" },
};

#define CFG_NITEMS (sizeof(cfg_schema) / sizeof(cfg_schema[0]))

static const char *const cfg_levels[] = {
	NULL, "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* What the scan remembers of the text. */
struct cfg_line_sec {
	char name[CFG_NAME_LEN];
	unsigned line;
};

struct cfg_line_key {
	unsigned sec;		/* index into secs */
	char key[CFG_NAME_LEN];
	unsigned line;
};

struct cfg_scan {
	const char *file;
	struct cfg_line_sec *secs;
	unsigned nsecs;
	struct cfg_line_key *keys;
	unsigned nkeys;
	struct cfg_errors *err;
};

static void __attribute__((format(printf, 4, 5)))
cfg_error(struct cfg_errors *err, const char *file, unsigned line, const char *fmt, ...)
{
	char m[256];
	va_list ap;

	if (err->n == CFG_MAX_ERRORS) {
		err->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err->msg[err->n], sizeof(err->msg[0]), "%s:%u: %s", file, line, m);
	else
		snprintf(err->msg[err->n], sizeof(err->msg[0]), "%s: %s", file, m);
	err->n++;
}

void
cfg_errors_print(const struct cfg_errors *err, FILE *f)
{
	for (unsigned i = 0; i < err->n; i++)
		fprintf(f, "%s\n", err->msg[i]);
	if (err->dropped > 0)
		fprintf(f, "... and %u more errors\n", err->dropped);
}

const char *
cfg_log_level_name(int level)
{
	if (level < 1 || level > 8)
		return "?";
	return cfg_levels[level];
}

static char *
cfg_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Cut an unescaped comment, the way rte_cfgfile does. */
static void
cfg_cut_comment(char *s)
{
	for (char *p = s; *p != '\0'; p++) {
		if (*p == CFG_COMMENT && (p == s || p[-1] != '\\')) {
			*p = '\0';
			return;
		}
	}
}

static int
cfg_scan_section(struct cfg_scan *sc, char *s, unsigned line)
{
	char *end = strchr(s, ']');
	char *name;

	if (end == NULL || end[1] != '\0') {
		cfg_error(sc->err, sc->file, line, "section header must be [name] alone on its line");
		return -1;
	}
	*end = '\0';
	name = cfg_trim(s + 1);
	if (*name == '\0' || strlen(name) >= CFG_NAME_LEN) {
		cfg_error(sc->err, sc->file, line, "section name empty or longer than %d bytes",
			CFG_NAME_LEN - 1);
		return -1;
	}
	for (unsigned i = 0; i < sc->nsecs; i++) {
		if (strcmp(sc->secs[i].name, name) == 0) {
			cfg_error(sc->err, sc->file, line, "section [%s] repeated (first at line %u)",
				name, sc->secs[i].line);
			return -1;
		}
	}
	snprintf(sc->secs[sc->nsecs].name, CFG_NAME_LEN, "%s", name);
	sc->secs[sc->nsecs++].line = line;
	return 0;
}

static int
cfg_scan_entry(struct cfg_scan *sc, char *s, unsigned line)
{
	char *eq = strchr(s, '=');
	char *key, *val;

	if (eq == NULL) {
		cfg_error(sc->err, sc->file, line, "syntax error: expected [section] or key = value");
		return -1;
	}
	*eq = '\0';
	key = cfg_trim(s);
	val = cfg_trim(eq + 1);
	if (*key == '\0' || strlen(key) >= CFG_NAME_LEN) {
		cfg_error(sc->err, sc->file, line, "key empty or longer than %d bytes",
			CFG_NAME_LEN - 1);
		return -1;
	}
	if (sc->nsecs == 0) {
		cfg_error(sc->err, sc->file, line, "key '%s' outside of any [section]", key);
		return -1;
	}
	if (*val == '\0' || strlen(val) >= CFG_VALUE_LEN) {
		cfg_error(sc->err, sc->file, line, "value of '%s' empty or longer than %d bytes",
			key, CFG_VALUE_LEN - 1);
		return -1;
	}
	for (unsigned i = 0; i < sc->nkeys; i++) {
		if (sc->keys[i].sec == sc->nsecs - 1 && strcmp(sc->keys[i].key, key) == 0) {
			cfg_error(sc->err, sc->file, line, "key '%s' repeated in [%s] (first at line %u)",
				key, sc->secs[sc->nsecs - 1].name, sc->keys[i].line);
			return -1;
		}
	}
	sc->keys[sc->nkeys].sec = sc->nsecs - 1;
	snprintf(sc->keys[sc->nkeys].key, CFG_NAME_LEN, "%s", key);
	sc->keys[sc->nkeys++].line = line;
	return 0;
}

/* text is modified. Returns the number of syntax errors. */
static int
cfg_scan_text(struct cfg_scan *sc, char *text)
{
	unsigned line = 0, bad = 0;
	char *next;

	for (char *s = text; s != NULL && *s != '\0'; s = next) {
		next = strchr(s, '\n');
		if (next != NULL)
			*next++ = '\0';
		line++;
		if (strlen(s) >= CFG_LINE_MAX) {
			cfg_error(sc->err, sc->file, line, "line longer than %d bytes", CFG_LINE_MAX - 1);
			bad++;
			continue;
		}
		cfg_cut_comment(s);
		s = cfg_trim(s);
		if (*s == '\0')
			continue;
		if (*s == '[' ? cfg_scan_section(sc, s, line) : cfg_scan_entry(sc, s, line))
			bad++;
	}
	return (int)bad;
}

static unsigned
cfg_section_line(const struct cfg_scan *sc, const char *sec)
{
	for (unsigned i = 0; i < sc->nsecs; i++)
		if (strcmp(sc->secs[i].name, sec) == 0)
			return sc->secs[i].line;
	return 0;
}

static unsigned
cfg_key_line(const struct cfg_scan *sc, const char *sec, const char *key)
{
	for (unsigned i = 0; i < sc->nkeys; i++)
		if (strcmp(sc->secs[sc->keys[i].sec].name, sec) == 0
		    && strcmp(sc->keys[i].key, key) == 0)
			return sc->keys[i].line;
	return cfg_section_line(sc, sec);
}

/* Value parsers: 0, or -1 with a reason in why. */

static int
cfg_parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *out,
	char *why, size_t whysz)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)v[0])) {
		snprintf(why, whysz, "'%s' is not a decimal number", v);
		return -1;
	}
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*end != '\0') {
		snprintf(why, whysz, "'%s' is not a decimal number", v);
		return -1;
	}
	if (errno == ERANGE || n < min || n > max) {
		snprintf(why, whysz, "%s is out of range [%lu, %lu]", v, min, max);
		return -1;
	}
	*out = n;
	return 0;
}

static int
cfg_parse_bool(const char *v, bool *out, char *why, size_t whysz)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (unsigned i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	snprintf(why, whysz, "'%s' is not yes/no/true/false/on/off/1/0", v);
	return -1;
}

static int
cfg_parse_level(const char *v, int *out, char *why, size_t whysz)
{
	for (int i = 1; i <= 8; i++) {
		if (strcasecmp(v, cfg_levels[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	snprintf(why, whysz, "'%s' is not one of emerg alert crit err warning notice info debug", v);
	return -1;
}

static int
cfg_parse_prefix(const char *v, struct cfg_port *p, char *why, size_t whysz)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(v, '/');
	struct in_addr a;
	unsigned long len;
	uint32_t ip, host;

	if (slash == NULL || (size_t)(slash - v) >= sizeof(addr)) {
		snprintf(why, whysz, "'%s' is not address/prefix (like 10.0.0.2/24)", v);
		return -1;
	}
	memcpy(addr, v, (size_t)(slash - v));
	addr[slash - v] = '\0';
	if (inet_pton(AF_INET, addr, &a) != 1) {
		snprintf(why, whysz, "'%s' is not an IPv4 address", addr);
		return -1;
	}
	if (cfg_parse_uint(slash + 1, 1, 32, &len, why, whysz) < 0)
		return -1;
	ip = ntohl(a.s_addr);
	host = len == 32 ? 0 : ip & (0xffffffffu >> len);
	if (ip == 0 || ip >> 28 >= 0xe || ip >> 24 == 127) {
		snprintf(why, whysz, "%s is not a unicast host address", addr);
		return -1;
	}
	if (len <= 30 && (host == 0 || host == 0xffffffffu >> len)) {
		snprintf(why, whysz, "%s is the network or broadcast address of /%lu", addr, len);
		return -1;
	}
	p->ip = ip;
	p->prefix = (uint8_t)len;
	return 0;
}

static int
cfg_parse_choice(const char *v, const char *choices, uint8_t *out, char *why, size_t whysz)
{
	size_t n = strlen(v);
	uint8_t i = 0;

	for (const char *c = choices; c != NULL; i++) {
		const char *bar = strchr(c, '|');
		size_t len = bar != NULL ? (size_t)(bar - c) : strlen(c);

		if (len == n && strncmp(c, v, n) == 0) {
			*out = i;
			return 0;
		}
		c = bar != NULL ? bar + 1 : NULL;
	}
	snprintf(why, whysz, "'%s' is not one of %s", v, choices);
	return -1;
}

static int
cfg_parse_lcores(const char *v, struct tvs_config *c, char *why, size_t whysz)
{
	const char *s = v;

	memset(c->workers, 0, sizeof(c->workers));
	c->workers_all = strcmp(v, "all") == 0;
	if (c->workers_all)
		return 0;
	while (*s != '\0') {
		char *end;
		unsigned long a, b;

		if (!isdigit((unsigned char)*s))
			goto bad;
		a = b = strtoul(s, &end, 10);
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				goto bad;
			b = strtoul(end + 1, &end, 10);
		}
		if (a > b || b >= CFG_MAX_LCORE) {
			snprintf(why, whysz, "lcore range %lu-%lu is empty or beyond %d", a, b,
				CFG_MAX_LCORE - 1);
			return -1;
		}
		for (unsigned long i = a; i <= b; i++)
			c->workers[i / 64] |= 1ull << (i % 64);
		if (*end == ',' && end[1] != '\0')
			end++;
		else if (*end != '\0')
			goto bad;
		s = end;
	}
	return 0;
bad:
	snprintf(why, whysz, "'%s' is not `all` or a list of lcores like 1,3-5", v);
	return -1;
}

static void
cfg_store_uint(void *field, size_t size, unsigned long n)
{
	switch (size) {
	case 1: *(uint8_t *)field = (uint8_t)n; break;
	case 2: *(uint16_t *)field = (uint16_t)n; break;
	case 4: *(uint32_t *)field = (uint32_t)n; break;
	default: *(uint64_t *)field = n; break;
	}
}

/* Parse one value of item into c (or into port p for port keys). */
static int
cfg_parse_value(const struct cfg_item *it, const char *v, struct tvs_config *c,
	struct cfg_port *p, char *why, size_t whysz)
{
	void *field = (it->sec == SEC_PORT ? (char *)p : (char *)c) + it->off;
	unsigned long n;

	switch (it->type) {
	case T_PATH:
		if (v[0] != '/') {
			snprintf(why, whysz, "'%s' is not an absolute path", v);
			return -1;
		}
		if (strlen(v) >= it->size) {
			snprintf(why, whysz, "path longer than %zu bytes", it->size - 1);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case T_UINT:
		if (cfg_parse_uint(v, it->min, it->max, &n, why, whysz) < 0)
			return -1;
		cfg_store_uint(field, it->size, n);
		return 0;
	case T_BOOL:
		return cfg_parse_bool(v, field, why, whysz);
	case T_LOGLEVEL:
		return cfg_parse_level(v, field, why, whysz);
	case T_IPV4_PREFIX:
		return cfg_parse_prefix(v, p, why, whysz);
	case T_LCORES:
		return cfg_parse_lcores(v, c, why, whysz);
	case T_STRING:
		if (strlen(v) >= it->size) {
			snprintf(why, whysz, "longer than %zu bytes", it->size - 1);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case T_CHOICE:
		return cfg_parse_choice(v, it->choices, field, why, whysz);
	}
	return -1;
}

static const struct cfg_item *
cfg_item_find(enum cfg_sec sec, const char *key)
{
	for (size_t i = 0; i < CFG_NITEMS; i++)
		if (cfg_schema[i].sec == sec && strcmp(cfg_schema[i].key, key) == 0)
			return &cfg_schema[i];
	return NULL;
}

/* "tvsd", "tftp", "port<N>" with N < CFG_MAX_PORTS, no leading zero. */
static int
cfg_section_kind(const char *name, unsigned *portno)
{
	if (strcmp(name, "tvsd") == 0)
		return SEC_TVSD;
	if (strcmp(name, "tftp") == 0)
		return SEC_TFTP;
	if (strcmp(name, "tvs") == 0)
		return SEC_TVS;
	if (strncmp(name, "port", 4) == 0 && isdigit((unsigned char)name[4])
	    && name[5] == '\0' && name[4] - '0' < CFG_MAX_PORTS) {
		*portno = (unsigned)(name[4] - '0');
		return SEC_PORT;
	}
	return -1;
}

/* Every key given in one section. */
static void
cfg_load_section(struct rte_cfgfile *f, const struct cfg_scan *sc, const char *sec,
	enum cfg_sec kind, struct tvs_config *c, struct cfg_port *p, bool given[])
{
	int n = rte_cfgfile_section_num_entries(f, sec);
	struct rte_cfgfile_entry *e;
	char why[200];

	if (n <= 0)
		return;
	e = calloc((size_t)n, sizeof(*e));
	if (e == NULL) {
		cfg_error(sc->err, sc->file, 0, "out of memory");
		return;
	}
	n = rte_cfgfile_section_entries(f, sec, e, n);
	for (int i = 0; i < n; i++) {
		const struct cfg_item *it = cfg_item_find(kind, e[i].name);
		unsigned line = cfg_key_line(sc, sec, e[i].name);

		if (it == NULL) {
			cfg_error(sc->err, sc->file, line, "unknown key '%s' in [%s]", e[i].name, sec);
			continue;
		}
		given[it - cfg_schema] = true;
		if (cfg_parse_value(it, e[i].value, c, p, why, sizeof(why)) < 0)
			cfg_error(sc->err, sc->file, line, "bad value for '%s' in [%s]: %s",
				e[i].name, sec, why);
	}
	free(e);
}

/* Defaults for the keys of one section that were not given. */
static void
cfg_apply_defaults(const struct cfg_scan *sc, const char *sec, enum cfg_sec kind,
	struct tvs_config *c, struct cfg_port *p, const bool given[])
{
	char why[200];

	for (size_t i = 0; i < CFG_NITEMS; i++) {
		const struct cfg_item *it = &cfg_schema[i];

		if (it->sec != kind || given[i])
			continue;
		if (it->def == NULL) {
			cfg_error(sc->err, sc->file, cfg_section_line(sc, sec),
				"missing required key '%s' in [%s]", it->key, sec);
			continue;
		}
		if (cfg_parse_value(it, it->def, c, p, why, sizeof(why)) < 0)
			cfg_error(sc->err, sc->file, 0, "internal: default of %s: %s", it->key, why);
	}
}

static void
cfg_load_all(struct rte_cfgfile *f, const struct cfg_scan *sc, struct tvs_config *c)
{
	static const char *const fixed[] = { "tvsd", "tftp", "tvs" };
	bool given[CFG_NITEMS];

	/* Unknown sections first: they get no defaults. */
	for (unsigned i = 0; i < sc->nsecs; i++) {
		unsigned pn;

		if (cfg_section_kind(sc->secs[i].name, &pn) < 0)
			cfg_error(sc->err, sc->file, sc->secs[i].line,
				"unknown section [%s] (known: [tvsd], [tftp], [tvs], [port0]..[port%d])",
				sc->secs[i].name, CFG_MAX_PORTS - 1);
	}
	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		memset(given, 0, sizeof(given));
		cfg_load_section(f, sc, fixed[i], (enum cfg_sec)i, c, NULL, given);
		cfg_apply_defaults(sc, fixed[i], (enum cfg_sec)i, c, NULL, given);
	}
	for (unsigned pn = 0; pn < CFG_MAX_PORTS; pn++) {
		char sec[16];
		struct cfg_port *p = &c->ports[pn];

		snprintf(sec, sizeof(sec), "port%u", pn);
		if (!rte_cfgfile_has_section(f, sec))
			continue;
		p->present = true;
		p->line = cfg_section_line(sc, sec);
		c->nports++;
		memset(given, 0, sizeof(given));
		cfg_load_section(f, sc, sec, SEC_PORT, c, p, given);
		cfg_apply_defaults(sc, sec, SEC_PORT, c, p, given);
	}
}

/* Rules that involve more than one key. */
static void
cfg_check_all(const struct cfg_scan *sc, struct tvs_config *c)
{
	if (c->nports == 0)
		cfg_error(sc->err, sc->file, 0, "no [portN] section: tvsd needs at least one port");
	if ((uint32_t)c->tftp.port_base + c->tftp.max_transfers > 65536)
		cfg_error(sc->err, sc->file, cfg_key_line(sc, "tftp", "port-base"),
			"port-base %u + max-transfers-per-core %u goes beyond port 65535",
			c->tftp.port_base, c->tftp.max_transfers);
	if (c->tvs.min_tls > c->tvs.max_tls)
		cfg_error(sc->err, sc->file, cfg_key_line(sc, "tvs", "min-tls"),
			"min-tls is above max-tls");
	if (!c->workers_all && c->workers[0] == 0 && c->workers[1] == 0)
		cfg_error(sc->err, sc->file, cfg_key_line(sc, "tvsd", "workers"),
			"no worker lcore selected");
}

static int
cfg_read_text(const char *path, char **text, struct cfg_errors *err)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		cfg_error(err, path, 0, "cannot open (%s)", strerror(errno));
		return -1;
	}
	*text = malloc(CFG_FILE_MAX + 1);
	if (*text == NULL) {
		fclose(f);
		cfg_error(err, path, 0, "out of memory");
		return -1;
	}
	n = fread(*text, 1, CFG_FILE_MAX + 1, f);
	if (ferror(f) || n > CFG_FILE_MAX) {
		cfg_error(err, path, 0, ferror(f) ? "read error" : "larger than %d bytes",
			CFG_FILE_MAX);
		fclose(f);
		free(*text);
		return -1;
	}
	fclose(f);
	(*text)[n] = '\0';
	if (strlen(*text) != n) {
		cfg_error(err, path, 0, "contains a NUL byte");
		free(*text);
		return -1;
	}
	return 0;
}

int
cfg_load(const char *path, struct tvs_config *c, struct cfg_errors *err)
{
	struct rte_cfgfile_parameters params = { .comment_character = CFG_COMMENT };
	struct cfg_scan sc = { .file = path, .err = err };
	struct rte_cfgfile *f = NULL;
	char *text = NULL;
	size_t lines = 1;

	memset(c, 0, sizeof(*c));
	memset(err, 0, sizeof(*err));
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (cfg_read_text(path, &text, err) < 0)
		return -1;
	for (const char *s = text; *s != '\0'; s++)
		lines += *s == '\n';
	sc.secs = calloc(lines, sizeof(*sc.secs));
	sc.keys = calloc(lines, sizeof(*sc.keys));
	if (sc.secs == NULL || sc.keys == NULL) {
		cfg_error(err, path, 0, "out of memory");
		goto out;
	}
	if (cfg_scan_text(&sc, text) > 0)
		goto out;
	f = rte_cfgfile_load_with_params(path, 0, &params);
	if (f == NULL) {
		cfg_error(err, path, 0, "rte_cfgfile could not load the file");
		goto out;
	}
	cfg_load_all(f, &sc, c);
	if (err->n == 0)
		cfg_check_all(&sc, c);
out:
	if (f != NULL)
		rte_cfgfile_close(f);
	free(sc.secs);
	free(sc.keys);
	free(text);
	return err->n > 0 || err->dropped > 0 ? -1 : 0;
}

static const char *
cfg_type_doc(const struct cfg_item *it, char *buf, size_t sz)
{
	switch (it->type) {
	case T_PATH: return "path";
	case T_UINT:
		snprintf(buf, sz, "integer %lu..%lu", it->min, it->max);
		return buf;
	case T_BOOL: return "boolean";
	case T_LOGLEVEL: return "log level";
	case T_IPV4_PREFIX: return "IPv4/prefix";
	case T_LCORES: return "lcore list";
	case T_STRING: return "string";
	case T_CHOICE:
		/* '|' would split the Markdown table cell */
		snprintf(buf, sz, "one of %s", it->choices);
		for (char *b = buf; *b != '\0'; b++)
			if (*b == '|')
				*b = '/';
		return buf;
	}
	return "?";
}

void
cfg_doc_print(FILE *f)
{
	static const char *const heads[] = {
		"[tvsd]", "[tftp]", "[tvs]", "[port0] .. [port7]",
	};
	static const char *const intros[] = {
		"The daemon itself.",
		"The TFTP server of every worker lcore.\n\n"
		"Bounds on one client address. A burst of requests from one address must not "
		"take every transfer slot (issue 10: 1,100 RRQs asking `timeout 255` held all "
		"1,024 slots for minutes). Each worker lcore owns its transfers and counts them "
		"per client address; RSS spreads one client's source ports over the workers, so "
		"with W workers an address holds at most W x `max-transfers-per-source` in all. "
		"The default 32 is sized "
		"for a site whose phones reach the appliance through one NAT address: a phone "
		"fetches its files (ITL, CTL, configuration) one after another, so 32 transfers "
		"at once is 32 phones booting in the same moment, and a phone told to try again "
		"does so; yet 32 addresses are needed to fill one default table of 1,024. RFC "
		"2349 lets a server only accept the `timeout` a client asks for or leave it out "
		"of the OACK, never answer another value: above `max-timeout-s` it is left out "
		"(an RRQ with no other option then gets plain DATA) and the transfer runs on "
		"`timeout-ms`. Either way a client that stops answering loses its slot after "
		"(`retries` + 1) x max(`timeout-ms`, `max-timeout-s`), 6 x 5 s at most with the "
		"defaults, and one that answers at a crawl (8-byte blocks, each acknowledged "
		"just in time) after `max-transfer-s`: 300 s lets a 1 MB file through in "
		"512-byte blocks over a 100 ms round trip, and the phones' files are a few KB.",
		"The TVS of every worker lcore: TLS on TCP, answered from the publication's "
		"certificates with its TVS certificate and key (`tvs/tvs.pem`, `tvs/tvs.key`).\n\n"
		"Bounds on one client address. SYN cookies keep a SYN flood out of the "
		"connection table, but a completed handshake takes a slot, and one address that "
		"completes a thousand and stays silent would hold them until "
		"`request-timeout-ms`. Each worker counts per client address its open "
		"connections (TIME_WAIT aside) and, of those, the ones whose TLS handshake is not "
		"finished; an address at either bound gets RST for a new SYN and for a "
		"handshake-completing ACK. Connections of one address spread over the workers "
		"(by RSS or a hash of the 4-tuple), so with W workers the bounds are W times "
		"these in all. The defaults are sized for phones behind one NAT address: each "
		"phone holds one short TVS connection, so 64 open and 32 handshakes at once "
		"(a handshake takes milliseconds) is a large site booting together, while 16 "
		"addresses would be needed to fill one default table of 1,024.",
		"One section per DPDK port (the N of `portN` is the DPDK port id). "
		"Every worker lcore polls one RX/TX queue pair of every port.",
	};
	char buf[64];

	fprintf(f, "# tvsd configuration\n\n"
		"<!-- generated by `tvsd --help-config` from config/cfg.c; do not edit -->\n\n"
		"An INI file read with rte_cfgfile: `[section]` headers, `key = value` lines,\n"
		"comments from `#` to the end of the line. Unknown sections and keys, repeated\n"
		"keys, bad values and out-of-range numbers are errors reported as `file:line:\n"
		"message`; `tvsd -n -c FILE` checks a file and prints `configuration OK`.\n");
	for (unsigned s = SEC_TVSD; s <= SEC_PORT; s++) {
		fprintf(f, "\n## %s\n\n%s\n\n", heads[s], intros[s]);
		fprintf(f, "| key | type | default | meaning |\n|---|---|---|---|\n");
		for (size_t i = 0; i < CFG_NITEMS; i++) {
			const struct cfg_item *it = &cfg_schema[i];

			if (it->sec != s)
				continue;
			fprintf(f, "| `%s` | %s | %s%s%s | %s |\n", it->key,
				cfg_type_doc(it, buf, sizeof(buf)),
				it->def ? "`" : "", it->def ? it->def : "(required)",
				it->def ? "`" : "", it->help);
		}
	}
}
