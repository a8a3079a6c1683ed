/*
 * libFuzzer harness for tvsd's control messages (dataplane/dpctl_proto.h):
 * arbitrary bytes as a client's stream, fed to the framer in the pieces a
 * non-blocking read gives (dataplane/dp_ctl.c keeps a few headers of
 * input), and as tvsd's reply stream read by tvsctl and tvs-controld.
 * Aborts when the checker breaks its contract: a frame longer than its
 * input, a message accepted whose header or shape is not valid, a reload
 * reply whose lcores or message lie outside the payload.
 */
#include <string.h>

#include "dpctl_proto.h"
#include "fuzz_need.h"

#define IN_MAX (4 * sizeof(struct dpctl_hdr))	/* dp_ctl.c's input buffer */

static void
check_message(const uint8_t *m, long len, bool from_tvsd, const struct dpctl_hdr *h)
{
	const uint8_t *p = m + sizeof(*h);
	struct dpctl_reload_view v;

	need(len >= (long)sizeof(*h) && (size_t)len == sizeof(*h) + h->len, "frame = header + len");
	need(dpctl_check_hdr(h, from_tvsd), "accepted header passes the header check");
	need(dpctl_check(h->type, p, h->len), "accepted payload passes the shape check");
	need(from_tvsd || h->len == 0, "requests carry no payload");
	if (h->type != (DPCTL_RELOAD | DPCTL_REPLY))
		return;
	dpctl_reload_parse(p, &v);
	need((const uint8_t *)v.msg >= p && (const uint8_t *)v.msg < p + h->len, "message inside");
	need((const uint8_t *)v.msg + strlen(v.msg) < p + h->len, "message NUL inside");
	for (uint32_t i = 0; i < v.r.nlcores; i++)
		(void)dpctl_reload_lcore(&v, i);
}

/* tvsd's side: what arrives is copied into a small buffer piece by piece. */
static void
fuzz_client_stream(const uint8_t *d, size_t n)
{
	uint8_t in[IN_MAX];
	size_t have = 0, off = 0, step = n > 0 ? (size_t)(d[0] % IN_MAX) + 1 : 1;
	struct dpctl_hdr h;
	long used;

	while (off < n) {
		size_t k = n - off < step ? n - off : step;

		if (k > sizeof(in) - have)
			k = sizeof(in) - have;
		memcpy(in + have, d + off, k);
		have += k;
		off += k;
		while ((used = dpctl_frame(in, have, false, &h)) > 0) {
			need((size_t)used <= have, "frame within the input");
			check_message(in, used, false, &h);
			memmove(in, in + used, have - (size_t)used);
			have -= (size_t)used;
		}
		if (used < 0)
			return;	/* tvsd closes the client */
		need(have < sizeof(in), "a request always fits the input buffer");
	}
}

/* tvsctl's side: the whole reply stream is there. */
static void
fuzz_reply_stream(const uint8_t *d, size_t n)
{
	struct dpctl_hdr h;
	size_t off = 0;
	long used;

	while ((used = dpctl_frame(d + off, n - off, true, &h)) > 0) {
		need((size_t)used <= n - off, "frame within the input");
		check_message(d + off, used, true, &h);
		off += (size_t)used;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	fuzz_client_stream(d, n);
	fuzz_reply_stream(d, n);
	return 0;
}
