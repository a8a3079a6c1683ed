/*
 * The TCP server engine of one worker lcore: a purpose-built stack for the
 * short request/response connections of TVS (TLS on TCP 2445), in the
 * spirit of Knot DNS's TCP over XDP.
 *
 * Like the TFTP engine it is DPDK-free: it sees TCP segments (header and
 * payload bytes) and IPv4 addresses, never mbufs. The caller (the lcore
 * loop) owns the packets and the clock and fills the IPv4 header; the upper
 * layer (the TLS/TVS session) sees an in-order byte stream through
 * callbacks and answers with tcp_send(). Everything is allocated in
 * tcp_engine_create; input, output and timers never allocate.
 *
 * What it implements:
 *   - Passive open only, IPv4, one listening port. Handshakes are stateless
 *     SYN cookies (RFC 4987): a connection is allocated only when the ACK
 *     that completes the handshake carries a valid cookie. Our ISN is the
 *     cookie: 2 bits of a time counter (TCP_COOKIE_PERIOD_NS, ~69 s), 3 bits
 *     of MSS (the peer's, rounded down to one of 8 table values), 4 bits of
 *     window scale, and a 23-bit keyed SipHash-2-4 MAC over those, the
 *     4-tuple and the client's ISN. A cookie is good for the current and
 *     the previous period (69..137 s). A bad one is answered with RST (RFC
 *     9293 LISTEN rule: an ACK to a listener gets <SEQ=SEG.ACK><CTL=RST>),
 *     counted. The first segment after the SYN must start at the client's
 *     ISN + 1, so a lost handshake ACK is fine (the request completes the
 *     handshake) but not a lost ACK and a lost first data segment.
 *     A cookie outlives its connection, so a late copy of the handshake
 *     ACK or of the first data segment (a network duplicate, or with
 *     several workers the copy handed over a ring after the owner already
 *     closed the connection) would re-create it: every ended connection is
 *     remembered (4-tuple and both ISNs, in a bounded set-associative
 *     table allocated at create, for two cookie periods) and such a copy
 *     is answered with RST and counted in cookies_bad.
 *   - Options: MSS both ways. Window scale: if the SYN offers it we answer
 *     with shift 0, so the peer's windows are scaled by its shift (and
 *     honoured as such) while ours are plain 16-bit (our receive window is
 *     at most 65535 bytes, more than a TVS request needs). SACK-permitted,
 *     timestamps, ECN and TCP Fast Open are not echoed, hence never used by
 *     the peer (RFC 2018, 7323, 3168, 7413 all need the server to agree).
 *   - A bounded connection table keyed by the 4-tuple (chained hash over a
 *     preallocated slot array). When it is full, the oldest TIME_WAIT slot
 *     is recycled; if there is none the new connection is refused with RST
 *     and counted in table_full.
 *   - Receive: window and MSS honoured, in-order delivery to recv(); a
 *     segment ahead of rcv_nxt is kept in a per-connection reorder buffer
 *     (a ring the size of the receive window, holding at most
 *     TCP_MAX_OOO_RANGES disjoint ranges; a segment that would need one
 *     more range is dropped and re-ACKed); overlaps and duplicates are
 *     trimmed. Every segment that carries data or is out of order is ACKed
 *     at once, unless our own output (a response sent from inside recv())
 *     carries the ACK: request/response needs no delayed-ACK timer.
 *   - Send: tcp_send() copies into a per-connection ring (snd_buf bytes);
 *     segments of at most the peer's MSS, within the peer's window and the
 *     congestion window (initial window 10 segments, RFC 6928; slow start
 *     and a halving on loss, RFC 5681). Retransmission timer per RFC 6298
 *     (SRTT/RTTVAR, initial RTO 1 s, minimum 200 ms by default: a LAN
 *     appliance, like Linux's 200 ms floor; exponential backoff; Karn's
 *     rule: no RTT sample from a retransmitted segment). After `retries`
 *     timeouts without progress the connection is aborted with RST.
 *     Fast retransmit on the third duplicate ACK. A zero window is probed
 *     (persist timer, backed off like the RTO) with a one-byte-old ACK that
 *     makes the peer repeat its window.
 *   - Close: peer FIN -> eof(); tcp_close() -> our FIN once the send ring
 *     is drained. TIME_WAIT: the client is expected to close first (the
 *     phone reads the response, then closes), and then we never hold
 *     TIME_WAIT. If we close first we keep a short TIME_WAIT (time_wait_ms,
 *     default 2 s, not 2 MSL) only to re-ACK a retransmitted FIN; it is the
 *     first slot recycled under table pressure and a new SYN from the same
 *     4-tuple ends it. Old duplicates crossing incarnations are unlikely:
 *     a new incarnation needs a fresh cookie handshake and a new ISN.
 *   - RST both ways, validated per RFC 5961: in any state a RST frees the
 *     connection only if its sequence number is exactly rcv_nxt; in window
 *     but not exact draws a challenge ACK (at most one per connection per
 *     TCP_CHALLENGE_GAP_MS); a SYN on a synchronised connection draws a
 *     challenge ACK too. ACKs more than a window behind are dropped. The
 *     ACK owed to a segment outside the window is rate limited the same
 *     way (no ACK storm between two confused stacks). We never resend a
 *     SYN-ACK (we keep no state to do it): the client resends its SYN.
 *   - Reaping: idle_ms without progress (data received or acknowledged)
 *     in ESTABLISHED/CLOSE_WAIT, fin_ms in the closing states, then RST and
 *     free. Half-open handshakes hold nothing to reap (cookies).
 *   - Timers: a hashed timing wheel of TCP_WHEEL_SLOTS ~1 ms slots, one
 *     entry per connection; tcp_tick() returns after one comparison when no
 *     slot boundary has passed.
 *
 * What it leaves out, and why: active open (we are only a server); IPv6
 * (phones reach TVS over IPv4 here); urgent data (URG is ignored, the bytes
 * are plain data); SACK and timestamps (responses fit the initial window;
 * PAWS is for long fast connections); our own window scaling (no need);
 * delayed ACKs and Nagle (answers are sent whole); sender-side silly window
 * avoidance (the peer's receiver-side SWS avoidance suffices for a few KB);
 * path MTU discovery (the MSS option is the bound; the caller clamps mss to
 * its MTU); keepalives (the idle timeout reaps instead); checksum
 * verification of input (the caller or the NIC does it, tcp_checksum()
 * helps). IP options, fragments and ICMP belong to the caller.
 */
