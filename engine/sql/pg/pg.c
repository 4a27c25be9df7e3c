/* giro.sql's PostgreSQL backend (libpq; the module giro.sql_pg): `?` placeholders become $1..$n once, when the
 * statement is prepared; values travel as text (a string with a NUL byte as binary, for
 * BYTEA); results come back as text and are converted by column type; a batch runs in
 * pipeline mode (one round trip per PIPE_CHUNK rows, not per row). */
#include "sql/sql.h"

#include <lauxlib.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG(c) ((PGconn *)(c)->h)
#define RES(s) ((PGresult *)(s)->res)

/* type OIDs (src/include/catalog/pg_type.dat) */
enum { BOOLOID = 16, BYTEAOID = 17, INT8OID = 20, INT2OID = 21, INT4OID = 23, OIDOID = 26,
       FLOAT4OID = 700, FLOAT8OID = 701 };

/* rows sent before the pipeline is synchronised and their results read: small enough that
 * neither side's socket buffer fills while the other is not reading */
#define PIPE_CHUNK 500

/* libpq's messages end with a newline */
static int pg_fail(sql_conn *c, const char *text) {
  sql_error(c, "%s", text && *text ? text : "unknown PostgreSQL error");
  size_t n = strlen(c->msg);
  while (n > 0 && (c->msg[n - 1] == '\n' || c->msg[n - 1] == ' ')) c->msg[--n] = '\0';
  return SQL_ERROR;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int pg_open(sql_conn *c, const char *target) {
  PGconn *pg = PQconnectdb(target);
  if (!pg) return sql_error(c, "out of memory");
  if (PQstatus(pg) != CONNECTION_OK) {
    /* scrubbed whole, before c->msg cuts it: a password across the cut would be half-kept;
     * "***" for a shorter password makes the text at most 3 times longer */
    const char *e = PQerrorMessage(pg);
    size_t cap = strlen(e) * 3 + 1;
    char *text = malloc(cap);
    if (text) {
      memcpy(text, e, strlen(e) + 1);
      sql_scrub(text, cap, target);
      pg_fail(c, text);
      free(text);
    } else {
      sql_error(c, "out of memory (while reporting a failed connection)");
    }
    PQfinish(pg);
    return SQL_ERROR;
  }
  /* notices (WARNING, NOTICE) are not giro's output: libpq would print them on stderr */
  PQsetNoticeProcessor(pg, quiet, NULL);
  c->h = pg;
  return SQL_OK;
}

static void pg_close(sql_conn *c) {
  if (c->h) PQfinish(PG(c));
  c->h = NULL;
}

static int ident(char ch) {
  return ch == '_' || ((ch | 32) >= 'a' && (ch | 32) <= 'z') || (ch >= '0' && ch <= '9') || (unsigned char)ch >= 0x80;
}

/* The text with each `?` outside quotes, identifiers, comments and dollar quoting replaced
 * by $1, $2, ...; *n: how many. */
static char *translate(const char *in, size_t len, int *n) {
  char *out = malloc(len * 4 + 1);   /* "?" -> "$NNN" at most 4x for any realistic count */
  if (!out) return NULL;
  size_t o = 0, i = 0;
  *n = 0;
  while (i < len) {
    char ch = in[i];
    if (ch == '\'' || ch == '"') {
      size_t j = i + 1;
      while (j < len && in[j] != ch) j++;
      j = j < len ? j + 1 : len;   /* '' inside a literal: two literals back to back, same scan */
      memcpy(out + o, in + i, j - i);
      o += j - i;
      i = j;
    } else if (ch == '-' && i + 1 < len && in[i + 1] == '-') {
      size_t j = i;
      while (j < len && in[j] != '\n') j++;
      memcpy(out + o, in + i, j - i);
      o += j - i;
      i = j;
    } else if (ch == '/' && i + 1 < len && in[i + 1] == '*') {
      size_t j = i + 2;
      while (j + 1 < len && !(in[j] == '*' && in[j + 1] == '/')) j++;
      j = j + 1 < len ? j + 2 : len;
      memcpy(out + o, in + i, j - i);
      o += j - i;
      i = j;
    } else if (ch == '$' && (i == 0 || !ident(in[i - 1]))) {
      /* $tag$ ... $tag$ (tag: letters, digits, _; not starting with a digit) */
      size_t j = i + 1;
      while (j < len && ident(in[j])) j++;
      if (j < len && in[j] == '$' && !(i + 1 < len && in[i + 1] >= '0' && in[i + 1] <= '9')) {
        size_t tag = j + 1 - i, k = j + 1;
        while (k + tag <= len && memcmp(in + k, in + i, tag) != 0) k++;
        k = k + tag <= len ? k + tag : len;
        memcpy(out + o, in + i, k - i);
        o += k - i;
        i = k;
      } else {
        out[o++] = ch;
        i++;
      }
    } else if (ch == '?') {
      if (*n >= 999) { free(out); *n = -1; return NULL; }
      o += (size_t)sprintf(out + o, "$%d", ++*n);
      i++;
    } else {
      out[o++] = ch;
      i++;
    }
  }
  out[o] = '\0';
  return out;
}

static int pg_prepare(sql_conn *c, sql_stmt *s) {
  int n = 0;
  char *text = translate(s->text, s->len, &n);
  if (!text) return sql_error(c, n < 0 ? "more than 999 parameters" : "out of memory");
  snprintf(s->name, sizeof s->name, "giro_%lu", ++c->next_name);
  PGresult *r = PQprepare(PG(c), s->name, text, 0, NULL);
  free(text);
  if (!r) return pg_fail(c, PQerrorMessage(PG(c)));
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    pg_fail(c, PQresultErrorMessage(r));
    PQclear(r);
    s->name[0] = '\0';
    return SQL_ERROR;
  }
  PQclear(r);
  s->nparams = n;
  return SQL_OK;
}

