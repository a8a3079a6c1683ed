/* Streaming JSON writer, see json.h. */
#include <string.h>

#include "json.h"

void
json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

static void
json_raw_str(struct json *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	fputc('"', j->f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(j->f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", j->f);
		else if (c == '\t')
			fputs("\\t", j->f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(j->f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		else
			fputc(c, j->f);
	}
	fputc('"', j->f);
}

/* Comma, indentation and "key": before a value at the current level. */
static void
json_key(struct json *j, const char *key)
{
	if (j->depth > 0) {
		fputs(j->used[j->depth] ? ",\n" : "\n", j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	j->used[j->depth] = true;
	if (key != NULL) {
		json_raw_str(j, key, strlen(key));
		fputs(": ", j->f);
	}
}

static void
json_open(struct json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_DEPTH)
		j->depth++;
	j->used[j->depth] = false;
}

static void
json_close(struct json *j, char c)
{
	bool used = j->used[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (used) {
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	fputc(c, j->f);
}

void
json_obj_begin(struct json *j, const char *key)
{
	json_open(j, key, '{');
}

void
json_obj_end(struct json *j)
{
	json_close(j, '}');
}

void
json_arr_begin(struct json *j, const char *key)
{
	json_open(j, key, '[');
}

void
json_arr_end(struct json *j)
{
	json_close(j, ']');
}

void
json_strn(struct json *j, const char *key, const char *v, size_t n)
{
	json_key(j, key);
	json_raw_str(j, v, n);
}

void
json_str(struct json *j, const char *key, const char *v)
{
	if (v == NULL) {
		json_key(j, key);
		fputs("null", j->f);
		return;
	}
	json_strn(j, key, v, strlen(v));
}

void
json_int(struct json *j, const char *key, long long v)
{
	json_key(j, key);
	fprintf(j->f, "%lld", v);
}

void
json_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

void
json_hex(struct json *j, const char *key, const unsigned char *p, size_t n)
{
	json_key(j, key);
	fputc('"', j->f);
	for (size_t i = 0; i < n; i++)
		fprintf(j->f, "%02x", p[i]);
	fputc('"', j->f);
}

void
json_finish(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
