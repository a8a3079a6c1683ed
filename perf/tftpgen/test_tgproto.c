/*
 * Unit tests of the load generators' TFTP client (tgproto.c) and their
 * latency histogram (tgstats.c), against a small scripted server.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "tgproto.h"
#include "tgstats.h"

#define MS 1000000ULL

static uint8_t file[600000];

/* A minimal windowed server: after ACK n it sends blocks n+1 .. n+w. */
struct srv {
	uint16_t blksize, window;
	size_t len;
	uint64_t acked;		/* absolute block number */
	unsigned acks;
};

static size_t
srv_data(const struct srv *s, uint64_t block, uint8_t *out)
{
	uint64_t off = (block - 1) * s->blksize;
	size_t n = off >= s->len ? 0 : s->len - off;

	if (n > s->blksize)
		n = s->blksize;
	out[0] = 0;
	out[1] = 3;
	out[2] = (uint8_t)(block >> 8);
	out[3] = (uint8_t)block;
	memcpy(out + 4, file + off, n);
	return 4 + n;
}

static uint64_t
nblocks(const struct srv *s)
{
	return s->len / s->blksize + 1;
}

/* Runs one whole transfer; returns the final action. drop_block, if not 0,
 * is lost once on its first sending. */
static enum tg_action
transfer(struct tg_xfer *x, const struct tg_params *p, struct srv *s, bool oack,
	uint64_t drop_block, unsigned *sends)
{
	uint8_t out[TG_RRQ_MAX], pkt[70000];
	size_t outlen;
	enum tg_action a = TG_NONE;
	unsigned rounds = 0;
	bool dropped = false;

	*sends = 0;
	if (oack) {
		size_t n = 2;

		/* the OACK grants exactly what the client asked */
		memcpy(pkt, "\0\6", 2);
		if (p->tsize)
			n += sprintf((char *)pkt + n, "tsize%c%zu", 0, s->len) + 1;
		if (p->blksize)
			n += sprintf((char *)pkt + n, "blksize%c%u", 0, s->blksize) + 1;
		if (p->windowsize)
			n += sprintf((char *)pkt + n, "windowsize%c%u", 0, s->window) + 1;
		a = tg_input(x, p, 1, 4000, pkt, n, out, &outlen);
		if (a != TG_SEND || outlen != 4 || out[1] != 4 || out[3] != 0)
			return TG_FAIL;
		(*sends)++;
	}
	s->acked = 0;
	while (rounds++ < 200000) {
		uint64_t b, last = s->acked + s->window;

		if (last > nblocks(s))
			last = nblocks(s);
		for (b = s->acked + 1; b <= last; b++) {
			size_t n = srv_data(s, b, pkt);

			if (b == drop_block && !dropped) {
				dropped = true;
				continue;
			}
			a = tg_input(x, p, 2, 4000, pkt, n, out, &outlen);
			if (a == TG_SEND || a == TG_DONE) {
				uint16_t ack = (uint16_t)(out[2] << 8 | out[3]);

				(*sends)++;
				s->acks++;
				/* the server maps the 16-bit ACK onto its window */
				s->acked = (s->acked & ~0xffffULL) | ack;
				if (s->acked + 0x8000 < b)
					s->acked += 0x10000;
				if (a == TG_DONE)
					return a;
				break;
			}
			if (a == TG_FAIL)
				return a;
		}
		if (a == TG_NONE || a == TG_STALE) {
			/* window ended without an ACK: the client's timer fires */
			a = tg_timer(x, p, 10 * MS + rounds * 10 * MS, out, &outlen);
			if (a != TG_SEND)
				return a;
			s->acked = (s->acked & ~0xffffULL) | (uint16_t)(out[2] << 8 | out[3]);
		}
	}
	return TG_NONE;
}

static void
init_params(struct tg_params *p, uint16_t blk, uint16_t win)
{
	memset(p, 0, sizeof(*p));
	p->blksize = blk;
	p->windowsize = win;
	p->tsize = true;
	p->retries = 3;
	p->timeout_ns = 5 * MS;
	p->expect_size = -1;
}

static void
test_name_and_rrq(void)
{
	struct tg_params p;
	struct tg_xfer x;
	uint8_t out[TG_RRQ_MAX];
	char name[64];
	unsigned blk = 0, win = 0;
	bool tsize;
	size_t n;

	tg_phone_name(name, sizeof(name), 0x0a1b2c00ab01ULL);
	is_str(name, "ITLSEP0A1B2C00AB01.tlv", "phone file name is ITLSEP<MAC>.tlv");
	init_params(&p, 1428, 8);
	n = tg_start(&x, &p, name, 0, out);
	ok(n > 0 && tg_parse_rrq(out, n, name, sizeof(name), &blk, &win, &tsize),
		"RRQ parses back");
	is_str(name, "ITLSEP0A1B2C00AB01.tlv", "RRQ carries the file name");
	ok(blk == 1428 && win == 8 && tsize, "RRQ asks blksize 1428, windowsize 8, tsize");
	ok(memcmp(out + 2 + strlen(name) + 1, "octet", 6) == 0, "RRQ mode is octet");
	init_params(&p, 0, 0);
	p.tsize = false;
	n = tg_start(&x, &p, "ITLFile.tlv", 0, out);
	is_int(n, 2 + 12 + 6, "plain RRQ has no options");
}

