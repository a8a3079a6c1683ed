/* tvsd's control socket, see tvsd_link.h. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tvsd_link.h"

int
tvsd_connect(const char *path, char *err, size_t errsz)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "socket path too long: %s", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errsz, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n bytes before the deadline: 0, -1 closed or error, -2 timeout. */
static int
read_full(int fd, void *buf, size_t n, long long deadline)
{
	uint8_t *p = buf;

	while (n > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t r;

		if (left <= 0)
			return -2;
		if (poll(&pf, 1, (int)left) <= 0) {
			if (errno == EINTR)
				continue;
			return -2;
		}
		r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int __attribute__((format(printf, 5, 6)))
fail(bool *timed_out, bool timeout, char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (timed_out != NULL)
		*timed_out = timeout;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

/* The header of the reply to (type, id), checked. */
static int
read_header(int fd, uint32_t type, uint32_t id, long long deadline, struct dpctl_hdr *h,
	bool *timed_out, char *err, size_t errsz, int timeout_ms)
{
	const char *name = dpctl_name(type);
	int rc = read_full(fd, h, sizeof(*h), deadline);

	if (rc == -2)
		return fail(timed_out, true, err, errsz, "no answer to '%s' within %d ms", name,
			timeout_ms);
	if (rc != 0)
		return fail(timed_out, false, err, errsz, "connection closed while waiting for "
			"'%s'", name);
	if (!dpctl_check_hdr(h, true) || h->id != id ||
	    (h->type != (type | DPCTL_REPLY) && h->type != DPCTL_ERROR))
		return fail(timed_out, false, err, errsz, "the answer to '%s' is not a reply of "
			"the protocol (type %#x)", name, h->type);
	return 0;
}

int
tvsd_request(int fd, uint32_t type, int timeout_ms, struct tvsd_reply *r, bool *timed_out,
	char *err, size_t errsz)
{
	static uint32_t next_id;
	long long deadline = now_ms() + timeout_ms;
	struct dpctl_hdr h = { .magic = DPCTL_MAGIC, .type = type, .id = ++next_id };
	const char *name = dpctl_name(type);

	memset(r, 0, sizeof(*r));
	if (timed_out != NULL)
		*timed_out = false;
	if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
		snprintf(err, errsz, "send '%s': %s", name, strerror(errno));
		return -1;
	}
	if (read_header(fd, type, h.id, deadline, &h, timed_out, err, errsz, timeout_ms) != 0)
		return -1;
	r->type = h.type;
	r->len = h.len;
	r->payload = malloc(h.len ? h.len : 1);
	if (r->payload == NULL)
		return fail(timed_out, false, err, errsz, "out of memory for the answer to '%s'",
			name);
	switch (read_full(fd, r->payload, h.len, deadline)) {
	case 0:
		break;
	case -2:
		tvsd_reply_free(r);
		return fail(timed_out, true, err, errsz, "no complete answer to '%s' within %d ms",
			name, timeout_ms);
	default:
		tvsd_reply_free(r);
		return fail(timed_out, false, err, errsz, "connection closed while reading the "
			"answer to '%s'", name);
	}
	if (!dpctl_check(r->type, r->payload, r->len)) {
		tvsd_reply_free(r);
		return fail(timed_out, false, err, errsz, "the answer to '%s' has not the shape of "
			"its type", name);
	}
	if (r->type == DPCTL_ERROR) {
		snprintf(err, errsz, "tvsd: %s", (const char *)r->payload);
		tvsd_reply_free(r);
		return -1;
	}
	return 0;
}

void
tvsd_reply_free(struct tvsd_reply *r)
{
	free(r->payload);
	r->payload = NULL;
	r->len = 0;
}

json_t *
tvsd_json(int fd, uint32_t type, int timeout_ms, char **text, char *err, size_t errsz)
{
	struct tvsd_reply r;
	json_error_t je;
	json_t *doc;

	if (text != NULL)
		*text = NULL;
	if (tvsd_request(fd, type, timeout_ms, &r, NULL, err, errsz) != 0)
		return NULL;
	doc = json_loadb((const char *)r.payload, r.len - 1, 0, &je);
	if (doc == NULL || !json_is_object(doc) || !json_is_true(json_object_get(doc, "ok"))) {
		snprintf(err, errsz, "tvsd answered '%s' with a document that is not its JSON (%s)",
			dpctl_name(type), doc == NULL ? je.text : "no \"ok\":true");
		json_decref(doc);
		tvsd_reply_free(&r);
		return NULL;
	}
	if (text != NULL)
		*text = (char *)r.payload;	/* NUL-terminated: checked */
	else
		tvsd_reply_free(&r);
	return doc;
}
