/*
 * CTL/ITL trust lists (FORMATS §1) and the header machinery every signed
 * file shares (§1.2, §1.7, §2): parse, verify, build and sign.
 *
 * Parsing is lenient about order and unknown tags (counted as warnings)
 * and strict about bytes: every length is checked against the container,
 * record or header it sits in, and a tag that may appear once must.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "hdr.h"
#include "tlv.h"

/* ---- parsing ---------------------------------------------------------- */

static void
file_warn(struct trust_file *f, const struct tlv *t, const char *where)
{
	if (f->nwarnings++ == 0)
		snprintf(f->warning, sizeof(f->warning),
			"tag %u at offset %zu: unknown in %s, %u bytes skipped",
			t->tag, t->off, where, t->len);
}

static int
want_len(const struct tlv *t, unsigned n, struct trust_err *err)
{
	if (t->len != n)
		return tlv_error(err, t, "length %u, expected %u", t->len, n);
	return 0;
}

static int
get_u8(const struct tlv *t, unsigned *v, struct trust_err *err)
{
	int rc = want_len(t, 1, err);

	if (rc == 0)
		*v = t->val[0];
	return rc;
}

static int
get_u16(const struct tlv *t, uint16_t *v, struct trust_err *err)
{
	int rc = want_len(t, 2, err);

	if (rc == 0)
		*v = trust_get_u16(t->val);
	return rc;
}

static struct trust_bytes
view(const struct tlv *t)
{
	return (struct trust_bytes){ .p = t->val, .len = t->len };
}

/*
 * One walker for the header, every container and every record: it skips
 * padding, refuses a second copy of a tag in the same place, hands each
 * element to the scope's handler and counts what the handler does not know
 * (ELEM_UNKNOWN) as a warning.
 */
#define ELEM_UNKNOWN 1

struct walk;
typedef int elem_fn(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err);

struct walk {
	struct trust_file *f;
	struct trust_record *rec;	/* inside a record */
	const char *where;		/* names the scope in warnings */
	elem_fn *elem;
	uint32_t seen;			/* bit set of the tags read */
};

static int
walk(struct walk *w, struct tlv_reader *r, struct trust_err *err)
{
	struct tlv t;
	int rc;

	while ((rc = tlv_next(r, &t, err)) > 0) {
		uint32_t bit = t.tag < 32 ? 1u << t.tag : 0;

		if (t.tag == TLV_PADDING)
			continue;
		if (w->seen & bit)
			return tlv_error(err, &t, "appears twice in the same place");
		w->seen |= bit;
		rc = w->elem(w, r, &t, err);
		if (rc == ELEM_UNKNOWN)
			file_warn(w->f, &t, w->where);
		else if (rc != 0)
			return rc;
	}
	return rc;
}

static int
walk_into(struct walk *parent, struct tlv_reader *r, const struct tlv *t,
	const char *where, elem_fn *elem, struct trust_err *err)
{
	struct walk w = { .f = parent->f, .rec = parent->rec, .where = where, .elem = elem };
	struct tlv_reader sub;

	tlv_reader_enter(&sub, r, t);
	return walk(&w, &sub, err);
}

static int
signer_info_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	struct trust_header *h = &w->f->hdr;

	(void)r;
	(void)err;
	switch (t->tag) {
	case HTAG_SIGNER_NAME: h->signer_name = view(t); return 0;
	case HTAG_SERIAL_NUMBER: h->signer_serial = view(t); return 0;
	case HTAG_ISSUER_NAME: h->signer_issuer = view(t); return 0;
	}
	return ELEM_UNKNOWN;
}

static int
sig_algo_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	(void)r;
	switch (t->tag) {
	case HTAG_SIGNATURE_ALGORITHM: return get_u8(t, &w->f->hdr.sig_alg, err);
	case HTAG_SIGNATURE_MODULUS: return get_u8(t, &w->f->hdr.modulus, err);
	}
	return ELEM_UNKNOWN;
}

