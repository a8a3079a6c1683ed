/*
 * cfg: the INI configuration of tvsd, read with rte_cfgfile and checked
 * once into a plain struct that the rest of the program reads.
 *
 * One schema table (cfg.c) lists every section and key with its type,
 * range, default and help line. Parsing, defaults, validation and the
 * generated documentation (CONFIG.md, `tvsd --help-config`) all come from
 * that table, so they cannot drift apart.
 *
 * This module links only rte_cfgfile: no EAL, so `tvsd -n`, tvsctl and the
 * unit tests use it as a plain library.
 */
#ifndef CFG_CFG_H
#define CFG_CFG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_MAX_PORTS 8		/* sections [port0] .. [port7] */
#define CFG_MAX_LCORE 128	/* RTE_MAX_LCORE of Debian's DPDK */
#define CFG_MAX_ERRORS 32
#define CFG_PATH_MAX 1024
#define CFG_SOCK_PATH_MAX 108	/* sun_path */
#define CFG_USER_MAX 33		/* a Linux user name is at most 32 bytes */

struct cfg_port {
	bool present;			/* the section exists */
	unsigned line;			/* of its [portN] header */
	uint32_t ip;			/* host byte order */
	uint8_t prefix;
	uint16_t vlan;			/* 0: untagged */
	uint16_t mtu;
	bool promiscuous;
	uint16_t rx_desc;
	uint16_t tx_desc;
};

struct cfg_tftp {
	uint16_t max_blksize;
	uint16_t max_windowsize;
	uint32_t timeout_ms;
	uint8_t retries;
	uint32_t max_transfers;		/* per worker lcore */
	uint16_t port_base;		/* first transfer port of worker 0 */
	uint32_t max_per_source;	/* transfers of one client address, per worker */
	uint8_t max_timeout_s;		/* largest RFC 2349 timeout honoured */
	uint32_t max_life_s;		/* a transfer's whole life */
};

/* [tvs]: the TVS (TLS on TCP) of every worker lcore. */
enum cfg_tls_version { CFG_TLS1_0, CFG_TLS1_1, CFG_TLS1_2, CFG_TLS1_3 };
enum cfg_offload { CFG_OFFLOAD_NONE, CFG_OFFLOAD_THREAD };

#define CFG_STRING_MAX 256	/* CFG_VALUE_LEN of rte_cfgfile */

struct cfg_tvs {
	bool enabled;
	uint16_t port;			/* TCP listening port */
	uint32_t max_conns;		/* per worker lcore */
	uint32_t max_per_source;	/* open connections of one address, per worker */
	uint32_t max_handshakes_per_source;	/* TLS not finished, per worker */
	uint32_t idle_timeout_ms;	/* TCP: no progress in an open connection */
	uint32_t request_timeout_ms;	/* handshake, or a request once started */
	uint8_t min_tls;		/* enum cfg_tls_version */
	uint8_t max_tls;
	char ciphers[CFG_STRING_MAX];	/* TLS 1.0-1.2 */
	char ciphersuites[CFG_STRING_MAX];	/* TLS 1.3; "default": OpenSSL's */
	uint8_t offload;		/* enum cfg_offload */
	uint32_t handshake_budget;	/* handshake steps per loop turn */
	uint32_t ticket_rotate_s;
	uint32_t session_cache;		/* session IDs per lcore */
};

struct tvs_config {
	char path[CFG_PATH_MAX];	/* the file it came from */
	char publications[CFG_PATH_MAX];
	char control_socket[CFG_SOCK_PATH_MAX];
	uint32_t control_idle_ms;	/* a control client without traffic is closed */
	bool workers_all;		/* every worker lcore EAL gave us */
	uint64_t workers[CFG_MAX_LCORE / 64];	/* else this lcore set */
	int log_level;			/* RTE_LOG_* numbering: 1 emerg .. 8 debug */
	char user[CFG_USER_MAX];	/* after setup; "root": no drop */
	uint32_t mbufs;			/* per NUMA socket */
	struct cfg_tftp tftp;
	struct cfg_tvs tvs;
	struct cfg_port ports[CFG_MAX_PORTS];
	unsigned nports;		/* sections present */
};

/* Each problem as "file:line: message" (line 0 when the file is unreadable). */
struct cfg_errors {
	unsigned n;
	unsigned dropped;		/* beyond CFG_MAX_ERRORS */
	char msg[CFG_MAX_ERRORS][320];
};

/*
 * Load and validate. Returns 0, or -1 with at least one message in err.
 * On success every field of c holds a checked value (defaults applied).
 */
int cfg_load(const char *path, struct tvs_config *c, struct cfg_errors *err);

/* Same, but from a string (tests); name is used in messages. */
int cfg_load_string(const char *name, const char *text, struct tvs_config *c,
	struct cfg_errors *err);

/* Print every error line to f, "... and N more" when some were dropped. */
void cfg_errors_print(const struct cfg_errors *err, FILE *f);

/* The schema as Markdown: the text of config/CONFIG.md. */
void cfg_doc_print(FILE *f);

static inline bool
cfg_worker_selected(const struct tvs_config *c, unsigned lcore)
{
	if (c->workers_all)
		return true;
	if (lcore >= CFG_MAX_LCORE)
		return false;
	return (c->workers[lcore / 64] >> (lcore % 64)) & 1;
}

/* "emerg".."debug" for a log level number, "?" when out of range. */
const char *cfg_log_level_name(int level);

#endif
