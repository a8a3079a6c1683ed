/*
 * pcapgen: request mixes for tvsd as pcap files, and the check of what
 * came back (perf/pktgen/README.md).
 *
 *   pcapgen [--count N] [--mix itl=40,ctl=20,cnf=30,syn=10,miss=0]
 *           [--dst-mac M] [--dst-ip A] [--src-mac M] [--src-net A/len]
 *           [--phones N] [--mac-base HEX12] [--seed N] --out FILE
 *   pcapgen --check REQ.pcap REPLIES.pcap [--min-ratio R]
 *           [--expect class=kind,...] [--dst-ip A]
 *
 * Generation writes what a fleet of phones sends when it boots: TFTP RRQs
 * for ITLSEP<MAC>.tlv, CTLSEP<MAC>.tlv and SEP<MAC>.cnf.xml.sgn (and, with
 * a "miss" weight, a file no publication has) with the option sets phone
 * firmwares use, and TCP SYNs to the TVS port 2445 with the options of a
 * Linux-based phone stack. Every request has its own (source address,
 * source port), so that --check can pair each reply with its request by
 * the reply's destination alone (a TFTP server answers from a new port).
 * Checksums are correct: tvsd drops and counts bad ones.
 *
 * The check reads both files, classifies each reply (OACK, DATA block 1,
 * other DATA, ERROR code N, SYN-ACK, RST, other) by the request it
 * answers, prints one row per request class and exits 1 when a class got
 * fewer answered requests than --min-ratio (default 1.0) of its requests,
 * counting only first replies of the --expect'ed kind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#define PCG_TFTP_PORT	69
#define PCG_TVS_PORT	2445
#define PCG_EPHEMERAL	49152		/* phones' first source port */
#define PCG_PORTS	16384		/* source ports per phone */
#define PCG_FRAME_MAX	256

/* Request classes; the order is the order of --mix and of the table. */
enum pcg_class { PCG_ITL, PCG_CTL, PCG_CNF, PCG_SYN, PCG_MISS, PCG_NCLASS };
static const char *const pcg_class_names[PCG_NCLASS] = { "itl", "ctl", "cnf", "syn", "miss" };

/* What a reply is. */
enum pcg_kind {
	PCG_K_OACK, PCG_K_DATA1, PCG_K_DATA, PCG_K_ERROR, PCG_K_SYNACK, PCG_K_RST,
	PCG_K_OTHER, PCG_NKIND
};
static const char *const pcg_kind_names[PCG_NKIND] = {
	"oack", "data1", "data", "error", "synack", "rst", "other"
};

/* A TFTP option set: name/value pairs, NULL-terminated, with a weight. */
struct pcg_optset {
	unsigned weight;
	const char *opts[8];
};

/*
 * What phones ask for, by what the firmwares send: 79xx/69xx send no
 * options or blksize+tsize, 78xx/88xx blksize 1428 with tsize and often
 * windowsize, some ask for a short timeout.
 */
static const struct pcg_optset pcg_optsets[] = {
	{ 20, { NULL } },
	{ 35, { "blksize", "1428", "tsize", "0", NULL } },
	{ 25, { "blksize", "1428", "windowsize", "8", "tsize", "0", NULL } },
	{ 10, { "blksize", "1428", "timeout", "1", "tsize", "0", NULL } },
	{ 10, { "timeout", "1", NULL } },
};
#define PCG_NOPTSETS (sizeof(pcg_optsets) / sizeof(pcg_optsets[0]))

struct pcg_gen {
	unsigned long count;
	unsigned weights[PCG_NCLASS];
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	bool have_src_mac;
	uint32_t dst_ip;		/* host byte order */
	uint32_t net, prefix;
	unsigned long phones;
	uint64_t mac_base;
	uint64_t seed;
	const char *out;
};

static const char *pcg_prog = "pcapgen";

static void
pcg_usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--count N] [--mix itl=W,ctl=W,cnf=W,syn=W,miss=W] [--dst-mac M]\n"
		"       [--dst-ip A] [--src-mac M] [--src-net A/len] [--phones N]\n"
		"       [--mac-base HEX12] [--seed N] --out FILE\n"
		"       %s --check REQ.pcap REPLIES.pcap [--min-ratio R]\n"
		"       [--expect class=kind,...] [--dst-ip A]\n"
		"kinds for --expect: any, file (oack or data1), oack, data1, error, errorN, synack, rst\n",
		pcg_prog, pcg_prog);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
