/*
 * giro.record — check and collect the named fields of a record in one call.
 *
 * A record layout is compiled once from a list of field specs; collecting a
 * record then reads each field from a map, checks it against the field's
 * shape and length limits, fills in fixed or default values, and stores it in
 * a list by position, without calling back into Lua.  It decides nothing
 * about any bank or biller: the layouts come from Lua (lua/giro/pay), which
 * handles every value that stops the collection (normalising it or naming the
 * problem) and then resumes.
 *
 *   local layout = record.new{
 *     { name = "SUMMA", shape = "%d+,%d%d", max = 19, required = true },
 *     { name = "VALUUTTA", fixed = "EUR", value = "EUR" },
 *     { name = "lng", shape = "[123]" },
 *     { name = "TARKISTE" },                  -- no shape: every given value stops
 *   }
 *   layout:collect(map [, out [, from]]) -> out, nil, seen | out, k, seen
 *   layout:check(k, s)                -> true | false (shape and lengths of field k)
 *   layout:size()                     -> number of fields
 *   record.count(t)                   -> number of keys in t (any kind)
 *
 * Field spec: name (string); shape (see below; without one no value is
 * accepted as it is); min, max (length limits in bytes, default 0 and none);
 * fixed (a string: the only value accepted, byte for byte; the shape is then
 * not used); value (a string stored when the field is absent); required (an
 * absent field without a value stops).
 *
 * collect fills `out` (a new table sized for the layout when nil) and walks
 * the fields from `from` (default 1): for field k it reads
 * map[name] (raw); an absent field takes its value (out[k] = value) or stops
 * if required; a present string that fits (equal to the fixed value, or
 * matching the shape within the lengths) is stored as out[k]; anything else
 * stops.  A stop returns out, k and the number of fields found present
 * before k; the end returns out, nil and the number found present.  out[k] is not touched
 * for a field that stops or is absent without a value.
 *
 * A shape is a sequence of items, each one character class followed by an
 * optional quantifier, with the syntax of Lua patterns: a literal character,
 * '.', %a %c %d %l %p %s %u %w %x (upper case: the complement), %<punct> for
 * the punctuation character itself, and sets [...] / [^...] with ranges and
 * classes; quantifiers '+' (1 or more), '*' (0 or more), '?' (0 or 1).  A
 * shape always covers the whole value (a leading '^' and trailing '$' are
 * allowed and change nothing).  Unlike Lua patterns, items never give back
 * what they matched (possessive, linear time): "%d+1" never matches, so write
 * shapes whose neighbouring items do not overlap.  Classes are ASCII (the "C"
 * locale); bytes 128-255 match only '.', complements, or explicit ranges.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include "giro.h"

#define LAYOUT_MT "giro.record.layout"

enum { UV_NAMES = 1, UV_VALUES = 2, UV_FIXED = 3 };

typedef struct {
    uint8_t set[32];    /* bit c: byte c belongs to the class */
    uint32_t min, max;  /* repetitions */
} shape_item;

typedef struct {
    size_t first, count;  /* items[first .. first+count) ; count 0 with has_shape = empty shape */
    size_t min, max;      /* length limits in bytes */
    unsigned has_shape : 1, has_value : 1, fixed : 1, required : 1;
} field;

typedef struct {
    size_t nfields, nitems;
    field *fields;        /* point into the same userdata block */
    shape_item *items;
} layout;

static int in_set(const shape_item *it, unsigned char c)
{
    return (it->set[c >> 3] >> (c & 7)) & 1;
}

