/*
 * Counters, a latency histogram and the two report formats (a human table
 * and one JSON line) shared by tftpgen and tftpload, so every run of the
 * bench prints the same fields with the same meaning.
 */
#ifndef TG_STATS_H
#define TG_STATS_H

#include <stdint.h>
#include <stdio.h>

/* Log-linear buckets: exact below 64 ns, then 32 buckets per power of two
 * (about 3 % resolution) up to 2^63 ns. Fixed size, so it lives in the
 * per-lcore state and adding a sample is a few instructions. */
#define TG_HIST_SUB_BITS 5
#define TG_HIST_SUB (1u << TG_HIST_SUB_BITS)
#define TG_HIST_BUCKETS (2 * TG_HIST_SUB + (63 - TG_HIST_SUB_BITS) * TG_HIST_SUB)

struct tg_hist {
	uint64_t n;
	uint64_t min, max;
	uint64_t bucket[TG_HIST_BUCKETS];
};

struct tg_counters {
	uint64_t started;	/* transfers (or raw exchanges) begun */
	uint64_t ok;
	uint64_t failed;
	uint64_t fail_timeout;
	uint64_t fail_error;	/* server sent ERROR */
	uint64_t fail_other;	/* bad OACK, content or size mismatch */
	uint64_t retransmits;	/* client-side resends (RRQ / ACK) */
	uint64_t dups;		/* duplicate / out-of-order DATA */
	uint64_t stale;		/* packets for no live transfer */
	uint64_t rx_pkts, tx_pkts;
	uint64_t rx_bytes, tx_bytes;	/* L2 frame bytes (or UDP payload+42) */
	uint64_t file_bytes;	/* payload of the DATA we accepted */
	uint64_t tx_drops;	/* frames the PMD would not take / no mbuf */
	uint64_t aborted;	/* still in flight when the time ran out */
};

/* Everything a report needs; the tools fill it, tg_report prints it. */
struct tg_result {
	const char *tool;	/* "tftpgen", "tftpload" */
	const char *mode;	/* "tftp", "raw", "echo" */
	const char *label;	/* free text from --label */
	const char *target;	/* server address */
	unsigned concurrency;
	unsigned blksize, windowsize;
	unsigned workers;
	uint64_t file_size;	/* bytes per transfer, 0 if unknown */
	uint64_t elapsed_ns;	/* first RRQ to last completion */
	struct tg_counters c;
	struct tg_hist lat;
};

void tg_hist_add(struct tg_hist *h, uint64_t ns);
void tg_hist_merge(struct tg_hist *dst, const struct tg_hist *src);
/* The value below which a fraction q (0..1) of the samples fall. */
uint64_t tg_hist_quantile(const struct tg_hist *h, double q);

struct tg_xfer;
/* Books a transfer that just ended (action TG_DONE or TG_FAIL). */
void tg_account_end(struct tg_counters *c, struct tg_hist *lat, const struct tg_xfer *x,
	int action, uint64_t now_ns);

void tg_counters_add(struct tg_counters *dst, const struct tg_counters *src);

void tg_report_table(FILE *f, const struct tg_result *r);
void tg_report_json(FILE *f, const struct tg_result *r);

#endif
