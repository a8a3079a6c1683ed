/*
 * The read-only commands: show itl / show ctl (a dump in the shape of
 * CUCM's `show ctl`, then the verdict), show cert ..., show store.
 * Every one of them also speaks --json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <openssl/evp.h>

#include "ctl.h"
#include "file.h"

#define LIST_READ_MAX (1u << 20)

/* ---- show itl / show ctl ------------------------------------------------ */

struct list_view {
	const char *kind;		/* "ITL" or "CTL" */
	const char *path;
	struct trust_buf buf;
	struct trust_file f;
	bool parsed;
	bool verified;
	char why[512];			/* the reason it is invalid */
	long mtime;
	unsigned char md5[16], sha1[20];
};

static void
str_of(const struct trust_bytes *b, char *out, size_t n)
{
	size_t len = b->len;

	/* strings carry their NUL; show what is before it */
	if (len > 0 && b->p[len - 1] == '\0')
		len--;
	if (len >= n)
		len = n - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = b->p[i] >= 0x20 && b->p[i] < 0x7f ? (char)b->p[i] : '?';
	out[len] = '\0';
}

static const char *
role_label(unsigned role, char *buf, size_t n)
{
	const char *name = trust_role_name(role);

	if (name != NULL)
		return name;
	snprintf(buf, n, "unknown role %u", role);
	return buf;
}

static unsigned
modulus_bits(unsigned code)
{
	return code <= 3 ? 512u << code : 0;
}

static void
row(const char *tag, unsigned num, size_t len, const char *val)
{
	printf("%-7u  %-20s %-7zu %s\n", num, tag, len, val ? val : "");
}

static void
row_str(const char *tag, unsigned num, const struct trust_bytes *b)
{
	char s[512];

	if (b->p == NULL)
		return;
	str_of(b, s, sizeof(s));
	row(tag, num, b->len, s);
}

static void
row_hex(const char *tag, unsigned num, const struct trust_bytes *b)
{
	char s[512];

	if (b->p == NULL)
		return;
	ctl_hex_colon(b->p, b->len, s, sizeof(s));
	row(tag, num, b->len, s);
}

static void
print_header(const struct list_view *v)
{
	const struct trust_header *h = &v->f.hdr;
	char s[128];

	printf("Parse %s File\n----------------\n\n", v->kind);
	printf("Version:        %u.%u\n", h->version[0], h->version[1]);
	printf("HeaderLength:   %u (BYTES)\n\n", h->header_len);
	printf("BYTEPOS  TAG                  LENGTH  VALUE\n");
	printf("-------  ---                  ------  -----\n");
	if (h->has_signer_version) {
		snprintf(s, sizeof(s), "%u.%u", h->signer_version[0], h->signer_version[1]);
		row("SIGNERVERSION", HTAG_SIGNER_VERSION, 2, s);
	}
	row("SIGNERID", HTAG_SIGNER_INFO, h->signer_name.len + h->signer_serial.len +
		h->signer_issuer.len + 9, NULL);
	row_str("SIGNERNAME", HTAG_SIGNER_NAME, &h->signer_name);
	row_hex("SERIALNUMBER", HTAG_SERIAL_NUMBER, &h->signer_serial);
	row_str("CANAME", HTAG_ISSUER_NAME, &h->signer_issuer);
	printf("*Signature Info*\n");
	row("SIGNATUREINFO", HTAG_SIGNATURE_INFO, 15, NULL);
	row("DIGESTALGORTITHM", HTAG_HASH_ALGORITHM, 1,
		trust_hash_name(h->hash_alg) ? trust_hash_name(h->hash_alg) : "unknown");
	row("SIGNATUREALGOINFO", HTAG_SIGNATURE_ALGORITHM_INFO, 8, NULL);
	row("SIGNATUREALGORTITHM", HTAG_SIGNATURE_ALGORITHM, 1, h->sig_alg == 0 ? "RSA" : "unknown");
	snprintf(s, sizeof(s), "%u-bit", modulus_bits(h->modulus));
	row("SIGNATUREMODULUS", HTAG_SIGNATURE_MODULUS, 1, s);
	row("SIGNATURE", HTAG_SIGNATURE, h->signature.len, NULL);
	row_str("FILENAME", HTAG_FILENAME, &h->filename);
	if (h->has_timestamp) {
		ctl_time((long)h->timestamp, s, sizeof(s));
		row("TIMESTAMP", HTAG_TIMESTAMP, 4, s);
	}
}

