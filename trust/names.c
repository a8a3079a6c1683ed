/*
 * Distinguished names and serials as CTL/ITL files and TVS requests spell
 * them (FORMATS §1.8, §8.1, §8.2).
 *
 * We write CUCM style: attributes CN first (reverse of DER order), joined
 * by ';'. We read that and RFC 4514 style (',' in DER order), and compare
 * by the sorted list of (canonical attribute name, value) pairs so that the
 * order and separator never matter.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cert.h"

#define NAME_MAX_ATTRS 64
#define NAME_MAX_TEXT 4096

struct name_attr {
	char type[64];		/* canonical short name, upper case */
	char *value;		/* unescaped, unquoted */
	size_t vlen;
};

struct name_list {
	struct name_attr a[NAME_MAX_ATTRS];
	size_t n;
	char text[NAME_MAX_TEXT];	/* storage of the values */
	size_t used;
};

/* Spellings seen in the wild that OpenSSL's short names do not cover. */
static const struct {
	const char *alias;
	const char *type;
} name_aliases[] = {
	{ "S", "ST" },
	{ "SP", "ST" },
	{ "E", "EMAILADDRESS" },
	{ "EMAIL", "EMAILADDRESS" },
	{ "USERID", "UID" },
};

/* Upper-case OpenSSL short name for any spelling: short, long, alias,
 * dotted OID; unknown types keep their own spelling, upper-cased. */
static void
name_canon_type(const char *in, size_t n, char *out, size_t outsz)
{
	char tmp[64];
	int nid = NID_undef;
	const char *sn = NULL;
	size_t i;

	if (n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	memcpy(tmp, in, n);
	tmp[n] = '\0';
	for (i = 0; i < sizeof(name_aliases) / sizeof(name_aliases[0]); i++)
		if (strcasecmp(tmp, name_aliases[i].alias) == 0) {
			snprintf(out, outsz, "%s", name_aliases[i].type);
			return;
		}
	/* OpenSSL's name lookups are case-sensitive: try the common forms */
	nid = OBJ_txt2nid(tmp);
	if (nid == NID_undef) {
		for (i = 0; tmp[i]; i++)
			tmp[i] = (char)toupper((unsigned char)tmp[i]);
		nid = OBJ_sn2nid(tmp);
	}
	if (nid == NID_undef)
		nid = OBJ_ln2nid(tmp);
	if (nid == NID_undef) {
		/* long names are camel case ("commonName"): compare folded */
		static const int common[] = { NID_commonName, NID_organizationName,
			NID_organizationalUnitName, NID_localityName,
			NID_stateOrProvinceName, NID_countryName, NID_pkcs9_emailAddress,
			NID_domainComponent, NID_serialNumber, NID_streetAddress,
			NID_title, NID_givenName, NID_surname, NID_userId };

		for (i = 0; i < sizeof(common) / sizeof(common[0]); i++)
			if (strcasecmp(tmp, OBJ_nid2ln(common[i])) == 0) {
				nid = common[i];
				break;
			}
	}
	if (nid != NID_undef)
		sn = OBJ_nid2sn(nid);
	snprintf(out, outsz, "%s", sn != NULL ? sn : tmp);
	for (i = 0; out[i]; i++)
		out[i] = (char)toupper((unsigned char)out[i]);
}

static int
hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Does s[0..n) start with "type=" (type = letters/digits/'-'/'.')? */
static size_t
name_type_len(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] == ' ')
		i++;
	if (i == n || !isalnum((unsigned char)s[i]))
		return 0;
	while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
		i++;
	while (i < n && s[i] == ' ')
		i++;
	return i < n && s[i] == '=' ? i : 0;
}

/* Which separator this string uses: ';' when one appears outside quotes
 * and escapes (CUCM), else ',' (RFC 4514). */
static char
name_separator(const char *s, size_t n)
{
	bool quoted = false;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == ';' && !quoted)
			return ';';
	}
	return ',';
}

static int
name_put_char(struct name_list *l, char c)
{
	if (l->used >= sizeof(l->text))
		return -1;
	l->text[l->used++] = c;
	return 0;
}

