/*
 * Seed corpora for fuzz_tftp, fuzz_tcp, fuzz_cdproto and fuzz_pub, in the
 * layouts their harnesses read (fuzz_script.h for the engine scripts).
 * Seeds are what a run starts from: the usual exchanges (a fetch with
 * options, a handshake with data and FIN, a command) and the refusals
 * (RST cases, bad requests, a busy table), so the fuzzer need not find
 * the shapes of valid traffic by itself.
 * Usage: fuzz_seeds <dir>  (writes <dir>/{tftp,tcp,cdproto,pub}/NAME)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cdproto.h"
#include "cert.h"
#include "sign.h"
#include "tcp.h"
#include "tftp.h"

struct seed {
	uint8_t b[8192];
	size_t n;
};

static const char *dir;

static void
put(struct seed *s, const void *p, size_t n)
{
	if (s->n + n > sizeof(s->b)) {
		fprintf(stderr, "fuzz_seeds: seed too long\n");
		exit(1);
	}
	if (n != 0)
		memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void
u8(struct seed *s, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(s, &b, 1);
}

static void
u16(struct seed *s, unsigned v)
{
	u8(s, v >> 8);
	u8(s, v);
}

static void
save(const char *sub, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(s->b, 1, s->n, f) != s->n ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* ---- fuzz_tftp: c0 c1, then steps (action << 2 | peer) ---- */

enum { T_RAW69, T_BUILT, T_RAWPORT, T_ACK, T_ERROR, T_CLOCK, T_PLAY, T_PUBLISH };

static void
t_step(struct seed *s, unsigned action, unsigned peer)
{
	u8(s, action << 2 | peer);
}

/* A raw request: op, then NUL-terminated strings. */
static void
t_request(struct seed *s, unsigned peer, unsigned op, const char *const *strs)
{
	struct seed r = { .n = 0 };

	u16(&r, op);
	for (; *strs != NULL; strs++)
		put(&r, *strs, strlen(*strs) + 1);
	t_step(s, T_RAW69, peer);
	u16(s, (unsigned)r.n);
	put(s, r.b, r.n);
}

static void
t_play(struct seed *s, unsigned peer, unsigned rounds)
{
	t_step(s, T_PLAY, peer);
	u8(s, rounds);
}

static void
tftp_seeds(void)
{
	struct seed s = { .n = 0 };

	/* blksize 512, window 1, timeout 1 s; 3 retries, 3 slots */
	u8(&s, 0x4a);
	u8(&s, 0x0a);
	t_request(&s, 0, TFTP_RRQ, (const char *[]){ "a.txt", "octet", NULL });
	t_play(&s, 0, 40);
	save("tftp", "rrq-octet", &s);

	s.n = 0;	/* max blksize 1428, window 4 */
	u8(&s, 0x54);
	u8(&s, 0x0a);
	t_request(&s, 1, TFTP_RRQ, (const char *[]){ "big.bin", "octet", "blksize", "1428",
		"tsize", "0", "timeout", "3", "windowsize", "4", NULL });
	t_play(&s, 1, 100);
	save("tftp", "rrq-options", &s);

	s.n = 0;	/* netascii, blksize 8, a lost ACK, the timer resends */
	u8(&s, 0x49);
	u8(&s, 0x0a);
	t_request(&s, 2, TFTP_RRQ, (const char *[]){ "a.txt", "netascii", "blksize", "8", NULL });
	t_play(&s, 2, 5);
	t_step(&s, T_CLOCK, 2);
	u8(&s, 130);
	t_play(&s, 2, 200);
	save("tftp", "netascii-retransmit", &s);

	s.n = 0;	/* device names and refusals */
	u8(&s, 0x4a);
	u8(&s, 0x0a);
	t_request(&s, 0, TFTP_RRQ, (const char *[]){ "ITLSEP001122AABBCC.tlv", "octet", NULL });
	t_request(&s, 1, TFTP_WRQ, (const char *[]){ "a.txt", "octet", NULL });
	t_request(&s, 1, TFTP_RRQ, (const char *[]){ "../a.txt", "octet", NULL });
	t_request(&s, 1, TFTP_RRQ, (const char *[]){ "missing", "octet", NULL });
	t_request(&s, 1, TFTP_RRQ, (const char *[]){ "forbidden.bin", "octet", NULL });
	t_request(&s, 1, TFTP_RRQ, (const char *[]){ "a.txt", "octet", "blksize", "7", NULL });
	t_request(&s, 1, TFTP_RRQ, (const char *[]){ "a.txt", "mail", NULL });
	t_step(&s, T_ACK, 1);	/* unknown TID: peer 1 at peer 0's port */
	u8(&s, 0);
	t_step(&s, T_ERROR, 0);
	u8(&s, 0);
	save("tftp", "refusals", &s);

	s.n = 0;	/* one slot: the second request finds the table full */
	u8(&s, 0x4a);
	u8(&s, 0x02);
	t_request(&s, 0, TFTP_RRQ, (const char *[]){ "ITLFile.tlv", "octet", NULL });
	t_request(&s, 1, TFTP_RRQ, (const char *[]){ "ITLFile.tlv", "octet", NULL });
	t_step(&s, T_PUBLISH, 0);
	u8(&s, 2);
	t_play(&s, 0, 10);
	t_play(&s, 1, 10);
	save("tftp", "busy-swap", &s);

	s.n = 0;	/* built requests: name, mode, options by index */
	u8(&s, 0x5b);
	u8(&s, 0x1e);
	t_step(&s, T_BUILT, 3);
	put(&s, (const uint8_t[]){ 0, 3, 0, 5, 0, 1, 0x05, 0xb4, 1, 0, 0, 0, 2, 0, 0, 5,
		3, 0, 0, 8, 6, 0, 0, 1 }, 24);
	t_play(&s, 3, 60);
	save("tftp", "built", &s);
}

