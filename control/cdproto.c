/* tvsctl <-> tvs-controld messages, see cdproto.h. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cdproto.h"

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exactly n bytes before the deadline; -1 with errno (0: EOF), *got
 * counting what arrived. */
static int
read_full(int fd, uint8_t *p, size_t n, long long deadline, size_t *got)
{
	while (n > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
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
		r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
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
cd_recv(int fd, struct cd_hdr *h, uint8_t *buf, size_t cap, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	size_t got = 0;

	/* silence before a message is an idle peer; a message cut short is not */
	if (read_full(fd, (uint8_t *)h, sizeof(*h), deadline, &got) != 0)
		return got == 0 ? -1 : -2;
	if (h->type == 0 || h->type >= CD_TYPE_MAX || h->len > CD_PAYLOAD_MAX || h->len > cap)
		return -2;
	if (read_full(fd, buf, h->len, deadline, &got) != 0)
		return -2;
	return (int)h->len;
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
