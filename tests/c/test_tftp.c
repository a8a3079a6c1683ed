/* The TFTP transfer engine of dataplane/tftp.c, driven by a scripted client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tftp.h"
#include "tftp_harness.h"

#define STEPS 10000000ul
#define SEC 1000000000ull

static const struct tftp_limits default_limits = {
	.max_blksize = 1428, .max_windowsize = 64, .timeout_ms = 1000, .retries = 5,
	.max_transfers = 16, .port_base = 20000,
};


static uint8_t *
make_file(size_t len, unsigned seed)
{
	uint8_t *d = malloc(len ? len : 1);

	for (size_t i = 0; i < len; i++)
		d[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
	return d;
}

/* The engine's books must balance after every scenario. */
static void
check_books(struct h *h, const char *what)
{
	const struct tftp_stats *st = tftp_stats(h->e);

	is_int(st->started, st->completed + st->failed + tftp_active(h->e),
		"%s: started == completed + failed + active", what);
	is_int(h->lookups_ok, h->releases + tftp_active(h->e),
		"%s: every lent file released once or still in use", what);
	is_int(h->bad_releases, 0, "%s: no release of an unknown or released file", what);
}

/* Fetches name and compares with want; returns the client for more checks. */
static void
fetch(struct h *h, struct h_client *c, const uint8_t *want, size_t wantlen, const char *what)
{
	h_client_run(h, c, STEPS);
	ok(c->finished && c->error < 0, "%s: client got the whole file", what);
	ok(c->len == wantlen && (wantlen == 0 || memcmp(c->buf, want, wantlen) == 0),
		"%s: %zu bytes received equal the file (%zu)", what, c->len, wantlen);
	is_int(tftp_active(h->e), 0, "%s: no transfer left", what);
}

static void
test_basic(void)
{
	struct h h;
	struct h_client c;
	uint8_t *d = make_file(1300, 1);
	const struct tftp_stats *st;

	h_init(&h, &default_limits);
	h_publish(&h, "SEP001122334455.cnf.xml", d, 1300);
	h_client_init(&c, 1, "SEP001122334455.cnf.xml", "octet", NULL);
	fetch(&h, &c, d, 1300, "default blksize");
	st = tftp_stats(h.e);
	is_int(c.got_oack, 0, "no option asked, no OACK");
	is_int(c.sport, default_limits.port_base, "first transfer uses the first port");
	is_int(st->data_pkts, 3, "1300 bytes = 512 + 512 + 276: three DATA");
	is_int(st->bytes, 1300, "bytes counted");
	is_int(st->retransmits, 0, "no retransmission");
	is_int(st->rrq, 1, "one RRQ");
	is_int(st->started, 1, "one started");
	is_int(st->completed, 1, "one completed");
	is_int(h.done_ok, 1, "done(ok) called once");
	is_str(h.done_name, "SEP001122334455.cnf.xml", "done gets the asked name");
	is_int(h.releases, 1, "release called once");
	is_int(c.acks_tx, 3, "client acked three blocks");
	check_books(&h, "basic");
	h_client_free(&c);

	/* mode names are case-insensitive */
	h_client_init(&c, 2, "SEP001122334455.cnf.xml", "OcTeT", NULL);
	fetch(&h, &c, d, 1300, "mode OcTeT");
	is_int(c.sport, default_limits.port_base + 1,
		"a freed port is not reused at once (FIFO free list)");
	h_client_free(&c);

	/* same client port again: a late ACK of the old transfer meets a
	 * free slot, not the new transfer */
	h_client_init(&c, 2, "SEP001122334455.cnf.xml", "octet", NULL);
	{
		uint8_t req[64];
		size_t n = h_req(req, sizeof(req), TFTP_RRQ, c.name, c.mode, NULL);
		struct h_pkt *p;
		uint64_t acks_before = tftp_stats(h.e)->dup_acks;

		h_input(&h, &c.peer, TFTP_PORT, req, n);
		p = h_pop(&h);
		ok(p != NULL && p->sport == default_limits.port_base + 2, "third transfer on a third port");
		free(p ? p->data : NULL);
		h_ack(&h, &c.peer, (uint16_t)(default_limits.port_base + 1), 1);
		is_int(h_expect_error(&h, &c.peer, NULL, 0), TFTP_ERR_UNKNOWN_TID,
			"late ACK 1 to the old port: ERROR 5");
		is_int(tftp_stats(h.e)->dup_acks, acks_before, "new transfer untouched");
		h_ack(&h, &c.peer, (uint16_t)(default_limits.port_base + 2), 1);
		p = h_pop(&h);
		ok(p != NULL && h_get16(p->data) == TFTP_DATA && h_get16(p->data + 2) == 2,
			"new transfer goes on with block 2");
		free(p ? p->data : NULL);
		h_ack(&h, &c.peer, (uint16_t)(default_limits.port_base + 2), 2);
		h_flush(&h);
		h_ack(&h, &c.peer, (uint16_t)(default_limits.port_base + 2), 3);
		is_int(tftp_active(h.e), 0, "and completes");
	}
	h_client_free(&c);
	h_fini(&h);
	free(d);
}

