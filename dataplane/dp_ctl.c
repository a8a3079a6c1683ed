/*
 * Control socket, served by the main lcore between its other duties.
 * Messages: dpctl_proto.h (a fixed binary header, one payload shape per
 * type, checked before use). The replies to status, stats, rollout, memory
 * and help are JSON documents written here:
 *
 *   status   {"ok":true,"pid":N,"uptime":S,"workers":[lcore,...],
 *             "ports":[{"port":0,"mac":"..","address":"a.b.c.d/n","vlan":V,"mtu":M}],
 *             "generation":G,"loads":N,"refused":N,"retired":N,"dir":"..",
 *             "files":N,"certs":N,"loaded":T,"transfers":N,
 *             "cached_certs":{"<lcore>":N,...},"cert_keys":N,"cert_duplicates":N,
 *             "cert_entry_bytes":N,"tvs":{..},
 *             "control":{"clients":N,"accepted":N,"requests":N,"refused":N,
 *                        "bad":N,"overflow":N,"idle":N}}
 *            (cached_certs: certificates in each worker's TVS cache;
 *            control: clients connected now, and since the start those
 *            accepted, requests answered, clients refused because
 *            DPCTL_CLIENTS were connected, closed for a malformed message,
 *            for output over DPCTL_OUT_MAX, for being idle)
 *   stats    {"ok":true,"stats":{"total":{counters},"lcores":{"<id>":{counters}}}}
 *            (counters include cert_lookups, cert_hits, cert_misses)
 *   rollout  {"ok":true,"phones":N,"capacity":C,"overflow":N,"dropped":N,"failed":N,
 *             "records":N,"entries":[{"mac":"001122AABBCC","generation":G,
 *             "time":T,"fetches":N},...]}  (ITLSEP<MAC>.tlv fetches, dp_rollout.c)
 *   memory   {"ok":true,"jemalloc":{"allocated":B,"active":B,"resident":B,
 *             "retained":B,"mapped":B} or null,"hugepages":{"<socket>":{...}}}
 *   help     {"ok":true,"commands":{"<name>":"<usage>",...}}
 *
 * reload answers with struct dpctl_reload once dp_pub_reload returned,
 * i.e. after the QSBR grace period: every worker lcore then serves the
 * generation in the reply (the lcores are listed in it).
 *
 * The main lcore never blocks on a client: sockets are non-blocking,
 * replies wait in a per-client queue until the socket takes them, and a
 * client that lets its queue grow past DPCTL_OUT_MAX, or stays idle for
 * [tvsd] control-idle-ms (no request and no output taken), is closed.
 * Commands are a table (HAProxy cli_kws, Knot cmd_table): the usage
 * strings are the help text.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_malloc.h>
#ifdef TVS_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "dp.h"
#include "dpctl_proto.h"

/* Requests are headers only: room for a few per read. */
#define DP_CTL_IN (4 * sizeof(struct dpctl_hdr))

struct dp_ctl_client {
	int fd;
	uint64_t last_ms;		/* last request, or output taken */
	size_t in_len;
	uint8_t in[DP_CTL_IN];
	uint8_t *out;			/* queued replies: out[out_off..out_len) */
	size_t out_off, out_len, out_cap;
};

static int dp_ctl_fd = -1;
static char dp_ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct dp_ctl_client dp_ctl_clients[DPCTL_CLIENTS];

/* Control socket counters (status "control"), main lcore only. */
static struct {
	uint64_t accepted, requests, refused, bad, overflow, idle;
} dp_ctl_n;

/* JSON string with the characters JSON needs escaped. */
void
dp_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
dp_ctl_counters_json(FILE *f)
{
	unsigned clients = 0;

	for (unsigned i = 0; i < DPCTL_CLIENTS; i++)
		clients += dp_ctl_clients[i].fd >= 0;
	fprintf(f, ",\"control\":{\"clients\":%u,\"accepted\":%" PRIu64 ",\"requests\":%" PRIu64
		",\"refused\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"overflow\":%" PRIu64
		",\"idle\":%" PRIu64 "}", clients, dp_ctl_n.accepted, dp_ctl_n.requests,
		dp_ctl_n.refused, dp_ctl_n.bad, dp_ctl_n.overflow, dp_ctl_n.idle);
}

