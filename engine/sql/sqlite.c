/* giro.sql's SQLite backend (libsqlite3): prepared statements stepped row by row. */
#include "sql/sql.h"

#include <lauxlib.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>

#define DB(c) ((sqlite3 *)(c)->h)
#define ST(s) ((sqlite3_stmt *)(s)->h)

static int lite_open(sql_conn *c, const char *target) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(target, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) {
    sql_error(c, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (db && sqlite3_close(db) != SQLITE_OK) { /* nothing else is open on it */ }
    return SQL_ERROR;
  }
  if (sqlite3_extended_result_codes(db, 1) != SQLITE_OK) {
    sql_error(c, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    return SQL_ERROR;
  }
  c->h = db;
  return SQL_OK;
}

static void lite_close(sql_conn *c) {
  /* every statement is finalised first (sql.c), so close cannot be refused as busy */
  if (c->h && sqlite3_close(DB(c)) != SQLITE_OK) sqlite3_close_v2(DB(c));
  c->h = NULL;
}

static int lite_prepare(sql_conn *c, sql_stmt *s) {
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  if (s->len > (size_t)0x7fffffff) return sql_error(c, "statement too long");
  int rc = sqlite3_prepare_v3(DB(c), s->text, (int)s->len, SQLITE_PREPARE_PERSISTENT, &st, &tail);
  if (rc != SQLITE_OK) return sql_error(c, "%s", sqlite3_errmsg(DB(c)));
  if (!st) return sql_error(c, "no statement in the text");
  while (tail && *tail && strchr(" \t\r\n;", *tail)) tail++;
  if (tail && *tail) {
    sqlite3_finalize(st);
    return sql_error(c, "more than one statement in the text");
  }
  s->h = st;
  s->nparams = sqlite3_bind_parameter_count(st);
  return SQL_OK;
}

static void lite_finalize(sql_conn *c, sql_stmt *s) {
  (void)c;
  /* finalize returns the last step's error, already reported */
  if (s->h) (void)sqlite3_finalize(ST(s));
  s->h = NULL;
}

static int lite_run(lua_State *L, sql_conn *c, sql_stmt *s, int base, int transient) {
  sqlite3_stmt *st = ST(s);
  int rc = SQLITE_OK;
  for (int i = 0; i < s->nparams && rc == SQLITE_OK; i++) {
    int idx = base + i;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: rc = sqlite3_bind_null(st, i + 1); break;
    case LUA_TBOOLEAN: rc = sqlite3_bind_int(st, i + 1, lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) rc = sqlite3_bind_int64(st, i + 1, (sqlite3_int64)lua_tointeger(L, idx));
      else {
        double d = lua_tonumber(L, idx);
        if (isnan(d)) return sql_error(c, "parameter %d is NaN (SQLite would store NULL)", i + 1);
        rc = sqlite3_bind_double(st, i + 1, d);
      }
      break;
    case LUA_TSTRING: {
      size_t n;
      const char *p = lua_tolstring(L, idx, &n);
      rc = sqlite3_bind_text64(st, i + 1, p, (sqlite3_uint64)n, transient ? SQLITE_TRANSIENT : SQLITE_STATIC, SQLITE_UTF8);
      break;
    }
    default:
      return sql_error(c, "parameter %d is a %s (expected nil, boolean, number or string)", i + 1, luaL_typename(L, idx));
    }
  }
  if (rc != SQLITE_OK) return sql_error(c, "%s", sqlite3_errmsg(DB(c)));
  return SQL_OK;
}

static int lite_step(sql_conn *c, sql_stmt *s) {
  int rc = sqlite3_step(ST(s));
  if (rc == SQLITE_ROW) return SQL_ROW;
  if (rc == SQLITE_DONE) return SQL_DONE;
  return sql_error(c, "%s", sqlite3_errmsg(DB(c)));
}

static void push_value(lua_State *L, sqlite3_stmt *st, int i) {
  switch (sqlite3_column_type(st, i)) {
  case SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, i)); break;
  case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, i)); break;
  case SQLITE_NULL: lua_pushnil(L); break;
  case SQLITE_BLOB: {
    const void *p = sqlite3_column_blob(st, i);
    lua_pushlstring(L, p ? p : "", (size_t)sqlite3_column_bytes(st, i));
    break;
  }
  default: {
    const unsigned char *p = sqlite3_column_text(st, i);
    lua_pushlstring(L, p ? (const char *)p : "", (size_t)sqlite3_column_bytes(st, i));
  }
  }
}

static void lite_push_row(lua_State *L, sql_conn *c, sql_stmt *s, int named) {
  (void)c;
  sqlite3_stmt *st = ST(s);
  int n = sqlite3_column_count(st);
  lua_createtable(L, named ? 0 : n, named ? n : 0);
  for (int i = 0; i < n; i++) {
    push_value(L, st, i);
    if (named) {
      const char *name = sqlite3_column_name(st, i);
      lua_setfield(L, -2, name ? name : "?");
    } else {
      lua_rawseti(L, -2, i + 1);
    }
  }
}

static long long lite_changes(sql_conn *c, sql_stmt *s) {
  (void)s;
  return (long long)sqlite3_changes64(DB(c));
}

static void lite_reset(sql_conn *c, sql_stmt *s) {
  (void)c;
  /* reset repeats the last step's error, already reported */
  (void)sqlite3_reset(ST(s));
}

static int lite_batch(lua_State *L, sql_conn *c, sql_stmt *s, int rows, long long *changed, long long *bad) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, rows);
  *changed = 0;
  *bad = 0;
  for (lua_Integer r = 1; r <= n; r++) {
    int top = lua_gettop(L);
    if (lua_rawgeti(L, rows, r) != LUA_TTABLE) {
      lua_settop(L, top);
      *bad = r;
      return sql_error(c, "not a table of values");
    }
    int row = lua_gettop(L);
    if ((lua_Integer)lua_rawlen(L, row) > s->nparams) {
      *bad = r;
      sql_error(c, "%d values for %d parameters", (int)lua_rawlen(L, row), s->nparams);
      lua_settop(L, top);
      return SQL_ERROR;
    }
    for (int i = 1; i <= s->nparams; i++) lua_rawgeti(L, row, i);
    int rc = lite_run(L, c, s, row + 1, 0);
    if (rc == SQL_OK) {
      do rc = lite_step(c, s); while (rc == SQL_ROW);
      if (rc == SQL_DONE) *changed += lite_changes(c, s);
    }
    lite_reset(c, s);
    lua_settop(L, top);
    if (rc == SQL_ERROR) {
      *bad = r;
      return SQL_ERROR;
    }
  }
  return SQL_OK;
}

static int lite_simple(sql_conn *c, const char *text) {
  char *err = NULL;
  if (sqlite3_exec(DB(c), text, NULL, NULL, &err) != SQLITE_OK) {
    sql_error(c, "%s", err ? err : sqlite3_errmsg(DB(c)));
    sqlite3_free(err);
    return SQL_ERROR;
  }
  return SQL_OK;
}

static int lite_in_transaction(sql_conn *c) { return !sqlite3_get_autocommit(DB(c)); }

static int lite_aborted(sql_conn *c) { (void)c; return 0; }

const sql_backend sql_sqlite = {
  "sqlite", lite_open, lite_close, lite_prepare, lite_finalize, lite_run, lite_step, lite_push_row,
  lite_changes, lite_reset, lite_batch, lite_simple, lite_in_transaction, lite_aborted,
};
