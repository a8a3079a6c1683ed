/*
 * Trust decisions of one simulated phone, see phtrust.h. The rules, in the
 * order a phone applies them (FORMATS §4):
 *
 *  list (CTL/ITL): identical to the installed one -> unchanged; none of
 *  that kind installed -> the CTL's SAST (for an ITL) or trust on first use
 *  (the file must verify with its own signer record); installed ITL empty
 *  -> any ITL; signer is a SAST record of the installed list (or of the
 *  CTL, for an ITL) -> same signer; a cached TVS answer with role SAST;
 *  else ask a TVS of the ITL.
 *
 *  config: signer is a TFTP or CCM+TFTP record of the CTL, then the ITL;
 *  installed ITL empty, or no list at all -> taken unchecked (unsigned
 *  configs too); a cached TVS answer with such a role; else ask a TVS.
 *
 * A signer is found by issuer and serial (§8.1, §8.2), and whatever finds
 * it, the file's signature must still verify with that certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "phtrust.h"

#define ROLE_BIT(r) (1u << (r))
#define MASK_SAST ROLE_BIT(TRUST_ROLE_SAST)
#define MASK_TFTP (ROLE_BIT(TRUST_ROLE_TFTP) | ROLE_BIT(TRUST_ROLE_CCM_TFTP))
#define STATE_MAX (8u << 20)

void
ph_trust_init(struct ph_trust *t)
{
	memset(t, 0, sizeof(*t));
	trust_buf_init(&t->ctl.bytes);
	trust_buf_init(&t->itl.bytes);
}

static void
installed_free(struct ph_installed *i)
{
	if (ph_has(i))
		trust_file_free(&i->f);
	trust_buf_free(&i->bytes);
	memset(&i->f, 0, sizeof(i->f));
}

void
ph_trust_free(struct ph_trust *t)
{
	installed_free(&t->ctl);
	installed_free(&t->itl);
	for (size_t i = 0; i < t->nvouch; i++)
		trust_cert_free(&t->vouch[i].cert);
	t->nvouch = 0;
}

const char *
ph_how_name(enum ph_how h)
{
	static const char *const names[] = {
		[PH_NONE] = "none", [PH_UNCHANGED] = "unchanged", [PH_TOFU] = "tofu",
		[PH_SAME_SIGNER] = "same-signer", [PH_CTL_SIGNER] = "ctl-signer",
		[PH_ITL_SIGNER] = "itl-signer", [PH_VIA_TVS] = "via-tvs",
		[PH_VIA_TVS_CACHE] = "via-tvs-cache", [PH_EMPTY_ITL] = "empty-itl",
		[PH_NO_ITL] = "no-itl", [PH_REJECTED] = "rejected", [PH_NEED_TVS] = "need-tvs",
	};

	return (unsigned)h < sizeof(names) / sizeof(names[0]) ? names[h] : "?";
}

static bool
is_tftpish(unsigned role)
{
	return role == TRUST_ROLE_TFTP || role == TRUST_ROLE_CCM_TFTP;
}

bool
ph_itl_empty(const struct ph_trust *t)
{
	size_t blank = 0;

	if (!ph_has(&t->itl))
		return false;
	for (size_t i = 0; i < t->itl.f.nrecs; i++) {
		const struct trust_record *r = &t->itl.f.recs[i];

		if (!r->has_role || !(is_tftpish(r->role) || r->role == TRUST_ROLE_TVS))
			continue;
		if (r->cert.len > 0)
			return false;
		blank++;
	}
	return blank > 0;
}

size_t
ph_tvs_certs(const struct ph_trust *t, struct trust_bytes *out, size_t max)
{
	size_t n = 0;

	if (!ph_has(&t->itl))
		return 0;
	for (size_t i = 0; i < t->itl.f.nrecs && n < max; i++) {
		const struct trust_record *r = &t->itl.f.recs[i];

		if (r->has_role && r->role == TRUST_ROLE_TVS && r->cert.len > 0)
			out[n++] = r->cert;
	}
	return n;
}

/* A name view without its trailing NUL. */
static struct trust_bytes
strview(struct trust_bytes b)
{
	if (b.len > 0 && b.p[b.len - 1] == '\0')
		b.len--;
	return b;
}