pcg_die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", pcg_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* xorshift64*: reproducible for a --seed, no libc state. */
static uint64_t
pcg_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static unsigned long
pcg_ulong(const char *opt, const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < min || v > max)
		pcg_die_usage("%s: '%s' is not a number from %lu to %lu", opt, s, min, max);
	return v;
}

static void
pcg_parse_mac(const char *opt, const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
			&tail) != 6)
		pcg_die_usage("%s: '%s' is not a MAC address like 02:00:00:00:00:01", opt, s);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
}

static uint32_t
pcg_parse_ip(const char *opt, const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		pcg_die_usage("%s: '%s' is not an IPv4 address", opt, s);
	return ntohl(a.s_addr);
}

static void
pcg_parse_net(const char *s, uint32_t *net, uint32_t *prefix)
{
	char buf[32];
	const char *slash = strchr(s, '/');

	if (slash == NULL || (size_t)(slash - s) >= sizeof(buf))
		pcg_die_usage("--src-net: '%s' is not A.B.C.D/len", s);
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	*prefix = (uint32_t)pcg_ulong("--src-net length", slash + 1, 8, 30);
	*net = pcg_parse_ip("--src-net", buf) & (0xffffffffU << (32 - *prefix));
}

static int
pcg_class_by_name(const char *s, size_t len)
{
	for (int c = 0; c < PCG_NCLASS; c++)
		if (strlen(pcg_class_names[c]) == len && strncmp(pcg_class_names[c], s, len) == 0)
			return c;
	return -1;
}

static void
pcg_parse_mix(const char *s, unsigned w[PCG_NCLASS])
{
	char *copy = strdup(s), *save = NULL, *item;
	unsigned sum = 0;

	if (copy == NULL)
		pcg_die_usage("out of memory");
	memset(w, 0, sizeof(unsigned) * PCG_NCLASS);
	for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int c = eq != NULL ? pcg_class_by_name(item, (size_t)(eq - item)) : -1;

		if (c < 0)
			pcg_die_usage("--mix: '%s' is not class=weight with class itl, ctl, cnf, syn or miss",
				item);
		w[c] = (unsigned)pcg_ulong("--mix weight", eq + 1, 0, 1000000);
		sum += w[c];
	}
	free(copy);
	if (sum == 0)
		pcg_die_usage("--mix: every weight is 0");
}

/* Ones-complement sum of a buffer, folded later. */
static uint32_t
pcg_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t
pcg_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void
pcg_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
pcg_put32(uint8_t *p, uint32_t v)
{
	pcg_put16(p, (uint16_t)(v >> 16));
	pcg_put16(p + 2, (uint16_t)v);
}

