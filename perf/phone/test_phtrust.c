/*
 * Unit tests of the simulated phone's trust rules (phtrust.c): trust on
 * first use, same signer, TVS answers (trusted, untrusted, wrong role,
 * wrong certificate, cached, expired), the empty ITL of a rollback,
 * unsigned and encrypted configs, the <TVS> list of a config and the state
 * file. Lists and configs are built here with the trust library, signed
 * by keys made for the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phtrust.h"
#include "sign.h"
#include "tap.h"

#define NOW 1700000000LL

struct unit {
	EVP_PKEY *key;
	struct trust_cert cert;
};

static struct unit cm1, cm2, tvs1, cmb, tvsb, phone;

static void
make_unit(struct unit *u, const char *cn, const char *ou)
{
	struct trust_cert_params p = { .cn = cn, .ou = ou, .o = "Test", .days = 30 };
	struct trust_err err = { 0 };

	u->key = trust_key_generate_rsa(1024, &err);
	if (u->key == NULL || trust_cert_selfsign(u->key, &p, &u->cert, &err) != 0) {
		printf("Bail out! key or certificate: %s\n", err.msg);
		exit(1);
	}
}

static struct trust_signer
signer(const struct unit *u)
{
	return (struct trust_signer){ .cert = &u->cert, .key = u->key, .hash = TRUST_HASH_SHA1 };
}

static struct trust_list_entry
entry(const struct unit *u, uint16_t role)
{
	return (struct trust_list_entry){ .cert = u ? &u->cert : NULL, .role = role,
		.dns_name = "cucm", .has_ip = true, .ip = { 10, 99, 0, 1 } };
}

/* An ITL as publish makes it: signer twice (SAST, CCM+TFTP), then a TVS. */
static void
make_itl(struct trust_buf *out, const struct unit *s, const struct unit *tvs, bool blank,
	uint32_t ts)
{
	struct trust_list_entry e[3] = {
		entry(s, TRUST_ROLE_SAST),
		entry(blank ? NULL : s, TRUST_ROLE_CCM_TFTP),
		entry(blank || tvs == NULL ? NULL : tvs, TRUST_ROLE_TVS),
	};
	struct trust_signer sg = signer(s);
	struct trust_err err = { 0 };

	if (trust_list_build(&sg, "ITLFile.tlv", ts, e, tvs || blank ? 3 : 2, out, &err) != 0) {
		printf("Bail out! ITL: %s\n", err.msg);
		exit(1);
	}
}

static void
make_sgn(struct trust_buf *out, const struct unit *s, const char *text)
{
	struct trust_signer sg = signer(s);

	if (trust_sgn_sign(&sg, "SEP001122334455.cnf.xml.sgn", 1, (const uint8_t *)text,
		strlen(text), out, NULL) != 0) {
		printf("Bail out! sgn\n");
		exit(1);
	}
}

static struct tvs_response
answer(uint8_t status, const struct unit *u, const uint8_t *roles, size_t nroles,
	uint32_t ttl)
{
	return (struct tvs_response){ .type = TVS_QUERY_CERT_RES, .status = status,
		.roles = { roles, nroles }, .has_ttl = true, .ttl = ttl,
		.cert = { u ? u->cert.der : NULL, u ? u->cert.der_len : 0 } };
}

static bool
has(const char *s, const char *sub)
{
	bool r = strstr(s, sub) != NULL;

	if (!r)
		diag("'%s' lacks '%s'", s, sub);
	return r;
}

