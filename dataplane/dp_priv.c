/*
 * dp_priv: tvsd gives up root once it holds what only root may open.
 *
 * EAL (vfio groups, hugepages, PCI resources, TAP devices), the control
 * socket and telemetry are set up as root; serving needs none of that.
 * Then tvsd becomes [tvsd] user, keeping only the capabilities its ports
 * still use at run time (priv_caps), so that a flaw in the packet path
 * cannot read the trust store or a signing key: README.md "Privileges".
 *
 * Threads: glibc's setgroups/setgid/setuid change every thread at once;
 * capabilities are per thread, and only the main lcore keeps any (reloads
 * grow DPDK's heap there, teardown stops the ports there): the threads EAL
 * started before have none (threads started later, like the TVS offload
 * thread, inherit the main lcore's). PR_SET_NO_NEW_PRIVS is set before EAL
 * starts a thread, so that every thread inherits it.
 *
 * Clean-up: once unprivileged, tvsd cannot remove its control socket (in a
 * root-owned directory) nor DPDK's runtime directory. A helper forked
 * before EAL (one thread then, no DPDK memory to share) keeps uid 0 but no
 * capability and no descriptor but the pipe, and waits for tvsd's end (EOF on a
 * pipe) to remove both. It learns what to remove from the one message tvsd
 * writes while still root, and ignores whatever comes after.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_vfio.h>

#include "dp.h"

/* What the helper removes once tvsd is gone. */
struct priv_msg {
	char rtdir[1024];	/* DPDK's runtime directory */
	dev_t sock_dev;		/* the control socket tvsd bound */
	ino_t sock_ino;
};

static struct {
	bool drop;		/* root with a user to become */
	uid_t uid;
	gid_t gid;
	char user[CFG_USER_MAX];
	int pipe;		/* to the helper, -1 without one */
	bool helper_cleans;	/* it has its message */
} priv = { .pipe = -1 };

/* DPDK 22.11's files in its runtime directory (eal, telemetry). */
static const char *const priv_rt_files[] = {
	"config", "fbarray_*", "hugepage_info", "mp_socket*", "dpdk_telemetry*", "telemetry",
};

static void
priv_clean_rtdir(const char *rtdir)
{
	int dfd = open(rtdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	char parent[sizeof(((struct priv_msg *)0)->rtdir)];
	char *slash;

	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		for (size_t i = 0; i < RTE_DIM(priv_rt_files); i++) {
			if (fnmatch(priv_rt_files[i], e->d_name, 0) == 0) {
				unlinkat(dirfd(d), e->d_name, 0);
				break;
			}
		}
	}
	closedir(d);
	rmdir(rtdir);
	/* <base>/dpdk: other DPDK programs may use it, so only when empty */
	snprintf(parent, sizeof(parent), "%s", rtdir);
	slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		rmdir(parent);
	}
}

static void
priv_clean(const struct priv_msg *m, const char *sock)
{
	struct stat st;

	if (sock != NULL && lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == m->sock_dev && st.st_ino == m->sock_ino)
		unlink(sock);
	if (m->rtdir[0] == '/')
		priv_clean_rtdir(m->rtdir);
}

/* No capability, in any set, for good: the helper needs none to remove
 * files from root-owned directories. */
static void
priv_caps_none(void)
{
	cap_t none = cap_init();

	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (CAP_IS_SUPPORTED(c))
			cap_drop_bound(c);
	if (none != NULL) {
		cap_set_proc(none);
		cap_free(none);
	}
}

static bool
priv_read_all(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

static void __attribute__((noreturn))
priv_helper(int in, const char *sock)
{
	struct priv_msg m;
	sigset_t all;
	char sink[256];
	ssize_t r;

	prctl(PR_SET_NAME, "tvsd-cleanup");
	/* systemd signals the whole cgroup: the helper outlives tvsd */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (in > 0)
		close_range(0, (unsigned)in - 1, 0);
	close_range((unsigned)in + 1, ~0u, 0);
	priv_caps_none();
	if (!priv_read_all(in, &m, sizeof(m)))
		_exit(0);	/* tvsd ended before it had anything to clean */
	m.rtdir[sizeof(m.rtdir) - 1] = '\0';
	do
		r = read(in, sink, sizeof(sink));
	while (r > 0 || (r < 0 && errno == EINTR));
	priv_clean(&m, sock);
	_exit(0);
}

static int
priv_fork_helper(const char *sock)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "tvsd: pipe: %s\n", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "tvsd: fork: %s\n", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[1]);
		priv_helper(p[0], sock);
	}
	close(p[0]);
	priv.pipe = p[1];
	return 0;
}

int
dp_priv_prepare(const struct tvs_config *c)
{
	struct passwd *pw;

	/* inherited by every thread EAL starts; tvsd never executes a program */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		fprintf(stderr, "tvsd: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
		return -1;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "tvsd: not started as root (uid %u): [tvsd] user is not applied\n",
			(unsigned)geteuid());
		return 0;
	}
	if (strcmp(c->user, "root") == 0) {
		fprintf(stderr, "tvsd: warning: [tvsd] user = root in %s: tvsd keeps root and every "
			"capability, and a flaw in the packet path reaches the signing keys\n", c->path);
		return 0;
	}
	errno = 0;
	pw = getpwnam(c->user);
	if (pw == NULL) {
		fprintf(stderr, "tvsd: %s: [tvsd] user '%s' %s; create it (systemd-sysusers with "
			"tvs.conf of config/systemd, installed in lib/sysusers.d), or set "
			"user = root to run as root\n", c->path, c->user,
			errno != 0 ? strerror(errno) : "does not exist");
		return -1;
	}
	if (pw->pw_uid == 0) {
		fprintf(stderr, "tvsd: warning: [tvsd] user '%s' is uid 0: tvsd keeps root\n",
			c->user);
		return 0;
	}
	snprintf(priv.user, sizeof(priv.user), "%s", c->user);
	priv.uid = pw->pw_uid;
	priv.gid = pw->pw_gid;
	priv.drop = true;
	return priv_fork_helper(c->control_socket);
}

