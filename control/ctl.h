/*
 * tvsctl internals: the command table (HAProxy cli_kw / Knot cmd_table
 * style: words, usage, privilege level, handler) and what handlers share.
 *
 * Exit codes: 0 done, 1 the operation failed (the library's message is
 * printed), 2 the command line was wrong (one line naming the bad word,
 * then the usage).
 */
#ifndef CONTROL_CTL_H
#define CONTROL_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "cdproto.h"
#include "json.h"
#include "store.h"
#include "trust.h"

#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2
#define CTL_LOCKED 3		/* controld: another session holds the store */
#define CTL_NOT_SERVED 4	/* controld: published, but tvsd does not serve it (yet) */

#define CTL_DEFAULT_STORE "/var/lib/tvs/store"
#define CTL_DEFAULT_PUB "/var/lib/tvs/publications"
#define CTL_DEFAULT_CONTROLD "/run/tvs/controld.sock"

#define CTL_MAX_WORDS 4
#define CTL_MAX_OPTS 12
#define CTL_MAX_ARGS 8

struct ctl;

struct ctl_cmd {
	const char *words[CTL_MAX_WORDS];
	const char *args;	/* usage of what follows the words */
	const char *opts;	/* accepted options: "out= cert= force" ('=' takes a value) */
	int min_args, max_args;
	int level;		/* CUCM privilege level: 0 read, 1 change, 4 replace keys */
	const char *help;
	int (*fn)(struct ctl *c);
	unsigned flags;		/* CTL_F_* */
};

/* The command changes trust: tvs-controld runs it (then publishes and
 * waits for tvsd) when its socket answers; tvsctl runs it itself when not. */
#define CTL_F_CHANGE 1u
/* Runs in tvs-controld when it answers (it holds state tvsctl has not). */
#define CTL_F_DAEMON 2u
/* Its file arguments are written, not read (tvsctl creates them). */
#define CTL_F_WRITES 4u

/* Privilege levels (struct ctl_cmd.level): who tvs-controld lets run it. */
#define CTL_LEVEL_READ 0	/* the socket's group */
#define CTL_LEVEL_CHANGE 1	/* the admin group */
#define CTL_LEVEL_KEYS 4	/* root (or the key group) */

struct ctl_opt {
	const char *name;	/* without the leading "--" */
	const char *val;	/* NULL for flags */
};

/*
 * How a command reaches the world: tvsctl fills these with the terminal;
 * tvs-controld with its client's socket and its publish-and-serve step.
 * NULL members mean the terminal / the offline behaviour.
 */
struct ctl_hooks {
	/* A question for the operator: a y/n confirmation, or a secret read
	 * without echo. Writes the answer (no newline); -1 when there is none. */
	int (*ask)(struct ctl *c, bool secret, const char *prompt, char *ans, size_t n);
	/* The store was committed (still locked): publish it and have it served. */
	int (*committed)(struct ctl *c, struct trust_store *st);
	/* `publish` published generation gen (0: nothing new): have it served. */
	int (*published)(struct ctl *c, struct trust_store *st, uint64_t gen);
	/* Fresh knowledge of which phones fetched which ITL (before reading it). */
	void (*rollout_refresh)(struct ctl *c);
};

struct ctl {
	const char *store_dir;
	const char *pub_dir;
	const char *controld;	/* socket of tvs-controld; "" or "none": never */
	const char *tvsd_user;	/* owner of a publication's tvs.key; NULL: publish's default */
	bool store_given;	/* --store or $TVS_STORE (else the default) */
	bool pub_given;
	FILE *out;		/* outcome lines (stdout) */
	FILE *errf;		/* messages (stderr) */
	const struct ctl_hooks *hooks;
	void *hook_arg;
	unsigned configs_rejected;	/* by the last publish (hooks count them) */
	const char *configs_rejected_names; /* its "name (why), ..." while the hook runs */
	bool json;
	bool yes;
	const struct ctl_cmd *cmd;
	char *args[CTL_MAX_ARGS];
	int nargs;
	struct ctl_opt opts[CTL_MAX_OPTS];
	int nopts;
	struct trust_err err;
	/* `utils itl reset remotekey`: the pair that signs the next ITL */
	const struct trust_cert *itl_cert;
	EVP_PKEY *itl_key;
	/* controld: the descriptors the client opened for its file words */
	struct ctl_file {
		const char *word;	/* the argument or option value, by address */
		int fd;
		char path[32];		/* /proc/self/fd/N */
	} files[CD_FDS_MAX];
	int nfiles;
};

extern const struct ctl_cmd ctl_cmds[];

/* Global options out of argv, then the command and its arguments into c;
 * argv is modified (shortened, "--opt=val" split). Returns an exit code. */