/* Ethernet + IPv4 header; l4len bytes of layer 4 follow at f + 34. */
static void
pcg_l2l3(uint8_t *f, const struct pcg_gen *g, const uint8_t src_mac[6], uint32_t src_ip,
	uint8_t proto, size_t l4len, uint16_t ip_id, bool df)
{
	uint8_t *ip = f + 14;

	memcpy(f, g->dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	pcg_put16(f + 12, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0;
	pcg_put16(ip + 2, (uint16_t)(20 + l4len));
	pcg_put16(ip + 4, ip_id);
	pcg_put16(ip + 6, df ? 0x4000 : 0);
	ip[8] = 64;
	ip[9] = proto;
	pcg_put16(ip + 10, 0);
	pcg_put32(ip + 12, src_ip);
	pcg_put32(ip + 16, g->dst_ip);
	pcg_put16(ip + 10, pcg_fold(pcg_sum(ip, 20, 0)));
}

/* The layer-4 checksum over the IPv4 pseudo header and l4len bytes. */
static uint16_t
pcg_l4_cksum(const uint8_t *ip, size_t l4len)
{
	uint32_t sum = pcg_sum(ip + 12, 8, 0);

	sum += ip[9];
	sum += (uint32_t)l4len;
	sum = pcg_sum(ip + 20, l4len, sum);
	return pcg_fold(sum);
}

static size_t
pcg_tftp_rrq(uint8_t *f, const struct pcg_gen *g, const uint8_t src_mac[6], uint32_t src_ip,
	uint16_t sport, const char *name, const struct pcg_optset *os, uint64_t *rng)
{
	uint8_t *udp = f + 34, *p = udp + 8;
	size_t n;

	pcg_put16(p, 1);		/* RRQ */
	p += 2;
	n = strlen(name) + 1;
	memcpy(p, name, n);
	p += n;
	memcpy(p, "octet", 6);
	p += 6;
	for (int i = 0; os->opts[i] != NULL; i++) {
		n = strlen(os->opts[i]) + 1;
		memcpy(p, os->opts[i], n);
		p += n;
	}
	n = (size_t)(p - udp);
	pcg_put16(udp, sport);
	pcg_put16(udp + 2, PCG_TFTP_PORT);
	pcg_put16(udp + 4, (uint16_t)n);
	pcg_put16(udp + 6, 0);
	pcg_l2l3(f, g, src_mac, src_ip, 17, n, (uint16_t)pcg_rand(rng), false);
	uint16_t ck = pcg_l4_cksum(f + 14, n);
	pcg_put16(udp + 6, ck == 0 ? 0xffff : ck);
	return 34 + n;
}

/* A SYN as a Linux stack sends it: MSS, SACK permitted, timestamps, NOP, wscale 7. */
static size_t
pcg_tcp_syn(uint8_t *f, const struct pcg_gen *g, const uint8_t src_mac[6], uint32_t src_ip,
	uint16_t sport, uint64_t *rng)
{
	uint8_t *tcp = f + 34, *o = tcp + 20;
	const size_t n = 40;

	memset(tcp, 0, n);
	pcg_put16(tcp, sport);
	pcg_put16(tcp + 2, PCG_TVS_PORT);
	pcg_put32(tcp + 4, (uint32_t)pcg_rand(rng));
	tcp[12] = (uint8_t)((n / 4) << 4);
	tcp[13] = 0x02;			/* SYN */
	pcg_put16(tcp + 14, 64240);
	o[0] = 2; o[1] = 4; pcg_put16(o + 2, 1460);
	o[4] = 4; o[5] = 2;
	o[6] = 8; o[7] = 10; pcg_put32(o + 8, (uint32_t)pcg_rand(rng)); pcg_put32(o + 12, 0);
	o[16] = 1;
	o[17] = 3; o[18] = 3; o[19] = 7;
	pcg_l2l3(f, g, src_mac, src_ip, 6, n, (uint16_t)pcg_rand(rng), true);
	pcg_put16(tcp + 16, pcg_l4_cksum(f + 14, n));
	return 34 + n;
}

/* Phone n's address: the n-th host of --src-net that is not --dst-ip. */
static uint32_t
pcg_phone_ip(const struct pcg_gen *g, unsigned long n)
{
	uint32_t ip = g->net + 1 + (uint32_t)n;
	bool dst_inside = (g->dst_ip & (0xffffffffU << (32 - g->prefix))) == g->net;

	return dst_inside && ip >= g->dst_ip ? ip + 1 : ip;
}

static unsigned
pcg_pick(uint64_t *rng, const unsigned *w, size_t n)
{
	uint64_t sum = 0, r;

	for (size_t i = 0; i < n; i++)
		sum += w[i];
	r = pcg_rand(rng) % sum;
	for (size_t i = 0; i < n; i++) {
		if (r < w[i])
			return (unsigned)i;
		r -= w[i];
	}
	return (unsigned)(n - 1);
}

static int
pcg_generate(const struct pcg_gen *g)
{
	uint64_t rng = g->seed * 0x9E3779B97F4A7C15ULL + 1;
	unsigned osw[PCG_NOPTSETS];
	unsigned long *sent;
	unsigned long per_class[PCG_NCLASS] = { 0 };
	uint8_t frame[PCG_FRAME_MAX];
	pcap_t *pd;
	pcap_dumper_t *dump;
	struct pcap_pkthdr h;

	for (size_t i = 0; i < PCG_NOPTSETS; i++)
		osw[i] = pcg_optsets[i].weight;
	sent = calloc(g->phones, sizeof(*sent));
	pd = pcap_open_dead(DLT_EN10MB, 65535);
	if (sent == NULL || pd == NULL) {
		fprintf(stderr, "%s: out of memory\n", pcg_prog);
		return 1;
	}
	dump = pcap_dump_open(pd, g->out);
	if (dump == NULL) {
		fprintf(stderr, "%s: cannot write %s: %s\n", pcg_prog, g->out, pcap_geterr(pd));
		pcap_close(pd);
		free(sent);
		return 1;
	}
	memset(&h, 0, sizeof(h));
	h.ts.tv_sec = 1700000000;
	for (unsigned long i = 0; i < g->count; i++) {
		unsigned long ph = (unsigned long)(pcg_rand(&rng) % g->phones);
		unsigned c = pcg_pick(&rng, g->weights, PCG_NCLASS);
		uint64_t mac = g->mac_base + ph;
		uint8_t pmac[6];
		uint32_t src_ip = pcg_phone_ip(g, ph);
		uint16_t sport = (uint16_t)(PCG_EPHEMERAL + sent[ph]++ % PCG_PORTS);
		char name[64];
		size_t len;

		for (int k = 0; k < 6; k++)
			pmac[k] = (uint8_t)(mac >> (40 - 8 * k));
		switch (c) {
		case PCG_ITL:
			snprintf(name, sizeof(name), "ITLSEP%012" PRIX64 ".tlv", mac);
			break;
		case PCG_CTL:
			snprintf(name, sizeof(name), "CTLSEP%012" PRIX64 ".tlv", mac);
			break;
		case PCG_CNF:
			snprintf(name, sizeof(name), "SEP%012" PRIX64 ".cnf.xml.sgn", mac);
			break;
		case PCG_MISS:
			/* what phones ask for that an ITL appliance does not publish */
			snprintf(name, sizeof(name), "g3-tones.xml");
			break;
		default:
			name[0] = '\0';
		}
		if (c == PCG_SYN)
			len = pcg_tcp_syn(frame, g, g->have_src_mac ? g->src_mac : pmac, src_ip, sport,
				&rng);
		else
			len = pcg_tftp_rrq(frame, g, g->have_src_mac ? g->src_mac : pmac, src_ip, sport,
				name, &pcg_optsets[pcg_pick(&rng, osw, PCG_NOPTSETS)], &rng);
		h.caplen = h.len = (bpf_u_int32)len;
		pcap_dump((u_char *)dump, &h, frame);
		per_class[c]++;
		/* 1 us apart: replay tools that honour timestamps get a steady 1 Mpps */
		if (++h.ts.tv_usec == 1000000) {
			h.ts.tv_usec = 0;
			h.ts.tv_sec++;
		}
	}
	free(sent);
	if (pcap_dump_flush(dump) != 0) {
		fprintf(stderr, "%s: cannot write %s\n", pcg_prog, g->out);
		pcap_dump_close(dump);
		pcap_close(pd);
		return 1;
	}
	pcap_dump_close(dump);
	pcap_close(pd);
	printf("%s: %lu packets:", g->out, g->count);
	for (int c = 0; c < PCG_NCLASS; c++)
		printf(" %s %lu", pcg_class_names[c], per_class[c]);
	printf(" (%lu phones)\n", g->phones);
	return 0;
}

/* ---- the check ---- */

struct pcg_req {
	uint64_t key;			/* ip << 24 | port << 8 | proto; 0: empty slot */
	uint8_t cls;
	uint8_t first;			/* kind of the first reply, PCG_NKIND: none */
	uint32_t replies;
};

struct pcg_tab {
	struct pcg_req *slot;
	size_t mask;
};

static uint64_t
pcg_key(uint32_t ip, uint16_t port, uint8_t proto)
{
	return (uint64_t)ip << 24 | (uint64_t)port << 8 | proto;
}

static struct pcg_req *
pcg_find(struct pcg_tab *t, uint64_t key, bool add)
{
	size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & t->mask;

	for (;; i = (i + 1) & t->mask) {
		if (t->slot[i].key == key)
			return &t->slot[i];
		if (t->slot[i].key == 0) {
			if (!add)
				return NULL;
			t->slot[i].key = key;
			t->slot[i].first = PCG_NKIND;
			return &t->slot[i];
		}
	}
}

/* The parts of a frame the check looks at. */
struct pcg_pkt {
	uint32_t src_ip, dst_ip;
	uint16_t sport, dport;
	uint8_t proto;
	const uint8_t *l4;		/* payload after the UDP or TCP header */
	size_t l4len;
	uint8_t tcp_flags;
};

static bool
pcg_parse(const uint8_t *f, size_t len, struct pcg_pkt *p)
{
	size_t off = 14, ihl;
	uint16_t et;

	if (len < 14)
		return false;
	et = (uint16_t)(f[12] << 8 | f[13]);
	if (et == 0x8100 && len >= 18) {
		et = (uint16_t)(f[16] << 8 | f[17]);
		off = 18;
	}
	if (et != 0x0800 || len < off + 20 || (f[off] >> 4) != 4)
		return false;
	ihl = (size_t)(f[off] & 15) * 4;
	if (ihl < 20 || len < off + ihl)
		return false;
	p->proto = f[off + 9];
	p->src_ip = (uint32_t)f[off + 12] << 24 | (uint32_t)f[off + 13] << 16 |
		(uint32_t)f[off + 14] << 8 | f[off + 15];
	p->dst_ip = (uint32_t)f[off + 16] << 24 | (uint32_t)f[off + 17] << 16 |
		(uint32_t)f[off + 18] << 8 | f[off + 19];
	off += ihl;
	if (p->proto == 17 && len >= off + 8) {
		p->l4 = f + off + 8;
		p->l4len = len - off - 8;
		p->tcp_flags = 0;
	} else if (p->proto == 6 && len >= off + 20) {
		size_t doff = (size_t)(f[off + 12] >> 4) * 4;

		if (doff < 20 || len < off + doff)
			return false;
		p->l4 = f + off + doff;
		p->l4len = len - off - doff;
		p->tcp_flags = f[off + 13];
	} else {
		return false;
	}
	p->sport = (uint16_t)(f[off] << 8 | f[off + 1]);
	p->dport = (uint16_t)(f[off + 2] << 8 | f[off + 3]);
	return true;
}

static int
pcg_classify_request(const struct pcg_pkt *p)
{
	char name[256];
	size_t n;

	if (p->proto == 6)
		return p->dport == PCG_TVS_PORT && (p->tcp_flags & 0x12) == 0x02 ? PCG_SYN : -1;
	if (p->dport != PCG_TFTP_PORT || p->l4len < 4 || p->l4[0] != 0 || p->l4[1] != 1)
		return -1;
	n = strnlen((const char *)p->l4 + 2, p->l4len - 2);
	if (n == p->l4len - 2 || n >= sizeof(name))
		return -1;
	memcpy(name, p->l4 + 2, n);
	name[n] = '\0';
	if (strncasecmp(name, "ITLSEP", 6) == 0)
		return PCG_ITL;
	if (strncasecmp(name, "CTLSEP", 6) == 0)
		return PCG_CTL;
	if (strncasecmp(name, "SEP", 3) == 0 && strcasestr(name, ".cnf.xml") != NULL)
		return PCG_CNF;
	return PCG_MISS;
}

/* Kind of a reply; *code gets the TFTP error code. */
static int
pcg_classify_reply(const struct pcg_pkt *p, unsigned *code)
{
	if (p->proto == 6) {
		if ((p->tcp_flags & 0x12) == 0x12)
			return PCG_K_SYNACK;
		return p->tcp_flags & 0x04 ? PCG_K_RST : PCG_K_OTHER;
	}
	if (p->l4len < 4 || p->l4[0] != 0)
		return PCG_K_OTHER;
	switch (p->l4[1]) {
	case 3:
		return p->l4[2] == 0 && p->l4[3] == 1 ? PCG_K_DATA1 : PCG_K_DATA;
	case 5:
		*code = (unsigned)(p->l4[2] << 8 | p->l4[3]);
		return PCG_K_ERROR;
	case 6:
		return PCG_K_OACK;
	default:
		return PCG_K_OTHER;
	}
}

/* An expectation: kind K_* or a pseudo kind; error code for "errorN". */
enum { PCG_E_ANY = 100, PCG_E_FILE, PCG_E_ERRCODE };

struct pcg_expect {
	int kind;
	unsigned code;
};

static void
pcg_parse_expect(const char *s, struct pcg_expect ex[PCG_NCLASS])
{
	char *copy = strdup(s), *save = NULL, *item;

	if (copy == NULL)
		pcg_die_usage("out of memory");
	for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int c = eq != NULL ? pcg_class_by_name(item, (size_t)(eq - item)) : -1;
		const char *k = eq != NULL ? eq + 1 : "";

		if (c < 0)
			pcg_die_usage("--expect: '%s' is not class=kind with class itl, ctl, cnf, syn or miss",
				item);
		if (strcmp(k, "any") == 0)
			ex[c].kind = PCG_E_ANY;
		else if (strcmp(k, "file") == 0)
			ex[c].kind = PCG_E_FILE;
		else if (strncmp(k, "error", 5) == 0 && k[5] != '\0') {
			ex[c].kind = PCG_E_ERRCODE;
			ex[c].code = (unsigned)pcg_ulong("--expect error code", k + 5, 0, 65535);
		} else {
			int i;

			for (i = 0; i < PCG_NKIND; i++)
				if (strcmp(k, pcg_kind_names[i]) == 0)
					break;
			if (i == PCG_NKIND || i == PCG_K_OTHER)
				pcg_die_usage("--expect: unknown kind '%s' (any, file, oack, data1, data, "
					"error, errorN, synack, rst)", k);
			ex[c].kind = i;
		}
	}
	free(copy);
}

static bool
pcg_expected(const struct pcg_expect *e, int kind, unsigned first_code)
{
	switch (e->kind) {
	case PCG_E_ANY:
		return kind != PCG_NKIND;
	case PCG_E_FILE:
		return kind == PCG_K_OACK || kind == PCG_K_DATA1;
	case PCG_E_ERRCODE:
		return kind == PCG_K_ERROR && first_code == e->code;
	default:
		return kind == e->kind;
	}
}

static pcap_t *
pcg_open(const char *path)
{
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, err);

	if (p == NULL)
		fprintf(stderr, "%s: cannot read %s: %s\n", pcg_prog, path, err);
	else if (pcap_datalink(p) != DLT_EN10MB) {
		fprintf(stderr, "%s: %s: link type %d is not Ethernet\n", pcg_prog, path,
			pcap_datalink(p));
		pcap_close(p);
		p = NULL;
	}
	return p;
}

