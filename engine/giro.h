/*
 * giro — the C core shared declarations.
 *
 * The core only offers general, fast primitives to Lua (hashing, XML, HTTP,
 * check digits, a sandbox, line editing).  Everything a bank or a biller
 * decides lives in Lua under lua/ and rules/.
 *
 * Conventions (after lauxlib.c and lua-cjson):
 *  - each module is one file with a luaopen_giro_<name>() registered in
 *    package.preload as "giro.<name>" (see runtime.c), never a global;
 *  - userdata get namespaced metatables ("giro.hash.ctx", ...), one check
 *    helper per class, and one idempotent function for both __gc and __close;
 *  - wrong argument types raise (luaL_argerror / luaL_error);
 *    bad data returns nil, message;
 *  - never raise while C-heap memory is in flight, never raise from inside a
 *    libxml2 or libcurl callback (record the problem, raise afterwards).
 */
#ifndef GIRO_H
#define GIRO_H

#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

#ifndef GIRO_VERSION
#define GIRO_VERSION "0.0.0"
#endif

/* The allocator's book-keeping, owned by main() and reachable from any state
 * through lua_getallocf(): the sandbox uses it to cap a rule's memory. */
typedef struct giro_alloc {
    size_t used;   /* bytes currently allocated by the state */
    size_t limit;  /* 0 = no limit; else allocations that would pass it fail */
    int refused;   /* set when an allocation was refused because of limit */
    size_t churn;  /* bytes of growth ever allocated (the sandbox charges it) */
} giro_alloc;

void *giro_allocf(void *ud, void *ptr, size_t osize, size_t nsize);

/* runtime.c: build a state with the standard libraries, the giro modules in
 * package.preload, package.path pointing at giro's Lua library and the
 * "giro.host" table (version, root, rule dirs).  Returns NULL on failure
 * with a message in err. */
lua_State *giro_newstate(giro_alloc *ga, const char *argv0, char *err, size_t errlen);

/* message handler for lua_pcall: appends a traceback to string errors */
int giro_traceback(lua_State *L);

/* sandbox.c: charge n instructions of work done in C to the running sandboxed
 * call (raises when its budget is used up; nothing outside a call). */
void giro_sandbox_charge(lua_State *L, lua_Integer n);

/* strbound.c: replace string.find, match, gmatch and gsub (the string
 * metatable's __index included) by versions that charge their work to the
 * sandbox budget, so a backtracking pattern cannot hold a rule in C. */
void giro_bound_strings(lua_State *L);

/* checkdigit.c: mod-10 check digit under cycled weights (also used by record.c) */
int giro_mod10_check(const char *s, size_t len, const unsigned char *w, size_t nw);

/* The modules of the core, in package.preload under these names. */
int luaopen_giro_hash(lua_State *L);     /* hash.c     */
int luaopen_giro_xml(lua_State *L);      /* xml/       */
int luaopen_giro_http(lua_State *L);     /* http/client.c */
int luaopen_giro_checkdigit(lua_State *L); /* checkdigit.c */
int luaopen_giro_url(lua_State *L);      /* url.c      */
int luaopen_giro_record(lua_State *L);   /* record.c   */
int luaopen_giro_sandbox(lua_State *L);  /* sandbox.c  */
int luaopen_giro_readline(lua_State *L); /* readline.c */
int luaopen_giro_fs(lua_State *L);       /* fs.c       */

#endif
