/*
 * Commands that change the store, and publish. Each takes the store lock
 * for its whole run, so two operators never interleave, and ends with an
 * admin-style outcome line and the duty that follows (publishing).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <openssl/x509.h>

#include "ctl.h"
#include "publish.h"
#include "rollout.h"

int
cmd_store_init(struct ctl *c)
{
	struct store_init_opts o = { .hostname = ctl_opt(c, "hostname"),
		.force = ctl_flag(c, "force") };
	const char *v;
	unsigned long bits;
	bool given;
	int rc, h;

	if ((rc = ctl_opt_uint(c, "key-bits", 1024, 4096, &bits, &given)) != CTL_OK)
		return rc;
	o.key_bits = given ? (unsigned)bits : 0;
	if ((v = ctl_opt(c, "ipv4")) != NULL) {
		if (inet_pton(AF_INET, v, o.ipv4) != 1)
			return ctl_usage(c, "bad IPv4 address '%s' for --ipv4", v);
		o.has_ipv4 = true;
	}
	if ((v = ctl_opt(c, "itl-signer")) != NULL) {
		if (strcasecmp(v, "callmanager") == 0)
			o.itl_signer = SIGNER_CALLMANAGER;
		else if (strcasecmp(v, "itlrecovery") == 0)
			o.itl_signer = SIGNER_ITLRECOVERY;
		else
			return ctl_usage(c, "bad --itl-signer '%s' (callmanager or itlrecovery)", v);
	}
	if ((v = ctl_opt(c, "hash")) != NULL) {
		h = trust_hash_parse(v);
		if (h != TRUST_HASH_SHA1 && h != TRUST_HASH_SHA512)
			return ctl_usage(c, "bad --hash '%s' (sha1 or sha512)", v);
		o.hash = (unsigned)h;
	}
	if (o.force && !ctl_confirm(c, "WARNING: this replaces every key and certificate of the "
	    "store; phones that hold the current ITL will trust the new one only through TVS.", &rc))
		return rc;
	if (store_init(c->store_dir, &o, &c->err) != 0) {
		if (c->err.code == TRUST_EEXIST)
			return ctl_fail(c, "%s (add --force to replace it)", c->err.msg);
		return ctl_fail_err(c);
	}
	fprintf(c->out, "Successfully created the trust store at %s with new certificates for "
		"CallManager, ITLRecovery, TVS and CAPF.\n", c->store_dir);
	fprintf(c->out, "Run 'tvsctl --store %s --pub %s publish' to build the first publication.\n",
		c->store_dir, c->pub_dir);
	return CTL_OK;
}

int
cmd_store_check(struct ctl *c)
{
	struct trust_store st;

	if (!ctl_store_open(c, STORE_RDONLY, &st))
		return CTL_FAIL;
	fprintf(c->out, "The trust store %s is intact: generation %llu, %d own, %zu trusted and %zu phone "
		"certificate(s), every object matches its digest.\n", c->store_dir,
		(unsigned long long)st.generation, UNIT_COUNT, st.ntrusted, st.nphones);
	store_close(&st);
	return CTL_OK;
}

int
cmd_store_gc(struct ctl *c)
{
	struct trust_store st;
	int n;

	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	n = store_gc(&st, &c->err);
	store_close(&st);
	if (n < 0)
		return ctl_fail_err(c);
	fprintf(c->out, "Removed %d unreferenced file(s) from %s.\n", n, c->store_dir);
	return CTL_OK;
}

static int
set_setting(struct ctl *c, const char *key, const char *val)
{
	struct store_settings old;
	struct trust_store st;
	int rc;

	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	old = st.set;
	if (store_setting_set(&st.set, key, val, &c->err) != 0) {
		store_close(&st);
		return c->err.code == TRUST_ENOTFOUND || c->err.code == TRUST_EINVAL ?
			ctl_usage(c, "%s", c->err.msg) : ctl_fail_err(c);
	}
	if (store_settings_check_change(&old, &st.set, &c->err) != 0) {
		store_close(&st);
		return ctl_fail_err(c);
	}
	rc = ctl_store_commit(c, &st, "Successfully set %s to %s.", key, val);
	store_close(&st);
	return rc;
}

int
cmd_set_store(struct ctl *c)
{
	return set_setting(c, c->args[0], c->args[1]);
}

int
cmd_set_cluster(struct ctl *c)
{
	const char *mode = c->args[0];
	int rc;

	if (strcasecmp(mode, "mixed-mode") != 0 && strcasecmp(mode, "non-secure-mode") != 0)
		return ctl_usage(c, "unknown mode '%s' (mixed-mode or non-secure-mode)", mode);
	rc = set_setting(c, "security-mode", strcasecmp(mode, "mixed-mode") == 0 ? "mixed" :
		"non-secure");
	if (rc == CTL_OK)
		fprintf(c->out, "You must publish and then reset all phones for the change to take effect.\n");
	return rc;
}

int
cmd_cert_regen(struct ctl *c)
{
	int u = store_unit_parse(c->args[0]), rc;
	struct trust_store st;
	char warn[512];

	if (u < 0)
		return ctl_usage(c, "unknown unit '%s' (CallManager, ITLRecovery, TVS or CAPF)",
			c->args[0]);
	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	if (u == UNIT_CALLMANAGER && !ctl_flag(c, "force") &&
	    (rc = ctl_rollout_guard(c, &st)) != CTL_OK) {
		store_close(&st);
		return rc;
	}
	snprintf(warn, sizeof(warn), "WARNING: this replaces the %s key and certificate.%s",
		store_unit_name(u),
		u == (int)store_list_signer(&st.set) ? " It signs the ITL: phones will accept the "
		"new ITL only after asking TVS about the new signer." :
		u == UNIT_CALLMANAGER ? " It signs the phone configs." : "");
	if (!ctl_confirm(c, warn, &rc)) {
		store_close(&st);
		return rc;
	}
	if (store_own_regen(&st, u, &c->err) != 0) {
		store_close(&st);
		return ctl_fail_err(c);
	}
	rc = ctl_store_commit(c, &st, "Successfully regenerated certificate for %s.",
		store_unit_name(u));
	store_close(&st);
	return rc;
}

/* "TVS,CCM+TFTP" → codes. */
static int
parse_roles(struct ctl *c, const char *s, uint16_t *roles, unsigned *n)
{
	char buf[256], *save = NULL;

	*n = 0;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int r = trust_role_parse(t);

		if (r < 0)
			return ctl_usage(c, "unknown role '%s' (SAST, CCM, CCM+TFTP, TFTP, CAPF, SRST, "
				"APP-SERVER, TVS or a number)", t);
		if (*n == 8)
			return ctl_usage(c, "at most 8 roles");
		roles[(*n)++] = (uint16_t)r;
	}
	if (*n == 0)
		return ctl_usage(c, "no role given");
	return CTL_OK;
}