static int
signer_len(const struct trust_header *h)
{
	struct trust_bytes s = strview(h->signer_name);

	return s.len > 120 ? 120 : (int)s.len;
}

#define SIGNER_FMT "%.*s"
#define SIGNER_ARG(h) signer_len(h), (const char *)(h)->signer_name.p

static bool
names_signer(const struct trust_header *h, const struct trust_bytes *issuer,
	const struct trust_bytes *serial)
{
	struct trust_bytes hi = strview(h->signer_issuer), ri = strview(*issuer);

	if (h->signer_serial.len == 0 || !trust_serial_equal(serial->p, serial->len,
		h->signer_serial.p, h->signer_serial.len))
		return false;
	/* serials are unique per issuer only */
	return hi.len == 0 || ri.len == 0 || trust_name_equal((const char *)ri.p, ri.len,
		(const char *)hi.p, hi.len);
}

/* The record of an installed list that names the file's signer with one of
 * the roles of mask, as an owned certificate. */
static bool
find_record(const struct ph_installed *in, const struct trust_header *h, uint32_t mask,
	struct trust_cert *c)
{
	if (!ph_has(in))
		return false;
	for (size_t i = 0; i < in->f.nrecs; i++) {
		const struct trust_record *r = &in->f.recs[i];

		if (!r->has_role || r->role >= 32 || !(mask & ROLE_BIT(r->role))
		    || r->cert.len == 0 || !names_signer(h, &r->issuer, &r->serial))
			continue;
		if (trust_cert_from_der(r->cert.p, r->cert.len, c, NULL) == 0)
			return true;
	}
	return false;
}

static bool
roles_match(const uint8_t *roles, size_t n, uint32_t mask)
{
	for (size_t i = 0; i < n; i++)
		if (roles[i] < 32 && (mask & ROLE_BIT(roles[i])))
			return true;
	return false;
}

static void
roles_text(const uint8_t *roles, size_t n, char *out, size_t outsz)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && off < outsz; i++) {
		const char *nm = trust_role_name(roles[i]);
		int w = nm ? snprintf(out + off, outsz - off, "%s%s", i ? "," : "", nm)
			: snprintf(out + off, outsz - off, "%s%u", i ? "," : "", roles[i]);

		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (n == 0)
		snprintf(out, outsz, "none");
}

static bool
cert_names_signer(const struct trust_cert *c, const struct trust_header *h)
{
	struct trust_bytes is = { (const uint8_t *)c->issuer, strlen(c->issuer) };
	struct trust_bytes sn = { c->serial, c->serial_len };

	return names_signer(h, &is, &sn);
}

static bool
cache_find(const struct ph_trust *t, const struct trust_header *h, uint32_t mask,
	int64_t now, struct trust_cert *c)
{
	for (size_t i = 0; i < t->nvouch; i++) {
		const struct ph_vouch *v = &t->vouch[i];

		if (v->expires > now && roles_match(v->roles, v->nroles, mask)
		    && cert_names_signer(&v->cert, h))
			return trust_cert_copy(&v->cert, c, NULL) == 0;
	}
	return false;
}

/* Keep what a TVS said; the oldest entry makes room. */
static void
cache_add(struct ph_trust *t, const struct trust_cert *c, const struct tvs_response *rs,
	int64_t now)
{
	struct ph_vouch *v;

	for (size_t i = 0; i < t->nvouch; i++) {
		if (t->vouch[i].cert.der_len == c->der_len
		    && memcmp(t->vouch[i].cert.der, c->der, c->der_len) == 0) {
			trust_cert_free(&t->vouch[i].cert);
			memmove(&t->vouch[i], &t->vouch[i + 1],
				(t->nvouch - i - 1) * sizeof(t->vouch[0]));
			t->nvouch--;
			break;
		}
	}
	if (t->nvouch == PH_VOUCH_MAX) {
		trust_cert_free(&t->vouch[0].cert);
		memmove(&t->vouch[0], &t->vouch[1], (PH_VOUCH_MAX - 1) * sizeof(t->vouch[0]));
		t->nvouch--;
	}
	v = &t->vouch[t->nvouch];
	memset(v, 0, sizeof(*v));
	if (trust_cert_copy(c, &v->cert, NULL) != 0)
		return;
	v->nroles = rs->roles.len < TVS_ROLES_MAX ? rs->roles.len : TVS_ROLES_MAX;
	if (v->nroles > 0)
		memcpy(v->roles, rs->roles.p, v->nroles);
	v->expires = now + (rs->has_ttl ? rs->ttl : TVS_TTL_DEFAULT);
	t->nvouch++;
}

