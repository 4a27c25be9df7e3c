/* giro.sql: giro's own SQL binding, over libsqlite3 (sqlite.c) and libpq (pg.c).
 *
 *   local sql = require("giro.sql")
 *   local conn, err, kind = sql.open("register.db")      -- or "sqlite:PATH", "postgres://...",
 *                                                          -- "host=... dbname=..."
 *   conn:exec("INSERT INTO t (k, v) VALUES (?, ?)", "a", 42)      --> rows changed
 *   for row in conn:rows("SELECT k, v FROM t WHERE v > ?", 1) do print(row.k, row.v) end
 *   conn:first("SELECT count(*) AS n FROM t")                      --> { n = 1 } or nil
 *   conn:batch("INSERT INTO t (k, v) VALUES (?, ?)", { { "b", 1 }, { "c", 2 } })   --> 2
 *   conn:begin() ... conn:commit()  /  conn:rollback()
 *
 * This file: the Lua API, the per-connection cache of prepared statements (keyed by the
 * SQL text, least recently used evicted beyond SQL_CACHE), transactions.  Every value
 * reaches the server as a bound parameter; statement errors raise "TEXT (in: SQL)" with
 * the server's text; open failures return nil, message, "env" without the password. */
#include "sql/sql.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MT "giro.sql.conn"
#define CURSOR_MT "giro.sql.cursor"
#define SQL_CACHE 128

typedef struct {
  sql_conn *c;
  sql_stmt *s;
  int named, done;
} cursor;

static sql_conn *check_conn(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (!c->h) luaL_error(L, "giro.sql: the connection is closed");
  if (c->lost) luaL_error(L, "giro.sql: connection lost (reopen the database)");
  return c;
}

