/*
 * The Trust Verification Service protocol (FORMATS §3, decisions §8.9-8.11):
 * what a phone sends over TLS to TCP 2445 and what we answer.
 *
 * A message is a 10-byte header followed by an element area:
 *
 *   0     0x57 discriminator
 *   1     version 1
 *   2     type: 1 CERT_VERIFICATION request, 2 its response,
 *               3 QUERY_CERT request, 4 its response
 *   3     reserved (0 from phones; we answer 0)
 *   4..7  u32 request id, echoed in the response
 *   8..9  u16 length of the element area
 *
 * and each element is tag u8 | length u16 | value, all big-endian. Unlike
 * CTL/ITL files there is no one-byte padding tag here, so this module has
 * its own element reader instead of tlv.h's.
 *
 * Everything here works on caller buffers so that the DPDK TCP/TLS engine
 * can run it on its workers: parsing returns views into the input, builders
 * write into a caller-sized output, and neither allocates. tvs_answer adds
 * only what a lookup needs: OpenSSL's SHA-256 of the certificate and
 * trust_issuer_serial_key(), both of which allocate briefly inside. The stream helpers
 * (tvs_frame, tvs_handle) take the bytes received so far on a connection
 * and say how many more are needed, so a peer that trickles one byte per
 * TLS record is served like any other.
 */
#ifndef TRUST_TVS_H
#define TRUST_TVS_H

#include "trust.h"

#define TVS_PORT		2445
#define TVS_DISCRIMINATOR	0x57
#define TVS_VERSION		1
#define TVS_HDR_LEN		10
#define TVS_MSG_MAX		(TVS_HDR_LEN + 65535)
#define TVS_TTL_DEFAULT		86400u
#define TVS_ROLES_MAX		16

enum tvs_type {
	TVS_CERT_VERIFY_REQ = 1,
	TVS_CERT_VERIFY_RES = 2,
	TVS_QUERY_CERT_REQ = 3,
	TVS_QUERY_CERT_RES = 4,
};

enum tvs_tag {
	TVS_TAG_DEVICE = 1,	/* 0x01 then ASCII CP-<model>-SEP<MAC> */
	TVS_TAG_CERT = 2,	/* DER */
	TVS_TAG_SUBJECT = 3,	/* DN, NUL-terminated */
	TVS_TAG_NAME4 = 4,	/* issuer or serial, told apart by content */
	TVS_TAG_ISSUER = 5,	/* what we send (§8.9) */
	TVS_TAG_SERIAL = 6,
	TVS_TAG_STATUS = 7,
	TVS_TAG_ROLES = 8,
	TVS_TAG_TTL = 9,
};

enum tvs_status {
	TVS_STATUS_TRUSTED = 0,
	TVS_STATUS_UNTRUSTED = 1,
};

/* Device name marker byte that precedes the ASCII name in tag 1. */
#define TVS_DEVICE_MARKER 0x01

/*
 * A request, parsed or to be built. Views point into the message (parse)
 * or the caller's memory (build). Name views never include the trailing
 * NUL: parsing strips it, building adds it. device excludes the 0x01
 * marker the same way. A view with p == NULL is absent.
 */
struct tvs_request {
	uint8_t type;			/* TVS_CERT_VERIFY_REQ or _QUERY_CERT_REQ */
	uint8_t reserved;
	uint32_t id;
	struct trust_bytes device;
	struct trust_bytes cert;	/* verify: required */
	struct trust_bytes subject;	/* query: optional, checked if given */
	struct trust_bytes issuer;	/* query: required */
	struct trust_bytes serial;	/* query: required, raw bytes */
	size_t len;			/* parse: whole message, header included */
	unsigned nunknown;		/* parse: elements skipped leniently */
};

