/*
 * tvsctl's main: global options, then the command. Commands that change
 * trust go to tvs-controld when its socket answers (it publishes and waits
 * until tvsd serves the change); otherwise they run here, on the store.
 */
#include <stdlib.h>

#include "ctl.h"

static const char default_store[] = CTL_DEFAULT_STORE;
static const char default_pub[] = CTL_DEFAULT_PUB;

int
main(int argc, char **argv)
{
	struct ctl c = { 0 };
	int rc;

	c.out = stdout;
	c.errf = stderr;
	c.store_dir = getenv("TVS_STORE") ? getenv("TVS_STORE") : default_store;
	c.pub_dir = getenv("TVS_PUBLICATIONS") ? getenv("TVS_PUBLICATIONS") : default_pub;
	c.controld = getenv("TVS_CONTROLD") ? getenv("TVS_CONTROLD") : CTL_DEFAULT_CONTROLD;
	argc--, argv++;
	if ((rc = ctl_parse_globals(&c, &argc, argv)) != CTL_OK)
		return rc;
	c.store_given = getenv("TVS_STORE") != NULL || c.store_dir != default_store;
	c.pub_given = getenv("TVS_PUBLICATIONS") != NULL || c.pub_dir != default_pub;
	if ((rc = ctl_parse(&c, argc, argv)) != CTL_OK)
		return rc;
	if (c.cmd->flags & (CTL_F_CHANGE | CTL_F_DAEMON)) {
		rc = ctl_remote_run(&c);
		if (rc != CTL_OFFLINE)
			return rc;
	}
	return c.cmd->fn(&c);
}
