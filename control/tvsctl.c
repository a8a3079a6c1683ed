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
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ctl.h"

#define DEFAULT_STORE CTL_DEFAULT_STORE
#define DEFAULT_PUB CTL_DEFAULT_PUB

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
	{ { "show", "memory" }, "", "socket=", 0, 0, 0,
		"allocator statistics of tvs-controld and tvsd (jemalloc, DPDK hugepage heaps)",
		cmd_show_memory },
	{ { "show", "itl", "rollout" }, "", "", 0, 0, 0,
		"per ITL generation, how many phones fetched it; who lacks the newest",
		cmd_show_itl_rollout, CTL_F_DAEMON },
	{ { "store", "init" }, "",
		"hostname= ipv4= key-bits= itl-signer= hash= force", 0, 0, 4,
		"create a trust store with fresh self-signed certificates", cmd_store_init },
	{ { "store", "check" }, "", "", 0, 0, 0,
		"check the index checksum and every object of the store", cmd_store_check },
	{ { "store", "gc" }, "", "", 0, 0, 1,
		"remove objects no entry refers to and crash leftovers", cmd_store_gc },
	{ { "set", "store" }, "<setting> <value>", "", 2, 2, 1,
		"change a setting (see show store for the names)", cmd_set_store, CTL_F_CHANGE },
	{ { "set", "param", "rollback-pre8" }, "true|false", "", 1, 1, 1,
		"publish an ITL phones give up (true), or the normal one again (false)",
		cmd_set_param, CTL_F_CHANGE },
	{ { "utils", "ctl", "set-cluster" }, "mixed-mode|non-secure-mode", "", 1, 1, 1,
		"switch the security mode (mixed mode publishes a CTL)", cmd_set_cluster, CTL_F_CHANGE },
	{ { "utils", "itl", "reset" }, "localkey|remotekey [<p12>]", "passphrase-file=", 1, 2, 4,
		"sign the ITL once with the other SAST key (localkey) or an ITLRecovery.p12",
		cmd_itl_reset, CTL_F_CHANGE },
	{ { "utils", "disaster_recovery", "backup" }, "<file>", "passphrase-file=", 1, 1, 4,
		"write the whole store, keys included, encrypted with a passphrase",
		cmd_dr_backup, CTL_F_DAEMON | CTL_F_WRITES },
	{ { "utils", "disaster_recovery", "restore" }, "<file>", "passphrase-file=", 1, 1, 4,
		"replace the store with a backup (same keys: phones keep trusting the ITL)",
		cmd_dr_restore, CTL_F_CHANGE },
	{ { "set", "cert", "regen" }, "<unit>", "force", 1, 1, 4,
		"regenerate the key and self-signed certificate of a unit", cmd_cert_regen,
		CTL_F_CHANGE },
	{ { "set", "cert", "import", "trust" }, "<role[,role...]> <pem>", "name= ttl=", 2, 2, 1,
		"trust a certificate with roles (TVS, CCM+TFTP, APP-SERVER, ...)",
		cmd_cert_import_trust, CTL_F_CHANGE },
	{ { "set", "cert", "import", "own" }, "<unit> <pem> <key>", "", 3, 3, 4,
		"replace a unit's certificate and key with imported ones", cmd_cert_import_own,
		CTL_F_CHANGE },
	{ { "set", "cert", "delete" }, "<name>", "", 1, 1, 1,
		"stop trusting a certificate", cmd_cert_delete, CTL_F_CHANGE },
	{ { "set", "phone", "cert", "delete" }, "<SEP...>", "", 1, 1, 1,
		"forget a phone's certificate (its config is signed, not encrypted)",
		cmd_phone_delete, CTL_F_CHANGE },
	{ { "set", "phone", "cert" }, "<SEP...> <pem>", "", 2, 2, 1,
		"register a phone's certificate: its config is published encrypted", cmd_phone_set,
		CTL_F_CHANGE },
	{ { "publish" }, "", "configs= force", 0, 0, 1,
		"build, sign and publish the ITL, CTL and configs of the store", cmd_publish,
		CTL_F_CHANGE },
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

static FILE *
errf(const struct ctl *c)
{
	return c != NULL && c->errf != NULL ? c->errf : stderr;
}

