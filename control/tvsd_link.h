/*
 * Talking to tvsd's control socket (messages: dataplane/dpctl_proto.h, a
 * binary header and one checked payload shape per type; several requests
 * per connection). Every wait is bounded; errors are one line in the
 * caller's buffer. JSON replies are parsed with jansson.
 */
#ifndef CONTROL_TVSD_LINK_H
#define CONTROL_TVSD_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "dpctl_proto.h"

#define TVSD_DEFAULT_SOCKET "/run/tvs/tvsd.sock"

/* A checked reply: payload malloc'ed, len bytes. */
struct tvsd_reply {
	uint32_t type;
	uint8_t *payload;
	size_t len;
};

/* A connected socket, or -1 with err filled. */
int tvsd_connect(const char *path, char *err, size_t errsz);
/* Sends the request `type`, reads its reply within timeout_ms and checks
 * its shape. 0, or -1 with err filled (tvsd's own message for DPCTL_ERROR;
 * "no answer ... within N ms" on a timeout, with *timed_out set when
 * given). Free the reply with tvsd_reply_free. */
int tvsd_request(int fd, uint32_t type, int timeout_ms, struct tvsd_reply *r, bool *timed_out,
	char *err, size_t errsz);
void tvsd_reply_free(struct tvsd_reply *r);
/* A JSON request (status, stats, rollout, memory, help) on fd: the
 * document, or NULL with err filled. *text, when given, gets the document
 * as tvsd wrote it (malloc'ed, for --json). */
json_t *tvsd_json(int fd, uint32_t type, int timeout_ms, char **text, char *err, size_t errsz);

#endif
