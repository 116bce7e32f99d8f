/* json.h: a small JSON reader (a tree of nodes) and a string builder for
 * writing JSON and text. Used by the safetensors header, config.json and
 * checkpoint metadata. Numbers are kept as double and as their source text. */
#ifndef RN50_JSON_H
#define RN50_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json json;
struct json {
  json_type type;
  char *key;      /* member name when inside an object */
  char *str;      /* JSON_STRING: decoded text; JSON_NUMBER: source text */
  double num;     /* JSON_NUMBER, JSON_BOOL (0/1) */
  json *child;    /* first element/member */
  json *next;     /* next sibling */
  int count;      /* number of children */
};

/* Parse len bytes. Returns NULL and fills err on malformed input. */
json *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json *j);
/* Object member by name, or NULL. */
const json *json_get(const json *obj, const char *key);
/* Array element i, or NULL. */
const json *json_at(const json *arr, int i);
/* Typed getters with a default when missing or of another type. */
double json_num(const json *obj, const char *key, double dflt);
const char *json_str(const json *obj, const char *key, const char *dflt);

/* A growable string. */
typedef struct {
  char *data;
  size_t len, cap;
} strbuf;

void sb_init(strbuf *b);
void sb_free(strbuf *b);
void sb_putc(strbuf *b, char c);
void sb_puts(strbuf *b, const char *s);
void sb_append(strbuf *b, const void *data, size_t len);
void sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Append s as a quoted, escaped JSON string. */
void sb_json_str(strbuf *b, const char *s);

#endif
