/*
 * Operations of issue #5 around the trust store: the ITL rollout (which
 * phone fetched which generation) and the ordering rule built on it, the
 * rollback-pre8 parameter, `utils itl reset`, and disaster recovery
 * backups. Each runs in tvs-controld when it answers (which publishes
 * after a change) and in tvsctl otherwise.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "backup.h"
#include "ctl.h"
#include "publish.h"
#include "rollout.h"
#include "sign.h"

#define GUARD_NAMES 10		/* phones named in a refusal; the rest counted */
#define PASS_MAX 256

/* ---- rollout ------------------------------------------------------------- */

static int
load_rollout(struct ctl *c, struct rollout *r)
{
	if (c->hooks != NULL && c->hooks->rollout_refresh != NULL)
		c->hooks->rollout_refresh(c);
	if (rollout_load(c->pub_dir, r, &c->err) != 0)
		return ctl_fail_err(c);
	return CTL_OK;
}

int
ctl_rollout_guard(struct ctl *c, const struct trust_store *st)
{
	struct rollout r;
	size_t behind = 0;
	char names[GUARD_NAMES * 48] = "", one[64];
	int rc;

	if ((rc = load_rollout(c, &r)) != CTL_OK)
		return rc;
	if (r.tvs_sha[0] != '\0' && strcmp(r.tvs_sha, st->own[UNIT_TVS].cert.sha256) != 0 &&
	    r.n > 0) {
		rollout_free(&r);
		return ctl_fail(c, "refusing to regenerate CallManager: the TVS certificate changed "
			"since the last publication, so no phone has an ITL with it yet. Publish, let "
			"the phones fetch the new ITL (tvsctl show itl rollout), then regenerate; or "
			"add --force");
	}
	for (size_t i = 0; i < r.n; i++) {
		if (r.v[i].gen >= r.tvs_since)
			continue;
		if (behind++ < GUARD_NAMES) {
			snprintf(one, sizeof(one), "%sSEP%s (generation %" PRIu64 ")", behind > 1 ?
				", " : "", r.v[i].mac, r.v[i].gen);
			strncat(names, one, sizeof(names) - strlen(names) - 1);
		}
	}
	if (behind > GUARD_NAMES) {
		snprintf(one, sizeof(one), " and %zu more", behind - GUARD_NAMES);
		strncat(names, one, sizeof(names) - strlen(names) - 1);
	}
	if (behind > 0)
		rc = ctl_fail(c, "refusing to regenerate CallManager: the TVS certificate changed in "
			"generation %" PRIu64 " and %zu known phone(s) have not fetched an ITL of that "
			"generation or later: %s. Those phones would have to check the new CallManager "
			"signature through a TVS whose certificate they do not know yet, and would "
			"refuse the new ITL and configs. Wait until 'tvsctl show itl rollout' shows "
			"them on generation %" PRIu64 " or later, or add --force.", r.tvs_since, behind,
			names, r.tvs_since);
	rollout_free(&r);
	return rc;
}

struct gen_count {
	uint64_t gen;
	size_t phones;
};

