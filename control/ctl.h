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

#include "json.h"
#include "store.h"
#include "trust.h"

#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2

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
};

struct ctl_opt {
	const char *name;	/* without the leading "--" */
	const char *val;	/* NULL for flags */
};

struct ctl {
	const char *store_dir;
	const char *pub_dir;
	bool json;
	bool yes;
	const struct ctl_cmd *cmd;
	char *args[CTL_MAX_ARGS];
	int nargs;
	struct ctl_opt opts[CTL_MAX_OPTS];
	int nopts;
	struct trust_err err;
};

extern const struct ctl_cmd ctl_cmds[];

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

/* Store access for handlers: print the error and return false on failure. */
bool ctl_store_open(struct ctl *c, int flags, struct trust_store *st);
/* Commit + gc, then the admin-style outcome line and the publish reminder. */
int ctl_store_commit(struct ctl *c, struct trust_store *st, const char *done_fmt, ...)
	__attribute__((format(printf, 3, 4)));

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

#endif