static void
test_exact_multiple(void)
{
	struct h h;
	struct h_client c;
	uint8_t *d = make_file(1024, 2);
	struct h_pkt *p;
	uint8_t req[64];
	struct tftp_peer peer = { 0x0a000009, 4444 };
	size_t n;

	h_init(&h, &default_limits);
	h_publish(&h, "two.bin", d, 1024);
	h_publish(&h, "empty.bin", d, 0);
	h_client_init(&c, 1, "two.bin", "octet", NULL);
	fetch(&h, &c, d, 1024, "exact multiple of 512");
	is_int(tftp_stats(h.e)->data_pkts, 3, "1024 bytes: 512, 512 and an empty block");
	is_int(c.next, 4, "three blocks received");
	h_client_free(&c);

	h_client_init(&c, 2, "empty.bin", "octet", NULL);
	fetch(&h, &c, d, 0, "empty file");
	is_int(c.next, 2, "empty file is one empty block");
	h_client_free(&c);

	/* look at the last DATA on the wire */
	n = h_req(req, sizeof(req), TFTP_RRQ, "empty.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	p = h_pop(&h);
	ok(p != NULL && p->len == 4 && h_get16(p->data) == TFTP_DATA && h_get16(p->data + 2) == 1,
		"empty file: DATA block 1 with 4 bytes");
	if (p != NULL) {
		h_ack(&h, &peer, p->sport, 1);
		free(p->data);
	}
	is_int(tftp_active(h.e), 0, "ACK 1 completes the empty file");
	check_books(&h, "exact multiple");
	h_fini(&h);
	free(d);
}

/* An RRQ with options from peer; the OACK must come back: its port. */
static uint16_t
start_oack(struct h *h, const struct tftp_peer *peer, const char *name,
	const char *const *opts, const char *what)
{
	uint8_t req[128];
	size_t n = h_req(req, sizeof(req), TFTP_RRQ, name, "octet", opts);
	struct h_pkt *p;
	uint16_t port;

	h_input(h, peer, TFTP_PORT, req, n);
	p = h_pop(h);
	ok(p != NULL && h_get16(p->data) == TFTP_OACK, "%s", what);
	port = p ? p->sport : 0;
	free(p ? p->data : NULL);
	return port;
}

static void
test_negotiation(void)
{
	static const char *const o1[] = {
		"blksize", "1428", "tsize", "0", "timeout", "3", "windowsize", "8", NULL };
	static const char *const o2[] = {
		"BLKSIZE", "70000", "TSize", "0", "WindowSize", "1000", "foo", "bar", NULL };
	static const char *const o3[] = { "foo", "1", "timeout", "0", NULL };
	static const char *const o4[] = { "timeout", "300", NULL };
	static const char *const o5[] = { "blksize", "0", NULL };
	static const char *const o6[] = { "blksize", "8", "windowsize", "0", NULL };
	static const char *const o7[] = { "blksize", "abc", NULL };
	struct h h;
	struct h_client c;
	uint8_t *d = make_file(20000, 3);
	struct tftp_peer peer = { 0x0a000077, 5555 };
	unsigned sends;
	uint16_t tport;

	h_init(&h, &default_limits);
	h_publish(&h, "f.bin", d, 20000);

	h_client_init(&c, 1, "f.bin", "octet", o1);
	fetch(&h, &c, d, 20000, "all four options");
	ok(c.got_oack, "OACK sent");
	is_str(h_oack_get(&c, "blksize"), "1428", "OACK blksize 1428");
	is_str(h_oack_get(&c, "tsize"), "20000", "OACK tsize is the file size");
	is_str(h_oack_get(&c, "timeout"), "3", "OACK timeout 3");
	is_str(h_oack_get(&c, "windowsize"), "8", "OACK windowsize 8");
	is_int(tftp_stats(h.e)->data_pkts, 20000 / 1428 + 1, "1428-byte blocks");
	h_client_free(&c);

	h_client_init(&c, 2, "f.bin", "octet", o2);
	fetch(&h, &c, d, 20000, "capped options, upper case names");
	is_str(h_oack_get(&c, "blksize"), "1428", "blksize 70000 answered with our max 1428");
	is_str(h_oack_get(&c, "windowsize"), "64", "windowsize 1000 capped at 64");
	is_str(h_oack_get(&c, "tsize"), "20000", "TSize honoured");
	ok(h_oack_get(&c, "foo") == NULL, "unknown option not echoed");
	ok(h_oack_get(&c, "BLKSIZE") == NULL, "OACK uses lower-case names");
	h_client_free(&c);

	/* only options we ignore: plain RFC 1350 transfer, no OACK */
	h_client_init(&c, 3, "f.bin", "octet", o3);
	fetch(&h, &c, d, 20000, "unknown option and timeout 0");
	ok(!c.got_oack, "timeout 0 and foo ignored: no OACK");
	h_client_free(&c);
	h_client_init(&c, 4, "f.bin", "octet", o4);
	fetch(&h, &c, d, 20000, "timeout 300");
	ok(!c.got_oack, "timeout 300 ignored: no OACK");
	h_client_free(&c);

	/* blksize 0 refused with ERROR 8 */
	h_client_init(&c, 5, "f.bin", "octet", o5);
	h_client_run(&h, &c, 100);
	is_int(c.error, TFTP_ERR_OPTIONS, "blksize 0: ERROR 8");
	ok(strstr(c.errmsg, "blksize") != NULL, "ERROR 8 names blksize (%s)", c.errmsg);
	is_int(tftp_stats(h.e)->err_options, 1, "err_options counted");
	h_client_free(&c);

	/* blksize abc: refused too, and said so (not "below 8") */
	h_client_init(&c, 7, "f.bin", "octet", o7);
	h_client_run(&h, &c, 100);
	is_int(c.error, TFTP_ERR_OPTIONS, "blksize abc: ERROR 8");
	ok(strstr(c.errmsg, "not a number") != NULL, "ERROR 8 says why (%s)", c.errmsg);
	is_int(tftp_stats(h.e)->err_options, 2, "err_options counted");
	h_client_free(&c);

	/* blksize 8 is the minimum and legal; windowsize 0 ignored */
	h_client_init(&c, 6, "f.bin", "octet", o6);
	h_publish(&h, "small.bin", d, 100);
	c.name = "small.bin";
	fetch(&h, &c, d, 100, "blksize 8");
	is_str(h_oack_get(&c, "blksize"), "8", "blksize 8 accepted");
	ok(h_oack_get(&c, "windowsize") == NULL, "windowsize 0 ignored");
	h_client_free(&c);

	/* the negotiated timeout drives retransmission: OACK again after 3 s, not 1 s */
	tport = start_oack(&h, &peer, "f.bin", o1, "OACK for the timeout check");
	sends = h.sends;
	h_advance(&h, 2 * SEC);
	is_int(h.sends, sends, "nothing resent after 2 s with timeout 3");
	h_advance(&h, SEC + 1);
	is_int(h.sends, sends + 1, "OACK resent after 3 s");
	h_flush(&h);
	/* ERROR 8 in answer to the OACK ends the transfer quietly */
	{
		static const uint8_t e8[] = { 0, 5, 0, 8, 'n', 'o', 0 };

		sends = h.sends;
		h_input(&h, &peer, tport, e8, sizeof(e8));
		is_int(h.sends, sends, "ERROR 8 from the client is not answered");
		is_int(tftp_active(h.e), 0, "ERROR 8 ends the transfer");
		is_int(h.done_fail, 1, "done(false) for the refused OACK");
	}
	check_books(&h, "negotiation");
	h_fini(&h);
	free(d);
}

static void
test_windows(void)
{
	static const char *const w4[] = { "windowsize", "4", NULL };
	static const char *const w16[] = { "windowsize", "16", "blksize", "1024", NULL };
	struct h h;
	struct h_client c;
	size_t len = 100 * 512 + 17;
	uint8_t *d = make_file(len, 4);
	const struct tftp_stats *st;

	h_init(&h, &default_limits);
	h_publish(&h, "w.bin", d, len);

	h_client_init(&c, 1, "w.bin", "octet", w4);
	fetch(&h, &c, d, len, "windowsize 4");
	st = tftp_stats(h.e);
	is_int(st->data_pkts, 101, "windowsize 4: each of 101 blocks sent once");
	/* ACK 0 for the OACK, one per full window of 4, one for the last block */
	is_int(c.acks_tx, 1 + 100 / 4 + 1, "windowsize 4: one ACK per window");
	is_int(st->retransmits, 0, "windowsize 4: no retransmission");
	h_client_free(&c);

	h_client_init(&c, 2, "w.bin", "octet", w16);
	fetch(&h, &c, d, len, "windowsize 16");
	is_int(st->data_pkts, 101 + (len / 1024 + 1), "windowsize 16: each block once");
	is_int(c.acks_tx, 1 + (len / 1024) / 16 + 1, "windowsize 16: one ACK per window");
	h_client_free(&c);

	/* a lost block inside a window: the client acks the last block in
	 * order, the engine restarts the window right after it */
	h_client_init(&c, 3, "w.bin", "octet", w4);
	c.drop_data = 6;
	fetch(&h, &c, d, len, "windowsize 4, block 6 lost");
	ok(c.unexpected_rx >= 1, "client saw the gap");
	/* window 5..8: 6 lost, 7 and 8 each make the client ack 5; the first
	 * ACK 5 restarts the window at 6 (6, 7, 8 again, then 9), the second
	 * is a duplicate and sends nothing */
	is_int(tftp_stats(h.e)->retransmits, 3, "blocks 6, 7, 8 resent once each");
	is_int(tftp_stats(h.e)->dup_acks, 1, "the second ACK 5 is a duplicate");
	h_client_free(&c);
	check_books(&h, "windows");
	h_fini(&h);
	free(d);
}

static void
test_rollover(void)
{
	static const char *const o[] = { "blksize", "8", NULL };
	static const char *const ow[] = { "blksize", "8", "windowsize", "16", NULL };
	struct h h;
	struct h_client c;
	size_t len = 600 * 1024 + 5;	/* 76801 blocks of 8 bytes */
	uint8_t *d = make_file(len, 5);

	h_init(&h, &default_limits);
	h_publish(&h, "big.bin", d, len);
	h_client_init(&c, 1, "big.bin", "octet", o);
	fetch(&h, &c, d, len, "rollover, lockstep");
	is_int(c.next - 1, len / 8 + 1, "76801 blocks");
	is_int(h.data_block0, 1, "block number wrapped to 0 once");
	is_int(tftp_stats(h.e)->retransmits, 0, "no retransmission across the wrap");
	is_int(tftp_stats(h.e)->dup_acks, 0, "no ACK taken for a duplicate across the wrap");
	h_client_free(&c);

	h_client_init(&c, 2, "big.bin", "octet", ow);
	c.drop_data = 65536 + 3;	/* lose a block just after the wrap */
	c.drop_ack = 65536 - 5;		/* and an ACK just before */
	fetch(&h, &c, d, len, "rollover, windowsize 16 with losses");
	h_client_free(&c);
	check_books(&h, "rollover");
	h_fini(&h);
	free(d);
}

static void
test_losses(void)
{
	struct h h;
	struct h_client c;
	size_t len = 10 * 512 + 100;
	uint8_t *d = make_file(len, 6);
	const struct tftp_stats *st;
	uint64_t rt;

	h_init(&h, &default_limits);
	h_publish(&h, "l.bin", d, len);
	st = tftp_stats(h.e);

	h_client_init(&c, 1, "l.bin", "octet", NULL);
	c.drop_data = 3;
	fetch(&h, &c, d, len, "DATA 3 lost");
	is_int(st->retransmits, 1, "DATA 3 resent once after the timeout");
	is_int(st->data_pkts, 12, "11 blocks + 1 retransmission");
	h_client_free(&c);

	rt = st->retransmits;
	h_client_init(&c, 2, "l.bin", "octet", NULL);
	c.drop_ack = 5;
	fetch(&h, &c, d, len, "ACK 5 lost");
	is_int(st->retransmits - rt, 1, "DATA 5 resent once after the lost ACK");
	h_client_free(&c);

	/* the final ACK lost: the last block goes again and the client re-acks */
	rt = st->retransmits;
	h_client_init(&c, 3, "l.bin", "octet", NULL);
	c.drop_ack = 11;
	fetch(&h, &c, d, len, "final ACK lost");
	is_int(st->retransmits - rt, 1, "final block resent once");
	is_int(h.done_ok, 3, "three transfers completed");
	h_client_free(&c);

	/* duplicated ACKs never cause a send (Sorcerer's Apprentice) */
	{
		uint64_t pk = st->data_pkts, du = st->dup_acks;

		rt = st->retransmits;
		h_client_init(&c, 4, "l.bin", "octet", NULL);
		c.ack_copies = 2;
		fetch(&h, &c, d, len, "every ACK twice");
		is_int(st->data_pkts - pk, 11, "duplicate ACKs: still 11 DATA");
		is_int(st->retransmits - rt, 0, "duplicate ACKs: no retransmission");
		/* the copy of the final ACK hits a free slot (ERROR 5) */
		is_int(st->dup_acks - du, 10, "ten duplicate ACKs counted");
		h_client_free(&c);
	}
	/* duplicates plus a lost DATA: the classic apprentice trigger */
	{
		uint64_t pk = st->data_pkts;

		h_client_init(&c, 5, "l.bin", "octet", NULL);
		c.ack_copies = 2;
		c.drop_data = 4;
		fetch(&h, &c, d, len, "every ACK twice, DATA 4 lost");
		is_int(st->data_pkts - pk, 12, "one extra DATA for the lost block only");
		h_client_free(&c);
	}
	check_books(&h, "losses");
	h_fini(&h);
	free(d);
}

static void
test_retries(void)
{
	struct h h;
	struct h_client c;
	uint8_t *d = make_file(5000, 7);
	const struct tftp_stats *st;

	h_init(&h, &default_limits);
	h_publish(&h, "r.bin", d, 5000);
	st = tftp_stats(h.e);
	h_client_init(&c, 1, "r.bin", "octet", NULL);
	c.mute = true;
	h_client_run(&h, &c, 1000);
	is_int(st->data_pkts, 1 + default_limits.retries, "block 1 sent 1 + retries times");
	is_int(st->retransmits, default_limits.retries, "retries counted");
	is_int(st->failed, 1, "transfer failed");
	is_int(h.done_fail, 1, "done(false) once");
	is_int(h.releases, 1, "release once");
	is_int(tftp_active(h.e), 0, "slot freed");
	h_advance(&h, 100 * SEC);
	is_int(h.releases, 1, "no release after the end");
	h_client_free(&c);

	/* with options: the OACK is what gets retried */
	{
		static const char *const o[] = { "tsize", "0", NULL };

		h_client_init(&c, 2, "r.bin", "octet", o);
		c.mute = true;
		h_client_run(&h, &c, 1000);
		is_int(h.sends_oack, 1 + default_limits.retries, "OACK sent 1 + retries times");
		is_int(st->failed, 2, "second transfer failed");
		h_client_free(&c);
	}
	check_books(&h, "retries");
	h_fini(&h);
	free(d);
}

static void
test_bad_requests(void)
{
	static const char *const ob[] = { "blksize", "1024", NULL };
	struct h h;
	uint8_t *d = make_file(3000, 8);
	struct tftp_peer peer = { 0x0a000042, 1234 };
	uint8_t req[1024];
	char msg[128];
	size_t n, modeend;
	const struct tftp_stats *st;
	unsigned bad = 0, good = 0;

	h_init(&h, &default_limits);
	h_publish(&h, "ok.bin", d, 3000);
	h_publish(&h, "dir/ok.bin", d, 3000);
	st = tftp_stats(h.e);

	n = h_req(req, sizeof(req), TFTP_WRQ, "ok.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_ACCESS, "WRQ: ERROR 2 (%s)", msg);

	n = h_req(req, sizeof(req), TFTP_RRQ, "dir/../ok.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_ACCESS, "'..': ERROR 2 (%s)", msg);
	n = h_req(req, sizeof(req), TFTP_RRQ, "..", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, NULL, 0), TFTP_ERR_ACCESS, "bare '..': ERROR 2");
	n = h_req(req, sizeof(req), TFTP_RRQ, "a\\..\\ok.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, NULL, 0), TFTP_ERR_ACCESS, "'..' between backslashes: ERROR 2");
	n = h_req(req, sizeof(req), TFTP_RRQ, "/ok.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_ACCESS,
		"leading '/': ERROR 2 (%s)", msg);
	is_int(st->err_access, 5, "err_access counted five times");
	is_int(h.lookups, 0, "refused paths are never looked up");

	n = h_req(req, sizeof(req), TFTP_RRQ, "missing.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_NOT_FOUND,
		"missing file: ERROR 1 (%s)", msg);
	is_int(st->err_not_found, 1, "err_not_found counted");
	n = h_req(req, sizeof(req), TFTP_RRQ, "forbidden.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, NULL, 0), TFTP_ERR_ACCESS, "lookup says ACCESS: ERROR 2");

	/* names that look odd but are legal */
	n = h_req(req, sizeof(req), TFTP_RRQ, "dir/ok.bin", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	{
		struct h_pkt *p = h_pop(&h);

		ok(p != NULL && h_get16(p->data) == TFTP_DATA, "subdirectory name served");
		if (p != NULL) {
			h_ack(&h, &peer, p->sport, 1);
			free(p->data);
		}
		h_flush(&h);
		tftp_engine_free(h.e);	/* drop that transfer; releases it */
		h.e = tftp_engine_create(&default_limits, &h_ops, &h);
		st = tftp_stats(h.e);
		is_int(h.releases, h.lookups_ok, "engine free released the live transfer");
	}

	/* unknown opcodes on port 69 */
	{
		static const uint8_t ops[][4] = {
			{ 0, 0, 0, 0 }, { 0, 3, 0, 1 }, { 0, 4, 0, 1 }, { 0, 6, 0, 0 },
			{ 0, 7, 0, 0 }, { 0xff, 0xff, 0, 0 },
		};

		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			h_input(&h, &peer, TFTP_PORT, ops[i], 4);
			is_int(h_expect_error(&h, &peer, NULL, 0), TFTP_ERR_ILLEGAL_OP,
				"opcode %u on port 69: ERROR 4", h_get16(ops[i]));
		}
	}
	{
		static const uint8_t err[] = { 0, 5, 0, 1, 'x', 0 };
		uint64_t m = st->malformed;

		h_input(&h, &peer, TFTP_PORT, err, sizeof(err));
		is_int(h_queued(&h), 0, "ERROR on port 69 is not answered");
		is_int(st->malformed - m, 1, "and counted malformed");
	}

	/* every proper prefix of a valid RRQ with an option */
	n = h_req(req, sizeof(req), TFTP_RRQ, "ok.bin", "octet", ob);
	modeend = 2 + strlen("ok.bin") + 1 + strlen("octet") + 1;
	for (size_t k = 0; k < n; k++) {
		struct h_pkt *p;

		h_input(&h, &peer, TFTP_PORT, req, k);
		p = h_pop(&h);
		if (p == NULL) {
			bad++;
			continue;
		}
		if (k == modeend) {
			/* a complete RRQ without options: served */
			good += h_get16(p->data) == TFTP_DATA;
			free(p->data);
			h_flush(&h);
			continue;
		}
		bad += !(h_get16(p->data) == TFTP_ERROR && h_get16(p->data + 2) == TFTP_ERR_ILLEGAL_OP);
		free(p->data);
	}
	is_int(bad, 0, "every truncated RRQ (%zu prefixes) gets ERROR 4", n - 1);
	is_int(good, 1, "the prefix ending after the mode is a valid RRQ");

	/* no NUL after the file name / empty name / unknown mode */
	n = h_req(req, sizeof(req), TFTP_RRQ, "", "octet", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_ILLEGAL_OP,
		"empty file name: ERROR 4 (%s)", msg);
	n = h_req(req, sizeof(req), TFTP_RRQ, "ok.bin", "mail", NULL);
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_ILLEGAL_OP,
		"mode mail: ERROR 4 (%s)", msg);
	ok(strstr(msg, "mode") != NULL, "message names the mode");
	n = h_req(req, sizeof(req), TFTP_RRQ, "ok.bin", "octet", NULL);
	req[n++] = 'x';		/* trailing garbage without NUL */
	h_input(&h, &peer, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &peer, NULL, 0), TFTP_ERR_ILLEGAL_OP, "unterminated option: ERROR 4");

	/* oversized request and overlong name */
	{
		char big[700];
		const char *const opts[] = { "x", big, NULL };

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		n = h_req(req, sizeof(req), TFTP_RRQ, "ok.bin", "octet", opts);
		h_input(&h, &peer, TFTP_PORT, req, n);
		is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_ILLEGAL_OP,
			"%zu-byte request: ERROR 4 (%s)", n, msg);
		big[300] = 0;
		n = h_req(req, sizeof(req), TFTP_RRQ, big, "octet", NULL);
		h_input(&h, &peer, TFTP_PORT, req, n);
		is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_ILLEGAL_OP,
			"300-byte name: ERROR 4 (%s)", msg);
	}
	is_int(st->started, 1, "only the valid prefix started a transfer");
	check_books(&h, "bad requests");
	h_fini(&h);
	free(d);
}

