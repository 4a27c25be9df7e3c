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
 *   local layout = record.new({
 *     { name = "SUMMA", shape = "%d+,%d%d", max = 19, required = true },
 *     { name = "VALUUTTA", fixed = "EUR", value = "EUR" },
 *     { name = "lng", shape = "[123]" },
 *     { name = "TARKISTE" },                  -- no shape: every given value stops
 *   } [, nhash])                              -- room for nhash named keys in the out tables
 *   layout:collect(map [, out [, from [, today]]]) -> out, nil, seen | out, k, seen
 *   layout:parse(query [, today])     -> map, count | false
 *   layout:take(map [, today])        -> out, count | false
 *   layout:check(k, s [, today])      -> true, stored value | false (field k alone)
 *   layout:size()                     -> number of fields
 *   record.count(t)                   -> number of keys in t (any kind)
 *
 * Field spec: name (string); shape (see below; without one no value is
 * accepted as it is); min, max (length limits in bytes, default 0 and none);
 * fixed (a string: the only value accepted, byte for byte; the shape is then
 * not used); value (a string stored when the field is absent); required (an
 * absent field without a value stops); and checks after the shape:
 *   values = { "1", "2" }  the value must be one of these;
 *   check_digit = "731"    the last character is the check digit of the others:
 *                          (10 - sum of digit * weight) mod 10, the first
 *                          weight on the digit next to the check digit, then
 *                          leftwards, repeated (7, 3, 1, 7, ... here);
 *   date = "DD.MM.YYYY" | "YYYYMMDD"  a day that exists in that layout, and with
 *   not_past = true        not before `today` (an integer YYYYMMDD given to
 *                          collect; without it the check stops the field);
 *   suffix = ",00"         a value that fits only with this appended is stored
 *                          with it appended ("100" -> "100,00").
 *
 * collect fills `out` (a new table sized for the layout, and nhash more
 * named keys, when nil; with false
 * it only checks, stores nothing and returns false) and walks the fields
 * from `from` (default 1): for field k it reads
 * map[name] (raw); an absent field takes its value (out[k] = value) or stops
 * if required; a present string that fits (equal to the fixed value, or
 * matching the shape within the lengths) is stored as out[k]; anything else
 * stops.  A stop returns out, k and the number of fields found present
 * before k; the end returns out, nil and the number found present.  out[k] is not touched
 * for a field that stops or is absent without a value.
 *
 * parse reads a query string (name=value&..., one leading '?' and empty
 * segments skipped, a segment without '=' has the value "") straight into a
 * new map name -> value when it is plainly a record of this layout: every
 * name is one of the fields, spelled as the layout spells it and given once,
 * no name or value has a '%' or '+' escape or a '?' or '#' (so a URL or a
 * fragment is the caller's business), every value is taken as collect
 * takes it without a suffix, and no required field is absent (absent fields
 * are not filled in).  count is the number of parameters.  Anything else
 * gives false, and the caller does the general work (url.parse_query_map,
 * collect, its own reasons): parse never names a problem.  Layouts of more
 * than 64 fields, and a query that is not a string, always give false.
 *
 * take is collect's all-or-nothing twin for a whole map: out (a new table,
 * as collect makes) when every key of map is the name of a field and every
 * value is taken (suffix included), with the values of the absent fields
 * filled in and no required field absent; count is the number of keys.
 * Anything else (a key that is not a field, a value that is not a string or
 * not taken) gives false, and the caller walks the fields with collect.
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

enum { UV_NAMES = 1, UV_VALUES = 2, UV_FIXED = 3, UV_SETS = 4 };
enum { DATE_NONE, DATE_DMY, DATE_YMD };
#define MAX_CHECK_WEIGHTS 16

typedef struct {
    uint8_t set[32];    /* bit c: byte c belongs to the class */
    uint32_t min, max;  /* repetitions */
} shape_item;

typedef struct {
    size_t first, count;  /* items[first .. first+count) ; count 0 with has_shape = empty shape */
    size_t min, max;      /* length limits in bytes */
    unsigned has_shape : 1, has_value : 1, fixed : 1, required : 1, has_set : 1, not_past : 1;
    unsigned date : 2;
    unsigned char nweights, weights[MAX_CHECK_WEIGHTS];
    char suffix[8];       /* "" = none */
    unsigned char suffix_len;
    size_t name_off, name_len;  /* the name's bytes in layout.names (for parse) */
} field;

