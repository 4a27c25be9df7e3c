/* giro.sql: the backend interface shared by sql.c (the Lua API, the statement cache,
 * transactions) and the two backends, sqlite.c (libsqlite3) and pg.c (libpq).
 *
 * Files: sql.c, util.c, sqlite.c make the module giro.sql (libsqlite3); pg/pg.c,
 * pg/secret.c and util.c make giro.sql_pg (libpq), loaded by giro.sql's open for a
 * PostgreSQL URL only.
 *
 * A backend works on one connection (sql_conn.h) and its prepared statements
 * (sql_stmt).  Values to bind sit on the Lua stack (base .. base + n - 1, n being the
 * statement's parameter count); rows are pushed onto it.  A backend reports a failure
 * by returning SQL_ERROR with the server's text in conn->msg (sql_error). */
#ifndef GIRO_SQL_H
#define GIRO_SQL_H

#include <lua.h>
#include <stddef.h>

enum { SQL_OK = 0, SQL_ROW = 1, SQL_DONE = 2, SQL_ERROR = -1 };

typedef struct sql_conn sql_conn;

typedef struct sql_stmt {
  struct sql_stmt *prev, *next;   /* every statement of the connection, most recently used first */
  char *text;                     /* the SQL as given (the cache key) */
  size_t len;
  int cached;                     /* in the connection's cache (else freed when released) */
  int busy;                       /* an open cursor is stepping it */
  int nparams;
  void *h;                        /* sqlite3_stmt *, or unused for PostgreSQL */
  char name[24];                  /* PostgreSQL: the server-side statement's name */
  void *res;                      /* PostgreSQL: the PGresult being read */
  int row, nrows;                 /* PostgreSQL: the row step() made current, and how many */
} sql_stmt;

typedef struct sql_backend {
  const char *name;
  /* connect to target; on failure SQL_ERROR with the (password-free) reason in c->msg */
  int (*open)(sql_conn *c, const char *target);
  void (*close)(sql_conn *c);
  /* prepare s->text into s (sets s->nparams) */
  int (*prepare)(sql_conn *c, sql_stmt *s);
  void (*finalize)(sql_conn *c, sql_stmt *s);
  /* bind the n values at base and start it (PostgreSQL executes here); transient: the
   * values must be copied (a cursor steps after its arguments left the stack) */
  int (*run)(lua_State *L, sql_conn *c, sql_stmt *s, int base, int transient);
  /* the next row: SQL_ROW, SQL_DONE or SQL_ERROR */
  int (*step)(sql_conn *c, sql_stmt *s);
  /* push the current row: a table keyed by column name (named) or an array */
  void (*push_row)(lua_State *L, sql_conn *c, sql_stmt *s, int named);
  /* rows changed by the statement just run */
  long long (*changes)(sql_conn *c, sql_stmt *s);
  /* done with this run: free the result, make the statement runnable again */
  void (*reset)(sql_conn *c, sql_stmt *s);
  /* run s once per row of the table at rows (arrays of n values); *changed: the sum;
   * on failure SQL_ERROR, *bad the 1-based index of the first row that failed (0: none) */
  int (*batch)(lua_State *L, sql_conn *c, sql_stmt *s, int rows, long long *changed, long long *bad);
  /* a statement without parameters or results (BEGIN, COMMIT, ROLLBACK) */
  int (*simple)(sql_conn *c, const char *text);
  /* is a transaction open (the server's view)? */
  int (*in_transaction)(sql_conn *c);
  /* has the server aborted the open transaction (PostgreSQL after a failed statement)? */
  int (*aborted)(sql_conn *c);
} sql_backend;

#define SQL_MSG 2048

struct sql_conn {
  const sql_backend *be;
  void *h;                        /* sqlite3 * or PGconn * */
  sql_stmt *head, *tail;          /* every statement, most recently used first */
  int ncached;
  int in_tx, failed;              /* begin() was called; a statement of it failed */
  int lost;                       /* the backend cannot run statements any more (closed next) */
  long long prepares, hits;
  unsigned long next_name;        /* PostgreSQL statement names */
  /* PostgreSQL: scratch arrays for one run's parameters */
  const char **vals;
  int *lens, *fmts;
  char (*nums)[32];
  int cap;
  char msg[SQL_MSG];
};

/* set c->msg (printf-style) and return SQL_ERROR */
int sql_error(sql_conn *c, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;

/* make room for n parameters in c's scratch arrays; SQL_ERROR when out of memory */
int sql_scratch(sql_conn *c, int n);

/* replace in buf (NUL-terminated, capacity cap) every secret of the PostgreSQL
 * connection string target by ***: the password as written and percent-decoded */
void sql_scrub(char *buf, size_t cap, const char *target);

extern const sql_backend sql_sqlite;   /* sqlite.c; PostgreSQL's is giro.sql_pg's (pg/pg.c) */

#endif
