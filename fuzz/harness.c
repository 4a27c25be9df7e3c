/*
 * One libFuzzer harness for giro's C entry points that take untrusted bytes.
 *
 * The entry points are Lua C functions (giro.xml, giro.url, giro.record,
 * giro.checkdigit), so the harness is a Lua state with those modules in
 * package.preload and giro's Lua library on package.path; the property script
 * fuzz/NAME.lua (NAME given at build time) returns a function called with
 * each input as a Lua string.  That function checks properties (round trips,
 * agreement between two routes) and raises when one fails: the harness then
 * prints the message and aborts, which libFuzzer reports as a crash and keeps
 * the input.  Memory errors and undefined behaviour in the C code under test
 * are caught by ASan/UBSan, the engine files being compiled into the harness
 * with -fsanitize=fuzzer,address,undefined.  See docs/fuzzing.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../engine/giro.h"

#ifndef FUZZ_SCRIPT
#error "build with -DFUZZ_SCRIPT='\"/path/to/fuzz/NAME.lua\"' (make fuzz)"
#endif
#ifndef FUZZ_LUA_PATH
#error "build with -DFUZZ_LUA_PATH='\"/path/to/lua/?.lua\"' (make fuzz)"
#endif

/* libFuzzer's interface: the state lives from LLVMFuzzerInitialize on */
static lua_State *L;
static int fn_ref;
static unsigned long runs;

static void die(const char *what)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what, lua_tostring(L, -1));
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "fuzz harness: cannot create a Lua state\n");
        abort();
    }
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_giro_xml);
    lua_setfield(L, -2, "giro.xml");
    lua_pushcfunction(L, luaopen_giro_url);
    lua_setfield(L, -2, "giro.url");
    lua_pushcfunction(L, luaopen_giro_record);
    lua_setfield(L, -2, "giro.record");
    lua_pushcfunction(L, luaopen_giro_checkdigit);
    lua_setfield(L, -2, "giro.checkdigit");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushstring(L, FUZZ_LUA_PATH);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_loadfile(L, FUZZ_SCRIPT) != LUA_OK)
        die("loading " FUZZ_SCRIPT);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK)
        die("running " FUZZ_SCRIPT);
    if (!lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz harness: %s must return a function\n", FUZZ_SCRIPT);
        abort();
    }
    fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static int traceback(lua_State *l)
{
    luaL_traceback(l, l, lua_tostring(l, 1), 1);
    return 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    lua_settop(L, 0);
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 1) != LUA_OK)
        die("property failed");
    lua_settop(L, 0);
    if (++runs % 256 == 0)
        lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