/* What the TVS answered about the signer of h, as a certificate. */
static enum ph_how
from_tvs(const struct trust_header *h, const struct tvs_response *rs, uint32_t mask,
	const char *need, struct trust_cert *c, char *why, size_t whysz)
{
	struct trust_err err = { 0 };
	char roles[128];

	if (rs->status != TVS_STATUS_TRUSTED) {
		snprintf(why, whysz, "signer " SIGNER_FMT " unknown, TVS said untrusted",
			SIGNER_ARG(h));
		return PH_REJECTED;
	}
	if (rs->cert.p == NULL || rs->cert.len == 0) {
		snprintf(why, whysz, "TVS said trusted but sent no certificate");
		return PH_REJECTED;
	}
	if (trust_cert_from_der(rs->cert.p, rs->cert.len, c, &err) != 0) {
		snprintf(why, whysz, "TVS sent a certificate that does not parse: %s", err.msg);
		return PH_REJECTED;
	}
	if (!cert_names_signer(c, h)) {
		snprintf(why, whysz, "TVS answered with another certificate (%s) than the "
			"signer " SIGNER_FMT, c->subject, SIGNER_ARG(h));
		trust_cert_free(c);
		return PH_REJECTED;
	}
	if (!roles_match(rs->roles.p, rs->roles.len, mask)) {
		roles_text(rs->roles.p, rs->roles.len, roles, sizeof(roles));
		snprintf(why, whysz, "TVS vouches for " SIGNER_FMT " with roles %s, none of them %s",
			SIGNER_ARG(h), roles, need);
		trust_cert_free(c);
		return PH_REJECTED;
	}
	return PH_VIA_TVS;
}

/* Last resort for an unknown signer: the cache, then a TVS of the ITL. */
static enum ph_how
ask_tvs(const struct ph_trust *t, const struct trust_header *h, uint32_t mask,
	int64_t now, const char *where, struct ph_query *q, struct trust_cert *c,
	char *why, size_t whysz)
{
	struct trust_bytes certs[1];

	if (cache_find(t, h, mask, now, c))
		return PH_VIA_TVS_CACHE;
	if (ph_tvs_certs(t, certs, 1) == 0) {
		snprintf(why, whysz, "signer " SIGNER_FMT " is not in the %s and the ITL names no TVS",
			SIGNER_ARG(h), where);
		return PH_REJECTED;
	}
	q->subject = strview(h->signer_name);
	q->issuer = strview(h->signer_issuer);
	q->serial = h->signer_serial;
	if (q->issuer.len == 0 || q->serial.len == 0) {
		snprintf(why, whysz, "the header names no signer issuer and serial to ask a TVS about");
		return PH_REJECTED;
	}
	snprintf(why, whysz, "signer " SIGNER_FMT " is not in the %s", SIGNER_ARG(h), where);
	return PH_NEED_TVS;
}

/* Who vouches for the signer of a new CTL/ITL; c receives the certificate
 * to verify with, except for PH_TOFU and PH_EMPTY_ITL. */
static enum ph_how
list_signer(const struct ph_trust *t, enum ph_list k, const struct trust_header *h,
	const struct tvs_response *rs, int64_t now, struct ph_query *q, struct trust_cert *c,
	char *why, size_t whysz)
{
	const struct ph_installed *cur = k == PH_ITL ? &t->itl : &t->ctl;

	if (rs != NULL)
		return from_tvs(h, rs, MASK_SAST, "SAST", c, why, whysz);
	if (!ph_has(cur)) {
		if (k == PH_ITL && find_record(&t->ctl, h, MASK_SAST, c))
			return PH_CTL_SIGNER;
		return PH_TOFU;
	}
	if (k == PH_ITL && ph_itl_empty(t))
		return PH_EMPTY_ITL;
	if (find_record(cur, h, MASK_SAST, c))
		return PH_SAME_SIGNER;
	if (k == PH_ITL && find_record(&t->ctl, h, MASK_SAST, c))
		return PH_CTL_SIGNER;
	return ask_tvs(t, h, MASK_SAST, now, k == PH_ITL ? "installed ITL" : "installed CTL",
		q, c, why, whysz);
}