static void
test_tids(void)
{
	struct h h;
	uint8_t *d = make_file(3000, 9);
	struct tftp_peer a = { 0x0a000001, 3001 }, wrong_port = { 0x0a000001, 3002 },
		wrong_ip = { 0x0a000002, 3001 };
	uint8_t req[64];
	size_t n;
	struct h_pkt *p;
	const struct tftp_stats *st;
	uint16_t port;
	uint64_t acked;

	h_init(&h, &default_limits);
	h_publish(&h, "t.bin", d, 3000);
	st = tftp_stats(h.e);

	/* a stray ACK to a free slot */
	h_ack(&h, &a, (uint16_t)(default_limits.port_base + 3), 1);
	is_int(h_expect_error(&h, &a, NULL, 0), TFTP_ERR_UNKNOWN_TID, "ACK to a free slot: ERROR 5");
	is_int(st->err_unknown_tid, 1, "err_unknown_tid counted");

	n = h_req(req, sizeof(req), TFTP_RRQ, "t.bin", "octet", NULL);
	h_input(&h, &a, TFTP_PORT, req, n);
	p = h_pop(&h);
	port = p->sport;
	free(p->data);
	h_ack(&h, &wrong_port, port, 1);
	is_int(h_expect_error(&h, &wrong_port, NULL, 0), TFTP_ERR_UNKNOWN_TID,
		"ACK from the right ip, wrong port: ERROR 5");
	h_ack(&h, &wrong_ip, port, 1);
	is_int(h_expect_error(&h, &wrong_ip, NULL, 0), TFTP_ERR_UNKNOWN_TID,
		"ACK from the wrong ip: ERROR 5");
	{
		static const uint8_t err[] = { 0, 5, 0, 0, 0 };

		h_input(&h, &wrong_ip, port, err, sizeof(err));
		is_int(h_queued(&h), 0, "ERROR from another TID: not answered");
	}
	is_int(tftp_active(h.e), 1, "transfer undisturbed by other TIDs");
	/* a block beyond what was sent is ignored */
	{
		uint64_t m = st->malformed;

		h_ack(&h, &a, port, 2);
		is_int(h_queued(&h), 0, "ACK 2 before block 2 was sent: no answer");
		is_int(st->malformed - m, 1, "ACK beyond the window counted malformed");
		h_ack(&h, &a, port, 40000);
		is_int(st->malformed - m, 2, "ACK far ahead counted malformed");
	}
	/* the transfer goes on with the right peer */
	for (acked = 1; acked <= 6; acked++) {
		h_ack(&h, &a, port, (uint16_t)acked);
		p = h_pop(&h);
		if (p == NULL)
			break;
		free(p->data);
	}
	is_int(acked, 6, "blocks 2..6 followed; ACK 6 ends the transfer");
	is_int(st->completed, 1, "transfer completed despite strangers");
	/* the client's retransmitted final ACK now hits a free slot */
	h_ack(&h, &a, port, 6);
	is_int(h_expect_error(&h, &a, NULL, 0), TFTP_ERR_UNKNOWN_TID, "late ACK after the end: ERROR 5");

	/* the peer's ERROR ends a transfer */
	h_input(&h, &a, TFTP_PORT, req, n);
	p = h_pop(&h);
	port = p->sport;
	free(p->data);
	{
		static const uint8_t err[] = { 0, 5, 0, 0, 'b', 'y', 'e', 0 };

		h_input(&h, &a, port, err, sizeof(err));
		is_int(h_queued(&h), 0, "peer ERROR not answered");
		is_int(tftp_active(h.e), 0, "peer ERROR ends the transfer");
		is_int(st->failed, 1, "counted failed");
	}
	check_books(&h, "TIDs");
	h_fini(&h);
	free(d);
}