static void
test_tofu_and_same_signer(void)
{
	struct trust_buf itl1, itl1b;
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];
	enum ph_how h;

	make_itl(&itl1, &cm1, &tvs1, false, 100);
	make_itl(&itl1b, &cm1, &tvs1, false, 200);
	ph_trust_init(&t);
	h = ph_check_list(&t, PH_ITL, itl1.data, itl1.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_TOFU, "first ITL: trust on first use (%s)", why);
	ok(has(why, "CN=cm1"), "why names the signer");
	is_int(ph_install_list(&t, PH_ITL, itl1.data, itl1.len, NULL), 0, "installed");
	is_int(t.itl_installs, 1, "one install counted");
	h = ph_check_list(&t, PH_ITL, itl1.data, itl1.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_UNCHANGED, "the same bytes again: unchanged");
	h = ph_check_list(&t, PH_ITL, itl1b.data, itl1b.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_SAME_SIGNER, "a new ITL by the same key: same signer (%s)", why);
	ok(!ph_itl_empty(&t), "an ITL with TFTP and TVS certificates is not empty");

	/* one flipped byte in the records: the signature no longer holds */
	itl1b.data[itl1b.len - 10] ^= 0x01;
	h = ph_check_list(&t, PH_ITL, itl1b.data, itl1b.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_REJECTED, "tampered ITL by the same signer: rejected");
	ok(has(why, "does not verify"), "why says the signature failed");
	ph_trust_free(&t);

	ph_trust_init(&t);
	h = ph_check_list(&t, PH_ITL, itl1b.data, itl1b.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_REJECTED, "tampered first ITL: not even trusted on first use");
	h = ph_check_list(&t, PH_ITL, itl1.data, 40, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_REJECTED, "truncated ITL: rejected");
	ok(has(why, "malformed"), "why says malformed");
	ph_trust_free(&t);
	trust_buf_free(&itl1);
	trust_buf_free(&itl1b);
}

static void
test_via_tvs(void)
{
	static const uint8_t r_sast_ccm[] = { TRUST_ROLE_SAST, TRUST_ROLE_CCM_TFTP };
	static const uint8_t r_tftp[] = { TRUST_ROLE_TFTP };
	struct trust_buf itl1, itl2;
	struct tvs_response rs;
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];
	enum ph_how h;

	make_itl(&itl1, &cm1, &tvs1, false, 100);
	make_itl(&itl2, &cm2, &tvs1, false, 300);
	ph_trust_init(&t);
	ph_install_list(&t, PH_ITL, itl1.data, itl1.len, NULL);

	memset(&q, 0, sizeof(q));
	h = ph_check_list(&t, PH_ITL, itl2.data, itl2.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_NEED_TVS, "regenerated signer: ask a TVS (%s)", why);
	ok(trust_serial_equal(q.serial.p, q.serial.len, cm2.cert.serial, cm2.cert.serial_len),
		"the query names the new signer's serial");
	ok(trust_name_equal((const char *)q.issuer.p, q.issuer.len, cm2.cert.issuer,
		strlen(cm2.cert.issuer)), "... and issuer");
	ok(q.subject.len > 0 && q.subject.p[q.subject.len - 1] != '\0',
		"the subject is given without its NUL");

	rs = answer(TVS_STATUS_UNTRUSTED, NULL, NULL, 0, 0);
	h = ph_check_list(&t, PH_ITL, itl2.data, itl2.len, &rs, NOW, &q, why, sizeof(why));
	is_int(h, PH_REJECTED, "TVS says untrusted: rejected");
	ok(has(why, "TVS said untrusted"), "why says so");

	rs = answer(TVS_STATUS_TRUSTED, &cm2, r_tftp, 1, 0);
	h = ph_check_list(&t, PH_ITL, itl2.data, itl2.len, &rs, NOW, &q, why, sizeof(why));
	is_int(h, PH_REJECTED, "TVS vouches without role SAST: rejected for an ITL");
	ok(has(why, "TFTP") && has(why, "SAST"), "why names the roles");

	rs = answer(TVS_STATUS_TRUSTED, &cmb, r_sast_ccm, 2, 0);
	h = ph_check_list(&t, PH_ITL, itl2.data, itl2.len, &rs, NOW, &q, why, sizeof(why));
	is_int(h, PH_REJECTED, "TVS answers with another certificate: rejected");
	is_int(t.nvouch, 0, "nothing cached from refused answers");

	rs = answer(TVS_STATUS_TRUSTED, &cm2, r_sast_ccm, 2, 600);
	h = ph_check_list(&t, PH_ITL, itl2.data, itl2.len, &rs, NOW, &q, why, sizeof(why));
	is_int(h, PH_VIA_TVS, "TVS vouches with SAST: accepted (%s)", why);
	is_int(t.nvouch, 1, "the answer is cached");
	h = ph_check_list(&t, PH_ITL, itl2.data, itl2.len, NULL, NOW + 599, &q, why, sizeof(why));
	is_int(h, PH_VIA_TVS_CACHE, "within the TTL: the cache decides");
	h = ph_check_list(&t, PH_ITL, itl2.data, itl2.len, NULL, NOW + 600, &q, why, sizeof(why));
	is_int(h, PH_NEED_TVS, "after the TTL: ask again");

	ph_install_list(&t, PH_ITL, itl2.data, itl2.len, NULL);
	is_int(t.itl_installs, 2, "second install counted");
	ph_trust_free(&t);
	trust_buf_free(&itl1);
	trust_buf_free(&itl2);
}

