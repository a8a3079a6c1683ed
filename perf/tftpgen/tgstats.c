/*
 * Shared statistics and reports of the TFTP load generators (tgstats.h).
 */
#include <string.h>

#include "tgproto.h"
#include "tgstats.h"

static unsigned
bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * TG_HIST_SUB)
		return v;
	msb = 63 - __builtin_clzll(v);
	shift = msb - TG_HIST_SUB_BITS;
	return 2 * TG_HIST_SUB + (msb - TG_HIST_SUB_BITS - 1) * TG_HIST_SUB
		+ (unsigned)((v >> shift) - TG_HIST_SUB);
}

/* The middle of a bucket, the value a quantile reports. */
static uint64_t
bucket_value(unsigned i)
{
	unsigned g, sub, shift;

	if (i < 2 * TG_HIST_SUB)
		return i;
	g = (i - 2 * TG_HIST_SUB) / TG_HIST_SUB;
	sub = (i - 2 * TG_HIST_SUB) % TG_HIST_SUB;
	shift = g + 1;
	return ((uint64_t)(TG_HIST_SUB + sub) << shift) + (1ULL << shift) / 2;
}

void
tg_hist_add(struct tg_hist *h, uint64_t ns)
{
	if (h->n == 0 || ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
	h->n++;
	h->bucket[bucket_of(ns)]++;
}

void
tg_hist_merge(struct tg_hist *dst, const struct tg_hist *src)
{
	unsigned i;

	if (src->n == 0)
		return;
	if (dst->n == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->n += src->n;
	for (i = 0; i < TG_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
}

uint64_t
tg_hist_quantile(const struct tg_hist *h, double q)
{
	uint64_t rank, seen = 0, v;
	unsigned i;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n + 0.5);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < TG_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			break;
	}
	v = bucket_value(i < TG_HIST_BUCKETS ? i : TG_HIST_BUCKETS - 1);
	/* the bucket middle may lie outside what was really seen */
	return v < h->min ? h->min : v > h->max ? h->max : v;
}

void
tg_account_end(struct tg_counters *c, struct tg_hist *lat, const struct tg_xfer *x,
	int action, uint64_t now_ns)
{
	c->retransmits += x->retransmits;
	c->dups += x->dups;
	c->file_bytes += x->bytes;
	if (action == TG_DONE) {
		c->ok++;
		tg_hist_add(lat, now_ns - x->t_start);
		return;
	}
	c->failed++;
	if (x->fail == TG_FAIL_TIMEOUT)
		c->fail_timeout++;
	else if (x->fail == TG_FAIL_ERROR_PKT)
		c->fail_error++;
	else
		c->fail_other++;
}

void
tg_counters_add(struct tg_counters *dst, const struct tg_counters *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;
	size_t i;

	for (i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

struct rates {
	double secs, xfers, rx_pps, tx_pps, rx_gbps, tx_gbps, goodput_gbps;
	double p50_us, p99_us, max_us;
};

static void
rates_of(const struct tg_result *r, struct rates *o)
{
	const struct tg_counters *c = &r->c;

	memset(o, 0, sizeof(*o));
	o->secs = r->elapsed_ns / 1e9;
	if (o->secs > 0) {
		o->xfers = c->ok / o->secs;
		o->rx_pps = c->rx_pkts / o->secs;
		o->tx_pps = c->tx_pkts / o->secs;
		o->rx_gbps = c->rx_bytes * 8 / o->secs / 1e9;
		o->tx_gbps = c->tx_bytes * 8 / o->secs / 1e9;
		o->goodput_gbps = c->file_bytes * 8 / o->secs / 1e9;
	}
	o->p50_us = tg_hist_quantile(&r->lat, 0.50) / 1e3;
	o->p99_us = tg_hist_quantile(&r->lat, 0.99) / 1e3;
	o->max_us = r->lat.max / 1e3;
}

void
tg_report_table(FILE *f, const struct tg_result *r)
{
	const struct tg_counters *c = &r->c;
	struct rates o;

	rates_of(r, &o);
	fprintf(f, "%s %s%s%s -> %s: %u in flight, blksize %u, windowsize %u, %u worker(s)\n",
		r->tool, r->mode, r->label && *r->label ? " " : "", r->label ? r->label : "",
		r->target ? r->target : "-", r->concurrency, r->blksize, r->windowsize, r->workers);
	fprintf(f, "  %-22s %12.3f s\n", "elapsed", o.secs);
	fprintf(f, "  %-22s %12llu ok, %llu failed (timeout %llu, server ERROR %llu, other %llu)\n",
		"transfers", (unsigned long long)c->ok, (unsigned long long)c->failed,
		(unsigned long long)c->fail_timeout, (unsigned long long)c->fail_error,
		(unsigned long long)c->fail_other);
	fprintf(f, "  %-22s %12.0f /s\n", "transfer rate", o.xfers);
	fprintf(f, "  %-22s %12.0f rx, %.0f tx\n", "packets/s", o.rx_pps, o.tx_pps);
	fprintf(f, "  %-22s %12.3f rx, %.3f tx (goodput %.3f)\n", "Gbit/s", o.rx_gbps,
		o.tx_gbps, o.goodput_gbps);
	fprintf(f, "  %-22s %12.1f p50, %.1f p99, %.1f max\n", "latency (us)", o.p50_us,
		o.p99_us, o.max_us);
	fprintf(f, "  %-22s %12llu retransmits, %llu dup/out-of-order, %llu stale, %llu tx drops,"
		" %llu aborted at the deadline\n",
		"anomalies", (unsigned long long)c->retransmits, (unsigned long long)c->dups,
		(unsigned long long)c->stale, (unsigned long long)c->tx_drops,
		(unsigned long long)c->aborted);
}

/* Strings in the JSON line come from the command line: keep only what
 * needs no escaping. */
static const char *
json_safe(const char *s, char *buf, size_t bufsz)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < bufsz; i++)
		buf[i] = (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20) ? '_' : s[i];
	buf[i] = '\0';
	return buf;
}

/* One line, fixed key order, numbers only (plus the few strings): easy to
 * collect with grep and merge with jq or python. */
void
tg_report_json(FILE *f, const struct tg_result *r)
{
	const struct tg_counters *c = &r->c;
	char lb[128], tb[64];
	struct rates o;

	rates_of(r, &o);
	fprintf(f, "{\"tool\":\"%s\",\"mode\":\"%s\",\"label\":\"%s\",\"target\":\"%s\","
		"\"concurrency\":%u,\"blksize\":%u,\"windowsize\":%u,\"workers\":%u,"
		"\"file_bytes\":%llu,\"elapsed_s\":%.6f,\"started\":%llu,\"ok\":%llu,"
		"\"failed\":%llu,\"fail_timeout\":%llu,\"fail_error\":%llu,\"fail_other\":%llu,"
		"\"retransmits\":%llu,\"dups\":%llu,\"stale\":%llu,\"tx_drops\":%llu,\"aborted\":%llu,"
		"\"rx_pkts\":%llu,\"tx_pkts\":%llu,\"rx_bytes\":%llu,\"tx_bytes\":%llu,"
		"\"transfers_per_s\":%.1f,\"rx_pps\":%.1f,\"tx_pps\":%.1f,"
		"\"rx_gbps\":%.4f,\"tx_gbps\":%.4f,\"goodput_gbps\":%.4f,"
		"\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
		r->tool, r->mode, json_safe(r->label, lb, sizeof(lb)),
		json_safe(r->target, tb, sizeof(tb)), r->concurrency, r->blksize, r->windowsize,
		r->workers,
		(unsigned long long)r->file_size, o.secs, (unsigned long long)c->started,
		(unsigned long long)c->ok, (unsigned long long)c->failed,
		(unsigned long long)c->fail_timeout, (unsigned long long)c->fail_error,
		(unsigned long long)c->fail_other, (unsigned long long)c->retransmits,
		(unsigned long long)c->dups, (unsigned long long)c->stale,
		(unsigned long long)c->tx_drops, (unsigned long long)c->aborted,
		(unsigned long long)c->rx_pkts,
		(unsigned long long)c->tx_pkts, (unsigned long long)c->rx_bytes,
		(unsigned long long)c->tx_bytes, o.xfers, o.rx_pps, o.tx_pps, o.rx_gbps,
		o.tx_gbps, o.goodput_gbps, o.p50_us, o.p99_us, o.max_us);
}
