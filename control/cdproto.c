/* tvsctl <-> tvs-controld messages, see cdproto.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdproto.h"

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Descriptors that arrive with a message's bytes. */
struct fd_bag {
	int *fds;
	int max;
	int n;
	bool bad;		/* more than max, or truncated by the kernel */
};

static void
bag_take(struct fd_bag *b, struct msghdr *m)
{
	if (m->msg_flags & MSG_CTRUNC)
		b->bad = true;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int v;

			memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof(v));
			if (b->n < b->max)
				b->fds[b->n++] = v;
			else {
				close(v);
				b->bad = true;
			}
		}
	}
}

static void
bag_close(struct fd_bag *b)
{
	for (int i = 0; i < b->n; i++)
		close(b->fds[i]);
	b->n = 0;
}

/* Exactly n bytes before the deadline; -1 with errno (0: EOF), *got
 * counting what arrived. */
static int
read_full(int fd, uint8_t *p, size_t n, long long deadline, size_t *got, struct fd_bag *b)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int) * CD_FDS_MAX)];
	} cm;

	while (n > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		struct iovec iov = { p, n };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			.msg_controllen = sizeof(cm.buf) };
		long long left = deadline - mono_ms();
		ssize_t r;
		int pr;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pr = poll(&pf, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			errno = pr == 0 ? ETIMEDOUT : errno;
			return -1;
		}
		r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0 || m.msg_controllen > 0)
			bag_take(b, &m);
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		p += r;
		n -= (size_t)r;
		*got += (size_t)r;
	}
	return 0;
}

int
cd_recv_fds(int fd, struct cd_hdr *h, uint8_t *buf, size_t cap, int timeout_ms, int *fds,
	int max, int *nfds)
{
	long long deadline = mono_ms() + timeout_ms;
	struct fd_bag b = { .fds = fds, .max = max };
	size_t got = 0;
	int rc = -2;

	/* silence before a message is an idle peer; a message cut short is not */
	if (read_full(fd, (uint8_t *)h, sizeof(*h), deadline, &got, &b) != 0)
		rc = got == 0 && b.n == 0 && !b.bad ? -1 : -2;
	else if (h->type == 0 || h->type >= CD_TYPE_MAX || h->len > CD_PAYLOAD_MAX || h->len > cap)
		rc = -2;
	else if (read_full(fd, buf, h->len, deadline, &got, &b) == 0 && !b.bad)
		rc = (int)h->len;
	if (rc < 0)
		bag_close(&b);
	if (nfds != NULL)
		*nfds = b.n;
	return rc;
}

int
cd_recv(int fd, struct cd_hdr *h, uint8_t *buf, size_t cap, int timeout_ms)
{
	/* no room for a descriptor: one that comes anyway makes it -2 */
	return cd_recv_fds(fd, h, buf, cap, timeout_ms, NULL, 0, NULL);
}

int
cd_send(int fd, uint32_t type, const void *p, size_t len)
{
	struct cd_hdr h = { .type = type, .len = (uint32_t)len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)p, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	size_t total = sizeof(h) + len;

	if (len > CD_PAYLOAD_MAX)
		return -1;
	while (total > 0) {
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		total -= (size_t)n;
		while (n > 0 && m.msg_iovlen > 0) {
			size_t k = (size_t)n < m.msg_iov->iov_len ? (size_t)n : m.msg_iov->iov_len;

			m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + k;
			m.msg_iov->iov_len -= k;
			n -= (ssize_t)k;
			if (m.msg_iov->iov_len == 0) {
				m.msg_iov++;
				m.msg_iovlen--;
			}
		}
	}
	return 0;
}

int
cd_send_u32(int fd, uint32_t type, uint32_t v)
{
	return cd_send(fd, type, &v, sizeof(v));
}