static void
test_table_full(void)
{
	struct tftp_limits lim = default_limits;
	struct h h;
	uint8_t *d = make_file(3000, 10);
	uint8_t req[64];
	char msg[128];
	size_t n;
	struct tftp_peer p1 = { 0x0a000001, 1001 }, p2 = { 0x0a000002, 1002 },
		p3 = { 0x0a000003, 1003 };
	struct h_pkt *p;
	uint16_t ports[2];

	lim.max_transfers = 2;
	h_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);
	n = h_req(req, sizeof(req), TFTP_RRQ, "t.bin", "octet", NULL);
	h_input(&h, &p1, TFTP_PORT, req, n);
	h_input(&h, &p2, TFTP_PORT, req, n);
	for (int i = 0; i < 2; i++) {
		p = h_pop(&h);
		ports[i] = p->sport;
		free(p->data);
	}
	ok(ports[0] != ports[1] && tftp_owns_port(h.e, ports[0]) && tftp_owns_port(h.e, ports[1]),
		"two transfers, two ports of the engine");
	ok(!tftp_owns_port(h.e, (uint16_t)(lim.port_base + 2)) &&
		!tftp_owns_port(h.e, (uint16_t)(lim.port_base - 1)), "ports outside the range not owned");
	h_input(&h, &p3, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &p3, msg, sizeof(msg)), TFTP_ERR_UNDEFINED, "table full: ERROR 0");
	is_str(msg, "server busy, try again later", "busy message");
	is_int(tftp_stats(h.e)->err_table_full, 1, "err_table_full counted");
	is_int(h.lookups, 2, "no lookup when the table is full");
	is_int(tftp_active(h.e), 2, "active stays at the maximum");
	/* when one ends, its slot serves the next request */
	{
		static const uint8_t err[] = { 0, 5, 0, 0, 0 };

		h_input(&h, &p1, ports[0], err, sizeof(err));
		h_input(&h, &p3, TFTP_PORT, req, n);
		p = h_pop(&h);
		ok(p != NULL && h_get16(p->data) == TFTP_DATA && p->sport == ports[0],
			"freed slot reused for the next RRQ");
		free(p ? p->data : NULL);
	}
	check_books(&h, "table full");
	h_fini(&h);
	is_int(h.releases, h.lookups_ok, "engine free releases the live transfers");
	free(d);
}

/* ---- bounds on one client address (issue 10, finding 3) ---- */

/* RRQs for name from ip, source ports first..first+n-1; returns how many
 * got DATA or OACK, and counts the ERROR 0 answers in *refused. */
static unsigned
rrq_burst(struct h *h, uint32_t ip, uint16_t first, unsigned n, const char *const *opts,
	unsigned *refused)
{
	uint8_t req[128];
	size_t len = h_req(req, sizeof(req), TFTP_RRQ, "t.bin", "octet", opts);
	unsigned started = 0;
	struct h_pkt *p;

	*refused = 0;
	for (unsigned k = 0; k < n; k++) {
		struct tftp_peer from = { ip, (uint16_t)(first + k) };

		h_input(h, &from, TFTP_PORT, req, len);
	}
	while ((p = h_pop(h)) != NULL) {
		uint16_t op = h_get16(p->data);

		if (op == TFTP_DATA || op == TFTP_OACK)
			started++;
		else if (op == TFTP_ERROR && h_get16(p->data + 2) == TFTP_ERR_UNDEFINED)
			(*refused)++;
		free(p->data);
	}
	return started;
}