/* raise the connection's message for the statement text at index sql */
static int fail(lua_State *L, sql_conn *c, int sql, const char *prefix) {
  if (c->in_tx) c->failed = 1;
  size_t len;
  const char *text = lua_tolstring(L, sql, &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (prefix) luaL_addstring(&b, prefix);
  luaL_addstring(&b, c->msg);
  luaL_addstring(&b, " (in: ");
  luaL_addlstring(&b, text, len > 200 ? 200 : len);
  luaL_addstring(&b, len > 200 ? "...)" : ")");
  luaL_pushresult(&b);
  return lua_error(L);
}

static void unlink_stmt(sql_conn *c, sql_stmt *s) {
  if (s->prev) s->prev->next = s->next; else c->head = s->next;
  if (s->next) s->next->prev = s->prev; else c->tail = s->prev;
  s->prev = s->next = NULL;
}

static void push_front(sql_conn *c, sql_stmt *s) {
  s->prev = NULL;
  s->next = c->head;
  if (c->head) c->head->prev = s; else c->tail = s;
  c->head = s;
}

static void free_stmt(sql_stmt *s) {
  free(s->text);
  free(s);
}

/* The prepared statement for the SQL text at index sql (cached; a fresh uncached one when
 * the cached one is being stepped by a cursor).  Raises on a prepare error. */
static sql_stmt *get_stmt(lua_State *L, sql_conn *c, int sql) {
  size_t len;
  const char *text = luaL_checklstring(L, sql, &len);
  lua_getiuservalue(L, 1, 1);                       /* cache */
  int cache = lua_gettop(L);
  lua_pushvalue(L, sql);
  sql_stmt *s = lua_rawget(L, cache) == LUA_TLIGHTUSERDATA ? lua_touserdata(L, -1) : NULL;
  lua_pop(L, 1);
  if (s && !s->busy) {
    c->hits++;
    if (c->head != s) { unlink_stmt(c, s); push_front(c, s); }
    lua_pop(L, 1);
    return s;
  }
  if (!s && memchr(text, '\0', len)) {
    lua_pop(L, 1);
    luaL_error(L, "giro.sql: a NUL byte in the statement text");
    return NULL;
  }
  int cache_it = s == NULL;
  s = calloc(1, sizeof *s);
  char *copy = s ? malloc(len + 1) : NULL;
  if (!copy) { free(s); lua_pop(L, 1); luaL_error(L, "giro.sql: out of memory"); return NULL; }
  memcpy(copy, text, len);
  copy[len] = '\0';
  s->text = copy;
  s->len = len;
  if (c->be->prepare(c, s) != SQL_OK) {
    free_stmt(s);
    lua_pop(L, 1);
    fail(L, c, sql, NULL);
    return NULL;
  }
  c->prepares++;
  push_front(c, s);
  if (cache_it) {
    if (c->ncached >= SQL_CACHE) {   /* evict the least recently used statement not in use */
      for (sql_stmt *old = c->tail; old; old = old->prev) {
        if (old->cached && !old->busy) {
          lua_pushlstring(L, old->text, old->len);
          lua_pushnil(L);
          lua_rawset(L, cache);
          unlink_stmt(c, old);
          c->be->finalize(c, old);
          free_stmt(old);
          c->ncached--;
          break;
        }
      }
    }
    s->cached = 1;
    c->ncached++;
    lua_pushvalue(L, sql);
    lua_pushlightuserdata(L, s);
    lua_rawset(L, cache);
  }
  lua_pop(L, 1);
  return s;
}

/* done with a run of s (a cursor's or a call's) */
static void release(sql_conn *c, sql_stmt *s) {
  if (!c->h) { free_stmt(s); return; }   /* closed meanwhile: finalised and unlinked there */
  c->be->reset(c, s);
  s->busy = 0;
  if (!s->cached) {
    unlink_stmt(c, s);
    c->be->finalize(c, s);
    free_stmt(s);
  }
}

/* raises (after releasing s: an uncached copy would leak) on a wrong argument count */
static void check_args(lua_State *L, sql_conn *c, sql_stmt *s, int nargs) {
  if (nargs == s->nparams) return;
  luaL_where(L, 1);
  lua_pushfstring(L, "giro.sql: %d argument(s) for %d parameter(s) in: %s", nargs, s->nparams, s->text);
  lua_concat(L, 2);
  release(c, s);
  lua_error(L);
}

/* run s with the arguments from index 3 on; raises (after releasing s) on an error */
static void run(lua_State *L, sql_conn *c, sql_stmt *s, int transient) {
  s->busy = 1;
  if (c->be->run(L, c, s, 3, transient) != SQL_OK) {
    release(c, s);
    fail(L, c, 2, NULL);
  }
}

static int l_exec(lua_State *L) {
  sql_conn *c = check_conn(L);
  sql_stmt *s = get_stmt(L, c, 2);
  check_args(L, c, s, lua_gettop(L) - 2);
  run(L, c, s, 0);
  int rc, rows = 0;
  while ((rc = c->be->step(c, s)) == SQL_ROW) rows = 1;
  if (rc == SQL_ERROR) { release(c, s); return fail(L, c, 2, NULL); }
  long long n = rows ? 0 : c->be->changes(c, s);
  release(c, s);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int l_first(lua_State *L) {
  sql_conn *c = check_conn(L);
  sql_stmt *s = get_stmt(L, c, 2);
  check_args(L, c, s, lua_gettop(L) - 2);
  run(L, c, s, 0);
  int rc = c->be->step(c, s);
  if (rc == SQL_ERROR) { release(c, s); return fail(L, c, 2, NULL); }
  if (rc == SQL_ROW) c->be->push_row(L, c, s, 1); else lua_pushnil(L);
  release(c, s);
  return 1;
}

static void cursor_done(cursor *k) {
  if (!k->done) {
    k->done = 1;
    release(k->c, k->s);
  }
}

static int cursor_next(lua_State *L) {
  cursor *k = luaL_checkudata(L, lua_upvalueindex(1), CURSOR_MT);
  if (k->done) return 0;
  if (!k->c->h) { cursor_done(k); return luaL_error(L, "giro.sql: the connection is closed"); }
  int rc = k->c->be->step(k->c, k->s);
  if (rc == SQL_ROW) {
    k->c->be->push_row(L, k->c, k->s, k->named);
    return 1;
  }
  if (rc == SQL_ERROR) {
    if (k->c->in_tx) k->c->failed = 1;
    lua_pushfstring(L, "%s (in: %s)", k->c->msg, k->s->text);
    cursor_done(k);
    return lua_error(L);
  }
  cursor_done(k);
  return 0;
}

static int cursor_gc(lua_State *L) {
  cursor_done(luaL_checkudata(L, 1, CURSOR_MT));
  return 0;
}

static int rows(lua_State *L, int named) {
  sql_conn *c = check_conn(L);
  sql_stmt *s = get_stmt(L, c, 2);
  check_args(L, c, s, lua_gettop(L) - 2);
  cursor *k = lua_newuserdatauv(L, sizeof *k, 1);
  k->c = c;
  k->s = s;
  k->named = named;
  k->done = 1;   /* until run succeeds */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);                    /* the cursor keeps its connection alive */
  luaL_setmetatable(L, CURSOR_MT);
  lua_insert(L, 3);                               /* conn, sql, cursor, args... */
  int ud = 3;
  s->busy = 1;
  if (c->be->run(L, c, s, 4, 1) != SQL_OK) {
    release(c, s);
    return fail(L, c, 2, NULL);
  }
  k->done = 0;
  lua_pushvalue(L, ud);
  lua_pushcclosure(L, cursor_next, 1);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, ud);                            /* closing value: a `break` releases it */
  return 4;
}