static void
dp_ctl_status(FILE *f)
{
	fprintf(f, "\"ok\":true,\"pid\":%d,\"uptime\":%lld,\"workers\":[", (int)getpid(),
		(long long)(time(NULL) - (time_t)dp_app.started));
	for (unsigned w = 0; w < dp_app.nworkers; w++)
		fprintf(f, "%s%u", w ? "," : "", dp_app.workers[w]);
	fputs("],\"ports\":[", f);
	for (unsigned i = 0; i < dp_app.nports; i++) {
		const struct dp_port *p = &dp_app.ports[i];

		fprintf(f, "%s{\"port\":%u,\"mac\":\"" RTE_ETHER_ADDR_PRT_FMT "\",\"address\":"
			"\"%u.%u.%u.%u/%u\",\"vlan\":%u,\"mtu\":%u}", i ? "," : "", p->id,
			RTE_ETHER_ADDR_BYTES(&p->mac), p->ip >> 24, (p->ip >> 16) & 255,
			(p->ip >> 8) & 255, p->ip & 255, p->prefix, p->vlan, p->mtu);
	}
	fputs("],", f);
	dp_pub_json(f);
	dp_tvs_json(f);
	dp_ctl_counters_json(f);
}

static void
dp_ctl_stats(FILE *f)
{
	fputs("\"ok\":true,\"stats\":", f);
	dp_stats_json(f);
}

/* Phones and the last ITL generation each fetched (dp_rollout.c). */
static void
dp_ctl_rollout(FILE *f)
{
	dp_rollout_json(f);
}

/* The process heap (jemalloc's statistics, when linked) and DPDK's
 * hugepage heaps, per NUMA socket. */
static void
dp_ctl_memory(FILE *f)
{
	struct rte_malloc_socket_stats ms;

	fputs("\"ok\":true,\"jemalloc\":", f);
#ifdef TVS_HAVE_JEMALLOC
	{
		static const char *const names[] = { "allocated", "active", "resident", "retained",
			"mapped" };
		uint64_t epoch = 1;
		size_t sz = sizeof(epoch);
		char name[32];

		mallctl("epoch", &epoch, &sz, &epoch, sz);
		for (size_t i = 0; i < RTE_DIM(names); i++) {
			size_t v = 0, vs = sizeof(v);

			snprintf(name, sizeof(name), "stats.%s", names[i]);
			mallctl(name, &v, &vs, NULL, 0);
			fprintf(f, "%s\"%s\":%zu", i ? "," : "{", names[i], v);
		}
		fputc('}', f);
	}
#else
	fputs("null", f);
#endif
	fputs(",\"hugepages\":{", f);
	for (unsigned i = 0; i < rte_socket_count(); i++) {
		int sock = rte_socket_id_by_idx(i);

		if (rte_malloc_get_socket_stats(sock, &ms) != 0)
			continue;
		fprintf(f, "%s\"%d\":{\"heap_total\":%zu,\"heap_free\":%zu,\"heap_alloc\":%zu,"
			"\"greatest_free\":%zu,\"alloc_count\":%u,\"free_count\":%u}", i ? "," : "",
			sock, ms.heap_totalsz_bytes, ms.heap_freesz_bytes, ms.heap_allocsz_bytes,
			ms.greatest_free_size, ms.alloc_count, ms.free_count);
	}
	fputc('}', f);
}

static void dp_ctl_help(FILE *f);

/* fn writes the body of a JSON reply; reload (fn NULL) answers in binary. */
static const struct dp_ctl_cmd {
	uint32_t type;
	void (*fn)(FILE *f);
	const char *usage;
} dp_ctl_cmds[] = {
	{ DPCTL_HELP, dp_ctl_help, "list the commands" },
	{ DPCTL_STATUS, dp_ctl_status, "process, workers, ports and the generation served" },
	{ DPCTL_STATS, dp_ctl_stats, "every counter, summed and per worker lcore" },
	{ DPCTL_RELOAD, NULL, "load <publications>/current, swap it in, answer once every "
		"worker lcore serves it" },
	{ DPCTL_ROLLOUT, dp_ctl_rollout, "phones and the last ITL generation each fetched" },
	{ DPCTL_MEMORY, dp_ctl_memory, "jemalloc statistics and DPDK hugepage heaps" },
};

static void
dp_ctl_help(FILE *f)
{
	fputs("\"ok\":true,\"commands\":{", f);
	for (size_t i = 0; i < RTE_DIM(dp_ctl_cmds); i++) {
		fprintf(f, "%s\"%s\":", i ? "," : "", dpctl_name(dp_ctl_cmds[i].type));
		dp_json_str(f, dp_ctl_cmds[i].usage);
	}
	fputc('}', f);
}