/* Moves the clock in steps of 100 ms, so every retransmission fires. */
static void
advance_by(struct h *h, uint64_t ns)
{
	for (uint64_t t = 0; t < ns; t += SEC / 10)
		h_advance(h, SEC / 10);
	h_flush(h);
}

static void
test_per_source(void)
{
	struct tftp_limits lim = default_limits;
	struct tftp_peer a = { 0x0a000001, 3000 }, b = { 0x0a000002, 4000 };
	struct h h;
	uint8_t *d = make_file(3000, 11);
	uint8_t req[64];
	char msg[128];
	unsigned refused, started;
	size_t n;
	struct h_pkt *p;

	lim.max_transfers = 16;
	lim.max_per_source = 3;
	h_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);
	started = rrq_burst(&h, a.ip, 3000, 5, NULL, &refused);
	is_int(started, 3, "one address: 3 transfers start (max_per_source 3)");
	is_int(refused, 2, "the other 2 RRQs get ERROR 0");
	is_int(tftp_stats(h.e)->err_per_source, 2, "err_per_source counted");
	is_int(tftp_stats(h.e)->err_table_full, 0, "not counted as a full table");
	is_int(h.lookups, 3, "no file lookup for a refused RRQ");

	n = h_req(req, sizeof(req), TFTP_RRQ, "t.bin", "octet", NULL);
	h_input(&h, &a, TFTP_PORT, req, n);
	is_int(h_expect_error(&h, &a, msg, sizeof(msg)), TFTP_ERR_UNDEFINED,
		"a fourth RRQ from the same port: ERROR 0");
	is_str(msg, "too many transfers from your address, try again later",
		"the message says why");
	h_input(&h, &b, TFTP_PORT, req, n);
	p = h_pop(&h);
	ok(p != NULL && h_get16(p->data) == TFTP_DATA && p->to.ip == b.ip,
		"another address is served meanwhile");
	free(p ? p->data : NULL);
	is_int(tftp_active(h.e), 4, "3 + 1 transfers live");

	/* one of a's transfers ends (its client sends ERROR): a may start one */
	{
		static const uint8_t err[] = { 0, 5, 0, 0, 0 };
		struct tftp_peer a0 = { a.ip, 3000 };
		uint16_t port = 0;

		for (uint16_t q = lim.port_base; q < lim.port_base + lim.max_transfers; q++)
			if (port == 0 && tftp_owns_port(h.e, q)) {
				h_input(&h, &a0, q, err, sizeof(err));
				if (tftp_active(h.e) == 3)
					port = q;
				h_flush(&h);
			}
		ok(port != 0, "a's first transfer ended by its ERROR");
	}
	started = rrq_burst(&h, a.ip, 3100, 2, NULL, &refused);
	is_int(started, 1, "after one ends, a gets exactly one more");
	is_int(refused, 1, "and the next is refused again");

	/* silent clients: every transfer is freed by the retries, and the
	 * address's count with it */
	advance_by(&h, (uint64_t)(lim.retries + 2) * lim.timeout_ms * 1000000ull);
	is_int(tftp_active(h.e), 0, "silent transfers freed after (retries + 1) timeouts");
	started = rrq_burst(&h, a.ip, 3200, 4, NULL, &refused);
	is_int(started, 3, "then a may hold 3 again");
	is_int(refused, 1, "and no more");
	check_books(&h, "per source");
	h_fini(&h);
	free(d);
}

/*
 * Many addresses, the table full of them, transfers ending in an order
 * unrelated to their start (the per-source table's deletions move entries
 * around): every address keeps exactly its bound.
 */
static void
test_per_source_many(void)
{
	enum { NSRC = 300, PER = 2 };
	static const uint8_t err[] = { 0, 5, 0, 0, 0 };
	struct tftp_limits lim = default_limits;
	struct h h;
	uint8_t *d = make_file(3000, 12);
	unsigned refused, started = 0, total_refused = 0, bad = 0;
	unsigned ended[NSRC] = { 0 };

	lim.max_transfers = NSRC * PER;
	lim.max_per_source = PER;
	lim.seed = 12345;
	h_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);
	for (uint32_t k = 0; k < NSRC; k++) {
		/* neighbouring addresses, the kind one subnet of attackers has */
		started += rrq_burst(&h, 0x0a010000 + k, 5000, PER + 1, NULL, &refused);
		total_refused += refused;
	}
	is_int(started, NSRC * PER, "%u addresses x %u transfers fill the table", NSRC, PER);
	is_int(total_refused, NSRC, "one refusal per address");
	is_int(tftp_stats(h.e)->err_table_full, 0, "no address met a full table");
	/* end transfers port by port in a scrambled order */
	for (uint32_t k = 0; k < lim.max_transfers; k++) {
		uint16_t port = (uint16_t)(lim.port_base + (k * 337) % lim.max_transfers);
		unsigned before = tftp_active(h.e);

		/* the owner is unknown here: the transfer's peer answers UNKNOWN_TID
		 * to all others, so try every address's first port */
		for (uint32_t s = 0; s < NSRC && tftp_active(h.e) == before; s++) {
			struct tftp_peer from = { 0x0a010000 + s, 5000 };

			for (uint16_t q = 0; q < PER + 1 && tftp_active(h.e) == before; q++) {
				from.port = (uint16_t)(5000 + q);
				h_input(&h, &from, port, err, sizeof(err));
				if (tftp_active(h.e) < before)
					ended[s]++;
			}
		}
		h_flush(&h);
		if (k % 2 == 1)
			continue;
		/* after every other end, the address that lost one may start one */
		for (uint32_t s = 0; s < NSRC; s++)
			if (ended[s] > 0) {
				if (rrq_burst(&h, 0x0a010000 + s, 6000, 1, NULL, &refused) != 1)
					bad++;
				ended[s]--;
				break;
			}
	}
	is_int(bad, 0, "a freed slot of an address is its own to take again");
	started = rrq_burst(&h, 0x0a7f0000, 7000, PER + 1, NULL, &refused);
	is_int(started, PER, "a new address still gets its %u", PER);
	check_books(&h, "many sources");
	h_fini(&h);
	free(d);
}

static void
test_timeout_cap(void)
{
	static const char *const t5[] = { "timeout", "5", NULL };
	static const char *const t255[] = { "blksize", "1428", "timeout", "255", NULL };
	static const char *const only255[] = { "timeout", "255", NULL };
	struct tftp_limits lim = default_limits;
	struct h h;
	struct h_client c;
	uint8_t *d = make_file(3000, 13);
	unsigned refused;

	lim.max_timeout_s = 5;
	h_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);

	h_client_init(&c, 1, "t.bin", "octet", t5);
	fetch(&h, &c, d, 3000, "timeout 5 (at the cap)");
	is_str(h_oack_get(&c, "timeout"), "5", "a timeout at the cap is acknowledged");
	h_client_free(&c);
	is_int(tftp_stats(h.e)->timeout_ignored, 0, "nothing ignored yet");

	h_client_init(&c, 2, "t.bin", "octet", t255);
	fetch(&h, &c, d, 3000, "timeout 255 with blksize");
	ok(c.got_oack, "OACK for blksize");
	is_str(h_oack_get(&c, "blksize"), "1428", "blksize acknowledged");
	ok(h_oack_get(&c, "timeout") == NULL,
		"timeout 255 left out of the OACK (RFC 2349: no other value may be sent)");
	is_int(tftp_stats(h.e)->timeout_ignored, 1, "timeout_ignored counted");
	h_client_free(&c);

	h_client_init(&c, 3, "t.bin", "octet", only255);
	fetch(&h, &c, d, 3000, "timeout 255 alone");
	ok(!c.got_oack, "timeout 255 alone: no option left, plain transfer without OACK");
	is_int(tftp_stats(h.e)->timeout_ignored, 2, "timeout_ignored counted again");
	h_client_free(&c);

	/* a silent client that asked 255 s: the slot goes after (retries + 1)
	 * default timeouts, not (retries + 1) x 255 s */
	is_int(rrq_burst(&h, 0x0a000009, 7000, 1, t255, &refused), 1, "silent client started");
	advance_by(&h, (uint64_t)lim.retries * lim.timeout_ms * 1000000ull);
	is_int(tftp_active(h.e), 1, "alive after retries x timeout-ms");
	advance_by(&h, 2ull * lim.timeout_ms * 1000000ull);
	is_int(tftp_active(h.e), 0, "freed after (retries + 1) x timeout-ms, well before 255 s");
	/* one at the cap is honoured: freed after (retries + 1) x 5 s */
	is_int(rrq_burst(&h, 0x0a000009, 7100, 1, t5, &refused), 1, "silent client at the cap");
	advance_by(&h, (uint64_t)lim.retries * 5 * SEC + SEC);
	is_int(tftp_active(h.e), 1, "a 5 s timeout is used: alive after retries x 5 s");
	advance_by(&h, 5 * SEC);
	is_int(tftp_active(h.e), 0, "freed after (retries + 1) x 5 s");
	check_books(&h, "timeout cap");
	h_fini(&h);
	free(d);
}

