/*
 * Private to trust/ and store/: what reading and verifying the headers of
 * CTL/ITL (list.c), .sgn (sgn.c) and .enc.sgn (enc.c) share. One layout
 * (FORMATS §1.2), one signature rule (§1.7). Building them is
 * store/hdr_build.h.
 */
#ifndef TRUST_HDR_H
#define TRUST_HDR_H

#include "file.h"

/* OpenSSL digest of a hash code, NULL when unknown. */
const EVP_MD *hdr_md(unsigned code);
/* TRUST_EINVAL unless key is RSA; `who` names it ("signer", "phone"). */
int hdr_need_rsa(EVP_PKEY *key, const char *who, struct trust_err *err);

#endif