#ifndef DP_TCP_H
#define DP_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCP_TVS_PORT 2445
#define TCP_HDR_MIN 20			/* header without options */
#define TCP_HDR_MAX 60			/* largest header we accept or build */
#define TCP_MAX_OOO_RANGES 16		/* ceiling of limits.ooo_ranges */
#define TCP_WHEEL_SLOTS 1024		/* timer wheel: slots of 2^20 ns */
#define TCP_CHALLENGE_GAP_MS 10		/* challenge and out-of-window ACK spacing */
#define TCP_COOKIE_PERIOD_NS (1ull << 36)	/* ~68.7 s per cookie counter */

/* Header flags (names distinct from <linux/tcp.h>'s TCP_FLAG_*). */
#define TCPH_FIN 0x01
#define TCPH_SYN 0x02
#define TCPH_RST 0x04
#define TCPH_PSH 0x08
#define TCPH_ACK 0x10
#define TCPH_URG 0x20

/*
 * A zero field means its default (in brackets). Values are clamped as
 * said; tcp_engine_create fails with EINVAL if max_conns is 0 or port is 0.
 *
 * Per-source bounds (issue 10). SYN cookies keep a SYN flood out of the
 * table, but every completed handshake takes a slot, so one address that
 * completes a thousand handshakes and then says nothing would hold them
 * all until the idle timeout. An open connection (any state but TIME_WAIT,
 * which is recycled under pressure anyway) counts against its peer
 * address; it is "unready" from its handshake until the upper layer calls
 * tcp_conn_ready (for the TVS: until its TLS handshake is done). A peer
 * address at max_per_source open or max_unready_per_source unready
 * connections gets RST for a new SYN (no SYN-ACK) and for the ACK that
 * would complete a handshake (its SYN may have come before the bound was
 * reached), counted in refused_per_source and refused_unready_per_source.
 */
struct tcp_limits {
	uint16_t port;			/* listening port [required] */
	uint32_t max_conns;		/* connection slots [required] */
	uint16_t mss;			/* ours: advertised, and the largest we send [1460]; 88..1460 */
	uint16_t rcv_wnd;		/* receive window and reorder ring [8192]; >= mss */
	uint32_t snd_buf;		/* send ring per connection [16384]; rounded up to 2^n, <= 1 MiB */
	uint8_t ooo_ranges;		/* reorder ranges per connection [4]; <= TCP_MAX_OOO_RANGES */
	uint8_t retries;		/* RTO expiries without progress, then abort [6] */
	uint32_t rto_init_ms;		/* [1000] */
	uint32_t rto_min_ms;		/* [200] */
	uint32_t rto_max_ms;		/* [16000] */
	uint32_t idle_ms;		/* ESTABLISHED/CLOSE_WAIT without progress [30000] */
	uint32_t fin_ms;		/* FIN_WAIT_1/2, CLOSING, LAST_ACK in all [10000] */
	uint32_t time_wait_ms;		/* [2000] */
	uint32_t max_per_source;	/* open connections of one peer address [no bound] */
	uint32_t max_unready_per_source;	/* of which not yet tcp_conn_ready [no bound] */
	bool checksum;			/* fill the TCP checksum of segments we build */
};

