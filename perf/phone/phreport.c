/*
 * The fleet report of phonesim: one block per phone (optional), then counts
 * per outcome and per decision, and the times at which 50, 99 and 100 % of
 * the fleet were provisioned; or all of it as one JSON document.
 */
#include <stdlib.h>
#include <string.h>

#include "phonesim.h"

static const char *const outcome_names[PH_OUT_COUNT] = {
	[PH_OUT_PROVISIONED] = "provisioned",
	[PH_OUT_TL_FAILED] = "trust-list-update-failed",
	[PH_OUT_CFG_REJECTED] = "config-rejected",
	[PH_OUT_NO_CONFIG] = "no-config",
	[PH_OUT_NO_KEY] = "no-key",
	[PH_OUT_FAILED] = "failed",
	[PH_OUT_ABORTED] = "aborted",
};

const char *
ph_outcome_name(enum ph_outcome o)
{
	return (unsigned)o < PH_OUT_COUNT ? outcome_names[o] : "?";
}

const char *
ph_step_label(const struct ph_step *s)
{
	return s->error ? "error" : ph_how_name(s->how);
}

/* ---- counting ----------------------------------------------------------- */

#define LABELS_MAX 16

struct tally {
	const char *label[LABELS_MAX];
	uint32_t count[LABELS_MAX];
	size_t n;
};

static void
tally_add(struct tally *t, const char *label)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->label[i], label) == 0) {
			t->count[i]++;
			return;
		}
	}
	if (t->n < LABELS_MAX) {
		t->label[t->n] = label;
		t->count[t->n++] = 1;
	}
}

struct summary {
	struct tally outcome, ctl, itl, cfg;
	uint64_t retransmits, dups, queries, trusted, untrusted, tvs_failed;
	uint32_t started;
	double at[3];		/* seconds until 50/99/100 % provisioned; < 0: never */
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The k-th provisioned phone's end time, k = ceil(q * n) of the fleet. */
static void
provision_times(const struct ph_fleet_report *fr, struct summary *s)
{
	static const double q[3] = { 0.50, 0.99, 1.00 };
	uint64_t *ends = calloc(fr->n ? fr->n : 1, sizeof(*ends));
	size_t m = 0;

	for (uint32_t i = 0; ends != NULL && i < fr->n; i++)
		if (fr->r[i].outcome == PH_OUT_PROVISIONED)
			ends[m++] = fr->r[i].t_end - fr->t0;
	if (m > 1)
		qsort(ends, m, sizeof(*ends), cmp_u64);
	for (int j = 0; j < 3; j++) {
		size_t k = (size_t)(q[j] * fr->n + 0.999999);

		if (k == 0)
			k = 1;
		s->at[j] = ends != NULL && fr->n > 0 && k <= m ? (double)ends[k - 1] / 1e9 : -1;
	}
	free(ends);
}

static void
summarise(const struct ph_fleet_report *fr, struct summary *s)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < fr->n; i++) {
		const struct ph_result *r = &fr->r[i];

		s->started += r->started;
		tally_add(&s->outcome, ph_outcome_name(r->outcome));
		if (!r->started)
			continue;
		tally_add(&s->ctl, ph_step_label(&r->ctl));
		tally_add(&s->itl, ph_step_label(&r->itl));
		tally_add(&s->cfg, ph_step_label(&r->cfg));
		s->retransmits += r->retransmits;
		s->dups += r->dups;
		s->queries += r->tvs_queries;
		s->trusted += r->tvs_trusted;
		s->untrusted += r->tvs_untrusted;
		s->tvs_failed += r->tvs_failed;
	}
	provision_times(fr, s);
}

/* ---- text --------------------------------------------------------------- */

static void
text_tally(FILE *f, const char *title, const struct tally *t)
{
	fprintf(f, "  %-9s", title);
	for (size_t i = 0; i < t->n; i++)
		fprintf(f, "%s %s %u", i ? "," : "", t->label[i], t->count[i]);
	fprintf(f, "\n");
}

static void
text_step(FILE *f, const char *what, const struct ph_step *s)
{
	fprintf(f, "  %s%s%s: %s: %s\n", what, s->file[0] ? " " : "", s->file,
		ph_step_label(s), s->why[0] ? s->why : "-");
}

static void
text_phone(FILE *f, const struct ph_result *r)
{
	if (!r->started) {
		fprintf(f, "%s %s: never started\n", r->sep, ph_outcome_name(r->outcome));
		return;
	}
	fprintf(f, "%s %s in %.1f ms, boot %u, %u retransmits%s\n", r->sep,
		r->outcome == PH_OUT_TL_FAILED ? "Trust List Update Failed"
		: ph_outcome_name(r->outcome), (double)(r->t_end - r->t_start) / 1e6, r->boots,
		r->retransmits, r->cfg_encrypted ? ", encrypted config" : "");
	text_step(f, "CTL", &r->ctl);
	text_step(f, "ITL", &r->itl);
	if (r->itl_sha1[0] != '\0')
		fprintf(f, "  installed ITL #%u, SHA-1 %s\n", r->itl_installs, r->itl_sha1);
	text_step(f, "config", &r->cfg);
	if (r->tvs_queries > 0)
		fprintf(f, "  TVS: %u queries, last: %s\n", r->tvs_queries, r->tvs_last);
}