static int
pcg_check(const char *req_path, const char *rep_path, double min_ratio,
	const struct pcg_expect ex[PCG_NCLASS], uint32_t server_ip)
{
	struct pcg_tab t = { 0 };
	unsigned long nreq[PCG_NCLASS] = { 0 }, answered[PCG_NCLASS] = { 0 };
	unsigned long ok[PCG_NCLASS] = { 0 }, first[PCG_NCLASS][PCG_NKIND] = { { 0 } };
	unsigned long replies[PCG_NCLASS] = { 0 }, errcodes[PCG_NCLASS][8] = { { 0 } };
	unsigned long total_req = 0, skipped_req = 0, unmatched = 0, total_rep = 0;
	uint32_t *codes = NULL;
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *p;
	int rc, fail = 0;
	size_t cap = 1024;

	/* pass 1: count, to size the table */
	if ((p = pcg_open(req_path)) == NULL)
		return 2;
	while ((rc = pcap_next_ex(p, &h, &data)) == 1)
		cap++;
	pcap_close(p);
	while (t.mask + 1 < cap * 2)
		t.mask = t.mask * 2 + 1;
	t.slot = calloc(t.mask + 1, sizeof(*t.slot));
	codes = calloc(t.mask + 1, sizeof(*codes));
	if (t.slot == NULL || codes == NULL) {
		fprintf(stderr, "%s: out of memory for %zu requests\n", pcg_prog, cap);
		free(t.slot);
		free(codes);
		return 2;
	}

	if ((p = pcg_open(req_path)) == NULL)
		goto out_err;
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		struct pcg_pkt k;
		struct pcg_req *r;
		int c;

		if (!pcg_parse(data, h->caplen, &k) || (c = pcg_classify_request(&k)) < 0) {
			skipped_req++;
			continue;
		}
		if (server_ip == 0)
			server_ip = k.dst_ip;
		/* the same source twice (a looped capture): one entry, the later class */
		r = pcg_find(&t, pcg_key(k.src_ip, k.sport, k.proto), true);
		r->cls = (uint8_t)c;
		nreq[c]++;
		total_req++;
	}
	if (rc == -1) {
		fprintf(stderr, "%s: %s: %s\n", pcg_prog, req_path, pcap_geterr(p));
		pcap_close(p);
		goto out_err;
	}
	pcap_close(p);
	if (total_req == 0) {
		fprintf(stderr, "%s: %s holds no TFTP RRQ or TCP SYN to port %d\n", pcg_prog,
			req_path, PCG_TVS_PORT);
		goto out_err;
	}

	if ((p = pcg_open(rep_path)) == NULL)
		goto out_err;
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		struct pcg_pkt k;
		struct pcg_req *r;
		unsigned code = 0;
		int kind;

		total_rep++;
		if (!pcg_parse(data, h->caplen, &k) || k.src_ip != server_ip ||
			(r = pcg_find(&t, pcg_key(k.dst_ip, k.dport, k.proto), false)) == NULL) {
			unmatched++;
			continue;
		}
		kind = pcg_classify_reply(&k, &code);
		replies[r->cls]++;
		if (r->first == PCG_NKIND) {
			r->first = (uint8_t)kind;
			codes[r - t.slot] = code;
			answered[r->cls]++;
			first[r->cls][kind]++;
			if (kind == PCG_K_ERROR)
				errcodes[r->cls][code < 8 ? code : 7]++;
		}
		r->replies++;
	}
	if (rc == -1) {
		fprintf(stderr, "%s: %s: %s\n", pcg_prog, rep_path, pcap_geterr(p));
		pcap_close(p);
		goto out_err;
	}
	pcap_close(p);

	for (size_t i = 0; i <= t.mask; i++) {
		const struct pcg_req *r = &t.slot[i];

		if (r->key != 0 && r->first != PCG_NKIND &&
			pcg_expected(&ex[r->cls], r->first, codes[i]))
			ok[r->cls]++;
	}

	printf("%-5s %8s %8s %8s %8s", "class", "requests", "answered", "expected", "replies");
	for (int k = 0; k < PCG_NKIND; k++)
		printf(" %7s", pcg_kind_names[k]);
	printf("  result\n");
	for (int c = 0; c < PCG_NCLASS; c++) {
		bool good;

		if (nreq[c] == 0)
			continue;
		good = (double)ok[c] >= min_ratio * (double)nreq[c];
		printf("%-5s %8lu %8lu %8lu %8lu", pcg_class_names[c], nreq[c], answered[c], ok[c],
			replies[c]);
		for (int k = 0; k < PCG_NKIND; k++)
			printf(" %7lu", first[c][k]);
		printf("  %s", good ? "ok" : "FAIL");
		if (first[c][PCG_K_ERROR] != 0) {
			printf(" (error codes:");
			for (int e = 0; e < 8; e++)
				if (errcodes[c][e] != 0)
					printf(" %s%d x%lu", e == 7 ? ">=" : "", e, errcodes[c][e]);
			printf(")");
		}
		printf("\n");
		if (!good)
			fail = 1;
	}
	printf("requests %lu (other packets in %s: %lu), replies %lu (not matching a request: %lu); "
		"first-reply kinds per class above; min ratio %.3f\n", total_req, req_path,
		skipped_req, total_rep, unmatched, min_ratio);
	free(t.slot);
	free(codes);
	return fail;

