/*
 * Command-line options common to tftpgen and tftpload: who the phones are,
 * what they fetch, how many at once and for how long. Each tool adds its
 * own few options around these.
 */
#ifndef TG_OPTS_H
#define TG_OPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tgproto.h"

struct tg_opts {
	uint32_t server_ip;	/* host order */
	uint16_t server_port;
	uint32_t src_ip;	/* host order; 0: the tool's default */
	uint32_t src_count;	/* phones' addresses: src_ip .. + src_count - 1 */
	uint32_t phones;	/* distinct MACs, i.e. file names */
	uint64_t mac_base;
	const char *name;	/* fixed file name instead of ITLSEP<MAC>.tlv */
	uint32_t concurrency;
	uint64_t transfers;
	double duration_s;
	double grace_s;		/* after the deadline, for transfers in flight */
	const char *label;
	const char *verify_path;
	bool quiet;		/* JSON line only */
	struct tg_params p;
	uint8_t *verify_buf;
};

enum {
	TG_OPT_SERVER = 1000, TG_OPT_SERVER_PORT, TG_OPT_SRC, TG_OPT_SRC_COUNT,
	TG_OPT_PHONES, TG_OPT_MAC_BASE, TG_OPT_NAME, TG_OPT_CONCURRENCY,
	TG_OPT_TRANSFERS, TG_OPT_DURATION, TG_OPT_GRACE, TG_OPT_BLKSIZE,
	TG_OPT_WINDOWSIZE, TG_OPT_NO_TSIZE, TG_OPT_TIMEOUT, TG_OPT_RETRIES,
	TG_OPT_VERIFY, TG_OPT_EXPECT, TG_OPT_LABEL, TG_OPT_QUIET,
	TG_OPT_TOOL = 1100,	/* first free key for the tools' own options */
};

#define TG_COMMON_LONGOPTS \
	{ "server", required_argument, NULL, TG_OPT_SERVER }, \
	{ "server-port", required_argument, NULL, TG_OPT_SERVER_PORT }, \
	{ "src", required_argument, NULL, TG_OPT_SRC }, \
	{ "src-count", required_argument, NULL, TG_OPT_SRC_COUNT }, \
	{ "phones", required_argument, NULL, TG_OPT_PHONES }, \
	{ "mac-base", required_argument, NULL, TG_OPT_MAC_BASE }, \
	{ "name", required_argument, NULL, TG_OPT_NAME }, \
	{ "concurrency", required_argument, NULL, TG_OPT_CONCURRENCY }, \
	{ "transfers", required_argument, NULL, TG_OPT_TRANSFERS }, \
	{ "duration", required_argument, NULL, TG_OPT_DURATION }, \
	{ "grace", required_argument, NULL, TG_OPT_GRACE }, \
	{ "blksize", required_argument, NULL, TG_OPT_BLKSIZE }, \
	{ "windowsize", required_argument, NULL, TG_OPT_WINDOWSIZE }, \
	{ "no-tsize", no_argument, NULL, TG_OPT_NO_TSIZE }, \
	{ "timeout-ms", required_argument, NULL, TG_OPT_TIMEOUT }, \
	{ "retries", required_argument, NULL, TG_OPT_RETRIES }, \
	{ "verify", required_argument, NULL, TG_OPT_VERIFY }, \
	{ "expect-size", required_argument, NULL, TG_OPT_EXPECT }, \
	{ "label", required_argument, NULL, TG_OPT_LABEL }, \
	{ "quiet", no_argument, NULL, TG_OPT_QUIET }

void tg_opts_defaults(struct tg_opts *o);
/* getopt_long over longopts (TG_COMMON_LONGOPTS plus the tool's own and
 * "help"/'h'): common keys are taken here, the others go to tool_opt (may
 * be NULL), -h prints usage and exits. 0 or -1 (message printed). */
int tg_opts_parse(struct tg_opts *o, int argc, char **argv, const struct option *longopts,
	int (*tool_opt)(int key, const char *arg), void (*usage)(FILE *f));
/* 1: handled, 0: not a common option, -1: bad value (message printed). */
int tg_opts_take(struct tg_opts *o, int key, const char *arg);
/* Loads --verify; checks ranges. 0 or -1 (message printed). */
int tg_opts_finish(struct tg_opts *o);
void tg_opts_release(struct tg_opts *o);
void tg_opts_usage(FILE *f);

/* The file name phone number i asks for. */
void tg_opts_name(const struct tg_opts *o, uint64_t phone, char *out, size_t outsz);

int tg_parse_ipv4(const char *s, uint32_t *ip);	/* host order; 0 or -1 */
void tg_format_ipv4(uint32_t ip, char *out, size_t outsz);

#endif