static void
accept_why(enum ph_how h, const struct trust_header *hd, const char *what, char *why,
	size_t whysz)
{
	switch (h) {
	case PH_TOFU:
		snprintf(why, whysz, "first %s, trusted on first use (signer " SIGNER_FMT ")",
			what, SIGNER_ARG(hd));
		break;
	case PH_SAME_SIGNER:
		snprintf(why, whysz, "same signer " SIGNER_FMT " as the installed %s", SIGNER_ARG(hd),
			what);
		break;
	case PH_CTL_SIGNER:
	case PH_ITL_SIGNER:
		snprintf(why, whysz, "signer " SIGNER_FMT " is in the installed %s", SIGNER_ARG(hd),
			h == PH_CTL_SIGNER ? "CTL" : "ITL");
		break;
	case PH_VIA_TVS:
		snprintf(why, whysz, "TVS vouched for signer " SIGNER_FMT, SIGNER_ARG(hd));
		break;
	case PH_VIA_TVS_CACHE:
		snprintf(why, whysz, "signer " SIGNER_FMT " vouched for by a TVS earlier (cached)",
			SIGNER_ARG(hd));
		break;
	case PH_EMPTY_ITL:
		snprintf(why, whysz, "the installed ITL is empty (rollback): not checked");
		break;
	case PH_NO_ITL:
		snprintf(why, whysz, "the phone has no trust list: not checked");
		break;
	default:
		break;
	}
}

enum ph_how
ph_check_list(struct ph_trust *t, enum ph_list k, const uint8_t *buf, size_t len,
	const struct tvs_response *rs, int64_t now, struct ph_query *q, char *why, size_t whysz)
{
	const struct ph_installed *cur = k == PH_ITL ? &t->itl : &t->ctl;
	const char *what = k == PH_ITL ? "ITL" : "CTL";
	struct trust_err err = { 0 };
	struct trust_cert c;
	struct trust_file f;
	enum ph_how h;
	int rc = 0;

	why[0] = '\0';
	memset(&c, 0, sizeof(c));
	if (rs == NULL && ph_has(cur) && cur->bytes.len == len
	    && memcmp(cur->bytes.data, buf, len) == 0) {
		snprintf(why, whysz, "identical to the installed %s", what);
		return PH_UNCHANGED;
	}
	if (trust_list_parse(buf, len, &f, &err) != 0) {
		snprintf(why, whysz, "%s malformed: %s", what, err.msg);
		trust_file_free(&f);
		return PH_REJECTED;
	}
	h = list_signer(t, k, &f.hdr, rs, now, q, &c, why, whysz);
	if (h == PH_TOFU)
		rc = trust_list_verify(&f, NULL, &err);
	else if (h != PH_EMPTY_ITL && h != PH_NEED_TVS && h != PH_REJECTED)
		rc = trust_file_verify(&f, trust_cert_pubkey(&c), &err);
	if (rc != 0) {
		snprintf(why, whysz, "%s signed by " SIGNER_FMT " does not verify (%s): %s", what,
			SIGNER_ARG(&f.hdr), ph_how_name(h), err.msg);
		h = PH_REJECTED;
	} else if (h != PH_NEED_TVS && h != PH_REJECTED) {
		if (h == PH_VIA_TVS)
			cache_add(t, &c, rs, now);
		accept_why(h, &f.hdr, what, why, whysz);
	}
	trust_cert_free(&c);
	trust_file_free(&f);
	return h;
}