/* One connection as seen from here; host byte order. */
struct tcp_tuple {
	uint32_t peer_ip;
	uint32_t local_ip;
	uint16_t peer_port;
	uint16_t local_port;
};

enum tcp_end {
	TCP_END_CLOSED,		/* orderly: both FINs exchanged */
	TCP_END_RESET,		/* the peer sent a valid RST */
	TCP_END_TIMEOUT,	/* idle, retries exhausted, or a closing state lasted too long */
	TCP_END_ABORT,		/* the upper layer called tcp_abort() */
};

/*
 * Callbacks. A connection is named by its slot index, 0 .. max_conns - 1;
 * the upper layer may keep its session state in an array of that size.
 * From inside recv/eof/accept/writable the upper layer may call tcp_send,
 * tcp_close and tcp_abort on any connection: on the connection of the
 * callback they take effect when the callback returns (tcp_send still
 * reports at once how much it took). Nothing else may re-enter the engine.
 */
struct tcp_ops {
	/*
	 * Emit one segment from t->local to t->peer: hdr (TCP header with
	 * options; checksum filled only if limits.checksum) then len payload
	 * bytes. Both point into engine memory valid only during the call:
	 * copy them. The caller builds the IPv4 header (protocol 6).
	 */
	void (*send)(void *ctx, const struct tcp_tuple *t, const uint8_t *hdr, size_t hdrlen,
		const uint8_t *payload, size_t len);
	/* optional: a handshake completed; nonzero refuses it (RST, counted) */
	int (*accept)(void *ctx, uint32_t conn, const struct tcp_tuple *t);
	/* in-order bytes; the upper layer consumes (copies) them all */
	void (*recv)(void *ctx, uint32_t conn, const uint8_t *data, size_t len);
	/* optional: the peer sent FIN after all its data */
	void (*eof)(void *ctx, uint32_t conn);
	/* optional: tcp_send() was short and the send ring has room again */
	void (*writable)(void *ctx, uint32_t conn, size_t room);
	/*
	 * Exactly once per accepted connection, when the upper layer must
	 * forget it: freed, or entered TIME_WAIT (orderly). The slot may be
	 * reused by a later handshake. Called also after tcp_abort().
	 */
	void (*closed)(void *ctx, uint32_t conn, enum tcp_end why);
};

/*
 * Counters, written only by the engine's lcore. The books:
 * established == closed + reset_rcvd + timeouts + aborts + tcp_active().
 */
struct tcp_stats {
	uint64_t segs_in;		/* segments given to tcp_input */
	uint64_t segs_out;		/* segments emitted, RSTs included */
	uint64_t bytes_in;		/* payload bytes delivered to recv() */
	uint64_t bytes_out;		/* payload bytes sent, retransmits included */
	uint64_t syn_rcvd;		/* SYNs for no connection */
	uint64_t cookies_sent;		/* SYN-ACKs */
	uint64_t cookies_ok;		/* handshakes completed by a valid cookie */
	uint64_t cookies_bad;		/* ACKs for no connection with a bad or stale cookie,
					 * or the cookie of a connection that already ended */
	uint64_t established;		/* connections given a slot and accepted */
	uint64_t refused;		/* accept() said no */
	uint64_t table_full;		/* handshakes refused for want of a slot */
	uint64_t tw_recycled;		/* TIME_WAIT slots taken for a new connection */
	uint64_t closed;		/* orderly ends (slot freed) */
	uint64_t reset_rcvd;		/* connections ended by a valid RST */
	uint64_t rst_ignored;		/* RSTs out of window or for no connection */
	uint64_t timeouts;		/* connections reaped by a timer */
	uint64_t aborts;		/* connections ended by tcp_abort() */
	uint64_t reset_sent;		/* RSTs we emitted */
	uint64_t challenge_acks;	/* RFC 5961 */
	uint64_t retransmits;		/* data/FIN segments sent again */
	uint64_t fast_retransmits;	/* of which on the third duplicate ACK */
	uint64_t rto_expired;		/* retransmission timer expiries */
	uint64_t probes;		/* zero-window probes */
	uint64_t ooo_queued;		/* segments kept in a reorder buffer */
	uint64_t ooo_dropped;		/* out-of-order segments dropped (ranges full) */
	uint64_t dup_segments;		/* segments or parts already received */
	uint64_t out_of_window;		/* segments beyond the receive window */
	uint64_t bad_acks;		/* ACKs of data never sent, or too old */
	uint64_t bad_segments;		/* malformed header or options, bad flags, wrong port */
	uint64_t refused_per_source;	/* SYNs and handshakes refused: the peer address
					 * had limits.max_per_source connections open */
	uint64_t refused_unready_per_source;	/* ... or max_unready_per_source
					 * connections not yet tcp_conn_ready */
};

