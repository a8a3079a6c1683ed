/*
 * Counters: each worker writes its own dp_lcore.stats; readers (telemetry
 * thread, control loop) sum them with relaxed loads, like ipsec-secgw's
 * core_statistics. Telemetry commands live under /tvs/.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_telemetry.h>

#include "dp.h"

const char *const dp_counter_names[DP_C_MAX] = {
#define DP_NAME(n) #n,
	DP_COUNTERS(DP_NAME)
#undef DP_NAME
};

#define TFTP_COUNTERS(X) \
	X(rrq) X(started) X(completed) X(failed) X(retransmits) X(data_pkts) X(bytes) \
	X(err_not_found) X(err_access) X(err_illegal) X(err_unknown_tid) X(err_options) \
	X(err_table_full) X(dup_acks) X(malformed) X(port_unsteered) X(err_per_source) \
	X(timeout_ignored) X(err_expired)

/* Certificate cache lookups (struct dp_cache_counters), keys "cert_<name>". */
#define CERT_COUNTERS(X) X(lookups) X(hits) X(misses)

/* The TCP engine (struct tcp_stats, every field in order), keys "tcp_<name>". */
#define TCP_COUNTERS(X) \
	X(segs_in) X(segs_out) X(bytes_in) X(bytes_out) X(syn_rcvd) X(cookies_sent) \
	X(cookies_ok) X(cookies_bad) X(established) X(refused) X(table_full) X(tw_recycled) \
	X(closed) X(reset_rcvd) X(rst_ignored) X(timeouts) X(aborts) X(reset_sent) \
	X(challenge_acks) X(retransmits) X(fast_retransmits) X(rto_expired) X(probes) \
	X(ooo_queued) X(ooo_dropped) X(dup_segments) X(out_of_window) X(bad_acks) \
	X(bad_segments) X(refused_per_source) X(refused_unready_per_source)

#define DP_ONE(n) + 1
_Static_assert(sizeof(struct tcp_stats) == (0 TCP_COUNTERS(DP_ONE)) * sizeof(uint64_t),
	"TCP_COUNTERS must list every field of struct tcp_stats");
#undef DP_ONE

/* The TVS session counters (tvs_counter_names) are keys "tvs_<name>"; the
 * gauges tcp_conns (TCP slots in use) and tvs_open (sessions alive). */

static void
dp_stats_add(struct dp_stats *out, const struct dp_stats *s)
{
	for (unsigned i = 0; i < DP_C_MAX; i++)
		out->c[i] += __atomic_load_n(&s->c[i], __ATOMIC_RELAXED);
#define DP_ADD(n) out->tftp.n += __atomic_load_n(&s->tftp.n, __ATOMIC_RELAXED);
	TFTP_COUNTERS(DP_ADD)
#undef DP_ADD
#define DP_ADD(n) out->cert.n += __atomic_load_n(&s->cert.n, __ATOMIC_RELAXED);
	CERT_COUNTERS(DP_ADD)
#undef DP_ADD
#define DP_ADD(n) out->tcp.n += __atomic_load_n(&s->tcp.n, __ATOMIC_RELAXED);
	TCP_COUNTERS(DP_ADD)
#undef DP_ADD
	for (unsigned i = 0; i < TVS_C_MAX; i++)
		out->tvs.c[i] += __atomic_load_n(&s->tvs.c[i], __ATOMIC_RELAXED);
	out->tcp_conns += __atomic_load_n(&s->tcp_conns, __ATOMIC_RELAXED);
	out->tvs_open += __atomic_load_n(&s->tvs_open, __ATOMIC_RELAXED);
	out->active += __atomic_load_n(&s->active, __ATOMIC_RELAXED);
	out->generation = __atomic_load_n(&s->generation, __ATOMIC_RELAXED);
}

void
dp_stats_sum(struct dp_stats *out, int lcore)
{
	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < dp_app.nworkers; w++) {
		unsigned l = dp_app.workers[w];

		if (lcore < 0 || (unsigned)lcore == l)
			dp_stats_add(out, &dp_lcores[l].stats);
	}
	if (lcore < 0)
		out->generation = dp_pub_generation();
}