static void
print_record(const struct list_view *v, size_t i, bool signer)
{
	const struct trust_record *r = &v->f.recs[i];
	char s[128], ip[INET_ADDRSTRLEN];
	unsigned char sha1[20];

	printf("\n %s Record #:%zu\n----\n", v->kind, i + 1);
	printf("BYTEPOS  TAG                  LENGTH  VALUE\n");
	printf("-------  ---                  ------  -----\n");
	snprintf(s, sizeof(s), "%u", r->len);
	row("RECORDLENGTH", RTAG_RECORD_LENGTH, 2, s);
	row_str("DNSNAME", RTAG_DNS_NAME, &r->dns_name);
	row_str("SUBJECTNAME", RTAG_SUBJECT_NAME, &r->subject);
	if (r->has_role)
		row("FUNCTION", RTAG_ROLE, 2, role_label(r->role, s, sizeof(s)));
	row_str("ISSUERNAME", RTAG_ISSUER_NAME, &r->issuer);
	row_hex("SERIALNUMBER", RTAG_SERIAL_NUMBER, &r->serial);
	if (r->pubkey.p != NULL)
		row("PUBLICKEY", RTAG_PUBLIC_KEY, r->pubkey.len, NULL);
	if (r->signature.p != NULL)
		row("SIGNATURE", RTAG_SIGNATURE, r->signature.len, NULL);
	if (r->cert.len > 0) {
		char hex[64];

		EVP_Digest(r->cert.p, r->cert.len, sha1, NULL, EVP_sha1(), NULL);
		trust_hex(sha1, sizeof(sha1), hex);
		snprintf(s, sizeof(s), "%s (SHA1 Hash HEX)", hex);
		row("CERTIFICATE", RTAG_CERTIFICATE, r->cert.len, s);
	}
	if (r->cert_hash.p != NULL)
		row_hex("CERTHASH", RTAG_CERTIFICATE_HASH, &r->cert_hash);
	if (r->has_ip) {
		inet_ntop(AF_INET, r->ip, ip, sizeof(ip));
		row("IPADDRESS", RTAG_IP_ADDRESS, 4, ip);
	}
	if (r->cert.len == 0)
		printf("(empty record: no certificate)\n");
	if (signer)
		printf("This etoken was used to sign the %s file.\n", v->kind);
}

static void
json_bytes_str(struct json *j, const char *key, const struct trust_bytes *b)
{
	char s[1024];

	if (b->p == NULL)
		return;
	str_of(b, s, sizeof(s));
	json_str(j, key, s);
}

static void
json_record(struct json *j, const struct list_view *v, size_t i, bool signer)
{
	const struct trust_record *r = &v->f.recs[i];
	char ip[INET_ADDRSTRLEN], buf[32];
	unsigned char sha1[20];

	json_obj_begin(j, NULL);
	json_int(j, "index", (long long)i + 1);
	json_int(j, "offset", (long long)r->off);
	json_int(j, "length", r->len);
	json_bytes_str(j, "dns_name", &r->dns_name);
	json_bytes_str(j, "subject", &r->subject);
	if (r->has_role) {
		json_int(j, "role", r->role);
		json_str(j, "function", role_label(r->role, buf, sizeof(buf)));
	}
	json_bytes_str(j, "issuer", &r->issuer);
	if (r->serial.p != NULL)
		json_hex(j, "serial", r->serial.p, r->serial.len);
	json_int(j, "public_key_length", (long long)r->pubkey.len);
	json_int(j, "signature_length", (long long)r->signature.len);
	json_int(j, "certificate_length", (long long)r->cert.len);
	if (r->cert.len > 0) {
		EVP_Digest(r->cert.p, r->cert.len, sha1, NULL, EVP_sha1(), NULL);
		json_hex(j, "certificate_sha1", sha1, sizeof(sha1));
	}
	if (r->has_ip) {
		inet_ntop(AF_INET, r->ip, ip, sizeof(ip));
		json_str(j, "ip_address", ip);
	}
	json_bool(j, "empty", r->cert.len == 0);
	json_bool(j, "signer", signer);
	json_obj_end(j);
}