/* Default entry name: the certificate's CN, made index-safe. */
static void
default_name(const struct trust_cert *x, char *out, size_t n)
{
	X509_NAME *nm = X509_get_subject_name(x->x509);
	char cn[STORE_NAME_MAX] = "";

	if (X509_NAME_get_text_by_NID(nm, NID_commonName, cn, sizeof(cn)) <= 0 || cn[0] == '\0')
		trust_hex(x->sha256, 8, cn);
	for (char *p = cn; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-@+", *p))
			*p = '_';
	snprintf(out, n, "%s", cn);
}

int
cmd_cert_import_trust(struct ctl *c)
{
	struct trust_cert x = { 0 };
	struct trust_store st;
	uint16_t roles[8];
	unsigned nroles;
	unsigned long ttl;
	char name[STORE_NAME_MAX], rtext[128], buf[32];
	bool given;
	int rc;

	if ((rc = parse_roles(c, c->args[0], roles, &nroles)) != CTL_OK ||
	    (rc = ctl_opt_uint(c, "ttl", 1, UINT32_MAX, &ttl, &given)) != CTL_OK)
		return rc;
	if (!given)
		ttl = 0;
	if (trust_cert_load(ctl_path(c, c->args[1]), &x, &c->err) != 0)
		return ctl_fail_err(c);
	if (ctl_opt(c, "name"))
		snprintf(name, sizeof(name), "%s", ctl_opt(c, "name"));
	else
		default_name(&x, name, sizeof(name));
	if (!ctl_store_open(c, STORE_LOCK, &st)) {
		trust_cert_free(&x);
		return CTL_FAIL;
	}
	rc = store_trust_add(&st, name, roles, nroles, (uint32_t)ttl, &x, &c->err);
	trust_cert_free(&x);
	if (rc != 0) {
		store_close(&st);
		return c->err.code == TRUST_EINVAL ? ctl_usage(c, "%s", c->err.msg) : ctl_fail_err(c);
	}
	rtext[0] = '\0';
	for (unsigned i = 0; i < nroles; i++) {
		const char *rn = trust_role_name(roles[i]);

		snprintf(buf, sizeof(buf), "%u", roles[i]);
		strncat(rtext, i ? "," : "", sizeof(rtext) - strlen(rtext) - 1);
		strncat(rtext, rn ? rn : buf, sizeof(rtext) - strlen(rtext) - 1);
	}
	rc = ctl_store_commit(c, &st, "Successfully imported certificate '%s' into the trust store "
		"with roles %s.", name, rtext);
	store_close(&st);
	return rc;
}

int
cmd_cert_import_own(struct ctl *c)
{
	int u = store_unit_parse(c->args[0]), rc;
	struct trust_cert x = { 0 };
	struct trust_store st;
	EVP_PKEY *key = NULL;

	if (u < 0)
		return ctl_usage(c, "unknown unit '%s' (CallManager, ITLRecovery, TVS or CAPF)",
			c->args[0]);
	if (trust_cert_load(ctl_path(c, c->args[1]), &x, &c->err) != 0 ||
	    trust_key_load(ctl_path(c, c->args[2]), &key, &c->err) != 0) {
		trust_cert_free(&x);
		return ctl_fail_err(c);
	}
	rc = CTL_FAIL;
	if (!ctl_store_open(c, STORE_LOCK, &st))
		goto out;
	if (!ctl_confirm(c, "WARNING: this replaces the unit's key and certificate.", &rc))
		goto close;
	if (store_own_set(&st, u, &x, key, &c->err) != 0)
		rc = ctl_fail_err(c);
	else
		rc = ctl_store_commit(c, &st, "Successfully imported the certificate and key of %s.",
			store_unit_name(u));
close:
	store_close(&st);
out:
	EVP_PKEY_free(key);
	trust_cert_free(&x);
	return rc;
}

int
cmd_cert_delete(struct ctl *c)
{
	struct trust_store st;
	char warn[256];
	int rc;

	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	if (store_trust_find(&st, c->args[0]) == NULL) {
		store_close(&st);
		return ctl_fail(c, "no trusted certificate named '%s' (see tvsctl show cert list trust)",
			c->args[0]);
	}
	snprintf(warn, sizeof(warn), "WARNING: the TVS will stop vouching for '%s'.", c->args[0]);
	if (!ctl_confirm(c, warn, &rc)) {
		store_close(&st);
		return rc;
	}
	if (store_trust_delete(&st, c->args[0], &c->err) != 0)
		rc = ctl_fail_err(c);
	else
		rc = ctl_store_commit(c, &st, "Successfully deleted certificate '%s' from the trust "
			"store.", c->args[0]);
	store_close(&st);
	return rc;
}

int
cmd_phone_set(struct ctl *c)
{
	struct trust_cert x = { 0 };
	struct trust_store st;
	int rc;

	if (trust_cert_load(ctl_path(c, c->args[1]), &x, &c->err) != 0)
		return ctl_fail_err(c);
	if (!ctl_store_open(c, STORE_LOCK, &st)) {
		trust_cert_free(&x);
		return CTL_FAIL;
	}
	rc = store_phone_add(&st, c->args[0], &x, &c->err);
	trust_cert_free(&x);
	if (rc != 0)
		rc = c->err.code == TRUST_EINVAL ? ctl_usage(c, "%s", c->err.msg) : ctl_fail_err(c);
	else
		rc = ctl_store_commit(c, &st, "Successfully registered the certificate of %s; its "
			"config will be published encrypted.", c->args[0]);
	store_close(&st);
	return rc;
}

int
cmd_phone_delete(struct ctl *c)
{
	struct trust_store st;
	int rc;

	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	if (store_phone_find(&st, c->args[0]) == NULL) {
		store_close(&st);
		return ctl_fail(c, "no certificate registered for phone '%s'", c->args[0]);
	}
	if (!ctl_confirm(c, "WARNING: the phone's config will be published signed but not "
	    "encrypted.", &rc)) {
		store_close(&st);
		return rc;
	}
	if (store_phone_delete(&st, c->args[0], &c->err) != 0)
		rc = ctl_fail_err(c);
	else
		rc = ctl_store_commit(c, &st, "Successfully removed the certificate of %s.",
			c->args[0]);
	store_close(&st);
	return rc;
}

/* The generation since which the TVS certificate is what it is: the
 * ordering rule of `set cert regen CallManager` needs it. */
static void
note_publish(struct ctl *c, const struct trust_store *st, uint64_t gen)
{
	struct trust_err err = { 0 };

	if (rollout_note_publish(c->pub_dir, st->own[UNIT_TVS].cert.sha256, gen, &err) != 0)
		fprintf(c->errf, "tvsctl: warning: %s\n", err.msg);
}

int
cmd_publish(struct ctl *c)
{
	struct publish_opts o = { .force = ctl_flag(c, "force"), .tvsd_user = c->tvsd_user };
	struct publish_result r;
	struct trust_store st;
	int rc = CTL_OK;

	if (ctl_opt(c, "configs") != NULL)
		o.config_dir = ctl_path(c, ctl_opt(c, "configs"));
	if (!ctl_store_open(c, STORE_LOCK, &st))
		return CTL_FAIL;
	if (publish_run(&st, c->pub_dir, &o, &r, &c->err) != 0) {
		if (c->err.code == TRUST_EEXIST) {
			fprintf(c->out, "Nothing to publish: %s.\n(Use 'tvsctl publish --force' to "
				"publish the same store again as a new generation.)\n", c->err.msg);
			/* controld: still make sure tvsd serves what is published */
			if (c->hooks != NULL && c->hooks->published != NULL)
				rc = c->hooks->published(c, &st, 0);
		} else {
			rc = ctl_fail_err(c);
		}
		store_close(&st);
		return rc;
	}
	note_publish(c, &st, r.generation);
	fprintf(c->out, "Successfully published generation %llu to %s\n",
		(unsigned long long)r.generation, r.dir);
	fprintf(c->out, "  ITLFile.tlv: %zu bytes\n", r.itl_size);
	if (r.ctl_size)
		fprintf(c->out, "  CTLFile.tlv: %zu bytes (mixed mode)\n", r.ctl_size);
	fprintf(c->out, "  device configs: %u signed, %u of them encrypted\n", r.nconfigs,
		r.nencrypted);
	fprintf(c->out, "  certificates the TVS vouches for: %u\n", r.ncerts);
	if (r.nrejected)
		fprintf(c->out, "  config folder entries not published: %u: %s\n", r.nrejected,
			r.rejected);
	c->configs_rejected = r.nrejected;
	c->configs_rejected_names = r.rejected;
	if (c->hooks != NULL && c->hooks->published != NULL)
		rc = c->hooks->published(c, &st, r.generation);
	else
		fprintf(c->out, "%s/current now points to it; tvsd picks it up on its next reload.\n",
			c->pub_dir);
	store_close(&st);
	return rc;
}
