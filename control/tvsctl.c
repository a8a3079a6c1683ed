/*
 * tvsctl: the operator's command line for the trust store and its
 * publications. Commands use Cisco's words (`show itl`, `set cert regen
 * CallManager`); the table below is the only list of them, and `tvsctl
 * help` prints it, so help cannot drift from the code.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define DEFAULT_STORE "/var/lib/tvs/store"
#define DEFAULT_PUB "/var/lib/tvs/publications"

const struct ctl_cmd ctl_cmds[] = {
	{ { "help" }, "[WORD...]", "", 0, 4, 0,
		"list the commands (those starting with WORD...)", cmd_help },
	{ { "show", "itl" }, "[FILE]", "", 0, 1, 0,
		"dump and verify an ITL (default: the current publication's)", cmd_show_itl },
	{ { "show", "ctl" }, "[FILE]", "", 0, 1, 0,
		"dump and verify a CTL (default: the current publication's)", cmd_show_ctl },
	{ { "show", "cert", "list" }, "own|trust|phone", "", 1, 1, 0,
		"list own, trusted or registered phone certificates", cmd_show_cert_list },
	{ { "show", "cert", "own" }, "<unit>", "", 1, 1, 0,
		"show an own certificate (CallManager, ITLRecovery, TVS, CAPF) with its PEM",
		cmd_show_cert_own },
	{ { "show", "tvs", "status" }, "", "socket=", 0, 0, 0,
		"ask the running tvsd for its generation, workers, ports and files",
		cmd_show_tvs_status },
	{ { "show", "tvs", "stats" }, "", "socket=", 0, 0, 0,
		"ask the running tvsd for every counter, summed and per worker lcore",
		cmd_show_tvs_stats },
	{ { "show", "store" }, "", "", 0, 0, 0,
		"show the store's generation, settings and counts", cmd_show_store },
	{ { "store", "init" }, "",
		"hostname= ipv4= key-bits= itl-signer= hash= force", 0, 0, 4,
		"create a trust store with fresh self-signed certificates", cmd_store_init },
	{ { "store", "check" }, "", "", 0, 0, 0,
		"check the index checksum and every object of the store", cmd_store_check },
	{ { "store", "gc" }, "", "", 0, 0, 1,
		"remove objects no entry refers to and crash leftovers", cmd_store_gc },
	{ { "set", "store" }, "<setting> <value>", "", 2, 2, 1,
		"change a setting (see show store for the names)", cmd_set_store },
	{ { "utils", "ctl", "set-cluster" }, "mixed-mode|non-secure-mode", "", 1, 1, 1,
		"switch the security mode (mixed mode publishes a CTL)", cmd_set_cluster },
	{ { "set", "cert", "regen" }, "<unit>", "", 1, 1, 1,
		"regenerate the key and self-signed certificate of a unit", cmd_cert_regen },
	{ { "set", "cert", "import", "trust" }, "<role[,role...]> <pem>", "name= ttl=", 2, 2, 1,
		"trust a certificate with roles (TVS, CCM+TFTP, APP-SERVER, ...)",
		cmd_cert_import_trust },
	{ { "set", "cert", "import", "own" }, "<unit> <pem> <key>", "", 3, 3, 4,
		"replace a unit's certificate and key with imported ones", cmd_cert_import_own },
	{ { "set", "cert", "delete" }, "<name>", "", 1, 1, 1,
		"stop trusting a certificate", cmd_cert_delete },
	{ { "set", "phone", "cert", "delete" }, "<SEP...>", "", 1, 1, 1,
		"forget a phone's certificate (its config is signed, not encrypted)",
		cmd_phone_delete },
	{ { "set", "phone", "cert" }, "<SEP...> <pem>", "", 2, 2, 1,
		"register a phone's certificate: its config is published encrypted", cmd_phone_set },
	{ { "publish" }, "", "configs= force", 0, 0, 1,
		"build, sign and publish the ITL, CTL and configs of the store", cmd_publish },
	{ { "sgn", "sign" }, "<in>", "out= cert= key= hash=", 1, 1, 0,
		"sign a file as .sgn (default signer: the store's CallManager)", cmd_sgn_sign },
	{ { "sgn", "verify" }, "<file>", "cert= itl=", 1, 1, 0,
		"verify a .sgn with a certificate or with the TFTP record of an ITL", cmd_sgn_verify },
	{ { "sgn", "strip" }, "<file>", "out=", 1, 1, 0,
		"write the payload of a .sgn without its signature header", cmd_sgn_strip },
	{ { "enc", "encrypt" }, "<in>", "phone-cert= out= cert= key= hash=", 1, 1, 0,
		"encrypt a config for a phone as .enc.sgn", cmd_enc_encrypt },
	{ { "enc", "decrypt" }, "<file>", "phone-key= signer-cert= out=", 1, 1, 0,
		"decrypt a .enc.sgn with the phone's key, checking the signature if asked",
		cmd_enc_decrypt },
	{ { NULL } },
};

/* ---- messages ----------------------------------------------------------- */