static void
test_transfers(void)
{
	struct tg_params p;
	struct tg_xfer x;
	struct srv s;
	uint8_t out[TG_RRQ_MAX];
	unsigned sends, i;
	enum tg_action a;

	for (i = 0; i < sizeof(file); i++)
		file[i] = (uint8_t)(i * 7 + (i >> 8));

	init_params(&p, 1428, 0);
	p.verify = file;
	p.verify_len = 6000;
	s = (struct srv){ .blksize = 1428, .window = 1, .len = 6000 };
	tg_start(&x, &p, "ITLFile.tlv", 0, out);
	a = transfer(&x, &p, &s, true, 0, &sends);
	is_int(a, TG_DONE, "lock-step transfer with OACK completes");
	is_int(x.bytes, 6000, "all 6000 bytes received");
	is_int(sends, 1 + 5, "ACK 0 + one ACK per block (4 full + final)");
	is_int(x.retransmits, 0, "no retransmission on a clean link");

	/* exact multiple of blksize: a final empty block */
	p.verify_len = 2856;
	s = (struct srv){ .blksize = 1428, .window = 1, .len = 2856 };
	tg_start(&x, &p, "ITLFile.tlv", 0, out);
	is_int(transfer(&x, &p, &s, true, 0, &sends), TG_DONE,
		"file of 2 whole blocks ends with an empty block");
	is_int(sends, 1 + 3, "ACK 0 + 3 ACKs");

	/* windowsize 4: one ACK per window */
	init_params(&p, 512, 4);
	p.verify = file;
	p.verify_len = 5000;
	s = (struct srv){ .blksize = 512, .window = 4, .len = 5000 };
	tg_start(&x, &p, "ITLFile.tlv", 0, out);
	is_int(transfer(&x, &p, &s, true, 0, &sends), TG_DONE, "windowed transfer completes");
	is_int(sends, 1 + 3, "10 blocks in windows of 4: ACK 0 + 3 ACKs");

	/* a block lost inside a window: the client re-ACKs the last good one */
	tg_start(&x, &p, "ITLFile.tlv", 0, out);
	is_int(transfer(&x, &p, &s, true, 6, &sends), TG_DONE,
		"windowed transfer survives a lost block");
	is_int(x.bytes, 5000, "and delivers every byte once");
	ok(x.dups >= 1, "the out-of-order blocks were noticed (%u)", x.dups);

	/* the server ignores the options: RFC 1350 512-byte blocks */
	init_params(&p, 1428, 8);
	p.verify = file;
	p.verify_len = 1500;
	s = (struct srv){ .blksize = 512, .window = 1, .len = 1500 };
	tg_start(&x, &p, "ITLFile.tlv", 0, out);
	is_int(transfer(&x, &p, &s, false, 0, &sends), TG_DONE,
		"server without options: 512-byte lock-step");
	is_int(x.blksize, 512, "blksize fell back to 512");

	/* more than 65535 blocks: the 16-bit block number wraps */
	init_params(&p, 8, 0);
	p.tsize = false;
	p.verify = file;
	p.verify_len = 8 * 70000 + 3 > sizeof(file) ? 0 : 8 * 70000 + 3;
	ok(p.verify_len != 0, "test file is large enough for the wrap test");
	s = (struct srv){ .blksize = 8, .window = 1, .len = p.verify_len };
	tg_start(&x, &p, "big", 0, out);
	is_int(transfer(&x, &p, &s, true, 0, &sends), TG_DONE,
		"70001 blocks of 8 bytes: block numbers roll over");
	is_int(x.bytes, 8 * 70000 + 3, "every byte after the rollover");
}

