/*
 * The protocol of tvsd's control socket ([tvsd] control-socket, an AF_UNIX
 * stream socket, mode 0660), OpenBSD imsg style like control/cdproto.h.
 * Every message is a fixed header, then `len` payload bytes:
 *
 *   struct dpctl_hdr { u32 magic; u32 type; u32 len; u32 id; }  host order
 *
 * (a UNIX socket never leaves the host). magic is DPCTL_MAGIC, which also
 * carries the protocol version. id is chosen by the client and echoed in
 * the reply, so a client can tell an answer from a stale one. Each type has
 * one payload shape; the receiver checks the header and the exact shape
 * (dpctl_check_hdr, dpctl_check) before it uses a byte. tvsd closes a
 * client that sends anything else and counts it (status: control.bad).
 *
 *   request (client)  payload  reply (tvsd), type = request | DPCTL_REPLY
 *   DPCTL_HELP        empty    JSON {"ok":true,"commands":{"<name>":"<usage>",..}}
 *   DPCTL_STATUS      empty    JSON: process, workers, ports, generation,
 *                              control socket counters (dp_ctl.c)
 *   DPCTL_STATS       empty    JSON {"ok":true,"stats":{"total":{..},"lcores":{..}}}
 *   DPCTL_ROLLOUT     empty    JSON: phones and the ITL generation each fetched
 *   DPCTL_MEMORY      empty    JSON: jemalloc statistics, DPDK hugepage heaps
 *   DPCTL_RELOAD      empty    struct dpctl_reload, then nlcores u32 lcore
 *                              ids, then a NUL-terminated message
 *
 * A JSON reply is one document, '{' first, then a NUL that ends the
 * payload (no NUL before it), at most DPCTL_JSON_MAX bytes. The RELOAD
 * reply comes only once every worker lcore serves `generation` (after
 * the RCU grace period); ok 0 is a refused publication (the message says
 * why; generation is the one still served). DPCTL_ERROR (NUL-terminated
 * message) answers a well-formed request tvsd could not carry out (out of
 * memory). Requests on one connection are answered in order; the client
 * may keep the connection for more.
 *
 * tvsd's side (dp_ctl.c) never blocks on a client: replies are queued and
 * sent as the socket accepts them. A client whose unsent replies would
 * pass DPCTL_OUT_MAX is closed and counted (one reply into an empty queue
 * always fits: a large rollout table still goes out), so is one idle for
 * [tvsd] control-idle-ms (no request, no reply byte taken), and at most
 * DPCTL_CLIENTS are served at a time (more are closed at once, counted).
 */
#ifndef DP_DPCTL_PROTO_H
#define DP_DPCTL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DPCTL_MAGIC 0x31435044u		/* "DPC1" in little-endian memory: version 1 */

enum dpctl_type {
	DPCTL_HELP = 1,
	DPCTL_STATUS,
	DPCTL_STATS,
	DPCTL_RELOAD,
	DPCTL_ROLLOUT,
	DPCTL_MEMORY,
	DPCTL_REQ_MAX
};

#define DPCTL_REPLY 0x80000000u
#define DPCTL_ERROR (DPCTL_REPLY | 0xffu)

#define DPCTL_JSON_MAX (16u << 20)	/* rollout: 64k phones, ~60 bytes each */
#define DPCTL_MSG_MAX 1024		/* reload and error messages, NUL included */
#define DPCTL_LCORES_MAX 1024
#define DPCTL_CLIENTS 16
#define DPCTL_OUT_MAX (1u << 20)	/* unsent replies per client */

struct dpctl_hdr {
	uint32_t magic;
	uint32_t type;
	uint32_t len;
	uint32_t id;
};

struct dpctl_reload {
	uint64_t generation;	/* served by every lcore listed */
	uint32_t ok;		/* 1: the new publication; 0: refused */
	uint32_t nlcores;	/* u32 lcore ids that follow */
};

/* The command word of a request type ("status"), or NULL; and back (0: none). */
const char *dpctl_name(uint32_t type);
uint32_t dpctl_type_of(const char *name);

/* True when h can start a valid message from that side (from_tvsd: a
 * reply): magic, a type that side sends, a length in its range. */
bool dpctl_check_hdr(const struct dpctl_hdr *h, bool from_tvsd);

/* True when the payload has the exact shape of its type (header checked). */
bool dpctl_check(uint32_t type, const uint8_t *p, size_t len);

/*
 * Framing of a byte stream: 0 when buf[0..n) does not hold a whole message
 * yet, the message's size (header + payload) when it does and it is valid,
 * -1 when the header or the payload is invalid (close the connection).
 */
long dpctl_frame(const uint8_t *buf, size_t n, bool from_tvsd, struct dpctl_hdr *h);

/* A checked RELOAD reply taken apart; lcores points into p. */
struct dpctl_reload_view {
	struct dpctl_reload r;
	const uint8_t *lcores;	/* nlcores u32, unaligned */
	const char *msg;
};
void dpctl_reload_parse(const uint8_t *p, struct dpctl_reload_view *v);
uint32_t dpctl_reload_lcore(const struct dpctl_reload_view *v, uint32_t i);

#endif
