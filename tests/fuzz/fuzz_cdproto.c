/*
 * libFuzzer harness for the tvsctl <-> tvs-controld socket protocol
 * (control/cdproto.c) and what the daemon does with a command's words
 * before it runs anything (control/tvsctl.c ctl_parse). The first byte
 * picks the receiving side (bit 0: tvsctl receiving from the daemon,
 * else the daemon receiving from a client); the rest is
 *   - a byte stream written into a socketpair and read back message by
 *     message with cd_recv, each checked with cd_check as controld.c and
 *     remote.c do, a CD_CMD then split with cd_cmd_words, its store and
 *     publication paths skipped and the words given to ctl_parse;
 *   - and, as one payload, checked for every type.
 * Aborts when a contract breaks: cd_recv returning a header it should
 * have refused, a word outside the payload, a parse result that is
 * neither done nor a usage error, a command outside its argument counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdproto.h"
#include "fuzz_need.h"
#include "ctl.h"

#define STREAM_MAX 65536

static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	need(devnull != NULL, "/dev/null opens");
	return 0;
}

/* What run_command in controld.c does with a checked CD_CMD payload up to
 * the point where the command would run. */
static void
command(uint8_t *p, size_t len)
{
	char *words[CD_WORDS_MAX];
	struct ctl c = { 0 };
	uint32_t flags, nwords;
	int n, k = 0, rc;

	memcpy(&nwords, p + 4, sizeof(nwords));
	n = cd_cmd_words(p, len, &flags, words, CD_WORDS_MAX);
	need(n >= 1 && (uint32_t)n == nwords, "every word of a checked command found");
	for (int i = 0; i < n; i++) {
		size_t off = (size_t)((uint8_t *)words[i] - p);

		need(off < len && memchr(words[i], '\0', len - off) != NULL,
			"a word is a string inside the payload");
	}
	k = !!(flags & CD_F_STORE) + !!(flags & CD_F_PUB);
	need(n > k, "a command after the paths");
	c.out = devnull;
	c.errf = devnull;
	c.store_dir = "/nonexistent/store";
	c.pub_dir = "/nonexistent/pub";
	c.controld = "none";
	rc = ctl_parse(&c, n - k, words + k);
	need(rc == CTL_OK || rc == CTL_USAGE, "ctl_parse says done or usage");
	if (rc == CTL_OK) {
		need(c.cmd != NULL, "a parsed command has its entry");
		need(c.nargs >= c.cmd->min_args && c.nargs <= c.cmd->max_args,
			"argument count within the command's");
		for (int i = 0; i < c.nopts; i++)
			need(c.opts[i].name != NULL, "options named");
	}
}

static void
message(uint32_t type, const uint8_t *p, size_t len, bool from_daemon)
{
	/* exact-size copy (one more byte for the NUL remote.c writes after a
	 * CD_NOT_MINE) so ASan sees any read past the end */
	uint8_t *copy = malloc(len + 1);

	memcpy(copy, p, len);
	if (cd_check(type, copy, len, from_daemon)) {
		need(len <= CD_PAYLOAD_MAX, "an accepted payload fits the buffers");
		if (type == CD_CMD)
			command(copy, len);
		else if (type == CD_NOT_MINE)
			copy[len] = '\0';
	}
	free(copy);
}

static void
stream(const uint8_t *d, size_t n, bool from_daemon)
{
	static uint8_t buf[CD_PAYLOAD_MAX + 1];
	struct cd_hdr h;
	int sv[2], len;

	need(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	/* written before anything is read: no more than the socket buffer
	 * surely takes (run uses -max_len=16384 anyway) */
	if (n > STREAM_MAX)
		n = STREAM_MAX;
	need(write(sv[0], d, n) == (ssize_t)n, "the stream fits the socket buffer");
	shutdown(sv[0], SHUT_WR);
	while ((len = cd_recv(sv[1], &h, buf, CD_PAYLOAD_MAX, 1000)) >= 0) {
		need(h.type > 0 && h.type < CD_TYPE_MAX && h.len == (uint32_t)len,
			"cd_recv returns only possible headers");
		message(h.type, buf, (size_t)len, from_daemon);
	}
	need(len == -1 || len == -2, "cd_recv fails with -1 or -2");
	close(sv[0]);
	close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	bool from_daemon;

	if (n == 0)
		return 0;
	from_daemon = d[0] & 1;
	stream(d + 1, n - 1, from_daemon);
	for (uint32_t t = 0; t <= CD_TYPE_MAX; t++)
		message(t, d + 1, n - 1, from_daemon);
	return 0;
}
