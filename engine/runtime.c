/*
 * The Lua host: one state per process (rule sandboxes live inside it, see
 * sandbox.c), the giro modules registered in package.preload, and the paths
 * to giro's own Lua library and rules, found relative to the executable so
 * giro runs from any directory and after `make install`.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lualib.h>
#include "giro.h"

/* The modules linked into the executable; the sandbox grants rules a subset by
 * name.  giro.xml and giro.http are shared objects found through package.cpath
 * (see the Makefile for why). */
static const luaL_Reg giro_modules[] = {
    { "giro.hash",       luaopen_giro_hash },
    { "giro.checkdigit", luaopen_giro_checkdigit },
    { "giro.url",        luaopen_giro_url },
    { "giro.record",     luaopen_giro_record },
    { "giro.sandbox",    luaopen_giro_sandbox },
    { "giro.readline",   luaopen_giro_readline },
    { "giro.fs",         luaopen_giro_fs },
    { NULL, NULL }
};

/* Allocator with exact accounting (nsize - osize; ptr == NULL means osize is
 * a type tag, not a size) so that a rule's memory can be capped. */
void *giro_allocf(void *ud, void *ptr, size_t osize, size_t nsize)
{
    giro_alloc *ga = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        ga->used -= old;
        return NULL;
    }
    /* written so that no sum can wrap: nsize may be anything Lua asks for */
    if (ga->limit && nsize > old
        && (ga->used >= ga->limit || nsize - old > ga->limit - ga->used)) {
        ga->refused = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p != NULL) {
        ga->used = ga->used - old + nsize;
        if (nsize > old)
            ga->churn += nsize - old;
    }
    return p;
}

int giro_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {                      /* error object is not a string */
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        if (lua_type(L, 1) == LUA_TTABLE)   /* structured errors pass through */
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

/* The first of the candidate directories (printf patterns over the
 * executable's directory) that holds `probe`, made absolute. */
static int find_dir(const char *exedir, const char *const *candidates, size_t ncand,
                    const char *probe, char *out, size_t n)
{
    for (size_t i = 0; i < ncand; i++) {
        char dir[PATH_MAX + 32], path[PATH_MAX + 96], real[PATH_MAX];
        snprintf(dir, sizeof dir, candidates[i], exedir);
        snprintf(path, sizeof path, "%s/%s", dir, probe);
        if (file_exists(path) && realpath(dir, real) != NULL) {
            snprintf(out, n, "%s", real);
            return 0;
        }
    }
    return -1;
}

/* Where giro's lua/ and rules/ are (root) and its C modules (moddir):
 *   source tree:  ./giro            -> .            and ./build/lib
 *   sanitizer:    build/asan/giro   -> ../..        and build/asan/lib
 *   installed:    PREFIX/bin/giro   -> ../share/giro and ../lib/giro   */
static int find_dirs(const char *argv0, char *root, char *moddir, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        if (realpath(argv0, exe) == NULL)
            return -1;
    } else {
        exe[len] = '\0';
    }
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    static const char *const roots[] = { "%s", "%s/../share/giro", "%s/../.." };
    static const char *const mods[] = { "%s/build/lib", "%s/lib", "%s/../lib/giro" };
    if (find_dir(exe, roots, 3, "lua/giro/cli/init.lua", root, n) != 0)
        snprintf(root, n, "%s/share/giro", GIRO_PREFIX);
    if (find_dir(exe, mods, 3, "giro/http.so", moddir, n) != 0)
        snprintf(moddir, n, "%s/lib/giro", GIRO_PREFIX);
    return 0;
}

/* Remove the entries of package[field] that start with "./": Lua's default
 * path and cpath end with "./?.lua;./?/init.lua" and "./?.so", so any module
 * name found nowhere else (a mistyped command is `require("giro.cli.<word>")`,
 * an optional dependency that is not installed) would load a file from the
 * working directory, and giro is run in directories holding files from
 * outside (bank responses, biller uploads).  The package table is at -1. */