/* ---- fuzz_tcp: c0 c1, then steps (action << 2 | peer) ---- */

enum { C_SYN, C_SEG, C_RAW, C_CLOCK, C_APP, C_MODE, C_CONNECT, C_DATA };

static void
c_step(struct seed *s, unsigned action, unsigned peer)
{
	u8(s, action << 2 | peer);
}

static void
c_connect(struct seed *s, unsigned peer)
{
	c_step(s, C_CONNECT, peer);
	u8(s, 0);
}

static void
c_data(struct seed *s, unsigned peer, unsigned len, bool fin)
{
	c_step(s, C_DATA, peer);
	u8(s, fin ? TCPH_FIN : 0);
	u16(s, len);
}

/* A segment: flags, seq and ack offsets (scale 1), window, options, length. */
static void
c_seg(struct seed *s, unsigned peer, unsigned flags, int dseq, int dack, unsigned win,
	const uint8_t *opt, unsigned optlen, unsigned len)
{
	c_step(s, C_SEG, peer);
	u8(s, flags);
	u8(s, (unsigned)dseq);
	u8(s, (unsigned)dack);
	u8(s, 0);
	u16(s, win);
	u8(s, optlen);
	put(s, opt, optlen);
	u16(s, len);
}

static void
c_clock(struct seed *s, unsigned t)
{
	c_step(s, C_CLOCK, 0);
	u8(s, t);
}

