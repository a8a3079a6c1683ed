/*
 * Options shared by tftpgen and tftpload (tgopts.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tgopts.h"

void
tg_opts_defaults(struct tg_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->server_port = TG_PORT;
	o->src_count = 1;
	o->phones = 1000;
	o->mac_base = 0x0a1b2c000000ULL;
	o->concurrency = 16;
	o->transfers = 1000;
	o->duration_s = 10;
	o->grace_s = 2;
	o->label = "";
	o->p.blksize = 1428;
	o->p.windowsize = 0;
	o->p.tsize = true;
	o->p.retries = 5;
	o->p.timeout_ns = 1000ULL * 1000 * 1000;
	o->p.expect_size = -1;
}

int
tg_parse_ipv4(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*ip = ntohl(a.s_addr);
	return 0;
}

void
tg_format_ipv4(uint32_t ip, char *out, size_t outsz)
{
	struct in_addr a = { .s_addr = htonl(ip) };

	if (inet_ntop(AF_INET, &a, out, outsz) == NULL)
		snprintf(out, outsz, "?");
}

static int
num(const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(arg, &end, 0);
	if (errno || end == arg || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "--%s: '%s' is not a number in [%llu, %llu]\n", opt, arg,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*v = n;
	return 0;
}

static int
seconds(const char *opt, const char *arg, double *v)
{
	char *end;
	double d = strtod(arg, &end);

	if (end == arg || *end != '\0' || !(d > 0) || d > 86400) {
		fprintf(stderr, "--%s: '%s' is not a duration in seconds (0, 86400]\n", opt, arg);
		return -1;
	}
	*v = d;
	return 0;
}

int
tg_opts_take(struct tg_opts *o, int key, const char *arg)
{
	uint64_t v = 0;

	switch (key) {
	case TG_OPT_SERVER:
		if (tg_parse_ipv4(arg, &o->server_ip) < 0) {
			fprintf(stderr, "--server: '%s' is not an IPv4 address\n", arg);
			return -1;
		}
		return 1;
	case TG_OPT_SRC:
		if (tg_parse_ipv4(arg, &o->src_ip) < 0) {
			fprintf(stderr, "--src: '%s' is not an IPv4 address\n", arg);
			return -1;
		}
		return 1;
	case TG_OPT_SERVER_PORT:
		if (num("server-port", arg, 1, 65535, &v) < 0)
			return -1;
		o->server_port = v;
		return 1;
	case TG_OPT_SRC_COUNT:
		if (num("src-count", arg, 1, 1 << 20, &v) < 0)
			return -1;
		o->src_count = v;
		return 1;
	case TG_OPT_PHONES:
		if (num("phones", arg, 1, 1 << 24, &v) < 0)
			return -1;
		o->phones = v;
		return 1;
	case TG_OPT_MAC_BASE:
		if (num("mac-base", arg, 0, 0xffffffffffffULL, &v) < 0)
			return -1;
		o->mac_base = v;
		return 1;
	case TG_OPT_NAME:
		if (strlen(arg) == 0 || strlen(arg) >= TG_NAME_MAX) {
			fprintf(stderr, "--name: file name must have 1 to %d bytes\n",
				TG_NAME_MAX - 1);
			return -1;
		}
		o->name = arg;
		return 1;
	case TG_OPT_CONCURRENCY:
		if (num("concurrency", arg, 1, 1 << 16, &v) < 0)
			return -1;
		o->concurrency = v;
		return 1;
	case TG_OPT_TRANSFERS:
		if (num("transfers", arg, 1, 1ULL << 40, &v) < 0)
			return -1;
		o->transfers = v;
		return 1;
	case TG_OPT_DURATION:
		return seconds("duration", arg, &o->duration_s) < 0 ? -1 : 1;
	case TG_OPT_GRACE:
		return seconds("grace", arg, &o->grace_s) < 0 ? -1 : 1;
	case TG_OPT_BLKSIZE:
		if (num("blksize", arg, 0, 65464, &v) < 0)
			return -1;
		if (v != 0 && v < 8) {
			fprintf(stderr, "--blksize: %llu is below the RFC 2348 minimum 8\n",
				(unsigned long long)v);
			return -1;
		}
		o->p.blksize = v;
		return 1;
	case TG_OPT_WINDOWSIZE:
		if (num("windowsize", arg, 0, 65535, &v) < 0)
			return -1;
		o->p.windowsize = v;
		return 1;
	case TG_OPT_NO_TSIZE:
		o->p.tsize = false;
		return 1;
	case TG_OPT_TIMEOUT:
		if (num("timeout-ms", arg, 1, 600000, &v) < 0)
			return -1;
		o->p.timeout_ns = v * 1000 * 1000;
		return 1;
	case TG_OPT_RETRIES:
		if (num("retries", arg, 0, 100, &v) < 0)
			return -1;
		o->p.retries = v;
		return 1;
	case TG_OPT_VERIFY:
		o->verify_path = arg;
		return 1;
	case TG_OPT_EXPECT:
		if (num("expect-size", arg, 0, 1ULL << 40, &v) < 0)
			return -1;
		o->p.expect_size = v;
		return 1;
	case TG_OPT_LABEL:
		o->label = arg;
		return 1;
	case TG_OPT_QUIET:
		o->quiet = true;
		return 1;
	default:
		return 0;
	}
}

int
tg_opts_parse(struct tg_opts *o, int argc, char **argv, const struct option *longopts,
	int (*tool_opt)(int key, const char *arg), void (*usage)(FILE *f))
{
	int key;

	while ((key = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = tg_opts_take(o, key, optarg);

		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		if (key == 'h') {
			usage(stdout);
			exit(0);
		}
		if (key < TG_OPT_TOOL || tool_opt == NULL) {
			usage(stderr);
			return -1;
		}
		if (tool_opt(key, optarg) < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return -1;
	}
	return 0;
}

static int
load_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (f == NULL) {
		fprintf(stderr, "--verify: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		fprintf(stderr, "--verify: cannot size %s\n", path);
		fclose(f);
		return -1;
	}
	*buf = malloc(n ? n : 1);
	if (*buf == NULL || fread(*buf, 1, n, f) != (size_t)n) {
		fprintf(stderr, "--verify: cannot read %s\n", path);
		free(*buf);
		*buf = NULL;
		fclose(f);
		return -1;
	}
	fclose(f);
	*len = n;
	return 0;
}

int
tg_opts_finish(struct tg_opts *o)
{
	if (o->verify_path != NULL) {
		if (load_file(o->verify_path, &o->verify_buf, &o->p.verify_len) < 0)
			return -1;
		o->p.verify = o->verify_buf;
	}
	if (o->transfers < o->concurrency)
		o->concurrency = o->transfers;
	return 0;
}

void
tg_opts_release(struct tg_opts *o)
{
	free(o->verify_buf);
	o->verify_buf = NULL;
	o->p.verify = NULL;
}

void
tg_opts_name(const struct tg_opts *o, uint64_t phone, char *out, size_t outsz)
{
	if (o->name != NULL)
		snprintf(out, outsz, "%s", o->name);
	else
		tg_phone_name(out, outsz, o->mac_base + phone % o->phones);
}

void
tg_opts_usage(FILE *f)
{
	fputs("phones and load:\n"
	"  --server IP            TFTP server address (required)\n"
	"  --server-port N        its port (69)\n"
	"  --src IP               first phone address\n"
	"  --src-count N          phones use N consecutive addresses (1)\n"
	"  --phones N             distinct phones (MACs, file names) (1000)\n"
	"  --mac-base HEX         MAC of phone 0 (0x0a1b2c000000)\n"
	"  --name FILE            fetch FILE instead of ITLSEP<MAC>.tlv\n"
	"  --concurrency N        transfers in flight (16)\n"
	"  --transfers N          stop after N transfers (1000)\n"
	"  --duration S           stop starting transfers after S seconds (10)\n"
	"  --grace S              then wait at most S seconds for those in flight (2)\n"
	"protocol:\n"
	"  --blksize N            ask RFC 2348 blksize N, 0 = do not ask (1428)\n"
	"  --windowsize N         ask RFC 7440 windowsize N, 0 = do not ask (0)\n"
	"  --no-tsize             do not ask RFC 2349 tsize\n"
	"  --timeout-ms N         client retransmission timeout (1000)\n"
	"  --retries N            retransmissions before a transfer fails (5)\n"
	"  --verify FILE          compare every block with FILE\n"
	"  --expect-size N        fail transfers that do not deliver N bytes\n"
	"output:\n"
	"  --label TEXT           tag for the report\n"
	"  --quiet                print only the JSON line\n", f);
}
