/*
 * Talking to tvsd's control socket (protocol at the top of
 * dataplane/dp_ctl.c: one command line, one JSON line back, several
 * commands per connection). Every wait is bounded; errors are one line in
 * the caller's buffer.
 */
#ifndef CONTROL_TVSD_LINK_H
#define CONTROL_TVSD_LINK_H

#include <stddef.h>

#define TVSD_DEFAULT_SOCKET "/run/tvs/tvsd.sock"

/* A connected socket, or -1 with err filled. */
int tvsd_connect(const char *path, char *err, size_t errsz);
/* Sends cmd, reads one reply line of at most max bytes within timeout_ms
 * into *reply (malloc'ed, newline removed). 0, or -1 with err filled. */
int tvsd_request(int fd, const char *cmd, int timeout_ms, size_t max, char **reply,
	char *err, size_t errsz);

#endif
