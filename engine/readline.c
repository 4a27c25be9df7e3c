/* giro.readline — placeholder until its implementation lands (see the issue). */
#include "giro.h"

int luaopen_giro_readline(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
