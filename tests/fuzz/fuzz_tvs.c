/*
 * libFuzzer harness for the TVS codec: arbitrary bytes as a connection's
 * stream (tvs_handle, request after request, as the TCP/TLS engines feed
 * it), and as single messages (tvs_request_parse, tvs_response_parse).
 * Aborts when a parser breaks its contract: a view outside the input, a
 * consumed count past the input, a failure without a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_need.h"
#include "tvs.h"

static const uint8_t known_der[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
static const uint8_t known_roles[] = { 0, 3 };

/* Every lookup "finds" the same entry, so both answer paths run. */
static int
lookup_any(void *ctx, const uint8_t key[32], struct tvs_entry *e)
{
	(void)ctx;
	if (key[0] & 1)
		return 0;
	memset(e, 0, sizeof(*e));
	e->der = known_der;
	e->der_len = sizeof(known_der);
	e->roles = known_roles;
	e->nroles = sizeof(known_roles);
	e->subject = "CN=fuzz";
	e->subject_len = 7;
	return 1;
}

static void
fuzz_stream(const uint8_t *d, size_t n)
{
	const struct tvs_lookup lk = { lookup_any, lookup_any, NULL };
	static uint8_t out[TVS_MSG_MAX];
	struct trust_err err = { 0 };
	size_t off = 0;

	while (off < n) {
		size_t consumed = 0, outlen = 0;
		int status = -1;
		int rc = tvs_handle(d + off, n - off, &lk, &consumed, out, sizeof(out),
			&outlen, &status, &err);

		if (rc < 0) {
			need(err.msg[0] != '\0', "stream error has a message");
			return;
		}
		if (rc == TVS_FRAME_MORE)
			return;
		need(consumed > 0 && consumed <= n - off, "consumed within the input");
		need(outlen <= sizeof(out), "answer fits");
		off += consumed;
	}
}

static void
fuzz_messages(const uint8_t *d, size_t n)
{
	struct trust_err err = { 0 };
	struct tvs_request rq;
	struct tvs_response rs;

	if (tvs_request_parse(d, n, &rq, &err) == 0) {
		need_view(&rq.device, d, n, "device in the message");
		need_view(&rq.cert, d, n, "certificate in the message");
		need_view(&rq.subject, d, n, "subject in the message");
		need_view(&rq.issuer, d, n, "issuer in the message");
		need_view(&rq.serial, d, n, "serial in the message");
	} else {
		need(err.msg[0] != '\0', "request error has a message");
	}
	err.msg[0] = '\0';
	if (tvs_response_parse(d, n, &rs, &err) == 0) {
		need_view(&rs.roles, d, n, "roles in the message");
		need_view(&rs.cert, d, n, "certificate in the message");
	} else {
		need(err.msg[0] != '\0', "response error has a message");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	/* exact-size copy so ASan sees any read past the end */
	uint8_t *copy = malloc(n ? n : 1);

	memcpy(copy, d, n);
	fuzz_stream(copy, n);
	fuzz_messages(copy, n);
	free(copy);
	return 0;
}