static void
test_no_tvs_in_itl(void)
{
	struct trust_buf itl, itl2;
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];
	struct trust_bytes certs[4];

	make_itl(&itl, &cm1, NULL, false, 100);
	make_itl(&itl2, &cm2, NULL, false, 100);
	ph_trust_init(&t);
	ph_install_list(&t, PH_ITL, itl.data, itl.len, NULL);
	is_int(ph_tvs_certs(&t, certs, 4), 0, "an ITL without TVS records names no TVS");
	is_int(ph_check_list(&t, PH_ITL, itl2.data, itl2.len, NULL, NOW, &q, why, sizeof(why)),
		PH_REJECTED, "unknown signer and no TVS to ask: rejected");
	ok(has(why, "names no TVS"), "why says there is no TVS");
	ph_trust_free(&t);
	trust_buf_free(&itl);
	trust_buf_free(&itl2);
}

static void
test_configs(void)
{
	static const uint8_t r_sast[] = { TRUST_ROLE_SAST };
	static const uint8_t r_ccm[] = { TRUST_ROLE_CCM_TFTP };
	const char *text = "<device><TVS><members><member priority=\"0\"><port>2445</port>"
		"<address>10.99.0.1</address></member></members></TVS></device>\n";
	struct trust_buf itl1, sgn1, sgn2, plain;
	struct tvs_response rs;
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];
	enum ph_how h;

	make_itl(&itl1, &cm1, &tvs1, false, 100);
	make_sgn(&sgn1, &cm1, text);
	make_sgn(&sgn2, &cm2, text);
	ph_trust_init(&t);

	h = ph_check_config(&t, PH_CFG_SGN, sgn1.data, sgn1.len, NULL, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_NO_ITL, "no trust list: a signed config is taken unchecked");
	trust_buf_wipe(&plain);
	h = ph_check_config(&t, PH_CFG_UNSIGNED, (const uint8_t *)text, strlen(text), NULL,
		NULL, NOW, &q, &plain, why, sizeof(why));
	is_int(h, PH_NO_ITL, "no trust list: an unsigned config is taken");
	trust_buf_wipe(&plain);

	ph_install_list(&t, PH_ITL, itl1.data, itl1.len, NULL);
	h = ph_check_config(&t, PH_CFG_SGN, sgn1.data, sgn1.len, NULL, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_ITL_SIGNER, "config signed by the ITL's TFTP certificate (%s)", why);
	ok(plain.len == strlen(text) && memcmp(plain.data, text, plain.len) == 0,
		"the payload is the config text");
	trust_buf_wipe(&plain);

	h = ph_check_config(&t, PH_CFG_UNSIGNED, (const uint8_t *)text, strlen(text), NULL,
		NULL, NOW, &q, &plain, why, sizeof(why));
	is_int(h, PH_REJECTED, "with an ITL, an unsigned config is refused");
	ok(has(why, "unsigned"), "why says unsigned");

	sgn1.data[sgn1.len - 3] ^= 0x20;
	h = ph_check_config(&t, PH_CFG_SGN, sgn1.data, sgn1.len, NULL, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_REJECTED, "a changed payload: refused");
	ok(plain.len == 0, "nothing handed out of a refused config");

	h = ph_check_config(&t, PH_CFG_SGN, sgn2.data, sgn2.len, NULL, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_NEED_TVS, "config by an unknown signer: ask a TVS");
	rs = answer(TVS_STATUS_TRUSTED, &cm2, r_sast, 1, 0);
	h = ph_check_config(&t, PH_CFG_SGN, sgn2.data, sgn2.len, NULL, &rs, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_REJECTED, "vouched as SAST only: not a config signer");
	rs = answer(TVS_STATUS_TRUSTED, &cm2, r_ccm, 1, 0);
	h = ph_check_config(&t, PH_CFG_SGN, sgn2.data, sgn2.len, NULL, &rs, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_VIA_TVS, "vouched as CCM+TFTP: taken (%s)", why);
	ok(plain.len == strlen(text), "payload handed out");
	trust_buf_wipe(&plain);
	ph_trust_free(&t);
	trust_buf_free(&itl1);
	trust_buf_free(&sgn1);
	trust_buf_free(&sgn2);
}

