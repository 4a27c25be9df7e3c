/*
 * Bounded pattern matching: string.find, string.match, string.gmatch and
 * string.gsub with Lua 5.4's semantics, written for giro so that the work a
 * match does is charged to the running sandboxed call (engine/sandbox.c).
 * Lua's own matcher never returns to the interpreter while it backtracks, so
 * ("a"):rep(2000):find(".-.-.-b") would hold a rule inside one C call far past
 * its instruction budget; here every MATCH_TICK steps of the matcher (and the
 * bytes a plain find scans) are charged, and the budget stops it like any
 * loop.  Outside a sandboxed call the functions behave exactly like Lua's.
 *
 * giro_bound_strings() installs them in the `string` table when the state is
 * made (runtime.c), so rule code, method calls on strings and giro's own
 * library all use the same functions.  It also wraps the few other library
 * functions whose C work grows with their argument without allocating
 * (utf8.len/offset/codepoint, tonumber of a string, table.insert/remove/sort/
 * move) so that they charge that work before they run; what allocates is
 * charged by the allocator (sandbox.c).
 */
#include <ctype.h>
#include <string.h>
#include "giro.h"

enum {
    MAX_CAPTURES = 32,      /* as LUA_MAXCAPTURES */
    MAX_DEPTH = 200,        /* recursion of the matcher (as MAXCCALLS) */
    MATCH_TICK = 1024,      /* steps between two charges */
    STEPS_PER_INSN = 4,     /* matcher steps that cost one instruction */
    SCAN_PER_INSN = 64      /* bytes of a plain find that cost one instruction */
};
#define CAP_OPEN (-1)       /* capture opened, not yet closed */
#define CAP_POSITION (-2)   /* a () position capture */

typedef struct matcher {
    lua_State *L;
    const char *src, *src_end;   /* the subject */
    const char *pat_end;
    int depth;
    int level;                   /* captures opened so far */
    unsigned steps;              /* since the last charge */
    struct { const char *init; ptrdiff_t len; } cap[MAX_CAPTURES];
} matcher;

static void charge_steps(matcher *m)
{
    m->steps = 0;
    giro_sandbox_charge(m->L, MATCH_TICK / STEPS_PER_INSN);
}

/* one step of the matcher: every call of do_match and every character a
 * repetition takes or gives back (the plain characters of one call are
 * bounded by the pattern's length) */
static inline void tick(matcher *m)
{
    if (++m->steps >= MATCH_TICK)
        charge_steps(m);
}

/* a character class letter (%a, %d, ...; upper case is the complement) */
static int class_matches(int c, int cl)
{
    int r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    case 'z': r = c == 0; break;      /* deprecated, still in Lua 5.4 */
    default: return cl == c;
    }
    if (isupper(cl))
        r = !r;
    return r != 0;
}