struct tcp_engine;

/*
 * key: 16 secret bytes for the SYN cookie MAC and the table hash. Give
 * every lcore the same key (RSS keeps a 4-tuple on one lcore anyway, but a
 * shared key keeps cookies valid across a queue remap). NULL + errno
 * (EINVAL, ENOMEM) on failure.
 */
struct tcp_engine *tcp_engine_create(const struct tcp_limits *lim, const uint8_t key[16],
	const struct tcp_ops *ops, void *ctx);
/* Frees everything; no callback is called. */
void tcp_engine_free(struct tcp_engine *e);

/*
 * One segment for limits.port: seg is the TCP header and payload (len =
 * IPv4 total length - IPv4 header length), src/dst the IPv4 addresses,
 * host order. Checksum already verified by the caller. now_ns (here and in
 * tcp_tick) must never go backwards.
 */
void tcp_input(struct tcp_engine *e, uint64_t now_ns, uint32_t src_ip, uint32_t dst_ip,
	const uint8_t *seg, size_t len);
/* Timers; call every loop turn: O(1) when no 2^20 ns slot has passed. */
void tcp_tick(struct tcp_engine *e, uint64_t now_ns);

/*
 * Queues up to len bytes on conn; returns how many were taken (0 if the
 * ring is full, -1 if conn is not open for sending: unknown, closed by
 * tcp_close, or reset). Sending uses the clock of the last tcp_input or
 * tcp_tick. A short count arms the writable() callback.
 */
long tcp_send(struct tcp_engine *e, uint32_t conn, const void *data, size_t len);
/* Our FIN after the queued bytes; 0, or -1 if conn is not open. */
int tcp_close(struct tcp_engine *e, uint32_t conn);
/* RST now, slot freed, closed(TCP_END_ABORT); 0, or -1 if conn is not open. */
int tcp_abort(struct tcp_engine *e, uint32_t conn);

/*
 * The upper layer's own handshake on conn is done (TLS established): the
 * connection stops counting against max_unready_per_source. Idempotent;
 * may be called from any callback.
 */
void tcp_conn_ready(struct tcp_engine *e, uint32_t conn);

/* The 4-tuple of an open connection, or NULL. */
const struct tcp_tuple *tcp_conn_tuple(const struct tcp_engine *e, uint32_t conn);
/*
 * The slot holding this 4-tuple (TIME_WAIT and the closing states
 * included), or -1: for the send() callback, which names a connection by
 * its tuple only, so that the caller can find per-slot link-layer data.
 */
long tcp_conn_find(const struct tcp_engine *e, const struct tcp_tuple *t);
/* What tcp_send would take now on conn (0 if full or not open for sending). */
size_t tcp_conn_room(const struct tcp_engine *e, uint32_t conn);
/* Bytes queued and not yet acknowledged on conn (0 if unknown). */
size_t tcp_conn_unacked(const struct tcp_engine *e, uint32_t conn);
/* Slots in use, TIME_WAIT included. */
unsigned tcp_active(const struct tcp_engine *e);
const struct tcp_stats *tcp_stats(const struct tcp_engine *e);

/*
 * Walks every structure (hash chains, timer wheel, free list, sequence
 * variables) and returns 0, or -1 with a message in why. For tests and
 * debug builds: O(max_conns + slots).
 */
int tcp_engine_check(const struct tcp_engine *e, char *why, size_t whylen);

/*
 * The Internet checksum of a TCP segment with its IPv4 pseudo-header
 * (addresses host order): store the result big-endian at offset 16 with
 * that field zeroed; over a segment carrying its checksum it yields 0.
 */
uint16_t tcp_checksum(uint32_t src_ip, uint32_t dst_ip, const uint8_t *hdr, size_t hdrlen,
	const uint8_t *payload, size_t len);

/* SipHash-2-4 (Aumasson and Bernstein), exposed for its test vectors. */
uint64_t tcp_siphash24(const uint8_t key[16], const void *msg, size_t len);

#endif
