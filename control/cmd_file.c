/*
 * Offline file tools: sign, verify and strip .sgn files; encrypt and
 * decrypt .enc.sgn device configs. The signer defaults to the store's
 * CallManager (TFTP) certificate, as on CUCM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ctl.h"
#include "file.h"
#include "sign.h"

#define FILE_READ_MAX (16u << 20)

struct signer_src {
	struct trust_cert cert;
	EVP_PKEY *key;
	unsigned hash;
};

static void
signer_free(struct signer_src *s)
{
	trust_cert_free(&s->cert);
	EVP_PKEY_free(s->key);
}

/* --cert/--key, or the store's CallManager pair and hash setting. */
static int
signer_load(struct ctl *c, struct signer_src *s)
{
	const char *cert = ctl_opt(c, "cert"), *key = ctl_opt(c, "key"), *h = ctl_opt(c, "hash");
	struct trust_store st;
	int hash = TRUST_HASH_SHA1;

	memset(s, 0, sizeof(*s));
	s->hash = TRUST_HASH_SHA1;
	if ((cert == NULL) != (key == NULL))
		return ctl_usage(c, "--cert and --key go together (or neither: the store's CallManager)");
	if (h != NULL) {
		hash = trust_hash_parse(h);
		if (hash != TRUST_HASH_SHA1 && hash != TRUST_HASH_SHA512)
			return ctl_usage(c, "bad --hash '%s' (sha1 or sha512)", h);
	}
	if (cert != NULL) {
		if (trust_cert_load(cert, &s->cert, &c->err) != 0 ||
		    trust_key_load(key, &s->key, &c->err) != 0) {
			signer_free(s);
			return ctl_fail_err(c);
		}
	} else {
		if (!ctl_store_open(c, STORE_RDONLY, &st))
			return CTL_FAIL;
		s->hash = st.set.hash;
		if (store_own_cert(&st, UNIT_CALLMANAGER, &s->cert, &c->err) != 0 ||
		    store_own_key(&st, UNIT_CALLMANAGER, &s->key, &c->err) != 0) {
			store_close(&st);
			signer_free(s);
			return ctl_fail_err(c);
		}
		store_close(&st);
	}
	if (h != NULL)
		s->hash = (unsigned)hash;
	return CTL_OK;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The output path: --out, or the input with suffix added (add) or removed. */
static int
out_path(struct ctl *c, const char *in, const char *suffix, bool add, char *out, size_t n)
{
	const char *o = ctl_opt(c, "out");
	size_t il = strlen(in), sl = strlen(suffix);

	if (o != NULL)
		snprintf(out, n, "%s", o);
	else if (add)
		snprintf(out, n, "%s%s", in, suffix);
	else if (il > sl && strcmp(in + il - sl, suffix) == 0)
		snprintf(out, n, "%.*s", (int)(il - sl), in);
	else
		return ctl_usage(c, "'%s' does not end in %s; name the output with --out", in, suffix);
	if (strcmp(out, in) == 0)
		return ctl_usage(c, "the output '%s' would overwrite the input", out);
	return CTL_OK;
}

static int
write_out(struct ctl *c, const char *path, const uint8_t *p, size_t n, unsigned mode)
{
	if (strcmp(path, "-") == 0) {
		if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0)
			return ctl_fail(c, "cannot write to stdout");
		return CTL_OK;
	}
	if (trust_file_write_atomic(path, p, n, mode, &c->err) != 0)
		return ctl_fail_err(c);
	return CTL_OK;
}

static bool
read_in(struct ctl *c, const char *path, struct trust_buf *b)
{
	if (trust_file_read(path, FILE_READ_MAX, b, &c->err) == 0)
		return true;
	ctl_fail_err(c);
	return false;
}

