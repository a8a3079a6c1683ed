/*
 * TVS message codec and the lookup-independent answer logic (see tvs.h).
 * Every length is checked against what is left of the buffer before the
 * bytes it covers are touched; errors name the byte offset and the tag.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cert.h"
#include "tvs.h"

/* Element tags we know, as bits, to catch duplicates. */
#define TVS_SEEN(tag) (1u << (tag))
#define TVS_VALUE_MAX 65535u

struct tvs_elem {
	uint8_t tag;
	uint16_t len;
	const uint8_t *val;
	size_t off;
};

/* Writer over a caller buffer: overflow sticks, checked once at the end. */
struct tvs_out {
	uint8_t *p;
	size_t cap;
	size_t len;
	bool overflow;
};

const char *
tvs_type_name(unsigned type)
{
	switch (type) {
	case TVS_CERT_VERIFY_REQ: return "CERT_VERIFICATION_REQ";
	case TVS_CERT_VERIFY_RES: return "CERT_VERIFICATION_RES";
	case TVS_QUERY_CERT_REQ: return "QUERY_CERT_REQ";
	case TVS_QUERY_CERT_RES: return "QUERY_CERT_RES";
	}
	return NULL;
}

/* Checks the first min(len, 3) header bytes, as soon as they arrive. */
static int
tvs_hdr_check(const uint8_t *buf, size_t len, struct trust_err *err)
{
	if (len >= 1 && buf[0] != TVS_DISCRIMINATOR)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS header at offset 0: discriminator 0x%02x, want 0x%02x",
			buf[0], TVS_DISCRIMINATOR);
	if (len >= 2 && buf[1] != TVS_VERSION)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS header at offset 1: version %u, want %u", buf[1], TVS_VERSION);
	if (len >= 3 && tvs_type_name(buf[2]) == NULL)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS header at offset 2: unknown message type %u", buf[2]);
	return 0;
}

int
tvs_frame(const uint8_t *buf, size_t len, size_t *n, struct trust_err *err)
{
	size_t total;
	int rc = tvs_hdr_check(buf, len, err);

	if (rc != 0)
		return rc;
	if (len < TVS_HDR_LEN) {
		*n = TVS_HDR_LEN - len;
		return TVS_FRAME_MORE;
	}
	total = TVS_HDR_LEN + (size_t)trust_get_u16(buf + 8);
	if (len < total) {
		*n = total - len;
		return TVS_FRAME_MORE;
	}
	*n = total;
	return TVS_FRAME_DONE;
}

/* 1 = one element in *e, 0 = end of the area reached exactly, <0 = error. */
static int
tvs_elem_next(const uint8_t *buf, size_t *off, size_t end, struct tvs_elem *e,
	struct trust_err *err)
{
	size_t left = end - *off;

	if (left == 0)
		return 0;
	if (left < 3)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS element at offset %zu: %zu byte(s) left, an element header needs 3",
			*off, left);
	e->tag = buf[*off];
	e->len = trust_get_u16(buf + *off + 1);
	if (e->len > left - 3)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS element tag %u at offset %zu: length %u runs past the message end at offset %zu",
			e->tag, *off, e->len, end);
	e->val = buf + *off + 3;
	e->off = *off;
	*off += 3 + (size_t)e->len;
	return 1;
}

struct tvs_hdr {
	uint8_t type;
	uint8_t reserved;
	uint32_t id;
};

/* Header of a complete message of exactly len bytes, of the wanted kind. */
static int
tvs_msg_open(const uint8_t *buf, size_t len, bool request, struct tvs_hdr *h,
	struct trust_err *err)
{
	size_t area;
	int rc;