/* A client that acknowledges every 8-byte block just before the timeout:
 * progress resets the retries, only the transfer's life ends it. */
static void
test_max_life(void)
{
	static const char *const b8[] = { "blksize", "8", NULL };
	struct tftp_limits lim = default_limits;
	struct tftp_peer peer = { 0x0a00000b, 7777 };
	struct h h;
	uint8_t *d = make_file(3000, 14);
	char msg[128];
	uint16_t port, acked = 0;

	lim.max_life_s = 10;
	h_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);
	port = start_oack(&h, &peer, "t.bin", b8, "OACK blksize 8");
	/* 0.9 s per block, under the 1 s timeout: 11 ACKs reach 9.9 s */
	for (unsigned k = 0; k < 11; k++) {
		h_advance(&h, 9 * SEC / 10);
		h_ack(&h, &peer, port, acked++);
		h_flush(&h);
	}
	is_int(tftp_active(h.e), 1, "alive at 9.9 s: every block acknowledged in time");
	is_int(tftp_stats(h.e)->retransmits, 0, "and nothing resent");
	h_advance(&h, 2 * SEC / 10);
	h_ack(&h, &peer, port, acked);
	is_int(h_expect_error(&h, &peer, msg, sizeof(msg)), TFTP_ERR_UNDEFINED,
		"the first ACK after 10 s gets ERROR 0");
	is_str(msg, "transfer time limit reached", "saying why");
	is_int(tftp_active(h.e), 0, "the slot is free");
	is_int(tftp_stats(h.e)->err_expired, 1, "err_expired counted");
	is_int(h.done_fail, 1, "done(false)");
	/* a silent one past its life: ended by its timer, the same way */
	lim.max_life_s = 2;
	lim.retries = 20;
	h_fini(&h);
	h_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);
	start_oack(&h, &peer, "t.bin", b8, "a silent client's OACK");
	advance_by(&h, 3 * SEC);
	is_int(tftp_active(h.e), 0, "20 retries of 1 s cut at the 2 s life");
	is_int(tftp_stats(h.e)->err_expired, 1, "err_expired counted");
	check_books(&h, "max life");
	h_fini(&h);
	free(d);
}

/* ---- ops.port_local: steering new transfers to ports of our queue ---- */

/* The hook accepts port when port % mod == want; mod 0 accepts nothing. */
static struct {
	unsigned mod, want;
	unsigned calls;
	struct tftp_peer peer;	/* of the last call */
} steer;

static bool
steer_hook(void *ctx, const struct tftp_peer *peer, uint16_t port)
{
	(void)ctx;
	steer.calls++;
	steer.peer = *peer;
	return steer.mod != 0 && port % steer.mod == steer.want;
}

static void
steer_set(unsigned mod, unsigned want)
{
	steer.mod = mod;
	steer.want = want;
}

/* h_init with the hook in the engine's ops. */
static void
steer_init(struct h *h, const struct tftp_limits *lim)
{
	struct tftp_ops ops = h_ops;

	h_init(h, lim);
	tftp_engine_free(h->e);
	ops.port_local = steer_hook;
	h->e = tftp_engine_create(lim, &ops, h);
	if (h->e == NULL) {
		printf("Bail out! tftp_engine_create with port_local failed\n");
		exit(1);
	}
	memset(&steer, 0, sizeof(steer));
}

static struct tftp_peer
steer_peer(unsigned id)
{
	return (struct tftp_peer){ 0x0a000200u + id, (uint16_t)(3000 + id) };
}

/* Client id asks for t.bin: the port its first DATA came from, 0 if none. */
static uint16_t
steer_start(struct h *h, unsigned id)
{
	struct tftp_peer peer = steer_peer(id);
	uint8_t req[64];
	size_t n = h_req(req, sizeof(req), TFTP_RRQ, "t.bin", "octet", NULL);
	struct h_pkt *p;
	uint16_t port = 0;

	h_input(h, &peer, TFTP_PORT, req, n);
	p = h_pop(h);
	if (p != NULL && h_get16(p->data) == TFTP_DATA && p->to.port == peer.port)
		port = p->sport;
	free(p ? p->data : NULL);
	h_flush(h);
	return port;
}

/* Client id gives up on its transfer on port (ERROR): the slot is freed. */
static void
steer_end(struct h *h, unsigned id, uint16_t port)
{
	static const uint8_t err[] = { 0, TFTP_ERROR, 0, 0, 'x', 0 };
	struct tftp_peer peer = steer_peer(id);

	h_input(h, &peer, port, err, sizeof(err));
}

static void
test_port_local(void)
{
	struct tftp_limits lim = default_limits;
	struct h h;
	uint8_t *d = make_file(3000, 17);
	uint16_t port, ports[8], b = default_limits.port_base;
	unsigned calls;
	bool all = true, fifo = true;

	lim.max_transfers = 256;
	steer_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);

	/* only ports with residue 1 mod 4 are local: every transfer gets
	 * one, the oldest free first */
	steer_set(4, 1);
	for (unsigned i = 0; i < 8; i++) {
		ports[i] = steer_start(&h, i);
		all = all && ports[i] % 4 == 1 && tftp_owns_port(h.e, ports[i]);
		fifo = fifo && ports[i] == b + 1 + 4 * i;
	}
	ok(all, "residue hook: 8 transfers, all on ports = 1 mod 4");
	ok(fifo, "residue hook: in free-list order (%u, %u, ... %u)", ports[0], ports[1],
		ports[7]);
	ok(steer.peer.ip == steer_peer(7).ip && steer.peer.port == steer_peer(7).port,
		"the hook is asked about the requesting client");
	is_int(tftp_active(h.e), 8, "8 transfers running");

	/* the ports passed over kept their place at the head */
	steer_set(1, 0);
	is_int(steer_start(&h, 8), b, "hook accepting all: the head, passed over before");
	is_int(steer_start(&h, 9), b + 2, "then the next one passed over");

	/* a freed port goes to the tail: not reused at once */
	steer_set(4, 1);
	steer_end(&h, 0, ports[0]);
	is_int(tftp_active(h.e), 9, "the first transfer ended");
	port = steer_start(&h, 10);
	ok(port != ports[0] && port == b + 1 + 4 * 8,
		"freed port %u not reused at once; the next local free one is (%u)", ports[0], port);
	{
		struct tftp_peer p0 = steer_peer(0);

		h_ack(&h, &p0, ports[0], 1);
		is_int(h_expect_error(&h, &p0, NULL, 0), TFTP_ERR_UNKNOWN_TID,
			"late ACK to the freed port: ERROR 5");
	}

	/* a hook accepting nothing: the head, after a bounded scan */
	is_int(tftp_stats(h.e)->port_unsteered, 0, "every transfer so far got a local port");
	steer_set(0, 0);
	calls = steer.calls;
	is_int(steer_start(&h, 11), b + 3, "hook accepting nothing: the head of the free list");
	is_int(steer.calls - calls, TFTP_PORT_SCAN, "at most TFTP_PORT_SCAN ports offered");
	is_int(tftp_stats(h.e)->port_unsteered, 1, "... counted in port_unsteered");
	check_books(&h, "port_local");
	h_fini(&h);

	/* three slots: as without the hook until full, then FIFO kept when the
	 * tail is taken */
	lim.max_transfers = 3;
	steer_init(&h, &lim);
	h_publish(&h, "t.bin", d, 3000);
	steer_set(0, 0);
	for (unsigned i = 0; i < 3; i++)
		ports[i] = steer_start(&h, i);
	ok(ports[0] == b && ports[1] == b + 1 && ports[2] == b + 2,
		"hook accepting nothing: ports in order, as without it");
	{
		struct tftp_peer p3 = steer_peer(3);
		uint8_t req[64];
		size_t n = h_req(req, sizeof(req), TFTP_RRQ, "t.bin", "octet", NULL);
		char msg[128];

		calls = steer.calls;
		h_input(&h, &p3, TFTP_PORT, req, n);
		is_int(h_expect_error(&h, &p3, msg, sizeof(msg)), TFTP_ERR_UNDEFINED,
			"table full with the hook: ERROR 0");
		is_str(msg, "server busy, try again later", "busy message");
		is_int(steer.calls, calls, "no port offered when none is free");
	}
	for (unsigned i = 0; i < 3; i++)
		steer_end(&h, i, ports[i]);
	steer_set(65536, b + 2);
	is_int(steer_start(&h, 4), b + 2, "the hook picks the tail of the free list");
	steer_set(0, 0);
	is_int(steer_start(&h, 5), b, "then the head");
	steer_end(&h, 4, b + 2);
	is_int(steer_start(&h, 6), b + 1, "the slot freed last comes after the older one");
	is_int(steer_start(&h, 7), b + 2, "and is still reachable");
	is_int(steer_start(&h, 8), 0, "then the table is full");
	check_books(&h, "port_local, 3 slots");
	h_fini(&h);
	free(d);
}

