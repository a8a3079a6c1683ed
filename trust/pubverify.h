/*
 * pub_verify: what a loaded publication claims, checked before it is
 * served (PUBLICATION.md, "What the reader verifies"). Key-free: it needs
 * the certificates inside the publication and nothing else, except that
 * it loads tvs/tvs.key to see that it is the TVS certificate's key.
 */
#ifndef TRUST_PUBVERIFY_H
#define TRUST_PUBVERIFY_H

#include "trust.h"

struct publication;

/*
 * 0 when every check passes; otherwise the first failure, with err->msg
 * naming the file (its path in the generation directory) and the reason:
 *  - ITLFile.tlv, and CTLFile.tlv when served, parse and verify with the
 *    certificate of their own signer record;
 *  - every served .sgn / .enc.sgn names a signer (issuer + serial) that is
 *    a record of the ITL with a certificate, and verifies with it;
 *  - tvs/tvs.pem and tvs/tvs.key come together; the key is a private key
 *    whose public half is the certificate's, and the certificate is one of
 *    the ITL's TVS records when the ITL has TVS records with certificates.
 * A publication without tvs/ files passes the last check (there is no TVS
 * identity to verify); the caller decides what that means for it.
 */
int pub_verify(const struct publication *p, struct trust_err *err);

#endif