static void pg_finalize(sql_conn *c, sql_stmt *s) {
  if (RES(s)) PQclear(RES(s));
  s->res = NULL;
  if (s->name[0] && c->h && !c->lost && PQstatus(PG(c)) == CONNECTION_OK) {
    char q[64];
    snprintf(q, sizeof q, "DEALLOCATE %s", s->name);
    PGresult *r = PQexec(PG(c), q);
    /* refused inside an aborted transaction: the statement then stays on the server until
     * the connection closes, which is harmless (its name is never used again) */
    if (r) PQclear(r);
  }
  s->name[0] = '\0';
}

/* the n values at base as libpq parameters, in c's scratch arrays */
static int params(lua_State *L, sql_conn *c, int base, int n) {
  if (sql_scratch(c, n) != SQL_OK) return SQL_ERROR;
  for (int i = 0; i < n; i++) {
    int idx = base + i;
    c->fmts[i] = 0;
    c->lens[i] = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: c->vals[i] = NULL; break;
    case LUA_TBOOLEAN: c->vals[i] = lua_toboolean(L, idx) ? "t" : "f"; break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) snprintf(c->nums[i], sizeof c->nums[i], "%lld", (long long)lua_tointeger(L, idx));
      else snprintf(c->nums[i], sizeof c->nums[i], "%.17g", (double)lua_tonumber(L, idx));
      c->vals[i] = c->nums[i];
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *p = lua_tolstring(L, idx, &len);
      if (len > 0x7fffffff) return sql_error(c, "parameter %d: string too long", i + 1);
      c->vals[i] = p;
      c->lens[i] = (int)len;
      /* text format cannot carry a NUL; binary is the bytes as they are (BYTEA takes them,
       * TEXT refuses them with the server's encoding error) */
      if (memchr(p, '\0', len)) c->fmts[i] = 1;
      break;
    }
    default:
      return sql_error(c, "parameter %d is a %s (expected nil, boolean, number or string)", i + 1, luaL_typename(L, idx));
    }
  }
  return SQL_OK;
}

