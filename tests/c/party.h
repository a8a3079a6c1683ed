/*
 * A key and its certificate, made at run time for the trust tests (RSA
 * 1024/2048 keeps them fast). Self-signed CA when issuer is NULL.
 */
#ifndef TESTS_PARTY_H
#define TESTS_PARTY_H

#include <stdio.h>
#include <stdlib.h>

#include "cert.h"
#include "sign.h"

struct party {
	EVP_PKEY *key;
	struct trust_cert cert;
};

static inline void
party_make(struct party *p, unsigned bits, const char *cn, const struct party *issuer)
{
	struct trust_err err = { 0 };
	struct trust_cert_params cp = { .cn = cn, .ou = "TAC", .o = "Cisco", .l = "Krakow",
		.st = "Malopolska", .c = "PL", .days = 365, .ca = issuer == NULL };
	int rc = -1;

	p->key = trust_key_generate_rsa(bits, &err);
	if (p->key != NULL)
		rc = issuer != NULL
			? trust_cert_issue(p->key, &cp, &issuer->cert, issuer->key, &p->cert, &err)
			: trust_cert_selfsign(p->key, &cp, &p->cert, &err);
	if (rc != 0) {
		printf("Bail out! cannot make %s: %s\n", cn, err.msg);
		exit(1);
	}
}

static inline void
party_free(struct party *p)
{
	trust_cert_free(&p->cert);
	EVP_PKEY_free(p->key);
}

/* A self-signed certificate for an existing key (many certs, one key). */
static inline struct trust_cert
party_cert_for_key(const char *cn, EVP_PKEY *key)
{
	struct trust_cert_params p = { .cn = cn, .o = "Test", .days = 30 };
	struct trust_cert c = { 0 };
	struct trust_err err;

	if (trust_cert_selfsign(key, &p, &c, &err) != 0)
		printf("# selfsign %s: %s\n", cn, err.msg);
	return c;
}

/* Removes a test's temporary tree. */
static inline void
party_rm_rf(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", path);
}

#endif