static void
test_device_names(void)
{
	static const struct {
		const char *in, *out, *mac;
	} cases[] = {
		{ "ITLSEP0011AABBCCDD.tlv", "ITLFile.tlv", "0011AABBCCDD" },
		{ "CTLSEP0011aabbccdd.tlv", "CTLFile.tlv", "0011AABBCCDD" },
		{ "itlsep0011aabbccdd.TLV", "ITLFile.tlv", "0011AABBCCDD" },
		{ "ITLSEP0011AABBCCD.tlv", NULL, NULL },	/* 11 digits */
		{ "ITLSEP0011AABBCCDDE.tlv", NULL, NULL },	/* 13 digits */
		{ "ITLSEP0011AABBCCDG.tlv", NULL, NULL },	/* not hex */
		{ "ITLSEP0011AABBCCDD.tlvx", NULL, NULL },
		{ "ITLSEP0011AABBCCDD", NULL, NULL },
		{ "XTLSEP0011AABBCCDD.tlv", NULL, NULL },
		{ "ITLFile.tlv", NULL, NULL },
		{ "SEP0011AABBCCDD.cnf.xml", NULL, NULL },
		{ "", NULL, NULL },
	};
	char out[32], mac[13];
	struct h h;
	struct h_client c;
	uint8_t *itl = make_file(10370, 11), *ctl = make_file(4000, 12);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool m;

		memset(mac, 0, sizeof(mac));
		m = tftp_map_device_name(cases[i].in, out, sizeof(out), mac);
		if (cases[i].out != NULL) {
			ok(m && strcmp(out, cases[i].out) == 0 && strcmp(mac, cases[i].mac) == 0,
				"'%s' maps to %s, MAC %s", cases[i].in, cases[i].out, cases[i].mac);
		} else {
			ok(!m, "'%s' is not a device name", cases[i].in);
		}
	}
	ok(!tftp_map_device_name("ITLSEP0011AABBCCDD.tlv", out, 5, NULL),
		"too small an output buffer is refused");
	ok(tftp_map_device_name("ITLSEP0011AABBCCDD.tlv", out, sizeof(out), NULL),
		"mac may be NULL");

	h_init(&h, &default_limits);
	h_publish(&h, "ITLFile.tlv", itl, 10370);
	h_publish(&h, "CTLFile.tlv", ctl, 4000);
	h_client_init(&c, 1, "ITLSEP0011AABBCCDD.tlv", "octet", NULL);
	fetch(&h, &c, itl, 10370, "ITLSEP<MAC>.tlv served as ITLFile.tlv");
	is_str(h.done_name, "ITLSEP0011AABBCCDD.tlv", "done reports the per-device name");
	h_client_free(&c);
	h_client_init(&c, 2, "CTLSEP0011aabbccdd.tlv", "octet", NULL);
	fetch(&h, &c, ctl, 4000, "CTLSEP<mac>.tlv served as CTLFile.tlv");
	h_client_free(&c);
	h_client_init(&c, 3, "ITLSEP0011AABBCCDG.tlv", "octet", NULL);
	h_client_run(&h, &c, 100);
	is_int(c.error, TFTP_ERR_NOT_FOUND, "bad MAC: file not found");
	h_client_free(&c);
	check_books(&h, "device names");
	h_fini(&h);
	free(itl);
	free(ctl);
}

static void
test_generation_swap(void)
{
	struct h h;
	struct h_client c;
	uint8_t *v1 = make_file(8000, 13), *v2 = make_file(9000, 14);
	uint8_t req[64];
	size_t n;
	struct h_pkt *p;
	unsigned steps = 0;

	h_init(&h, &default_limits);
	h_publish(&h, "ITLFile.tlv", v1, 8000);
	h_client_init(&c, 1, "ITLFile.tlv", "octet", NULL);
	n = h_req(req, sizeof(req), TFTP_RRQ, c.name, c.mode, NULL);
	h_input(&h, &c.peer, TFTP_PORT, req, n);
	while ((p = h_pop(&h)) != NULL && steps++ < 1000) {
		h_client_packet(&h, &c, p);
		free(p->data);
		if (steps == 5) {
			/* a publication swaps the file while the transfer runs */
			h_publish(&h, "ITLFile.tlv", v2, 9000);
			ok(h.blobs[0].data != NULL && !h.blobs[0].live,
				"old generation kept alive by the transfer");
		}
	}
	ok(c.finished && c.len == 8000 && memcmp(c.buf, v1, 8000) == 0,
		"running transfer finished with the bytes it started with");
	is_int(h.done_gen, 1, "done reports generation 1");
	ok(h.blobs[0].data == NULL, "old generation freed on release");
	h_client_free(&c);

	h_client_init(&c, 2, "ITLFile.tlv", "octet", NULL);
	fetch(&h, &c, v2, 9000, "new transfer gets the new generation");
	is_int(h.done_gen, 2, "done reports generation 2");
	h_client_free(&c);
	is_int(h.lookups_ok, 2, "two lookups");
	is_int(h.releases, 2, "two releases");
	check_books(&h, "generation swap");
	h_fini(&h);
	free(v1);
	free(v2);
}

/* LF -> CR LF, CR -> CR NUL */
static size_t
netascii_ref(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n') {
			out[n++] = '\r';
			out[n++] = '\n';
		} else if (in[i] == '\r') {
			out[n++] = '\r';
			out[n++] = 0;
		} else {
			out[n++] = in[i];
		}
	}
	return n;
}

static void
test_netascii(void)
{
	static const char *const o8[] = { "blksize", "8", "windowsize", "4", "tsize", "0", NULL };
	static const char text[] = "a\nb\r\nc";
	struct h h;
	struct h_client c;
	size_t len = 5000, xl;
	uint8_t *d = malloc(len), *x = malloc(2 * len);
	char tsize[32];

	for (size_t i = 0; i < len; i++) {
		uint64_t r = tap_prng() % 8;

		d[i] = r == 0 ? '\n' : r == 1 ? '\r' : (uint8_t)('a' + r);
	}
	xl = netascii_ref(d, len, x);
	h_init(&h, &default_limits);
	h_publish(&h, "text.txt", (const uint8_t *)text, strlen(text));
	h_publish(&h, "big.txt", d, len);

	h_client_init(&c, 1, "text.txt", "netascii", NULL);
	fetch(&h, &c, (const uint8_t *)"a\r\nb\r\0\r\nc", 9, "netascii LF and CR converted");
	h_client_free(&c);

	/* 8-byte blocks cut CR LF pairs; windows and a loss replay the cursor */
	h_client_init(&c, 2, "big.txt", "NetASCII", o8);
	c.drop_data = 37;
	fetch(&h, &c, x, xl, "netascii, blksize 8, windowsize 4, one loss");
	snprintf(tsize, sizeof(tsize), "%zu", xl);
	is_str(h_oack_get(&c, "tsize"), tsize, "netascii tsize is the converted size");
	h_client_free(&c);

	h_client_init(&c, 3, "big.txt", "netascii", o8);
	c.drop_ack = 40;
	c.ack_copies = 2;
	fetch(&h, &c, x, xl, "netascii, lost ACK and duplicate ACKs");
	h_client_free(&c);
	ok(!h.hdr_too_big, "netascii DATA stays within 4 + blksize");
	check_books(&h, "netascii");
	h_fini(&h);
	free(d);
	free(x);
}