/* A reply: header and payload appended to the client's queue. */
static int
dp_ctl_queue(struct dp_ctl_client *c, uint32_t type, uint32_t id, const void *p, size_t len)
{
	struct dpctl_hdr h = { .magic = DPCTL_MAGIC, .type = type, .len = (uint32_t)len, .id = id };
	size_t pending = c->out_len - c->out_off, need = sizeof(h) + len;

	if (pending > 0 && pending + need > DPCTL_OUT_MAX) {
		dp_ctl_n.overflow++;
		CTL_LOG(WARNING, "control client does not read its replies (%zu bytes queued); "
			"closed", pending);
		return -1;
	}
	/* what was sent goes, so the buffer never holds more than the bound */
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, pending);
		c->out_off = 0;
		c->out_len = pending;
	}
	if (c->out_len + need > c->out_cap) {
		size_t cap = c->out_len + need;
		uint8_t *nb = realloc(c->out, cap);

		if (nb == NULL) {
			CTL_LOG(ERR, "out of memory for a control reply of %zu bytes; client closed",
				need);
			return -1;
		}
		c->out = nb;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, &h, sizeof(h));
	memcpy(c->out + c->out_len + sizeof(h), p, len);
	c->out_len += need;
	return 0;
}

static int
dp_ctl_error(struct dp_ctl_client *c, uint32_t id, const char *msg)
{
	return dp_ctl_queue(c, DPCTL_ERROR, id, msg, strlen(msg) + 1);
}

/* The JSON document of cmd, NUL included, as the payload of its reply. */
static int
dp_ctl_json(struct dp_ctl_client *c, const struct dp_ctl_cmd *cmd, uint32_t id)
{
	char *doc = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&doc, &len);
	int rc;

	if (f == NULL)
		return dp_ctl_error(c, id, "out of memory");
	fputc('{', f);
	cmd->fn(f);
	fputc('}', f);
	if (fclose(f) != 0 || len + 1 > DPCTL_JSON_MAX) {
		free(doc);
		return dp_ctl_error(c, id, "reply too large or out of memory");
	}
	rc = dp_ctl_queue(c, cmd->type | DPCTL_REPLY, id, doc, len + 1);
	free(doc);
	return rc;
}

/*
 * dp_pub_reload returns after the grace period: from then on every worker
 * finds the generation it swapped in, which is what the reply promises.
 */
static int
dp_ctl_reload(struct dp_ctl_client *c, uint32_t id)
{
	uint8_t buf[sizeof(struct dpctl_reload) + DPCTL_LCORES_MAX * sizeof(uint32_t) +
		DPCTL_MSG_MAX];
	struct dpctl_reload r = { .nlcores = RTE_MIN(dp_app.nworkers, (unsigned)DPCTL_LCORES_MAX) };
	char msg[DPCTL_MSG_MAX];
	size_t off = sizeof(r);

	CTL_LOG(INFO, "reload requested on the control socket");
	r.ok = dp_pub_reload(msg, sizeof(msg)) == 0;
	r.generation = dp_pub_generation();
	memcpy(buf, &r, sizeof(r));
	for (uint32_t w = 0; w < r.nlcores; w++) {
		uint32_t lcore = dp_app.workers[w];

		memcpy(buf + off, &lcore, sizeof(lcore));
		off += sizeof(lcore);
	}
	memcpy(buf + off, msg, strlen(msg) + 1);
	off += strlen(msg) + 1;
	return dp_ctl_queue(c, DPCTL_RELOAD | DPCTL_REPLY, id, buf, off);
}

static int
dp_ctl_exec(struct dp_ctl_client *c, const struct dpctl_hdr *h)
{
	dp_ctl_n.requests++;
	if (h->type == DPCTL_RELOAD)
		return dp_ctl_reload(c, h->id);
	for (size_t i = 0; i < RTE_DIM(dp_ctl_cmds); i++)
		if (dp_ctl_cmds[i].type == h->type && dp_ctl_cmds[i].fn != NULL)
			return dp_ctl_json(c, &dp_ctl_cmds[i], h->id);
	return -1;	/* dpctl_check_hdr let through a type without a handler */
}

static uint64_t
dp_ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
dp_ctl_drop(struct dp_ctl_client *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Sends what the socket takes now. -1: the client is gone. */
static int
dp_ctl_flush(struct dp_ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->out_off += (size_t)n;
		c->last_ms = dp_ctl_now_ms();
	}
	/* a large reply (rollout) does not keep its buffer */
	free(c->out);
	c->out = NULL;
	c->out_off = c->out_len = c->out_cap = 0;
	return 0;
}

