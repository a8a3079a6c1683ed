/*
 * pub_verify: the signatures of a publication, checked by the process that
 * is about to serve it.
 *
 * pub_load only proves that the files are the ones PUBLICATION lists. The
 * index is a plain text file that anyone who can write the directory can
 * rewrite, so a flipped byte with a recomputed digest passes it. What a
 * phone will check is the signatures: an ITL that does not verify bricks
 * its trust on first use or is refused; a config that does not verify is
 * refused. So before a generation goes live its reader checks what the
 * phones would, with no key but the public ones the ITL carries:
 *
 *  - the ITL (and the CTL in mixed mode) against its own signer record,
 *    as a phone with no ITL does (the signer is a SAST record of the list);
 *  - every served .sgn and .enc.sgn against the ITL record its header
 *    names (issuer + serial, compared as trust_issuer_serial_key does), as
 *    a phone holding that ITL does; a signer the ITL does not know is an
 *    error even when the bytes are fine, since no phone could accept it;
 *  - the TVS identity: a truncated or foreign tvs.key would otherwise be
 *    found out only when the TLS contexts are built, or at the next restart
 *    when there is no previous identity to fall back on.
 *
 * The first failure wins and names the file; checks stop there, because
 * one bad file already refuses the whole publication.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cert.h"
#include "file.h"
#include "publication.h"
#include "pubverify.h"

/* An ITL record that can sign: its key for matching, its certificate
 * parsed on first use. */
struct pv_signer {
	const struct trust_record *rec;
	uint8_t key[32];
	bool parsed;
	struct trust_cert cert;
};

struct pv_ctx {
	const struct publication *p;
	struct trust_file itl;
	struct pv_signer *s;
	size_t ns;
	struct trust_err *err;
};

/* Prefixes err->msg with "<dir>/<name>: " and keeps the code. */
static int
pv_fail(struct pv_ctx *cx, const char *name, int rc)
{
	char why[sizeof(cx->err->msg)];

	snprintf(why, sizeof(why), "%s", cx->err->msg);
	return trust_errf(cx->err, rc, "%s/%s: %.400s", cx->p->dir, name, why);
}

/* Parses a served trust list and verifies it with its own signer. */
static int
pv_list(struct pv_ctx *cx, const char *name, struct trust_file *f)
{
	const struct pub_file *pf = pub_find(cx->p, name);
	int rc;

	memset(f, 0, sizeof(*f));
	if (pf == NULL)
		return trust_errf(cx->err, TRUST_ENOTFOUND, "%s/%s: not served", cx->p->dir, name);
	rc = trust_list_parse(pf->data, pf->len, f, cx->err);
	if (rc == 0)
		rc = trust_list_verify(f, NULL, cx->err);
	return rc != 0 ? pv_fail(cx, name, rc) : 0;
}

static int
pv_ctl(struct pv_ctx *cx)
{
	struct trust_file ctl;
	int rc;

	if (pub_find(cx->p, "CTLFile.tlv") == NULL)
		return 0;	/* not in mixed mode */
	rc = pv_list(cx, "CTLFile.tlv", &ctl);
	trust_file_free(&ctl);
	return rc;
}

/* The ITL records with a certificate, keyed by issuer + serial. Records
 * whose issuer is not a DN cannot be named by a header: left out. */
static int
pv_signers(struct pv_ctx *cx)
{
	cx->s = calloc(cx->itl.nrecs ? cx->itl.nrecs : 1, sizeof(*cx->s));
	if (cx->s == NULL)
		return trust_errf(cx->err, TRUST_ENOMEM, "out of memory");
	for (size_t i = 0; i < cx->itl.nrecs; i++) {
		const struct trust_record *r = &cx->itl.recs[i];
		struct pv_signer *s = &cx->s[cx->ns];

		if (r->cert.len == 0 || r->issuer.len == 0 || r->serial.len == 0)
			continue;
		if (trust_issuer_serial_key((const char *)r->issuer.p, r->issuer.len, r->serial.p,
		    r->serial.len, s->key) != 0)
			continue;
		s->rec = r;
		cx->ns++;
	}
	return 0;
}

static void
pv_free(struct pv_ctx *cx)
{
	for (size_t i = 0; i < cx->ns; i++)
		trust_cert_free(&cx->s[i].cert);
	free(cx->s);
	trust_file_free(&cx->itl);
}

/* "CN=...;... serial 0a1b..." of a header's signer, for messages. */
static void
pv_signer_text(const struct trust_header *h, char *out, size_t outsz)
{
	char hex[2 * 32 + 1];
	size_t n = h->signer_serial.len < 32 ? h->signer_serial.len : 32;

	trust_hex(h->signer_serial.p, n, hex);
	snprintf(out, outsz, "%.*s, serial %s", (int)(h->signer_name.len ? h->signer_name.len - 1
		: 0), h->signer_name.p ? (const char *)h->signer_name.p : "", n ? hex : "none");
}

static struct pv_signer *
pv_find_signer(struct pv_ctx *cx, const struct trust_header *h)
{
	uint8_t key[32];

	if (h->signer_issuer.len == 0 || h->signer_serial.len == 0
	    || trust_issuer_serial_key((const char *)h->signer_issuer.p, h->signer_issuer.len,
		h->signer_serial.p, h->signer_serial.len, key) != 0)
		return NULL;
	for (size_t i = 0; i < cx->ns; i++)
		if (memcmp(cx->s[i].key, key, sizeof(key)) == 0)
			return &cx->s[i];
	return NULL;
}