static void
test_encrypted(void)
{
	const char *text = "<device><fullConfig>true</fullConfig></device>\n";
	struct trust_buf itl1, enc, plain;
	struct trust_signer sg = signer(&cm1);
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];
	enum ph_how h;

	make_itl(&itl1, &cm1, &tvs1, false, 100);
	if (trust_enc_encrypt(&sg, "SEP001122334455.cnf.xml.enc.sgn", 1, &phone.cert,
		(const uint8_t *)text, strlen(text), &enc, NULL) != 0) {
		printf("Bail out! enc\n");
		exit(1);
	}
	ph_trust_init(&t);
	ph_install_list(&t, PH_ITL, itl1.data, itl1.len, NULL);
	h = ph_check_config(&t, PH_CFG_ENC, enc.data, enc.len, phone.key, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_ITL_SIGNER, "encrypted config: signer checked, decrypted (%s)", why);
	ok(plain.len == strlen(text) && memcmp(plain.data, text, plain.len) == 0,
		"the plaintext is the config");
	trust_buf_wipe(&plain);
	h = ph_check_config(&t, PH_CFG_ENC, enc.data, enc.len, cm2.key, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_REJECTED, "another phone's key: refused");
	h = ph_check_config(&t, PH_CFG_ENC, enc.data, enc.len, NULL, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_REJECTED, "no key: refused");
	ok(has(why, "no key"), "why says the phone has no key");
	ph_trust_free(&t);
	trust_buf_free(&itl1);
	trust_buf_free(&enc);
}

static void
test_empty_itl(void)
{
	const char *text = "<device/>\n";
	struct trust_buf itl1, empty, itlb, plain, sgnb;
	struct trust_bytes certs[4];
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];
	enum ph_how h;

	make_itl(&itl1, &cm1, &tvs1, false, 100);
	make_itl(&empty, &cm1, &tvs1, true, 400);
	make_itl(&itlb, &cmb, &tvsb, false, 500);
	make_sgn(&sgnb, &cmb, text);
	ph_trust_init(&t);
	ph_install_list(&t, PH_ITL, itl1.data, itl1.len, NULL);
	h = ph_check_list(&t, PH_ITL, empty.data, empty.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_SAME_SIGNER, "the rollback ITL is signed by the usual signer");
	ph_install_list(&t, PH_ITL, empty.data, empty.len, NULL);
	ok(ph_itl_empty(&t), "its TFTP and TVS records are empty");
	is_int(ph_tvs_certs(&t, certs, 4), 0, "it names no TVS certificate");
	h = ph_check_config(&t, PH_CFG_UNSIGNED, (const uint8_t *)text, strlen(text), NULL,
		NULL, NOW, &q, &plain, why, sizeof(why));
	is_int(h, PH_EMPTY_ITL, "empty ITL: an unsigned config is taken");
	trust_buf_wipe(&plain);
	h = ph_check_config(&t, PH_CFG_SGN, sgnb.data, sgnb.len, NULL, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_EMPTY_ITL, "empty ITL: a config by a foreign signer is taken");
	trust_buf_wipe(&plain);
	h = ph_check_list(&t, PH_ITL, itlb.data, itlb.len, NULL, NOW, &q, why, sizeof(why));
	is_int(h, PH_EMPTY_ITL, "empty ITL: a foreign ITL is taken (%s)", why);
	ph_install_list(&t, PH_ITL, itlb.data, itlb.len, NULL);
	ok(!ph_itl_empty(&t), "the foreign ITL is a normal one");
	h = ph_check_config(&t, PH_CFG_SGN, sgnb.data, sgnb.len, NULL, NULL, NOW, &q, &plain,
		why, sizeof(why));
	is_int(h, PH_ITL_SIGNER, "then its configs verify by the new ITL");
	trust_buf_wipe(&plain);
	ph_trust_free(&t);
	trust_buf_free(&itl1);
	trust_buf_free(&empty);
	trust_buf_free(&itlb);
	trust_buf_free(&sgnb);
}