int ctl_parse_globals(struct ctl *c, int *argc, char **argv);
int ctl_parse(struct ctl *c, int argc, char **argv);
/* tvsctl: runs the parsed CTL_F_CHANGE/CTL_F_DAEMON command in
 * tvs-controld (remote.c). Returns the exit code, or CTL_OFFLINE when no
 * controld answers (or it manages another store): then run it here. */
#define CTL_OFFLINE (-1)
int ctl_remote_run(struct ctl *c);
/* One typed query (CD_MEMORY, CD_STATS) to tvs-controld; the reply must be
 * exactly len bytes. 0, or -1 with why in err. */
int ctl_remote_query(struct ctl *c, uint32_t type, void *reply, size_t len, char *err,
	size_t errsz);

/* Which arguments and options name files, as the kind of descriptor
 * tvsctl passes for them to controld (CD_FD_*), or 0. */
int ctl_arg_file(const struct ctl_cmd *k, int i);
int ctl_opt_file(const char *name);
/* The path a handler opens for a file word: the descriptor the client
 * passed (as /proc/self/fd/N) in controld, else the word itself. */
const char *ctl_path(const struct ctl *c, const char *word);
/* The passed descriptor of a file word, or -1 (offline: open the word). */
int ctl_path_fd(const struct ctl *c, const char *word);

/* Messages: stderr, prefixed "tvsctl: "; they return the exit code. */
int ctl_fail(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctl_usage(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The library's message in c->err. */
int ctl_fail_err(struct ctl *c);

const char *ctl_opt(const struct ctl *c, const char *name);	/* value or NULL */
bool ctl_flag(const struct ctl *c, const char *name);
/* --name N as an unsigned in [min, max]; usage error when it is not. */
int ctl_opt_uint(struct ctl *c, const char *name, unsigned long min, unsigned long max,
	unsigned long *out, bool *given);

/* Destructive commands: true when --yes was given or the operator typed
 * y; otherwise *rc is set (2 when stdin is not a terminal, 1 when the
 * operator said no). what is printed before the question. */
bool ctl_confirm(struct ctl *c, const char *what, int *rc);
/* A passphrase: from --passphrase-file F when given, else asked without
 * echo (twice when confirm). 0, or an exit code after the message. */
int ctl_passphrase(struct ctl *c, bool confirm, char *out, size_t n);
/* One line from /dev/tty without echo; -1 when there is no terminal. */
int ctl_tty_secret(const char *prompt, char *out, size_t n);

/* Store access for handlers: print the error and return false on failure. */
bool ctl_store_open(struct ctl *c, int flags, struct trust_store *st);
/* Commit + gc, then the admin-style outcome line and the publish reminder. */
int ctl_store_commit(struct ctl *c, struct trust_store *st, const char *done_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The ordering rule of `set cert regen CallManager` (cmd_ops.c): CTL_OK
 * when every known phone fetched an ITL with the current TVS certificate,
 * else the explanation and CTL_FAIL. */
int ctl_rollout_guard(struct ctl *c, const struct trust_store *st);

/* Formatting shared by the show commands. */
void ctl_hex_colon(const unsigned char *p, size_t n, char *out, size_t outsz);
void ctl_time(long t, char *out, size_t n);

/* Handlers, by file. */
int cmd_help(struct ctl *c);
int cmd_show_itl(struct ctl *c);
int cmd_show_ctl(struct ctl *c);
int cmd_show_cert_list(struct ctl *c);
int cmd_show_cert_own(struct ctl *c);
int cmd_show_store(struct ctl *c);
int cmd_show_tvs_status(struct ctl *c);
int cmd_show_tvs_stats(struct ctl *c);
int cmd_store_init(struct ctl *c);
int cmd_store_check(struct ctl *c);
int cmd_store_gc(struct ctl *c);
int cmd_set_store(struct ctl *c);
int cmd_set_cluster(struct ctl *c);
int cmd_cert_regen(struct ctl *c);
int cmd_cert_import_trust(struct ctl *c);
int cmd_cert_import_own(struct ctl *c);
int cmd_cert_delete(struct ctl *c);
int cmd_phone_set(struct ctl *c);
int cmd_phone_delete(struct ctl *c);
int cmd_publish(struct ctl *c);
int cmd_sgn_sign(struct ctl *c);
int cmd_sgn_verify(struct ctl *c);
int cmd_sgn_strip(struct ctl *c);
int cmd_enc_encrypt(struct ctl *c);
int cmd_enc_decrypt(struct ctl *c);
int cmd_show_memory(struct ctl *c);
int cmd_show_itl_rollout(struct ctl *c);
int cmd_set_param(struct ctl *c);
int cmd_itl_reset(struct ctl *c);
int cmd_dr_backup(struct ctl *c);
int cmd_dr_restore(struct ctl *c);

#endif
