/*
 * Private-key offload: an RSA_METHOD that sends the raw RSA operation of a
 * TLS handshake to a crypto lcore while the handshake's ASYNC job sleeps.
 *
 * Why this route on OpenSSL 3.0. Three were tried:
 *  - A legacy RSA object with a custom method wrapped in an EVP_PKEY is a
 *    "foreign" key, so EVP keeps it on the legacy code path. Signing works,
 *    but RSA key exchange does not: libssl asks for the TLS-specific padding
 *    RSA_PKCS1_WITH_TLS_PADDING (implicit rejection), which only providers
 *    implement ("pkey_rsa_ctrl: illegal or unsupported padding mode"). The
 *    TLS 1.0 AES256-SHA of deployed phones is RSA key exchange.
 *  - A provider of our own (keymgmt + signature + asym cipher) would work
 *    but is several hundred lines of OpenSSL plumbing to maintain.
 *  - What we do: load the key with this method as the default RSA method,
 *    so the default provider's own RSA object carries it. The key stays a
 *    provider key (every padding mode, implicit rejection included, is done
 *    by the provider) and the provider ends every private operation with
 *    RSA_private_encrypt/decrypt(RSA_NO_PADDING), which land here.
 * The default method is swapped only around the key load (tvs_tls.c), on
 * the main lcore. An RSA object made elsewhere in that window would get
 * this method too, which is harmless: outside a session's ASYNC job with an
 * offload queue, the method computes inline exactly like the default one.
 * RSA_METHOD is deprecated in OpenSSL 3; the provider route above is the
 * replacement if it goes away.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "tvs_priv.h"

static RSA_METHOD *tvs_meth;
static pthread_once_t tvs_meth_once = PTHREAD_ONCE_INIT;
static __thread unsigned tvs_meth_calls;	/* for tvs_rsa_key_hooked */

int
tvs_rsa_inline(enum tvs_pkey_op op, int flen, const uint8_t *from, uint8_t *to, RSA *rsa,
	int padding)
{
	const RSA_METHOD *m = RSA_PKCS1_OpenSSL();

	if (op == TVS_PKEY_SIGN)
		return RSA_meth_get_priv_enc(m)(flen, from, to, rsa, padding);
	return RSA_meth_get_priv_dec(m)(flen, from, to, rsa, padding);
}

static int
tvs_meth_op(enum tvs_pkey_op op, int flen, const unsigned char *from, unsigned char *to,
	RSA *rsa, int padding)
{
	int rc;

	tvs_meth_calls++;
	rc = tvs_session_pkey(op, flen, from, to, rsa, padding);
	return rc != TVS_PKEY_INLINE ? rc : tvs_rsa_inline(op, flen, from, to, rsa, padding);
}

static int
tvs_meth_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
	int padding)
{
	return tvs_meth_op(TVS_PKEY_SIGN, flen, from, to, rsa, padding);
}

static int
tvs_meth_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
	int padding)
{
	return tvs_meth_op(TVS_PKEY_DECRYPT, flen, from, to, rsa, padding);
}

/* A copy of OpenSSL's own method (its mod_exp, init, finish and public
 * operations) with the two private operations replaced. */
static void
tvs_meth_make(void)
{
	RSA_METHOD *m = RSA_meth_dup(RSA_PKCS1_OpenSSL());

	if (m == NULL)
		return;
	if (RSA_meth_set1_name(m, "tvsd private-key offload") != 1
	    || RSA_meth_set_priv_enc(m, tvs_meth_priv_enc) != 1
	    || RSA_meth_set_priv_dec(m, tvs_meth_priv_dec) != 1) {
		RSA_meth_free(m);
		return;
	}
	tvs_meth = m;
}

const RSA_METHOD *
tvs_rsa_method(void)
{
	pthread_once(&tvs_meth_once, tvs_meth_make);
	return tvs_meth;
}

/* One PKCS#1 signature of a dummy digest: did it pass through us? */
bool
tvs_rsa_key_hooked(EVP_PKEY *key)
{
	static const uint8_t digest[32] = { 't', 'v', 's', 'd' };
	uint8_t sig[TVS_PKEY_MAX];
	size_t siglen = sizeof(sig);
	unsigned before = tvs_meth_calls;
	EVP_PKEY_CTX *pc;
	bool ok;

	if (!EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_get_size(key) > TVS_PKEY_MAX)
		return false;
	pc = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	ok = pc != NULL && EVP_PKEY_sign_init(pc) == 1
		&& EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1
		&& EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1
		&& EVP_PKEY_sign(pc, sig, &siglen, digest, sizeof(digest)) == 1;
	EVP_PKEY_CTX_free(pc);
	ERR_clear_error();
	return ok && tvs_meth_calls != before;
}

void
tvs_pkey_job_run(struct tvs_pkey_job *job)
{
	job->outlen = -1;
	if (job->inlen > 0 && job->inlen <= TVS_PKEY_MAX && RSA_size(job->rsa) <= TVS_PKEY_MAX)
		job->outlen = tvs_rsa_inline(job->op, job->inlen, job->in, job->out, job->rsa,
			job->padding);
	/* the error queue is per thread: a failure here is reported to the
	 * worker through outlen, not left on the crypto lcore */
	ERR_clear_error();
	__atomic_store_n(&job->done, 1, __ATOMIC_RELEASE);
}