static void
test_ctl(void)
{
	struct trust_buf ctl1, ctl2, ctlb;
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];

	make_itl(&ctl1, &cm1, NULL, false, 1);
	make_itl(&ctl2, &cm1, NULL, false, 2);
	make_itl(&ctlb, &cmb, NULL, false, 3);
	ph_trust_init(&t);
	is_int(ph_check_list(&t, PH_CTL, ctl1.data, ctl1.len, NULL, NOW, &q, why, sizeof(why)),
		PH_TOFU, "first CTL: trust on first use");
	ph_install_list(&t, PH_CTL, ctl1.data, ctl1.len, NULL);
	is_int(ph_check_list(&t, PH_CTL, ctl2.data, ctl2.len, NULL, NOW, &q, why, sizeof(why)),
		PH_SAME_SIGNER, "new CTL by the same SAST");
	is_int(ph_check_list(&t, PH_CTL, ctlb.data, ctlb.len, NULL, NOW, &q, why, sizeof(why)),
		PH_REJECTED, "foreign CTL, no ITL to name a TVS: rejected");
	is_int(ph_check_list(&t, PH_ITL, ctl2.data, ctl2.len, NULL, NOW, &q, why, sizeof(why)),
		PH_CTL_SIGNER, "first ITL signed by a SAST of the CTL: authenticated by the CTL");
	ph_trust_free(&t);
	trust_buf_free(&ctl1);
	trust_buf_free(&ctl2);
	trust_buf_free(&ctlb);
}

static void
test_sample(void)
{
	char path[4096], why[PH_WHY_MAX];
	struct trust_buf b;
	struct ph_trust t;
	struct ph_query q;

	snprintf(path, sizeof(path), "%s/ITLFile.csptechnologies-ciscoprovsionerweb.tlv",
		tap_samples_dir());
	if (trust_file_read(path, 1 << 20, &b, NULL) != 0) {
		ok(0, "sample ITL %s readable", path);
		return;
	}
	ph_trust_init(&t);
	is_int(ph_check_list(&t, PH_ITL, b.data, b.len, NULL, NOW, &q, why, sizeof(why)),
		PH_TOFU, "the public sample ITL is trusted on first use (%s)", why);
	ph_install_list(&t, PH_ITL, b.data, b.len, NULL);
	ok(!ph_itl_empty(&t), "it has no blank TFTP/TVS records: not empty");
	ph_trust_free(&t);
	trust_buf_free(&b);
}