static int result_ok(PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static int pg_run(lua_State *L, sql_conn *c, sql_stmt *s, int base, int transient) {
  (void)transient;   /* PQexecPrepared reads the values before it returns */
  if (params(L, c, base, s->nparams) != SQL_OK) return SQL_ERROR;
  PGresult *r = PQexecPrepared(PG(c), s->name, s->nparams, c->vals, c->lens, c->fmts, 0);
  if (!r) return pg_fail(c, PQerrorMessage(PG(c)));
  if (!result_ok(r)) {
    pg_fail(c, PQresultErrorMessage(r));
    PQclear(r);
    return SQL_ERROR;
  }
  s->res = r;
  s->row = -1;
  s->nrows = PQntuples(r);
  return SQL_OK;
}

static int pg_step(sql_conn *c, sql_stmt *s) {
  (void)c;
  if (!RES(s) || s->row + 1 >= s->nrows) return SQL_DONE;
  s->row++;
  return SQL_ROW;
}

static void push_value(lua_State *L, PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col)) { lua_pushnil(L); return; }
  const char *v = PQgetvalue(r, row, col);
  size_t len = (size_t)PQgetlength(r, row, col);
  switch (PQftype(r, col)) {
  case INT2OID: case INT4OID: case INT8OID: case OIDOID:
    lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
    break;
  case FLOAT4OID: case FLOAT8OID:
    lua_pushnumber(L, strtod(v, NULL));   /* also NaN, Infinity, -Infinity */
    break;
  case BOOLOID: lua_pushboolean(L, v[0] == 't'); break;
  case BYTEAOID: {
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)v, &n);
    if (!b) { luaL_error(L, "giro.sql: out of memory"); return; }
    lua_pushlstring(L, (const char *)b, n);
    PQfreemem(b);
    break;
  }
  default: lua_pushlstring(L, v, len);   /* text, numeric (as written: never a double), ... */
  }
}

static void pg_push_row(lua_State *L, sql_conn *c, sql_stmt *s, int named) {
  (void)c;
  PGresult *r = RES(s);
  int n = PQnfields(r);
  lua_createtable(L, named ? 0 : n, named ? n : 0);
  for (int i = 0; i < n; i++) {
    push_value(L, r, s->row, i);
    if (named) lua_setfield(L, -2, PQfname(r, i));
    else lua_rawseti(L, -2, i + 1);
  }
}

static long long pg_changes(sql_conn *c, sql_stmt *s) {
  (void)c;
  if (!RES(s)) return 0;
  return strtoll(PQcmdTuples(RES(s)), NULL, 10);
}

static void pg_reset(sql_conn *c, sql_stmt *s) {
  (void)c;
  if (RES(s)) PQclear(RES(s));
  s->res = NULL;
}

/* read until the pipeline's sync (1) or until nothing more can come (0: the connection is
 * bad, or two NULLs in a row: no query pending) */
static int to_sync(sql_conn *c) {
  int nulls = 0;
  while (PQstatus(PG(c)) == CONNECTION_OK && nulls < 2) {
    PGresult *r = PQgetResult(PG(c));
    if (!r) { nulls++; continue; }
    nulls = 0;
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC) return 1;
  }
  return 0;
}

/* read the results of sent queries (first = the 1-based row of the first) and the sync */
static int drain(sql_conn *c, int sent, long long first, long long *changed, long long *bad) {
  int rc = SQL_OK;
  for (int i = 0; i < sent; i++) {
    PGresult *r = PQgetResult(PG(c));
    if (!r) {   /* the connection is gone (or libpq lost count): what is left is read below */
      if (rc == SQL_OK) { pg_fail(c, PQerrorMessage(PG(c))); *bad = first + i; }
      rc = SQL_ERROR;
      break;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      *changed += strtoll(PQcmdTuples(r), NULL, 10);
    } else if (rc == SQL_OK) {   /* the first failure; the rest answer PGRES_PIPELINE_ABORTED */
      pg_fail(c, st == PGRES_PIPELINE_ABORTED ? "aborted" : PQresultErrorMessage(r));
      *bad = first + i;
      rc = SQL_ERROR;
    }
    PQclear(r);
    r = PQgetResult(PG(c));   /* NULL: the end of this query's results */
    if (r) PQclear(r);
  }
  if (!to_sync(c) && rc == SQL_OK) {
    pg_fail(c, PQerrorMessage(PG(c)));
    *bad = first + sent - 1;
    rc = SQL_ERROR;
  }
  return rc;
}

