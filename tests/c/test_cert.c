/* X.509 facts, names, serials, keys and certificate generation (trust/cert.h; generation: store/sign.h). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "sign.h"
#include "tap.h"

static char tmpdir[] = "/tmp/tvs-test-cert-XXXXXX";

static const struct trust_cert_params cucm_params = {
	.cn = "cucm", .ou = "TAC", .o = "Cisco", .l = "Krakow", .st = "Malopolska",
	.c = "PL", .days = 3650,
};

static void
tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static void
test_rsa_facts(unsigned bits, size_t keylen, size_t siglen)
{
	struct trust_err err = { 0 };
	struct trust_cert c, d;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	EVP_PKEY *key;
	time_t now = time(NULL);

	key = trust_key_generate_rsa(bits, &err);
	ok(key != NULL, "RSA-%u key generated", bits);
	is_int(trust_cert_selfsign(key, &cucm_params, &c, &err), 0, "self-signed RSA-%u cert", bits);
	is_str(c.subject, "CN=cucm;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL",
		"subject in CUCM style, CN first");
	is_str(c.issuer, c.subject, "self-signed: issuer equals subject");
	is_int(c.serial_len, 16, "serial is 16 bytes");
	ok((c.serial[0] & 0x80) == 0 && c.serial[0] != 0, "serial positive, no sign byte");
	is_int(c.pubkey_len, keylen, "RSA-%u public key is %zu bytes of PKCS#1", bits, keylen);
	ok(c.pubkey[0] == 0x30, "PKCS#1 RSAPublicKey is a SEQUENCE");
	is_int(c.sig_len, siglen, "cert signature is %zu bytes", siglen);
	is_int(c.key_type, EVP_PKEY_RSA, "key type RSA");
	is_int(c.key_bits, bits, "key bits");
	ok(c.not_after > now + 3649L * 86400 && c.not_after < now + 3651L * 86400,
		"notAfter is 3650 days out");
	X509_digest(c.x509, EVP_sha1(), md, &mdlen);
	ok(mdlen == 20 && memcmp(md, c.sha1, 20) == 0, "SHA-1 matches X509_digest");
	X509_digest(c.x509, EVP_sha256(), md, &mdlen);
	ok(mdlen == 32 && memcmp(md, c.sha256, 32) == 0, "SHA-256 matches X509_digest");
	X509_digest(c.x509, EVP_md5(), md, &mdlen);
	ok(mdlen == 16 && memcmp(md, c.md5, 16) == 0, "MD5 matches X509_digest");
	ok(X509_verify(c.x509, key) == 1, "self signature verifies");
	ok(X509_get_signature_nid(c.x509) == NID_sha256WithRSAEncryption, "signed with SHA-256");

	is_int(trust_cert_from_der(c.der, c.der_len, &d, &err), 0, "parse own DER");
	ok(d.der_len == c.der_len && memcmp(d.der, c.der, c.der_len) == 0, "same DER back");
	ok(d.pubkey_len == c.pubkey_len && memcmp(d.pubkey, c.pubkey, c.pubkey_len) == 0,
		"same public key");
	ok(d.sig_len == c.sig_len && memcmp(d.sig, c.sig, c.sig_len) == 0, "same signature");
	trust_cert_free(&d);
	ok(d.x509 == NULL && d.der == NULL, "free zeroes the struct");
	trust_cert_free(&d);	/* twice is harmless */
	trust_cert_free(&c);
	EVP_PKEY_free(key);
}

static void
test_der_errors(void)
{
	struct trust_err err = { 0 };
	struct trust_cert c, d;
	EVP_PKEY *key = trust_key_generate_rsa(1024, &err);
	uint8_t *der;

	trust_cert_selfsign(key, &cucm_params, &c, &err);
	der = malloc(c.der_len + 1);
	memcpy(der, c.der, c.der_len);
	der[c.der_len] = 0;
	is_int(trust_cert_from_der(der, c.der_len + 1, &d, &err), TRUST_EFORMAT,
		"trailing byte after the DER refused");
	ok(strstr(err.msg, "follow") != NULL, "message says so: %s", err.msg);
	is_int(trust_cert_from_der(der, c.der_len - 1, &d, &err), TRUST_EFORMAT,
		"truncated DER refused");
	is_int(trust_cert_from_der(der, 0, &d, &err), TRUST_EFORMAT, "empty DER refused");
	memset(der, 0x41, c.der_len);
	is_int(trust_cert_from_der(der, c.der_len, &d, &err), TRUST_EFORMAT, "garbage refused");
	ok(d.x509 == NULL, "failed parse leaves a zeroed cert");
	free(der);
	trust_cert_free(&c);
	EVP_PKEY_free(key);
}