/* A response, parsed or to be built; status-only when not trusted. */
struct tvs_response {
	uint8_t type;			/* TVS_CERT_VERIFY_RES or _QUERY_CERT_RES */
	uint8_t reserved;
	uint32_t id;
	uint8_t status;
	struct trust_bytes roles;	/* one byte per role code */
	bool has_ttl;
	uint32_t ttl;
	struct trust_bytes cert;	/* query: the certificate, DER */
	size_t len;
	unsigned nunknown;
};

/*
 * Framing of a byte stream. Given the first len bytes received on a
 * connection (the start of a message), tvs_frame returns:
 *   TVS_FRAME_MORE  and *n = how many more bytes are needed at least,
 *   TVS_FRAME_DONE  and *n = length of the complete first message,
 *   TRUST_EFORMAT   when the bytes cannot start a TVS message (wrong
 *                   discriminator, version or type), as soon as the
 *                   offending byte has arrived.
 */
enum { TVS_FRAME_MORE = 0, TVS_FRAME_DONE = 1 };
int tvs_frame(const uint8_t *buf, size_t len, size_t *n, struct trust_err *err);

/* Parse one complete request (len = exactly its length, see tvs_frame).
 * Checks every length before reading; errors name the byte offset and tag. */
int tvs_request_parse(const uint8_t *buf, size_t len, struct tvs_request *rq,
	struct trust_err *err);
int tvs_response_parse(const uint8_t *buf, size_t len, struct tvs_response *rs,
	struct trust_err *err);

/* Write a message into out[0..outsz); *outlen is its length. Fail with
 * TRUST_ETOOBIG when it does not fit or an element passes 65,535 bytes. */
int tvs_request_build(const struct tvs_request *rq, uint8_t *out, size_t outsz,
	size_t *outlen, struct trust_err *err);
int tvs_response_build(const struct tvs_response *rs, uint8_t *out, size_t outsz,
	size_t *outlen, struct trust_err *err);

/* What a lookup knows about one certificate. */
struct tvs_entry {
	const uint8_t *der;
	size_t der_len;
	const uint8_t *roles;
	size_t nroles;
	uint32_t ttl;			/* 0: TVS_TTL_DEFAULT */
	const char *subject;		/* CUCM-style subject; NULL: taken from der */
	size_t subject_len;
};

/*
 * The server's certificate table, whatever it is made of. Each callback
 * returns 1 and fills *e when found, 0 when not; the views in *e must stay
 * valid until tvs_answer returns. sha256 is the digest of the DER;
 * issuer_serial is trust_issuer_serial_key() of the issuer and serial.
 */
struct tvs_lookup {
	int (*by_sha256)(void *ctx, const uint8_t sha256[32], struct tvs_entry *e);
	int (*by_issuer_serial)(void *ctx, const uint8_t key[32], struct tvs_entry *e);
	void *ctx;
};

/*
 * Answer one parsed request: CERT_VERIFICATION is trusted when the hash
 * lookup finds an entry with byte-identical DER; QUERY_CERT when the
 * issuer/serial lookup finds one whose subject equals the request's subject
 * (if the request names one). Anything else gets status 1. Returns the
 * status answered (>= 0) or a negative TRUST_E* code when out is too small.
 */
int tvs_answer(const struct tvs_request *rq, const struct tvs_lookup *lk,
	uint8_t *out, size_t outsz, size_t *outlen, struct trust_err *err);

/*
 * One step of a server connection: frame, parse and answer the first
 * message in in[0..len). Returns
 *   TVS_FRAME_MORE  (*consumed = 0, *outlen = 0): wait for more bytes;
 *   TVS_FRAME_DONE  *consumed bytes were one request, out holds *outlen
 *                   bytes of answer; call again for the next request;
 *   TRUST_EFORMAT   malformed: close the connection.
 * *status (may be NULL) receives the status answered.
 */
int tvs_handle(const uint8_t *in, size_t len, const struct tvs_lookup *lk,
	size_t *consumed, uint8_t *out, size_t outsz, size_t *outlen,
	int *status, struct trust_err *err);

const char *tvs_type_name(unsigned type);	/* "CERT_VERIFICATION_REQ" ... */

#endif
