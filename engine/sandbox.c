/*
 * giro.sandbox — run a function under an instruction budget and a memory cap,
 * in the engine's own lua_State (no marshalling; see lua/giro/rules.lua for
 * the environment a rule file gets).
 *
 *   sandbox.call(budget, memcap, fn, ...)  -> fn's results, or raises the error
 *   sandbox.pcall(budget, memcap, fn, ...) -> true, results... | false, error[, where]
 *   sandbox.memory()                       -> bytes in use, current limit (0 = none)
 *   sandbox.charge(n)                      -> charge n instructions to the running call
 *   sandbox.tripped()                      -> true once the running call is over its limits
 *   sandbox.xpcall(f, handler, ...)        -> xpcall whose handler is skipped once tripped
 *
 * pcall's `where` ("FILE:LINE") comes with an error value that is not a
 * string: the innermost line of Lua code that raised it.
 *
 * budget: instructions for this call (0 = no budget); memcap: bytes the state
 * may grow during this call (0 = no cap).  Calls nest: an inner call never
 * gets more than its caller has left.
 *
 * Instructions are counted by a count hook every PERIOD instructions.  When
 * the budget runs out the hook raises "FILE:LINE: instruction budget of N
 * exceeded" at the running line and re-arms itself on every instruction, so
 * a pcall inside the rule cannot swallow it (after redis's luaMaskCountHook).
 *
 * Work done inside C functions is charged too: every CHURN_PER_INSN bytes
 * the state allocates cost one instruction (concatenation, string.rep,
 * table.concat cannot run long without allocating), and giro's own pattern
 * functions (strbound.c) charge their matcher steps and scanned bytes, so a
 * backtracking pattern or a plain find over 30 MB in a loop is stopped by the
 * same budget as a Lua loop.
 *
 * A CPU-time deadline (see DEADLINE_BASE_NS) backs both up for C work that
 * is neither charged nor allocating.
 *
 * Memory is capped through giro_alloc (engine/giro.h): during the call the
 * allocator refuses to grow past start + cap + cap/4 (a hard stop for a
 * single huge allocation), and the hook reports growth past start + cap at
 * the running line.  An allocation the allocator refused is reported as
 * "FILE:LINE: memory cap of N bytes exceeded" with the file and first line
 * of the called function (the allocator cannot know the line).
 *
 * The frame of the running call lives on the C stack of sandbox.call; the
 * registry holds a pointer to it under the address of FRAME_KEY, so there is
 * no mutable C global.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "giro.h"

enum { PERIOD = 1000, SRC_MAX = 1024, MSG_MAX = 2400, CHURN_PER_INSN = 16, NESTED_COST = 100 };
enum { TRIP_NONE, TRIP_BUDGET, TRIP_MEMORY, TRIP_TIME };

/* The CPU-time deadline of a call with a budget: DEADLINE_BASE_NS plus
 * DEADLINE_PER_INSN_NS per instruction of the budget (3 s for the default 10
 * million, which a Lua loop uses up in well under 0.1 s).  It is the
 * backstop for C work that neither allocates nor is charged (utf8.len or a
 * comparison of two 30 MB strings in a loop), checked in the hook and by
 * giro_sandbox_charge. */
#define DEADLINE_BASE_NS 1000000000LL
#define DEADLINE_PER_INSN_NS 200LL

static const char FRAME_KEY = 'f';  /* its address keys the registry */

typedef struct sb_frame {
    struct sb_frame *prev;
    giro_alloc *ga;
    lua_Integer budget;        /* effective budget, 0 = none */
    lua_Integer budget_shown;  /* the budget named in the message */
    lua_Integer count;         /* instructions counted so far */
    int period;
    size_t soft, hard;         /* soft: reported cap; hard: allocator limit */
    size_t cap_shown;
    int tripped;
    size_t churn0;             /* ga->churn when the call started */
    long long deadline;        /* CPU time (ns) the call must end by, 0 = none */
    long long deadline_shown;  /* its length in ns, for the message */
    char fnsrc[SRC_MAX];       /* source of the called function ("@path") */
    int fnline;                /* its first line (1 for a main chunk) */
    char msg[MSG_MAX];
    char errwhere[SRC_MAX + 32]; /* "FILE:LINE" where a non-string error was raised */
} sb_frame;

static sb_frame *current_frame(lua_State *L)
{
    sb_frame *f;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &FRAME_KEY);      /* [frame?] */
    f = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return f;
}

