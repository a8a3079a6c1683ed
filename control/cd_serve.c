/*
 * tvs-controld and tvsd: after a publication, `reload`. tvsd answers it
 * only once every worker lcore serves the new generation (after its RCU
 * grace period), with that generation and the lcores in the answer, so
 * controld trusts the answer and waits for nothing else; --serve-timeout
 * bounds the wait for it. One connection per request: tvsd may have
 * restarted since the last one, and a tvsd that is down costs one failed
 * connect.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controld.h"
#include "rollout.h"
#include "tvsd_link.h"

#define ROLLOUT_TIMEOUT_MS 5000

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

static int
not_served(struct ctl *c, uint64_t gen, const char *why)
{
	CD_COUNT(not_served);
	cd_log(LOG_WARNING, "generation %" PRIu64 " published, not served: %s", gen, why);
	fprintf(c->out, "Published generation %" PRIu64 ", but %s: not yet served. tvsd keeps "
		"serving what it has and loads %s/current when it starts.\n", gen, why, cd.pub);
	return CTL_NOT_SERVED;
}

/* "1,2": the lcores of a reload answer. */
static void
lcore_list(const struct dpctl_reload_view *v, char *out, size_t n)
{
	size_t k = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < v->r.nlcores && k < n; i++)
		k += (size_t)snprintf(out + k, n - k, "%s%" PRIu32, i ? "," : "",
			dpctl_reload_lcore(v, i));
}

/* tvsd's answer to the reload of generation gen. */
static int
reload_answer(struct ctl *c, uint64_t gen, const struct tvsd_reply *r, long long t0,
	long long t_reload)
{
	struct dpctl_reload_view v;
	char at[512], why[1400];

	dpctl_reload_parse(r->payload, &v);
	if (!v.r.ok) {
		CD_COUNT(refused);
		cd_log(LOG_ERR, "tvsd refused to reload generation %" PRIu64 ": %s", gen, v.msg);
		fprintf(c->errf, "tvsctl: published generation %" PRIu64 ", but tvsd refused the "
			"reload: %s; it keeps serving generation %" PRIu64 "\n", gen,
			v.msg[0] ? v.msg : "(no reason)", v.r.generation);
		return CTL_FAIL;
	}
	lcore_list(&v, at, sizeof(at));
	if (v.r.generation < gen || v.r.nlcores == 0) {
		snprintf(why, sizeof(why), "tvsd reloaded and its lcores (%s) serve generation "
			"%" PRIu64, v.r.nlcores ? at : "none", v.r.generation);
		return not_served(c, gen, why);
	}
	CD_COUNT(served);
	cd_log(LOG_INFO, "generation %" PRIu64 " served by lcores %s in %lld ms (reload asked "
		"after %lld ms)", v.r.generation, at, cd_now_ms() - t0, t_reload - t0);
	fprintf(c->out, "done, generation %" PRIu64 " served by lcores %s in %lld ms\n",
		v.r.generation, at, cd_now_ms() - t0);
	return CTL_OK;
}

int
cd_serve(struct ctl *c, uint64_t gen, long long t0)
{
	char err[600], why[900];
	struct tvsd_reply r;
	long long t_reload;
	bool timed_out;
	int fd, rc;

	if (gen == 0 && (gen = cd_current_generation()) == 0)
		return ctl_fail(c, "nothing is published under %s yet", cd.pub);
	if ((fd = tvsd_connect(cd.tvsd, err, sizeof(err))) < 0) {
		snprintf(why, sizeof(why), "tvsd is unreachable at %s (%s)", cd.tvsd, err);
		return not_served(c, gen, why);
	}
	t_reload = cd_now_ms();
	if (tvsd_request(fd, DPCTL_RELOAD, cd.serve_timeout_ms, &r, &timed_out, err,
	    sizeof(err)) != 0) {
		if (timed_out)
			snprintf(why, sizeof(why), "tvsd at %s did not answer the reload within %d ms "
				"(its lcores may still serve older)", cd.tvsd, cd.serve_timeout_ms);
		else
			snprintf(why, sizeof(why), "tvsd at %s did not answer the reload (%s)",
				cd.tvsd, err);
		rc = not_served(c, gen, why);
	} else {
		rc = reload_answer(c, gen, &r, t0, t_reload);
		tvsd_reply_free(&r);
	}
	close(fd);
	return rc;
}

void
cd_rollout_refresh(void)
{
	struct trust_err terr = { 0 };
	char err[512];
	int fd = tvsd_connect(cd.tvsd, err, sizeof(err)), n;
	json_t *doc;

	if (fd < 0)
		return;
	doc = tvsd_json(fd, DPCTL_ROLLOUT, ROLLOUT_TIMEOUT_MS, NULL, err, sizeof(err));
	if (doc == NULL)
		cd_log(LOG_WARNING, "rollout from tvsd: %s", err);
	else if ((n = rollout_merge_tvsd(cd.pub, doc, &terr)) < 0)
		cd_log(LOG_WARNING, "rollout: %s", terr.msg);
	else if (n > 0)
		cd_log(LOG_INFO, "rollout: %d phone(s) fetched a new ITL", n);
	json_decref(doc);
	close(fd);
}