static int l_rows(lua_State *L) { return rows(L, 1); }
static int l_arrays(lua_State *L) { return rows(L, 0); }

static int l_batch(lua_State *L) {
  sql_conn *c = check_conn(L);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  sql_stmt *s = get_stmt(L, c, 2);
  int own = !c->be->in_transaction(c);
  if (own && c->be->simple(c, "BEGIN") != SQL_OK) { release(c, s); return fail(L, c, 2, NULL); }
  s->busy = 1;
  long long changed = 0, bad = 0;
  int rc = c->be->batch(L, c, s, 3, &changed, &bad);
  release(c, s);
  if (rc != SQL_OK) {
    char where[48];
    snprintf(where, sizeof where, "row %lld: ", bad);
    if (own) {
      char keep[SQL_MSG];
      memcpy(keep, c->msg, sizeof keep);
      (void)c->be->simple(c, "ROLLBACK");   /* its own error would only hide the row's */
      memcpy(c->msg, keep, sizeof keep);
    }
    return fail(L, c, 2, where);
  }
  if (own && c->be->simple(c, "COMMIT") != SQL_OK) {
    char keep[SQL_MSG];
    memcpy(keep, c->msg, sizeof keep);
    if (c->be->in_transaction(c)) (void)c->be->simple(c, "ROLLBACK");
    memcpy(c->msg, keep, sizeof keep);
    return fail(L, c, 2, NULL);
  }
  lua_pushinteger(L, (lua_Integer)changed);
  return 1;
}

static int simple_or_raise(lua_State *L, sql_conn *c, const char *text) {
  if (c->be->simple(c, text) != SQL_OK) {
    lua_pushstring(L, text);
    return fail(L, c, lua_gettop(L), NULL);
  }
  return 0;
}

static int l_begin(lua_State *L) {
  sql_conn *c = check_conn(L);
  const char *text = luaL_optstring(L, 2, "BEGIN");
  if (c->be->in_transaction(c)) return luaL_error(L, "giro.sql: begin: a transaction is already open");
  c->in_tx = 0;
  simple_or_raise(L, c, text);
  c->in_tx = 1;
  c->failed = 0;
  return 0;
}

static int l_commit(lua_State *L) {
  sql_conn *c = check_conn(L);
  if (c->failed || c->be->aborted(c)) {
    /* PostgreSQL answers COMMIT of an aborted transaction with a quiet ROLLBACK */
    c->in_tx = c->failed = 0;
    if (c->be->in_transaction(c)) simple_or_raise(L, c, "ROLLBACK");
    return luaL_error(L, "a statement of this transaction failed: rolled back, nothing committed");
  }
  c->in_tx = 0;
  if (!c->be->in_transaction(c)) return luaL_error(L, "giro.sql: commit: no transaction is open");
  if (c->be->simple(c, "COMMIT") != SQL_OK) {
    char keep[SQL_MSG];
    memcpy(keep, c->msg, sizeof keep);
    if (c->be->in_transaction(c)) (void)c->be->simple(c, "ROLLBACK");
    memcpy(c->msg, keep, sizeof keep);
    lua_pushstring(L, "COMMIT");
    return fail(L, c, lua_gettop(L), NULL);
  }
  return 0;
}

