/*
 * giro entry point: make a Lua state, hand argv to the Lua CLI (lua/giro/cli)
 * and return its exit code.  Commands themselves are Lua modules.
 */
#include <stdio.h>
#include <stdlib.h>
#include "giro.h"

enum { EXIT_ENV = 3 };  /* environment error, as in the CLI contract */

/* The error at the top as text, without running any metamethod: the message
 * handler lets tables through, and printf's %s must not get NULL. */
static const char *error_text(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    return msg ? msg : "(error object is not a string)";
}

int main(int argc, char **argv)
{
    giro_alloc ga = { 0, 0, 0, 0 };
    char err[512];
    lua_State *L = giro_newstate(&ga, argv[0], err, sizeof err);
    if (L == NULL) {
        fprintf(stderr, "giro: %s\n", err);
        return EXIT_ENV;
    }

    lua_pushcfunction(L, giro_traceback);               /* [tb] */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "giro.cli");
    if (lua_pcall(L, 1, 1, 1) != LUA_OK) {              /* [tb, err] */
        fprintf(stderr, "giro: cannot load the Lua library: %s\n", error_text(L));
        lua_close(L);
        return EXIT_ENV;
    }
    lua_getfield(L, -1, "main");                        /* [tb, cli, main] */
    lua_createtable(L, argc, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    int status = EXIT_ENV;
    if (lua_pcall(L, 1, 1, 1) != LUA_OK) {              /* [tb, cli, err|code] */
        fprintf(stderr, "giro: internal error: %s\n", error_text(L));
    } else {
        status = (int)luaL_optinteger(L, -1, 0);
    }
    lua_close(L);
    fflush(stdout);
    return status;
}
