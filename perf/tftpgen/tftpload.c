/*
 * tftpload: the kernel-socket twin of tftpgen. N phones fetch a file over
 * TFTP from a server, each transfer on its own UDP socket (a fresh source
 * port, as a phone's TFTP client does), all multiplexed by one epoll loop.
 * It drives the same client state machine (tgproto.c) and prints the same
 * report (tgstats.c) as tftpgen, so kernel servers (tftp-hpa, atftpd) and
 * tvsd behind net_tap can be compared with the DPDK runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tgopts.h"
#include "tgproto.h"
#include "tgstats.h"

#define UDP_OVERHEAD 42		/* Ethernet + IPv4 + UDP, to count frame bytes */
#define RX_MAX 65536
#define EVENTS 256

struct slot {
	int fd;
	bool busy;
	uint32_t src_ip;
	struct tg_xfer x;
};

struct load {
	struct tg_opts o;
	struct slot *slots;
	int ep;
	uint64_t next_phone;
	uint32_t inflight;
	uint64_t file_size;	/* bytes of the last complete transfer */
	uint64_t t0, deadline, hard_deadline, t_end;
	struct tg_counters c;
	struct tg_hist lat;
	uint8_t rx[RX_MAX];
	uint8_t tx[TG_RRQ_MAX];
};

static volatile sig_atomic_t stop_now;

static void
on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int
send_to_server(struct load *l, struct slot *s, const uint8_t *buf, size_t len, uint16_t port)
{
	struct sockaddr_in to = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(l->o.server_ip),
	};

	if (sendto(s->fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)len) {
		l->c.tx_drops++;
		return -1;
	}
	l->c.tx_pkts++;
	l->c.tx_bytes += len + UDP_OVERHEAD;
	return 0;
}

static void
slot_close(struct load *l, struct slot *s)
{
	if (s->fd >= 0)
		close(s->fd);	/* also leaves the epoll set */
	s->fd = -1;
	if (s->busy)
		l->inflight--;
	s->busy = false;
}

static int
slot_open(struct load *l, struct slot *s, uint32_t idx)
{
	struct sockaddr_in me = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = idx };

	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		fprintf(stderr, "tftpload: socket: %s\n", strerror(errno));
		return -1;
	}
	me.sin_addr.s_addr = htonl(s->src_ip);
	if (bind(s->fd, (struct sockaddr *)&me, sizeof(me)) < 0
		|| epoll_ctl(l->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
		fprintf(stderr, "tftpload: bind/epoll on a phone socket: %s\n", strerror(errno));
		slot_close(l, s);
		return -1;
	}
	return 0;
}

/* A phone of the next number starts its fetch in slot idx. */
static int
slot_start(struct load *l, uint32_t idx, uint64_t now)
{
	struct slot *s = &l->slots[idx];
	char name[TG_NAME_MAX];
	uint64_t phone = l->next_phone++;
	size_t len;

	s->src_ip = l->o.src_ip ? l->o.src_ip + (uint32_t)(phone % l->o.src_count) : 0;
	if (slot_open(l, s, idx) < 0)
		return -1;
	tg_opts_name(&l->o, phone, name, sizeof(name));
	len = tg_start(&s->x, &l->o.p, name, now, l->tx);
	if (len == 0) {
		fprintf(stderr, "tftpload: RRQ for '%s' does not fit\n", name);
		slot_close(l, s);
		return -1;
	}
	s->busy = true;
	l->inflight++;
	l->c.started++;
	send_to_server(l, s, l->tx, len, l->o.server_port);
	return 0;
}

static bool
may_start(const struct load *l, uint64_t now)
{
	return !stop_now && l->c.started < l->o.transfers && now < l->deadline;
}

static void
slot_end(struct load *l, uint32_t idx, enum tg_action a, uint64_t now)
{
	struct slot *s = &l->slots[idx];

	tg_account_end(&l->c, &l->lat, &s->x, a, now);
	if (a == TG_DONE)
		l->file_size = s->x.bytes;
	l->t_end = now;
	slot_close(l, s);
	if (may_start(l, now))
		slot_start(l, idx, now);
}

static void
act(struct load *l, uint32_t idx, enum tg_action a, size_t outlen, uint64_t now)
{
	struct slot *s = &l->slots[idx];

	if (outlen > 0 && s->x.tid != 0)
		send_to_server(l, s, l->tx, outlen, s->x.tid);
	else if (outlen > 0)
		send_to_server(l, s, l->tx, outlen, l->o.server_port);
	if (a == TG_DONE || a == TG_FAIL)
		slot_end(l, idx, a, now);
	else if (a == TG_STALE)
		l->c.stale++;
}

