/* tvsd's control socket, see tvsd_link.h. */
#include <errno.h>
#include <poll.h>
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

int
tvsd_request(int fd, const char *cmd, int timeout_ms, size_t max, char **reply,
	char *err, size_t errsz)
{
	long long deadline = now_ms() + timeout_ms;
	size_t len = 0, cap = 4096, clen = strlen(cmd);
	char *buf = malloc(cap), line[300];

	*reply = NULL;
	if (buf == NULL || clen + 2 > sizeof(line)) {
		free(buf);
		snprintf(err, errsz, buf ? "command too long" : "out of memory");
		return -1;
	}
	memcpy(line, cmd, clen);
	line[clen] = '\n';
	if (send(fd, line, clen + 1, MSG_NOSIGNAL) != (ssize_t)clen + 1) {
		free(buf);
		snprintf(err, errsz, "send '%s': %s", cmd, strerror(errno));
		return -1;
	}
	while (len == 0 || buf[len - 1] != '\n') {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = cap < max ? realloc(buf, cap * 2) : NULL;

			if (nb == NULL) {
				snprintf(err, errsz, "reply to '%s' over %zu bytes", cmd, max);
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		if (left <= 0 || poll(&p, 1, (int)left) != 1) {
			snprintf(err, errsz, "no complete answer to '%s' within %d ms", cmd, timeout_ms);
			goto fail;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0) {
			snprintf(err, errsz, "connection closed while waiting for '%s'", cmd);
			goto fail;
		}
		len += (size_t)n;
	}
	buf[len - 1] = '\0';
	*reply = buf;
	return 0;
fail:
	free(buf);
	return -1;
}