out_err:
	free(t.slot);
	free(codes);
	return 2;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "mix", required_argument, NULL, 'x' },
		{ "dst-mac", required_argument, NULL, 'D' },
		{ "dst-ip", required_argument, NULL, 'd' },
		{ "src-mac", required_argument, NULL, 'S' },
		{ "src-net", required_argument, NULL, 's' },
		{ "phones", required_argument, NULL, 'p' },
		{ "mac-base", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 'r' },
		{ "out", required_argument, NULL, 'o' },
		{ "check", no_argument, NULL, 'c' },
		{ "min-ratio", required_argument, NULL, 'R' },
		{ "expect", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct pcg_gen g = {
		.count = 1000,
		.weights = { 40, 20, 30, 10, 0 },
		.dst_mac = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		.dst_ip = 0x0a4d0001,		/* 10.77.0.1, as bench-tftp */
		.net = 0x0a4d0000, .prefix = 16,
		.phones = 1000,
		.mac_base = 0x0a1b2c000000ULL,
		.seed = 1,
	};
	struct pcg_expect ex[PCG_NCLASS];
	bool check = false, dst_ip_given = false;
	double min_ratio = 1.0;
	int opt;

	for (int c = 0; c < PCG_NCLASS; c++)
		ex[c].kind = PCG_E_ANY;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			g.count = pcg_ulong("--count", optarg, 1, 100000000);
			break;
		case 'x':
			pcg_parse_mix(optarg, g.weights);
			break;
		case 'D':
			pcg_parse_mac("--dst-mac", optarg, g.dst_mac);
			break;
		case 'd':
			g.dst_ip = pcg_parse_ip("--dst-ip", optarg);
			dst_ip_given = true;
			break;
		case 'S':
			pcg_parse_mac("--src-mac", optarg, g.src_mac);
			g.have_src_mac = true;
			break;
		case 's':
			pcg_parse_net(optarg, &g.net, &g.prefix);
			break;
		case 'p':
			g.phones = pcg_ulong("--phones", optarg, 1, 1UL << 22);
			break;
		case 'm': {
			char *end;

			errno = 0;
			g.mac_base = strtoull(optarg, &end, 16);
			if (errno != 0 || end == optarg || *end != '\0' || strlen(optarg) != 12)
				pcg_die_usage("--mac-base: '%s' is not 12 hex digits", optarg);
			break;
		}
		case 'r':
			g.seed = pcg_ulong("--seed", optarg, 0, ULONG_MAX);
			break;
		case 'o':
			g.out = optarg;
			break;
		case 'c':
			check = true;
			break;
		case 'R': {
			char *end;

			min_ratio = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(min_ratio >= 0 && min_ratio <= 1))
				pcg_die_usage("--min-ratio: '%s' is not a number from 0 to 1", optarg);
			break;
		}
		case 'e':
			pcg_parse_expect(optarg, ex);
			break;
		case 'h':
			pcg_usage(stdout);
			return 0;
		default:
			pcg_usage(stderr);
			return 2;
		}
	}
	if (check) {
		if (argc - optind != 2)
			pcg_die_usage("--check needs REQ.pcap and REPLIES.pcap");
		return pcg_check(argv[optind], argv[optind + 1], min_ratio, ex,
			dst_ip_given ? g.dst_ip : 0);
	}
	if (optind != argc)
		pcg_die_usage("unexpected argument '%s'", argv[optind]);
	if (g.out == NULL)
		pcg_die_usage("--out FILE is required");
	uint32_t hosts = (1U << (32 - g.prefix)) - 2;
	if ((g.dst_ip & (0xffffffffU << (32 - g.prefix))) == g.net)
		hosts--;
	if (g.phones > hosts)
		pcg_die_usage("--src-net %u.%u.%u.%u/%u has room for %u phones, not %lu",
			g.net >> 24, (g.net >> 16) & 255, (g.net >> 8) & 255, g.net & 255, g.prefix,
			hosts, g.phones);
	if (g.count > g.phones * (unsigned long)PCG_PORTS)
		pcg_die_usage("--count %lu needs more than %d source ports per phone: raise --phones",
			g.count, PCG_PORTS);
	if (g.mac_base + g.phones - 1 > 0xffffffffffffULL)
		pcg_die_usage("--mac-base + --phones goes past ffffffffffff");
	return pcg_generate(&g) == 0 ? 0 : 1;
}