static int
sig_info_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	switch (t->tag) {
	case HTAG_HASH_ALGORITHM:
		return get_u8(t, &w->f->hdr.hash_alg, err);
	case HTAG_SIGNATURE_ALGORITHM_INFO:
		return walk_into(w, r, t, "SIGNATURE_ALGORITHM_INFO", sig_algo_elem, err);
	}
	return ELEM_UNKNOWN;
}

static int
iv_info_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	(void)r;
	switch (t->tag) {
	case HTAG_ENC_UNKNOWN1: return 0;
	case HTAG_IV: w->f->hdr.iv = view(t); return 0;
	case HTAG_ENCRYPTION_PADDING: return get_u16(t, &w->f->hdr.enc_padding, err);
	}
	return ELEM_UNKNOWN;
}

static int
key_info_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	(void)r;
	switch (t->tag) {
	case HTAG_ENC_UNKNOWN2: return 0;
	case HTAG_KEY_SIZE: return get_u16(t, &w->f->hdr.key_size, err);
	case HTAG_KEY_ALGORITHM: return get_u8(t, &w->f->hdr.key_alg, err);
	case HTAG_ENCRYPTED_KEY: w->f->hdr.enc_key = view(t); return 0;
	}
	return ELEM_UNKNOWN;
}

static int
enc_info_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	switch (t->tag) {
	case HTAG_IV_INFO: return walk_into(w, r, t, "IV_INFO", iv_info_elem, err);
	case HTAG_KEY_INFO: return walk_into(w, r, t, "KEY_INFO", key_info_elem, err);
	}
	return ELEM_UNKNOWN;
}

/* HEADER_LENGTH fixes where the header ends; it may come in any position,
 * so the reader's end shrinks from the file's end to it once it is read. */
static int
header_length(struct trust_file *f, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	uint16_t hl;
	int rc = get_u16(t, &hl, err);

	if (rc != 0)
		return rc;
	if (hl < r->off)
		return tlv_error(err, t, "header length %u ends inside the header's elements "
			"(they reach offset %zu)", hl, r->off);
	if (hl > f->len)
		return tlv_error(err, t, "header length %u runs past the end of the file "
			"(%zu bytes)", hl, f->len);
	f->hdr.header_len = hl;
	r->end = hl;
	snprintf(r->scope, sizeof(r->scope), "the header (HEADER_LENGTH %u)", hl);
	return 0;
}

static int
get_pair(const struct tlv *t, uint8_t out[2], bool *has, struct trust_err *err)
{
	int rc = want_len(t, 2, err);

	if (rc == 0) {
		memcpy(out, t->val, 2);
		if (has != NULL)
			*has = true;
	}
	return rc;
}

static int
header_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	struct trust_header *h = &w->f->hdr;
	int rc;

	switch (t->tag) {
	case HTAG_VERSION:
		return get_pair(t, h->version, NULL, err);
	case HTAG_HEADER_LENGTH:
		return header_length(w->f, r, t, err);
	case HTAG_SIGNER_VERSION:
		return get_pair(t, h->signer_version, &h->has_signer_version, err);
	case HTAG_SIGNER_INFO:
		return walk_into(w, r, t, "SIGNER_INFO", signer_info_elem, err);
	case HTAG_SIGNATURE_INFO:
		return walk_into(w, r, t, "SIGNATURE_INFO", sig_info_elem, err);
	case HTAG_SIGNATURE:
		h->signature = view(t);
		h->sig_off = t->off;
		return 0;
	case HTAG_FILENAME:
		h->filename = view(t);
		return 0;
	case HTAG_TIMESTAMP:
		if ((rc = want_len(t, 4, err)) == 0) {
			h->has_timestamp = true;
			h->timestamp = trust_get_u32(t->val);
		}
		return rc;
	case HTAG_ENCRYPTION_INFO:
		h->encrypted = true;
		return walk_into(w, r, t, "ENCRYPTION_INFO", enc_info_elem, err);
	case HTAG_ENCRYPTION_HASH_ALGORITHM:
		return get_u8(t, &h->enc_hash_alg, err);
	case HTAG_ENCRYPTION_HASH:
		h->enc_hash = view(t);
		return 0;
	}
	return ELEM_UNKNOWN;
}

