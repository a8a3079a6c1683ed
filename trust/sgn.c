/*
 * Signed files (.sgn, FORMATS §2.1): the trust-list header with VERSION
 * 1.0 and no SIGNER_VERSION, then the original bytes.
 */
#include <string.h>

#include "hdr.h"

int
trust_sgn_verify(const uint8_t *buf, size_t len, const struct trust_cert *signer,
	struct trust_bytes *payload, struct trust_err *err)
{
	struct trust_file f;
	int rc;

	payload->p = NULL;
	payload->len = 0;
	if (signer == NULL || signer->x509 == NULL)
		return trust_errf(err, TRUST_EINVAL, "no signer certificate to verify with");
	rc = trust_file_parse(buf, len, &f, err);
	if (rc == 0)
		rc = trust_file_verify(&f, trust_cert_pubkey(signer), err);
	if (rc == 0)
		*payload = f.payload;
	trust_file_free(&f);
	return rc;
}

int
trust_sgn_strip(const uint8_t *buf, size_t len, struct trust_bytes *payload,
	struct trust_err *err)
{
	struct trust_file f;
	int rc;

	payload->p = NULL;
	payload->len = 0;
	rc = trust_file_parse(buf, len, &f, err);
	if (rc == 0)
		*payload = f.payload;
	trust_file_free(&f);
	return rc;
}