int
ph_install_list(struct ph_trust *t, enum ph_list k, const uint8_t *buf, size_t len,
	struct trust_err *err)
{
	struct ph_installed *cur = k == PH_ITL ? &t->itl : &t->ctl;
	struct ph_installed n;
	int rc;

	trust_buf_init(&n.bytes);
	if (len == 0)
		return trust_errf(err, TRUST_EINVAL, "an empty file is not a trust list");
	if (trust_buf_put(&n.bytes, buf, len) != 0)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	rc = trust_list_parse(n.bytes.data, n.bytes.len, &n.f, err);
	if (rc != 0) {
		trust_file_free(&n.f);
		trust_buf_free(&n.bytes);
		return rc;
	}
	installed_free(cur);
	*cur = n;
	*(k == PH_ITL ? &t->itl_installs : &t->ctl_installs) += 1;
	return 0;
}

/* ---- configs ---------------------------------------------------------- */

static enum ph_how
config_signer(const struct ph_trust *t, const struct trust_header *h,
	const struct tvs_response *rs, int64_t now, struct ph_query *q, struct trust_cert *c,
	char *why, size_t whysz)
{
	if (rs != NULL)
		return from_tvs(h, rs, MASK_TFTP, "TFTP or CCM+TFTP", c, why, whysz);
	if (find_record(&t->ctl, h, MASK_TFTP, c))
		return PH_CTL_SIGNER;
	if (find_record(&t->itl, h, MASK_TFTP, c))
		return PH_ITL_SIGNER;
	if (ph_itl_empty(t))
		return PH_EMPTY_ITL;
	if (!ph_has(&t->itl) && !ph_has(&t->ctl))
		return PH_NO_ITL;
	return ask_tvs(t, h, MASK_TFTP, now, "TFTP records of the ITL", q, c, why, whysz);
}

static enum ph_how
config_unsigned(const struct ph_trust *t, const uint8_t *buf, size_t len,
	struct trust_buf *plain, char *why, size_t whysz)
{
	enum ph_how h = ph_itl_empty(t) ? PH_EMPTY_ITL
		: !ph_has(&t->itl) && !ph_has(&t->ctl) ? PH_NO_ITL : PH_REJECTED;

	if (h == PH_REJECTED) {
		snprintf(why, whysz, "unsigned config refused: the phone has %s",
			ph_has(&t->itl) ? "an ITL that is not empty" : "a CTL");
		return h;
	}
	if (trust_buf_put(plain, buf, len) != 0) {
		snprintf(why, whysz, "out of memory");
		return PH_REJECTED;
	}
	snprintf(why, whysz, "unsigned config taken: %s", h == PH_EMPTY_ITL
		? "the installed ITL is empty (rollback)" : "the phone has no trust list");
	return h;
}

/* Check the signature (signer may be NULL: not checked) and take the
 * payload; .enc.sgn is decrypted with the phone's key. */
static int
config_open(const struct trust_file *f, enum ph_config_kind kind, const uint8_t *buf,
	size_t len, const struct trust_cert *signer, EVP_PKEY *key, struct trust_buf *plain,
	struct trust_err *err)
{
	int rc;

	if (kind == PH_CFG_ENC) {
		if (key == NULL)
			return trust_errf(err, TRUST_EINVAL, "encrypted config and the phone has no key");
		rc = trust_enc_decrypt(buf, len, signer, key, plain, err);
		if (rc != 0)
			trust_buf_init(plain);
		return rc;
	}
	if (signer != NULL && (rc = trust_file_verify(f, trust_cert_pubkey(signer), err)) != 0)
		return rc;
	if (trust_buf_put(plain, f->payload.p, f->payload.len) != 0)
		return trust_errf(err, TRUST_ENOMEM, "out of memory");
	return 0;
}

enum ph_how
ph_check_config(struct ph_trust *t, enum ph_config_kind kind, const uint8_t *buf,
	size_t len, EVP_PKEY *key, const struct tvs_response *rs, int64_t now,
	struct ph_query *q, struct trust_buf *plain, char *why, size_t whysz)
{
	struct trust_err err = { 0 };
	struct trust_cert c;
	struct trust_file f;
	enum ph_how h;
	bool checked;
	int rc;

