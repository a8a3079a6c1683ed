/*
 * What tvs-client and tvs-kserver share: non-blocking OpenSSL I/O into
 * trust_buf buffers, TLS version names, a monotonic clock and OpenSSL's
 * error queue as one line of text.
 */
#ifndef PERF_TVS_TVSIO_H
#define PERF_TVS_TVSIO_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "trust.h"

/* What one call of tvsio_read / tvsio_flush ended with. */
enum tvsio_rc {
	TVSIO_OK = 0,		/* did everything it could; for read: got bytes */
	TVSIO_WANT_READ,	/* wait for the socket to become readable */
	TVSIO_WANT_WRITE,	/* ... writable */
	TVSIO_EOF,		/* peer closed (close_notify or TCP FIN) */
	TVSIO_ERROR,		/* TLS or socket error: close */
};

/* Read what the SSL object has into in, never growing it past max bytes.
 * TVSIO_OK means at least one byte was added. */
enum tvsio_rc tvsio_read(SSL *ssl, struct trust_buf *in, size_t max);
/* Write out[*off..len); on TVSIO_OK everything went and out is emptied. */
enum tvsio_rc tvsio_flush(SSL *ssl, struct trust_buf *out, size_t *off);
/* Map SSL_get_error of a handshake step. */
enum tvsio_rc tvsio_handshake(SSL *ssl);

uint64_t tvsio_now_ns(void);
int tvsio_nonblock(int fd);

/* Decimal in [min, max], nothing else around it; 0 or -1. */
int tvsio_number(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* "1.0", "1.1", "1.2", "1.3" (also "tls1", "tls1_2" ...) -> TLS1_x_VERSION; 0 if unknown. */
int tvsio_tls_version(const char *s);

/* First reason of OpenSSL's error queue (or errno for syscall errors);
 * clears the queue. */
const char *tvsio_ssl_error(char *buf, size_t n);

#endif
