/* json.c: recursive-descent JSON parser and string builder. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
  const char *p, *end;
  char *err;
  size_t errlen;
  int failed;
  int depth;
} parser;

static void fail(parser *ps, const char *msg) {
  if (!ps->failed && ps->err && ps->errlen) snprintf(ps->err, ps->errlen, "JSON: %s", msg);
  ps->failed = 1;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static json *node(json_type t) {
  json *j = xcalloc(1, sizeof *j, "JSON node");
  j->type = t;
  return j;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void put_utf8(strbuf *b, unsigned cp) {
  if (cp < 0x80) sb_putc(b, (char)cp);
  else if (cp < 0x800) {
    sb_putc(b, (char)(0xC0 | (cp >> 6)));
    sb_putc(b, (char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    sb_putc(b, (char)(0xE0 | (cp >> 12)));
    sb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    sb_putc(b, (char)(0x80 | (cp & 0x3F)));
  } else {
    sb_putc(b, (char)(0xF0 | (cp >> 18)));
    sb_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
    sb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    sb_putc(b, (char)(0x80 | (cp & 0x3F)));
  }
}

static char *parse_string_raw(parser *ps) {
  if (ps->p >= ps->end || *ps->p != '"') {
    fail(ps, "expected string");
    return NULL;
  }
  ps->p++;
  strbuf b;
  sb_init(&b);
  while (ps->p < ps->end && *ps->p != '"') {
    unsigned char c = (unsigned char)*ps->p++;
    if (c < 0x20) {
      fail(ps, "control character in string");
      sb_free(&b);
      return NULL;
    }
    if (c != '\\') {
      sb_putc(&b, (char)c);
      continue;
    }
    if (ps->p >= ps->end) break;
    char e = *ps->p++;
    switch (e) {
      case '"': sb_putc(&b, '"'); break;
      case '\\': sb_putc(&b, '\\'); break;
      case '/': sb_putc(&b, '/'); break;
      case 'b': sb_putc(&b, '\b'); break;
      case 'f': sb_putc(&b, '\f'); break;
      case 'n': sb_putc(&b, '\n'); break;
      case 'r': sb_putc(&b, '\r'); break;
      case 't': sb_putc(&b, '\t'); break;
      case 'u': {
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
          int h = ps->p < ps->end ? hexval(*ps->p++) : -1;
          if (h < 0) {
            fail(ps, "bad \\u escape");
            sb_free(&b);
            return NULL;
          }
          cp = cp * 16 + (unsigned)h;
        }
        put_utf8(&b, cp);
        break;
      }
      default:
        fail(ps, "bad escape in string");
        sb_free(&b);
        return NULL;
    }
  }
  if (ps->p >= ps->end) {
    fail(ps, "unterminated string");
    sb_free(&b);
    return NULL;
  }
  ps->p++;
  sb_putc(&b, 0);
  return b.data;
}

static json *parse_value(parser *ps);

static json *parse_container(parser *ps, int is_obj) {
  json *j = node(is_obj ? JSON_OBJECT : JSON_ARRAY);
  json **tail = &j->child;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == (is_obj ? '}' : ']')) {
    ps->p++;
    return j;
  }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (is_obj) {
      key = parse_string_raw(ps);
      if (!key) break;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        free(key);
        fail(ps, "expected ':'");
        break;
      }
      ps->p++;
    }
    json *v = parse_value(ps);
    if (!v) {
      free(key);
      break;
    }
    v->key = key;
    *tail = v;
    tail = &v->next;
    j->count++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == (is_obj ? '}' : ']')) {
      ps->p++;
      return j;
    }
    fail(ps, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    break;
  }
  json_free(j);
  return NULL;
}

static json *parse_value(parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end) {
    fail(ps, "unexpected end of input");
    return NULL;
  }
  if (++ps->depth > 64) {
    fail(ps, "nesting too deep");
    return NULL;
  }
  json *j = NULL;
  char c = *ps->p;
  if (c == '{' || c == '[') {
    j = parse_container(ps, c == '{');
  } else if (c == '"') {
    char *s = parse_string_raw(ps);
    if (s) {
      j = node(JSON_STRING);
      j->str = s;
    }
  } else if (c == 't' && ps->end - ps->p >= 4 && !memcmp(ps->p, "true", 4)) {
    j = node(JSON_BOOL);
    j->num = 1;
    ps->p += 4;
  } else if (c == 'f' && ps->end - ps->p >= 5 && !memcmp(ps->p, "false", 5)) {
    j = node(JSON_BOOL);
    ps->p += 5;
  } else if (c == 'n' && ps->end - ps->p >= 4 && !memcmp(ps->p, "null", 4)) {
    j = node(JSON_NULL);
    ps->p += 4;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    const char *s = ps->p;
    while (ps->p < ps->end && strchr("+-0123456789.eE", *ps->p)) ps->p++;
    size_t n = (size_t)(ps->p - s);
    char buf[64];
    if (n >= sizeof buf) {
      fail(ps, "number too long");
    } else {
      memcpy(buf, s, n);
      buf[n] = 0;
      char *endp;
      double v = strtod(buf, &endp);
      if (*endp) fail(ps, "bad number");
      else {
        j = node(JSON_NUMBER);
        j->num = v;
        j->str = xstrdup(buf);
      }
    }
  } else {
    fail(ps, "unexpected character");
  }
  ps->depth--;
  return j;
}

json *json_parse(const char *text, size_t len, char *err, size_t errlen) {
  parser ps = {text, text + len, err, errlen, 0, 0};
  json *j = parse_value(&ps);
  if (j) {
    skip_ws(&ps);
    if (ps.p != ps.end) {
      fail(&ps, "trailing characters after value");
      json_free(j);
      j = NULL;
    }
  }
  return j;
}

void json_free(json *j) {
  while (j) {
    json *next = j->next;
    json_free(j->child);
    free(j->key);
    free(j->str);
    free(j);
    j = next;
  }
}

const json *json_get(const json *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  for (const json *c = obj->child; c; c = c->next)
    if (c->key && !strcmp(c->key, key)) return c;
  return NULL;
}

const json *json_at(const json *arr, int i) {
  if (!arr || arr->type != JSON_ARRAY) return NULL;
  const json *c = arr->child;
  while (c && i-- > 0) c = c->next;
  return c;
}

double json_num(const json *obj, const char *key, double dflt) {
  const json *v = json_get(obj, key);
  return v && (v->type == JSON_NUMBER || v->type == JSON_BOOL) ? v->num : dflt;
}

const char *json_str(const json *obj, const char *key, const char *dflt) {
  const json *v = json_get(obj, key);
  return v && v->type == JSON_STRING ? v->str : dflt;
}

void sb_init(strbuf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
}

void sb_free(strbuf *b) {
  free(b->data);
  sb_init(b);
}

static void sb_reserve(strbuf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1) cap *= 2;
  b->data = xrealloc(b->data, cap, "string buffer");
  b->cap = cap;
}

void sb_append(strbuf *b, const void *data, size_t len) {
  sb_reserve(b, len);
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = 0;
}

void sb_putc(strbuf *b, char c) { sb_append(b, &c, 1); }
void sb_puts(strbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

void sb_printf(strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sb_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void sb_json_str(strbuf *b, const char *s) {
  sb_putc(b, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"') sb_puts(b, "\\\"");
    else if (c == '\\') sb_puts(b, "\\\\");
    else if (c == '\n') sb_puts(b, "\\n");
    else if (c == '\t') sb_puts(b, "\\t");
    else if (c == '\r') sb_puts(b, "\\r");
    else if (c < 0x20) sb_printf(b, "\\u%04x", c);
    else sb_putc(b, (char)c);
  }
  sb_putc(b, '"');
}