static void
json_list(const struct list_view *v)
{
	const struct trust_header *h = &v->f.hdr;
	const struct trust_record *sg = v->parsed ? trust_list_signer(&v->f) : NULL;
	struct json j;
	char s[16];

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "file", v->path);
	json_str(&j, "kind", v->kind);
	json_int(&j, "length", (long long)v->buf.len);
	json_hex(&j, "md5", v->md5, sizeof(v->md5));
	json_hex(&j, "sha1", v->sha1, sizeof(v->sha1));
	json_int(&j, "mtime", v->mtime);
	if (v->parsed) {
		json_obj_begin(&j, "header");
		snprintf(s, sizeof(s), "%u.%u", h->version[0], h->version[1]);
		json_str(&j, "version", s);
		json_int(&j, "header_length", h->header_len);
		json_bytes_str(&j, "signer_name", &h->signer_name);
		if (h->signer_serial.p != NULL)
			json_hex(&j, "signer_serial", h->signer_serial.p, h->signer_serial.len);
		json_bytes_str(&j, "signer_issuer", &h->signer_issuer);
		json_str(&j, "hash", trust_hash_name(h->hash_alg));
		json_int(&j, "modulus_bits", modulus_bits(h->modulus));
		json_int(&j, "signature_length", (long long)h->signature.len);
		json_bytes_str(&j, "filename", &h->filename);
		if (h->has_timestamp)
			json_int(&j, "timestamp", h->timestamp);
		json_obj_end(&j);
		json_arr_begin(&j, "records");
		for (size_t i = 0; i < v->f.nrecs; i++)
			json_record(&j, v, i, &v->f.recs[i] == sg);
		json_arr_end(&j);
		if (v->f.nwarnings)
			json_str(&j, "warning", v->f.warning);
	}
	json_bool(&j, "verified", v->verified);
	json_str(&j, "error", v->verified ? NULL : v->why);
	json_obj_end(&j);
	json_finish(&j);
}

static void
print_list(const struct list_view *v)
{
	const struct trust_record *sg = v->parsed ? trust_list_signer(&v->f) : NULL;
	char when[64], md5[33], sha1[41];

	trust_hex(v->md5, sizeof(v->md5), md5);
	trust_hex(v->sha1, sizeof(v->sha1), sha1);
	ctl_time(v->mtime, when, sizeof(when));
	printf("The checksum value of the %s file:\n%s(MD5)\n%s(SHA1)\n\n", v->kind, md5, sha1);
	printf("Length of %s file: %zu\n", v->kind, v->buf.len);
	printf("The %s File was last modified on %s\n\n", v->kind, when);
	if (v->parsed) {
		print_header(v);
		for (size_t i = 0; i < v->f.nrecs; i++)
			print_record(v, i, &v->f.recs[i] == sg);
		if (v->f.nwarnings)
			printf("\nNote: %u unknown element(s) skipped; first: %s\n", v->f.nwarnings,
				v->f.warning);
	}
	if (v->verified)
		printf("\nThe %s file was verified successfully.\n", v->kind);
	else
		printf("\nThe %s file is not valid: %s\n", v->kind, v->why);
}

static int
show_list(struct ctl *c, const char *kind, const char *name)
{
	struct list_view v = { .kind = kind };
	char def[4096];
	struct stat sb;
	int rc;

	if (c->nargs > 0) {
		v.path = c->args[0];
	} else {
		snprintf(def, sizeof(def), "%s/current/%s", c->pub_dir, name);
		v.path = def;
	}
	if (trust_file_read(v.path, LIST_READ_MAX, &v.buf, &c->err) != 0) {
		if (c->nargs == 0 && c->err.code == TRUST_ENOTFOUND)
			return ctl_fail(c, "%s: no %s file in the current publication%s", v.path, kind,
				strcmp(kind, "CTL") == 0 ? " (the cluster is in non-secure mode)" :
				" (run tvsctl publish first)");
		return ctl_fail_err(c);
	}
	v.mtime = stat(v.path, &sb) == 0 ? (long)sb.st_mtime : 0;
	EVP_Digest(v.buf.data, v.buf.len, v.md5, NULL, EVP_md5(), NULL);
	EVP_Digest(v.buf.data, v.buf.len, v.sha1, NULL, EVP_sha1(), NULL);
	if (trust_list_parse(v.buf.data, v.buf.len, &v.f, &c->err) != 0) {
		snprintf(v.why, sizeof(v.why), "%s", c->err.msg);
	} else {
		v.parsed = true;
		if (trust_list_verify(&v.f, NULL, &c->err) == 0)
			v.verified = true;
		else
			snprintf(v.why, sizeof(v.why), "%s", c->err.msg);
	}
	if (c->json)
		json_list(&v);
	else
		print_list(&v);
	rc = v.verified ? CTL_OK : CTL_FAIL;
	if (v.parsed)
		trust_file_free(&v.f);
	trust_buf_free(&v.buf);
	return rc;
}