static void
tcp_seeds(void)
{
	static const uint8_t mss_ws[] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7 };
	struct seed s = { .n = 0 };

	/* 2 slots, defaults; echo, close on the peer's FIN */
	u8(&s, 0x01);
	u8(&s, 0x00);
	c_step(&s, C_MODE, 0);
	u8(&s, 0x05);
	c_connect(&s, 0);
	c_data(&s, 0, 100, false);
	c_data(&s, 0, 0, true);
	c_seg(&s, 0, TCPH_ACK, 0, 0, 65535, NULL, 0, 0);
	c_clock(&s, 50);
	save("tcp", "handshake-data-fin", &s);

	s.n = 0;	/* RSTs: exact, in window (challenge), to the listener */
	u8(&s, 0x01);
	u8(&s, 0x10);
	c_connect(&s, 0);
	c_seg(&s, 0, TCPH_RST, 0, 0, 0, NULL, 0, 0);
	c_connect(&s, 1);
	c_seg(&s, 1, TCPH_RST, 5, 0, 0, NULL, 0, 0);
	c_seg(&s, 1, TCPH_RST | TCPH_ACK, 0, 0, 0, NULL, 0, 0);
	c_seg(&s, 2, TCPH_RST, 0, 0, 0, NULL, 0, 0);
	c_seg(&s, 2, TCPH_ACK, 0, 3, 1000, NULL, 0, 0);	/* bad cookie: RST */
	save("tcp", "rst", &s);

	s.n = 0;	/* options on the SYN, data out of order, then the gap filled */
	u8(&s, 0x22);
	u8(&s, 0x01);
	c_step(&s, C_SYN, 1);
	u8(&s, 3);
	u16(&s, 536);
	u8(&s, 7);
	c_seg(&s, 1, TCPH_ACK, 0, 0, 100, mss_ws, sizeof(mss_ws), 0);
	c_seg(&s, 1, TCPH_ACK, 100, 0, 100, NULL, 0, 50);
	c_data(&s, 1, 100, false);
	c_data(&s, 1, 0, true);
	save("tcp", "options-ooo", &s);

	s.n = 0;	/* answer 5000 bytes after 1, close after it; zero window */
	u8(&s, 0x03);
	u8(&s, 0x40 | 0x80);
	c_step(&s, C_MODE, 0);
	u8(&s, 0x0a);
	c_connect(&s, 0);
	c_data(&s, 0, 1, false);
	c_seg(&s, 0, TCPH_ACK, 0, 0, 0, NULL, 0, 0);
	c_clock(&s, 140);
	c_seg(&s, 0, TCPH_ACK, 0, 0, 65535, NULL, 0, 0);
	c_clock(&s, 20);
	c_seg(&s, 0, TCPH_ACK | TCPH_FIN, 0, 0, 65535, NULL, 0, 0);
	c_step(&s, C_APP, 0);
	u8(&s, 1);
	save("tcp", "answer-zero-window", &s);

	s.n = 0;	/* MSS 88, a 5000-byte answer, three duplicate ACKs */
	u8(&s, 0x04);
	u8(&s, 0x40 | 0x80);
	c_step(&s, C_MODE, 0);
	u8(&s, 0x0a);
	c_connect(&s, 0);
	c_data(&s, 0, 1, false);
	for (int k = 0; k < 3; k++) {
		c_step(&s, C_SEG, 0);	/* ACK, offsets 0, ack from the last one sent */
		put(&s, (const uint8_t[]){ TCPH_ACK, 0, 0, 16, 0xff, 0xff, 0, 0, 0 }, 9);
	}
	c_seg(&s, 0, TCPH_ACK, 0, 0, 65535, NULL, 0, 0);
	save("tcp", "fast-retransmit", &s);

	s.n = 0;	/* we close first: TIME_WAIT, then a new SYN on the tuple */
	u8(&s, 0x00);
	u8(&s, 0x10);
	c_connect(&s, 3);
	c_step(&s, C_APP, 3);
	u8(&s, 0);
	u16(&s, 300);
	c_step(&s, C_APP, 3);
	u8(&s, 1);
	c_seg(&s, 3, TCPH_ACK, 0, 0, 65535, NULL, 0, 0);
	c_seg(&s, 3, TCPH_ACK | TCPH_FIN, 0, 0, 65535, NULL, 0, 0);
	c_step(&s, C_SYN, 3);
	u8(&s, 4);
	save("tcp", "time-wait", &s);
}

/* ---- fuzz_cdproto: side byte, then messages ---- */

static void
cd_msg(struct seed *s, uint32_t type, const void *p, size_t len)
{
	struct cd_hdr h = { type, (uint32_t)len };

	put(s, &h, sizeof(h));
	put(s, p, len);
}

/* A CD_CMD: flags, word count, the words (paths first). */
static void
cd_cmd(struct seed *s, uint32_t flags, const char *const *words)
{
	struct seed p = { .n = 0 };
	uint32_t n = 0;

	for (const char *const *w = words; *w != NULL; w++)
		n++;
	put(&p, &flags, 4);
	put(&p, &n, 4);
	for (; *words != NULL; words++)
		put(&p, *words, strlen(*words) + 1);
	cd_msg(s, CD_CMD, p.b, p.n);
}