	why[0] = '\0';
	trust_buf_init(plain);
	memset(&c, 0, sizeof(c));
	if (kind == PH_CFG_UNSIGNED)
		return config_unsigned(t, buf, len, plain, why, whysz);
	if (trust_file_parse(buf, len, &f, &err) != 0) {
		snprintf(why, whysz, "config malformed: %s", err.msg);
		trust_file_free(&f);
		return PH_REJECTED;
	}
	h = config_signer(t, &f.hdr, rs, now, q, &c, why, whysz);
	if (h == PH_NEED_TVS || h == PH_REJECTED) {
		trust_file_free(&f);
		return h;
	}
	checked = h != PH_EMPTY_ITL && h != PH_NO_ITL;
	rc = config_open(&f, kind, buf, len, checked ? &c : NULL, key, plain, &err);
	if (rc != 0) {
		snprintf(why, whysz, "config signed by " SIGNER_FMT " refused (%s): %s",
			SIGNER_ARG(&f.hdr), ph_how_name(h), err.msg);
		trust_buf_wipe(plain);
		h = PH_REJECTED;
	} else {
		if (h == PH_VIA_TVS)
			cache_add(t, &c, rs, now);
		accept_why(h, &f.hdr, "config", why, whysz);
	}
	trust_cert_free(&c);
	trust_file_free(&f);
	return h;
}

/* ---- <TVS> members of a config ------------------------------------------- */

static const uint8_t *
find(const uint8_t *p, const uint8_t *end, const char *s)
{
	size_t n = strlen(s);

	return p < end ? memmem(p, (size_t)(end - p), s, n) : NULL;
}