/*
 * A max_blksize below 512 caps only what the blksize option negotiates: a
 * request without it still gets 512-byte blocks (RFC 1350), and a netascii
 * block is converted in the engine's scratch, which must hold it (found by
 * tests/fuzz/fuzz_tftp: the scratch was sized from max_blksize alone).
 */
static void
test_netascii_small_cap(void)
{
	struct tftp_limits lim = default_limits;
	size_t len = 1500, xl;
	uint8_t *d = malloc(len), *x = malloc(2 * len);
	struct h_client c;
	struct h h;

	for (size_t i = 0; i < len; i++)
		d[i] = i % 5 == 0 ? '\n' : (uint8_t)('a' + i % 26);
	xl = netascii_ref(d, len, x);
	lim.max_blksize = 8;
	h_init(&h, &lim);
	h_publish(&h, "big.txt", d, len);
	h_client_init(&c, 1, "big.txt", "netascii", NULL);
	fetch(&h, &c, x, xl, "netascii without options under max_blksize 8: 512-byte blocks");
	is_int(c.data_rx, xl / 512 + 1, "netascii under max_blksize 8: 512-byte DATA blocks");
	h_client_free(&c);
	check_books(&h, "netascii small cap");
	h_fini(&h);
	free(d);
	free(x);
}

static void
test_create_limits(void)
{
	struct tftp_limits l = default_limits;
	struct tftp_engine *e;
	int z = 0;

	l.max_transfers = 0;
	ok(tftp_engine_create(&l, &h_ops, &z) == NULL, "0 transfers refused");
	l = default_limits;
	l.port_base = 60;
	ok(tftp_engine_create(&l, &h_ops, &z) == NULL, "port range holding 69 refused");
	l.port_base = 65530;
	ok(tftp_engine_create(&l, &h_ops, &z) == NULL, "port range past 65535 refused");
	l.port_base = 65520;
	e = tftp_engine_create(&l, &h_ops, &z);
	ok(e != NULL && tftp_owns_port(e, 65535) && !tftp_owns_port(e, 69),
		"range ending at 65535 accepted");
	tftp_engine_free(e);
	tftp_engine_free(NULL);
	ok(1, "tftp_engine_free(NULL) is a no-op");
}

/* A quiet engine does nothing on tick before the earliest deadline. */
static void
test_tick_idle(void)
{
	struct h h;
	uint8_t *d = make_file(3000, 15);
	uint8_t req[64];
	size_t n;
	unsigned sends;

	h_init(&h, &default_limits);
	h_publish(&h, "t.bin", d, 3000);
	for (uint32_t i = 0; i < 10; i++) {
		struct tftp_peer p = { 0x0a000100 + i, (uint16_t)(2000 + i) };

		n = h_req(req, sizeof(req), TFTP_RRQ, "t.bin", "octet", NULL);
		h_input(&h, &p, TFTP_PORT, req, n);
		h.now += 10000000;	/* 10 ms apart */
	}
	h_flush(&h);
	sends = h.sends;
	for (int i = 0; i < 1000; i++)
		tftp_tick(h.e, h.now);
	is_int(h.sends, sends, "ticks before any deadline send nothing");
	h.now += 1000000000ull - 100000000ull + 1;	/* first deadline passed */
	tftp_tick(h.e, h.now);
	is_int(h.sends - sends, 1, "only the first transfer is due");
	h_advance(&h, 10000000);
	is_int(h.sends - sends, 2, "then the second");
	h_fini(&h);
	free(d);
}

static void
random_datagram(uint8_t *buf, size_t *len, bool on69)
{
	static const char *const names[] = {
		"a.bin", "b.bin", "missing", "ITLSEP0011AABBCCDD.tlv", "../x", "/etc", "",
	};
	static const char *const modes[] = { "octet", "netascii", "OCTET", "mail", "" };
	static const char *const onames[] = { "blksize", "tsize", "timeout", "windowsize", "x" };
	static const char *const ovals[] = { "0", "8", "512", "70000", "abc", "", "65535", "4" };
	uint64_t r = tap_prng();

	if (r % 4 == 0) {
		/* raw bytes */
		*len = (size_t)(tap_prng() % 600);
		for (size_t i = 0; i < *len; i++)
			buf[i] = (uint8_t)tap_prng();
		if (*len >= 2 && tap_prng() % 2)
			buf[0] = 0, buf[1] = (uint8_t)(tap_prng() % 8);
		return;
	}
	if (on69) {
		const char *opts[9];
		unsigned k = 0, no = (unsigned)(tap_prng() % 4);

		for (unsigned i = 0; i < no; i++) {
			opts[k++] = onames[tap_prng() % 5];
			opts[k++] = ovals[tap_prng() % 8];
		}
		opts[k] = NULL;
		*len = h_req(buf, 600, (uint16_t)(tap_prng() % 3 ? TFTP_RRQ : tap_prng() % 8),
			names[tap_prng() % 7], modes[tap_prng() % 5], opts);
		if (tap_prng() % 8 == 0 && *len > 0)
			*len = (size_t)(tap_prng() % *len);	/* truncate */
		return;
	}
	buf[0] = 0;
	buf[1] = (uint8_t)(tap_prng() % 8 == 0 ? TFTP_ERROR : TFTP_ACK);
	buf[2] = (uint8_t)(tap_prng() % 4 ? 0 : tap_prng());
	buf[3] = (uint8_t)(tap_prng() % 16);
	*len = 4 + (size_t)(tap_prng() % 8 == 0 ? tap_prng() % 8 : 0);
	for (size_t i = 4; i < *len; i++)
		buf[i] = (uint8_t)tap_prng();
}

static void
test_fuzz(void)
{
	struct tftp_limits lim = default_limits;
	struct h h;
	uint8_t *a = make_file(4000, 16), *b = make_file(512 * 3, 17);
	uint8_t buf[1024];
	unsigned worst = 0, broken = 0;

	lim.max_transfers = 8;
	lim.max_windowsize = 8;
	h_init(&h, &lim);
	h_publish(&h, "a.bin", a, 4000);
	h_publish(&h, "b.bin", b, 512 * 3);
	h_publish(&h, "ITLFile.tlv", a, 100);
	for (unsigned i = 0; i < 100000; i++) {
		struct tftp_peer from = { 0x0a000000u + (uint32_t)(tap_prng() % 4),
			(uint16_t)(tap_prng() % 64 == 0 ? 0 : 1000 + tap_prng() % 4) };
		bool on69 = tap_prng() % 3 == 0;
		uint16_t port = on69 ? TFTP_PORT :
			(uint16_t)(lim.port_base - 1 + tap_prng() % (lim.max_transfers + 2));
		size_t len;

		random_datagram(buf, &len, on69);
		h_input(&h, &from, port, buf, len);
		if (tap_prng() % 16 == 0)
			h_advance(&h, tap_prng() % (2 * SEC));
		if (tap_prng() % 1024 == 0)
			h_publish(&h, "a.bin", a, (size_t)(tap_prng() % 4000));
		if (tftp_active(h.e) > worst)
			worst = tftp_active(h.e);
		if (tftp_active(h.e) > lim.max_transfers)
			broken++;
		h_flush(&h);
	}
	is_int(broken, 0, "fuzz: active never above max_transfers");
	ok(worst >= 1, "fuzz: some transfers started (max %u active)", worst);
	ok(tftp_stats(h.e)->completed >= 1, "fuzz: some transfers completed (%llu)",
		(unsigned long long)tftp_stats(h.e)->completed);
	check_books(&h, "fuzz");
	for (int i = 0; i < 100 && tftp_active(h.e) > 0; i++)
		h_advance(&h, 10 * SEC);
	is_int(tftp_active(h.e), 0, "fuzz: every transfer ends by timeout");
	check_books(&h, "fuzz drained");
	h_fini(&h);
	is_int(h.releases, h.lookups_ok, "fuzz: releases match lookups");
	free(a);
	free(b);
}

int
main(void)
{
	test_basic();
	test_exact_multiple();
	test_negotiation();
	test_windows();
	test_rollover();
	test_losses();
	test_retries();
	test_bad_requests();
	test_tids();
	test_table_full();
	test_per_source();
	test_per_source_many();
	test_timeout_cap();
	test_max_life();
	test_port_local();
	test_device_names();
	test_generation_swap();
	test_netascii();
	test_netascii_small_cap();
	test_create_limits();
	test_tick_idle();
	test_fuzz();
	return done_testing();
}