static void
drain_socket(struct load *l, uint32_t idx)
{
	struct slot *s = &l->slots[idx];
	unsigned budget = 64;

	while (s->busy && budget-- > 0) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s->fd, l->rx, sizeof(l->rx), 0, (struct sockaddr *)&from, &fl);
		uint64_t now;
		enum tg_action a;
		size_t outlen;

		if (n < 0)
			return;
		l->c.rx_pkts++;
		l->c.rx_bytes += n + UDP_OVERHEAD;
		if (ntohl(from.sin_addr.s_addr) != l->o.server_ip) {
			l->c.stale++;
			continue;
		}
		now = now_ns();
		a = tg_input(&s->x, &l->o.p, now, ntohs(from.sin_port), l->rx, n, l->tx, &outlen);
		act(l, idx, a, outlen, now);
	}
}

static void
scan_timers(struct load *l, uint64_t now)
{
	uint32_t i;

	for (i = 0; i < l->o.concurrency; i++) {
		struct slot *s = &l->slots[i];
		enum tg_action a;
		size_t outlen;

		if (!s->busy)
			continue;
		a = tg_timer(&s->x, &l->o.p, now, l->tx, &outlen);
		if (a != TG_NONE)
			act(l, i, a, outlen, now);
	}
}

static void
run(struct load *l)
{
	struct epoll_event ev[EVENTS];
	uint64_t now = now_ns(), last_scan = now;
	uint32_t i;

	l->t0 = now;
	l->t_end = now;
	l->deadline = now + (uint64_t)(l->o.duration_s * 1e9);
	l->hard_deadline = l->deadline + (uint64_t)(l->o.grace_s * 1e9);
	for (i = 0; i < l->o.concurrency && may_start(l, now); i++)
		slot_start(l, i, now);
	while (l->inflight > 0 && now < l->hard_deadline && !stop_now) {
		int n = epoll_wait(l->ep, ev, EVENTS, 1), k;

		for (k = 0; k < n; k++)
			drain_socket(l, ev[k].data.u32);
		now = now_ns();
		if (now - last_scan >= 1000000) {
			scan_timers(l, now);
			last_scan = now;
		}
	}
	for (i = 0; i < l->o.concurrency; i++) {
		if (l->slots[i].busy) {
			l->c.aborted++;
			slot_close(l, &l->slots[i]);
		}
	}
}

static void
usage(FILE *f)
{
	fputs("usage: tftpload [options]\n"
	"Kernel-socket TFTP load: --concurrency phones fetch a file at once, each\n"
	"transfer on its own UDP socket; prints a table and one JSON line.\n", f);
	tg_opts_usage(f);
	fputs("  -h, --help             this text\n", f);
}

static int
parse(struct load *l, int argc, char **argv)
{
	static const struct option longopts[] = {
		TG_COMMON_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	tg_opts_defaults(&l->o);
	if (tg_opts_parse(&l->o, argc, argv, longopts, NULL, usage) < 0)
		return -1;
	if (l->o.server_ip == 0) {
		fprintf(stderr, "tftpload: --server IP is required\n");
		return -1;
	}
	return tg_opts_finish(&l->o);
}

static void
raise_fd_limit(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need + 64) {
		rl.rlim_cur = need + 64 < rl.rlim_max ? need + 64 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct load *l = calloc(1, sizeof(*l));
	struct tg_result r = { .tool = "tftpload", .mode = "tftp", .workers = 1 };
	char target[32];
	uint32_t i;
	int rc;

	if (l == NULL || parse(l, argc, argv) < 0) {
		free(l);
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	raise_fd_limit(l->o.concurrency);
	l->slots = calloc(l->o.concurrency, sizeof(*l->slots));
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->slots == NULL || l->ep < 0) {
		fprintf(stderr, "tftpload: out of memory or epoll: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < l->o.concurrency; i++)
		l->slots[i].fd = -1;
	run(l);

	tg_format_ipv4(l->o.server_ip, target, sizeof(target));
	r.label = l->o.label;
	r.target = target;
	r.concurrency = l->o.concurrency;
	r.blksize = l->o.p.blksize ? l->o.p.blksize : 512;
	r.windowsize = l->o.p.windowsize ? l->o.p.windowsize : 1;
	r.file_size = l->file_size;
	r.elapsed_ns = l->t_end - l->t0;
	r.c = l->c;
	r.lat = l->lat;
	if (!l->o.quiet)
		tg_report_table(stdout, &r);
	tg_report_json(stdout, &r);
	rc = l->c.ok > 0 && l->c.failed == 0 && l->c.aborted == 0 ? 0 : 3;
	close(l->ep);
	free(l->slots);
	tg_opts_release(&l->o);
	free(l);
	return rc;
}
