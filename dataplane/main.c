/*
 * tvsd: serve the current publication over TFTP from DPDK worker lcores.
 *
 *   tvsd <EAL args> -- -c <config>      run
 *   tvsd -n -c <config>                 check the configuration, no EAL
 *   tvsd --help-config                  the configuration reference
 *
 * Signals: SIGINT/SIGTERM stop, SIGHUP reloads the publication. The
 * handlers only set flags; the main lcore acts on them in its loop.
 */
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dp.h"
#include "publication.h"
#include "pubverify.h"

RTE_LOG_REGISTER(dp_logtype, tvs.dp, INFO);
RTE_LOG_REGISTER(dp_logtype_ctl, tvs.ctl, INFO);

struct dp_app dp_app;
volatile int dp_quit;
volatile int dp_reload_requested;

struct dp_opts {
	const char *config;
	bool check;
	bool help_config;
};

static void
dp_usage(FILE *f, const char *prog)
{
	fprintf(f, "usage: %s <EAL args> -- -c <config>\n"
		"       %s -n -c <config>     check the configuration and exit\n"
		"       %s --help-config      print the configuration reference\n"
		"Signals: SIGHUP reloads the publication, SIGINT/SIGTERM stop.\n",
		prog, prog, prog);
}

/* 0 to go on, 1 to exit 0, -1 to exit 1. */
static int
dp_parse_opts(int argc, char **argv, struct dp_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "help-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:nh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'n': o->check = true; break;
		case 'C': o->help_config = true; break;
		case 'h': dp_usage(stdout, argv[0]); return 1;
		default: dp_usage(stderr, argv[0]); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return -1;
	}
	if (o->config == NULL && !o->help_config) {
		fprintf(stderr, "%s: -c <config> is required\n", argv[0]);
		return -1;
	}
	return 0;
}

/* `tvsd -n`: the configuration, then whether the publication loads. */
static int
dp_check(const char *path)
{
	struct tvs_config c;
	struct cfg_errors err;
	struct publication p;
	struct trust_err terr = { 0 };

	if (cfg_load(path, &c, &err) != 0) {
		cfg_errors_print(&err, stderr);
		return 1;
	}
	if (pub_load(c.publications, &p, &terr) == 0) {
		if (pub_verify(&p, &terr) == 0)
			printf("publication: generation %llu, %zu files\n",
				(unsigned long long)p.generation, p.nfiles);
		else
			printf("warning: publication generation %llu would be refused: %s\n",
				(unsigned long long)p.generation, terr.msg);
		pub_free(&p);
	} else
		printf("warning: no publication to serve yet: %s\n", terr.msg);
	if (strcmp(c.user, "root") != 0 && getpwnam(c.user) == NULL)
		printf("warning: [tvsd] user '%s' does not exist: started as root, tvsd will "
			"refuse to run (systemd-sysusers makes it)\n", c.user);
	printf("configuration OK\n");
	return 0;
}

static void
dp_signal(int sig)
{
	if (sig == SIGHUP)
		dp_reload_requested = 1;
	else
		dp_quit = 1;
}