typedef struct {
    size_t nfields, nitems;
    int nhash;            /* named keys the caller adds to a table collect makes */
    field *fields;        /* point into the same userdata block */
    shape_item *items;
    char *names;          /* every field's name, back to back */
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

static long num(const char *s, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static int days_in_month(long y, long m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* YYYYMMDD of a date in the field's layout, or -1 */
static long date_value(const field *f, const char *s, size_t len)
{
    static const char dmy[] = "dd.dd.dddd", ymd[] = "dddddddd";
    const char *lay = f->date == DATE_DMY ? dmy : ymd;
    if (len != strlen(lay))
        return -1;
    for (size_t i = 0; i < len; i++)
        if (lay[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != lay[i])
            return -1;
#define NUM(p, n) (num(s + (p), (n)))
    long y, m, d;
    if (f->date == DATE_DMY) { d = NUM(0, 2); m = NUM(3, 2); y = NUM(6, 4); }
    else                     { y = NUM(0, 4); m = NUM(4, 2); d = NUM(6, 2); }
#undef NUM
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -1;
    return y * 10000 + m * 100 + d;
}

/* The checks after the shape: check digit, date, not_past (values is
 * checked by the caller, which has the set on the stack). */
static int passes(const field *f, const char *s, size_t len, lua_Integer today)
{
    if (f->nweights && !giro_mod10_check(s, len, f->weights, f->nweights))
        return 0;
    if (f->date != DATE_NONE) {
        long v = date_value(f, s, len);
        if (v < 0 || (f->not_past && (today <= 0 || v < today)))
            return 0;
    }
    return 1;
}

/* The layout at arg.  The methods hold the metatable as upvalue 1: comparing
 * with it spares luaL_checkudata's registry lookup by name on every call. */
static layout *check_layout(lua_State *L, int arg)
{
    layout *lay = lua_touserdata(L, arg);
    if (lay != NULL && lua_getmetatable(L, arg)) {
        int same = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
        if (same)
            return lay;
    }
    return luaL_checkudata(L, arg, LAYOUT_MT);          /* raises the usual error */
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
    lua_Integer nhash = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, nhash >= 0 && nhash <= 64, 2, "must be 0 to 64");
    lua_settop(L, 1);
    lua_Integer n = luaL_len(L, 1);
    /* first pass: count the items of every shape and the bytes of the names */
    size_t nitems = 0, namebytes = 0;
    for (lua_Integer k = 1; k <= n; k++) {
        if (lua_rawgeti(L, 1, k) != LUA_TTABLE)
            return luaL_error(L, "giro.record.new: field %d must be a table", (int)k);
        if (lua_getfield(L, -1, "name") != LUA_TSTRING)
            return luaL_error(L, "giro.record.new: field %d: name must be a string", (int)k);
        size_t nl = lua_rawlen(L, -1);
        if (nl > SIZE_MAX / 2 - namebytes)
            return luaL_error(L, "giro.record.new: names too long");
        namebytes += nl;
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
        ty = lua_getfield(L, -4, "values");
        if (ty != LUA_TNIL && ty != LUA_TTABLE)
            return luaL_error(L, "giro.record.new: field %d: values must be a list of strings", (int)k);
        lua_pop(L, 5);
    }
    size_t nf = (size_t)n;
    if (nf > (SIZE_MAX / 2 - sizeof(layout)) / (sizeof(field) + sizeof(shape_item))
        || nitems > (SIZE_MAX / 2 - sizeof(layout)) / (sizeof(field) + sizeof(shape_item)))
        return luaL_error(L, "giro.record.new: too many fields");
    size_t bytes = sizeof(layout) + nf * sizeof(field) + nitems * sizeof(shape_item) + namebytes;
    layout *lay = lua_newuserdatauv(L, bytes, 4);        /* [specs, lay] */
    lay->nfields = 0;         /* nf once every field is read (a metamethod may reach lay before) */
    lay->nitems = nitems;
    lay->nhash = (int)nhash;
    /* shape_item holds only bytes and uint32_t: it is aligned after field */
    lay->fields = (field *)(void *)(lay + 1);
    lay->items = (shape_item *)(void *)(lay->fields + nf);
    lay->names = (char *)(lay->items + nitems);
    luaL_setmetatable(L, LAYOUT_MT);
    lua_createtable(L, (int)nf, 0);                      /* [specs, lay, names] */
    lua_createtable(L, (int)nf, 0);                      /* [specs, lay, names, values] */
    lua_createtable(L, (int)nf, 0);                      /* [specs, lay, names, values, fixed] */
    lua_createtable(L, (int)nf, 0);                      /* [.., fixed, sets] */
    size_t at = 0, name_at = 0;
    for (lua_Integer k = 1; k <= n; k++) {
        field *f = &lay->fields[k - 1];
        memset(f, 0, sizeof *f);
        lua_rawgeti(L, 1, k);                            /* [.., spec] */
        int t = lua_gettop(L);
        /* the spec is read a second time (its fields may be metamethods): what
         * the first pass sized the block for must still hold */
        const char *name = lua_getfield(L, t, "name") == LUA_TSTRING
            ? lua_tolstring(L, -1, &f->name_len) : NULL;
        if (name == NULL || f->name_len > namebytes - name_at)
            return luaL_error(L, "giro.record.new: field %d changed while the layout was made", (int)k);
        f->name_off = name_at;
        memcpy(lay->names + name_at, name, f->name_len);
        name_at += f->name_len;
        lua_rawseti(L, t - 4, k);
        if (lua_getfield(L, t, "value") == LUA_TSTRING) {
            f->has_value = 1;
            lua_rawseti(L, t - 3, k);
        } else {
            lua_pop(L, 1);
        }
        if (lua_getfield(L, t, "fixed") == LUA_TSTRING) {
            f->fixed = 1;
            lua_rawseti(L, t - 2, k);
        } else {
            lua_pop(L, 1);
        }
        if (lua_getfield(L, t, "values") == LUA_TTABLE) {   /* list -> set */
            lua_newtable(L);
            for (lua_Integer j = 1; lua_rawgeti(L, -2, j) != LUA_TNIL; j++) {
                if (lua_type(L, -1) != LUA_TSTRING)
                    return luaL_error(L, "giro.record.new: field %d: values must be strings", (int)k);
                lua_pushboolean(L, 1);
                lua_rawset(L, -3);
            }
            lua_pop(L, 1);                               /* the nil */
            f->has_set = 1;
            lua_rawseti(L, t - 1, k);
        }
        lua_pop(L, 1);
        if (lua_getfield(L, t, "check_digit") != LUA_TNIL) {
            size_t wn;
            const char *w = lua_tolstring(L, -1, &wn);
            if (w == NULL || wn == 0 || wn > MAX_CHECK_WEIGHTS)
                return luaL_error(L, "giro.record.new: field %d: check_digit must be 1 to %d weight digits",
                                  (int)k, MAX_CHECK_WEIGHTS);
            for (size_t j = 0; j < wn; j++) {
                if (w[j] < '0' || w[j] > '9')
                    return luaL_error(L, "giro.record.new: field %d: check_digit must be digits", (int)k);
                f->weights[j] = (unsigned char)(w[j] - '0');
            }
            f->nweights = (unsigned char)wn;
        }
        lua_pop(L, 1);
        if (lua_getfield(L, t, "date") != LUA_TNIL) {
            const char *d = lua_tostring(L, -1);
            if (d && strcmp(d, "DD.MM.YYYY") == 0) f->date = DATE_DMY;
            else if (d && strcmp(d, "YYYYMMDD") == 0) f->date = DATE_YMD;
            else return luaL_error(L, "giro.record.new: field %d: date must be DD.MM.YYYY or YYYYMMDD", (int)k);
        }
        lua_pop(L, 1);
        f->not_past = opt_flag(L, t, "not_past");
        if (lua_getfield(L, t, "suffix") != LUA_TNIL) {
            size_t sn;
            const char *sx = lua_tolstring(L, -1, &sn);
            if (sx == NULL || sn == 0 || sn >= sizeof f->suffix)
                return luaL_error(L, "giro.record.new: field %d: suffix must be 1 to %d characters",
                                  (int)k, (int)sizeof f->suffix - 1);
            memcpy(f->suffix, sx, sn);
            f->suffix_len = (unsigned char)sn;
        }
        lua_pop(L, 1);
        if (lua_getfield(L, t, "shape") == LUA_TSTRING) {
            size_t len;
            const char *err = NULL;
            const char *p = lua_tolstring(L, -1, &len);
            long c = compile_shape(p, len, NULL, &err);
            if (c < 0 || (size_t)c > nitems - at)
                return luaL_error(L, "giro.record.new: field %d changed while the layout was made", (int)k);
            compile_shape(p, len, lay->items + at, &err);
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
    lua_setiuservalue(L, 2, UV_SETS);
    lua_setiuservalue(L, 2, UV_FIXED);
    lua_setiuservalue(L, 2, UV_VALUES);
    lua_setiuservalue(L, 2, UV_NAMES);
    lay->nfields = nf;
    return 1;
}

/* Is the string on top of the stack a value of field k?  May replace it with
 * the value completed by the field's suffix (unless exact).  The sets are at
 * index 7. */
static int accept_value(lua_State *L, const layout *lay, const field *f, lua_Integer k,
                        lua_Integer today, int exact)
{
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (!fits(lay, f, s, len)) {
        char buf[256];
        if (exact || f->suffix_len == 0 || len + f->suffix_len > sizeof buf)
            return 0;
        memcpy(buf, s, len);
        memcpy(buf + len, f->suffix, f->suffix_len);
        if (!fits(lay, f, buf, len + f->suffix_len))
            return 0;
        lua_pop(L, 1);
        s = lua_pushlstring(L, buf, len + f->suffix_len);
        len += f->suffix_len;
    }
    if (!passes(f, s, len, today))
        return 0;
    if (f->has_set) {
        lua_rawgeti(L, 7, k);
        lua_pushvalue(L, -2);
        int in = lua_rawget(L, -2) != LUA_TNIL;
        lua_pop(L, 2);
        return in;
    }
    return 1;
}

/* Push the layout's names, values, fixed values and sets: every method keeps
 * them at 4..7, where accept_value and takes look for them. */
static void push_tables(lua_State *L)
{
    lua_getiuservalue(L, 1, UV_NAMES);
    lua_getiuservalue(L, 1, UV_VALUES);
    lua_getiuservalue(L, 1, UV_FIXED);
    lua_getiuservalue(L, 1, UV_SETS);
}

/* Does field k take the string on top of the stack: equal to its fixed value,
 * or accepted (maybe completed by its suffix, unless exact)? */
static int takes(lua_State *L, const layout *lay, const field *f, lua_Integer k, lua_Integer today, int exact)
{
    if (f->fixed) {
        lua_rawgeti(L, 6, k);
        int same = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        return same;
    }
    return accept_value(L, lay, f, k, today, exact);
}

/* The field (1-based) named by the bytes s[0..n), or 0; the search starts
 * at field `from` (a message usually lists its fields in spec order). */
static size_t field_named(const layout *lay, const char *s, size_t n, size_t from)
{
    size_t k = from - 1;
    for (size_t i = 0; i < lay->nfields; i++, k++) {
        if (k == lay->nfields)
            k = 0;
        const field *f = &lay->fields[k];
        const char *name = lay->names + f->name_off;
        if (f->name_len == n && (n == 0 || (name[0] == s[0] && memcmp(name, s, n) == 0)))
            return k + 1;
    }
    return 0;
}

static int r_parse(lua_State *L)
{
    layout *lay = check_layout(L, 1);
    size_t n;
    const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : NULL;
    lua_Integer today = luaL_optinteger(L, 3, 0);
    if (s == NULL || lay->nfields > 64) {                /* the seen mask below */
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_settop(L, 2);
    lua_createtable(L, 0, (int)lay->nfields);            /* 3: the map */
    push_tables(L);                                      /* 4..7 */
    const char *p = s, *const end = s + n;
    if (p < end && *p == '?')
        p++;
    uint64_t seen = 0;
    lua_Integer count = 0;
    size_t next = 1;
    while (p < end) {
        const char *seg = p, *eq = NULL;
        int plain = 1;
        for (; p < end && *p != '&'; p++) {
            if (*p == '=') {
                if (eq == NULL)
                    eq = p;
            } else if (*p == '%' || *p == '+' || *p == '?' || *p == '#') {
                plain = 0;                               /* escapes, a URL, a fragment */
            }
        }
        const char *stop = p;
        if (p < end)
            p++;                                         /* past the '&' */
        if (stop == seg)
            continue;                                    /* empty segment */
        const char *nend = eq ? eq : stop, *v = eq ? eq + 1 : stop;
        size_t k = plain ? field_named(lay, seg, (size_t)(nend - seg), next) : 0;
        if (k == 0 || (seen >> (k - 1) & 1))             /* not plain, unknown name, twice */
            goto other;
        seen |= (uint64_t)1 << (k - 1);
        next = k % lay->nfields + 1;
        const field *f = &lay->fields[k - 1];
        lua_rawgeti(L, 4, (lua_Integer)k);               /* [.., name] */
        lua_pushlstring(L, v, (size_t)(stop - v));       /* [.., name, value] */
        if (!takes(L, lay, f, (lua_Integer)k, today, 1))
            goto other;
        lua_rawset(L, 3);
        count++;
    }
    for (size_t i = 0; i < lay->nfields; i++)
        if (lay->fields[i].required && !(seen >> i & 1))
            goto other;
    lua_settop(L, 3);
    lua_pushinteger(L, count);
    return 2;
other:
    lua_pushboolean(L, 0);
    return 1;
}

static int r_take(lua_State *L)
{
    layout *lay = check_layout(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer today = luaL_optinteger(L, 3, 0);
    if (lay->nfields > 64) {                             /* the seen mask below */
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_settop(L, 2);
    lua_createtable(L, (int)lay->nfields, lay->nhash);   /* 3: out */
    push_tables(L);                                      /* 4..7 */
    uint64_t seen = 0;
    lua_Integer count = 0;
    size_t next = 1;
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {                        /* [.., name, value] */
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            goto other;
        size_t nl;
        const char *name = lua_tolstring(L, -2, &nl);
        size_t k = field_named(lay, name, nl, next);
        if (k == 0)
            goto other;
        seen |= (uint64_t)1 << (k - 1);                  /* a table has each key once */
        next = k % lay->nfields + 1;
        const field *f = &lay->fields[k - 1];
        if (!takes(L, lay, f, (lua_Integer)k, today, 0))
            goto other;
        lua_rawseti(L, 3, (lua_Integer)k);               /* [.., name] */
        count++;
    }
    for (size_t i = 0; i < lay->nfields; i++) {
        const field *f = &lay->fields[i];
        if (seen >> i & 1)
            continue;
        if (f->has_value) {
            lua_rawgeti(L, 5, (lua_Integer)i + 1);
            lua_rawseti(L, 3, (lua_Integer)i + 1);
        } else if (f->required) {
            goto other;
        }
    }
    lua_settop(L, 3);
    lua_pushinteger(L, count);
    return 2;
other:
    lua_pushboolean(L, 0);
    return 1;
}

static int r_collect(lua_State *L)
{
    layout *lay = check_layout(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer from = luaL_optinteger(L, 4, 1);
    luaL_argcheck(L, from >= 1, 4, "must be 1 or more");
    lua_Integer today = luaL_optinteger(L, 5, 0);
    lua_settop(L, 3);
    if (lua_isnil(L, 3)) {
        lua_createtable(L, (int)lay->nfields, lay->nhash);
        lua_replace(L, 3);
    }
    int store = !(lua_isboolean(L, 3) && !lua_toboolean(L, 3));
    if (store)
        luaL_checktype(L, 3, LUA_TTABLE);
    push_tables(L);                                      /* 4..7 */
    lua_Integer seen = 0;
    for (lua_Integer k = from; k <= (lua_Integer)lay->nfields; k++) {
        const field *f = &lay->fields[k - 1];
        lua_rawgeti(L, 4, k);
        int ty = lua_rawget(L, 2);                       /* [.., v] */
        if (ty == LUA_TNIL) {
            lua_pop(L, 1);
            if (f->has_value) {
                if (store) {
                    lua_rawgeti(L, 5, k);
                    lua_rawseti(L, 3, k);
                }
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
            ok = takes(L, lay, f, k, today, 0);
        }
        if (!ok) {
            lua_pushvalue(L, 3);
            lua_pushinteger(L, k);
            lua_pushinteger(L, seen);
            return 3;
        }
        seen++;
        if (store)
            lua_rawseti(L, 3, k);
        else
            lua_pop(L, 1);
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
    luaL_checkstring(L, 3);
    lua_Integer today = luaL_optinteger(L, 4, 0);
    luaL_argcheck(L, k >= 1 && k <= (lua_Integer)lay->nfields, 2, "no such field");
    const field *f = &lay->fields[k - 1];
    lua_settop(L, 3);
    push_tables(L);                                      /* 4..7 */
    lua_pushvalue(L, 3);
    if (f->fixed) {
        lua_rawgeti(L, 6, k);
        lua_pushboolean(L, lua_rawequal(L, -1, 3));
        return 1;
    }
    if (!accept_value(L, lay, f, k, today, 0)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -2);
    return 2;
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
    { "parse", r_parse },
    { "take", r_take },
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
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, r_tostring, 1);
    lua_setfield(L, -2, "__tostring");
    luaL_newlibtable(L, layout_methods);                 /* [mt, methods] */
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, layout_methods, 1);                 /* each holds the metatable */
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, record_funcs);
    return 1;
}
