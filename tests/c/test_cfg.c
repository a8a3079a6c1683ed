/*
 * config/: a good file with defaults applied, then one bad file per kind
 * of mistake; each error must name file:line and the key at fault.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "tap.h"

static char dir[] = "/tmp/tvs-test-cfg-XXXXXX";
static unsigned seq;

static const char *
write_conf(const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/c%u.conf", dir, seq++);
	f = fopen(path, "w");
	if (f == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text; expects failure with an error containing file:line: and want. */
static void
expect_error(const char *what, const char *text, unsigned line, const char *want)
{
	struct tvs_config c;
	struct cfg_errors err;
	const char *path = write_conf(text);
	char prefix[300];
	int rc;

	rc = cfg_load(path, &c, &err);
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	ok(rc == -1 && err.n >= 1 && strncmp(err.msg[0], prefix, strlen(prefix)) == 0
		&& strstr(err.msg[0], want) != NULL, "%s", what);
	if (err.n >= 1)
		diag("got: %s", err.msg[0]);
	else
		diag("no error reported (rc %d)", rc);
}

static const char good[] =
	"# tvsd test configuration\n"
	"[tvsd]\n"
	"publications = /srv/tvs/pub   # trailing comment\n"
	"control-socket = /run/tvs/t.sock\n"
	"workers = 1,3-4\n"
	"log-level = debug\n"
	"\n"
	"[tftp]\n"
	"max-blksize = 1428\n"
	"max-windowsize=8\n"
	"\n"
	"[port0]\n"
	"address = 10.99.0.2/24\n"
	"vlan = 42\n"
	"promiscuous = yes\n"
	"[port2]\n"
	"address = 192.168.1.1/32\n";

static void
test_good(void)
{
	struct tvs_config c;
	struct cfg_errors err;
	int rc = cfg_load(write_conf(good), &c, &err);

	is_int(rc, 0, "good file loads");
	cfg_errors_print(&err, stdout);
	is_str(c.publications, "/srv/tvs/pub", "publications (comment cut)");
	is_str(c.control_socket, "/run/tvs/t.sock", "control-socket");
	ok(!c.workers_all && cfg_worker_selected(&c, 1) && !cfg_worker_selected(&c, 2)
		&& cfg_worker_selected(&c, 3) && cfg_worker_selected(&c, 4)
		&& !cfg_worker_selected(&c, 5), "workers 1,3-4");
	is_int(c.log_level, 8, "log-level debug = 8");
	is_str(cfg_log_level_name(c.log_level), "debug", "level name");
	is_int(c.mbufs, 8191, "mbufs default");
	is_int(c.tftp.max_blksize, 1428, "max-blksize");
	is_int(c.tftp.max_windowsize, 8, "max-windowsize without spaces");
	is_int(c.tftp.timeout_ms, 1000, "timeout-ms default");
	is_int(c.tftp.retries, 5, "retries default");
	is_int(c.tftp.max_transfers, 1024, "max-transfers-per-core default");
	is_int(c.tftp.port_base, 49152, "port-base default");
	is_int(c.tftp.max_per_source, 32, "max-transfers-per-source default");
	is_int(c.tftp.max_timeout_s, 5, "max-timeout-s default");
	is_int(c.tftp.max_life_s, 300, "max-transfer-s default");
	is_int(c.tvs.max_per_source, 64, "max-conns-per-source default");
	is_int(c.tvs.max_handshakes_per_source, 32, "max-handshakes-per-source default");
	is_int(c.nports, 2, "two ports");
	ok(c.ports[0].present && !c.ports[1].present && c.ports[2].present, "port0 and port2");
	is_int(c.ports[0].ip, 0x0a630002, "port0 address");
	is_int(c.ports[0].prefix, 24, "port0 prefix");
	is_int(c.ports[0].vlan, 42, "port0 vlan");
	ok(c.ports[0].promiscuous, "port0 promiscuous");
	is_int(c.ports[0].line, 12, "port0 header line");
	is_int(c.ports[2].mtu, 1500, "port2 mtu default");
	is_int(c.ports[2].vlan, 0, "port2 untagged by default");
	ok(!c.ports[2].promiscuous, "port2 promiscuous default off");
	is_int(c.ports[2].rx_desc, 1024, "rx-desc default");
}