static int pg_batch(lua_State *L, sql_conn *c, sql_stmt *s, int rows, long long *changed, long long *bad) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, rows);
  *changed = 0;
  *bad = 0;
  if (n == 0) return SQL_OK;
  if (!PQenterPipelineMode(PG(c))) return pg_fail(c, PQerrorMessage(PG(c)));
  int rc = SQL_OK;
  for (lua_Integer start = 1; start <= n && rc == SQL_OK; start += PIPE_CHUNK) {
    int sent = 0;
    for (lua_Integer r = start; r <= n && r < start + PIPE_CHUNK; r++) {
      int top = lua_gettop(L);
      int bad_row = 0;
      if (lua_rawgeti(L, rows, r) != LUA_TTABLE) {
        sql_error(c, "not a table of values");
        bad_row = 1;
      } else if ((lua_Integer)lua_rawlen(L, top + 1) > s->nparams) {
        sql_error(c, "%d values for %d parameters", (int)lua_rawlen(L, top + 1), s->nparams);
        bad_row = 1;
      } else {
        for (int i = 1; i <= s->nparams; i++) lua_rawgeti(L, top + 1, i);
        if (params(L, c, top + 2, s->nparams) != SQL_OK) bad_row = 1;
        else if (!PQsendQueryPrepared(PG(c), s->name, s->nparams, c->vals, c->lens, c->fmts, 0)) {
          pg_fail(c, PQerrorMessage(PG(c)));
          bad_row = 1;
        } else sent++;
      }
      lua_settop(L, top);
      if (bad_row) { *bad = r; rc = SQL_ERROR; break; }
    }
    /* a row refused before sending (a bad value): what was sent is still synchronised and
     * read; the message and row stay those of the refused row (sql.c marks the transaction
     * failed, so it cannot be committed) */
    if (rc == SQL_ERROR) {
      char keep[SQL_MSG];
      long long keep_bad = *bad, ignored = 0;
      memcpy(keep, c->msg, sizeof keep);
      if (PQpipelineSync(PG(c))) (void)drain(c, sent, start, changed, &ignored);
      memcpy(c->msg, keep, sizeof keep);
      *bad = keep_bad;
      break;
    }
    if (!PQpipelineSync(PG(c))) { pg_fail(c, PQerrorMessage(PG(c))); *bad = start; rc = SQL_ERROR; break; }
    rc = drain(c, sent, start, changed, bad);
  }
  /* results still pending (a failed sync, a lost connection) keep libpq in pipeline mode,
   * where every later PQexec is refused: the connection is then of no further use */
  if (!PQexitPipelineMode(PG(c))) {
    c->lost = 1;
    if (rc == SQL_OK) return pg_fail(c, PQerrorMessage(PG(c)));
  }
  return rc;
}

static int pg_simple(sql_conn *c, const char *text) {
  PGresult *r = PQexec(PG(c), text);
  if (!r) return pg_fail(c, PQerrorMessage(PG(c)));
  int ok = result_ok(r);
  if (!ok) pg_fail(c, PQresultErrorMessage(r));
  PQclear(r);
  return ok ? SQL_OK : SQL_ERROR;
}

static int pg_in_transaction(sql_conn *c) {
  PGTransactionStatusType st = PQtransactionStatus(PG(c));
  return st == PQTRANS_INTRANS || st == PQTRANS_INERROR || st == PQTRANS_ACTIVE;
}

static int pg_aborted(sql_conn *c) { return PQtransactionStatus(PG(c)) == PQTRANS_INERROR; }

static const sql_backend sql_postgres = {
  "postgres", pg_open, pg_close, pg_prepare, pg_finalize, pg_run, pg_step, pg_push_row,
  pg_changes, pg_reset, pg_batch, pg_simple, pg_in_transaction, pg_aborted,
};

/* giro.sql_pg: the PostgreSQL backend as a module of its own, so that libpq (and the
 * Kerberos, LDAP, ... libraries it links) load only when a PostgreSQL database is opened.
 * require("giro.sql_pg") returns the backend's table of functions (a light userdata),
 * which giro.sql's open uses. */
int luaopen_giro_sql_pg(lua_State *L);
int luaopen_giro_sql_pg(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&sql_postgres);
  return 1;
}
