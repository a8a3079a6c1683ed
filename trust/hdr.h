/*
 * Private to trust/: the header machinery that CTL/ITL (list.c), .sgn
 * (sgn.c) and .enc.sgn (enc.c) share. One layout (FORMATS §1.2), one
 * signature rule (§1.7); the callers differ in version, extra header
 * elements and body.
 */
#ifndef TRUST_HDR_H
#define TRUST_HDR_H

#include "file.h"

struct hdr_spec {
	uint8_t version[2];
	bool signer_version;		/* tag 28 = 1.1 */
	const char *filename;
	uint32_t timestamp;
	const uint8_t *extra;		/* encoded elements after TIMESTAMP */
	size_t extra_len;
	const uint8_t *body;		/* records or payload */
	size_t body_len;
	size_t max_len;			/* whole file; 0 = only the u16 limits */
	const char *what;		/* "ITL", ".sgn", ... for messages */
};

/* Build header + body, sign it, insert the signature (out initialised). */
int hdr_build_signed(const struct trust_signer *s, const struct hdr_spec *h,
	struct trust_buf *out, struct trust_err *err);
/* OpenSSL digest of a hash code, NULL when unknown. */
const EVP_MD *hdr_md(unsigned code);
/* TRUST_EINVAL unless key is RSA; `who` names it ("signer", "phone"). */
int hdr_need_rsa(EVP_PKEY *key, const char *who, struct trust_err *err);

#endif