int
cmd_sgn_sign(struct ctl *c)
{
	struct signer_src s;
	struct trust_signer sg;
	struct trust_buf in, out;
	char path[4096];
	int rc;

	if ((rc = out_path(c, c->args[0], ".sgn", true, path, sizeof(path))) != CTL_OK ||
	    (rc = signer_load(c, &s)) != CTL_OK)
		return rc;
	if (!read_in(c, c->args[0], &in)) {
		signer_free(&s);
		return CTL_FAIL;
	}
	sg = (struct trust_signer){ .cert = &s.cert, .key = s.key, .hash = s.hash };
	trust_buf_init(&out);
	if (trust_sgn_sign(&sg, base_name(path), (uint32_t)time(NULL), in.data, in.len, &out,
	    &c->err) != 0)
		rc = ctl_fail_err(c);
	else
		rc = write_out(c, path, out.data, out.len, 0644);
	if (rc == CTL_OK && strcmp(path, "-") != 0)
		printf("Successfully signed %s as %s (%zu bytes, %s, signer %s).\n", c->args[0], path,
			out.len, trust_hash_name(s.hash), s.cert.subject);
	trust_buf_free(&out);
	trust_buf_wipe(&in);
	signer_free(&s);
	return rc;
}

/* The TFTP record of an ITL/CTL that names the .sgn's signer. */
static int
signer_from_list(struct ctl *c, const char *list_path, const struct trust_header *h,
	struct trust_cert *out)
{
	const struct trust_record *found = NULL;
	struct trust_buf lb;
	struct trust_file lf;
	int rc = CTL_OK;

	if (!read_in(c, list_path, &lb))
		return CTL_FAIL;
	if (trust_list_parse(lb.data, lb.len, &lf, &c->err) != 0) {
		trust_buf_free(&lb);
		return ctl_fail(c, "%s: %s", list_path, c->err.msg);
	}
	for (size_t i = 0; i < lf.nrecs && found == NULL; i++) {
		const struct trust_record *r = &lf.recs[i];

		if (r->has_role && (r->role == TRUST_ROLE_TFTP || r->role == TRUST_ROLE_CCM_TFTP) &&
		    r->cert.len > 0 &&
		    trust_serial_equal(r->serial.p, r->serial.len, h->signer_serial.p,
			h->signer_serial.len) &&
		    trust_name_equal((const char *)r->issuer.p, r->issuer.len,
			(const char *)h->signer_issuer.p, h->signer_issuer.len))
			found = r;
	}
	if (found == NULL)
		rc = ctl_fail(c, "the signer of the file (%.*s) is not a TFTP or CCM+TFTP record of %s",
			(int)h->signer_name.len, (const char *)h->signer_name.p, list_path);
	else if (trust_cert_from_der(found->cert.p, found->cert.len, out, &c->err) != 0)
		rc = ctl_fail_err(c);
	trust_file_free(&lf);
	trust_buf_free(&lb);
	return rc;
}

int
cmd_sgn_verify(struct ctl *c)
{
	const char *cert = ctl_opt(c, "cert"), *itl = ctl_opt(c, "itl");
	struct trust_cert x = { 0 };
	struct trust_bytes payload;
	struct trust_buf in;
	struct trust_file f;
	int rc;

	if ((cert == NULL) == (itl == NULL))
		return ctl_usage(c, "give exactly one of --cert and --itl");
	if (!read_in(c, c->args[0], &in))
		return CTL_FAIL;
	if (trust_file_parse(in.data, in.len, &f, &c->err) != 0) {
		trust_buf_free(&in);
		return ctl_fail(c, "%s: %s", c->args[0], c->err.msg);
	}
	if (cert != NULL)
		rc = trust_cert_load(cert, &x, &c->err) != 0 ? ctl_fail_err(c) : CTL_OK;
	else
		rc = signer_from_list(c, itl, &f.hdr, &x);
	if (rc == CTL_OK) {
		if (trust_sgn_verify(in.data, in.len, &x, &payload, &c->err) != 0)
			rc = ctl_fail(c, "%s could not be verified: %s", c->args[0], c->err.msg);
		else
			printf("The file %s was verified successfully: signed by %s (%s), "
				"%zu payload bytes.\n", c->args[0], x.subject,
				trust_hash_name(f.hdr.hash_alg) ? trust_hash_name(f.hdr.hash_alg) : "?",
				payload.len);
	}
	trust_file_free(&f);
	trust_cert_free(&x);
	trust_buf_free(&in);
	return rc;
}