static int
pv_signer_cert(struct pv_ctx *cx, struct pv_signer *s, const char *name)
{
	int rc;

	if (s->parsed)
		return 0;
	rc = trust_cert_from_der(s->rec->cert.p, s->rec->cert.len, &s->cert, cx->err);
	if (rc != 0) {
		char why[sizeof(cx->err->msg)];

		snprintf(why, sizeof(why), "%s", cx->err->msg);
		return trust_errf(cx->err, rc, "%s/%s: its signer's record in ITLFile.tlv (offset "
			"%zu) has a bad certificate: %.300s", cx->p->dir, name, s->rec->off, why);
	}
	s->parsed = true;
	return 0;
}

static bool
pv_is_signed(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcmp(name + n - 4, ".sgn") == 0;
}

static int
pv_sgn(struct pv_ctx *cx, const struct pub_file *pf)
{
	struct trust_file f;
	struct pv_signer *s;
	char who[400];
	int rc;

	rc = trust_file_parse(pf->data, pf->len, &f, cx->err);
	if (rc != 0) {
		trust_file_free(&f);
		return pv_fail(cx, pf->name, rc);
	}
	s = pv_find_signer(cx, &f.hdr);
	if (s == NULL) {
		pv_signer_text(&f.hdr, who, sizeof(who));
		trust_file_free(&f);
		return trust_errf(cx->err, TRUST_ENOTFOUND, "%s/%s: signer %s is not a record "
			"of ITLFile.tlv", cx->p->dir, pf->name, who);
	}
	rc = pv_signer_cert(cx, s, pf->name);
	if (rc == 0 && (rc = trust_file_verify(&f, trust_cert_pubkey(&s->cert), cx->err)) != 0)
		rc = pv_fail(cx, pf->name, rc);
	trust_file_free(&f);
	return rc;
}

/* The TVS certificate must be one of the ITL's TVS records, if it has any
 * with a certificate (rollback-pre8 leaves only an empty one). */
static int
pv_tvs_in_itl(struct pv_ctx *cx, const struct trust_cert *c)
{
	unsigned n = 0;

	for (size_t i = 0; i < cx->itl.nrecs; i++) {
		const struct trust_record *r = &cx->itl.recs[i];

		if (!r->has_role || r->role != TRUST_ROLE_TVS || r->cert.len == 0)
			continue;
		if (r->cert.len == c->der_len && memcmp(r->cert.p, c->der, c->der_len) == 0)
			return 0;
		n++;
	}
	if (n == 0)
		return 0;
	return trust_errf(cx->err, TRUST_ENOTFOUND, "%s/tvs/tvs.pem: certificate %s is none "
		"of the %u TVS record(s) of ITLFile.tlv", cx->p->dir, c->subject, n);
}

static int
pv_tvs(struct pv_ctx *cx)
{
	const struct publication *p = cx->p;
	bool has_cert = p->tvs_cert_path[0] != '\0', has_key = p->tvs_key_path[0] != '\0';
	struct trust_cert c;
	EVP_PKEY *key = NULL;
	int rc;

	if (!has_cert && !has_key)
		return 0;
	if (has_cert != has_key)
		return trust_errf(cx->err, TRUST_ENOTFOUND, "%s/%s: listed without %s", p->dir,
			has_cert ? "tvs/tvs.pem" : "tvs/tvs.key", has_cert ? "tvs/tvs.key" : "tvs/tvs.pem");
	if ((rc = trust_cert_load(p->tvs_cert_path, &c, cx->err)) != 0)
		return rc;	/* the message names the path */
	rc = trust_key_load(p->tvs_key_path, &key, cx->err);
	if (rc != 0) {
		char why[sizeof(cx->err->msg)];
		size_t n = strlen(p->tvs_key_path);

		/* its message starts with the path, which pv_fail adds again */
		snprintf(why, sizeof(why), "%s", strncmp(cx->err->msg, p->tvs_key_path, n) == 0
			&& cx->err->msg[n] == ':' ? cx->err->msg + n + 2 : cx->err->msg);
		rc = trust_errf(cx->err, rc, "not a usable private key (%.400s)", why);
	} else if (EVP_PKEY_eq(trust_cert_pubkey(&c), key) != 1) {
		ERR_clear_error();
		rc = trust_errf(cx->err, TRUST_EINVAL, "not the key of the certificate %s in "
			"tvs/tvs.pem", c.subject);
	}
	if (rc != 0)
		rc = pv_fail(cx, "tvs/tvs.key", rc);
	else
		rc = pv_tvs_in_itl(cx, &c);
	EVP_PKEY_free(key);
	trust_cert_free(&c);
	return rc;
}

int
pub_verify(const struct publication *p, struct trust_err *err)
{
	struct trust_err local;
	struct pv_ctx cx = { .p = p, .err = err != NULL ? err : &local };
	int rc;

	rc = pv_list(&cx, "ITLFile.tlv", &cx.itl);
	if (rc == 0)
		rc = pv_ctl(&cx);
	if (rc == 0)
		rc = pv_signers(&cx);
	for (size_t i = 0; rc == 0 && i < p->nfiles; i++)
		if (pv_is_signed(p->files[i].name))
			rc = pv_sgn(&cx, &p->files[i]);
	if (rc == 0)
		rc = pv_tvs(&cx);
	pv_free(&cx);
	return rc;
}