static void
cdproto_seeds(void)
{
	static const uint8_t zero[sizeof(struct cd_stats)];
	static const uint8_t ask[] = { 0, 0, 0, 0, 'O', 'K', '?', 0 };
	struct seed s = { .n = 0 };
	uint32_t code = 0;

	u8(&s, 0);	/* the daemon receives */
	cd_msg(&s, CD_MEMORY, NULL, 0);
	cd_msg(&s, CD_STATS, NULL, 0);
	cd_cmd(&s, CD_F_STORE | CD_F_PUB | CD_F_JSON, (const char *[]){ "/var/lib/tvs/store",
		"/var/lib/tvs/publications", "show", "cert", "list", "own", NULL });
	save("cdproto", "client", &s);

	s.n = 0;
	u8(&s, 0);
	cd_cmd(&s, CD_F_YES, (const char *[]){ "utils", "itl", "reset", "localkey",
		"--passphrase-file=/tmp/p", NULL });
	cd_msg(&s, CD_ANSWER, "y", 2);
	save("cdproto", "client-options", &s);

	s.n = 0;
	u8(&s, 1);	/* tvsctl receives */
	cd_msg(&s, CD_OUT, "done\n", 5);
	cd_msg(&s, CD_ERR, "warning\n", 8);
	cd_msg(&s, CD_ASK, ask, sizeof(ask));
	cd_msg(&s, CD_MEMORY, zero, sizeof(struct cd_memory));
	cd_msg(&s, CD_STATS, zero, sizeof(struct cd_stats));
	cd_msg(&s, CD_NOT_MINE, "/var/lib/tvs/store", 19);
	cd_msg(&s, CD_DONE, &code, sizeof(code));
	save("cdproto", "daemon", &s);
}

/* ---- fuzz_pub: index and manifest lengths, index, manifest, a DER ---- */

static void
pub_seeds(void)
{
	struct trust_cert_params cp = { .cn = "cucm", .o = "tvs", .days = 30 };
	struct trust_err err = { 0 };
	struct trust_cert c;
	char sha[65], index[2048], manifest[512];
	struct seed s = { .n = 0 };
	EVP_PKEY *k = trust_key_generate_rsa(1024, &err);

	if (k == NULL || trust_cert_selfsign(k, &cp, &c, &err) != 0) {
		fprintf(stderr, "fuzz_seeds: %s\n", err.msg);
		exit(1);
	}
	trust_hex(c.sha256, 32, sha);
	snprintf(manifest, sizeof(manifest),
		"tvs-manifest 1\ngeneration 7\ncert %s 0,3 86400 certs/%s.der\nend\n", sha, sha);
	snprintf(index, sizeof(index),
		"tvs-publication 1\ngeneration 7\ncreated 1764239999\n"
		"serve ITLFile.tlv %zu %s\nserve SEP001122334455.cnf.xml.sgn %zu %s\n"
		"file manifest %zu %s\nfile certs/%s.der %zu %s\n"
		"file tvs/tvs.pem %zu %s\nfile tvs/tvs.key %zu %s\nend\n",
		c.der_len, sha, c.der_len, sha, strlen(manifest), sha, sha, c.der_len, sha,
		c.der_len, sha, c.der_len, sha);
	u16(&s, (unsigned)strlen(index));
	u16(&s, (unsigned)strlen(manifest));
	put(&s, index, strlen(index));
	put(&s, manifest, strlen(manifest));
	put(&s, c.der, c.der_len);
	save("pub", "full", &s);

	s.n = 0;	/* no manifest: a publication without TVS data */
	snprintf(index, sizeof(index),
		"tvs-publication 1\ngeneration 1\nserve ITLFile.tlv 3 %s\nend\n", sha);
	u16(&s, (unsigned)strlen(index));
	u16(&s, 0);
	put(&s, index, strlen(index));
	put(&s, "ITL", 3);
	save("pub", "minimal", &s);
	trust_cert_free(&c);
	EVP_PKEY_free(k);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds <dir>\n");
		return 2;
	}
	dir = argv[1];
	mkdir(dir, 0755);
	tftp_seeds();
	tcp_seeds();
	cdproto_seeds();
	pub_seeds();
	return 0;
}