static void
test_ec(void)
{
	struct trust_err err = { 0 };
	struct trust_cert c;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	is_int(trust_cert_selfsign(key, &cucm_params, &c, &err), 0, "EC self-signed cert");
	is_int(c.key_type, EVP_PKEY_EC, "key type EC");
	is_int(c.pubkey_len, 65, "P-256 point is 65 bytes");
	ok(c.pubkey[0] == 0x04, "X9.62 uncompressed point");
	trust_cert_free(&c);
	EVP_PKEY_free(key);
}

static void
test_files(void)
{
	struct trust_err err = { 0 };
	struct trust_cert c, d;
	struct trust_buf pem;
	char path[256];
	struct stat st;
	EVP_PKEY *key = trust_key_generate_rsa(1024, &err), *back = NULL;

	trust_cert_selfsign(key, &cucm_params, &c, &err);
	tmp_path(path, sizeof(path), "key.pem");
	is_int(trust_key_save(path, key, &err), 0, "key saved");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "key file mode 0600");
	is_int(trust_key_load(path, &back, &err), 0, "key loaded");
	ok(back != NULL && EVP_PKEY_eq(key, back) == 1, "same key back");
	EVP_PKEY_free(back);
	unlink(path);
	is_int(trust_key_load(path, &back, &err), TRUST_ENOTFOUND, "missing key file");
	ok(back == NULL && strstr(err.msg, path) != NULL, "error names the path: %s", err.msg);
	trust_file_write_atomic(path, "not a key\n", 10, 0600, &err);
	is_int(trust_key_load(path, &back, &err), TRUST_EFORMAT, "garbage key file");
	unlink(path);
	{
		BIO *bio = BIO_new(BIO_s_mem());
		char *p;
		long n;

		PEM_write_bio_PrivateKey(bio, key, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"pw");
		n = BIO_get_mem_data(bio, &p);
		trust_file_write_atomic(path, p, (size_t)n, 0600, &err);
		BIO_free(bio);
		is_int(trust_key_load(path, &back, &err), TRUST_EFORMAT,
			"passphrase-protected key refused without prompting");
		unlink(path);
	}

	is_int(trust_cert_pem(&c, &pem), 0, "cert to PEM");
	ok(pem.len > 27 && memcmp(pem.data, "-----BEGIN CERTIFICATE-----", 27) == 0, "PEM text");
	tmp_path(path, sizeof(path), "cert.pem");
	trust_file_write_atomic(path, pem.data, pem.len, 0644, &err);
	trust_buf_free(&pem);
	is_int(trust_cert_load(path, &d, &err), 0, "PEM cert loaded");
	ok(memcmp(d.sha256, c.sha256, 32) == 0, "same cert from PEM");
	trust_cert_free(&d);
	unlink(path);
	tmp_path(path, sizeof(path), "cert.der");
	trust_file_write_atomic(path, c.der, c.der_len, 0644, &err);
	is_int(trust_cert_load(path, &d, &err), 0, "DER cert loaded");
	ok(memcmp(d.sha256, c.sha256, 32) == 0, "same cert from DER");
	trust_cert_free(&d);
	trust_file_write_atomic(path, "-----BEGIN CERTIFICATE-----\nxx\n", 31, 0644, &err);
	is_int(trust_cert_load(path, &d, &err), TRUST_EFORMAT, "broken PEM refused");
	ok(strstr(err.msg, path) != NULL, "error names the path: %s", err.msg);
	unlink(path);

	is_int(trust_cert_copy(&c, &d, &err), 0, "copy");
	trust_cert_free(&c);
	ok(d.subject != NULL && strncmp(d.subject, "CN=cucm;", 8) == 0,
		"copy outlives the original");
	trust_cert_free(&d);
	EVP_PKEY_free(key);
}