/* Text of <tag>...</tag> between p and end, trimmed; false if absent. */
static bool
element(const uint8_t *p, const uint8_t *end, const char *open, const char *close,
	char *out, size_t outsz)
{
	const uint8_t *a = find(p, end, open), *b;
	size_t n;

	if (a == NULL)
		return false;
	a += strlen(open);
	if ((b = find(a, end, close)) == NULL)
		return false;
	while (a < b && (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n'))
		a++;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r' || b[-1] == '\n'))
		b--;
	n = (size_t)(b - a);
	if (n == 0 || n >= outsz)
		return false;
	memcpy(out, a, n);
	out[n] = '\0';
	return true;
}

size_t
ph_config_tvs(const uint8_t *p, size_t n, struct ph_tvs_addr *out, size_t max)
{
	const uint8_t *end = p + n, *tvs = find(p, end, "<TVS>"), *tend;
	size_t k = 0;

	if (tvs == NULL || (tend = find(tvs, end, "</TVS>")) == NULL)
		return 0;
	for (const uint8_t *m = find(tvs, tend, "<member"); m != NULL && k < max;
	     m = find(m + 1, tend, "<member")) {
		const uint8_t *mend = find(m, tend, "</member>");
		char port[16];
		unsigned long v = TVS_PORT;

		if (m + 7 < tend && m[7] != '>' && m[7] != ' ' && m[7] != '\t' && m[7] != '\n')
			continue;	/* <members> */
		if (mend == NULL)
			break;
		if (!element(m, mend, "<address>", "</address>", out[k].host, sizeof(out[k].host)))
			continue;
		if (element(m, mend, "<port>", "</port>", port, sizeof(port))) {
			char *e;

			v = strtoul(port, &e, 10);
			if (*e != '\0' || v == 0 || v > 65535)
				continue;
		}
		out[k++].port = (uint16_t)v;
	}
	return k;
}

int
ph_tvs_addr_parse(const char *s, struct ph_tvs_addr *a)
{
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	unsigned long v = TVS_PORT;

	if (hl == 0 || hl >= sizeof(a->host))
		return -1;
	if (colon != NULL) {
		char *e;

		errno = 0;
		v = strtoul(colon + 1, &e, 10);
		if (errno != 0 || e == colon + 1 || *e != '\0' || v == 0 || v > 65535)
			return -1;
	}
	memcpy(a->host, s, hl);
	a->host[hl] = '\0';
	a->port = (uint16_t)v;
	return 0;
}

/* ---- state files -------------------------------------------------------- */

/* prefix, then the bytes in hex, then a newline */
static int
put_hex(struct trust_buf *b, const char *prefix, const uint8_t *p, size_t n)
{
	char *hex = malloc(2 * n + 1);

	if (hex == NULL)
		return TRUST_ENOMEM;
	trust_hex(p, n, hex);
	trust_buf_printf(b, "%s%s\n", prefix, hex);
	free(hex);
	return b->failed ? TRUST_ENOMEM : 0;
}

int
ph_state_save(const char *path, const struct ph_trust *t, struct trust_err *err)
{
	char tmp[4096];
	struct trust_buf b;
	int fd, rc = 0;

	trust_buf_init(&b);
	trust_buf_printf(&b, "phonesim-state 1\nboots %u\nitl-installs %u\nctl-installs %u\n",
		t->boots, t->itl_installs, t->ctl_installs);
	for (size_t i = 0; i < t->ntvs; i++)
		trust_buf_printf(&b, "tvs %s %u\n", t->tvs[i].host, t->tvs[i].port);
	for (size_t i = 0; i < t->nvouch && rc == 0; i++) {
		const struct ph_vouch *v = &t->vouch[i];
		char roles[3 * TVS_ROLES_MAX + 2] = "-";

		for (size_t j = 0, off = 0; j < v->nroles; j++)
			off += (size_t)snprintf(roles + off, sizeof(roles) - off, "%s%u",
				j ? "," : "", v->roles[j]);
		trust_buf_printf(&b, "vouch %lld %s ", (long long)v->expires, roles);
		rc = put_hex(&b, "", v->cert.der, v->cert.der_len);
	}
	if (rc == 0 && ph_has(&t->ctl))
		rc = put_hex(&b, "ctl ", t->ctl.bytes.data, t->ctl.bytes.len);
	if (rc == 0 && ph_has(&t->itl))
		rc = put_hex(&b, "itl ", t->itl.bytes.data, t->itl.bytes.len);
	trust_buf_printf(&b, "end\n");
	if (rc != 0 || b.failed) {
		trust_buf_free(&b);
		return trust_errf(err, TRUST_ENOMEM, "%s: out of memory", path);
	}
	/* a simulator's state needs no fsync: rename keeps it whole */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || close(fd) != 0
	    || rename(tmp, path) != 0) {
		rc = trust_errf(err, TRUST_EIO, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
	trust_buf_free(&b);
	return rc;
}

/* A hex field into a fresh buffer. */
static int
take_hex(const char *s, struct trust_buf *out)
{
	size_t n = strlen(s);

	trust_buf_init(out);
	if (n == 0 || n % 2 != 0 || trust_buf_reserve(out, n / 2 + 1) != 0)
		return -1;
	if (trust_unhex(s, out->data, n / 2) != (int)(n / 2))
		return -1;
	out->len = n / 2;
	return 0;
}

static int
state_vouch(struct ph_trust *t, char *rest)
{
	char *sp1 = strchr(rest, ' '), *sp2, *e;
	struct trust_buf der;
	struct ph_vouch *v;
	long long exp;
	int rc;

	if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL || t->nvouch == PH_VOUCH_MAX)
		return -1;
	*sp1 = *sp2 = '\0';
	errno = 0;
	exp = strtoll(rest, &e, 10);
	if (errno != 0 || *e != '\0')
		return -1;
	v = &t->vouch[t->nvouch];
	memset(v, 0, sizeof(*v));
	if (strcmp(sp1 + 1, "-") != 0) {
		for (char *r = strtok(sp1 + 1, ","); r != NULL; r = strtok(NULL, ",")) {
			unsigned long role = strtoul(r, &e, 10);

			if (*e != '\0' || role > 255 || v->nroles == TVS_ROLES_MAX)
				return -1;
			v->roles[v->nroles++] = (uint8_t)role;
		}
	}
	if (take_hex(sp2 + 1, &der) != 0) {
		trust_buf_free(&der);
		return -1;
	}
	rc = trust_cert_from_der(der.data, der.len, &v->cert, NULL);
	trust_buf_free(&der);
	if (rc != 0)
		return -1;
	v->expires = exp;
	t->nvouch++;
	return 0;
}

static int
state_list(struct ph_trust *t, enum ph_list k, const char *hex, struct trust_err *err)
{
	struct trust_buf b;
	uint32_t n;
	int rc;

	if (take_hex(hex, &b) != 0) {
		trust_buf_free(&b);
		return trust_errf(err, TRUST_ESTORE, "not hex");
	}
	/* restoring is not installing: the counters come from their own lines */
	n = k == PH_ITL ? t->itl_installs : t->ctl_installs;
	rc = ph_install_list(t, k, b.data, b.len, err);
	*(k == PH_ITL ? &t->itl_installs : &t->ctl_installs) = n;
	trust_buf_free(&b);
	return rc;
}

static int
state_line(struct ph_trust *t, char *line, struct trust_err *err)
{
	char *sp = strchr(line, ' '), *rest = sp ? sp + 1 : "", *e;
	unsigned long v;

	if (sp != NULL)
		*sp = '\0';
	if (strcmp(line, "boots") == 0 || strcmp(line, "itl-installs") == 0
	    || strcmp(line, "ctl-installs") == 0) {
		errno = 0;
		v = strtoul(rest, &e, 10);
		if (errno != 0 || e == rest || *e != '\0' || v > UINT32_MAX)
			return trust_errf(err, TRUST_ESTORE, "%s: bad number", line);
		*(line[0] == 'b' ? &t->boots : line[0] == 'i' ? &t->itl_installs
			: &t->ctl_installs) = (uint32_t)v;
		return 0;
	}
	if (strcmp(line, "tvs") == 0) {
		char *port = strchr(rest, ' ');

		if (port == NULL || t->ntvs == PH_TVS_MAX)
			return trust_errf(err, TRUST_ESTORE, "tvs: HOST PORT expected");
		*port = ':';
		if (ph_tvs_addr_parse(rest, &t->tvs[t->ntvs]) != 0)
			return trust_errf(err, TRUST_ESTORE, "tvs: bad address");
		t->ntvs++;
		return 0;
	}
	if (strcmp(line, "vouch") == 0)
		return state_vouch(t, rest) == 0 ? 0
			: trust_errf(err, TRUST_ESTORE, "vouch: EXPIRES ROLES DER-HEX expected");
	if (strcmp(line, "ctl") == 0 || strcmp(line, "itl") == 0)
		return state_list(t, line[0] == 'c' ? PH_CTL : PH_ITL, rest, err);
	return trust_errf(err, TRUST_ESTORE, "unknown item '%s'", line);
}

int
ph_state_load(const char *path, struct ph_trust *t, struct trust_err *err)
{
	struct trust_buf b;
	char *line, *next;
	unsigned lineno = 1;
	bool ended = false;
	int rc;

	rc = trust_file_read(path, STATE_MAX, &b, err);
	if (rc == TRUST_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (trust_buf_put_u8(&b, 0) != 0) {
		trust_buf_free(&b);
		return trust_errf(err, TRUST_ENOMEM, "%s: out of memory", path);
	}
	line = (char *)b.data;
	next = strchr(line, '\n');
	if (next == NULL || strncmp(line, "phonesim-state 1\n", 17) != 0) {
		trust_buf_free(&b);
		return trust_errf(err, TRUST_ESTORE, "%s: not a phonesim state file", path);
	}
	for (line = next + 1; rc == 0 && !ended && *line != '\0'; line = next + 1) {
		lineno++;
		if ((next = strchr(line, '\n')) == NULL) {
			rc = trust_errf(err, TRUST_ESTORE, "%s: truncated at line %u", path, lineno);
			break;
		}
		*next = '\0';
		if (strcmp(line, "end") == 0) {
			ended = true;
		} else if ((rc = state_line(t, line, err)) != 0) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
			rc = trust_errf(err, TRUST_ESTORE, "%s line %u: %s", path, lineno, msg);
		}
	}
	if (rc == 0 && !ended)
		rc = trust_errf(err, TRUST_ESTORE, "%s: truncated (no end line)", path);
	trust_buf_free(&b);
	if (rc != 0) {
		ph_trust_free(t);
		ph_trust_init(t);
	}
	return rc;
}