	if (len < TVS_HDR_LEN)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS message of %zu byte(s): shorter than the %u-byte header",
			len, TVS_HDR_LEN);
	rc = tvs_hdr_check(buf, len, err);
	if (rc != 0)
		return rc;
	if ((buf[2] == TVS_CERT_VERIFY_REQ || buf[2] == TVS_QUERY_CERT_REQ) != request)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS header at offset 2: type %u (%s) is not a %s", buf[2],
			tvs_type_name(buf[2]), request ? "request" : "response");
	area = trust_get_u16(buf + 8);
	if (area > len - TVS_HDR_LEN)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS header at offset 8: element area length %zu runs past the message end (%zu byte(s) follow the header)",
			area, len - TVS_HDR_LEN);
	if (area < len - TVS_HDR_LEN)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS message: %zu byte(s) after the end of the element area at offset %zu",
			len - TVS_HDR_LEN - area, TVS_HDR_LEN + area);
	h->type = buf[2];
	h->reserved = buf[3];
	h->id = trust_get_u32(buf + 4);
	return 0;
}

static int
tvs_dup(const struct tvs_elem *e, unsigned *seen, struct trust_err *err)
{
	if (*seen & TVS_SEEN(e->tag))
		return trust_errf(err, TRUST_EFORMAT,
			"TVS element tag %u at offset %zu: duplicate", e->tag, e->off);
	*seen |= TVS_SEEN(e->tag);
	return 0;
}

/* A view without one trailing NUL. */
static struct trust_bytes
tvs_str(const struct tvs_elem *e)
{
	struct trust_bytes b = { e->val, e->len };

	if (b.len > 0 && b.p[b.len - 1] == '\0')
		b.len--;
	return b;
}

/* FORMATS §8.9: a DN is printable text with '='; a serial is raw bytes. */
static bool
tvs_looks_like_dn(const struct tvs_elem *e)
{
	struct trust_bytes s = tvs_str(e);
	bool eq = false;

	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < 0x20 || s.p[i] == 0x7f)
			return false;
		if (s.p[i] == '=')
			eq = true;
	}
	return eq;
}

static void
tvs_put_name_or_serial(const struct tvs_elem *e, bool dn, struct tvs_request *rq)
{
	if (dn)
		rq->issuer = tvs_str(e);
	else
		rq->serial = (struct trust_bytes){ e->val, e->len };
}

/*
 * Tags 4, 5, 6 carry the issuer and the serial, in an order nobody has
 * published: tell them apart by content. Should both look alike, the pair
 * {5, 6} is read by tag number as we write it (FORMATS §8.9).
 */
static int
tvs_names_classify(const struct tvs_elem *ns, unsigned n, struct tvs_request *rq,
	struct trust_err *err)
{
	bool dn0, dn1;

	if (n == 0)
		return 0;
	dn0 = tvs_looks_like_dn(&ns[0]);
	if (n == 1) {
		tvs_put_name_or_serial(&ns[0], dn0, rq);
		return 0;
	}
	if (n > 2)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS element tag %u at offset %zu: a third issuer/serial element",
			ns[2].tag, ns[2].off);
	dn1 = tvs_looks_like_dn(&ns[1]);
	if (dn0 == dn1) {
		if (ns[0].tag + ns[1].tag != TVS_TAG_ISSUER + TVS_TAG_SERIAL)
			return trust_errf(err, TRUST_EFORMAT,
				"TVS element tag %u at offset %zu: a second %s (the first was tag %u)",
				ns[1].tag, ns[1].off, dn0 ? "issuer name" : "serial number",
				ns[0].tag);
		dn0 = ns[0].tag == TVS_TAG_ISSUER;
		dn1 = !dn0;
	}
	tvs_put_name_or_serial(&ns[0], dn0, rq);
	tvs_put_name_or_serial(&ns[1], dn1, rq);
	return 0;
}

static int
tvs_request_elem(const struct tvs_elem *e, struct tvs_request *rq, unsigned *seen,
	struct tvs_elem *ns, unsigned *nns, struct trust_err *err)
{
	int rc;