static void
test_issue_and_p12(void)
{
	struct trust_err err = { 0 };
	struct trust_cert ca, phone, p;
	struct trust_cert_params cap = { .cn = "CAPF-1234", .o = "Cisco", .days = 365, .ca = true };
	struct trust_cert_params pp = { .cn = "SEP001122334455", .ou = "phones", .days = 30 };
	EVP_PKEY *cakey = trust_key_generate_rsa(1024, &err);
	EVP_PKEY *pkey = trust_key_generate_rsa(1024, &err), *k2 = NULL;
	PKCS12 *p12;
	unsigned char *der = NULL;
	char path[256];
	int n;

	is_int(trust_cert_selfsign(cakey, &cap, &ca, &err), 0, "CA cert");
	is_int(trust_cert_issue(pkey, &pp, &ca, cakey, &phone, &err), 0, "phone cert issued");
	is_str(phone.issuer, "CN=CAPF-1234;O=Cisco", "issuer is the CA subject");
	is_str(phone.subject, "CN=SEP001122334455;OU=phones", "absent fields are left out");
	ok(X509_verify(phone.x509, cakey) == 1, "phone cert verifies with the CA key");
	ok(X509_check_ca(ca.x509) >= 1, "CA cert is a CA");
	is_int(trust_cert_issue(pkey, &pp, &ca, pkey, &p, &err), TRUST_EINVAL,
		"issuer key must match issuer cert");

	p12 = PKCS12_create("pw", "ITLRecovery", pkey, phone.x509, NULL, 0, 0, 0, 0, 0);
	ok(p12 != NULL, "PKCS#12 built");
	n = i2d_PKCS12(p12, &der);
	tmp_path(path, sizeof(path), "ITLRecovery.p12");
	trust_file_write_atomic(path, der, (size_t)n, 0600, &err);
	OPENSSL_free(der);
	PKCS12_free(p12);
	is_int(trust_p12_load(path, "pw", &k2, &p, &err), 0, "PKCS#12 loaded");
	ok(k2 != NULL && EVP_PKEY_eq(k2, pkey) == 1, "key from PKCS#12");
	ok(memcmp(p.sha256, phone.sha256, 32) == 0, "cert from PKCS#12");
	EVP_PKEY_free(k2);
	trust_cert_free(&p);
	is_int(trust_p12_load(path, "wrong", &k2, &p, &err), TRUST_ECRYPTO,
		"wrong PKCS#12 password refused");
	ok(k2 == NULL, "no key on failure");
	unlink(path);

	ok(trust_key_generate_rsa(100, &err) == NULL && err.code == TRUST_EINVAL,
		"RSA-100 refused: %s", err.msg);
	{
		struct trust_cert_params bad = { .cn = NULL, .days = 1 };

		is_int(trust_cert_selfsign(pkey, &bad, &p, &err), TRUST_EINVAL, "CN required");
	}
	trust_cert_free(&ca);
	trust_cert_free(&phone);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(pkey);
}

#define NAME_EQ(a, b) trust_name_equal(a, strlen(a), b, strlen(b))