static void add_byte(uint8_t *set, unsigned c)
{
    set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

/* ASCII classes as Lua's in the "C" locale */
static int class_has(int cl, unsigned c)
{
    int lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z', digit = c >= '0' && c <= '9';
    int cntrl = c < 32 || c == 127, space = c == ' ' || (c >= 9 && c <= 13);
    int print = c > 32 && c < 127;
    switch (cl) {
    case 'a': return lower || upper;
    case 'c': return cntrl;
    case 'd': return digit;
    case 'l': return lower;
    case 'p': return print && !lower && !upper && !digit;
    case 's': return space;
    case 'u': return upper;
    case 'w': return lower || upper || digit;
    case 'x': return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    default: return -1;
    }
}

/* Add the class %cl to set; returns 0 when cl is not a class letter (so the
 * caller treats it as a literal), -1 when it is an unknown letter. */
static int add_class(uint8_t *set, unsigned char cl)
{
    int lower = cl >= 'a' && cl <= 'z', upper = cl >= 'A' && cl <= 'Z';
    if (!lower && !upper && !(cl >= '0' && cl <= '9'))
        return 0;
    int base = upper ? cl + 32 : cl;
    if (class_has(base, 'a') < 0)
        return -1;
    for (unsigned c = 0; c < 256; c++)
        if ((class_has(base, c) == 1) != upper)
            add_byte(set, c);
    return 1;
}

/* Compile one shape into items (NULL: count only).  Returns the number of
 * items or -1 with a message in err. */
static long compile_shape(const char *p, size_t n, shape_item *items, const char **err)
{
    size_t i = 0, count = 0;
    if (n > 0 && p[0] == '^')
        i = 1;
    if (n > i && p[n - 1] == '$' && !(n >= 2 && p[n - 2] == '%'))
        n--;
    while (i < n) {
        shape_item it;
        memset(&it, 0, sizeof it);
        unsigned char c = (unsigned char)p[i++];
        if (c == '%') {
            if (i >= n) { *err = "shape ends with '%'"; return -1; }
            unsigned char cl = (unsigned char)p[i++];
            int r = add_class(it.set, cl);
            if (r < 0) { *err = "unknown class after '%'"; return -1; }
            if (r == 0) add_byte(it.set, cl);
        } else if (c == '.') {
            memset(it.set, 0xff, sizeof it.set);
        } else if (c == '[') {
            int negate = 0;
            if (i < n && p[i] == '^') { negate = 1; i++; }
            int first = 1;
            for (;;) {
                if (i >= n) { *err = "unfinished set '[...]'"; return -1; }
                unsigned char a = (unsigned char)p[i++];
                if (a == ']' && !first)
                    break;
                first = 0;
                if (a == '%') {
                    if (i >= n) { *err = "unfinished set '[...]'"; return -1; }
                    unsigned char cl = (unsigned char)p[i++];
                    int r = add_class(it.set, cl);
                    if (r < 0) { *err = "unknown class after '%'"; return -1; }
                    if (r == 0) add_byte(it.set, cl);
                } else if (i + 1 < n && p[i] == '-' && p[i + 1] != ']') {
                    unsigned char b = (unsigned char)p[i + 1];
                    i += 2;
                    for (unsigned x = a; x <= b; x++)
                        add_byte(it.set, x);
                } else {
                    add_byte(it.set, a);
                }
            }
            if (negate)
                for (size_t k = 0; k < sizeof it.set; k++)
                    it.set[k] = (uint8_t)~it.set[k];
        } else if (c == '(' || c == ')' || c == '^' || c == '$') {
            *err = "captures, anchors and back-references are not part of a shape";
            return -1;
        } else {
            add_byte(it.set, c);
        }
        it.min = it.max = 1;
        if (i < n) {
            switch (p[i]) {
            case '+': it.max = UINT32_MAX; i++; break;
            case '*': it.min = 0; it.max = UINT32_MAX; i++; break;
            case '?': it.min = 0; i++; break;
            case '-': *err = "the lazy quantifier '-' is not part of a shape"; return -1;
            default: break;
            }
        }
        if (items)
            items[count] = it;
        count++;
    }
    return (long)count;
}

static int fits(const layout *lay, const field *f, const char *s, size_t len)
{
    if (!f->has_shape || len < f->min || len > f->max)
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0;
    for (size_t i = 0; i < f->count; i++) {
        const shape_item *it = &lay->items[f->first + i];
        uint32_t got = 0;
        while (got < it->max && pos < len && in_set(it, u[pos])) {
            pos++;
            got++;
        }
        if (got < it->min)
            return 0;
    }
    return pos == len;
}

static layout *check_layout(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, LAYOUT_MT);
}