static int
parse_header(struct trust_file *f, struct trust_err *err)
{
	struct walk w = { .f = f, .where = "the header", .elem = header_elem };
	struct tlv_reader r;
	int rc;

	tlv_reader_init(&r, f->buf, 0, f->len);
	if ((rc = walk(&w, &r, err)) < 0)
		return rc;
	if (!(w.seen & 1u << HTAG_HEADER_LENGTH))
		return trust_errf(err, TRUST_EFORMAT,
			"no HEADER_LENGTH (tag 2) anywhere in the file (%zu bytes)", f->len);
	if (!(w.seen & 1u << HTAG_VERSION))
		return trust_errf(err, TRUST_EFORMAT, "no VERSION (tag 1) in the header "
			"(%u bytes)", f->hdr.header_len);
	f->payload.p = f->buf + f->hdr.header_len;
	f->payload.len = f->len - f->hdr.header_len;
	return 0;
}

/* Like HEADER_LENGTH, RECORD_LENGTH may come anywhere in its record and
 * then bounds the rest of it. */
static int
record_length(struct trust_file *f, struct trust_record *rec, struct tlv_reader *r,
	const struct tlv *t, struct trust_err *err)
{
	int rc = get_u16(t, &rec->len, err);

	if (rc != 0)
		return rc;
	if (rec->len < r->off - rec->off)
		return tlv_error(err, t, "record length %u ends inside the record's "
			"elements (they reach offset %zu)", rec->len, r->off);
	if (rec->len > f->len - rec->off)
		return tlv_error(err, t, "record length %u runs past the end of the file "
			"(%zu bytes)", rec->len, f->len);
	r->end = rec->off + rec->len;
	snprintf(r->scope, sizeof(r->scope), "the record at offset %zu (length %u)",
		rec->off, rec->len);
	return 0;
}

static int
record_elem(struct walk *w, struct tlv_reader *r, const struct tlv *t,
	struct trust_err *err)
{
	struct trust_record *rec = w->rec;
	int rc;

	switch (t->tag) {
	case RTAG_RECORD_LENGTH: return record_length(w->f, rec, r, t, err);
	case RTAG_DNS_NAME: rec->dns_name = view(t); return 0;
	case RTAG_SUBJECT_NAME: rec->subject = view(t); return 0;
	case RTAG_ROLE:
		rc = get_u16(t, &rec->role, err);
		rec->has_role = rc == 0;
		return rc;
	case RTAG_ISSUER_NAME: rec->issuer = view(t); return 0;
	case RTAG_SERIAL_NUMBER: rec->serial = view(t); return 0;
	case RTAG_PUBLIC_KEY: rec->pubkey = view(t); return 0;
	case RTAG_SIGNATURE: rec->signature = view(t); return 0;
	case RTAG_CERTIFICATE: rec->cert = view(t); return 0;
	case RTAG_IP_ADDRESS:
		if ((rc = want_len(t, 4, err)) == 0) {
			rec->has_ip = true;
			memcpy(rec->ip, t->val, 4);
		}
		return rc;
	case RTAG_CERTIFICATE_HASH: rec->cert_hash = view(t); return 0;
	case RTAG_HASH_ALGORITHM: return get_u8(t, &rec->hash_alg, err);
	}
	return ELEM_UNKNOWN;
}

static int
parse_record(struct trust_file *f, size_t off, struct trust_record *rec,
	struct trust_err *err)
{
	struct walk w = { .f = f, .rec = rec, .where = "a record", .elem = record_elem };
	struct tlv_reader r;
	int rc;