static void
test_failures(void)
{
	struct tg_params p;
	struct tg_xfer x;
	uint8_t out[TG_RRQ_MAX], rrq[TG_RRQ_MAX];
	size_t outlen, n;
	static const uint8_t bad_opt[] = "\0\6blksize\0" "1428\0color\0" "red";
	static const uint8_t big_blk[] = "\0\6blksize\0" "9000";
	static const uint8_t err[] = "\0\5\0\1File not found";
	uint8_t data[600] = { 0, 3, 0, 1 };
	enum tg_action a;

	init_params(&p, 1428, 0);
	tg_start(&x, &p, "x", 0, out);
	a = tg_input(&x, &p, 1, 5000, bad_opt, sizeof(bad_opt), out, &outlen);
	ok(a == TG_FAIL && x.fail == TG_FAIL_OPTION, "OACK with an option never asked fails");
	ok(outlen > 4 && out[1] == 5 && out[3] == 8, "and answers ERROR 8");

	tg_start(&x, &p, "x", 0, out);
	a = tg_input(&x, &p, 1, 5000, big_blk, sizeof(big_blk), out, &outlen);
	ok(a == TG_FAIL && x.fail == TG_FAIL_OPTION, "OACK blksize above the request fails");

	tg_start(&x, &p, "x", 0, out);
	a = tg_input(&x, &p, 1, 5000, err, sizeof(err), out, &outlen);
	ok(a == TG_FAIL && x.fail == TG_FAIL_ERROR_PKT && x.error_code == 1,
		"server ERROR 1 fails the transfer");

	/* timeouts: RRQ resent identically, then failure */
	n = tg_start(&x, &p, "x", 0, rrq);
	is_int(tg_timer(&x, &p, 4 * MS, out, &outlen), TG_NONE, "no timeout before 5 ms");
	a = tg_timer(&x, &p, 5 * MS, out, &outlen);
	ok(a == TG_SEND && outlen == n && memcmp(out, rrq, n) == 0,
		"timeout resends the same RRQ");
	tg_timer(&x, &p, 10 * MS, out, &outlen);
	tg_timer(&x, &p, 15 * MS, out, &outlen);
	a = tg_timer(&x, &p, 20 * MS, out, &outlen);
	ok(a == TG_FAIL && x.fail == TG_FAIL_TIMEOUT && x.retransmits == 3,
		"fails after 3 retransmissions");

	/* wrong TID, duplicate DATA */
	init_params(&p, 0, 0);
	p.tsize = false;
	tg_start(&x, &p, "x", 0, out);
	memset(data + 4, 'a', 512);
	data[3] = 5;
	is_int(tg_input(&x, &p, 1, 5999, data, 516, out, &outlen), TG_STALE,
		"before the TID is known, DATA 5 (a late copy for this port) is stale");
	ok(x.tid == 0, "... and does not become the TID");
	data[3] = 1;
	a = tg_input(&x, &p, 1, 6000, data, 516, out, &outlen);
	ok(a == TG_SEND && outlen == 4 && out[3] == 1, "DATA 1 without options is ACKed");
	is_int(tg_input(&x, &p, 1, 6001, data, 516, out, &outlen), TG_STALE,
		"DATA from another port is stale");
	a = tg_input(&x, &p, 1, 6000, data, 516, out, &outlen);
	ok(a == TG_SEND && out[3] == 1, "duplicate DATA 1 is re-ACKed once");
	is_int(tg_input(&x, &p, 1, 6000, data, 516, out, &outlen), TG_STALE,
		"a second duplicate is not re-ACKed (no Sorcerer's Apprentice)");
	data[3] = 2;
	a = tg_input(&x, &p, 1, 6000, data, 100, out, &outlen);
	ok(a == TG_DONE && x.bytes == 512 + 96, "short block 2 ends the transfer");

	/* content and size checks */
	init_params(&p, 0, 0);
	p.tsize = false;
	p.verify = file;
	p.verify_len = 100;
	tg_start(&x, &p, "x", 0, out);
	data[3] = 1;
	memset(data + 4, 0xee, 100);
	a = tg_input(&x, &p, 1, 6000, data, 104, out, &outlen);
	ok(a == TG_FAIL && x.fail == TG_FAIL_VERIFY, "wrong content fails the transfer");
	p.verify = NULL;
	p.expect_size = 99;
	tg_start(&x, &p, "x", 0, out);
	a = tg_input(&x, &p, 1, 6000, data, 104, out, &outlen);
	ok(a == TG_FAIL && x.fail == TG_FAIL_SIZE, "size other than --expect-size fails");
	is_int(tg_input(&x, &p, 1, 6000, data, 104, out, &outlen), TG_STALE,
		"a finished transfer ignores further packets");
}

static void
test_hist(void)
{
	static struct tg_hist h, h2;
	uint64_t i, p50, p99;

	for (i = 1; i <= 1000; i++)
		tg_hist_add(i <= 500 ? &h : &h2, i * 1000);
	tg_hist_merge(&h, &h2);
	p50 = tg_hist_quantile(&h, 0.5);
	p99 = tg_hist_quantile(&h, 0.99);
	ok(p50 > 500000 * 0.96 && p50 < 500000 * 1.04, "p50 of 1..1000 us is ~500 us (%llu)",
		(unsigned long long)p50);
	ok(p99 > 990000 * 0.96 && p99 <= 1000000, "p99 is ~990 us (%llu)",
		(unsigned long long)p99);
	is_int(h.n, 1000, "merge adds the counts");
	is_int(tg_hist_quantile(&h, 1.0), 1000000, "p100 is the maximum");
	memset(&h, 0, sizeof(h));
	tg_hist_add(&h, 37);
	is_int(tg_hist_quantile(&h, 0.5), 37, "small values are exact");
	tg_hist_add(&h, UINT64_MAX / 2);
	ok(tg_hist_quantile(&h, 1.0) >= UINT64_MAX / 2 / 100 * 96
		&& tg_hist_quantile(&h, 1.0) <= UINT64_MAX / 2,
		"huge values land in the last buckets, within 4 %%");
}

int
main(void)
{
	test_name_and_rrq();
	test_transfers();
	test_failures();
	test_hist();
	return done_testing();
}