static int
cmp_gen_desc(const void *a, const void *b)
{
	uint64_t x = ((const struct gen_count *)a)->gen, y = ((const struct gen_count *)b)->gen;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Phones per generation, newest first; *n entries. */
static struct gen_count *
count_gens(const struct rollout *r, size_t *n)
{
	struct gen_count *g = calloc(r->n ? r->n : 1, sizeof(*g));

	*n = 0;
	for (size_t i = 0; g != NULL && i < r->n; i++) {
		size_t k;

		for (k = 0; k < *n && g[k].gen != r->v[i].gen; k++)
			;
		if (k == *n)
			g[(*n)++].gen = r->v[i].gen;
		g[k].phones++;
	}
	if (g != NULL)
		qsort(g, *n, sizeof(*g), cmp_gen_desc);
	return g;
}

static void
rollout_json(struct ctl *c, const struct rollout *r, const struct gen_count *g, size_t ng)
{
	struct json j;
	char when[40];

	json_init(&j, c->out);
	json_obj_begin(&j, NULL);
	json_int(&j, "newest", (long long)r->newest);
	json_int(&j, "tvs_since", (long long)r->tvs_since);
	json_int(&j, "phones", (long long)r->n);
	json_arr_begin(&j, "generations");
	for (size_t i = 0; i < ng; i++) {
		json_obj_begin(&j, NULL);
		json_int(&j, "generation", (long long)g[i].gen);
		json_int(&j, "phones", (long long)g[i].phones);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_arr_begin(&j, "behind");
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].gen >= r->newest)
			continue;
		ctl_time((long)r->v[i].time, when, sizeof(when));
		json_obj_begin(&j, NULL);
		json_str(&j, "phone", r->v[i].mac);
		json_int(&j, "generation", (long long)r->v[i].gen);
		json_str(&j, "fetched", when);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

int
cmd_show_itl_rollout(struct ctl *c)
{
	struct gen_count *g;
	struct rollout r;
	size_t ng, behind = 0;
	char when[40];
	int rc;

	if ((rc = load_rollout(c, &r)) != CTL_OK)
		return rc;
	if ((g = count_gens(&r, &ng)) == NULL) {
		rollout_free(&r);
		return ctl_fail(c, "out of memory");
	}
	if (c->json) {
		rollout_json(c, &r, g, ng);
		goto out;
	}
	fprintf(c->out, "ITL rollout: newest generation %" PRIu64 ", TVS certificate unchanged "
		"since generation %" PRIu64 ", %zu known phone(s)\n", r.newest, r.tvs_since, r.n);
	fprintf(c->out, "  %-12s %s\n", "generation", "phones (last ITL fetched)");
	for (size_t i = 0; i < ng; i++)
		fprintf(c->out, "  %-12" PRIu64 " %zu\n", g[i].gen, g[i].phones);
	for (size_t i = 0; i < r.n; i++) {
		if (r.v[i].gen >= r.newest)
			continue;
		if (behind++ == 0)
			fprintf(c->out, "Phones that have not fetched generation %" PRIu64 ":\n", r.newest);
		ctl_time((long)r.v[i].time, when, sizeof(when));
		fprintf(c->out, "  SEP%s  generation %" PRIu64 "  at %s%s\n", r.v[i].mac, r.v[i].gen,
			when, r.v[i].gen < r.tvs_since ? "  (TVS certificate not known yet)" : "");
	}
	if (behind == 0)
		fprintf(c->out, "Every known phone fetched generation %" PRIu64 ".\n", r.newest);
out:
	free(g);
	rollout_free(&r);
	return CTL_OK;
}

/* ---- set param rollback-pre8 ---------------------------------------------- */

int
cmd_set_param(struct ctl *c)
{
	const char *v = c->args[0];
	struct trust_store st;
	bool on;
	int rc;

	if (strcasecmp(v, "true") == 0)
		on = true;
	else if (strcasecmp(v, "false") == 0)
		on = false;
	else
		return ctl_usage(c, "bad value '%s' for rollback-pre8 (true or false)", v);
	if (on) {
		fprintf(c->out, "WARNING: phones that load the next ITL find empty TFTP and TVS "
			"records: they then know no TVS, so HTTPS phone services (and every signed file "
			"from a signer they do not know) stop working while rollback-pre8 is true. Basic "
			"calls continue. Use it to move phones to a cluster without Security by "
			"Default, then set it back to false.\n");
		if (!ctl_confirm(c, "Set rollback-pre8 to true?", &rc))
			return rc;
	}
	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	if (st.set.rollback_pre8 == on) {
		store_close(&st);
		fprintf(c->out, "rollback-pre8 is already %s; nothing changed.\n", on ? "true" : "false");
		return CTL_OK;
	}
	st.set.rollback_pre8 = on;
	rc = ctl_store_commit(c, &st, on ? "Successfully set rollback-pre8 to true: the next ITL "
		"has empty TFTP and TVS records. Reset the phones to have them load it." :
		"Successfully set rollback-pre8 to false: the next ITL is the normal one again. "
		"Reset the phones to have them load it.");
	store_close(&st);
	return rc;
}

/* ---- utils itl reset ------------------------------------------------------ */

static int
reset_localkey(struct ctl *c)
{
	struct trust_store st;
	enum store_unit normal, other;
	int rc;

	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	st.set.reset_signer = false;
	normal = store_list_signer(&st.set);
	st.set.reset_signer = true;
	other = store_list_signer(&st.set);
	rc = ctl_store_commit(c, &st, "Successfully signed the ITL with the %s key (the local "
		"key phones also trust) instead of the %s key. Reset the phones that refuse the "
		"ITL; the next change to the store returns to the %s signer.",
		store_unit_name(other), store_unit_name(normal), store_unit_name(normal));
	store_close(&st);
	return rc;
}

/* Offline: the override lives only for this publication, so publish now. */
static int
publish_with(struct ctl *c, struct trust_store *st)
{
	struct publish_opts o = { .force = true, .itl_signer_cert = c->itl_cert,
		.itl_signer_key = c->itl_key, .tvsd_user = c->tvsd_user };
	struct publish_result r;

	if (store_commit(st, &c->err) != 0 || publish_run(st, c->pub_dir, &o, &r, &c->err) != 0)
		return ctl_fail_err(c);
	fprintf(c->out, "Successfully published generation %llu with an ITL signed by the "
		"recovery key; the next publication returns to the normal signer.\n",
		(unsigned long long)r.generation);
	return CTL_OK;
}

static int
reset_remotekey(struct ctl *c)
{
	struct trust_cert cert = { 0 };
	struct trust_store st;
	EVP_PKEY *key = NULL;
	char pass[PASS_MAX];
	int rc;

	if (c->nargs != 2)
		return ctl_usage(c, "remotekey needs the ITLRecovery .p12 file");
	if ((rc = ctl_passphrase(c, false, pass, sizeof(pass))) != CTL_OK)
		return rc;
	rc = trust_p12_load(ctl_path(c, c->args[1]), pass, &key, &cert, &c->err);
	OPENSSL_cleanse(pass, sizeof(pass));
	if (rc != 0)
		return ctl_fail_err(c);
	rc = CTL_FAIL;
	if (ctl_store_open(c, STORE_LOCK, &st)) {
		c->itl_cert = &cert;
		c->itl_key = key;
		if (c->hooks != NULL && c->hooks->committed != NULL)
			rc = ctl_store_commit(c, &st, "Signing the ITL once with the key of %s.",
				c->args[1]);
		else
			rc = publish_with(c, &st);
		c->itl_cert = NULL;
		c->itl_key = NULL;
		store_close(&st);
	}
	EVP_PKEY_free(key);
	trust_cert_free(&cert);
	return rc;
}

int
cmd_itl_reset(struct ctl *c)
{
	if (strcasecmp(c->args[0], "localkey") == 0) {
		if (c->nargs != 1)
			return ctl_usage(c, "localkey takes no file");
		return reset_localkey(c);
	}
	if (strcasecmp(c->args[0], "remotekey") == 0)
		return reset_remotekey(c);
	return ctl_usage(c, "unknown key '%s' (localkey or remotekey)", c->args[0]);
}

/* ---- utils disaster_recovery ---------------------------------------------- */

int
cmd_dr_backup(struct ctl *c)
{
	struct backup_info info;
	char pass[PASS_MAX];
	int rc;

	if ((rc = ctl_passphrase(c, true, pass, sizeof(pass))) != CTL_OK)
		return rc;
	/* controld writes into the file tvsctl created, which renames it */
	if (ctl_path_fd(c, c->args[0]) >= 0)
		rc = backup_write_fd(c->store_dir, ctl_path_fd(c, c->args[0]), pass, strlen(pass),
			NULL, &info, &c->err);
	else
		rc = backup_write(c->store_dir, c->args[0], pass, strlen(pass), NULL, &info,
			&c->err);
	OPENSSL_cleanse(pass, sizeof(pass));
	if (rc != 0)
		return ctl_fail_err(c);
	fprintf(c->out, "Successfully backed up the trust store %s (generation %" PRIu64 ", %u "
		"files, %zu bytes, keys included) to %s, encrypted with the passphrase "
		"(AES-256-GCM, scrypt). Without the passphrase it cannot be restored.\n",
		c->store_dir, info.generation, info.files, info.bytes, c->args[0]);
	return CTL_OK;
}

int
cmd_dr_restore(struct ctl *c)
{
	struct backup_info info;
	struct trust_store st;
	char pass[PASS_MAX];
	int rc;

	if (!ctl_confirm(c, "WARNING: this replaces the whole trust store, keys included, with "
	    "the backup.", &rc))
		return rc;
	if ((rc = ctl_passphrase(c, false, pass, sizeof(pass))) != CTL_OK)
		return rc;
	rc = backup_restore(ctl_path(c, c->args[0]), pass, strlen(pass), c->store_dir, &info,
		&c->err);
	OPENSSL_cleanse(pass, sizeof(pass));
	if (rc != 0)
		return ctl_fail(c, "restore refused: %s; the store %s is unchanged", c->err.msg,
			c->store_dir);
	fprintf(c->out, "Successfully restored the trust store %s from %s: %u files, same keys "
		"as when it was backed up; it is now generation %" PRIu64 ".\n", c->store_dir,
		c->args[0], info.files, info.generation);
	if (c->hooks == NULL || c->hooks->committed == NULL) {
		fprintf(c->out, "Run 'tvsctl publish' to sign and publish the ITL and configs of the "
			"restored store.\n");
		return CTL_OK;
	}
	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	rc = c->hooks->committed(c, &st);
	store_close(&st);
	return rc;
}