static void
vmsg(struct ctl *c, const char *fmt, va_list ap)
{
	fputs("tvsctl: ", errf(c));
	vfprintf(errf(c), fmt, ap);
	fputc('\n', errf(c));
}

int
ctl_fail(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
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
	vmsg(c, fmt, ap);
	va_end(ap);
	if (c->cmd != NULL)
		print_usage(errf(c), c->cmd);
	else
		fputs("usage: tvsctl [--store DIR] [--pub DIR] [--controld SOCKET] [--tvsd-user NAME] "
			"[--json] [--yes] "
			"<command> ...; tvsctl help lists the commands\n", errf(c));
	return CTL_USAGE;
}

int
ctl_fail_err(struct ctl *c)
{
	return ctl_fail(c, "%s", c->err.msg[0] ? c->err.msg : trust_strerror(c->err.code));
}

/* ---- file words ----------------------------------------------------------- */

/* Arguments whose usage word names a file: <pem>, <key>, <file>, <p12>. */
int
ctl_arg_file(const struct ctl_cmd *k, int i)
{
	char buf[256], *save = NULL, *t;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", k->args);
	for (t = strtok_r(buf, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save), n++) {
		if (n != i)
			continue;
		if (!strstr(t, "pem>") && !strstr(t, "key>") && !strstr(t, "file>") &&
		    !strstr(t, "p12>"))
			return 0;
		return k->flags & CTL_F_WRITES ? CD_FD_WRITE : CD_FD_READ;
	}
	return 0;
}

int
ctl_opt_file(const char *name)
{
	if (strcmp(name, "configs") == 0)
		return CD_FD_DIR;
	return strcmp(name, "passphrase-file") == 0 ? CD_FD_READ : 0;
}

static const struct ctl_file *
file_of(const struct ctl *c, const char *word)
{
	for (int i = 0; i < c->nfiles; i++)
		if (c->files[i].word == word)
			return &c->files[i];
	return NULL;
}

const char *
ctl_path(const struct ctl *c, const char *word)
{
	const struct ctl_file *f = file_of(c, word);

	return f != NULL ? f->path : word;
}

int
ctl_path_fd(const struct ctl *c, const char *word)
{
	const struct ctl_file *f = file_of(c, word);

	return f != NULL ? f->fd : -1;
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
int
ctl_parse_globals(struct ctl *c, int *argc, char **argv)
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
		} else if (strcmp(a, "--controld") == 0) {
			if (i + 1 == *argc)
				return ctl_usage(c, "option '%s' needs a socket path (or none)", a);
			c->controld = argv[++i];
		} else if (strcmp(a, "--tvsd-user") == 0) {
			if (i + 1 == *argc)
				return ctl_usage(c, "option '%s' needs a user name", a);
			c->tvsd_user = argv[++i];
		} else if (strncmp(a, "--controld=", 11) == 0) {
			c->controld = a + 11;
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

	printf("Commands (level: 0 read, 1 change, 4 replace keys or the store; tvs-controld lets\n"
		"group tvs read, group tvsadmin change and root replace keys, by default):\n");
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
		"$TVS_PUBLICATIONS or %s), --controld SOCKET (default $TVS_CONTROLD or %s; none: "
		"never), --tvsd-user NAME (owner of tvs/tvs.key in what tvsctl publishes itself; "
		"default tvsd when that user exists; tvs-controld has its own --tvsd-user), "
		"--json (show commands), --yes (no questions).\n"
		"Commands that change trust go through tvs-controld when it runs (it publishes and "
		"waits until tvsd serves the change); otherwise tvsctl changes the store itself.\n",
		DEFAULT_STORE, DEFAULT_PUB, CTL_DEFAULT_CONTROLD);
	return CTL_OK;
}

/* ---- shared helpers ----------------------------------------------------- */