	if (e->tag < TVS_TAG_DEVICE || e->tag > TVS_TAG_SERIAL) {
		rq->nunknown++;
		return 0;
	}
	rc = tvs_dup(e, seen, err);
	if (rc != 0)
		return rc;
	switch (e->tag) {
	case TVS_TAG_DEVICE:
		rq->device = (struct trust_bytes){ e->val, e->len };
		if (e->len > 0 && e->val[0] == TVS_DEVICE_MARKER) {
			rq->device.p++;
			rq->device.len--;
		}
		break;
	case TVS_TAG_CERT:
		rq->cert = (struct trust_bytes){ e->val, e->len };
		break;
	case TVS_TAG_SUBJECT:
		rq->subject = tvs_str(e);
		break;
	default:
		ns[(*nns)++] = *e;	/* at most 3: duplicates were refused */
	}
	return 0;
}

static int
tvs_missing(const char *what, const struct tvs_request *rq, struct trust_err *err)
{
	return trust_errf(err, TRUST_EFORMAT, "TVS %s id %u: no %s element",
		tvs_type_name(rq->type), rq->id, what);
}

static int
tvs_request_complete(const struct tvs_request *rq, struct trust_err *err)
{
	if (rq->type == TVS_CERT_VERIFY_REQ) {
		if (rq->cert.p == NULL || rq->cert.len == 0)
			return tvs_missing("certificate (tag 2)", rq, err);
		return 0;
	}
	if (rq->issuer.p == NULL || rq->issuer.len == 0)
		return tvs_missing("issuer name (tag 4, 5 or 6)", rq, err);
	if (rq->serial.p == NULL || rq->serial.len == 0)
		return tvs_missing("serial number (tag 4, 5 or 6)", rq, err);
	return 0;
}

int
tvs_request_parse(const uint8_t *buf, size_t len, struct tvs_request *rq,
	struct trust_err *err)
{
	struct tvs_elem e;
	size_t off = TVS_HDR_LEN;
	unsigned seen = 0;
	struct tvs_elem ns[3];		/* tags 4, 5, 6 */
	unsigned nns = 0;
	struct tvs_hdr h;
	int rc;

	memset(rq, 0, sizeof(*rq));
	rc = tvs_msg_open(buf, len, true, &h, err);
	if (rc != 0)
		return rc;
	rq->type = h.type;
	rq->reserved = h.reserved;
	rq->id = h.id;
	rq->len = len;
	while ((rc = tvs_elem_next(buf, &off, len, &e, err)) == 1)
		if ((rc = tvs_request_elem(&e, rq, &seen, ns, &nns, err)) != 0)
			return rc;
	if (rc < 0)
		return rc;
	rc = tvs_names_classify(ns, nns, rq, err);
	return rc != 0 ? rc : tvs_request_complete(rq, err);
}

static int
tvs_response_elem(const struct tvs_elem *e, struct tvs_response *rs, unsigned *seen,
	struct trust_err *err)
{
	int rc;

	if (e->tag != TVS_TAG_STATUS && e->tag != TVS_TAG_ROLES
	    && e->tag != TVS_TAG_TTL && e->tag != TVS_TAG_CERT) {
		rs->nunknown++;
		return 0;
	}
	rc = tvs_dup(e, seen, err);
	if (rc != 0)
		return rc;
	if ((e->tag == TVS_TAG_STATUS && e->len != 1) || (e->tag == TVS_TAG_TTL && e->len != 4))
		return trust_errf(err, TRUST_EFORMAT,
			"TVS element tag %u at offset %zu: length %u, want %u",
			e->tag, e->off, e->len, e->tag == TVS_TAG_STATUS ? 1 : 4);
	switch (e->tag) {
	case TVS_TAG_STATUS:
		rs->status = e->val[0];
		break;
	case TVS_TAG_ROLES:
		rs->roles = (struct trust_bytes){ e->val, e->len };
		break;
	case TVS_TAG_TTL:
		rs->has_ttl = true;
		rs->ttl = trust_get_u32(e->val);
		break;
	default:
		rs->cert = (struct trust_bytes){ e->val, e->len };
	}
	return 0;
}

