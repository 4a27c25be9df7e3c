/*
 * giro.url — URL and application/x-www-form-urlencoded encoding (WHATWG rules:
 * '+' is a space when decoding, only ALPHA DIGIT - . _ ~ stay as they are).
 * Linked into the executable (no libcurl), so commands that only build or
 * check form data load nothing else.
 *
 *   url.urlencode(s)        -> percent-encoded s (space as %20)
 *   url.urldecode(s)        -> decoded s ('+' is a space) | nil, message
 *   url.form_encode(list)   -> "a=1&b=2" from { {name, value}, ... } (space as '+')
 *   url.parse_query(s)      -> { {name, value}, ... } | nil, message
 *   url.parse_query_map(s)  -> { name = value }, pairs | nil, message [, name]
 *
 * Each function names itself in its messages by its upvalue 1 ("giro.url.
 * form_encode"), so giro.http re-exports the same C functions under its own
 * names (see http/client.c) without a copy of this code.
 *
 * parse_query and parse_query_map skip one leading '?' and empty segments; a
 * segment without '=' is a name with an empty value.  parse_query_map refuses
 * a name given twice (nil, "duplicate parameter NAME", NAME): a map cannot keep
 * both, and silently keeping one is how parameter-pollution bugs start.
 */
#include <string.h>
#include "giro.h"

static const char HEX[] = "0123456789ABCDEF";

/* the name a function shows in its messages (its upvalue 1) */
#define FNAME(L) lua_tostring((L), lua_upvalueindex(1))

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Append s percent-encoded; form = 1 writes spaces as '+'. */
static void add_encoded(luaL_Buffer *b, const char *s, size_t n, int form)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            luaL_addchar(b, (char)c);
        } else if (form && c == ' ') {
            luaL_addchar(b, '+');
        } else {
            luaL_addchar(b, '%');
            luaL_addchar(b, HEX[c >> 4]);
            luaL_addchar(b, HEX[c & 15]);
        }
    }
}

/* Push the decoded s ('+' as space) and return 1, or push nothing and
 * return 0 with the offending byte offset (1-based) in *bad.  Text without
 * '%' or '+' is pushed as it is (the common case: no buffer). */
static int push_decoded(lua_State *L, const char *s, size_t n, size_t *bad)
{
    if (memchr(s, '%', n) == NULL && memchr(s, '+', n) == NULL) {
        lua_pushlstring(L, s, n);
        return 1;
    }
    int plain = 1;
    for (size_t i = 0; i < n; i++) {     /* validate first: no half-built buffer */
        if (s[i] == '%') {
            if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0
                || hexval((unsigned char)s[i + 2]) < 0) {
                *bad = i + 1;
                return 0;
            }
            i += 2;
            plain = 0;
        } else if (s[i] == '+') {
            plain = 0;
        }
    }
    if (plain) {
        lua_pushlstring(L, s, n);
        return 1;
    }
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n);  /* decoding never grows */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            out[k++] = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    luaL_pushresultsize(&b, k);
    return 1;
}

static int push_malformed(lua_State *L, const char *fname, size_t bad)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: malformed percent escape at byte %d (expected %%XX with two hex digits)",
                    fname, (int)bad);
    return 2;
}

static int u_urlencode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_encoded(&b, s, n, 0);
    luaL_pushresult(&b);
    return 1;
}

static int u_urldecode(lua_State *L)
{
    size_t n, bad = 0;
    const char *s = luaL_checklstring(L, 1, &n);
    if (push_decoded(L, s, n, &bad))
        return 1;
    return push_malformed(L, FNAME(L), bad);
}

/* A table that must be a list: any key outside 1..#t is refused so that a
 * map passed by mistake is not silently encoded as "". */
static lua_Integer check_list(lua_State *L, int arg, const char *fname)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Integer n = (lua_Integer)luaL_len(L, arg);
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        lua_pop(L, 1);                                   /* keep the key */
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return luaL_error(L, "%s: expected a list of {name, value} pairs", fname);
        }
    }
    return n;
}

/* Pair i of the list at arg: pushes name and value (strings; numbers are
 * converted), raising with the index on anything else. */
static void get_pair(lua_State *L, int arg, lua_Integer i, const char *fname)
{
    if (lua_rawgeti(L, arg, i) != LUA_TTABLE)
        luaL_error(L, "%s: item %d is a %s, expected {name, value}", fname, (int)i,
                   luaL_typename(L, -1));
    for (int k = 1; k <= 2; k++) {
        int t = lua_rawgeti(L, -k, k);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "%s: item %d: %s is a %s, expected a string", fname, (int)i,
                       k == 1 ? "name" : "value", luaL_typename(L, -1));
        lua_tostring(L, -1);                             /* numbers to strings in place */
    }
    lua_remove(L, -3);                                   /* [name, value] */
}

