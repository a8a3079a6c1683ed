/*
 * The TFTP transfer engine of one worker lcore: read-only RFC 1350 server
 * with RFC 2347 options (2348 blksize, 2349 tsize/timeout, 7440 windowsize).
 *
 * It is DPDK-free on purpose: it sees UDP payloads, not mbufs, so the same
 * state machine runs in the unit tests and in tvsd. The caller (the lcore
 * loop) owns the packets, the clock and the file lookup; the engine owns
 * the transfer table, the retransmission timers and the counters.
 *
 * Ports: every transfer gets its own server port (its TID). An engine owns
 * the ports [port_base, port_base + max_transfers): the slot index is
 * port - port_base, so the lcore loop can tell from the destination port
 * alone which lcore owns a packet and hand it over a ring.
 */
#ifndef DP_TFTP_H
#define DP_TFTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TFTP_PORT 69
#define TFTP_DEFAULT_BLKSIZE 512
#define TFTP_MIN_BLKSIZE 8
#define TFTP_MAX_BLKSIZE 65464
#define TFTP_MAX_WINDOWSIZE 65535
#define TFTP_MAX_REQUEST 512		/* RFC 2347: largest RRQ/WRQ we parse */
#define TFTP_NAME_MAX 255		/* longest file name accepted */
#define TFTP_DEFAULT_TIMEOUT_MS 1000	/* used when limits.timeout_ms is 0 */
#define TFTP_DEFAULT_RETRIES 5		/* used when limits.retries is 0 */
#define TFTP_DEFAULT_MAX_TIMEOUT_S 5	/* used when limits.max_timeout_s is 0 */
#define TFTP_DEFAULT_MAX_LIFE_S 300	/* used when limits.max_life_s is 0 */

enum tftp_opcode {
	TFTP_RRQ = 1, TFTP_WRQ = 2, TFTP_DATA = 3, TFTP_ACK = 4, TFTP_ERROR = 5, TFTP_OACK = 6,
};

enum tftp_errcode {
	TFTP_ERR_UNDEFINED = 0, TFTP_ERR_NOT_FOUND = 1, TFTP_ERR_ACCESS = 2,
	TFTP_ERR_DISK_FULL = 3, TFTP_ERR_ILLEGAL_OP = 4, TFTP_ERR_UNKNOWN_TID = 5,
	TFTP_ERR_EXISTS = 6, TFTP_ERR_NO_USER = 7, TFTP_ERR_OPTIONS = 8,
};

/*
 * A zero field means its default: max_blksize TFTP_DEFAULT_BLKSIZE (values
 * outside 8..65464 are clamped), max_windowsize 1, timeout_ms
 * TFTP_DEFAULT_TIMEOUT_MS, retries TFTP_DEFAULT_RETRIES, max_timeout_s
 * TFTP_DEFAULT_MAX_TIMEOUT_S, max_life_s TFTP_DEFAULT_MAX_LIFE_S,
 * max_per_source no bound. max_transfers must
 * be >= 1 and [port_base, port_base + max_transfers) must fit in 1..65535
 * without holding port 69, or tftp_engine_create fails with EINVAL.
 *
 * Bounds on one client (issue 10): a client address holds at most
 * max_per_source transfers of this engine at once; one more RRQ gets
 * ERROR 0 "too many transfers from your address" (err_per_source). An RFC
 * 2349 timeout above max_timeout_s is not acknowledged: RFC 2349 lets the
 * server only accept the client's value or leave the option out of the
 * OACK, never change it, so the option is left out and the transfer runs
 * on timeout_ms (timeout_ignored). A transfer that makes no progress is
 * therefore freed after (retries + 1) x max(timeout_ms, max_timeout_s)
 * whatever the client asked; one that makes progress at a crawl (blksize
 * 8, an ACK just before each timeout) ends with ERROR 0 "transfer time
 * limit reached" (err_expired) at its first ACK or timeout after
 * max_life_s.
 */
struct tftp_limits {
	uint16_t max_blksize;		/* also capped by the interface MTU */
	uint16_t max_windowsize;
	uint32_t timeout_ms;		/* default retransmission timeout */
	uint8_t retries;		/* then the transfer fails */
	uint8_t max_timeout_s;		/* largest RFC 2349 timeout honoured, 1..255 */
	uint32_t max_life_s;		/* a transfer's whole life */
	uint32_t max_transfers;		/* slots of this engine */
	uint32_t max_per_source;	/* transfers of one client address; 0: no bound */
	uint64_t seed;			/* of the per-source table's hash (any value) */
	uint16_t port_base;
};

/* Where a packet came from / goes to; host byte order. */
struct tftp_peer {
	uint32_t ip;
	uint16_t port;
};

/* A file as the lookup callback lends it: the bytes stay valid until
 * release(ref) is called, so a transfer keeps the generation it started
 * with however many publication swaps happen meanwhile. */
struct tftp_file {
	const uint8_t *data;
	size_t len;
	uint64_t generation;
	void *ref;
};

