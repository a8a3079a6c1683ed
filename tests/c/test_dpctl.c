/* tvsd's control messages (dataplane/dpctl_proto.h): the header and the
 * exact shape of every payload, checked before a byte is used. */
#include "dpctl_proto.h"
#include "tap.h"

static struct dpctl_hdr
hdr(uint32_t type, uint32_t len)
{
	return (struct dpctl_hdr){ .magic = DPCTL_MAGIC, .type = type, .len = len, .id = 7 };
}

static void
test_requests(void)
{
	struct dpctl_hdr h = hdr(DPCTL_STATUS, 0);

	for (uint32_t t = DPCTL_HELP; t < DPCTL_REQ_MAX; t++) {
		h = hdr(t, 0);
		ok(dpctl_check_hdr(&h, false), "request %s: empty payload", dpctl_name(t));
		h.len = 1;
		ok(!dpctl_check_hdr(&h, false), "request %s with a payload byte: refused",
			dpctl_name(t));
		ok(!dpctl_check(t, (const uint8_t *)"x", 1), "... and its payload check too");
	}
	h = hdr(DPCTL_STATUS, 0);
	h.magic = DPCTL_MAGIC + 1;
	ok(!dpctl_check_hdr(&h, false), "other magic (another protocol version): refused");
	h = hdr(0, 0);
	ok(!dpctl_check_hdr(&h, false), "type 0: refused");
	h = hdr(DPCTL_REQ_MAX, 0);
	ok(!dpctl_check_hdr(&h, false), "type after the last request: refused");
	h = hdr(DPCTL_STATUS | DPCTL_REPLY, 3);
	ok(!dpctl_check_hdr(&h, false), "a reply type from a client: refused");
	h = hdr(DPCTL_ERROR, 2);
	ok(!dpctl_check_hdr(&h, false), "an error from a client: refused");
	h = hdr(DPCTL_STATUS, 0);
	ok(!dpctl_check_hdr(&h, true), "a request type from tvsd: refused");
	is_int(dpctl_type_of("reload"), DPCTL_RELOAD, "name -> type");
	is_int(dpctl_type_of("frobnicate"), 0, "unknown name -> 0");
	ok(dpctl_name(DPCTL_REQ_MAX) == NULL && dpctl_name(0) == NULL, "no name outside the table");
}

static void
test_json_replies(void)
{
	const uint32_t t = DPCTL_STATS | DPCTL_REPLY;
	struct dpctl_hdr h = hdr(t, DPCTL_JSON_MAX);

	ok(dpctl_check(t, (const uint8_t *)"{}", 3), "\"{}\" NUL-ended");
	ok(!dpctl_check(t, (const uint8_t *)"{}", 2), "no final NUL: refused");
	ok(!dpctl_check(t, (const uint8_t *)"{\0}", 4), "NUL inside: refused");
	ok(!dpctl_check(t, (const uint8_t *)"[]", 3), "not an object: refused");
	ok(!dpctl_check(t, (const uint8_t *)"", 1), "an empty document: refused");
	ok(!dpctl_check(t, NULL, 0), "no payload: refused");
	ok(dpctl_check_hdr(&h, true), "a document of DPCTL_JSON_MAX bytes may come");
	h.len++;
	ok(!dpctl_check_hdr(&h, true), "one byte more may not");
	ok(dpctl_check(DPCTL_ERROR, (const uint8_t *)"no\0", 3), "error message");
	ok(!dpctl_check(DPCTL_ERROR, (const uint8_t *)"\0", 1), "empty error message: refused");
	h = hdr(DPCTL_ERROR, DPCTL_MSG_MAX + 1);
	ok(!dpctl_check_hdr(&h, true), "error message over DPCTL_MSG_MAX: refused");
	h = hdr((DPCTL_REQ_MAX) | DPCTL_REPLY, 3);
	ok(!dpctl_check_hdr(&h, true), "reply to no request: refused");
}

/* A reload reply: struct, n lcore ids, message. */
static size_t
reload_msg(uint8_t *buf, uint32_t ok_, uint32_t n, const char *msg, size_t msglen)
{
	struct dpctl_reload r = { .generation = 42, .ok = ok_, .nlcores = n };
	size_t off = sizeof(r);

	memcpy(buf, &r, sizeof(r));
	for (uint32_t i = 0; i < n; i++, off += 4)
		memcpy(buf + off, &(uint32_t){ i + 1 }, 4);
	memcpy(buf + off, msg, msglen);
	return off + msglen;
}