static void
text_at(FILE *f, const char *pct, double s)
{
	if (s < 0)
		fprintf(f, " %s never", pct);
	else
		fprintf(f, " %s %.3f s", pct, s);
}

void
ph_report_text(FILE *f, const struct ph_fleet_report *fr)
{
	struct summary s;

	summarise(fr, &s);
	for (uint32_t i = 0; fr->per_phone && i < fr->n; i++)
		text_phone(f, &fr->r[i]);
	fprintf(f, "phonesim: %u phones (%u started) in %.3f s, concurrency %u\n", fr->n,
		s.started, (double)(fr->t_end - fr->t0) / 1e9, fr->concurrency);
	text_tally(f, "outcome", &s.outcome);
	text_tally(f, "CTL", &s.ctl);
	text_tally(f, "ITL", &s.itl);
	text_tally(f, "config", &s.cfg);
	fprintf(f, "  provisioned:");
	text_at(f, "50%", s.at[0]);
	text_at(f, "99%", s.at[1]);
	text_at(f, "100%", s.at[2]);
	fprintf(f, "\n  retransmits %llu, duplicates %llu, TVS queries %llu (trusted %llu, "
		"untrusted %llu, no answer %llu)\n", (unsigned long long)s.retransmits,
		(unsigned long long)s.dups, (unsigned long long)s.queries,
		(unsigned long long)s.trusted, (unsigned long long)s.untrusted,
		(unsigned long long)s.tvs_failed);
}

/* ---- JSON --------------------------------------------------------------- */

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
json_tally(FILE *f, const char *key, const struct tally *t)
{
	fprintf(f, ",\"%s\":{", key);
	for (size_t i = 0; i < t->n; i++) {
		fprintf(f, "%s", i ? "," : "");
		json_str(f, t->label[i]);
		fprintf(f, ":%u", t->count[i]);
	}
	fprintf(f, "}");
}

static void
json_step(FILE *f, const char *key, const struct ph_step *s)
{
	fprintf(f, ",\"%s\":{\"how\":", key);
	json_str(f, ph_step_label(s));
	fprintf(f, ",\"file\":");
	json_str(f, s->file);
	fprintf(f, ",\"why\":");
	json_str(f, s->why);
	fprintf(f, "}");
}

static void
json_at(FILE *f, const char *key, double s)
{
	if (s < 0)
		fprintf(f, "\"%s\":null", key);
	else
		fprintf(f, "\"%s\":%.6f", key, s);
}

static void
json_phone(FILE *f, const struct ph_result *r)
{
	fprintf(f, "{\"sep\":\"%s\",\"outcome\":\"%s\",\"started\":%s", r->sep,
		ph_outcome_name(r->outcome), r->started ? "true" : "false");
	if (r->started) {
		fprintf(f, ",\"ms\":%.3f,\"boot\":%u,\"retransmits\":%u,\"duplicates\":%u",
			(double)(r->t_end - r->t_start) / 1e6, r->boots, r->retransmits, r->dups);
		json_step(f, "ctl", &r->ctl);
		json_step(f, "itl", &r->itl);
		json_step(f, "config", &r->cfg);
		fprintf(f, ",\"encrypted\":%s,\"itl_sha1\":\"%s\",\"itl_installs\":%u,"
			"\"tvs_known\":%zu,\"tvs\":{\"queries\":%u,\"trusted\":%u,\"untrusted\":%u,"
			"\"failed\":%u,\"last\":", r->cfg_encrypted ? "true" : "false", r->itl_sha1,
			r->itl_installs, r->ntvs, r->tvs_queries, r->tvs_trusted, r->tvs_untrusted,
			r->tvs_failed);
		json_str(f, r->tvs_last);
		fprintf(f, "}");
	}
	fprintf(f, "}");
}

void
ph_report_json(FILE *f, const struct ph_fleet_report *fr)
{
	struct summary s;

	summarise(fr, &s);
	fprintf(f, "{\"tool\":\"phonesim\",\"phones\":%u,\"started\":%u,\"concurrency\":%u,"
		"\"elapsed_s\":%.6f", fr->n, s.started, fr->concurrency,
		(double)(fr->t_end - fr->t0) / 1e9);
	json_tally(f, "outcomes", &s.outcome);
	json_tally(f, "ctl", &s.ctl);
	json_tally(f, "itl", &s.itl);
	json_tally(f, "config", &s.cfg);
	fprintf(f, ",\"provisioned_s\":{");
	json_at(f, "p50", s.at[0]);
	fprintf(f, ",");
	json_at(f, "p99", s.at[1]);
	fprintf(f, ",");
	json_at(f, "p100", s.at[2]);
	fprintf(f, "},\"retransmits\":%llu,\"duplicates\":%llu,\"tvs\":{\"queries\":%llu,"
		"\"trusted\":%llu,\"untrusted\":%llu,\"failed\":%llu},\"detail\":[",
		(unsigned long long)s.retransmits, (unsigned long long)s.dups,
		(unsigned long long)s.queries, (unsigned long long)s.trusted,
		(unsigned long long)s.untrusted, (unsigned long long)s.tvs_failed);
	for (uint32_t i = 0; i < fr->n; i++) {
		fprintf(f, "%s\n", i ? "," : "");
		json_phone(f, &fr->r[i]);
	}
	fprintf(f, "]}\n");
}
