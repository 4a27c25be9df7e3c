/* giro.sql: helpers shared by the Lua API and both backends (compiled into giro.sql and
 * into giro.sql_pg, which are separate shared objects). */
#include "sql/sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int sql_error(sql_conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof c->msg, fmt, ap);
  va_end(ap);
  return SQL_ERROR;
}

int sql_scratch(sql_conn *c, int n) {
  if (n <= c->cap) return SQL_OK;
  int cap = n < 16 ? 16 : n;
  const char **vals = realloc(c->vals, (size_t)cap * sizeof *vals);
  if (vals) c->vals = vals;
  int *lens = realloc(c->lens, (size_t)cap * sizeof *lens);
  if (lens) c->lens = lens;
  int *fmts = realloc(c->fmts, (size_t)cap * sizeof *fmts);
  if (fmts) c->fmts = fmts;
  char (*nums)[32] = realloc(c->nums, (size_t)cap * sizeof *nums);
  if (nums) c->nums = nums;
  if (!vals || !lens || !fmts || !nums) return sql_error(c, "out of memory");
  c->cap = cap;
  return SQL_OK;
}