static void drop_cwd_entries(lua_State *L, const char *field)
{
    lua_getfield(L, -1, field);                         /* [package, old] */
    const char *p = lua_tostring(L, -1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);                               /* [package, old, buf] */
    int n = 0;
    while (p != NULL && *p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && !(len >= 2 && p[0] == '.' && p[1] == '/')) {
            if (n++ > 0)
                luaL_addchar(&b, ';');
            luaL_addlstring(&b, p, len);
        }
        p += len + (end ? 1 : 0);
    }
    luaL_pushresult(&b);                                /* [package, old, new] */
    lua_setfield(L, -3, field);
    lua_pop(L, 1);
}

/* 1 when a's modification time is at or after b's. */
static int not_older(const struct stat *a, const struct stat *b)
{
    if (a->st_mtim.tv_sec != b->st_mtim.tv_sec)
        return a->st_mtim.tv_sec > b->st_mtim.tv_sec;
    return a->st_mtim.tv_nsec >= b->st_mtim.tv_nsec;
}

/* A package.searchers entry placed before Lua's own: giro's library modules
 * ("giro.*") from the bytecode cache that `make` builds (tools/compile-lua.lua),
 * but only when the cached chunk is at least as new as its source and no
 * GIRO_PATH directory overrides the module; anything else falls through to the
 * normal source search.  Upvalues: root, cache dir, GIRO_PATH dirs (a table). */
static int bytecode_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *root = lua_tostring(L, lua_upvalueindex(1));
    const char *cache = lua_tostring(L, lua_upvalueindex(2));
    char rel[256];
    size_t n = strlen(name);
    if (strncmp(name, "giro.", 5) != 0 || n >= sizeof rel)
        return 0;
    for (size_t i = 0; i <= n; i++)
        rel[i] = name[i] == '.' ? '/' : name[i];
    static const char *const suffixes[] = { ".lua", "/init.lua" };
    char src[PATH_MAX], bc[PATH_MAX];
    struct stat ss, bs;
    lua_Integer ndirs = (lua_Integer)lua_rawlen(L, lua_upvalueindex(3));
    for (lua_Integer d = 1; d <= ndirs; d++) {          /* a user's override wins */
        lua_rawgeti(L, lua_upvalueindex(3), d);
        const char *dir = lua_tostring(L, -1);
        for (int k = 0; k < 2; k++) {
            snprintf(src, sizeof src, "%s/lua/%s%s", dir, rel, suffixes[k]);
            if (stat(src, &ss) == 0)
                return 0;
        }
        lua_pop(L, 1);
    }
    for (int k = 0; k < 2; k++) {
        snprintf(src, sizeof src, "%s/lua/%s%s", root, rel, suffixes[k]);
        if (stat(src, &ss) != 0)
            continue;
        int len = snprintf(bc, sizeof bc, "%s/%s%s", cache, rel, suffixes[k]);
        if (len < 0 || (size_t)len >= sizeof bc || stat(bc, &bs) != 0 || !not_older(&bs, &ss))
            return 0;
        if (luaL_loadfilex(L, bc, "b") != LUA_OK) {      /* unusable cache: use the source */
            lua_pop(L, 1);
            return 0;
        }
        lua_pushstring(L, src);
        return 2;
    }
    return 0;
}

/* Insert the bytecode searcher at package.searchers[2] (after preload) when a
 * cache exists: <root>/build/luac (source tree) or <root>/luac (installed). */
