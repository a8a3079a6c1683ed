/*
 * tvs-controld: the daemon that owns the trust store and every signing
 * key but the TVS TLS key. tvsctl sends it the commands that change trust
 * (cdproto.h); it runs them with tvsctl's own handlers, publishes the
 * result, has tvsd reload it and answers only when every worker lcore of
 * tvsd serves the new generation (or says which step failed).
 *
 * Threads: the main thread accepts connections and refreshes the ITL
 * rollout from tvsd now and then; each connection is a thread. store_mu
 * serialises the sessions that change the store: a second one is told
 * "locked" and who holds it, at once.
 */
#ifndef CONTROL_CONTROLD_H
#define CONTROL_CONTROLD_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>
#include <sys/types.h>

#include "cdproto.h"
#include "ctl.h"

#define CD_DEFAULT_SOCKET CTL_DEFAULT_CONTROLD

/* Who is at the other end of a session (SO_PEERCRED, SO_PEERGROUPS). */
#define CD_PEER_GROUPS 64
struct cd_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[CD_PEER_GROUPS];
};

#define CD_LEVEL_OVERRIDES 16

struct controld {
	const char *socket;
	const char *group;		/* the socket's group: level 0 (read) */
	const char *admin_group;	/* level 1 (change trust) */
	const char *key_group;		/* level 4 (keys) besides root; NULL: root only */
	gid_t read_gid, admin_gid, key_gid;	/* (gid_t)-1: no such group */
	struct {
		char words[64];		/* "set cert regen" */
		int level;
	} levels[CD_LEVEL_OVERRIDES];
	int nlevels;
	int sessions_per_uid;
	int session_max_ms;		/* a command session's whole time */
	const char *store;
	const char *pub;
	const char *tvsd;
	const char *tvsd_user;	/* --tvsd-user: owner of tvs.key in publications */
	char store_real[PATH_MAX];
	char pub_real[PATH_MAX];
	int serve_timeout_ms;		/* for tvsd's reload answer: every lcore serves it */
	int rollout_interval_s;
	int listen_fd;
	pthread_mutex_t store_mu;
	pthread_mutex_t holder_mu;
	char holder[320];		/* who holds store_mu, for "locked" */
	long long holder_since;
	struct cd_stats stats;		/* __atomic updates */
	int active;			/* sessions running */
};

extern struct controld cd;

void cd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long long cd_now_ms(void);
#define CD_COUNT(field) __atomic_add_fetch(&cd.stats.field, 1, __ATOMIC_RELAXED)

/* cd_auth.c: who may run what. */
/* Fills p from the connected socket; -1 when the kernel says nothing. */
int cd_peer_get(int fd, struct cd_peer *p);
/* "--level 'set cert regen=1'": the level of one command. 0 or -1. */
int cd_auth_level_opt(const char *arg);
/* The groups named by the options, as gids (logs what is missing). */
int cd_auth_setup(void);
/* True when the peer may run the parsed command; else why names what is
 * needed and who the peer is, and the refusal is counted. */
bool cd_auth_check(const struct cd_peer *p, const struct ctl *c, char *why, size_t whysz);

/* cd_serve.c: tvsd. */
/* Has tvsd reload and waits until every lcore serves gen (0: the current
 * publication); prints the outcome line to c->out. Returns the exit code. */
int cd_serve(struct ctl *c, uint64_t gen, long long t0);
/* The generation <pub>/current names, or 0. */
uint64_t cd_current_generation(void);
/* Pulls tvsd's fetch table into <pub>/rollout (quietly when tvsd is down). */
void cd_rollout_refresh(void);

#endif