int
cmd_show_itl(struct ctl *c)
{
	return show_list(c, "ITL", "ITLFile.tlv");
}

int
cmd_show_ctl(struct ctl *c)
{
	return show_list(c, "CTL", "CTLFile.tlv");
}

/* ---- show cert ---------------------------------------------------------- */

static void
cert_facts_text(const struct trust_cert *x)
{
	char serial[256], when[64], sha[65];

	ctl_hex_colon(x->serial, x->serial_len, serial, sizeof(serial));
	ctl_time(x->not_after, when, sizeof(when));
	printf("    Subject:   %s\n    Issuer:    %s\n    Serial:    %s\n", x->subject, x->issuer,
		serial);
	printf("    Key:       %s %d-bit\n    Expires:   %s\n",
		x->key_type == EVP_PKEY_RSA ? "RSA" : x->key_type == EVP_PKEY_EC ? "EC" : "other",
		x->key_bits, when);
	trust_hex(x->sha256, 32, sha);
	printf("    SHA-256:   %s\n", sha);
	trust_hex(x->sha1, 20, sha);
	printf("    SHA-1:     %s\n", sha);
}

static void
cert_facts_json(struct json *j, const struct trust_cert *x)
{
	json_str(j, "subject", x->subject);
	json_str(j, "issuer", x->issuer);
	json_hex(j, "serial", x->serial, x->serial_len);
	json_str(j, "key_type", x->key_type == EVP_PKEY_RSA ? "RSA" :
		x->key_type == EVP_PKEY_EC ? "EC" : "other");
	json_int(j, "key_bits", x->key_bits);
	json_int(j, "not_after", x->not_after);
	json_hex(j, "sha256", x->sha256, 32);
	json_hex(j, "sha1", x->sha1, 20);
}

static void
roles_text(const uint16_t *roles, unsigned n, char *out, size_t sz)
{
	size_t k = 0;
	char buf[32];

	out[0] = '\0';
	for (unsigned i = 0; i < n && k < sz; i++)
		k += (size_t)snprintf(out + k, sz - k, "%s%s", i ? "," : "",
			role_label(roles[i], buf, sizeof(buf)));
}

/* One entry of a list: the facts of the certificate plus what the caller
 * adds before (name, unit) in text or JSON. */
static int
list_one(struct ctl *c, struct json *j, const struct trust_store *st,
	const struct store_object *o, const char *label, const char *name,
	const struct store_trusted *t)
{
	struct trust_cert x = { 0 };
	char roles[128], when[64];

	if (store_load_cert(st, o, &x, &c->err) != 0)
		return ctl_fail_err(c);
	if (c->json) {
		json_obj_begin(j, NULL);
		json_str(j, label, name);
		if (t != NULL) {
			json_arr_begin(j, "roles");
			for (unsigned k = 0; k < t->nroles; k++)
				json_int(j, NULL, t->roles[k]);
			json_arr_end(j);
			json_int(j, "ttl", t->ttl ? t->ttl : st->set.tvs_ttl);
		}
		cert_facts_json(j, &x);
		json_obj_end(j);
	} else {
		ctl_time(x.not_after, when, sizeof(when));
		if (t != NULL) {
			roles_text(t->roles, t->nroles, roles, sizeof(roles));
			printf("%s: roles %s, ttl %u s\n", name, roles,
				(unsigned)(t->ttl ? t->ttl : st->set.tvs_ttl));
		} else {
			printf("%s:\n", name);
		}
		cert_facts_text(&x);
	}
	trust_cert_free(&x);
	return CTL_OK;
}