int
tvs_response_parse(const uint8_t *buf, size_t len, struct tvs_response *rs,
	struct trust_err *err)
{
	struct tvs_elem e;
	size_t off = TVS_HDR_LEN;
	unsigned seen = 0;
	struct tvs_hdr h;
	int rc;

	memset(rs, 0, sizeof(*rs));
	rc = tvs_msg_open(buf, len, false, &h, err);
	if (rc != 0)
		return rc;
	rs->type = h.type;
	rs->reserved = h.reserved;
	rs->id = h.id;
	rs->len = len;
	while ((rc = tvs_elem_next(buf, &off, len, &e, err)) == 1)
		if ((rc = tvs_response_elem(&e, rs, &seen, err)) != 0)
			return rc;
	if (rc < 0)
		return rc;
	if (!(seen & TVS_SEEN(TVS_TAG_STATUS)))
		return trust_errf(err, TRUST_EFORMAT, "TVS %s id %u: no status element (tag 7)",
			tvs_type_name(rs->type), rs->id);
	return 0;
}

static void
tvs_put(struct tvs_out *o, const void *p, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	if (n != 0)
		memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void
tvs_put_u16(struct tvs_out *o, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	tvs_put(o, b, 2);
}

static void
tvs_put_u32(struct tvs_out *o, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	tvs_put(o, b, 4);
}

/* One element whose value is pre | body | post (marker byte, NUL). */
static int
tvs_put_elem(struct tvs_out *o, uint8_t tag, const void *pre, size_t npre,
	struct trust_bytes body, const void *post, size_t npost, struct trust_err *err)
{
	size_t n = npre + body.len + npost;

	if (body.len > TVS_VALUE_MAX || n > TVS_VALUE_MAX)
		return trust_errf(err, TRUST_ETOOBIG,
			"TVS element tag %u: value of %zu bytes is over 65535", tag, n);
	tvs_put(o, &tag, 1);
	tvs_put_u16(o, (uint16_t)n);
	tvs_put(o, pre, npre);
	tvs_put(o, body.p, body.len);
	tvs_put(o, post, npost);
	return 0;
}

static void
tvs_put_hdr(struct tvs_out *o, uint8_t type, uint8_t reserved, uint32_t id)
{
	uint8_t h[4] = { TVS_DISCRIMINATOR, TVS_VERSION, type, reserved };

	tvs_put(o, h, 4);
	tvs_put_u32(o, id);
	tvs_put_u16(o, 0);		/* patched by tvs_close */
}

static int
tvs_close(struct tvs_out *o, size_t *outlen, struct trust_err *err)
{
	size_t area;

	if (o->overflow)
		return trust_errf(err, TRUST_ETOOBIG,
			"TVS message does not fit the %zu-byte output buffer", o->cap);
	area = o->len - TVS_HDR_LEN;
	if (area > TVS_VALUE_MAX)
		return trust_errf(err, TRUST_ETOOBIG,
			"TVS element area of %zu bytes is over 65535", area);
	o->p[8] = (uint8_t)(area >> 8);
	o->p[9] = (uint8_t)area;
	*outlen = o->len;
	return 0;
}

int
tvs_request_build(const struct tvs_request *rq, uint8_t *out, size_t outsz,
	size_t *outlen, struct trust_err *err)
{
	static const uint8_t marker = TVS_DEVICE_MARKER, nul = 0;
	struct tvs_out o = { out, outsz, 0, false };
	int rc = 0;

	if (rq->type != TVS_CERT_VERIFY_REQ && rq->type != TVS_QUERY_CERT_REQ)
		return trust_errf(err, TRUST_EINVAL, "TVS request type %u is not a request", rq->type);
	tvs_put_hdr(&o, rq->type, rq->reserved, rq->id);
	if (rq->device.p != NULL)
		rc = tvs_put_elem(&o, TVS_TAG_DEVICE, &marker, 1, rq->device, NULL, 0, err);
	if (rc == 0 && rq->cert.p != NULL)
		rc = tvs_put_elem(&o, TVS_TAG_CERT, NULL, 0, rq->cert, NULL, 0, err);
	if (rc == 0 && rq->subject.p != NULL)
		rc = tvs_put_elem(&o, TVS_TAG_SUBJECT, NULL, 0, rq->subject, &nul, 1, err);
	if (rc == 0 && rq->issuer.p != NULL)
		rc = tvs_put_elem(&o, TVS_TAG_ISSUER, NULL, 0, rq->issuer, &nul, 1, err);
	if (rc == 0 && rq->serial.p != NULL)
		rc = tvs_put_elem(&o, TVS_TAG_SERIAL, NULL, 0, rq->serial, NULL, 0, err);
	return rc != 0 ? rc : tvs_close(&o, outlen, err);
}

int
tvs_response_build(const struct tvs_response *rs, uint8_t *out, size_t outsz,
	size_t *outlen, struct trust_err *err)
{
	struct tvs_out o = { out, outsz, 0, false };
	uint8_t ttl[4];
	int rc;

	if (rs->type != TVS_CERT_VERIFY_RES && rs->type != TVS_QUERY_CERT_RES)
		return trust_errf(err, TRUST_EINVAL, "TVS response type %u is not a response", rs->type);
	tvs_put_hdr(&o, rs->type, rs->reserved, rs->id);
	rc = tvs_put_elem(&o, TVS_TAG_STATUS, NULL, 0,
		(struct trust_bytes){ &rs->status, 1 }, NULL, 0, err);
	if (rc == 0 && rs->cert.p != NULL)
		rc = tvs_put_elem(&o, TVS_TAG_CERT, NULL, 0, rs->cert, NULL, 0, err);
	if (rc == 0 && rs->roles.p != NULL)
		rc = tvs_put_elem(&o, TVS_TAG_ROLES, NULL, 0, rs->roles, NULL, 0, err);
	if (rc == 0 && rs->has_ttl) {
		ttl[0] = (uint8_t)(rs->ttl >> 24);
		ttl[1] = (uint8_t)(rs->ttl >> 16);
		ttl[2] = (uint8_t)(rs->ttl >> 8);
		ttl[3] = (uint8_t)rs->ttl;
		rc = tvs_put_elem(&o, TVS_TAG_TTL, NULL, 0,
			(struct trust_bytes){ ttl, 4 }, NULL, 0, err);
	}
	return rc != 0 ? rc : tvs_close(&o, outlen, err);
}

/* Hash lookup, then the DER itself: a digest match alone is not trust. */
static bool
tvs_find_verify(const struct tvs_request *rq, const struct tvs_lookup *lk,
	struct tvs_entry *e)
{
	uint8_t md[32];
	unsigned int mdlen = 0;

	if (lk->by_sha256 == NULL
	    || EVP_Digest(rq->cert.p, rq->cert.len, md, &mdlen, EVP_sha256(), NULL) != 1
	    || mdlen != sizeof(md))
		return false;
	if (lk->by_sha256(lk->ctx, md, e) != 1)
		return false;
	return e->der_len == rq->cert.len && memcmp(e->der, rq->cert.p, e->der_len) == 0;
}

/* RFC 4514 text of the certificate's subject, for tables that keep none. */
static bool
tvs_der_subject_matches(const struct trust_bytes *want, const struct tvs_entry *e)
{
	const uint8_t *p = e->der;
	X509 *x = d2i_X509(NULL, &p, (long)e->der_len);
	BIO *bio = NULL;
	char *text;
	long n;
	bool eq = false;

	if (x == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
		XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto out;
	n = BIO_get_mem_data(bio, &text);
	eq = n >= 0 && trust_name_equal((const char *)want->p, want->len, text, (size_t)n);
out:
	BIO_free(bio);
	X509_free(x);
	ERR_clear_error();
	return eq;
}

static bool
tvs_subject_matches(const struct trust_bytes *want, const struct tvs_entry *e)
{
	if (e->subject == NULL)
		return tvs_der_subject_matches(want, e);
	return trust_name_equal((const char *)want->p, want->len, e->subject, e->subject_len);
}

static bool
tvs_find_query(const struct tvs_request *rq, const struct tvs_lookup *lk,
	struct tvs_entry *e)
{
	uint8_t key[32];

	if (lk->by_issuer_serial == NULL
	    || trust_issuer_serial_key((const char *)rq->issuer.p, rq->issuer.len,
		rq->serial.p, rq->serial.len, key) != 0)
		return false;
	if (lk->by_issuer_serial(lk->ctx, key, e) != 1 || e->der == NULL || e->der_len == 0)
		return false;
	return rq->subject.p == NULL || tvs_subject_matches(&rq->subject, e);
}

int
tvs_answer(const struct tvs_request *rq, const struct tvs_lookup *lk,
	uint8_t *out, size_t outsz, size_t *outlen, struct trust_err *err)
{
	struct tvs_response rs;
	struct tvs_entry e;
	bool found;
	int rc;

	memset(&rs, 0, sizeof(rs));
	memset(&e, 0, sizeof(e));
	if (rq->type == TVS_CERT_VERIFY_REQ)
		found = tvs_find_verify(rq, lk, &e);
	else if (rq->type == TVS_QUERY_CERT_REQ)
		found = tvs_find_query(rq, lk, &e);
	else
		return trust_errf(err, TRUST_EINVAL, "TVS type %u is not a request", rq->type);
	rs.type = rq->type + 1;
	rs.id = rq->id;
	rs.status = TVS_STATUS_UNTRUSTED;
	if (found) {
		rs.status = TVS_STATUS_TRUSTED;
		rs.roles = (struct trust_bytes){ e.roles, e.nroles };
		rs.has_ttl = true;
		rs.ttl = e.ttl != 0 ? e.ttl : TVS_TTL_DEFAULT;
		if (rq->type == TVS_QUERY_CERT_REQ)
			rs.cert = (struct trust_bytes){ e.der, e.der_len };
		if (rs.roles.p == NULL)
			rs.roles.p = (const uint8_t *)"";
		rc = tvs_response_build(&rs, out, outsz, outlen, err);
		if (rc == 0)
			return TVS_STATUS_TRUSTED;
		if (outsz < TVS_MSG_MAX)
			return rc;
		/* a certificate too big to send back is as good as unknown */
		memset(&rs.roles, 0, sizeof(rs.roles));
		memset(&rs.cert, 0, sizeof(rs.cert));
		rs.has_ttl = false;
		rs.status = TVS_STATUS_UNTRUSTED;
	}
	rc = tvs_response_build(&rs, out, outsz, outlen, err);
	return rc != 0 ? rc : TVS_STATUS_UNTRUSTED;
}

int
tvs_handle(const uint8_t *in, size_t len, const struct tvs_lookup *lk,
	size_t *consumed, uint8_t *out, size_t outsz, size_t *outlen,
	int *status, struct trust_err *err)
{
	struct tvs_request rq;
	size_t n;
	int rc;

	*consumed = 0;
	*outlen = 0;
	/* a server has no use for responses: refuse them at the type byte,
	 * not after buffering up to 64 KiB of one */
	if (len >= 3 && in[2] != TVS_CERT_VERIFY_REQ && in[2] != TVS_QUERY_CERT_REQ
	    && tvs_hdr_check(in, 2, err) == 0)
		return trust_errf(err, TRUST_EFORMAT,
			"TVS header at offset 2: type %u is not a request", in[2]);
	rc = tvs_frame(in, len, &n, err);
	if (rc != TVS_FRAME_DONE)
		return rc;
	rc = tvs_request_parse(in, n, &rq, err);
	if (rc != 0)
		return rc;
	rc = tvs_answer(&rq, lk, out, outsz, outlen, err);
	if (rc < 0)
		return rc;
	if (status != NULL)
		*status = rc;
	*consumed = n;
	return TVS_FRAME_DONE;
}