static void
vmsg(const char *fmt, va_list ap)
{
	fputs("tvsctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
ctl_fail(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	(void)c;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	return CTL_FAIL;
}

/* "show itl [FILE] [--out V] [--force]": the words, arguments and options. */
static void
format_cmd(const struct ctl_cmd *k, char *out, size_t n)
{
	char buf[256], *save = NULL;
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < CTL_MAX_WORDS && k->words[i] && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%s", i ? " " : "", k->words[i]);
	if (k->args[0] && len < n)
		len += (size_t)snprintf(out + len, n - len, " %s", k->args);
	snprintf(buf, sizeof(buf), "%s", k->opts);
	for (char *o = strtok_r(buf, " ", &save); o && len < n; o = strtok_r(NULL, " ", &save)) {
		size_t on = strlen(o);

		if (o[on - 1] == '=')
			len += (size_t)snprintf(out + len, n - len, " [--%.*s V]", (int)on - 1, o);
		else
			len += (size_t)snprintf(out + len, n - len, " [--%s]", o);
	}
}

static void
print_usage(FILE *f, const struct ctl_cmd *k)
{
	char line[512];

	format_cmd(k, line, sizeof(line));
	fprintf(f, "usage: tvsctl %s\n", line);
}

int
ctl_usage(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	if (c->cmd != NULL)
		print_usage(stderr, c->cmd);
	else
		fputs("usage: tvsctl [--store DIR] [--pub DIR] [--json] [--yes] <command> ...; "
			"tvsctl help lists the commands\n", stderr);
	return CTL_USAGE;
}

int
ctl_fail_err(struct ctl *c)
{
	return ctl_fail(c, "%s", c->err.msg[0] ? c->err.msg : trust_strerror(c->err.code));
}

/* ---- options ------------------------------------------------------------ */

const char *
ctl_opt(const struct ctl *c, const char *name)
{
	for (int i = 0; i < c->nopts; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return c->opts[i].val;
	return NULL;
}

bool
ctl_flag(const struct ctl *c, const char *name)
{
	for (int i = 0; i < c->nopts; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return true;
	return false;
}

int
ctl_opt_uint(struct ctl *c, const char *name, unsigned long min, unsigned long max,
	unsigned long *out, bool *given)
{
	const char *v = ctl_opt(c, name);
	char *end;

	*given = v != NULL;
	if (v == NULL)
		return CTL_OK;
	errno = 0;
	*out = strtoul(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0' || *out < min || *out > max)
		return ctl_usage(c, "bad value '%s' for --%s (a number from %lu to %lu)", v, name,
			min, max);
	return CTL_OK;
}

/* Is --name accepted by the command? *takes_value says if it needs one. */
static bool
cmd_accepts(const struct ctl_cmd *k, const char *name, size_t n, bool *takes_value)
{
	const char *p = k->opts;

	while (*p) {
		size_t len = strcspn(p, " ");
		bool val = len > 0 && p[len - 1] == '=';

		if ((val ? len - 1 : len) == n && strncmp(p, name, n) == 0) {
			*takes_value = val;
			return true;
		}
		p += len;
		p += *p == ' ';
	}
	return false;
}

/* Global options may stand anywhere; they are taken out of argv here. */
static int
parse_globals(struct ctl *c, int *argc, char **argv)
{
	int k = 0;

	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			while (i < *argc)
				argv[k++] = argv[i++];
			break;
		}
		if (strcmp(a, "--json") == 0) {
			c->json = true;
		} else if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0) {
			c->yes = true;
		} else if (strcmp(a, "--store") == 0 || strcmp(a, "--pub") == 0) {
			if (i + 1 == *argc)
				return ctl_usage(c, "option '%s' needs a directory", a);
			*(a[2] == 's' ? &c->store_dir : &c->pub_dir) = argv[++i];
		} else if (strncmp(a, "--store=", 8) == 0) {
			c->store_dir = a + 8;
		} else if (strncmp(a, "--pub=", 6) == 0) {
			c->pub_dir = a + 6;
		} else {
			argv[k++] = argv[i];
		}
	}
	*argc = k;
	return CTL_OK;
}

/* The command whose words are the longest prefix of argv. */
static const struct ctl_cmd *
find_cmd(int argc, char **argv, int *nwords)
{
	const struct ctl_cmd *best = NULL;
	int bestn = 0;

	for (const struct ctl_cmd *k = ctl_cmds; k->words[0]; k++) {
		int n = 0;

		while (n < CTL_MAX_WORDS && k->words[n] && n < argc &&
		    strcasecmp(k->words[n], argv[n]) == 0)
			n++;
		if ((n == CTL_MAX_WORDS || k->words[n] == NULL) && n > bestn) {
			best = k;
			bestn = n;
		}
	}
	*nwords = bestn;
	return best;
}

static int
parse_cmd_args(struct ctl *c, int argc, char **argv)
{
	bool dashdash = false;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool takes;

		if (!dashdash && strcmp(a, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (!dashdash && a[0] == '-' && a[1] == '-') {
			const char *eq = strchr(a, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			if (!cmd_accepts(c->cmd, a + 2, n, &takes))
				return ctl_usage(c, "unknown option '%.*s' for '%s'", (int)n + 2, a,
					c->cmd->words[0]);
			if (c->nopts == CTL_MAX_OPTS)
				return ctl_usage(c, "too many options");
			((char *)a)[eq ? (size_t)(eq - a) : strlen(a)] = '\0';
			c->opts[c->nopts].name = a + 2;
			c->opts[c->nopts].val = NULL;
			if (takes && eq)
				c->opts[c->nopts].val = eq + 1;
			else if (takes && i + 1 < argc)
				c->opts[c->nopts].val = argv[++i];
			else if (takes)
				return ctl_usage(c, "option '--%s' needs a value", a + 2);
			else if (eq)
				return ctl_usage(c, "option '--%s' takes no value", a + 2);
			c->nopts++;
			continue;
		}
		if (c->nargs == CTL_MAX_ARGS || c->nargs == c->cmd->max_args)
			return ctl_usage(c, "unexpected argument '%s'", a);
		c->args[c->nargs++] = argv[i];
	}
	if (c->nargs < c->cmd->min_args)
		return ctl_usage(c, "missing %s", c->cmd->args);
	return CTL_OK;
}

/* ---- help --------------------------------------------------------------- */

int
cmd_help(struct ctl *c)
{
	int shown = 0;

	printf("Commands (level: 0 read, 1 change, 4 replace keys or the store):\n");
	for (const struct ctl_cmd *k = ctl_cmds; k->words[0]; k++) {
		char line[512];
		int i;

		for (i = 0; i < c->nargs; i++)
			if (i >= CTL_MAX_WORDS || !k->words[i] || strcasecmp(k->words[i], c->args[i]))
				break;
		if (i < c->nargs)
			continue;
		format_cmd(k, line, sizeof(line));
		printf("  %s\n      level %d: %s\n", line, k->level, k->help);
		shown++;
	}
	if (shown == 0)
		return ctl_usage(c, "no command starts with '%s'", c->args[0]);
	printf("Global options: --store DIR (default $TVS_STORE or %s), --pub DIR (default "
		"$TVS_PUBLICATIONS or %s), --json (show commands), --yes (no questions).\n",
		DEFAULT_STORE, DEFAULT_PUB);
	return CTL_OK;
}

/* ---- shared helpers ----------------------------------------------------- */

bool
ctl_confirm(struct ctl *c, const char *what, int *rc)
{
	char line[32];

	if (c->yes)
		return true;
	if (!isatty(STDIN_FILENO)) {
		*rc = ctl_usage(c, "'%s %s' needs confirmation and stdin is not a terminal; "
			"add --yes to confirm", c->cmd->words[0], c->cmd->words[1] ? c->cmd->words[1] : "");
		return false;
	}
	printf("%s\nDo you want to continue? (y/n): ", what);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) != NULL &&
	    (strcasecmp(line, "y\n") == 0 || strcasecmp(line, "yes\n") == 0))
		return true;
	printf("Operation cancelled; nothing was changed.\n");
	*rc = CTL_FAIL;
	return false;
}

bool
ctl_store_open(struct ctl *c, int flags, struct trust_store *st)
{
	if (store_open(c->store_dir, flags, st, &c->err) == 0)
		return true;
	if (c->err.code == TRUST_ENOTFOUND)
		ctl_fail(c, "%s; create one with: tvsctl --store %s store init", c->err.msg,
			c->store_dir);
	else
		ctl_fail_err(c);
	return false;
}

int
ctl_store_commit(struct ctl *c, struct trust_store *st, const char *done_fmt, ...)
{
	va_list ap;

	if (store_commit(st, &c->err) != 0)
		return ctl_fail_err(c);
	/* garbage is harmless: a failed gc must not report the change as failed */
	if (store_gc(st, &c->err) < 0)
		fprintf(stderr, "tvsctl: warning: %s\n", c->err.msg);
	va_start(ap, done_fmt);
	vprintf(done_fmt, ap);
	va_end(ap);
	printf("\nThe trust store is now generation %llu. Run 'tvsctl publish' to sign and "
		"publish the ITL and configs with this change.\n", (unsigned long long)st->generation);
	return CTL_OK;
}

void
ctl_hex_colon(const unsigned char *p, size_t n, char *out, size_t outsz)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && k + 4 < outsz; i++)
		k += (size_t)snprintf(out + k, outsz - k, "%s%02X", i ? ":" : "", p[i]);
}