	memset(rec, 0, sizeof(*rec));
	rec->off = off;
	/* until RECORD_LENGTH is read, the end of the file is the limit */
	tlv_reader_init(&r, f->buf, off, f->len);
	if ((rc = walk(&w, &r, err)) < 0)
		return rc;
	if (!(w.seen & 1u << RTAG_RECORD_LENGTH))
		return trust_errf(err, TRUST_EFORMAT,
			"record at offset %zu has no RECORD_LENGTH (tag 1)", off);
	return 0;
}

static int
parse_records(struct trust_file *f, struct trust_err *err)
{
	size_t off = f->hdr.header_len, cap = 0;
	int rc;

	while (off < f->len) {
		struct trust_record *rec;

		if (f->buf[off] == TLV_PADDING) {
			off++;
			continue;
		}
		if (f->nrecs == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			struct trust_record *n = realloc(f->recs, ncap * sizeof(*n));

			if (n == NULL)
				return trust_errf(err, TRUST_ENOMEM, "out of memory for records");
			f->recs = n;
			cap = ncap;
		}
		rec = &f->recs[f->nrecs];
		if ((rc = parse_record(f, off, rec, err)) != 0)
			return rc;
		f->nrecs++;
		off += rec->len;
	}
	return 0;
}

static int
file_start(const uint8_t *buf, size_t len, struct trust_file *f, struct trust_err *err)
{
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->len = len;
	if (buf == NULL || len == 0)
		return trust_errf(err, TRUST_EFORMAT, "empty file");
	return 0;
}

int
trust_file_parse(const uint8_t *buf, size_t len, struct trust_file *f,
	struct trust_err *err)
{
	int rc = file_start(buf, len, f, err);

	if (rc == 0)
		rc = parse_header(f, err);
	return rc;
}

int
trust_list_parse(const uint8_t *buf, size_t len, struct trust_file *f,
	struct trust_err *err)
{
	int rc = file_start(buf, len, f, err);

	if (rc != 0)
		return rc;
	if (len > TRUST_LIST_MAX)
		return trust_errf(err, TRUST_ETOOBIG,
			"trust list is %zu bytes; phones cannot load more than %u", len,
			TRUST_LIST_MAX);
	rc = parse_header(f, err);
	if (rc == 0)
		rc = parse_records(f, err);
	if (rc != 0) {
		free(f->recs);
		f->recs = NULL;
		f->nrecs = 0;
	}
	return rc;
}

void
trust_file_free(struct trust_file *f)
{
	free(f->recs);
	f->recs = NULL;
	f->nrecs = 0;
}

/* ---- verification ----------------------------------------------------- */

const EVP_MD *
hdr_md(unsigned code)
{
	switch (code) {
	case TRUST_HASH_SHA1: return EVP_sha1();
	case TRUST_HASH_SHA256: return EVP_sha256();
	case TRUST_HASH_SHA512: return EVP_sha512();
	}
	return NULL;
}

int
hdr_need_rsa(EVP_PKEY *key, const char *who, struct trust_err *err)
{
	if (key == NULL)
		return trust_errf(err, TRUST_EINVAL, "no %s key", who);
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		return trust_errf(err, TRUST_EINVAL,
			"the %s key is %s, but these files only use RSA (PKCS#1 v1.5)", who,
			EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "not RSA");
	return 0;
}