/* ---- the drop ------------------------------------------------------------ */

struct priv_cap {
	cap_value_t cap;
	const char *why;
};

/*
 * The capabilities the main lcore still uses after setup (README.md
 * "Privileges"): with vfio, memory that DPDK's heap adds later (a reload's
 * caches) is DMA-mapped, which pins it and counts against RLIMIT_MEMLOCK
 * unless CAP_IPC_LOCK. Measured here: net_tap and --no-huge need none (the
 * TAP's fds are open; closing them at exit removes the interface).
 */
static unsigned
priv_caps(struct priv_cap *keep)
{
	unsigned n = 0;

	if (rte_vfio_is_enabled("vfio_pci"))
		keep[n++] = (struct priv_cap){ CAP_IPC_LOCK,
			"vfio: DMA mapping of heap memory added later" };
	return n;
}

static void
priv_send_msg(void)
{
	struct priv_msg m = { 0 };
	struct stat st;
	ssize_t w;

	snprintf(m.rtdir, sizeof(m.rtdir), "%s", rte_eal_get_runtime_dir());
	if (lstat(dp_app.cfg.control_socket, &st) == 0) {
		m.sock_dev = st.st_dev;
		m.sock_ino = st.st_ino;
	}
	do
		w = write(priv.pipe, &m, sizeof(m));
	while (w < 0 && errno == EINTR);
	priv.helper_cleans = w == (ssize_t)sizeof(m);
	if (!priv.helper_cleans)
		DP_LOG(WARNING, "privileges: the clean-up helper did not get its message: %s",
			w < 0 ? strerror(errno) : "short write");
}

static int
priv_set_ids(void)
{
	if (initgroups(priv.user, priv.gid) != 0 ||
	    setresgid(priv.gid, priv.gid, priv.gid) != 0) {
		DP_LOG(ERR, "privileges: groups of %s: %s", priv.user, strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 ||
	    setresuid(priv.uid, priv.uid, priv.uid) != 0) {
		DP_LOG(ERR, "privileges: becoming %s: %s", priv.user, strerror(errno));
		return -1;
	}
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	return 0;
}

static bool
priv_kept(const struct priv_cap *keep, unsigned n, cap_value_t c)
{
	for (unsigned i = 0; i < n; i++)
		if (keep[i].cap == c)
			return true;
	return false;
}

/* Bounding set = keep: needs CAP_SETPCAP, so before the switch of user. */
static int
priv_drop_bound(const struct priv_cap *keep, unsigned n)
{
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		if (!priv_kept(keep, n, c) && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) != 0) {
			DP_LOG(ERR, "privileges: bounding set: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Permitted and effective = keep, inheritable none (so no ambient). */
static int
priv_set_caps(const struct priv_cap *keep, unsigned n)
{
	cap_value_t v[CAP_LAST_CAP + 1];
	cap_t caps = cap_init();
	int rc = -1;

	for (unsigned i = 0; i < n; i++)
		v[i] = keep[i].cap;
	if (caps != NULL &&
	    (n == 0 || (cap_set_flag(caps, CAP_PERMITTED, (int)n, v, CAP_SET) == 0 &&
	    cap_set_flag(caps, CAP_EFFECTIVE, (int)n, v, CAP_SET) == 0)) &&
	    cap_set_proc(caps) == 0)
		rc = 0;
	else
		DP_LOG(ERR, "privileges: capabilities: %s", strerror(errno));
	cap_free(caps);
	return rc;
}

int
dp_priv_drop(void)
{
	struct priv_cap keep[4];
	unsigned n = priv_caps(keep);
	char names[256] = "none";
	size_t len = 0;

	if (!priv.drop)
		return 0;
	priv_send_msg();
	if (priv_drop_bound(keep, n) != 0 || priv_set_ids() != 0 || priv_set_caps(keep, n) != 0)
		return -1;
	if (setuid(0) == 0 || setgid(0) == 0) {
		DP_LOG(ERR, "privileges: root could be taken back; stopping");
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		char *s = cap_to_name(keep[i].cap);

		len += (size_t)snprintf(names + len, sizeof(names) - RTE_MIN(len, sizeof(names)),
			"%s%s (%s)", i ? ", " : "", s, keep[i].why);
		cap_free(s);
	}
	DP_LOG(NOTICE, "privileges: now user %s (uid %u, gid %u); capabilities kept: %s",
		priv.user, (unsigned)priv.uid, (unsigned)priv.gid, names);
	return 0;
}

/* At exit, when no helper does it (no drop, or set-up failed before it):
 * DPDK 22.11 leaves its runtime files (the memory's fbarrays, config). */
void
dp_priv_exit(void)
{
	struct priv_msg m = { 0 };

	if (priv.helper_cleans)
		return;
	snprintf(m.rtdir, sizeof(m.rtdir), "%s", rte_eal_get_runtime_dir());
	priv_clean(&m, NULL);
}