/*
 * Split into attributes. A piece that does not start with "type=" belongs
 * to the previous value (an unescaped separator inside a value, as in
 * "O=Cisco Systems, Inc."). Values: outer spaces trimmed, quotes removed,
 * "\X" and "\HH" unescaped, ASCII letters folded to lower case (names
 * match case-insensitively, RFC 5280 §7.1, simplified).
 */
static int
name_parse(const char *s, size_t n, struct name_list *l)
{
	char sep;
	size_t i = 0;

	l->n = 0;
	l->used = 0;
	if (n == 0)
		return 0;
	if (memchr(s, '\0', n) != NULL)
		n = strlen(s);
	sep = name_separator(s, n);
	while (i < n) {
		size_t tl = name_type_len(s + i, n - i), start, trail;
		struct name_attr *a;
		bool quoted = false;

		if (tl == 0) {
			if (l->n == 0) {
				while (i < n && s[i] == ' ')
					i++;
				if (i == n)
					break;	/* blank */
				return -1;
			}
			/* continuation: keep the separator in the previous value */
			a = &l->a[l->n - 1];
			if (name_put_char(l, sep) != 0)
				return -1;
			a->vlen++;
		} else {
			if (l->n == NAME_MAX_ATTRS)
				return -1;
			a = &l->a[l->n++];
			start = i;
			while (s[start] == ' ')
				start++;
			size_t te = start;

			while (te < i + tl && s[te] != ' ')
				te++;
			name_canon_type(s + start, te - start, a->type, sizeof(a->type));
			i += tl + 1;
			while (i < n && s[i] == ' ')
				i++;
			a->value = l->text + l->used;
			a->vlen = 0;
		}
		trail = 0;
		for (; i < n; i++) {
			char c = s[i];

			if (c == '"') {
				quoted = !quoted;
				trail = 0;
				continue;
			}
			if (!quoted && c == sep)
				break;
			if (c == '\\' && i + 1 < n) {
				int hi = i + 2 < n ? hexdigit(s[i + 1]) : -1;
				int lo = i + 2 < n ? hexdigit(s[i + 2]) : -1;

				if (hi >= 0 && lo >= 0) {
					c = (char)(hi << 4 | lo);
					i += 2;
				} else {
					c = s[++i];
				}
				trail = 0;
			} else if (c == ' ' && !quoted) {
				trail++;
			} else {
				trail = 0;
			}
			if (name_put_char(l, (char)tolower((unsigned char)c)) != 0)
				return -1;
			a->vlen++;
		}
		/* unquoted trailing spaces are not part of the value */
		a->vlen -= trail;
		l->used -= trail;
		if (i < n)
			i++;	/* the separator */
	}
	return 0;
}

static int
name_attr_cmp(const void *pa, const void *pb)
{
	const struct name_attr *a = pa, *b = pb;
	int c = strcmp(a->type, b->type);
	size_t m = a->vlen < b->vlen ? a->vlen : b->vlen;

	if (c != 0)
		return c;
	c = memcmp(a->value, b->value, m);
	if (c != 0)
		return c;
	return a->vlen < b->vlen ? -1 : a->vlen > b->vlen;
}

static struct name_list *
name_normalise(const char *s, size_t n)
{
	struct name_list *l = malloc(sizeof(*l));

	if (l == NULL)
		return NULL;
	if (name_parse(s, n, l) != 0) {
		free(l);
		return NULL;
	}
	qsort(l->a, l->n, sizeof(l->a[0]), name_attr_cmp);
	return l;
}

bool
trust_name_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	struct name_list *la = name_normalise(a, alen);
	struct name_list *lb = name_normalise(b, blen);
	bool eq = false;

	if (la == NULL || lb == NULL) {
		/* not a DN we understand: only identical bytes match */
		eq = alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
	} else if (la->n == lb->n) {
		eq = true;
		for (size_t i = 0; i < la->n && eq; i++)
			eq = name_attr_cmp(&la->a[i], &lb->a[i]) == 0;
	}
	free(la);
	free(lb);
	return eq;
}

