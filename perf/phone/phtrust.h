/*
 * The trust decisions of one simulated phone (FORMATS §1.9, §4), with no
 * I/O and no clock of its own, so that the rules can be unit-tested and
 * the fleet's event loop only moves bytes.
 *
 * A phone's trust is what it has installed: the CTL and ITL (bytes and
 * parsed records), the certificates a TVS vouched for (with roles and an
 * expiry), and the TVS addresses it learnt from its last config. Every
 * downloaded CTL, ITL or config goes through a check that either decides
 * at once (trust on first use, same signer, empty ITL, cached TVS answer,
 * reject) or asks for a TVS QUERY_CERT about the file's signer; the same
 * check is then called again with the TVS answer.
 */
#ifndef PERF_PHONE_PHTRUST_H
#define PERF_PHONE_PHTRUST_H

#include <stdint.h>
#include <time.h>

#include "cert.h"
#include "file.h"
#include "trust.h"
#include "tvs.h"

#define PH_TVS_MAX 8		/* TVS addresses kept (a config lists up to 5) */
#define PH_HOST_MAX 64
#define PH_VOUCH_MAX 16		/* cached TVS answers per phone */
#define PH_WHY_MAX 256
#define PH_CONFIG_MAX (4u << 20)

enum ph_list { PH_CTL, PH_ITL };

/* How a file was decided. The names (ph_how_name) are the report's words. */
enum ph_how {
	PH_NONE = 0,		/* no decision yet / file absent */
	PH_UNCHANGED,		/* byte-identical to the installed list */
	PH_TOFU,		/* first list: trust on first use */
	PH_SAME_SIGNER,		/* signer is a SAST record of the installed ITL */
	PH_CTL_SIGNER,		/* signer is in the installed CTL */
	PH_ITL_SIGNER,		/* config signer is the ITL's TFTP record */
	PH_VIA_TVS,		/* a TVS vouched for the signer just now */
	PH_VIA_TVS_CACHE,	/* ... earlier, within its TTL */
	PH_EMPTY_ITL,		/* installed ITL is empty (rollback): anything goes */
	PH_NO_ITL,		/* no trust list at all: configs are not checked */
	PH_REJECTED,
	PH_NEED_TVS,		/* ask a TVS (ph_query), then call again */
};

struct ph_tvs_addr {
	char host[PH_HOST_MAX];
	uint16_t port;
};

struct ph_vouch {
	struct trust_cert cert;
	uint8_t roles[TVS_ROLES_MAX];
	size_t nroles;
	int64_t expires;	/* Unix time */
};

struct ph_installed {
	struct trust_buf bytes;	/* len 0: none installed */
	struct trust_file f;	/* parsed, views into bytes */
};

struct ph_trust {
	struct ph_installed ctl, itl;
	struct ph_vouch vouch[PH_VOUCH_MAX];
	size_t nvouch;
	struct ph_tvs_addr tvs[PH_TVS_MAX];
	size_t ntvs;
	uint32_t boots;
	uint32_t itl_installs;
	uint32_t ctl_installs;
};

/* What to ask a TVS: the signer named in the file's header (views into
 * the file, without the NULs). */
struct ph_query {
	struct trust_bytes subject, issuer, serial;
};

void ph_trust_init(struct ph_trust *t);
void ph_trust_free(struct ph_trust *t);

static inline bool
ph_has(const struct ph_installed *i)
{
	return i->bytes.len > 0;
}

/* An installed ITL whose TFTP/CCM+TFTP and TVS records are all empty
 * (FORMATS §4.5, §8.8): the phone then takes any ITL and unsigned configs. */
bool ph_itl_empty(const struct ph_trust *t);

/* The certificates (DER) of the installed ITL's TVS records: a TVS is
 * trusted only if it presents one of them. */
size_t ph_tvs_certs(const struct ph_trust *t, struct trust_bytes *out, size_t max);

/*
 * Decide about a downloaded CTL or ITL. rs is NULL the first time; when
 * the result is PH_NEED_TVS, *q says what to ask and the caller calls
 * again with the TVS answer (rs). why receives one line for the report.
 * now is Unix time (TVS cache expiry). Accepting does not install.
 */
enum ph_how ph_check_list(struct ph_trust *t, enum ph_list k, const uint8_t *buf,
	size_t len, const struct tvs_response *rs, int64_t now, struct ph_query *q,
	char *why, size_t whysz);

/* Make a checked list the installed one (copies buf). */
int ph_install_list(struct ph_trust *t, enum ph_list k, const uint8_t *buf, size_t len,
	struct trust_err *err);

enum ph_config_kind { PH_CFG_UNSIGNED, PH_CFG_SGN, PH_CFG_ENC };

/*
 * Decide about a downloaded config. For .enc.sgn the phone's key decrypts
 * it (key NULL: rejected). On acceptance *plain receives the config text
 * (initialised here, wipe it after). Same TVS protocol as ph_check_list;
 * a TVS must vouch with the TFTP or CCM+TFTP role.
 */
enum ph_how ph_check_config(struct ph_trust *t, enum ph_config_kind kind,
	const uint8_t *buf, size_t len, EVP_PKEY *key, const struct tvs_response *rs,
	int64_t now, struct ph_query *q, struct trust_buf *plain, char *why, size_t whysz);

/* The <TVS><members><member> addresses of a config (port 2445 when not
 * given); returns how many were stored into out (at most max). */
size_t ph_config_tvs(const uint8_t *p, size_t n, struct ph_tvs_addr *out, size_t max);

/* Parse "host:port" or "host" (port 2445); 0 or -1. */
int ph_tvs_addr_parse(const char *s, struct ph_tvs_addr *a);

/* Per-phone state file: text, the lists and vouched certificates in hex.
 * load: a missing file is a factory-new phone (0); a malformed one is
 * TRUST_ESTORE with the line named. save: temp file + rename. */
int ph_state_load(const char *path, struct ph_trust *t, struct trust_err *err);
int ph_state_save(const char *path, const struct ph_trust *t, struct trust_err *err);

const char *ph_how_name(enum ph_how h);

#endif
