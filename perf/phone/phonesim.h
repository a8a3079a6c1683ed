/*
 * phonesim: a fleet of simulated SBD phones (see README.md). The event
 * loop (phonesim.c) moves bytes; phtrust.c decides; phreport.c prints.
 * This header is what the loop and the report share.
 */
#ifndef PERF_PHONE_PHONESIM_H
#define PERF_PHONE_PHONESIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "phtrust.h"

#define PH_NAME_MAX 64

/* What became of one phone's boot. */
enum ph_outcome {
	PH_OUT_PROVISIONED = 0,	/* a config was accepted, no list refused */
	PH_OUT_TL_FAILED,	/* a CTL or ITL was refused: "Trust List Update Failed" */
	PH_OUT_CFG_REJECTED,	/* the config found was refused */
	PH_OUT_NO_CONFIG,	/* no config file on the server */
	PH_OUT_NO_KEY,		/* only the short config: the full one is encrypted */
	PH_OUT_FAILED,		/* transfers failed (timeouts, server errors), bad state */
	PH_OUT_ABORTED,		/* --max-seconds or a signal stopped it */
	PH_OUT_COUNT,
};

/* One decision of a boot: the CTL, the ITL or the config. */
struct ph_step {
	enum ph_how how;
	bool error;		/* the transfer failed (not "not found") */
	char file[PH_NAME_MAX];
	char why[PH_WHY_MAX];
};

/* What the report needs of a phone once it has booted. */
struct ph_result {
	uint64_t mac;
	char sep[16];		/* "SEP" + 12 upper-case hex digits */
	enum ph_outcome outcome;
	struct ph_step ctl, itl, cfg;
	bool cfg_encrypted;
	bool started;
	uint64_t t_start, t_end;	/* ns, monotonic */
	uint32_t retransmits, dups;
	uint32_t tvs_queries, tvs_trusted, tvs_untrusted, tvs_failed;
	char tvs_last[160];	/* the last TVS exchange, for the report */
	char itl_sha1[41];	/* of the installed ITL after the boot, "" if none */
	uint32_t itl_installs, boots;
	size_t ntvs;		/* TVS addresses known after the boot */
};

struct ph_fleet_report {
	const struct ph_result *r;
	uint32_t n;
	uint32_t concurrency;
	uint64_t t0, t_end;	/* ns */
	bool per_phone;		/* text: one block per phone */
};

const char *ph_outcome_name(enum ph_outcome o);
/* "none"/"tofu"/... or "error" when the transfer failed. */
const char *ph_step_label(const struct ph_step *s);

void ph_report_text(FILE *f, const struct ph_fleet_report *fr);
void ph_report_json(FILE *f, const struct ph_fleet_report *fr);

#endif