static void
serial_strip(const uint8_t **p, size_t *n)
{
	while (*n > 0 && (*p)[0] == 0x00) {
		(*p)++;
		(*n)--;
	}
}

bool
trust_serial_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	serial_strip(&a, &alen);
	serial_strip(&b, &blen);
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int
md_put16(EVP_MD_CTX *ctx, const void *p, size_t n)
{
	uint8_t l[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	return EVP_DigestUpdate(ctx, l, 2) == 1 && EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : -1;
}

/*
 * Key = SHA-256 of:
 *   "tvs-issuer-serial-1" (19 bytes, no NUL)
 *   u16 number of issuer attributes
 *   per attribute, in the sorted order trust_name_equal uses:
 *     u16 length | canonical upper-case short type ("CN", "OU", ...)
 *     u16 length | value (unquoted, unescaped, ASCII lower-cased)
 *   u16 length | serial with leading 0x00 bytes stripped
 * (all lengths big-endian). Equal names and serials in any spelling give
 * the same key; the length prefixes keep distinct inputs apart.
 */
int
trust_issuer_serial_key(const char *issuer, size_t ilen, const uint8_t *serial,
	size_t slen, uint8_t out[32])
{
	static const char domain[] = "tvs-issuer-serial-1";
	struct name_list *l = name_normalise(issuer, ilen);
	EVP_MD_CTX *ctx = NULL;
	uint8_t cnt[2];
	int rc = TRUST_EFORMAT;

	if (l == NULL || l->n > 0xffff)
		goto out;
	rc = TRUST_ECRYPTO;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	cnt[0] = (uint8_t)(l->n >> 8);
	cnt[1] = (uint8_t)l->n;
	if (EVP_DigestUpdate(ctx, domain, sizeof(domain) - 1) != 1
	    || EVP_DigestUpdate(ctx, cnt, 2) != 1)
		goto out;
	for (size_t i = 0; i < l->n; i++)
		if (md_put16(ctx, l->a[i].type, strlen(l->a[i].type)) != 0
		    || md_put16(ctx, l->a[i].value, l->a[i].vlen) != 0)
			goto out;
	serial_strip(&serial, &slen);
	if (md_put16(ctx, serial, slen) != 0 || EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(l);
	return rc;
}

/* Characters that would split or confuse a CUCM-style value. */
static int
name_put_value(struct trust_buf *b, const unsigned char *v, int n)
{
	for (int i = 0; i < n; i++) {
		if ((v[i] == ';' || v[i] == '\\' || v[i] == '"') && trust_buf_put_u8(b, '\\') != 0)
			return TRUST_ENOMEM;
		if (trust_buf_put_u8(b, v[i]) != 0)
			return TRUST_ENOMEM;
	}
	return 0;
}

/*
 * CUCM-style text of an X509_NAME: last RDN first, "TYPE=value" joined by
 * ';' (escaping ';', '\' and '"' with a backslash). Returns a malloc'd
 * NUL-terminated string or NULL.
 */
char *
trust_name_cucm(const X509_NAME *name)
{
	struct trust_buf b;
	int n = X509_NAME_entry_count(name);

	trust_buf_init(&b);
	for (int i = n - 1; i >= 0; i--) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
		int nid = OBJ_obj2nid(obj);
		char oid[80];
		const char *type;
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));

		if (len < 0)
			goto fail;
		if (nid != NID_undef && OBJ_nid2sn(nid) != NULL) {
			type = OBJ_nid2sn(nid);
		} else {
			OBJ_obj2txt(oid, sizeof(oid), obj, 1);
			type = oid;
		}
		if ((i != n - 1 && trust_buf_put_u8(&b, ';') != 0)
		    || trust_buf_printf(&b, "%s=", type) != 0
		    || name_put_value(&b, utf8, len) != 0) {
			OPENSSL_free(utf8);
			goto fail;
		}
		OPENSSL_free(utf8);
	}
	if (trust_buf_put_u8(&b, '\0') != 0)
		goto fail;
	return (char *)b.data;
fail:
	trust_buf_free(&b);
	return NULL;
}