static void
test_config_tvs(void)
{
	const char *cfg = "<Default><TVS>\n<members>\n"
		"<member priority=\"0\">\n<port>2445</port>\n<address> 10.99.0.1 </address>\n</member>\n"
		"<member priority=\"1\"><address>tvs2.example</address></member>"
		"<member priority=\"2\"><port>99999</port><address>bad</address></member>"
		"<member priority=\"3\"><port>3000</port><address>10.0.0.3</address></member>"
		"</members>\n</TVS></Default>";
	struct ph_tvs_addr a[PH_TVS_MAX], one;
	size_t n = ph_config_tvs((const uint8_t *)cfg, strlen(cfg), a, PH_TVS_MAX);

	is_int(n, 3, "three usable TVS members");
	is_str(a[0].host, "10.99.0.1", "first address, trimmed");
	is_int(a[0].port, 2445, "first port");
	is_str(a[1].host, "tvs2.example", "host name kept");
	is_int(a[1].port, TVS_PORT, "no port: 2445");
	is_int(a[2].port, 3000, "member with a bad port skipped");
	is_int(ph_config_tvs((const uint8_t *)"<device/>", 9, a, PH_TVS_MAX), 0,
		"no TVS block: none");
	is_int(ph_config_tvs((const uint8_t *)cfg, strlen(cfg), a, 1), 1, "bounded by max");
	is_int(ph_tvs_addr_parse("127.0.0.1:2446", &one), 0, "host:port");
	is_int(one.port, 2446, "port parsed");
	is_int(ph_tvs_addr_parse("tvs", &one), 0, "host alone");
	is_int(one.port, TVS_PORT, "default port");
	is_int(ph_tvs_addr_parse("tvs:0", &one), -1, "port 0 refused");
	is_int(ph_tvs_addr_parse(":1", &one), -1, "empty host refused");
}

static void
test_state(void)
{
	static const uint8_t r[] = { TRUST_ROLE_SAST, TRUST_ROLE_CCM_TFTP };
	char dir[] = "/tmp/test_phtrust.XXXXXX", path[4096], why[PH_WHY_MAX];
	struct trust_buf itl1, itl2;
	struct tvs_response rs;
	struct trust_err err = { 0 };
	struct ph_trust t, u;
	struct ph_query q;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/SEP001122334455.state", dir);
	make_itl(&itl1, &cm1, &tvs1, false, 100);
	make_itl(&itl2, &cm2, &tvs1, false, 300);
	ph_trust_init(&u);
	is_int(ph_state_load(path, &u, &err), 0, "no state file: a new phone");
	ok(!ph_has(&u.itl) && u.boots == 0, "... with nothing installed");

	ph_trust_init(&t);
	t.boots = 3;
	ph_install_list(&t, PH_ITL, itl1.data, itl1.len, NULL);
	rs = answer(TVS_STATUS_TRUSTED, &cm2, r, 2, 3600);
	ph_check_list(&t, PH_ITL, itl2.data, itl2.len, &rs, NOW, &q, why, sizeof(why));
	ph_tvs_addr_parse("10.99.0.1:2445", &t.tvs[t.ntvs++]);
	is_int(ph_state_save(path, &t, &err), 0, "state saved (%s)", err.msg);
	is_int(ph_state_load(path, &u, &err), 0, "state loaded (%s)", err.msg);
	ok(u.itl.bytes.len == itl1.len && memcmp(u.itl.bytes.data, itl1.data, itl1.len) == 0,
		"the installed ITL comes back byte for byte");
	is_int(u.boots, 3, "boots kept");
	is_int(u.itl_installs, 1, "installs kept");
	is_int(u.ntvs, 1, "TVS address kept");
	is_int(u.nvouch, 1, "cached TVS answer kept");
	is_int(ph_check_list(&u, PH_ITL, itl2.data, itl2.len, NULL, NOW + 10, &q, why,
		sizeof(why)), PH_VIA_TVS_CACHE, "the reloaded cache still decides");
	ph_trust_free(&u);

	f = fopen(path, "w");
	fputs("phonesim-state 1\nboots 1\nitl zz\nend\n", f);
	fclose(f);
	ph_trust_init(&u);
	is_int(ph_state_load(path, &u, &err), TRUST_ESTORE, "bad hex refused");
	ok(has(err.msg, "line 3"), "the error names the line");
	f = fopen(path, "w");
	fputs("phonesim-state 1\nboots 1\n", f);
	fclose(f);
	is_int(ph_state_load(path, &u, &err), TRUST_ESTORE, "missing end refused");
	f = fopen(path, "w");
	fputs("something else\n", f);
	fclose(f);
	is_int(ph_state_load(path, &u, &err), TRUST_ESTORE, "not a state file refused");
	ok(!ph_has(&u.itl), "a refused state leaves nothing installed");
	ph_trust_free(&u);
	ph_trust_free(&t);
	unlink(path);
	rmdir(dir);
	trust_buf_free(&itl1);
	trust_buf_free(&itl2);
}