/* Read field spec at the top of the stack (index t): string/size options. */
static size_t opt_size(lua_State *L, int t, const char *key, size_t dflt, lua_Integer k)
{
    int ty = lua_getfield(L, t, key);
    size_t v = dflt;
    if (ty != LUA_TNIL) {
        int isint;
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        if (!isint || x < 0)
            luaL_error(L, "giro.record.new: field %d: %s must be a non-negative integer", (int)k, key);
        v = (size_t)x;
    }
    lua_pop(L, 1);
    return v;
}

static int opt_flag(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int r_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    /* first pass: count the items of every shape */
    size_t nitems = 0;
    for (lua_Integer k = 1; k <= n; k++) {
        if (lua_rawgeti(L, 1, k) != LUA_TTABLE)
            return luaL_error(L, "giro.record.new: field %d must be a table", (int)k);
        if (lua_getfield(L, -1, "name") != LUA_TSTRING)
            return luaL_error(L, "giro.record.new: field %d: name must be a string", (int)k);
        lua_pop(L, 1);
        int ty = lua_getfield(L, -1, "shape");
        if (ty != LUA_TNIL) {
            size_t len;
            const char *err = NULL;
            const char *p = lua_tolstring(L, -1, &len);
            if (ty != LUA_TSTRING)
                return luaL_error(L, "giro.record.new: field %d: shape must be a string", (int)k);
            long c = compile_shape(p, len, NULL, &err);
            if (c < 0)
                return luaL_error(L, "giro.record.new: field %d: shape '%s': %s", (int)k, p, err);
            nitems += (size_t)c;
        }
        ty = lua_getfield(L, -2, "value");
        if (ty != LUA_TNIL && ty != LUA_TSTRING)
            return luaL_error(L, "giro.record.new: field %d: value must be a string", (int)k);
        ty = lua_getfield(L, -3, "fixed");
        if (ty != LUA_TNIL && ty != LUA_TSTRING)
            return luaL_error(L, "giro.record.new: field %d: fixed must be a string", (int)k);
        lua_pop(L, 4);
    }
    size_t nf = (size_t)n;
    if (nf > (SIZE_MAX - sizeof(layout)) / (sizeof(field) + sizeof(shape_item)))
        return luaL_error(L, "giro.record.new: too many fields");
    size_t bytes = sizeof(layout) + nf * sizeof(field) + nitems * sizeof(shape_item);
    layout *lay = lua_newuserdatauv(L, bytes, 3);        /* [specs, lay] */
    lay->nfields = nf;
    lay->nitems = nitems;
    /* shape_item holds only bytes and uint32_t: it is aligned after field */
    lay->fields = (field *)(void *)(lay + 1);
    lay->items = (shape_item *)(void *)(lay->fields + nf);
    luaL_setmetatable(L, LAYOUT_MT);
    lua_createtable(L, (int)nf, 0);                      /* [specs, lay, names] */
    lua_createtable(L, (int)nf, 0);                      /* [specs, lay, names, values] */
    lua_createtable(L, (int)nf, 0);                      /* [specs, lay, names, values, fixed] */
    size_t at = 0;
    for (lua_Integer k = 1; k <= n; k++) {
        field *f = &lay->fields[k - 1];
        memset(f, 0, sizeof *f);
        lua_rawgeti(L, 1, k);                            /* [.., spec] */
        int t = lua_gettop(L);
        lua_getfield(L, t, "name");
        lua_rawseti(L, t - 3, k);
        if (lua_getfield(L, t, "value") == LUA_TSTRING) {
            f->has_value = 1;
            lua_rawseti(L, t - 2, k);
        } else {
            lua_pop(L, 1);
        }
        if (lua_getfield(L, t, "fixed") == LUA_TSTRING) {
            f->fixed = 1;
            lua_rawseti(L, t - 1, k);
        } else {
            lua_pop(L, 1);
        }
        if (lua_getfield(L, t, "shape") == LUA_TSTRING) {
            size_t len;
            const char *err = NULL;
            const char *p = lua_tolstring(L, -1, &len);
            long c = compile_shape(p, len, lay->items + at, &err);
            f->has_shape = 1;
            f->first = at;
            f->count = (size_t)c;
            at += (size_t)c;
        }
        lua_pop(L, 1);
        f->min = opt_size(L, t, "min", 0, k);
        f->max = opt_size(L, t, "max", SIZE_MAX, k);
        f->required = opt_flag(L, t, "required");
        lua_pop(L, 1);
    }
    lua_setiuservalue(L, 2, UV_FIXED);
    lua_setiuservalue(L, 2, UV_VALUES);
    lua_setiuservalue(L, 2, UV_NAMES);
    return 1;
}