static void
dp_signals(void)
{
	struct sigaction sa = { .sa_handler = dp_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Workers = the EAL worker lcores the configuration selects. */
static int
dp_select_workers(void)
{
	const struct tvs_config *c = &dp_app.cfg;
	unsigned l;

	for (l = 0; l < CFG_MAX_LCORE && !c->workers_all; l++) {
		if (!cfg_worker_selected(c, l))
			continue;
		if (l == rte_get_main_lcore() || !rte_lcore_is_enabled(l)) {
			DP_LOG(ERR, "%s: [tvsd] workers: lcore %u is not a worker lcore of EAL (-l)",
				c->path, l);
			return -1;
		}
	}
	RTE_LCORE_FOREACH_WORKER(l) {
		if (cfg_worker_selected(c, l))
			dp_app.workers[dp_app.nworkers++] = l;
	}
	if (dp_app.nworkers == 0) {
		DP_LOG(ERR, "no worker lcore: give EAL at least two lcores (e.g. -l 0-1)");
		return -1;
	}
	return 0;
}

static int
dp_setup(void)
{
	size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);

	rte_log_set_level_pattern("tvs.*", (uint32_t)dp_app.cfg.log_level);
	if (dp_select_workers() < 0)
		return -1;
	dp_app.qsbr = rte_zmalloc("tvs_qsbr", sz, RTE_CACHE_LINE_SIZE);
	if (dp_app.qsbr == NULL || rte_rcu_qsbr_init(dp_app.qsbr, RTE_MAX_LCORE) != 0) {
		DP_LOG(ERR, "cannot set up QSBR RCU");
		return -1;
	}
	if (dp_ports_init() < 0 || dp_tvs_init() < 0 || dp_workers_init() < 0)
		return -1;
	if (dp_ctl_open(dp_app.cfg.control_socket) < 0)
		return -1;
	dp_telemetry_init();
	/* the first publication is read as every reload reads it: unprivileged */
	if (dp_priv_drop() < 0)
		return -1;
	dp_pub_init();
	return 0;
}

/* The main lcore's loop: control socket, reloads, freeing old generations. */
static void
dp_main_loop(void)
{
	while (!dp_quit) {
		dp_ctl_poll(50);
		if (dp_reload_requested) {
			char msg[700];

			dp_reload_requested = 0;
			DP_LOG(INFO, "SIGHUP: reloading the publication");
			dp_pub_reload(msg, sizeof(msg));
		}
		dp_pub_reap();
		dp_tvs_main_tick();
	}
}

static void
dp_teardown(void)
{
	rte_eal_mp_wait_lcore();
	dp_tvs_offload_stop();
	dp_workers_free();
	dp_ports_close();
	dp_ctl_close();
	dp_pub_fini();
	dp_tvs_fini();	/* ticket keys outlive the last TLS context */
	rte_free(dp_app.qsbr);
	dp_app.qsbr = NULL;
}

static int
dp_run(void)
{
	unsigned w;

	if (dp_tvs_start() < 0) {
		dp_quit = 1;
		return -1;
	}
	for (w = 0; w < dp_app.nworkers; w++) {
		if (rte_eal_remote_launch(dp_worker_main, NULL, dp_app.workers[w]) != 0) {
			DP_LOG(ERR, "cannot launch lcore %u", dp_app.workers[w]);
			dp_quit = 1;
			return -1;
		}
	}
	DP_LOG(NOTICE, "running: %u workers, %u ports, control socket %s", dp_app.nworkers,
		dp_app.nports, dp_app.cfg.control_socket);
	dp_main_loop();
	DP_LOG(NOTICE, "stopping");
	return 0;
}

/* Where the app arguments start: after "--", or at argv[0] when the
 * command line has no EAL part (tvsd -n -c FILE); -1 when there are none. */
static int
dp_split_args(int argc, char **argv, int *eal_argc)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			*eal_argc = i;
			return i;
		}
	}
	*eal_argc = 0;
	if (argc > 1 && argv[1][0] == '-' && (strchr("nch", argv[1][1]) != NULL
	    || strncmp(argv[1], "--help", 6) == 0 || strcmp(argv[1], "--check") == 0
	    || strncmp(argv[1], "--config", 8) == 0))
		return 0;
	return -1;
}

int
main(int argc, char **argv)
{
	struct cfg_errors err;
	struct dp_opts o = { 0 };
	int eal_argc, app, rc;

	app = dp_split_args(argc, argv, &eal_argc);
	if (app < 0) {
		dp_usage(stderr, argv[0]);
		return 1;
	}
	argv[app] = argv[0];	/* getopt wants the program name first */
	rc = dp_parse_opts(argc - app, argv + app, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 1;
	if (o.help_config) {
		cfg_doc_print(stdout);
		return 0;
	}
	if (o.check)
		return dp_check(o.config);
	if (cfg_load(o.config, &dp_app.cfg, &err) != 0) {
		cfg_errors_print(&err, stderr);
		return 1;
	}
	if (dp_priv_prepare(&dp_app.cfg) < 0)
		return 1;
	if (eal_argc == 0)
		eal_argc = 1;	/* EAL with its defaults */
	rc = rte_eal_init(eal_argc, argv);
	if (rc < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n", rte_strerror(rte_errno));
	dp_app.started = (uint64_t)time(NULL);
	dp_signals();
	rc = dp_setup() == 0 ? dp_run() : -1;
	dp_quit = 1;
	dp_teardown();
	rte_eal_cleanup();
	dp_priv_exit();
	return rc == 0 ? 0 : 1;
}