static void
test_minimal(void)
{
	struct tvs_config c;
	struct cfg_errors err;

	is_int(cfg_load(write_conf("[port0]\naddress = 10.0.0.1/8\n"), &c, &err), 0,
		"only a port section: everything else defaults");
	is_str(c.publications, "/var/lib/tvs/publications", "publications default");
	is_str(c.control_socket, "/run/tvs/tvsd.sock", "control socket default");
	ok(c.workers_all, "workers default all");
	is_int(c.log_level, 7, "log-level default info");
	is_str(c.user, "tvsd", "user default tvsd: unprivileged unless the file says root");
}

static void
test_errors(void)
{
	struct tvs_config c;
	struct cfg_errors err;
	char path[300];

	expect_error("unknown key", "[tvsd]\nlog-level = info\nbogus = 1\n[port0]\naddress=10.0.0.1/8\n",
		3, "unknown key 'bogus' in [tvsd]");
	expect_error("unknown section", "[port0]\naddress=10.0.0.1/8\n\n[interfaces]\nx = 1\n",
		4, "unknown section [interfaces]");
	expect_error("port beyond the limit", "[port9]\naddress=10.0.0.1/8\n",
		1, "unknown section [port9]");
	expect_error("not a number", "[tftp]\nretries = five\n[port0]\naddress=10.0.0.1/8\n",
		2, "bad value for 'retries' in [tftp]: 'five' is not a decimal number");
	expect_error("negative number", "[tftp]\n\nretries = -1\n[port0]\naddress=10.0.0.1/8\n",
		3, "'retries'");
	expect_error("trailing garbage", "[tftp]\ntimeout-ms = 100ms\n[port0]\naddress=10.0.0.1/8\n",
		2, "'timeout-ms' in [tftp]: '100ms' is not a decimal number");
	expect_error("out of range", "[port0]\naddress=10.0.0.1/8\n[tftp]\nmax-blksize = 70000\n",
		4, "'max-blksize' in [tftp]: 70000 is out of range [8, 65464]");
	expect_error("timeout cap above RFC 2349", "[port0]\naddress=10.0.0.1/8\n[tftp]\n"
		"max-timeout-s = 256\n", 4, "'max-timeout-s' in [tftp]: 256 is out of range [1, 255]");
	expect_error("no zero bound", "[port0]\naddress=10.0.0.1/8\n[tvs]\n"
		"max-handshakes-per-source = 0\n", 4,
		"'max-handshakes-per-source' in [tvs]: 0 is out of range [1, 65536]");
	expect_error("below range", "[port0]\naddress=10.0.0.1/8\nmtu = 67\n",
		3, "'mtu' in [port0]: 67 is out of range [68, 9600]");
	expect_error("vlan 4095", "[port0]\naddress=10.0.0.1/8\nvlan = 4095\n",
		3, "'vlan' in [port0]: 4095 is out of range");
	expect_error("bad boolean", "[port0]\naddress=10.0.0.1/8\npromiscuous = maybe\n",
		3, "'promiscuous' in [port0]: 'maybe' is not yes/no");
	expect_error("bad log level", "[tvsd]\nlog-level = loud\n[port0]\naddress=10.0.0.1/8\n",
		2, "'log-level' in [tvsd]: 'loud' is not one of");
	expect_error("bad address", "[port0]\naddress = 10.0.0.300/8\n",
		2, "'address' in [port0]: '10.0.0.300' is not an IPv4 address");
	expect_error("address without prefix", "[port0]\naddress = 10.0.0.3\n",
		2, "'address' in [port0]: '10.0.0.3' is not address/prefix");
	expect_error("prefix 33", "[port0]\naddress = 10.0.0.3/33\n",
		2, "33 is out of range [1, 32]");
	expect_error("network address", "[port0]\naddress = 10.0.0.0/24\n",
		2, "10.0.0.0 is the network or broadcast address of /24");
	expect_error("multicast address", "[port0]\naddress = 224.0.0.5/24\n",
		2, "224.0.0.5 is not a unicast host address");
	expect_error("missing required key", "[tvsd]\nlog-level = info\n\n[port0]\nmtu = 1500\n",
		4, "missing required key 'address' in [port0]");
	expect_error("relative path", "[tvsd]\npublications = pub\n[port0]\naddress=10.0.0.1/8\n",
		2, "'publications' in [tvsd]: 'pub' is not an absolute path");
	expect_error("socket path too long", "[tvsd]\ncontrol-socket = /run/"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"\n[port0]\naddress=10.0.0.1/8\n", 2, "path longer than 107 bytes");
	expect_error("bad lcore list", "[tvsd]\nworkers = 1,,2\n[port0]\naddress=10.0.0.1/8\n",
		2, "'workers' in [tvsd]: '1,,2' is not `all` or a list");
	expect_error("lcore beyond the limit", "[tvsd]\nworkers = 1-200\n[port0]\naddress=10.0.0.1/8\n",
		2, "lcore range 1-200");
	expect_error("syntax error", "[tvsd]\nlog-level info\n",
		2, "syntax error: expected [section] or key = value");
	expect_error("semicolon comment is not a comment", "[tvsd]\n; note\n", 2, "syntax error");
	expect_error("key outside section", "log-level = info\n[tvsd]\n",
		1, "key 'log-level' outside of any [section]");
	expect_error("empty value", "[tvsd]\nlog-level =\n", 2, "value of 'log-level' empty");
	expect_error("repeated key", "[port0]\naddress=10.0.0.1/8\nmtu = 1500\nmtu = 9000\n",
		4, "key 'mtu' repeated in [port0] (first at line 3)");
	expect_error("repeated section", "[port0]\naddress=10.0.0.1/8\n[port0]\n",
		3, "section [port0] repeated (first at line 1)");
	expect_error("unterminated section", "[tvsd\n", 1, "section header must be [name]");
	expect_error("no port", "[tvsd]\nlog-level = info\n", 0, "no [portN] section");
	expect_error("port range overflow", "[port0]\naddress=10.0.0.1/8\n[tftp]\nport-base = 65000\n"
		"max-transfers-per-core = 1000\n", 4, "port-base 65000 + max-transfers-per-core 1000");

	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	ok(cfg_load(path, &c, &err) == -1 && err.n == 1 && strstr(err.msg[0], "missing.conf: cannot open")
		!= NULL, "missing file is named");

	/* Several mistakes: all reported, each with its own line. */
	cfg_load(write_conf("[tvsd]\nlog-level = x\nmbufs = 1\n[port0]\naddress = 1.2.3.4/40\n"),
		&c, &err);
	ok(err.n == 3 && strstr(err.msg[0], ":2: ") && strstr(err.msg[1], ":3: ")
		&& strstr(err.msg[2], ":5: "), "three errors, three lines");
}

static void
test_doc(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cfg_doc_print(f);
	fclose(f);
	ok(strstr(buf, "| `max-blksize` | integer 8..65464 | `1468` |") != NULL,
		"doc lists max-blksize with its range and default");
	ok(strstr(buf, "| `address` | IPv4/prefix | (required) |") != NULL, "doc marks required keys");
	free(buf);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_good();
	test_minimal();
	test_errors();
	test_doc();
	for (unsigned i = 0; i < seq; i++) {
		char p[300];

		snprintf(p, sizeof(p), "%s/c%u.conf", dir, i);
		unlink(p);
	}
	rmdir(dir);
	return done_testing();
}
