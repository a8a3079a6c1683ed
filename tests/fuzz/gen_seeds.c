/*
 * Seed corpus for fuzz_trust: small trust lists, .sgn and .enc.sgn built
 * with throw-away 1024-bit keys, in the shapes the parsers must handle
 * (both hashes, SIGNER_VERSION, empty records, IP addresses, EC record).
 * Usage: fuzz_trust_seeds <dir>
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "file.h"
#include "sign.h"

static const char *dir;

static void
die(const char *what, const struct trust_err *err)
{
	fprintf(stderr, "fuzz_trust_seeds: %s: %s\n", what, err->msg);
	exit(1);
}

static void
save(const char *name, struct trust_buf *b)
{
	struct trust_err err = { 0 };
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (trust_file_write_atomic(path, b->data, b->len, 0644, &err) != 0)
		die(path, &err);
	trust_buf_free(b);
}

static void
make(EVP_PKEY **k, struct trust_cert *c, const char *cn, bool ec)
{
	struct trust_err err = { 0 };
	struct trust_cert_params p = { .cn = cn, .ou = "TAC", .o = "Cisco", .c = "PL",
		.days = 30 };

	*k = ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
		: trust_key_generate_rsa(1024, &err);
	if (*k == NULL || trust_cert_selfsign(*k, &p, c, &err) != 0)
		die(cn, &err);
}

int
main(int argc, char **argv)
{
	struct trust_err err = { 0 };
	struct trust_cert cm, rec, ecc, phone;
	EVP_PKEY *kcm, *krec, *kec, *kphone;
	struct trust_buf b;
	static const char xml[] = "<device><fullConfig>true</fullConfig></device>\n";

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_trust_seeds <dir>\n");
		return 2;
	}
	dir = argv[1];
	mkdir(dir, 0755);
	make(&kcm, &cm, "cucm", false);
	make(&krec, &rec, "ITLRECOVERY_cucm", false);
	make(&kec, &ecc, "cucm-EC", true);
	make(&kphone, &phone, "SEP001122334455", false);
	{
		struct trust_list_entry e[] = {
			{ .cert = &cm, .role = TRUST_ROLE_SAST, .dns_name = "cucm" },
			{ .cert = &cm, .role = TRUST_ROLE_CCM_TFTP, .dns_name = "cucm",
			  .has_ip = true, .ip = { 192, 0, 2, 1 } },
			{ .cert = NULL, .role = TRUST_ROLE_TVS, .dns_name = "192.0.2.2",
			  .has_ip = true, .ip = { 192, 0, 2, 2 } },
		};
		struct trust_signer s = { .cert = &cm, .key = kcm, .hash = TRUST_HASH_SHA1 };

		if (trust_list_build(&s, "ITLFile.tlv", 1, e, 3, &b, &err) != 0)
			die("itl", &err);
		save("itl-sha1.tlv", &b);
	}
	{
		struct trust_list_entry e[] = {
			{ .cert = &rec, .role = TRUST_ROLE_SAST },
			{ .cert = &ecc, .role = TRUST_ROLE_TFTP, .dns_name = "cucm" },
		};
		struct trust_signer s = { .cert = &rec, .key = krec, .hash = TRUST_HASH_SHA512,
			.signer_version = true };

		if (trust_list_build(&s, "CTLFile.tlv", 2, e, 2, &b, &err) != 0)
			die("ctl", &err);
		save("ctl-sha512-ec.tlv", &b);
	}
	{
		struct trust_signer s = { .cert = &cm, .key = kcm, .hash = TRUST_HASH_SHA1 };

		if (trust_sgn_sign(&s, "SEP001122334455.cnf.xml.sgn", 3, (const uint8_t *)xml,
			sizeof(xml) - 1, &b, &err) != 0)
			die("sgn", &err);
		save("config.sgn", &b);
		if (trust_enc_encrypt(&s, "SEP001122334455.cnf.xml.enc.sgn", 4, &phone,
			(const uint8_t *)xml, sizeof(xml) - 1, &b, &err) != 0)
			die("enc", &err);
		save("config.enc.sgn", &b);
	}
	trust_cert_free(&cm);
	trust_cert_free(&rec);
	trust_cert_free(&ecc);
	trust_cert_free(&phone);
	EVP_PKEY_free(kcm);
	EVP_PKEY_free(krec);
	EVP_PKEY_free(kec);
	EVP_PKEY_free(kphone);
	return 0;
}
