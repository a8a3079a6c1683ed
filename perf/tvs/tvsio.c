/* Shared helpers of tvs-client and tvs-kserver (see tvsio.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>

#include "tvsio.h"

static enum tvsio_rc
tvsio_map(SSL *ssl, int r)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return TVSIO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TVSIO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return TVSIO_EOF;
	case SSL_ERROR_SYSCALL:
		/* OpenSSL 3 reports a FIN without close_notify as SSL_ERROR_SSL
		 * "unexpected eof"; a bare SYSCALL with errno 0 is the same */
		return errno == 0 && ERR_peek_error() == 0 ? TVSIO_EOF : TVSIO_ERROR;
	}
	return TVSIO_ERROR;
}

enum tvsio_rc
tvsio_read(SSL *ssl, struct trust_buf *in, size_t max)
{
	size_t room;
	int r;

	if (in->len >= max)
		return TVSIO_ERROR;
	room = max - in->len;
	if (room > 16384)
		room = 16384;
	if (trust_buf_reserve(in, room) != 0)
		return TVSIO_ERROR;
	errno = 0;
	r = SSL_read(ssl, in->data + in->len, (int)room);
	if (r > 0) {
		in->len += (size_t)r;
		return TVSIO_OK;
	}
	return tvsio_map(ssl, r);
}

enum tvsio_rc
tvsio_flush(SSL *ssl, struct trust_buf *out, size_t *off)
{
	while (*off < out->len) {
		int r;

		errno = 0;
		r = SSL_write(ssl, out->data + *off, (int)(out->len - *off));
		if (r <= 0)
			return tvsio_map(ssl, r);
		*off += (size_t)r;
	}
	out->len = 0;
	*off = 0;
	return TVSIO_OK;
}

enum tvsio_rc
tvsio_handshake(SSL *ssl)
{
	int r;

	errno = 0;
	r = SSL_do_handshake(ssl);
	return r == 1 ? TVSIO_OK : tvsio_map(ssl, r);
}

uint64_t
tvsio_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
tvsio_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int
tvsio_number(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
tvsio_tls_version(const char *s)
{
	static const struct {
		const char *name;
		int version;
	} names[] = {
		{ "1.0", TLS1_VERSION }, { "1", TLS1_VERSION }, { "tls1", TLS1_VERSION },
		{ "1.1", TLS1_1_VERSION }, { "tls1_1", TLS1_1_VERSION },
		{ "1.2", TLS1_2_VERSION }, { "tls1_2", TLS1_2_VERSION },
		{ "1.3", TLS1_3_VERSION }, { "tls1_3", TLS1_3_VERSION },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].version;
	return 0;
}

const char *
tvsio_ssl_error(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, buf, n);
	else if (errno != 0)
		snprintf(buf, n, "%s", strerror(errno));
	else
		snprintf(buf, n, "connection closed by peer");
	ERR_clear_error();
	return buf;
}
