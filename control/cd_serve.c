/*
 * tvs-controld and tvsd: after a publication, `reload`, then `stats` until
 * every worker lcore reports the new generation (each lcore copies the
 * generation it serves into its counters every millisecond), bounded by
 * --serve-timeout. One connection per request: tvsd may have restarted
 * since the last one, and a tvsd that is down costs one failed connect.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controld.h"
#include "jflat.h"
#include "rollout.h"
#include "tvsd_link.h"

#define REPLY_MAX (1u << 20)
#define ROLLOUT_REPLY_MAX (16u << 20)	/* 64k phones, ~60 bytes each */
#define RELOAD_TIMEOUT_MS 60000		/* tvsd reads and hashes every file */

uint64_t
cd_current_generation(void)
{
	char path[PATH_MAX + 16], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/current", cd.pub);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	return strncmp(target, "gen-", 4) == 0 ? strtoull(target + 4, NULL, 10) : 0;
}

/* "1,2" of the lcores at gen or later; *lagging those still older. */
static int
lcores_at(const struct jflat *f, uint64_t gen, char *at, size_t atsz, char *lag, size_t lagsz)
{
	static const char pre[] = "stats.lcores.";
	size_t a = 0, l = 0;
	int nlag = 0, nat = 0;

	at[0] = lag[0] = '\0';
	for (size_t i = 0; i < f->n; i++) {
		const char *p = f->p[i].path, *dot;
		size_t idn;

		if (strncmp(p, pre, sizeof(pre) - 1) != 0)
			continue;
		p += sizeof(pre) - 1;
		dot = strchr(p, '.');
		if (dot == NULL || strcmp(dot, ".generation") != 0)
			continue;
		idn = (size_t)(dot - p);
		if (strtoull(f->p[i].val, NULL, 10) >= gen) {
			a += (size_t)snprintf(at + a, a < atsz ? atsz - a : 0, "%s%.*s", nat++ ? "," : "",
				(int)idn, p);
		} else {
			l += (size_t)snprintf(lag + l, l < lagsz ? lagsz - l : 0, "%s%.*s (generation %s)",
				nlag++ ? ", " : "", (int)idn, p, f->p[i].val);
		}
	}
	return nat + nlag == 0 ? -1 : nlag;
}

static int
not_served(struct ctl *c, uint64_t gen, const char *why)
{
	CD_COUNT(not_served);
	cd_log(LOG_WARNING, "generation %" PRIu64 " published, not served: %s", gen, why);
	fprintf(c->out, "Published generation %" PRIu64 ", but %s: not yet served. tvsd keeps "
		"serving what it has and loads %s/current when it starts.\n", gen, why, cd.pub);
	return CTL_NOT_SERVED;
}

static int
wait_served(struct ctl *c, int fd, uint64_t gen, long long t0, long long t_reload)
{
	long long deadline = cd_now_ms() + cd.serve_timeout_ms;
	char err[256], at[256], lag[512], why[900];
	long long t_answer = cd_now_ms();
	struct jflat f;
	char *reply;
	int nlag = -1;

	for (;;) {
		if (tvsd_request(fd, "stats", 5000, REPLY_MAX, &reply, err, sizeof(err)) != 0)
			break;
		nlag = jflat_parse(&f, reply) == 0 ? lcores_at(&f, gen, at, sizeof(at), lag,
			sizeof(lag)) : -1;
		jflat_free(&f);
		free(reply);
		if (nlag == 0) {
			CD_COUNT(served);
			cd_log(LOG_INFO, "generation %" PRIu64 " served by lcores %s in %lld ms "
				"(reload asked after %lld ms, answered after %lld ms)", gen, at,
				cd_now_ms() - t0, t_reload - t0, t_answer - t0);
			fprintf(c->out, "done, generation %" PRIu64 " served by lcores %s in %lld ms\n",
				gen, at, cd_now_ms() - t0);
			return CTL_OK;
		}
		if (cd_now_ms() >= deadline) {
			snprintf(err, sizeof(err), "%s", "");
			break;
		}
		usleep(1000);
	}
	if (nlag > 0)
		snprintf(why, sizeof(why), "tvsd reloaded it and lcores %s still serve older after "
			"%d ms", lag, cd.serve_timeout_ms);
	else
		snprintf(why, sizeof(why), "tvsd did not report its lcores (%s)", err[0] ? err :
			"no worker in its stats");
	return not_served(c, gen, why);
}

int
cd_serve(struct ctl *c, uint64_t gen, long long t0)
{
	char err[256], why[600], *reply = NULL;
	const char *ok, *msg;
	struct jflat f = { 0 };
	long long t_reload;
	int fd, rc;

	if (gen == 0 && (gen = cd_current_generation()) == 0)
		return ctl_fail(c, "nothing is published under %s yet", cd.pub);
	if ((fd = tvsd_connect(cd.tvsd, err, sizeof(err))) < 0) {
		snprintf(why, sizeof(why), "tvsd is unreachable at %s (%s)", cd.tvsd, err);
		return not_served(c, gen, why);
	}
	t_reload = cd_now_ms();
	if (tvsd_request(fd, "reload", RELOAD_TIMEOUT_MS, REPLY_MAX, &reply, err, sizeof(err)) != 0 ||
	    jflat_parse(&f, reply) != 0 || (ok = jflat_get(&f, "ok")) == NULL) {
		snprintf(why, sizeof(why), "tvsd at %s did not answer the reload (%s)", cd.tvsd,
			reply ? "not its JSON" : err);
		rc = not_served(c, gen, why);
	} else if (strcmp(ok, "true") != 0) {
		msg = jflat_get(&f, "error");
		CD_COUNT(refused);
		cd_log(LOG_ERR, "tvsd refused to reload generation %" PRIu64 ": %s", gen,
			msg ? msg : "?");
		fprintf(c->errf, "tvsctl: published generation %" PRIu64 ", but tvsd refused the "
			"reload: %s; it keeps serving generation %s\n", gen, msg ? msg : "(no reason)",
			jflat_get(&f, "generation") ? jflat_get(&f, "generation") : "?");
		rc = CTL_FAIL;
	} else {
		rc = wait_served(c, fd, gen, t0, t_reload);
	}
	jflat_free(&f);
	free(reply);
	close(fd);
	return rc;
}

void
cd_rollout_refresh(void)
{
	struct trust_err terr = { 0 };
	char err[256], *reply = NULL;
	int fd = tvsd_connect(cd.tvsd, err, sizeof(err)), n;

	if (fd < 0)
		return;
	if (tvsd_request(fd, "rollout", 5000, ROLLOUT_REPLY_MAX, &reply, err, sizeof(err)) != 0) {
		cd_log(LOG_WARNING, "rollout from tvsd: %s", err);
	} else if (strncmp(reply, "{\"ok\":true", 10) != 0) {
		cd_log(LOG_DEBUG, "tvsd has no rollout table: %.200s", reply);
	} else if ((n = rollout_merge_tvsd(cd.pub, reply, &terr)) < 0) {
		cd_log(LOG_WARNING, "rollout: %s", terr.msg);
	} else if (n > 0) {
		cd_log(LOG_INFO, "rollout: %d phone(s) fetched a new ITL", n);
	}
	free(reply);
	close(fd);
}