static const char *plain_source(const char *source, const char *short_src)
{
    return source[0] == '@' ? source + 1 : short_src;
}

/* "FILE:LINE: what" at the running line; when the running code is not from
 * the called function's file (a helper the rule called), also name the
 * innermost line of that file on the stack. */
static void describe(lua_State *L, sb_frame *f, lua_Debug *ar, const char *what)
{
    lua_getinfo(L, "Sl", ar);
    int n = snprintf(f->msg, sizeof f->msg, "%.1024s:%d: %.96s",
                     plain_source(ar->source, ar->short_src), ar->currentline, what);
    if (strcmp(ar->source, f->fnsrc) == 0 || n < 0 || (size_t)n >= sizeof f->msg)
        return;
    lua_Debug d;
    for (int level = 1; lua_getstack(L, level, &d); level++) {
        lua_getinfo(L, "Sl", &d);
        if (strcmp(d.source, f->fnsrc) == 0) {
            snprintf(f->msg + n, sizeof f->msg - (size_t)n, " (called from %.1024s:%d)",
                     plain_source(d.source, d.short_src), d.currentline);
            return;
        }
    }
}

static long long cpu_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;                   /* no clock: the deadline never passes */
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int past_deadline(const sb_frame *f)
{
    if (f->deadline == 0)
        return 0;
    long long now = cpu_now();
    return now != 0 && now > f->deadline;
}

static void trip(lua_State *L, sb_frame *f, lua_Debug *ar, int why)
{
    char what[96];
    if (why == TRIP_BUDGET)
        snprintf(what, sizeof what, "instruction budget of %lld exceeded",
                 (long long)f->budget_shown);
    else if (why == TRIP_TIME)
        snprintf(what, sizeof what, "CPU time limit of %.1f s exceeded (instruction budget %lld)",
                 (double)f->deadline_shown / 1e9, (long long)f->budget_shown);
    else
        snprintf(what, sizeof what, "memory cap of %zu bytes exceeded", f->cap_shown);
    describe(L, f, ar, what);
    f->tripped = why;
}

/* Bytes allocated since the last look, charged as instructions: C functions
 * that copy (concatenation, string.rep, table.concat, gsub) cannot run long
 * without allocating, so their work is paid for by the budget. */
static void charge_churn(sb_frame *f)
{
    size_t now = f->ga->churn;
    if (now > f->churn0) {
        f->count += (lua_Integer)((now - f->churn0) / CHURN_PER_INSN);
        f->churn0 = now - (now - f->churn0) % CHURN_PER_INSN;
    }
}

static void sb_hook(lua_State *L, lua_Debug *ar)
{
    sb_frame *f = current_frame(L);
    if (f == NULL)
        return;
    if (!f->tripped) {
        f->count += f->period;
        charge_churn(f);
        if (f->budget && f->count >= f->budget) {
            trip(L, f, ar, TRIP_BUDGET);
        } else if (past_deadline(f)) {
            trip(L, f, ar, TRIP_TIME);
        } else if (f->soft) {
            if (f->ga->refused) {           /* the rule swallowed a refusal */
                trip(L, f, ar, TRIP_MEMORY);
            } else if (f->ga->used > f->soft) {
                lua_gc(L, LUA_GCCOLLECT);   /* count live data, not garbage */
                if (f->ga->used > f->soft)
                    trip(L, f, ar, TRIP_MEMORY);
            }
        }
        if (!f->tripped)
            return;
        /* from now on fire on every instruction: pcall cannot swallow it */
        lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
    }
    lua_pushstring(L, f->msg);
    lua_error(L);
}

static lua_Integer check_limit(lua_State *L, int arg)
{
    lua_Integer n = luaL_checkinteger(L, arg);
    luaL_argcheck(L, n >= 0, arg, "must be 0 (no limit) or positive");
    return n;
}

/* Message handler of the protected call: for an error value that is not a
 * string (a table, say) note the file and line of the innermost Lua code that
 * raised it, so that the message can name them; the value passes unchanged. */
static int sb_msgh(lua_State *L)
{
    sb_frame *f = current_frame(L);
    if (f == NULL || f->tripped || lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER)
        return 1;
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) {
            snprintf(f->errwhere, sizeof f->errwhere, "%.1024s:%d",
                     plain_source(ar.source, ar.short_src), ar.currentline);
            break;
        }
    }
    return 1;
}

/* Run the function at index 3 with the arguments above it under the limits
 * at indices 1 and 2.  Leaves either the results (returns their count) or
 * the error value (returns -1) on top of the stack, above index 2. */