/*
 * Takes in what fits the input buffer (a few requests: a client cannot
 * keep the main lcore to itself) and answers each complete request.
 */
static void
dp_ctl_read(struct dp_ctl_client *c)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	struct dpctl_hdr h;
	long used;

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			dp_ctl_drop(c);
		return;
	}
	c->in_len += (size_t)n;
	while ((used = dpctl_frame(c->in, c->in_len, false, &h)) > 0) {
		c->last_ms = dp_ctl_now_ms();
		if (dp_ctl_exec(c, &h) != 0) {
			dp_ctl_drop(c);
			return;
		}
		memmove(c->in, c->in + used, c->in_len - (size_t)used);
		c->in_len -= (size_t)used;
	}
	if (used < 0) {
		dp_ctl_n.bad++;
		CTL_LOG(WARNING, "control client sent a malformed message; closed");
		dp_ctl_drop(c);
	}
}

static void
dp_ctl_accept(void)
{
	int fd = accept4(dp_ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (unsigned i = 0; i < DPCTL_CLIENTS; i++) {
		struct dp_ctl_client *c = &dp_ctl_clients[i];

		if (c->fd < 0) {
			c->fd = fd;
			c->last_ms = dp_ctl_now_ms();
			dp_ctl_n.accepted++;
			return;
		}
	}
	dp_ctl_n.refused++;
	CTL_LOG(WARNING, "control socket: %d clients connected, one more refused", DPCTL_CLIENTS);
	close(fd);
}

static void
dp_ctl_expire(uint64_t now)
{
	for (unsigned i = 0; i < DPCTL_CLIENTS; i++) {
		struct dp_ctl_client *c = &dp_ctl_clients[i];

		if (c->fd >= 0 && now - c->last_ms >= dp_app.cfg.control_idle_ms) {
			dp_ctl_n.idle++;
			CTL_LOG(INFO, "control client idle for %u ms; closed",
				dp_app.cfg.control_idle_ms);
			dp_ctl_drop(c);
		}
	}
}

/* Waits up to timeout_ms for control traffic and serves it. */
void
dp_ctl_poll(int timeout_ms)
{
	struct pollfd pfd[DPCTL_CLIENTS + 1];
	unsigned map[DPCTL_CLIENTS + 1], n = 0;

	dp_rollout_drain();
	dp_ctl_expire(dp_ctl_now_ms());
	if (dp_ctl_fd >= 0) {
		pfd[n].fd = dp_ctl_fd;
		pfd[n++].events = POLLIN;
	}
	for (unsigned i = 0; i < DPCTL_CLIENTS; i++) {
		const struct dp_ctl_client *c = &dp_ctl_clients[i];

		if (c->fd < 0)
			continue;
		map[n] = i;
		pfd[n].fd = c->fd;
		pfd[n++].events = POLLIN | (c->out_off < c->out_len ? POLLOUT : 0);
	}
	if (poll(pfd, n, timeout_ms) <= 0)
		return;
	for (unsigned k = 0; k < n; k++) {
		struct dp_ctl_client *c;

		if (pfd[k].revents == 0)
			continue;
		if (pfd[k].fd == dp_ctl_fd) {
			dp_ctl_accept();
			continue;
		}
		c = &dp_ctl_clients[map[k]];
		if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
			dp_ctl_read(c);
		if (c->fd >= 0 && dp_ctl_flush(c) != 0)
			dp_ctl_drop(c);
	}
}

int
dp_ctl_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct trust_err err = { 0 };
	int fd;

	for (unsigned i = 0; i < DPCTL_CLIENTS; i++)
		dp_ctl_clients[i].fd = -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (trust_unix_stale(sa.sun_path, &err) != 0) {
		CTL_LOG(ERR, "%s", err.msg);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
	    || chmod(path, 0660) != 0 || listen(fd, 16) != 0) {
		CTL_LOG(ERR, "control socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	dp_ctl_fd = fd;
	snprintf(dp_ctl_path, sizeof(dp_ctl_path), "%s", path);
	CTL_LOG(INFO, "control socket %s", path);
	return 0;
}

void
dp_ctl_close(void)
{
	for (unsigned i = 0; i < DPCTL_CLIENTS; i++)
		if (dp_ctl_clients[i].fd >= 0)
			dp_ctl_drop(&dp_ctl_clients[i]);
	if (dp_ctl_fd >= 0) {
		close(dp_ctl_fd);
		unlink(dp_ctl_path);
		dp_ctl_fd = -1;
	}
}
