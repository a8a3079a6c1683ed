/*
 * tvs-controld: who may run what. Every command carries a level in the
 * command table (tvsctl help shows it); the peer's credentials, as the
 * kernel saw them when it connected (SO_PEERCRED, SO_PEERGROUPS), must
 * reach it:
 *
 *   level 0     read          root, the socket's group (--group), the
 *                             admin group, the key group
 *   level 1..3  change trust  root, the admin group (--admin-group), the
 *                             key group
 *   level 4     keys          root, the key group (--key-group; none by
 *                             default)
 *
 * A command that hands controld a directory of the client's (publish
 * --configs) is a level 4 command: controld reads every file in it.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "controld.h"

int
cd_peer_get(int fd, struct cd_peer *p)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	socklen_t glen = sizeof(p->groups);

	memset(p, 0, sizeof(*p));
	p->uid = (uid_t)-1;
	p->gid = (gid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return -1;
	p->pid = cr.pid;
	p->uid = cr.uid;
	p->gid = cr.gid;
	/* more groups than fit: ERANGE, and the peer is judged by its first
	 * gid only (never more rights than the kernel reported) */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &glen) == 0)
		p->ngroups = (int)(glen / sizeof(gid_t));
	return 0;
}

static int
command_words(const struct ctl_cmd *k, char *out, size_t n)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < CTL_MAX_WORDS && k->words[i] && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%s", i ? " " : "", k->words[i]);
	return len < n ? 0 : -1;
}

int
cd_auth_level_opt(const char *arg)
{
	const char *eq = strrchr(arg, '=');
	char words[64], *end;
	long lv;

	if (eq == NULL || cd.nlevels == CD_LEVEL_OVERRIDES || (size_t)(eq - arg) >= sizeof(words))
		return -1;
	lv = strtol(eq + 1, &end, 10);
	if (*end != '\0' || end == eq + 1 || lv < 0 || lv > 4)
		return -1;
	for (const struct ctl_cmd *k = ctl_cmds; k->words[0]; k++) {
		if (command_words(k, words, sizeof(words)) != 0 ||
		    strlen(words) != (size_t)(eq - arg) || memcmp(words, arg, strlen(words)) != 0)
			continue;
		snprintf(cd.levels[cd.nlevels].words, sizeof(cd.levels[0].words), "%s", words);
		cd.levels[cd.nlevels++].level = (int)lv;
		return 0;
	}
	return -1;
}

static gid_t
group_gid(const char *name, const char *opt)
{
	struct group *g;

	if (name == NULL)
		return (gid_t)-1;
	errno = 0;
	if ((g = getgrnam(name)) != NULL)
		return g->gr_gid;
	cd_log(LOG_WARNING, "%s %s: no such group; nobody is admitted through it", opt, name);
	return (gid_t)-1;
}

int
cd_auth_setup(void)
{
	cd.read_gid = group_gid(cd.group, "--group");
	cd.admin_gid = group_gid(cd.admin_group, "--admin-group");
	cd.key_gid = group_gid(cd.key_group, "--key-group");
	return 0;
}

static bool
in_group(const struct cd_peer *p, gid_t g)
{
	if (g == (gid_t)-1)
		return false;
	if (p->gid == g)
		return true;
	for (int i = 0; i < p->ngroups; i++)
		if (p->groups[i] == g)
			return true;
	return false;
}

static int
level_of(const struct ctl *c)
{
	char words[64];
	int lv = c->cmd->level;

	if (command_words(c->cmd, words, sizeof(words)) == 0)
		for (int i = 0; i < cd.nlevels; i++)
			if (strcmp(cd.levels[i].words, words) == 0)
				lv = cd.levels[i].level;
	if (ctl_opt(c, "configs") != NULL)
		lv = CTL_LEVEL_KEYS;
	return lv;
}

/* "root or group tvsadmin": who may run a command of this level. */
static void
who_may(int lv, char *out, size_t n)
{
	const char *g[3];
	int k = 0;
	size_t len;

	if (lv <= CTL_LEVEL_READ && cd.read_gid != (gid_t)-1)
		g[k++] = cd.group;
	if (lv < CTL_LEVEL_KEYS && cd.admin_gid != (gid_t)-1)
		g[k++] = cd.admin_group;
	if (cd.key_gid != (gid_t)-1)
		g[k++] = cd.key_group;
	len = (size_t)snprintf(out, n, "root");
	for (int i = 0; i < k && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%s", i == 0 ? (k == 1 ? " or group " :
			" or groups ") : (i == k - 1 ? " or " : ", "), g[i]);
}

/* "uid 1000 (groups tvs, audio)"; sessions are threads: getgrgid_r. */
static void
who_is(const struct cd_peer *p, char *out, size_t n)
{
	size_t len = (size_t)snprintf(out, n, "uid %u (groups", (unsigned)p->uid);
	int shown = 0;

	for (int i = -1; i < p->ngroups && len < n; i++) {
		gid_t g = i < 0 ? p->gid : p->groups[i];
		struct group gr, *res = NULL;
		char buf[4096];

		if (i >= 0 && g == p->gid)
			continue;
		if (getgrgid_r(g, &gr, buf, sizeof(buf), &res) == 0 && res != NULL)
			len += (size_t)snprintf(out + len, n - len, "%s%s", shown++ ? ", " : " ",
				res->gr_name);
		else
			len += (size_t)snprintf(out + len, n - len, "%s%u", shown++ ? ", " : " ",
				(unsigned)g);
	}
	if (len < n)
		snprintf(out + len, n - len, ")");
}

bool
cd_auth_check(const struct cd_peer *p, const struct ctl *c, char *why, size_t whysz)
{
	int lv = level_of(c);
	char words[64], may[160], is[400];
	bool ok;

	if (p->uid == 0 || in_group(p, cd.key_gid))
		return true;
	if (lv >= CTL_LEVEL_KEYS)
		ok = false;
	else if (lv > CTL_LEVEL_READ)
		ok = in_group(p, cd.admin_gid);
	else
		ok = in_group(p, cd.admin_gid) || in_group(p, cd.read_gid);
	if (ok)
		return true;
	CD_COUNT(denied);
	command_words(c->cmd, words, sizeof(words));
	who_may(lv, may, sizeof(may));
	who_is(p, is, sizeof(is));
	snprintf(why, whysz, "'%s%s' needs %s; you are %s", words,
		ctl_opt(c, "configs") != NULL ? " --configs" : "", may, is);
	return false;
}