/* No prefix and no single flipped byte of a signed ITL or config may be
 * accepted (the signature covers all of it): refused, or, when the flip
 * hits the signer's name or serial, a question for a TVS. No crash. */
static bool
refused(enum ph_how h)
{
	return h == PH_REJECTED || h == PH_NEED_TVS;
}

static void
test_damage(void)
{
	const char *text = "<device><TVS><members><member><address>a</address></member>"
		"</members></TVS></device>";
	struct trust_buf itl1, itl2, sgn, plain;
	size_t bad_itl = 0, bad_cfg = 0, n_itl = 0, n_cfg = 0;
	struct ph_tvs_addr a[PH_TVS_MAX];
	struct ph_trust t;
	struct ph_query q;
	char why[PH_WHY_MAX];

	make_itl(&itl1, &cm1, &tvs1, false, 100);
	make_itl(&itl2, &cm1, &tvs1, false, 101);
	make_sgn(&sgn, &cm1, text);
	ph_trust_init(&t);
	ph_install_list(&t, PH_ITL, itl1.data, itl1.len, NULL);
	for (size_t len = 0; len < itl2.len; len += 3, n_itl++)
		bad_itl += refused(ph_check_list(&t, PH_ITL, itl2.data, len, NULL, NOW, &q, why,
			sizeof(why)));
	for (size_t i = 0; i < itl2.len; i += 5, n_itl++) {
		itl2.data[i] ^= 0x41;
		bad_itl += refused(ph_check_list(&t, PH_ITL, itl2.data, itl2.len, NULL, NOW, &q,
			why, sizeof(why)));
		itl2.data[i] ^= 0x41;
	}
	is_int(bad_itl, n_itl, "every damaged ITL refused (%zu tried)", n_itl);
	for (size_t len = 0; len < sgn.len; len += 2, n_cfg++) {
		bad_cfg += refused(ph_check_config(&t, PH_CFG_SGN, sgn.data, len, NULL, NULL, NOW,
			&q, &plain, why, sizeof(why)));
		trust_buf_wipe(&plain);
	}
	for (size_t i = 0; i < sgn.len; i++, n_cfg++) {
		sgn.data[i] ^= 0x10;
		bad_cfg += refused(ph_check_config(&t, PH_CFG_SGN, sgn.data, sgn.len, NULL, NULL,
			NOW, &q, &plain, why, sizeof(why)));
		trust_buf_wipe(&plain);
		sgn.data[i] ^= 0x10;
	}
	is_int(bad_cfg, n_cfg, "every damaged config refused (%zu tried)", n_cfg);
	for (size_t len = 0; len <= strlen(text); len++)
		ph_config_tvs((const uint8_t *)text, len, a, PH_TVS_MAX);
	ok(ph_config_tvs((const uint8_t *)text, strlen(text), a, PH_TVS_MAX) == 1,
		"every prefix of a config scanned for TVS members, the whole one has one");
	ph_trust_free(&t);
	trust_buf_free(&itl1);
	trust_buf_free(&itl2);
	trust_buf_free(&sgn);
}

int
main(void)
{
	make_unit(&cm1, "cm1", "CallManager");
	make_unit(&cm2, "cm1", "CallManager");	/* regenerated: same name, new key */
	make_unit(&tvs1, "tvs1", "TVS");
	make_unit(&cmb, "cmb", "CallManager");
	make_unit(&tvsb, "tvsb", "TVS");
	make_unit(&phone, "CP-8861-SEP001122334455", "phone");
	test_tofu_and_same_signer();
	test_via_tvs();
	test_no_tvs_in_itl();
	test_configs();
	test_encrypted();
	test_empty_itl();
	test_ctl();
	test_sample();
	test_config_tvs();
	test_state();
	test_damage();
	{
		struct unit *all[] = { &cm1, &cm2, &tvs1, &cmb, &tvsb, &phone };

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			EVP_PKEY_free(all[i]->key);
			trust_cert_free(&all[i]->cert);
		}
	}
	return done_testing();
}
