/* giro.sql: keeping a PostgreSQL password out of every message.  libpq quotes the
 * connection string, or parts of it, in some of its errors ("invalid URI query
 * parameter", "end of string reached when looking for matching ]" ...): before a
 * connection error leaves C, each password the string holds -- as written, percent-
 * decoded, unquoted, and as libpq itself parses it -- is replaced by ***. */
#include "sql/sql.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SECRETS 16

typedef struct {
  char *s[MAX_SECRETS];
  int n;
} secrets;

static void add(secrets *k, const char *p, size_t len) {
  if (len == 0 || k->n >= MAX_SECRETS) return;
  char *c = malloc(len + 1);
  if (!c) return;   /* out of memory: the scrub below may then miss this one; the caller's
                       message is built from libpq's, which never holds a parsed-away secret */
  memcpy(c, p, len);
  c[len] = '\0';
  k->s[k->n++] = c;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if ((ch | 32) >= 'a' && (ch | 32) <= 'f') return (ch | 32) - 'a' + 10;
  return -1;
}

/* p as written, and percent-decoded when that differs */
static void add_url_part(secrets *k, const char *p, size_t len) {
  add(k, p, len);
  char *d = malloc(len + 1);
  if (!d) return;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '%' && i + 2 < len && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
      d[o++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
      i += 2;
    } else {
      d[o++] = p[i];
    }
  }
  if (o != len || memcmp(d, p, len) != 0) add(k, d, o);
  free(d);
}

static void from_url(secrets *k, const char *t) {
  const char *rest = strstr(t, "://") + 3;
  size_t auth = strcspn(rest, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < auth; i++) if (rest[i] == '@') at = rest + i;
  if (at) {
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    if (colon) add_url_part(k, colon + 1, (size_t)(at - colon - 1));
  }
  const char *q = strchr(rest, '?');
  while (q) {
    q++;
    if (strncmp(q, "password=", 9) == 0) add_url_part(k, q + 9, strcspn(q + 9, "&#"));
    q = strchr(q, '&');
  }
}

static void from_keywords(secrets *k, const char *t) {
  for (const char *p = strstr(t, "password"); p; p = strstr(p + 1, "password")) {
    const char *v = p + 8;
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
    if (*v != '=') continue;
    v++;
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
    if (*v == '\'') {
      const char *e = v + 1;
      while (*e && *e != '\'') { if (*e == '\\' && e[1]) e++; e++; }
      add(k, v + 1, (size_t)(e - v - 1));
      char *u = malloc((size_t)(e - v));
      if (u) {
        size_t o = 0;
        for (const char *x = v + 1; x < e; x++) { if (*x == '\\' && x + 1 < e) x++; u[o++] = *x; }
        add(k, u, o);
        free(u);
      }
    } else {
      add(k, v, strcspn(v, " \t\r\n"));
    }
  }
}

static int longest_first(const void *a, const void *b) {
  size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
  return la < lb ? 1 : la > lb ? -1 : 0;
}

void sql_scrub(char *buf, size_t cap, const char *target) {
  secrets k = { { 0 }, 0 };
  if (strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0) from_url(&k, target);
  else from_keywords(&k, target);
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(target, &err);
  if (opts) {
    for (PQconninfoOption *o = opts; o->keyword; o++)
      if (strcmp(o->keyword, "password") == 0 && o->val) add(&k, o->val, strlen(o->val));
    PQconninfoFree(opts);
  }
  if (err) PQfreemem(err);
  qsort(k.s, (size_t)k.n, sizeof k.s[0], longest_first);
  for (int i = 0; i < k.n; i++) {
    size_t sl = strlen(k.s[i]);
    char *p = buf;
    while ((p = strstr(p, k.s[i])) != NULL) {
      size_t tail = strlen(p + sl);
      if (sl >= 3) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + sl, tail + 1);
      } else {   /* a short password: "***" is longer; make room, cut the end if needed */
        size_t used = (size_t)(p - buf) + 3;
        if (used >= cap) { *p = '\0'; break; }
        size_t keep = tail < cap - used - 1 ? tail : cap - used - 1;
        memmove(p + 3, p + sl, keep);
        p[3 + keep] = '\0';
        memcpy(p, "***", 3);
      }
      p += 3;
    }
    free(k.s[i]);
  }
}