static int run_limited(lua_State *L)
{
    lua_Integer budget = check_limit(L, 1);
    lua_Integer memcap = check_limit(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    void *ud;
    if (lua_getallocf(L, &ud) != giro_allocf)
        return luaL_error(L, "giro.sandbox: the state does not use giro's allocator");

    sb_frame f;
    memset(&f, 0, sizeof f);
    f.ga = ud;
    f.churn0 = f.ga->churn;
    f.prev = current_frame(L);

    lua_Debug ar;
    lua_pushvalue(L, 3);
    lua_getinfo(L, ">S", &ar);
    snprintf(f.fnsrc, sizeof f.fnsrc, "%s", ar.source);
    f.fnline = ar.linedefined > 0 ? ar.linedefined : 1;

    f.budget = f.budget_shown = budget;
    if (f.prev && f.prev->budget) {
        lua_Integer left = f.prev->budget - f.prev->count;
        if (left < 1)
            left = 1;
        if (f.budget == 0 || left < f.budget) {
            f.budget = left;
            f.budget_shown = f.prev->budget_shown;
        }
    }
    f.period = (f.budget && f.budget < PERIOD) ? (int)f.budget : PERIOD;
    if (budget) {
        f.deadline_shown = DEADLINE_BASE_NS + (long long)budget * DEADLINE_PER_INSN_NS;
        long long now = cpu_now();
        f.deadline = now ? now + f.deadline_shown : 0;
    }
    if (f.prev && f.prev->deadline && (f.deadline == 0 || f.prev->deadline < f.deadline)) {
        f.deadline = f.prev->deadline;
        f.deadline_shown = f.prev->deadline_shown;
    }

    size_t cap = (size_t)memcap;
    f.cap_shown = cap;
    if (cap) {
        f.soft = f.ga->used + cap;
        f.hard = f.soft + cap / 4;
    }
    if (f.prev && f.prev->soft && (f.soft == 0 || f.prev->soft < f.soft)) {
        f.soft = f.prev->soft;
        f.hard = f.prev->hard;
        f.cap_shown = f.prev->cap_shown;
    }

    /* publish the frame first: this is the only step that may raise */
    lua_pushlightuserdata(L, &f);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &FRAME_KEY);

    lua_Hook old_hook = lua_gethook(L);
    int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
    size_t old_limit = f.ga->limit;
    int old_refused = f.ga->refused;

    lua_pushcfunction(L, sb_msgh);
    lua_insert(L, 3);                   /* [budget, memcap, msgh, fn, args...] */
    lua_sethook(L, sb_hook, LUA_MASKCOUNT, f.period);
    f.ga->refused = 0;
    f.ga->limit = f.hard;
    int status = lua_pcall(L, lua_gettop(L) - 4, LUA_MULTRET, 3);
    int refused = f.ga->refused;
    f.ga->limit = old_limit;
    f.ga->refused = old_refused;
    lua_sethook(L, old_hook, old_mask, old_count);
    if (f.prev) {
        /* the caller pays for the inner call, at least NESTED_COST: restoring
         * the hook restarts the caller's countdown, so a loop of short nested
         * calls (a rule's metamethod) would otherwise never reach its hook.
         * For the same reason the caller's deadline is checked here.  If the
         * caller's limits are used up, its hook trips on its next instruction. */
        f.prev->count += f.count + NESTED_COST;
        int over = (f.prev->budget && f.prev->count >= f.prev->budget) || past_deadline(f.prev);
        if ((refused || f.tripped == TRIP_MEMORY) && f.soft == f.prev->soft) {
            f.ga->refused = 1;
            over = 1;
        }
        if (over)
            lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
        lua_pushlightuserdata(L, f.prev);
    } else {
        lua_pushnil(L);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &FRAME_KEY);     /* key exists: no allocation */

    if (f.tripped) {
        if (f.tripped == TRIP_MEMORY)
            lua_gc(L, LUA_GCCOLLECT);
        lua_pushstring(L, f.msg);
        return -1;
    }
    if (refused) {   /* a refused allocation, even if the rule caught it */
        lua_gc(L, LUA_GCCOLLECT);
        snprintf(f.msg, sizeof f.msg, "%.1024s:%d: memory cap of %zu bytes exceeded",
                 plain_source(f.fnsrc, "?"), f.fnline, f.cap_shown);
        lua_pushstring(L, f.msg);
        return -1;
    }
    if (status != LUA_OK) {
        if (f.errwhere[0] && lua_type(L, -1) != LUA_TSTRING) {
            lua_pushstring(L, f.errwhere);
            return -2;                  /* error value, then where it was raised */
        }
        return -1;
    }
    return lua_gettop(L) - 3;
}