int
trust_file_verify(const struct trust_file *f, EVP_PKEY *key, struct trust_err *err)
{
	const struct trust_header *h = &f->hdr;
	const EVP_MD *md = hdr_md(h->hash_alg);
	EVP_MD_CTX *ctx = NULL;
	size_t after;
	int rc;

	if ((rc = hdr_need_rsa(key, "signer", err)) != 0)
		return rc;
	if (h->signature.p == NULL || h->signature.len == 0)
		return trust_errf(err, TRUST_ESIG, "the header has no SIGNATURE (tag 12)");
	if (md == NULL)
		return trust_errf(err, TRUST_EFORMAT, "hash algorithm %u is not SHA-1 (1), "
			"SHA-256 (2) or SHA-512 (3)", h->hash_alg);
	if (h->sig_alg != 0)
		return trust_errf(err, TRUST_EFORMAT, "signature algorithm %u is not RSA (0)",
			h->sig_alg);
	if (h->signature.len != (size_t)EVP_PKEY_get_size(key))
		return trust_errf(err, TRUST_ESIG, "signature is %zu bytes, the signer's key "
			"is RSA-%d", h->signature.len, EVP_PKEY_get_bits(key));
	after = h->sig_off + 3 + h->signature.len;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) != 1
	    || EVP_DigestVerifyUpdate(ctx, f->buf, h->sig_off) != 1
	    || EVP_DigestVerifyUpdate(ctx, f->buf + after, f->len - after) != 1) {
		EVP_MD_CTX_free(ctx);
		return trust_err_openssl(err, TRUST_ECRYPTO, "signature check");
	}
	rc = EVP_DigestVerifyFinal(ctx, h->signature.p, h->signature.len);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (rc != 1)
		return trust_errf(err, TRUST_ESIG, "%s signature does not verify with the "
			"signer's key", trust_hash_name(h->hash_alg));
	return 0;
}

const struct trust_record *
trust_list_signer(const struct trust_file *f)
{
	const struct trust_header *h = &f->hdr;

	if (h->signer_serial.len == 0)
		return NULL;
	for (size_t i = 0; i < f->nrecs; i++) {
		const struct trust_record *r = &f->recs[i];

		if (!r->has_role || r->role != TRUST_ROLE_SAST
		    || !trust_serial_equal(r->serial.p, r->serial.len, h->signer_serial.p,
			h->signer_serial.len))
			continue;
		/* serials are unique only per issuer */
		if (r->issuer.len > 0 && h->signer_issuer.len > 0
		    && !trust_name_equal((const char *)r->issuer.p, r->issuer.len,
			(const char *)h->signer_issuer.p, h->signer_issuer.len))
			continue;
		return r;
	}
	return NULL;
}

/* The key of a record: from its certificate, else its PKCS#1 key. */
static EVP_PKEY *
record_key(const struct trust_record *r, struct trust_err *err)
{
	EVP_PKEY *key = NULL;

	if (r->cert.len > 0) {
		struct trust_cert c;

		if (trust_cert_from_der(r->cert.p, r->cert.len, &c, err) != 0) {
			char msg[sizeof(err->msg)];

			if (err != NULL) {
				snprintf(msg, sizeof(msg), "%s", err->msg);
				trust_errf(err, TRUST_EFORMAT, "signer record at offset %zu: %s",
					r->off, msg);
			}
			return NULL;
		}
		key = trust_cert_pubkey(&c);
		if (key != NULL)
			EVP_PKEY_up_ref(key);
		trust_cert_free(&c);
	} else if (r->pubkey.len > 0) {
		const unsigned char *p = r->pubkey.p;

		key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)r->pubkey.len);
		if (key == NULL)
			trust_err_openssl(err, TRUST_EFORMAT, "signer record public key");
	} else {
		trust_errf(err, TRUST_ENOTFOUND, "signer record at offset %zu has no "
			"certificate or key", r->off);
	}
	return key;
}

int
trust_list_verify(const struct trust_file *f, const struct trust_cert *signer,
	struct trust_err *err)
{
	const struct trust_record *r;
	EVP_PKEY *key;
	int rc;

	if (signer != NULL)
		return trust_file_verify(f, trust_cert_pubkey(signer), err);
	r = trust_list_signer(f);
	if (r == NULL) {
		char hex[2 * 64 + 1] = "";
		size_t n = f->hdr.signer_serial.len < 64 ? f->hdr.signer_serial.len : 64;

		trust_hex(f->hdr.signer_serial.p, n, hex);
		return trust_errf(err, TRUST_ENOTFOUND, "no SAST record has the header's "
			"signer serial (%s)", n > 0 ? hex : "none");
	}
	key = record_key(r, err);
	if (key == NULL)
		return err != NULL ? err->code : TRUST_EFORMAT;
	rc = trust_file_verify(f, key, err);
	EVP_PKEY_free(key);
	return rc;
}