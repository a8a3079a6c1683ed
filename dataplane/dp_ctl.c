/*
 * Control socket, served by the main lcore between its other duties.
 *
 * Protocol (AF_UNIX stream socket at [tvsd] control-socket, mode 0660):
 *   request: one command per line, "<command>\n", at most 255 bytes;
 *   reply:   one line of JSON ending in "\n"; every reply has "ok":true or
 *            "ok":false with "error":"<one line>".
 * The connection stays open for more commands until the client closes it.
 *
 *   help     {"ok":true,"commands":{"<name>":"<usage>",...}}
 *   status   {"ok":true,"pid":N,"uptime":S,"workers":[lcore,...],
 *             "ports":[{"port":0,"mac":"..","address":"a.b.c.d/n","vlan":V,"mtu":M}],
 *             "generation":G,"loads":N,"refused":N,"retired":N,"dir":"..",
 *             "files":N,"certs":N,"loaded":T,"transfers":N,
 *             "cached_certs":{"<lcore>":N,...},"cert_keys":N,"cert_duplicates":N,
 *             "cert_entry_bytes":N}
 *            (cached_certs: certificates in each worker's TVS cache)
 *   stats    {"ok":true,"stats":{"total":{counters},"lcores":{"<id>":{counters}}}}
 *            (counters include cert_lookups, cert_hits, cert_misses)
 *   reload   load <publications>/current and swap it in:
 *            {"ok":true,"generation":G,"message":".."} or {"ok":false,"error":".."}
 *   rollout  {"ok":true,"phones":N,"capacity":C,"overflow":N,"dropped":N,"failed":N,
 *             "records":N,"entries":[{"mac":"001122AABBCC","generation":G,
 *             "time":T,"fetches":N},...]}  (ITLSEP<MAC>.tlv fetches, dp_rollout.c)
 *   memory   {"ok":true,"jemalloc":{"allocated":B,"active":B,"resident":B,
 *             "retained":B,"mapped":B} or null,"hugepages":{"<socket>":{...}}}
 *
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

#define DP_CTL_CLIENTS 16
#define DP_CTL_LINE 256

struct dp_ctl_client {
	int fd;
	size_t len;
	char buf[DP_CTL_LINE];
};

static int dp_ctl_fd = -1;
static char dp_ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct dp_ctl_client dp_ctl_clients[DP_CTL_CLIENTS];

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
dp_ctl_status(FILE *f, const char *arg __rte_unused)
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
}

static void
dp_ctl_stats(FILE *f, const char *arg __rte_unused)
{
	fputs("\"ok\":true,\"stats\":", f);
	dp_stats_json(f);
}

static void
dp_ctl_reload(FILE *f, const char *arg __rte_unused)
{
	char msg[700];
	int rc;

	CTL_LOG(INFO, "reload requested on the control socket");
	rc = dp_pub_reload(msg, sizeof(msg));
	fprintf(f, "\"ok\":%s,\"generation\":%" PRIu64 ",\"%s\":", rc == 0 ? "true" : "false",
		dp_pub_generation(), rc == 0 ? "message" : "error");
	dp_json_str(f, msg);
}

/* Phones and the last ITL generation each fetched (dp_rollout.c). */
static void
dp_ctl_rollout(FILE *f, const char *arg __rte_unused)
{
	dp_rollout_json(f);
}

/* The process heap (jemalloc's statistics, when linked) and DPDK's
 * hugepage heaps, per NUMA socket. */
static void
dp_ctl_memory(FILE *f, const char *arg __rte_unused)
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

static void dp_ctl_help(FILE *f, const char *arg);

static const struct dp_ctl_cmd {
	const char *name;
	void (*fn)(FILE *f, const char *arg);
	const char *usage;
} dp_ctl_cmds[] = {
	{ "help", dp_ctl_help, "list the commands" },
	{ "status", dp_ctl_status, "process, workers, ports and the generation served" },
	{ "stats", dp_ctl_stats, "every counter, summed and per worker lcore" },
	{ "reload", dp_ctl_reload, "load <publications>/current and swap it in" },
	{ "rollout", dp_ctl_rollout, "phones and the last ITL generation each fetched" },
	{ "memory", dp_ctl_memory, "jemalloc statistics and DPDK hugepage heaps" },
};