/* the end of the single-character item at p ('x', '%x', '.', '[set]') */
static const char *item_end(matcher *m, const char *p)
{
    char c = *p++;
    if (c == '%') {
        if (p >= m->pat_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^')
            p++;
        /* the first character of a set is itself even when it is ']' */
        do {
            if (p >= m->pat_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == '%' && p < m->pat_end)
                p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* does c belong to the set from '[' at p to its ']' at close? */
static int set_matches(int c, const char *p, const char *close)
{
    int yes = 1;
    p++;
    if (*p == '^') {
        yes = 0;
        p++;
    }
    while (p < close) {
        if (*p == '%') {
            p++;
            if (class_matches(c, (unsigned char)*p))
                return yes;
            p++;
        } else if (p[1] == '-' && p + 2 < close) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return yes;
            p += 3;
        } else {
            if ((unsigned char)*p == c)
                return yes;
            p++;
        }
    }
    return !yes;
}

static int item_matches(matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->src_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return class_matches(c, (unsigned char)p[1]);
    case '[': return set_matches(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

static const char *do_match(matcher *m, const char *s, const char *p);

/* item* and item+ (after the first): longest run first, then back off */
static const char *greedy(matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t n = 0;
    while (item_matches(m, s + n, p, ep)) {
        n++;
        tick(m);
    }
    for (; n >= 0; n--) {
        const char *r = do_match(m, s + n, ep + 1);
        if (r != NULL)
            return r;
        tick(m);
    }
    return NULL;
}

/* item-: shortest run first */
static const char *lazy(matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = do_match(m, s, ep + 1);
        if (r != NULL)
            return r;
        if (!item_matches(m, s, p, ep))
            return NULL;
        s++;
        tick(m);
    }
}

static const char *open_capture(matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->level].init = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *r = do_match(m, s, p);
    if (r == NULL)
        m->level--;
    return r;
}

static const char *close_capture(matcher *m, const char *s, const char *p)
{
    int l = m->level - 1;
    while (l >= 0 && m->cap[l].len != CAP_OPEN)
        l--;
    if (l < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[l].len = s - m->cap[l].init;
    const char *r = do_match(m, s, p);
    if (r == NULL)
        m->cap[l].len = CAP_OPEN;
    return r;
}

/* %bxy at s: the balanced run from x to its matching y */
static const char *balanced(matcher *m, const char *s, const char *p)
{
    if (p + 1 >= m->pat_end)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != p[0])
        return NULL;
    int depth = 1;
    while (++s < m->src_end) {
        tick(m);
        if (*s == p[1]) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == p[0]) {
            depth++;
        }
    }
    return NULL;
}

static int capture_index(matcher *m, int c)
{
    int l = c - '1';
    if (l < 0 || l >= m->level || m->cap[l].len == CAP_OPEN)
        return luaL_error(m->L, "invalid capture index %%%d", l + 1);
    return l;
}

static const char *do_match(matcher *m, const char *s, const char *p)
{
    if (++m->depth > MAX_DEPTH)
        luaL_error(m->L, "pattern too complex");
    tick(m);
    while (p < m->pat_end && s != NULL) {
        if (*p == '(') {
            s = p[1] == ')' ? open_capture(m, s, p + 2, CAP_POSITION)
                            : open_capture(m, s, p + 1, CAP_OPEN);
            break;
        }
        if (*p == ')') {
            s = close_capture(m, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == m->pat_end) {
            if (s != m->src_end)
                s = NULL;
            break;
        }
        if (*p == '%' && p + 1 < m->pat_end && p[1] == 'b') {
            s = balanced(m, s, p + 2);
            p += 4;
            continue;
        }
        if (*p == '%' && p + 1 < m->pat_end && p[1] == 'f') {
            p += 2;
            if (*p != '[')
                luaL_error(m->L, "missing '[' after '%%f' in pattern");
            const char *ep = item_end(m, p);
            int before = s == m->src ? 0 : (unsigned char)s[-1];
            int here = s < m->src_end ? (unsigned char)*s : 0;
            if (!set_matches(before, p, ep - 1) && set_matches(here, p, ep - 1))
                p = ep;
            else
                s = NULL;
            continue;
        }
        if (*p == '%' && p + 1 < m->pat_end && isdigit((unsigned char)p[1])) {
            int l = capture_index(m, p[1]);
            size_t len = (size_t)m->cap[l].len;
            if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[l].init, s, len) == 0) {
                s += len;
                p += 2;
            } else {
                s = NULL;
            }
            continue;
        }
        const char *ep = item_end(m, p);
        char q = ep < m->pat_end ? *ep : '\0';
        if (q == '?') {
            if (item_matches(m, s, p, ep)) {
                const char *r = do_match(m, s + 1, ep + 1);
                if (r != NULL) {
                    s = r;
                    break;
                }
            }
            p = ep + 1;
        } else if (q == '+') {
            s = item_matches(m, s, p, ep) ? greedy(m, s + 1, p, ep) : NULL;
            break;
        } else if (q == '*') {
            s = greedy(m, s, p, ep);
            break;
        } else if (q == '-') {
            s = lazy(m, s, p, ep);
            break;
        } else if (item_matches(m, s, p, ep)) {
            s++;
            p = ep;
        } else {
            s = NULL;
        }
    }
    m->depth--;
    return s;
}

static void restart(matcher *m)
{
    m->level = 0;
    m->depth = 0;
}

/* capture i of a match from s to e (the whole match when there are none) */
static void push_capture(matcher *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->cap[i].len;
    if (len == CAP_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(m->L, (m->cap[i].init - m->src) + 1);
    else
        lua_pushlstring(m->L, m->cap[i].init, (size_t)len);
}

/* the captures (or, when s is not NULL and there are none, the whole match) */
static int push_captures(matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

static void setup(matcher *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
    m->L = L;
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    m->steps = 0;
    restart(m);
}

/* a 1-based start position as string.find takes it, made 0-based and clamped */
static size_t start_at(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 0;
    return len + (size_t)pos;
}

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (strchr("^$*+?.([%-", p[i]) != NULL && p[i] != '\0')
            return 1;
    return 0;
}

static const char *find_plain(lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
    giro_sandbox_charge(L, (lua_Integer)(ls / SCAN_PER_INSN));
    if (lp == 0)
        return s;
    if (lp > ls)
        return NULL;
    const char *end = s + (ls - lp) + 1;
    while (s < end) {
        const char *c = memchr(s, *p, (size_t)(end - s));
        if (c == NULL)
            return NULL;
        if (memcmp(c + 1, p + 1, lp - 1) == 0)
            return c;
        s = c + 1;
    }
    return NULL;
}

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_at(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *at = find_plain(L, s + init, ls - init, p, lp);
        if (at == NULL) {
            luaL_pushfail(L);
            return 1;
        }
        lua_pushinteger(L, (at - s) + 1);
        lua_pushinteger(L, (lua_Integer)((at - s) + lp));
        return 2;
    }
    matcher m;
    int anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    setup(&m, L, s, ls, p, lp);
    const char *s1 = s + init;
    do {
        restart(&m);
        const char *e = do_match(&m, s1, p);
        if (e != NULL) {
            if (find) {
                lua_pushinteger(L, (s1 - s) + 1);
                lua_pushinteger(L, e - s);
                return push_captures(&m, NULL, NULL) + 2;
            }
            return push_captures(&m, s1, e);
        }
    } while (s1++ < m.src_end && !anchor);
    luaL_pushfail(L);
    return 1;
}

static int bs_find(lua_State *L) { return find_or_match(L, 1); }
static int bs_match(lua_State *L) { return find_or_match(L, 0); }

typedef struct gmatch_state {
    size_t pos;          /* where the next search starts (0-based) */
    size_t last;         /* end of the last match + 1, 0 = none yet */
} gmatch_state;

/* upvalues: subject, pattern, state */
static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    matcher m;
    setup(&m, L, s, ls, p, lp);
    for (const char *src = s + g->pos; src <= m.src_end; src++) {
        restart(&m);
        const char *e = do_match(&m, src, p);
        if (e != NULL && (g->last == 0 || e != s + (g->last - 1))) {
            g->pos = (size_t)(e - s);
            g->last = (size_t)(e - s) + 1;
            return push_captures(&m, src, e);
        }
    }
    return 0;
}

