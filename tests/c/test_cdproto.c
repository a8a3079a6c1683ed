/*
 * control/cdproto: the exact-shape checks of the tvsctl <-> tvs-controld
 * messages, and the descriptors that ride on CD_FD (SCM_RIGHTS): exactly
 * one per CD_FD, none anywhere else, and only of the promised kind.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdproto.h"
#include "tap.h"

static char dir[] = "/tmp/test_cdproto.XXXXXX";

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d != NULL && readdir(d) != NULL)
		n++;
	if (d != NULL)
		closedir(d);
	return n;
}

static char *
path_of(const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static int
make_file(const char *name, const char *content, mode_t mode)
{
	int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (content != NULL && write(fd, content, strlen(content)) < 0)
		diag("write: %s", name);
	fchmod(fd, mode);
	close(fd);
	return 0;
}

/* A message carrying nfd copies of fd, sent by hand. */
static int
send_with_fds(int s, uint32_t type, const void *p, uint32_t len, int fd, int nfd)
{
	uint8_t msg[64];
	struct cd_hdr h = { type, len };
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = { msg, sizeof(h) + len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
		.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	memset(&cm, 0, sizeof(cm));
	memcpy(msg, &h, sizeof(h));
	if (len > 0)
		memcpy(msg + sizeof(h), p, len);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
	for (int i = 0; i < nfd; i++)
		memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	return sendmsg(s, &m, 0) == (ssize_t)iov.iov_len ? 0 : -1;
}

static void
test_check_fd_shape(void)
{
	struct cd_fd f = { 3, CD_FD_READ };
	uint8_t p[sizeof(f) + 1] = { 0 };

	memcpy(p, &f, sizeof(f));
	ok(cd_check(CD_FD, p, sizeof(f), false), "CD_FD: word 3, READ: accepted");
	ok(!cd_check(CD_FD, p, sizeof(f), true), "CD_FD from the daemon: refused");
	ok(!cd_check(CD_FD, p, sizeof(f) - 1, false), "CD_FD one byte short: refused");
	ok(!cd_check(CD_FD, p, sizeof(f) + 1, false), "CD_FD one byte long: refused");
	f.kind = 0;
	memcpy(p, &f, sizeof(f));
	ok(!cd_check(CD_FD, p, sizeof(f), false), "CD_FD kind 0: refused");
	f.kind = CD_FD_KIND_MAX;
	memcpy(p, &f, sizeof(f));
	ok(!cd_check(CD_FD, p, sizeof(f), false), "CD_FD unknown kind: refused");
	f = (struct cd_fd){ CD_WORDS_MAX, CD_FD_DIR };
	memcpy(p, &f, sizeof(f));
	ok(!cd_check(CD_FD, p, sizeof(f), false), "CD_FD word past the last one: refused");
}

static void
test_one_fd(void)
{
	int sv[2], fd, got[2] = { -1, -1 }, n = 0, r;
	struct cd_hdr h;
	uint8_t buf[64];
	struct stat a, b;
	struct cd_fd f;

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	make_file("in", "hello", 0644);
	fd = open(path_of("in"), O_RDONLY);
	ok(cd_send_fd(sv[0], 5, CD_FD_READ, fd) == 0, "cd_send_fd sends");
	r = cd_recv_fds(sv[1], &h, buf, sizeof(buf), 1000, got, 1, &n);
	is_int(r, (int)sizeof(struct cd_fd), "the CD_FD payload arrives whole");
	is_int(h.type, CD_FD, "as a CD_FD");
	is_int(n, 1, "with exactly one descriptor");
	memcpy(&f, buf, sizeof(f));
	ok(f.word == 5 && f.kind == CD_FD_READ, "naming word 5, READ");
	ok(n == 1 && fstat(got[0], &a) == 0 && fstat(fd, &b) == 0 && a.st_ino == b.st_ino &&
		a.st_dev == b.st_dev, "the descriptor is the file the sender opened");
	ok(n == 1 && (fcntl(got[0], F_GETFD) & FD_CLOEXEC), "received close-on-exec");
	if (n == 1)
		close(got[0]);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

static void
test_unwanted_fds(void)
{
	int sv[2], fd, got[2] = { -1, -1 }, n = 0, before, r;
	struct cd_fd f = { 1, CD_FD_READ };
	struct cd_hdr h;
	uint8_t buf[64];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	fd = open(path_of("in"), O_RDONLY);
	before = open_fds();

	send_with_fds(sv[0], CD_FD, &f, sizeof(f), fd, 2);
	r = cd_recv_fds(sv[1], &h, buf, sizeof(buf), 1000, got, 1, &n);
	is_int(r, -2, "two descriptors on one CD_FD: broken peer");
	is_int(open_fds(), before, "... and both are closed");

	send_with_fds(sv[0], CD_STATS, NULL, 0, fd, 1);
	r = cd_recv(sv[1], &h, buf, sizeof(buf), 1000);
	is_int(r, -2, "a descriptor where cd_recv takes none: broken peer");
	is_int(open_fds(), before, "... and it is closed");

	send_with_fds(sv[0], CD_STATS, NULL, 0, fd, 1);
	r = cd_recv_fds(sv[1], &h, buf, sizeof(buf), 1000, got, 1, &n);
	ok(r == 0 && h.type == CD_STATS && n == 1,
		"a descriptor on CD_STATS is reported, for the receiver to refuse");
	if (n == 1)
		close(got[0]);

	cd_send(sv[0], CD_STATS, NULL, 0);
	r = cd_recv_fds(sv[1], &h, buf, sizeof(buf), 1000, got, 1, &n);
	ok(r == 0 && n == 0, "CD_STATS without one: no descriptor");
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

static void
test_fd_ok(void)
{
	char why[128];
	int fd;

	make_file("r", "x", 0644);
	fd = open(path_of("r"), O_RDONLY);
	ok(cd_fd_ok(fd, CD_FD_READ, why, sizeof(why)), "READ: a regular file, O_RDONLY");
	ok(!cd_fd_ok(fd, CD_FD_WRITE, why, sizeof(why)), "WRITE: not a read-only one (%s)", why);
	ok(!cd_fd_ok(fd, CD_FD_DIR, why, sizeof(why)), "DIR: not a file (%s)", why);
	close(fd);
	fd = open(path_of("r"), O_PATH);
	ok(!cd_fd_ok(fd, CD_FD_READ, why, sizeof(why)), "READ: never O_PATH (%s)", why);
	close(fd);
	fd = open(path_of("r"), O_RDWR);
	ok(!cd_fd_ok(fd, CD_FD_READ, why, sizeof(why)), "READ: not O_RDWR (%s)", why);
	close(fd);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	ok(!cd_fd_ok(fd, CD_FD_READ, why, sizeof(why)), "READ: not a directory (%s)", why);
	ok(cd_fd_ok(fd, CD_FD_DIR, why, sizeof(why)), "DIR: a directory, O_RDONLY");
	close(fd);
	mkfifo(path_of("fifo"), 0600);
	fd = open(path_of("fifo"), O_RDONLY | O_NONBLOCK);
	ok(!cd_fd_ok(fd, CD_FD_READ, why, sizeof(why)), "READ: not a FIFO (%s)", why);
	close(fd);

	fd = open(path_of("w"), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	fchmod(fd, 0600);
	ok(cd_fd_ok(fd, CD_FD_WRITE, why, sizeof(why)), "WRITE: new, empty, 0600, O_WRONLY");
	ok(!cd_fd_ok(fd, CD_FD_READ, why, sizeof(why)), "READ: not a write-only one (%s)", why);
	if (write(fd, "x", 1) != 1)
		diag("write failed");
	ok(!cd_fd_ok(fd, CD_FD_WRITE, why, sizeof(why)), "WRITE: not a file with content (%s)",
		why);
	close(fd);
	fd = open(path_of("w644"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	fchmod(fd, 0644);
	ok(!cd_fd_ok(fd, CD_FD_WRITE, why, sizeof(why)), "WRITE: not mode 0644 (%s)", why);
	close(fd);
	fd = open(path_of("w644"), O_RDWR);
	fchmod(fd, 0600);
	ok(!cd_fd_ok(fd, CD_FD_WRITE, why, sizeof(why)), "WRITE: not O_RDWR (%s)", why);
	close(fd);
	ok(!cd_fd_ok(-1, CD_FD_READ, why, sizeof(why)), "no descriptor (%s)", why);
}

int
main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_check_fd_shape();
	test_one_fd();
	test_unwanted_fds();
	test_fd_ok();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", dir);
	return done_testing();
}