static void
test_reload_reply(void)
{
	const uint32_t t = DPCTL_RELOAD | DPCTL_REPLY;
	uint8_t buf[sizeof(struct dpctl_reload) + 4 * 4 + DPCTL_MSG_MAX + 8];
	char big[DPCTL_MSG_MAX + 1];
	struct dpctl_reload_view v;
	size_t n;

	n = reload_msg(buf, 1, 2, "served\0", 7);
	ok(dpctl_check(t, buf, n), "ok, 2 lcores, message");
	dpctl_reload_parse(buf, &v);
	ok(v.r.generation == 42 && v.r.nlcores == 2 && dpctl_reload_lcore(&v, 0) == 1 &&
		dpctl_reload_lcore(&v, 1) == 2 && strcmp(v.msg, "served") == 0, "taken apart");
	n = reload_msg(buf, 0, 0, "\0", 1);
	ok(dpctl_check(t, buf, n), "refused, no lcore, empty message");
	ok(!dpctl_check(t, buf, n - 1), "no message at all: refused");
	ok(!dpctl_check(t, buf, sizeof(struct dpctl_reload) - 1), "shorter than the struct: refused");
	n = reload_msg(buf, 2, 0, "x\0", 2);
	ok(!dpctl_check(t, buf, n), "ok neither 0 nor 1: refused");
	n = reload_msg(buf, 1, 3, "x\0", 2);
	ok(dpctl_check(t, buf, n), "3 lcores");
	((struct dpctl_reload *)buf)->nlcores = 4;
	ok(!dpctl_check(t, buf, n), "nlcores says more ids than there are: refused");
	((struct dpctl_reload *)buf)->nlcores = 2;
	ok(!dpctl_check(t, buf, n), "nlcores says fewer: the rest is not one string: refused");
	((struct dpctl_reload *)buf)->nlcores = 0xffffffffu;
	ok(!dpctl_check(t, buf, n), "nlcores huge: refused (no overflow)");
	n = reload_msg(buf, 1, 0, "ab", 2);
	ok(!dpctl_check(t, buf, n), "message without NUL: refused");
	n = reload_msg(buf, 1, 0, "a\0b\0", 4);
	ok(!dpctl_check(t, buf, n), "two strings: refused");
	memset(big, 'm', sizeof(big));
	big[DPCTL_MSG_MAX] = '\0';
	n = reload_msg(buf, 1, 0, big, sizeof(big));
	ok(!dpctl_check(t, buf, n), "message over DPCTL_MSG_MAX: refused");
	n = reload_msg(buf, 1, 0, big + 1, sizeof(big) - 1);
	ok(dpctl_check(t, buf, n), "message of DPCTL_MSG_MAX: accepted");
}

static void
test_frame(void)
{
	struct dpctl_hdr a = hdr(DPCTL_STATS, 0), b = hdr(DPCTL_RELOAD, 0), got;
	struct dpctl_hdr bad = hdr(DPCTL_STATS, 5);
	uint8_t buf[2 * sizeof(struct dpctl_hdr)], r[sizeof(struct dpctl_hdr) + 3];
	unsigned waits = 0;

	memcpy(buf, &a, sizeof(a));
	memcpy(buf + sizeof(a), &b, sizeof(b));

	for (size_t n = 0; n < sizeof(a); n++)
		waits += dpctl_frame(buf, n, false, &got) == 0;
	is_int(waits, sizeof(a), "a header cut anywhere: wait for more");
	is_int(dpctl_frame(buf, sizeof(buf), false, &got), sizeof(a), "first of two requests");
	ok(got.type == DPCTL_STATS && got.id == 7, "its header");
	is_int(dpctl_frame(buf + sizeof(a), sizeof(b), false, &got), sizeof(b), "second");
	memcpy(buf, &bad, sizeof(bad));
	is_int(dpctl_frame(buf, sizeof(bad), false, &got), -1,
		"a request announcing a payload: refused before the payload arrives");
	a = hdr(DPCTL_STATUS | DPCTL_REPLY, 3);
	memcpy(r, &a, sizeof(a));
	memcpy(r + sizeof(a), "{}", 3);
	is_int(dpctl_frame(r, sizeof(r) - 1, true, &got), 0, "reply cut in its payload: wait");
	is_int(dpctl_frame(r, sizeof(r), true, &got), sizeof(r), "whole reply");
	r[sizeof(r) - 1] = 'x';
	is_int(dpctl_frame(r, sizeof(r), true, &got), -1, "reply of the wrong shape: refused");
}

int
main(void)
{
	test_requests();
	test_json_replies();
	test_reload_reply();
	test_frame();
	return done_testing();
}