static int bs_gmatch(lua_State *L)
{
    size_t ls;
    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = start_at(luaL_optinteger(L, 3, 1), ls);
    if (init > ls)
        init = ls + 1;
    lua_settop(L, 2);
    gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->pos = init;
    g->last = 0;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* the replacement string with %0-%9 and %% expanded, into b */
static void add_template(matcher *m, luaL_Buffer *b, const char *s, const char *e, int repl)
{
    size_t l;
    const char *r = lua_tolstring(m->L, repl, &l);
    const char *end = r + l;
    while (r < end) {
        const char *pc = memchr(r, '%', (size_t)(end - r));
        if (pc == NULL) {
            luaL_addlstring(b, r, (size_t)(end - r));
            return;
        }
        luaL_addlstring(b, r, (size_t)(pc - r));
        pc++;
        if (pc < end && *pc == '%') {
            luaL_addchar(b, '%');
        } else if (pc < end && isdigit((unsigned char)*pc)) {
            if (*pc == '0')
                luaL_addlstring(b, s, (size_t)(e - s));
            else {
                push_capture(m, *pc - '1', s, e);
                luaL_tolstring(m->L, -1, NULL);
                lua_remove(m->L, -2);
                luaL_addvalue(b);
            }
        } else {
            luaL_error(m->L, "invalid use of '%c' in replacement string", '%');
        }
        r = pc + 1;
    }
}

/* one replacement of the match s..e: returns 1 when something was added */
static void add_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e, int repl)
{
    lua_State *L = m->L;
    int t = lua_type(L, repl);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        add_template(m, b, s, e, repl);
        return;
    }
    if (t == LUA_TFUNCTION) {
        lua_pushvalue(L, repl);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else {
        push_capture(m, 0, s, e);
        lua_gettable(L, repl);
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
}

static int bs_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int t = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, t == LUA_TNUMBER || t == LUA_TSTRING || t == LUA_TFUNCTION
                     || t == LUA_TTABLE, 3, "string/function/table");
    int anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    matcher m;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    setup(&m, L, src, ls, p, lp);
    const char *last = NULL;
    lua_Integer n = 0;
    while (n < max) {
        restart(&m);
        const char *e = do_match(&m, src, p);
        if (e != NULL && e != last) {
            n++;
            add_replacement(&m, &b, src, e, 3);
            src = last = e;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
    }
    luaL_addlstring(&b, src, (size_t)(m.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

/* Other library functions whose work in C grows with their argument without
 * allocating: wrapped (the original is upvalue 1) to charge that work first.
 * Upvalue 2 says how it is measured. */
enum { COST_STRING, COST_TABLE, COST_MOVE, COST_INSERT, COST_REMOVE };

static lua_Integer log2_of(lua_Integer n)
{
    lua_Integer l = 1;
    while (n > 1) {
        n >>= 1;
        l++;
    }
    return l;
}

static int charged_call(lua_State *L)
{
    int how = (int)lua_tointeger(L, lua_upvalueindex(2));
    lua_Integer cost = 0;
    if (how == COST_STRING && lua_type(L, 1) == LUA_TSTRING) {
        size_t l;
        lua_tolstring(L, 1, &l);
        cost = (lua_Integer)(l / SCAN_PER_INSN);
    } else if (how == COST_TABLE && lua_type(L, 1) == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
        cost = n / 16 * (lua_toboolean(L, lua_upvalueindex(3)) ? log2_of(n) : 1);
    } else if ((how == COST_INSERT && lua_gettop(L) == 3) || (how == COST_REMOVE && lua_gettop(L) >= 2)) {
        /* only a position shifts elements: appending (insert(t, v)) and
         * removing the last (remove(t)) are constant time and cost nothing */
        if (lua_type(L, 1) == LUA_TTABLE && lua_isinteger(L, 2)) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, 1), pos = lua_tointeger(L, 2);
            if (pos >= 0 && pos <= n)
                cost = (n - pos) / 16;
        }
    } else if (how == COST_MOVE && lua_isinteger(L, 2) && lua_isinteger(L, 3)) {
        lua_Integer f = lua_tointeger(L, 2), e = lua_tointeger(L, 3);
        if (e >= f && f > LUA_MININTEGER / 2 && e < LUA_MAXINTEGER / 2)
            cost = (e - f) / 16;
    }
    giro_sandbox_charge(L, cost);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* table[name] = the charged version of itself */
static void charge_field(lua_State *L, const char *table, const char *name, int how, int sorts)
{
    if (lua_getglobal(L, table) != LUA_TTABLE) {       /* [t] */
        lua_pop(L, 1);
        return;
    }
    if (lua_getfield(L, -1, name) != LUA_TFUNCTION) {  /* [t, f] */
        lua_pop(L, 2);
        return;
    }
    lua_pushinteger(L, how);
    lua_pushboolean(L, sorts);
    lua_pushcclosure(L, charged_call, 3);               /* [t, wrapped] */
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static void charge_global(lua_State *L, const char *name, int how)
{
    if (lua_getglobal(L, name) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    lua_pushinteger(L, how);
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, charged_call, 3);
    lua_setglobal(L, name);
}

void giro_bound_strings(lua_State *L)
{
    charge_field(L, "utf8", "len", COST_STRING, 0);
    charge_field(L, "utf8", "offset", COST_STRING, 0);
    charge_field(L, "utf8", "codepoint", COST_STRING, 0);
    charge_field(L, "table", "insert", COST_INSERT, 0);
    charge_field(L, "table", "remove", COST_REMOVE, 0);
    charge_field(L, "table", "sort", COST_TABLE, 1);
    charge_field(L, "table", "move", COST_MOVE, 0);
    charge_global(L, "tonumber", COST_STRING);

    static const luaL_Reg funcs[] = {
        { "find", bs_find }, { "match", bs_match }, { "gmatch", bs_gmatch }, { "gsub", bs_gsub },
        { NULL, NULL }
    };
    lua_getglobal(L, "string");                         /* [string] */
    lua_createtable(L, 0, 4);                           /* [string, lua's] */
    for (const luaL_Reg *f = funcs; f->name; f++) {
        lua_getfield(L, -2, f->name);
        lua_setfield(L, -2, f->name);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "giro.lua_string");  /* for the differential spec */
    luaL_setfuncs(L, funcs, 0);
    lua_pop(L, 1);
}