/* Push "a=1&b=2" for the list at arg. */
static void form_encode_list(lua_State *L, int arg, const char *fname)
{
    lua_Integer n = check_list(L, arg, fname);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
        /* luaL_Buffer keeps a slot on the stack: fetch the pair, copy it into
         * a plain string on top, then add from there. */
        get_pair(L, arg, i, fname);                      /* [..buf, name, value] */
        size_t nn, vn;
        const char *name = lua_tolstring(L, -2, &nn);
        const char *value = lua_tolstring(L, -1, &vn);
        luaL_Buffer piece;
        luaL_buffinit(L, &piece);
        if (i > 1)
            luaL_addchar(&piece, '&');
        add_encoded(&piece, name, nn, 1);
        luaL_addchar(&piece, '=');
        add_encoded(&piece, value, vn, 1);
        luaL_pushresult(&piece);                         /* [..buf, name, value, piece] */
        lua_replace(L, -3);                              /* [..buf, piece, value] */
        lua_pop(L, 1);                                   /* [..buf, piece] */
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
}

static int u_form_encode(lua_State *L)
{
    form_encode_list(L, 1, FNAME(L));
    return 1;
}

/* Walk the segments of the query string at index 1, pushing the decoded name
 * and value of each and calling add(L, ud) with them on top (add pops them).
 * Returns 0, or the 1-based offset of a malformed escape. */
typedef int (*pair_fn)(lua_State *L, void *ud);

static size_t each_pair(lua_State *L, pair_fn add, void *ud)
{
    size_t n, bad = 0;
    const char *const start = luaL_checklstring(L, 1, &n);
    const char *const end = start + n;
    const char *s = start;
    if (s < end && *s == '?')
        s++;
    for (const char *stop; s < end; s = stop + (stop < end)) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        stop = amp ? amp : end;
        if (stop == s)                                   /* empty segment: skip */
            continue;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        const char *nend = eq ? eq : stop;
        const char *v = eq ? eq + 1 : stop;
        if (!push_decoded(L, s, (size_t)(nend - s), &bad))
            return bad + (size_t)(s - start);
        if (!push_decoded(L, v, (size_t)(stop - v), &bad)) {
            lua_pop(L, 1);
            return bad + (size_t)(v - start);
        }
        if (!add(L, ud))
            return 0;
    }
    return 0;
}

typedef struct { int list; lua_Integer count; int dup; } pairs_acc;

static int add_to_list(lua_State *L, void *ud)           /* [list, name, value] */
{
    pairs_acc *a = ud;
    lua_createtable(L, 2, 0);
    lua_rotate(L, -3, 1);                                /* [list, pair, name, value] */
    lua_rawseti(L, -3, 2);
    lua_rawseti(L, -2, 1);
    lua_rawseti(L, a->list, ++a->count);
    return 1;
}

static int u_parse_query(lua_State *L)
{
    lua_settop(L, 1);
    lua_newtable(L);                                     /* [s, list] */
    pairs_acc a = { 2, 0, 0 };
    size_t bad = each_pair(L, add_to_list, &a);
    if (bad)
        return push_malformed(L, FNAME(L), bad);
    return 1;
}

static int add_to_map(lua_State *L, void *ud)            /* [map, name, value] */
{
    pairs_acc *a = ud;
    lua_pushvalue(L, -2);
    if (lua_rawget(L, a->list) != LUA_TNIL) {            /* [map, name, value, old] */
        lua_pop(L, 2);                                   /* [map, name] */
        a->dup = 1;
        return 0;
    }
    lua_pop(L, 1);
    lua_rawset(L, a->list);
    a->count++;
    return 1;
}

static int u_parse_query_map(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int amps = 0;                                        /* size the map once */
    for (const char *p = s; (p = memchr(p, '&', (size_t)(s + n - p))) != NULL; p++)
        amps++;
    lua_settop(L, 1);
    lua_createtable(L, 0, amps + 1);                     /* [s, map] */
    pairs_acc a = { 2, 0, 0 };
    size_t bad = each_pair(L, add_to_map, &a);
    if (bad)
        return push_malformed(L, FNAME(L), bad);
    if (a.dup) {                                         /* [s, map, name] */
        lua_pushnil(L);
        lua_pushfstring(L, "duplicate parameter %s", lua_tostring(L, 3));
        lua_pushvalue(L, 3);
        return 3;
    }
    lua_pushinteger(L, a.count);
    return 2;
}

static const luaL_Reg url_funcs[] = {
    { "urlencode", u_urlencode },
    { "urldecode", u_urldecode },
    { "form_encode", u_form_encode },
    { "parse_query", u_parse_query },
    { "parse_query_map", u_parse_query_map },
    { NULL, NULL }
};

int luaopen_giro_url(lua_State *L)
{
    luaL_newlibtable(L, url_funcs);
    for (const luaL_Reg *f = url_funcs; f->name; f++) {
        lua_pushfstring(L, "giro.url.%s", f->name);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    return 1;
}