bool
ctl_confirm(struct ctl *c, const char *what, int *rc)
{
	char line[32];

	if (c->yes)
		return true;
	if (c->hooks != NULL && c->hooks->ask != NULL) {
		if (c->hooks->ask(c, false, what, line, sizeof(line)) == 0 &&
		    (strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0))
			return true;
		fprintf(c->out, "Operation cancelled; nothing was changed.\n");
		*rc = CTL_FAIL;
		return false;
	}
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

/* One line from the terminal, echo off; -1 when there is no terminal. */
int
ctl_tty_secret(const char *prompt, char *out, size_t n)
{
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+e");
	int rc = -1;

	if (tty == NULL)
		return -1;
	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		fputs(prompt, tty);
		fflush(tty);
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		if (fgets(out, (int)n, tty) != NULL) {
			out[strcspn(out, "\r\n")] = '\0';
			rc = 0;
		}
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
		fputc('\n', tty);
	}
	fclose(tty);
	return rc;
}

static int
ask_secret(struct ctl *c, const char *prompt, char *out, size_t n)
{
	if (c->hooks != NULL && c->hooks->ask != NULL)
		return c->hooks->ask(c, true, prompt, out, n);
	return ctl_tty_secret(prompt, out, n);
}

int
ctl_passphrase(struct ctl *c, bool confirm, char *out, size_t n)
{
	const char *file = ctl_opt(c, "passphrase-file");
	char again[256];
	int rc = CTL_OK;

	out[0] = '\0';
	if (file != NULL) {
		FILE *f = fopen(ctl_path(c, file), "re");

		if (f == NULL)
			return ctl_fail(c, "passphrase file %s: %s", file, strerror(errno));
		if (fgets(out, (int)n, f) == NULL)
			out[0] = '\0';
		fclose(f);
		out[strcspn(out, "\r\n")] = '\0';
		if (out[0] == '\0')
			return ctl_fail(c, "passphrase file %s: the first line is empty", file);
		return CTL_OK;
	}
	if (ask_secret(c, "Passphrase: ", out, n) != 0)
		return ctl_usage(c, "no terminal to ask the passphrase on; use --passphrase-file F");
	if (out[0] == '\0')
		rc = ctl_fail(c, "empty passphrase");
	else if (confirm && (ask_secret(c, "Passphrase again: ", again, sizeof(again)) != 0 ||
	    strcmp(again, out) != 0))
		rc = ctl_fail(c, "the two passphrases differ");
	OPENSSL_cleanse(again, sizeof(again));
	if (rc != CTL_OK)
		OPENSSL_cleanse(out, n);
	return rc;
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

	/* `utils itl reset` signs with the other SAST for one publication:
	 * any other change returns to the normal signer */
	if (c->cmd->fn != cmd_itl_reset)
		st->set.reset_signer = false;
	if (store_commit(st, &c->err) != 0)
		return ctl_fail_err(c);
	/* garbage is harmless: a failed gc must not report the change as failed */
	if (store_gc(st, &c->err) < 0)
		fprintf(errf(c), "tvsctl: warning: %s\n", c->err.msg);
	va_start(ap, done_fmt);
	vfprintf(c->out, done_fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	if (c->hooks != NULL && c->hooks->committed != NULL)
		return c->hooks->committed(c, st);
	fprintf(c->out, "The trust store is now generation %llu. Run 'tvsctl publish' to sign and "
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

/* ---- parsing ------------------------------------------------------------ */

int
ctl_parse(struct ctl *c, int argc, char **argv)
{
	int nwords;

	if (argc == 0)
		return ctl_usage(c, "no command given");
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)
		argv[0] = "help";
	/* the options were taken before the command: a dash word left here
	 * is an option nobody knows, not a command */
	if (argv[0][0] == '-')
		return ctl_usage(c, "unknown option '%s'", argv[0]);
	c->cmd = find_cmd(argc, argv, &nwords);
	if (c->cmd == NULL) {
		int dummy;
		bool known = find_cmd(1, argv, &dummy) != NULL;

		for (const struct ctl_cmd *k = ctl_cmds; k->words[0] && !known; k++)
			known = strcasecmp(k->words[0], argv[0]) == 0;
		return ctl_usage(c, known ? "unknown command '%s %s'; try: tvsctl help %s" :
			"unknown command '%s'%s; try: tvsctl help%s", argv[0],
			known && argc > 1 ? argv[1] : "", known ? argv[0] : "");
	}
	return parse_cmd_args(c, argc - nwords, argv + nwords);
}