int
cd_send_fd(int fd, uint32_t word, uint32_t kind, int passfd)
{
	struct {
		struct cd_hdr h;
		struct cd_fd f;
	} msg = { { CD_FD, sizeof(struct cd_fd) }, { word, kind } };
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { &msg, sizeof(msg) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
		.msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	ssize_t n;

	memset(&cm, 0, sizeof(cm));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &passfd, sizeof(int));
	do
		n = sendmsg(fd, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	/* 16 bytes into an empty socket buffer go whole or not at all */
	return n == (ssize_t)sizeof(msg) ? 0 : -1;
}

static bool
fd_why(char *why, size_t whysz, const char *msg)
{
	snprintf(why, whysz, "%s", msg);
	return false;
}

bool
cd_fd_ok(int fd, uint32_t kind, char *why, size_t whysz)
{
	static const struct {
		mode_t type;
		int acc;
	} want[CD_FD_KIND_MAX] = {
		[CD_FD_READ] = { S_IFREG, O_RDONLY },
		[CD_FD_WRITE] = { S_IFREG, O_WRONLY },
		[CD_FD_DIR] = { S_IFDIR, O_RDONLY },
	};
	struct stat sb;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &sb) != 0)
		return fd_why(why, whysz, "not an open descriptor");
	if (fl & O_PATH)
		return fd_why(why, whysz, "opened with O_PATH (not for reading or writing)");
	if (kind < CD_FD_READ || kind >= CD_FD_KIND_MAX)
		return fd_why(why, whysz, "of an unknown kind");
	if ((sb.st_mode & S_IFMT) != want[kind].type)
		return fd_why(why, whysz, want[kind].type == S_IFDIR ? "not a directory" :
			"not a regular file");
	if ((fl & O_ACCMODE) != want[kind].acc)
		return fd_why(why, whysz, want[kind].acc == O_RDONLY ? "not opened read-only" :
			"not opened write-only");
	/* a backup holds every key: never into an existing or wider file */
	if (kind == CD_FD_WRITE && ((sb.st_mode & 07777) != 0600 || sb.st_size != 0))
		return fd_why(why, whysz, "not a new empty file of mode 0600");
	return true;
}

/* n NUL-terminated strings of at most max bytes fill p[0..len) exactly. */
static bool
strings_fill(const uint8_t *p, size_t len, unsigned n, size_t max)
{
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *z = off < len ? memchr(p + off, '\0', len - off) : NULL;

		if (z == NULL || (size_t)(z - (p + off)) > max)
			return false;
		off = (size_t)(z - p) + 1;
	}
	return off == len;
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static bool
check_cmd(const uint8_t *p, size_t len)
{
	uint32_t flags, n;

	if (len < 8)
		return false;
	flags = get_u32(p);
	n = get_u32(p + 4);
	if ((flags & ~CD_F_ALL) != 0 || n == 0 || n > CD_WORDS_MAX)
		return false;
	/* the paths come first and do not count as words of the command */
	if (n <= (unsigned)!!(flags & CD_F_STORE) + !!(flags & CD_F_PUB))
		return false;
	return strings_fill(p + 8, len - 8, n, CD_WORD_MAX);
}

bool
cd_check(uint32_t type, const uint8_t *p, size_t len, bool from_daemon)
{
	switch (type) {
	case CD_CMD:
		return !from_daemon && check_cmd(p, len);
	case CD_ANSWER:
		return !from_daemon && len <= CD_ANSWER_MAX && strings_fill(p, len, 1, CD_ANSWER_MAX);
	case CD_MEMORY:
		return len == (from_daemon ? sizeof(struct cd_memory) : 0);
	case CD_STATS:
		return len == (from_daemon ? sizeof(struct cd_stats) : 0);
	case CD_OUT:
	case CD_ERR:
		return from_daemon && len >= 1 && len <= CD_TEXT_MAX;
	case CD_ASK:
		return from_daemon && len > 4 && get_u32(p) <= 1 &&
			strings_fill(p + 4, len - 4, 1, CD_TEXT_MAX);
	case CD_DONE:
		return from_daemon && len == sizeof(uint32_t);
	case CD_NOT_MINE:
		return from_daemon && strings_fill(p, len, 1, CD_WORD_MAX);
	case CD_FD:
		return !from_daemon && len == sizeof(struct cd_fd) && get_u32(p) < CD_WORDS_MAX &&
			get_u32(p + 4) >= CD_FD_READ && get_u32(p + 4) < CD_FD_KIND_MAX;
	default:
		return false;
	}
}

int
cd_cmd_words(const uint8_t *p, size_t len, uint32_t *flags, char **words, int max)
{
	uint32_t n = get_u32(p + 4);
	size_t off = 8;
	int k = 0;

	*flags = get_u32(p);
	for (uint32_t i = 0; i < n && k < max && off < len; i++) {
		words[k++] = (char *)(p + off);
		off += strlen((const char *)p + off) + 1;
	}
	return k;
}
