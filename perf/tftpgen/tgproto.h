/*
 * The client half of one TFTP read transfer (RFC 1350 + RFC 2347/2348/2349
 * options + RFC 7440 windowsize), as a phone does it: RRQ, optional OACK,
 * ACK 0, DATA/ACK until the short final block.
 *
 * DPDK-free on purpose: tftpgen (DPDK frames) and tftpload (kernel sockets)
 * drive the same state machine, so both load generators speak exactly the
 * same protocol and their numbers can be compared. The caller owns the
 * sockets or frames and the clock; the machine only sees UDP payloads and
 * writes the payload to send next into a buffer the caller lends it.
 */
#ifndef TG_PROTO_H
#define TG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_PORT 69
#define TG_RRQ_MAX 512		/* our RRQs are far smaller; servers cap at 512 */
#define TG_NAME_MAX 128

enum tg_op { TG_OP_RRQ = 1, TG_OP_DATA = 3, TG_OP_ACK = 4, TG_OP_ERROR = 5, TG_OP_OACK = 6 };

enum tg_state { TG_IDLE = 0, TG_WAIT_FIRST, TG_WAIT_DATA, TG_FINISHED };

/* What the caller must do after an input or a timeout. */
enum tg_action {
	TG_NONE = 0,	/* nothing to send */
	TG_SEND,	/* send out[0..outlen) to the server's TID */
	TG_DONE,	/* send out[0..outlen) (final ACK); transfer complete */
	TG_FAIL,	/* transfer failed; send out[] if outlen > 0 */
	TG_STALE,	/* not for this transfer (wrong TID, old block...) */
};

enum tg_fail {
	TG_FAIL_NONE = 0, TG_FAIL_TIMEOUT, TG_FAIL_ERROR_PKT, TG_FAIL_OPTION,
	TG_FAIL_PROTOCOL, TG_FAIL_VERIFY, TG_FAIL_SIZE,
};

/* Shared by all transfers of one generator; read-only while running. */
struct tg_params {
	uint16_t blksize;	/* 0: do not ask (RFC 1350 512-byte blocks) */
	uint16_t windowsize;	/* 0: do not ask (lock-step) */
	bool tsize;		/* ask "tsize 0" and check the size received */
	uint8_t retries;	/* retransmissions before failing */
	uint64_t timeout_ns;
	const uint8_t *verify;	/* if set, every block is compared with it */
	size_t verify_len;
	int64_t expect_size;	/* -1: any size */
};

struct tg_xfer {
	uint8_t state;
	uint8_t retries;
	uint8_t fail;		/* enum tg_fail, for the report */
	bool gap_acked;		/* one re-ACK per gap, not one per packet */
	uint16_t tid;		/* server's port, 0 until its first reply */
	uint16_t blksize;	/* negotiated */
	uint16_t windowsize;	/* negotiated */
	uint16_t in_window;	/* blocks taken since our last ACK */
	uint16_t error_code;	/* of a server ERROR */
	uint64_t next_block;	/* absolute number of the block we expect */
	uint64_t bytes;
	uint64_t tsize;		/* from the OACK, UINT64_MAX if none */
	uint64_t t_start;	/* RRQ sent (ns) */
	uint64_t t_last;	/* last progress or send (ns) */
	uint32_t retransmits;
	uint32_t dups;		/* duplicate or out-of-order DATA seen */
	char name[TG_NAME_MAX];
};

/* "ITLSEP" + 12 upper-case hex digits of mac + ".tlv" */
void tg_phone_name(char *out, size_t outsz, uint64_t mac);

/* Starts a transfer of name: writes the RRQ to out (>= TG_RRQ_MAX bytes).
 * Returns the RRQ length, or 0 if the name does not fit. */
size_t tg_start(struct tg_xfer *x, const struct tg_params *p, const char *name,
	uint64_t now_ns, uint8_t *out);

/* A datagram from the server (from_port is its source port). out must hold
 * TG_RRQ_MAX bytes; *outlen is set to the length to send. */
enum tg_action tg_input(struct tg_xfer *x, const struct tg_params *p, uint64_t now_ns,
	uint16_t from_port, const uint8_t *pl, size_t len, uint8_t *out, size_t *outlen);

/* Nothing heard for timeout_ns: retransmit (TG_SEND) or give up (TG_FAIL).
 * Returns TG_NONE if the timer has not expired. */
enum tg_action tg_timer(struct tg_xfer *x, const struct tg_params *p, uint64_t now_ns,
	uint8_t *out, size_t *outlen);

const char *tg_fail_name(enum tg_fail f);

/* Which options the RRQ carries: a tiny parser for the tests and the echo
 * peer (returns false on a malformed request). */
bool tg_parse_rrq(const uint8_t *pl, size_t len, char *name, size_t namesz,
	unsigned *blksize, unsigned *windowsize, bool *tsize);

#endif