static void
dp_stats_json_one(FILE *f, const struct dp_stats *s)
{
	fprintf(f, "{\"generation\":%" PRIu64 ",\"active\":%" PRIu64, s->generation, s->active);
	for (unsigned i = 0; i < DP_C_MAX; i++)
		fprintf(f, ",\"%s\":%" PRIu64, dp_counter_names[i], s->c[i]);
#define DP_JSON(n) fprintf(f, ",\"tftp_" #n "\":%" PRIu64, s->tftp.n);
	TFTP_COUNTERS(DP_JSON)
#undef DP_JSON
#define DP_JSON(n) fprintf(f, ",\"cert_" #n "\":%" PRIu64, s->cert.n);
	CERT_COUNTERS(DP_JSON)
#undef DP_JSON
	fprintf(f, ",\"tcp_conns\":%" PRIu64 ",\"tvs_open\":%" PRIu64, s->tcp_conns, s->tvs_open);
#define DP_JSON(n) fprintf(f, ",\"tcp_" #n "\":%" PRIu64, s->tcp.n);
	TCP_COUNTERS(DP_JSON)
#undef DP_JSON
	for (unsigned i = 0; i < TVS_C_MAX; i++)
		fprintf(f, ",\"tvs_%s\":%" PRIu64, tvs_counter_names[i], s->tvs.c[i]);
	fputc('}', f);
}

/* {"total":{...},"lcores":{"1":{...},...}} */
void
dp_stats_json(FILE *f)
{
	struct dp_stats s;

	dp_stats_sum(&s, -1);
	fputs("{\"total\":", f);
	dp_stats_json_one(f, &s);
	fputs(",\"lcores\":{", f);
	for (unsigned w = 0; w < dp_app.nworkers; w++) {
		dp_stats_sum(&s, (int)dp_app.workers[w]);
		fprintf(f, "%s\"%u\":", w ? "," : "", dp_app.workers[w]);
		dp_stats_json_one(f, &s);
	}
	fputs("}}", f);
}

static void
dp_stats_tel(struct rte_tel_data *d, const struct dp_stats *s)
{
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "generation", s->generation);
	rte_tel_data_add_dict_u64(d, "active", s->active);
	for (unsigned i = 0; i < DP_C_MAX; i++)
		rte_tel_data_add_dict_u64(d, dp_counter_names[i], s->c[i]);
#define DP_TEL(n) rte_tel_data_add_dict_u64(d, "tftp_" #n, s->tftp.n);
	TFTP_COUNTERS(DP_TEL)
#undef DP_TEL
#define DP_TEL(n) rte_tel_data_add_dict_u64(d, "cert_" #n, s->cert.n);
	CERT_COUNTERS(DP_TEL)
#undef DP_TEL
	rte_tel_data_add_dict_u64(d, "tcp_conns", s->tcp_conns);
	rte_tel_data_add_dict_u64(d, "tvs_open", s->tvs_open);
#define DP_TEL(n) rte_tel_data_add_dict_u64(d, "tcp_" #n, s->tcp.n);
	TCP_COUNTERS(DP_TEL)
#undef DP_TEL
	for (unsigned i = 0; i < TVS_C_MAX; i++) {
		char key[RTE_TEL_MAX_STRING_LEN];

		snprintf(key, sizeof(key), "tvs_%s", tvs_counter_names[i]);
		rte_tel_data_add_dict_u64(d, key, s->tvs.c[i]);
	}
}

static int
dp_tel_stats(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	struct dp_stats s;
	int lcore = -1;

	if (params != NULL && *params != '\0') {
		char *end;
		long l = strtol(params, &end, 10);

		if (*end != '\0' || l < 0 || l >= RTE_MAX_LCORE || dp_lcores[l].tftp == NULL)
			return -EINVAL;
		lcore = (int)l;
	}
	dp_stats_sum(&s, lcore);
	dp_stats_tel(d, &s);
	return 0;
}

static int
dp_tel_lcores(const char *cmd __rte_unused, const char *params __rte_unused,
	struct rte_tel_data *d)
{
	rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
	for (unsigned w = 0; w < dp_app.nworkers; w++)
		rte_tel_data_add_array_int(d, (int)dp_app.workers[w]);
	return 0;
}

static int
dp_tel_generation(const char *cmd __rte_unused, const char *params __rte_unused,
	struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	dp_pub_tel(d);
	return 0;
}

static int
dp_tel_ports(const char *cmd __rte_unused, const char *params __rte_unused,
	struct rte_tel_data *d)
{
	rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
	for (unsigned i = 0; i < dp_app.nports; i++)
		rte_tel_data_add_array_int(d, dp_app.ports[i].id);
	return 0;
}

int
dp_telemetry_init(void)
{
	int rc = 0;

	rc |= rte_telemetry_register_cmd("/tvs/stats", dp_tel_stats,
		"Counters of all workers summed; parameter: an lcore id for one worker only");
	rc |= rte_telemetry_register_cmd("/tvs/lcores", dp_tel_lcores,
		"Worker lcore ids. Takes no parameters");
	rc |= rte_telemetry_register_cmd("/tvs/generation", dp_tel_generation,
		"Generation served, loads, refused, grace_timeouts. Takes no parameters");
	rc |= rte_telemetry_register_cmd("/tvs/ports", dp_tel_ports,
		"DPDK port ids served. Takes no parameters");
	if (rc != 0)
		DP_LOG(WARNING, "telemetry commands not registered");
	return rc;
}