static int l_rollback(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (!c->h) return luaL_error(L, "giro.sql: the connection is closed");
  c->in_tx = c->failed = 0;
  /* a lost connection has nothing left to roll back: the server drops the transaction
   * with the session (an error handler's rollback must not hide the first error) */
  if (c->lost) return 0;
  if (c->be->in_transaction(c)) simple_or_raise(L, c, "ROLLBACK");
  return 0;
}

static int l_in_transaction(lua_State *L) {
  sql_conn *c = check_conn(L);
  lua_pushboolean(L, c->be->in_transaction(c));
  return 1;
}

static int l_stats(lua_State *L) {
  sql_conn *c = check_conn(L);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)c->prepares);
  lua_setfield(L, -2, "prepares");
  lua_pushinteger(L, (lua_Integer)c->hits);
  lua_setfield(L, -2, "hits");
  lua_pushinteger(L, c->ncached);
  lua_setfield(L, -2, "cached");
  return 1;
}

static int l_backend(lua_State *L) {
  sql_conn *c = luaL_checkudata(L, 1, CONN_MT);
  lua_pushstring(L, c->be->name);
  return 1;
}

static void close_conn(sql_conn *c) {
  if (!c->h) return;
  sql_stmt *s = c->head;
  while (s) {
    sql_stmt *next = s->next;
    c->be->reset(c, s);
    c->be->finalize(c, s);
    if (s->busy) { s->prev = s->next = NULL; s->cached = 0; }   /* its cursor frees it */
    else free_stmt(s);
    s = next;
  }
  c->head = c->tail = NULL;
  c->ncached = 0;
  c->be->close(c);
  c->h = NULL;
  free(c->vals);
  free(c->lens);
  free(c->fmts);
  free(c->nums);
  c->vals = NULL;
  c->lens = c->fmts = NULL;
  c->nums = NULL;
  c->cap = 0;
}

static int l_close(lua_State *L) {
  close_conn(luaL_checkudata(L, 1, CONN_MT));
  return 0;
}

static int l_open(lua_State *L) {
  size_t len;
  const char *url = luaL_checklstring(L, 1, &len);
  if (strlen(url) != len) {
    lua_pushnil(L);
    lua_pushstring(L, "a NUL byte in the database name");
    lua_pushstring(L, "usage");
    return 3;
  }
  const sql_backend *be = &sql_sqlite;
  const char *target = url;
  int pg = 0;
  if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) pg = 1;
  else if (strncmp(url, "sqlite:", 7) == 0) target = url + 7;
  else {   /* libpq's key=value form: it starts with a keyword and = */
    const char *p = url;
    while (*p == ' ' || *p == '\t') p++;
    const char *w = p;
    while (*p == '_' || ((*p | 32) >= 'a' && (*p | 32) <= 'z') || (p > w && *p >= '0' && *p <= '9')) p++;
    while (*p == ' ' || *p == '\t') p++;
    if (p > w && *p == '=') pg = 1;
  }
  if (pg) {   /* libpq and its dependencies load only for a PostgreSQL database */
    lua_getglobal(L, "require");
    lua_pushstring(L, "giro.sql_pg");
    lua_call(L, 1, 1);
    be = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!be) return luaL_error(L, "giro.sql: giro.sql_pg did not return its backend");
  }
  sql_conn *c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  c->be = be;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  if (be->open(c, target) != SQL_OK) {
    lua_pushnil(L);
    lua_pushstring(L, c->msg);
    lua_pushstring(L, "env");
    return 3;
  }
  luaL_setmetatable(L, CONN_MT);
  return 1;
}

static const luaL_Reg conn_methods[] = {
  { "exec", l_exec }, { "first", l_first }, { "rows", l_rows }, { "arrays", l_arrays },
  { "batch", l_batch }, { "begin", l_begin }, { "commit", l_commit }, { "rollback", l_rollback },
  { "in_transaction", l_in_transaction }, { "stats", l_stats }, { "backend", l_backend },
  { "close", l_close }, { NULL, NULL },
};

int luaopen_giro_sql(lua_State *L) {
  if (luaL_newmetatable(L, CONN_MT)) {
    luaL_newlib(L, conn_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, CURSOR_MT)) {
    lua_pushcfunction(L, cursor_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, cursor_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
