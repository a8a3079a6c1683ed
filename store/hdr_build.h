/*
 * Private to store/: building the header that CTL/ITL, .sgn and .enc.sgn
 * share (FORMATS §1.2) and signing it (§1.7); the callers differ in
 * version, extra header elements and body.
 */
#ifndef STORE_HDR_BUILD_H
#define STORE_HDR_BUILD_H

#include "hdr.h"
#include "sign.h"

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

#endif
