/*
 * A tiny streaming JSON writer for `tvsctl --json`: objects and arrays nest
 * up to JSON_DEPTH, commas are placed for the caller, strings are escaped
 * (control characters as \u00XX, bytes >= 0x80 passed through, so UTF-8
 * stays UTF-8). Keys are given with each value; pass NULL inside arrays.
 */
#ifndef CONTROL_JSON_H
#define CONTROL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define JSON_DEPTH 16

struct json {
	FILE *f;
	int depth;
	bool used[JSON_DEPTH];	/* a value was written at this level */
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *v);	/* NULL: null */
void json_strn(struct json *j, const char *key, const char *v, size_t n);
void json_int(struct json *j, const char *key, long long v);
void json_bool(struct json *j, const char *key, bool v);
void json_hex(struct json *j, const char *key, const unsigned char *p, size_t n);
/* Ends the document with a newline. */
void json_finish(struct json *j);

#endif