static void
test_names(void)
{
	static const char cucm[] = "CN=cucm;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL";
	uint8_t k1[32], k2[32], k3[32];
	const uint8_t s1[] = { 0x00, 0x8a, 0x01 }, s2[] = { 0x8a, 0x01 }, s3[] = { 0x8a, 0x02 };

	ok(NAME_EQ(cucm, "C=PL,ST=Malopolska,L=Krakow,O=Cisco,OU=TAC,CN=cucm"),
		"CUCM and RFC 4514 spellings are equal");
	ok(NAME_EQ(cucm, "cn=CUCM; ou=tac; o=cisco; l=krakow; st=malopolska; c=pl"),
		"case and spaces do not matter");
	ok(NAME_EQ(cucm, "commonName=cucm,organizationalUnitName=TAC,O=Cisco,"
		"localityName=Krakow,S=Malopolska,countryName=PL"), "long attribute names");
	ok(NAME_EQ(cucm, "2.5.4.3=cucm;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL"),
		"dotted OIDs");
	ok(trust_name_equal(cucm, sizeof(cucm), cucm, strlen(cucm)), "a counted NUL ends the name");
	ok(!NAME_EQ(cucm, "CN=cucm;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska"),
		"a missing attribute differs");
	ok(!NAME_EQ(cucm, "CN=cucm2;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL"),
		"a different value differs");
	ok(!NAME_EQ("CN=a;OU=x", "CN=a;OU=x;OU=x"), "a repeated attribute differs");
	ok(NAME_EQ("CN=a;O=Cisco Systems, Inc.", "O=Cisco Systems\\, Inc.,CN=a"),
		"a ',' inside a CUCM value matches an escaped one");
	ok(NAME_EQ("cn=\"SAST-ADN0054f509 \";ou=IPCBU;o=\"Cisco Systems",
		"O=Cisco Systems,OU=IPCBU,CN=SAST-ADN0054f509\\20"),
		"quoted values keep their spaces (eToken spelling)");
	ok(!NAME_EQ("CN=SAST ", "CN=\"SAST \""), "unquoted trailing space is not part of a value");
	ok(NAME_EQ("CN=a\\;b;O=c", "O=c,CN=a\\3bb"), "escaped ';' equals hex escape");
	ok(!NAME_EQ("garbage", "CN=garbage"), "text without '=' is not a DN");
	ok(NAME_EQ("", ""), "two empty names are equal");

	ok(trust_serial_equal(s1, sizeof(s1), s2, sizeof(s2)), "leading 0x00 ignored");
	ok(!trust_serial_equal(s2, sizeof(s2), s3, sizeof(s3)), "different serials differ");

	is_int(trust_issuer_serial_key(cucm, strlen(cucm), s1, sizeof(s1), k1), 0, "key 1");
	trust_issuer_serial_key("C=PL,ST=Malopolska,L=Krakow,O=Cisco,OU=TAC,CN=cucm", 50,
		s2, sizeof(s2), k2);
	ok(memcmp(k1, k2, 32) == 0, "same key for ';' and ',' spelling and 0x00-prefixed serial");
	trust_issuer_serial_key(cucm, strlen(cucm), s3, sizeof(s3), k3);
	ok(memcmp(k1, k3, 32) != 0, "different serial, different key");
	trust_issuer_serial_key("CN=cucm;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=DE",
		strlen(cucm), s2, sizeof(s2), k3);
	ok(memcmp(k1, k3, 32) != 0, "different issuer, different key");
	is_int(trust_issuer_serial_key("nonsense", 8, s2, sizeof(s2), k3), TRUST_EFORMAT,
		"issuer that is not a DN refused");
}

/* Names of real certificates: what we print must match what we parse. */
static void
test_name_roundtrip(void)
{
	struct trust_err err = { 0 };
	struct trust_cert_params p = { .cn = "a;b\\c\"d, e", .o = "Cisco Systems, Inc.", .days = 1 };
	EVP_PKEY *key = trust_key_generate_rsa(1024, &err);
	struct trust_cert c;
	char *rfc;
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *mem;

	trust_cert_selfsign(key, &p, &c, &err);
	is_str(c.subject, "CN=a\\;b\\\\c\\\"d, e;O=Cisco Systems, Inc.",
		"special characters escaped in the CUCM spelling");
	X509_NAME_print_ex(bio, X509_get_subject_name(c.x509), 0, XN_FLAG_RFC2253);
	BIO_write(bio, "", 1);
	BIO_get_mem_ptr(bio, &mem);
	rfc = mem->data;
	ok(trust_name_equal(c.subject, strlen(c.subject), rfc, strlen(rfc)),
		"CUCM spelling equals OpenSSL's RFC 2253 spelling (%s)", rfc);
	BIO_free(bio);
	trust_cert_free(&c);
	EVP_PKEY_free(key);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_rsa_facts(1024, 140, 128);
	test_rsa_facts(2048, 270, 256);
	test_der_errors();
	test_ec();
	test_files();
	test_issue_and_p12();
	test_names();
	test_name_roundtrip();
	rmdir(tmpdir);
	return done_testing();
}