int
cmd_show_cert_list(struct ctl *c)
{
	const char *which = c->args[0];
	struct trust_store st;
	struct json j;
	int rc = CTL_OK;

	if (strcmp(which, "own") && strcmp(which, "trust") && strcmp(which, "phone"))
		return ctl_usage(c, "unknown list '%s' (own, trust or phone)", which);
	if (!ctl_store_open(c, STORE_RDONLY, &st))
		return CTL_FAIL;
	json_init(&j, stdout);
	if (c->json)
		json_arr_begin(&j, NULL);
	if (strcmp(which, "own") == 0) {
		for (int u = 0; u < UNIT_COUNT && rc == CTL_OK; u++)
			rc = list_one(c, &j, &st, &st.own[u].cert, "unit", store_unit_name(u), NULL);
	} else if (strcmp(which, "trust") == 0) {
		for (size_t i = 0; i < st.ntrusted && rc == CTL_OK; i++)
			rc = list_one(c, &j, &st, &st.trusted[i].cert, "name", st.trusted[i].name,
				&st.trusted[i]);
		if (!c->json && st.ntrusted == 0)
			printf("No trusted certificates (import with: tvsctl set cert import trust ...)\n");
	} else {
		for (size_t i = 0; i < st.nphones && rc == CTL_OK; i++)
			rc = list_one(c, &j, &st, &st.phones[i].cert, "phone", st.phones[i].name, NULL);
		if (!c->json && st.nphones == 0)
			printf("No phone certificates registered.\n");
	}
	if (c->json) {
		json_arr_end(&j);
		json_finish(&j);
	}
	store_close(&st);
	return rc;
}

int
cmd_show_cert_own(struct ctl *c)
{
	int u = store_unit_parse(c->args[0]);
	struct trust_cert x = { 0 };
	struct trust_store st;
	struct trust_buf pem;
	struct json j;

	if (u < 0)
		return ctl_usage(c, "unknown unit '%s' (CallManager, ITLRecovery, TVS or CAPF)",
			c->args[0]);
	if (!ctl_store_open(c, STORE_RDONLY, &st))
		return CTL_FAIL;
	if (store_own_cert(&st, u, &x, &c->err) != 0) {
		store_close(&st);
		return ctl_fail_err(c);
	}
	store_close(&st);
	if (trust_cert_pem(&x, &pem) != 0) {
		trust_cert_free(&x);
		return ctl_fail(c, "out of memory");
	}
	if (c->json) {
		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_str(&j, "unit", store_unit_name(u));
		cert_facts_json(&j, &x);
		json_strn(&j, "pem", (const char *)pem.data, pem.len);
		json_obj_end(&j);
		json_finish(&j);
	} else {
		printf("%s/%s.pem: Self-signed certificate of this appliance\n", store_unit_name(u),
			store_unit_name(u));
		cert_facts_text(&x);
		fwrite(pem.data, 1, pem.len, stdout);
	}
	trust_buf_free(&pem);
	trust_cert_free(&x);
	return CTL_OK;
}

int
cmd_show_store(struct ctl *c)
{
	struct trust_store st;
	char val[128];
	const char *key;
	struct json j;

	if (!ctl_store_open(c, STORE_RDONLY, &st))
		return CTL_FAIL;
	if (c->json) {
		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_str(&j, "store", c->store_dir);
		json_int(&j, "generation", (long long)st.generation);
		json_obj_begin(&j, "settings");
		for (unsigned i = 0; (key = store_setting_get(&st.set, i, val, sizeof(val))); i++)
			json_str(&j, key, val);
		json_obj_end(&j);
		json_str(&j, "list_signer", store_unit_name(store_list_signer(&st.set)));
		json_int(&j, "trusted", (long long)st.ntrusted);
		json_int(&j, "phones", (long long)st.nphones);
		json_obj_end(&j);
		json_finish(&j);
	} else {
		printf("Trust store %s, generation %llu\n", c->store_dir,
			(unsigned long long)st.generation);
		for (unsigned i = 0; (key = store_setting_get(&st.set, i, val, sizeof(val))); i++)
			printf("  %-18s %s\n", key, val);
		printf("The ITL%s is signed by %s.\n",
			st.set.security_mode == MODE_MIXED ? " and the CTL" : "",
			store_unit_name(store_list_signer(&st.set)));
		printf("%zu trusted certificate(s), %zu phone certificate(s).\n", st.ntrusted,
			st.nphones);
	}
	store_close(&st);
	return CTL_OK;
}