static void
dp_ctl_help(FILE *f, const char *arg __rte_unused)
{
	fputs("\"ok\":true,\"commands\":{", f);
	for (size_t i = 0; i < RTE_DIM(dp_ctl_cmds); i++) {
		fprintf(f, "%s\"%s\":", i ? "," : "", dp_ctl_cmds[i].name);
		dp_json_str(f, dp_ctl_cmds[i].usage);
	}
	fputc('}', f);
}

/* Runs one command line, writes the one-line reply. */
static int
dp_ctl_exec(int fd, const char *line)
{
	const struct dp_ctl_cmd *cmd = NULL;
	char *out = NULL;
	size_t len = 0, done = 0;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		return -1;
	for (size_t i = 0; i < RTE_DIM(dp_ctl_cmds); i++)
		if (strcmp(line, dp_ctl_cmds[i].name) == 0)
			cmd = &dp_ctl_cmds[i];
	fputc('{', f);
	if (cmd != NULL)
		cmd->fn(f, line);
	else {
		fputs("\"ok\":false,\"error\":", f);
		dp_json_str(f, "unknown command (try help)");
	}
	fputs("}\n", f);
	fclose(f);
	while (out != NULL && done < len) {
		ssize_t n = send(fd, out + done, len - done, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	free(out);
	return done == len ? 0 : -1;
}

static void
dp_ctl_drop(struct dp_ctl_client *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* Reads what is there, runs each complete line. */
static void
dp_ctl_read(struct dp_ctl_client *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	char *nl;

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			dp_ctl_drop(c);
		return;
	}
	c->len += (size_t)n;
	while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		size_t used = (size_t)(nl - c->buf) + 1;

		*nl = '\0';
		if (nl > c->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		if (dp_ctl_exec(c->fd, c->buf) < 0) {
			dp_ctl_drop(c);
			return;
		}
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf)) {
		CTL_LOG(WARNING, "control client sent a line over %d bytes; closed", DP_CTL_LINE);
		dp_ctl_drop(c);
	}
}

static void
dp_ctl_accept(void)
{
	int fd = accept4(dp_ctl_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (unsigned i = 0; i < DP_CTL_CLIENTS; i++) {
		if (dp_ctl_clients[i].fd < 0) {
			dp_ctl_clients[i].fd = fd;
			dp_ctl_clients[i].len = 0;
			return;
		}
	}
	CTL_LOG(WARNING, "control socket: more than %d clients, one refused", DP_CTL_CLIENTS);
	close(fd);
}

/* Waits up to timeout_ms for control traffic and serves it. */
void
dp_ctl_poll(int timeout_ms)
{
	struct pollfd pfd[DP_CTL_CLIENTS + 1];
	unsigned map[DP_CTL_CLIENTS + 1], n = 0;

	dp_rollout_drain();
	if (dp_ctl_fd >= 0) {
		pfd[n].fd = dp_ctl_fd;
		pfd[n++].events = POLLIN;
	}
	for (unsigned i = 0; i < DP_CTL_CLIENTS; i++) {
		if (dp_ctl_clients[i].fd < 0)
			continue;
		map[n] = i;
		pfd[n].fd = dp_ctl_clients[i].fd;
		pfd[n++].events = POLLIN;
	}
	if (poll(pfd, n, timeout_ms) <= 0)
		return;
	for (unsigned k = 0; k < n; k++) {
		if (pfd[k].revents == 0)
			continue;
		if (pfd[k].fd == dp_ctl_fd)
			dp_ctl_accept();
		else
			dp_ctl_read(&dp_ctl_clients[map[k]]);
	}
}

int
dp_ctl_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct trust_err err = { 0 };
	int fd;

	for (unsigned i = 0; i < DP_CTL_CLIENTS; i++)
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
	for (unsigned i = 0; i < DP_CTL_CLIENTS; i++)
		if (dp_ctl_clients[i].fd >= 0)
			dp_ctl_drop(&dp_ctl_clients[i]);
	if (dp_ctl_fd >= 0) {
		close(dp_ctl_fd);
		unlink(dp_ctl_path);
		dp_ctl_fd = -1;
	}
}