/* Charge n instructions of work done inside a C function to the running
 * call's budget (engine/strbound.c: pattern matching, plain find); when the
 * budget is used up, raise at the line of the Lua code that called the C
 * function, and keep raising like the hook does.  Outside a call: nothing. */
void giro_sandbox_charge(lua_State *L, lua_Integer n)
{
    sb_frame *f = current_frame(L);
    if (f == NULL || (f->budget == 0 && !f->tripped))
        return;
    if (!f->tripped) {
        f->count += n;
        charge_churn(f);
        int why = f->count >= f->budget ? TRIP_BUDGET : past_deadline(f) ? TRIP_TIME : TRIP_NONE;
        if (why == TRIP_NONE)
            return;
        lua_Debug ar;
        if (lua_getstack(L, 1, &ar))
            trip(L, f, &ar, why);
        else {
            snprintf(f->msg, sizeof f->msg, "%.1024s:%d: instruction budget of %lld exceeded",
                     plain_source(f->fnsrc, "?"), f->fnline, (long long)f->budget_shown);
            f->tripped = TRIP_BUDGET;
        }
        lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
    }
    lua_pushstring(L, f->msg);
    lua_error(L);
}

/* sandbox.tripped() -> true while the running call has used up its budget
 * or memory (a message handler of the rule's xpcall must then not run). */
static int sb_tripped(lua_State *L)
{
    sb_frame *f = current_frame(L);
    lua_pushboolean(L, f != NULL && f->tripped);
    return 1;
}

/* sandbox.charge(n): charge n instructions of work to the running call. */
static int sb_charge(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "must be 0 or positive");
    giro_sandbox_charge(L, n);
    return 0;
}

/* sandbox.lua_string() -> Lua's own find, match, gmatch and gsub (those of
 * strbound.c replaced them), for the spec that compares the two. */
static int sb_lua_string(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "giro.lua_string");
    return 1;
}

/* The message handler of sandbox.xpcall: the rule's handler (upvalue 1),
 * except once the running call is over its limits: then the limit's message
 * passes unchanged.  Lua runs a message handler inside the hook that raised
 * the error, where no hook fires, so a rule's handler that loops would
 * otherwise run unbounded. */
static int xp_msgh(lua_State *L)
{
    sb_frame *f = current_frame(L);
    if (f != NULL && f->tripped) {
        lua_pushstring(L, f->msg);
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* sandbox.xpcall(f, handler, ...): xpcall for rules (see xp_msgh). */
static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xp_msgh, 1);
    lua_replace(L, 2);                  /* [f, msgh, args...] */
    lua_pushvalue(L, 1);
    lua_insert(L, 3);                   /* [f, msgh, f, args...] */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
    lua_pushboolean(L, status == LUA_OK);
    if (status != LUA_OK) {
        lua_insert(L, -2);
        return 2;
    }
    lua_insert(L, 3);
    return lua_gettop(L) - 2;
}

static int sb_call(lua_State *L)
{
    int n = run_limited(L);
    if (n == -2)
        lua_pop(L, 1);
    if (n < 0)
        return lua_error(L);
    return n;
}

static int sb_pcall(lua_State *L)
{
    int n = run_limited(L);
    if (n < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, n - 1);           /* false, error[, where] */
        return 1 - n;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, 4);
    return n + 1;
}

static int sb_memory(lua_State *L)
{
    void *ud;
    if (lua_getallocf(L, &ud) != giro_allocf)
        return luaL_error(L, "giro.sandbox: the state does not use giro's allocator");
    giro_alloc *ga = ud;
    lua_pushinteger(L, (lua_Integer)ga->used);
    lua_pushinteger(L, (lua_Integer)ga->limit);
    return 2;
}

static const luaL_Reg sandbox_funcs[] = {
    { "call",   sb_call },
    { "pcall",  sb_pcall },
    { "memory", sb_memory },
    { "tripped", sb_tripped },
    { "charge", sb_charge },
    { "xpcall", sb_xpcall },
    { "lua_string", sb_lua_string },
    { NULL, NULL }
};

int luaopen_giro_sandbox(lua_State *L)
{
    luaL_newlib(L, sandbox_funcs);
    return 1;
}