static void add_bytecode_searcher(lua_State *L, int package, const char *root, int dirs)
{
    static const char *const caches[] = { "%s/build/luac", "%s/luac" };
    char cache[PATH_MAX + 16];
    struct stat st;
    for (int i = 0; i < 2; i++) {
        int len = snprintf(cache, sizeof cache, caches[i], root);
        if (len > 0 && (size_t)len < sizeof cache && stat(cache, &st) == 0 && S_ISDIR(st.st_mode)) {
            lua_getfield(L, package, "searchers");      /* [.., searchers] */
            lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
            for (lua_Integer k = n; k >= 2; k--) {
                lua_rawgeti(L, -1, k);
                lua_rawseti(L, -2, k + 1);
            }
            lua_pushstring(L, root);
            lua_pushstring(L, cache);
            lua_createtable(L, 0, 0);                   /* GIRO_PATH dirs without root */
            lua_Integer nd = (lua_Integer)lua_rawlen(L, dirs) - 1;
            for (lua_Integer k = 1; k <= nd; k++) {
                lua_rawgeti(L, dirs, k);
                lua_rawseti(L, -2, k);
            }
            lua_pushcclosure(L, bytecode_searcher, 3);
            lua_rawseti(L, -2, 2);
            lua_pop(L, 1);
            return;
        }
    }
}

/* package.path = GIRO_PATH entries, giro's library, then Lua's default (so
 * Debian's busted, lua-socket and cjson load with a plain require) without its
 * "./" entries; package.cpath = giro's C modules, then Lua's default without "./". */
static void set_paths(lua_State *L, const char *root, const char *moddir)
{
    lua_getglobal(L, "package");                        /* [package] */
    drop_cwd_entries(L, "path");
    drop_cwd_entries(L, "cpath");
    lua_newtable(L);                                    /* [package, dirs] */
    int ndirs = 0;
    const char *gp = getenv("GIRO_PATH");
    for (const char *p = gp ? gp : ""; *p; ) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            lua_pushlstring(L, p, len);
            lua_rawseti(L, -2, ++ndirs);
        }
        p += len + (end ? 1 : 0);
    }
    lua_pushstring(L, root);
    lua_rawseti(L, -2, ++ndirs);

    /* path = "<d>/lua/?.lua;<d>/lua/?/init.lua;" for each dir, then the default */
    for (int i = 1; i <= ndirs; i++) {
        lua_rawgeti(L, -1 - (i - 1), i);                /* [package, dirs, parts..., d] */
        const char *d = lua_tostring(L, -1);
        lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", d, d);
        lua_remove(L, -2);
    }
    lua_getfield(L, -1 - ndirs - 1, "path");
    lua_concat(L, ndirs + 1);                           /* [package, dirs, path] */
    lua_setfield(L, -3, "path");                        /* [package, dirs] */
    lua_getfield(L, -2, "cpath");
    lua_pushfstring(L, "%s/?.so;%s", moddir, lua_tostring(L, -1));
    lua_setfield(L, -4, "cpath");
    lua_pop(L, 1);                                      /* [package, dirs] */
    add_bytecode_searcher(L, lua_absindex(L, -2), root, lua_absindex(L, -1));

    /* giro.host: read-only facts about this process for the Lua library */
    lua_newtable(L);                                    /* [package, dirs, host] */
    lua_pushliteral(L, GIRO_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, root);
    lua_setfield(L, -2, "root");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "dirs");     /* GIRO_PATH entries, then root */
    lua_getfield(L, -3, "loaded");                      /* [package, dirs, host, loaded] */
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "giro.host");
    lua_pop(L, 4);
}

lua_State *giro_newstate(giro_alloc *ga, const char *argv0, char *err, size_t errlen)
{
    char root[PATH_MAX], moddir[PATH_MAX];
    if (find_dirs(argv0, root, moddir, sizeof root) != 0) {
        snprintf(err, errlen, "cannot find giro's Lua library next to the executable");
        return NULL;
    }
    lua_State *L = lua_newstate(giro_allocf, ga);
    if (L == NULL) {
        snprintf(err, errlen, "cannot create a Lua state: out of memory");
        return NULL;
    }
    luaL_openlibs(L);
    giro_bound_strings(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const luaL_Reg *m = giro_modules; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);
    set_paths(L, root, moddir);
    return L;
}