static int r_collect(lua_State *L)
{
    layout *lay = check_layout(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer from = luaL_optinteger(L, 4, 1);
    luaL_argcheck(L, from >= 1, 4, "must be 1 or more");
    lua_settop(L, 3);
    if (lua_isnil(L, 3)) {
        lua_createtable(L, (int)lay->nfields, 0);
        lua_replace(L, 3);
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getiuservalue(L, 1, UV_NAMES);                   /* 4 */
    lua_getiuservalue(L, 1, UV_VALUES);                  /* 5 */
    lua_getiuservalue(L, 1, UV_FIXED);                   /* 6 */
    lua_Integer seen = 0;
    for (lua_Integer k = from; k <= (lua_Integer)lay->nfields; k++) {
        const field *f = &lay->fields[k - 1];
        lua_rawgeti(L, 4, k);
        int ty = lua_rawget(L, 2);                       /* [.., v] */
        if (ty == LUA_TNIL) {
            lua_pop(L, 1);
            if (f->has_value) {
                lua_rawgeti(L, 5, k);
                lua_rawseti(L, 3, k);
            } else if (f->required) {
                lua_pushvalue(L, 3);
                lua_pushinteger(L, k);
                lua_pushinteger(L, seen);
                return 3;
            }
            continue;
        }
        int ok = 0;
        if (ty == LUA_TSTRING) {
            if (f->fixed) {
                lua_rawgeti(L, 6, k);
                ok = lua_rawequal(L, -1, -2);
                lua_pop(L, 1);
            } else {
                size_t len;
                const char *s = lua_tolstring(L, -1, &len);
                ok = fits(lay, f, s, len);
            }
        }
        if (!ok) {
            lua_pushvalue(L, 3);
            lua_pushinteger(L, k);
            lua_pushinteger(L, seen);
            return 3;
        }
        seen++;
        lua_rawseti(L, 3, k);
    }
    lua_pushvalue(L, 3);
    lua_pushnil(L);
    lua_pushinteger(L, seen);
    return 3;
}

static int r_check(lua_State *L)
{
    layout *lay = check_layout(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    size_t len;
    const char *s = luaL_checklstring(L, 3, &len);
    luaL_argcheck(L, k >= 1 && k <= (lua_Integer)lay->nfields, 2, "no such field");
    const field *f = &lay->fields[k - 1];
    int ok;
    if (f->fixed) {
        lua_getiuservalue(L, 1, UV_FIXED);
        lua_rawgeti(L, -1, k);
        ok = lua_rawequal(L, -1, 3);
    } else {
        ok = fits(lay, f, s, len);
    }
    lua_pushboolean(L, ok);
    return 1;
}

static int r_size(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_layout(L, 1)->nfields);
    return 1;
}

static int r_tostring(lua_State *L)
{
    lua_pushfstring(L, LAYOUT_MT " (%d fields)", (int)check_layout(L, 1)->nfields);
    return 1;
}

static int r_count(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        lua_pop(L, 1);
        n++;
    }
    lua_pushinteger(L, n);
    return 1;
}

static const luaL_Reg layout_methods[] = {
    { "collect", r_collect },
    { "check", r_check },
    { "size", r_size },
    { NULL, NULL }
};

static const luaL_Reg record_funcs[] = {
    { "new", r_new },
    { "count", r_count },
    { NULL, NULL }
};

int luaopen_giro_record(lua_State *L)
{
    luaL_newmetatable(L, LAYOUT_MT);                     /* [mt] */
    lua_pushcfunction(L, r_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, layout_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, record_funcs);
    return 1;
}