struct tftp_ops {
	/* 0 and *f filled, or a tftp_errcode (NOT_FOUND, ACCESS) */
	int (*lookup)(void *ctx, const char *name, struct tftp_file *f);
	void (*release)(void *ctx, void *ref);
	/* One UDP datagram from src_port to peer: hdr then body (body may be a
	 * slice of the file, to be copied or attached by the caller).
	 * hdr is engine scratch, valid only during the call: copy it. It is
	 * 4 bytes for an octet DATA but can be up to 4 + blksize bytes for a
	 * netascii DATA (converted bytes, body NULL) and ~100 for an OACK or
	 * ERROR. body, when not NULL, points into the file's bytes and stays
	 * valid until release(ref). Callbacks must not re-enter the engine. */
	void (*send)(void *ctx, const struct tftp_peer *to, uint16_t src_port,
		const uint8_t *hdr, size_t hdrlen, const uint8_t *body, size_t bodylen);
	/* optional: a transfer finished (ok or not), for fetch tracking;
	 * name is the name the client asked for (ITLSEP<MAC>.tlv, not the
	 * mapped ITLFile.tlv). Called before release. */
	void (*done)(void *ctx, const char *name, const struct tftp_peer *peer,
		uint64_t generation, bool ok);
	/* optional: whether peer's datagrams to server port `port` will
	 * arrive where this engine runs (tvsd: the NIC's RSS queue of this
	 * lcore), so they need no hand-off. A new transfer then takes, of
	 * the first TFTP_PORT_SCAN free ports in reuse order, the first one
	 * accepted, or the first of all when none is (as without the hook). */
	bool (*port_local)(void *ctx, const struct tftp_peer *peer, uint16_t port);
};

/* How many free ports a new transfer offers to ops.port_local at most. */
#define TFTP_PORT_SCAN 64

/*
 * Counters, written only by the engine's lcore. Every ERROR datagram the
 * engine sends is counted in exactly one err_* counter; ERROR packets are
 * never answered. Always started == completed + failed + tftp_active().
 */
struct tftp_stats {
	uint64_t rrq;			/* RRQ datagrams received on port 69 */
	uint64_t started;		/* transfers that got a slot and a file */
	uint64_t completed;		/* last block acknowledged */
	uint64_t failed;		/* retries exhausted, peer ERROR */
	uint64_t retransmits;		/* DATA/OACK datagrams sent again */
	uint64_t data_pkts;		/* DATA datagrams sent, retransmits included */
	uint64_t bytes;			/* payload bytes of those DATA datagrams */
	uint64_t err_not_found;		/* ERROR 1 sent */
	uint64_t err_access;		/* ERROR 2 sent: WRQ, '..', leading '/' */
	uint64_t err_illegal;		/* ERROR 4 sent: bad opcode, malformed request */
	uint64_t err_unknown_tid;	/* ERROR 5 sent */
	uint64_t err_options;		/* ERROR 8 sent */
	uint64_t err_table_full;	/* ERROR 0 "server busy" sent */
	uint64_t dup_acks;		/* ACKs of blocks already acknowledged */
	uint64_t malformed;		/* datagrams dropped without an answer */
	uint64_t port_unsteered;	/* ops.port_local accepted none of the ports
					 * scanned: this transfer's ACKs will
					 * mostly be handed over from other lcores */
	uint64_t err_per_source;	/* ERROR 0 "too many transfers from your
					 * address": limits.max_per_source reached */
	uint64_t timeout_ignored;	/* timeout options above limits.max_timeout_s,
					 * left out of the OACK */
	uint64_t err_expired;		/* ERROR 0 "transfer time limit reached":
					 * older than limits.max_life_s */
};

struct tftp_engine;

struct tftp_engine *tftp_engine_create(const struct tftp_limits *lim,
	const struct tftp_ops *ops, void *ctx);
void tftp_engine_free(struct tftp_engine *e);	/* releases live transfers */

/* A datagram for port 69 or for one of this engine's ports; now in ns.
 * now_ns (here and in tftp_tick) must never go backwards: the timer FIFOs
 * rely on it. Answers (ERROR to a request) leave from dst_port. */
void tftp_input(struct tftp_engine *e, uint64_t now_ns, const struct tftp_peer *from,
	uint16_t dst_port, const uint8_t *payload, size_t len);
/* Retransmissions and timeouts; call often (every loop turn is fine: it
 * returns at once when nothing is due). */
void tftp_tick(struct tftp_engine *e, uint64_t now_ns);
unsigned tftp_active(const struct tftp_engine *e);
const struct tftp_stats *tftp_stats(const struct tftp_engine *e);
bool tftp_owns_port(const struct tftp_engine *e, uint16_t port);

/*
 * Names phones ask for that are not files of the publication:
 * ITLSEP<MAC>.tlv and CTLSEP<MAC>.tlv (12 hex digits) map to ITLFile.tlv /
 * CTLFile.tlv (FORMATS §8.7); out receives the file name to look up and
 * mac (if not NULL) the 12 upper-case hex digits. Returns true if mapped.
 */
bool tftp_map_device_name(const char *name, char *out, size_t outsz, char mac[13]);

#endif