int
cmd_sgn_strip(struct ctl *c)
{
	struct trust_bytes payload;
	struct trust_buf in;
	char path[4096];
	int rc;

	if ((rc = out_path(c, c->args[0], ".sgn", false, path, sizeof(path))) != CTL_OK)
		return rc;
	if (!read_in(c, c->args[0], &in))
		return CTL_FAIL;
	if (trust_sgn_strip(in.data, in.len, &payload, &c->err) != 0)
		rc = ctl_fail(c, "%s: %s", c->args[0], c->err.msg);
	else
		rc = write_out(c, path, payload.p, payload.len, 0644);
	if (rc == CTL_OK && strcmp(path, "-") != 0)
		printf("Wrote the %zu payload bytes of %s to %s (signature not checked).\n",
			payload.len, c->args[0], path);
	trust_buf_free(&in);
	return rc;
}

int
cmd_enc_encrypt(struct ctl *c)
{
	const char *pc = ctl_opt(c, "phone-cert");
	struct trust_cert phone = { 0 };
	struct trust_signer sg;
	struct signer_src s;
	struct trust_buf in, out;
	char path[4096];
	int rc;

	if (pc == NULL)
		return ctl_usage(c, "--phone-cert is required (the phone's LSC or MIC)");
	if ((rc = out_path(c, c->args[0], ".enc.sgn", true, path, sizeof(path))) != CTL_OK ||
	    (rc = signer_load(c, &s)) != CTL_OK)
		return rc;
	trust_buf_init(&out);
	trust_buf_init(&in);
	if (trust_cert_load(pc, &phone, &c->err) != 0) {
		rc = ctl_fail_err(c);
		goto out;
	}
	if (!read_in(c, c->args[0], &in)) {
		rc = CTL_FAIL;
		goto out;
	}
	sg = (struct trust_signer){ .cert = &s.cert, .key = s.key, .hash = s.hash };
	if (trust_enc_encrypt(&sg, base_name(path), (uint32_t)time(NULL), &phone, in.data, in.len,
	    &out, &c->err) != 0)
		rc = ctl_fail_err(c);
	else
		rc = write_out(c, path, out.data, out.len, 0644);
	if (rc == CTL_OK && strcmp(path, "-") != 0)
		printf("Successfully encrypted %s for %s as %s (%zu bytes).\n", c->args[0],
			phone.subject, path, out.len);
out:
	trust_buf_free(&out);
	trust_buf_wipe(&in);
	trust_cert_free(&phone);
	signer_free(&s);
	return rc;
}

int
cmd_enc_decrypt(struct ctl *c)
{
	const char *pk = ctl_opt(c, "phone-key"), *sc = ctl_opt(c, "signer-cert");
	struct trust_cert signer = { 0 };
	struct trust_buf in, out;
	EVP_PKEY *key = NULL;
	char path[4096];
	int rc;

	if (pk == NULL)
		return ctl_usage(c, "--phone-key is required");
	if ((rc = out_path(c, c->args[0], ".enc.sgn", false, path, sizeof(path))) != CTL_OK)
		return rc;
	trust_buf_init(&in);
	trust_buf_init(&out);
	if (trust_key_load(pk, &key, &c->err) != 0 ||
	    (sc != NULL && trust_cert_load(sc, &signer, &c->err) != 0)) {
		rc = ctl_fail_err(c);
		goto out;
	}
	if (!read_in(c, c->args[0], &in)) {
		rc = CTL_FAIL;
		goto out;
	}
	if (trust_enc_decrypt(in.data, in.len, sc ? &signer : NULL, key, &out, &c->err) != 0)
		rc = ctl_fail(c, "%s could not be decrypted: %s", c->args[0], c->err.msg);
	else
		rc = write_out(c, path, out.data, out.len, 0600);
	if (rc == CTL_OK && strcmp(path, "-") != 0)
		printf("Successfully decrypted %s to %s (%zu bytes; %s).\n", c->args[0], path, out.len,
			sc ? "signature verified" : "signature NOT checked: no --signer-cert");
out:
	trust_buf_wipe(&out);
	trust_buf_free(&in);
	trust_cert_free(&signer);
	EVP_PKEY_free(key);
	return rc;
}
