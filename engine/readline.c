/*
 * giro.readline — line editing and history for `giro repl`, on GNU readline.
 *
 *   readline.readline(prompt)     -> line (without newline); nil at end of input;
 *                                    false when Ctrl-C cancelled the line
 *   readline.add_history(line)
 *   readline.read_history(path)   -> true | nil, message
 *   readline.write_history(path [, max_lines]) -> true | nil, message
 *   readline.isatty(fd)           -> boolean (0 = stdin, 1 = stdout)
 *
 * Ctrl-C at the prompt: while readline() waits, SIGINT goes to a handler
 * that only sets a flag; the interrupted read() returns to our input
 * function, which empties and ends the line, and readline.readline reports
 * false.  Outside the prompt SIGINT
 * keeps its usual disposition.  That flag is the one static variable here:
 * a signal handler has nowhere else to put it.  readline's own state (the
 * history list, rl_* variables) is the library's.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <readline/readline.h>
#include <readline/history.h>
#include "giro.h"

#define LINE_MT "giro.readline.line"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* readline's input function while the prompt waits: like rl_getc, but a
 * Ctrl-C ends the line at once (readline's own rl_getc would keep reading,
 * and the next keys typed would go to the cancelled line). */
static int getc_or_interrupt(FILE *in)
{
    for (;;) {
        unsigned char c;
        ssize_t n = read(fileno(in), &c, 1);
        if (n == 1)
            return c;
        if (n == 0)
            return EOF;
        if (errno != EINTR)
            return EOF;
        if (interrupted) {
            rl_replace_line("", 0);
            return '\n';
        }
        rl_check_signals();   /* e.g. a window resize readline caught */
    }
}

/* The line readline mallocs is owned by a userdata until it is a Lua string,
 * so a memory error while pushing it leaks nothing. */
typedef struct { char *line; } line_box;

static int box_gc(lua_State *L)
{
    line_box *b = luaL_checkudata(L, 1, LINE_MT);
    free(b->line);
    b->line = NULL;
    return 0;
}

static int l_readline(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "> ");
    line_box *b = lua_newuserdatauv(L, sizeof *b, 0);  /* [box] */
    b->line = NULL;
    luaL_setmetatable(L, LINE_MT);

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  /* no SA_RESTART: the read() must see EINTR */
    interrupted = 0;
    rl_catch_signals = 0;
    rl_getc_function = getc_or_interrupt;
    sigaction(SIGINT, &sa, &old);
    b->line = readline(prompt);
    sigaction(SIGINT, &old, NULL);
    rl_getc_function = rl_getc;

    if (interrupted) {
        interrupted = 0;
        free(b->line);
        b->line = NULL;
        lua_pushboolean(L, 0);
        return 1;
    }
    if (b->line == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, b->line);                         /* [box, line] */
    free(b->line);
    b->line = NULL;
    return 1;
}

static int l_add_history(lua_State *L)
{
    add_history(luaL_checkstring(L, 1));
    return 0;
}

static int history_result(lua_State *L, int err, const char *path)
{
    if (err == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
}

static int l_read_history(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    return history_result(L, read_history(path), path);
}

static int l_write_history(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, max >= 0 && max <= 1000000, 2, "must be between 0 and 1000000");
    int err = write_history(path);
    if (err == 0 && max > 0)
        err = history_truncate_file(path, (int)max);
    return history_result(L, err, path);
}

static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, fd >= 0 && fd <= 1024, 1, "not a file descriptor");
    lua_pushboolean(L, isatty((int)fd));
    return 1;
}

static const luaL_Reg readline_funcs[] = {
    { "readline",      l_readline },
    { "add_history",   l_add_history },
    { "read_history",  l_read_history },
    { "write_history", l_write_history },
    { "isatty",        l_isatty },
    { NULL, NULL }
};

int luaopen_giro_readline(lua_State *L)
{
    if (luaL_newmetatable(L, LINE_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    rl_readline_name = "giro";
    using_history();
    luaL_newlib(L, readline_funcs);
    return 1;
}