void
ctl_time(long t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, n, "%ld", t);
}

/* ---- main --------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	struct ctl c = { 0 };
	int nwords, rc;

	c.store_dir = getenv("TVS_STORE") ? getenv("TVS_STORE") : DEFAULT_STORE;
	c.pub_dir = getenv("TVS_PUBLICATIONS") ? getenv("TVS_PUBLICATIONS") : DEFAULT_PUB;
	argc--, argv++;
	if ((rc = parse_globals(&c, &argc, argv)) != CTL_OK)
		return rc;
	if (argc == 0)
		return ctl_usage(&c, "no command given");
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)
		argv[0] = "help";
	c.cmd = find_cmd(argc, argv, &nwords);
	if (c.cmd == NULL) {
		int dummy;
		bool known = find_cmd(1, argv, &dummy) != NULL;

		for (const struct ctl_cmd *k = ctl_cmds; k->words[0] && !known; k++)
			known = strcasecmp(k->words[0], argv[0]) == 0;
		return ctl_usage(&c, known ? "unknown command '%s %s'; try: tvsctl help %s" :
			"unknown command '%s'%s; try: tvsctl help%s", argv[0],
			known && argc > 1 ? argv[1] : "", known ? argv[0] : "");
	}
	if ((rc = parse_cmd_args(&c, argc - nwords, argv + nwords)) != CTL_OK)
		return rc;
	return c.cmd->fn(&c);
}
