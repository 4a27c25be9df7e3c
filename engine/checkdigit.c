/*
 * giro.checkdigit — general check-digit arithmetic, fast and allocation free.
 *
 * Only arithmetic lives here; which weights, lengths and countries a kind of
 * number uses is decided in Lua (lua/giro/ref.lua).  Every function works on
 * s[i..j] (string.sub rules, default the whole string) so callers can leave
 * the check digit out without making a substring.
 *
 *   weighted(s, weights, modulus [, i [, j]]) -> (sum of digit*weight) % modulus
 *       weights: a string of digits ("731") or a table of integers
 *       ({7, 9, 10, 5, 8, 4, 2}), applied from the RIGHTMOST digit leftwards
 *       and repeated as often as needed
 *   luhn(s [, i [, j]])          -> the MOD10 (Luhn) digit to append, 0..9
 *   mod11(s [, weights [, i [, j]]]) -> 11 - (sum % 11) with 11 -> 0, i.e. 0..10
 *       (10 has no digit; the caller decides: '-' for KID, invalid elsewhere);
 *       weights default to 2,3,4,5,6,7 from the right (Norwegian MOD11)
 *   fi_check(s [, i [, j]])      -> the Finnish 7-3-1 digit to append, 0..9
 *   iso7064_mod97(s [, rotate])  -> 0..96: s as a number with letters A..Z
 *       (either case) read as 10..35, after moving its first `rotate`
 *       characters to the end (4 for IBAN and RF); valid IBAN/RF give 1
 *
 * A character that is not a digit (or, for mod97, a letter) gives
 * nil, "bad character 'x' at position N" (N counts in s).  An empty range
 * gives the value for no digits (sum 0).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "giro.h"

#define MAX_WEIGHTS 64          /* longest weight cycle accepted */
#define MAX_WEIGHT 1000000      /* keeps weight * 9 + sum far from overflow */

/* string.sub's index rules, so s[i..j] means what it does in Lua */
static void get_range(lua_State *L, int arg, size_t len, size_t *from, size_t *to)
{
    lua_Integer i = luaL_optinteger(L, arg, 1);
    lua_Integer j = luaL_optinteger(L, arg + 1, -1);
    lua_Integer n = (lua_Integer)len;
    /* i < -n, not -i > n: -LUA_MININTEGER overflows */
    if (i < 0) i = (i < -n) ? 1 : n + i + 1;
    else if (i == 0) i = 1;
    if (j < 0) j = (j < -n) ? 0 : n + j + 1;
    else if (j > n) j = n;
    if (i > j) { *from = 1; *to = 0; return; }
    *from = (size_t)i;
    *to = (size_t)j;
}

static int bad_char(lua_State *L, unsigned char c, size_t pos)
{
    char shown[16];
    if (c >= 0x20 && c < 0x7f && c != '\'')
        snprintf(shown, sizeof shown, "'%c'", c);
    else
        snprintf(shown, sizeof shown, "byte 0x%02X", c);
    lua_pushnil(L);
    lua_pushfstring(L, "bad character %s at position %d", shown, (int)(pos > INT_MAX ? INT_MAX : pos));
    return 2;
}

typedef struct {
    lua_Integer w[MAX_WEIGHTS];
    size_t n;
} weights;

static void get_weights(lua_State *L, int arg, weights *ws)
{
    ws->n = 0;
    if (lua_type(L, arg) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, arg, &n);
        luaL_argcheck(L, n > 0 && n <= MAX_WEIGHTS, arg, "1 to 64 weight digits expected");
        for (size_t k = 0; k < n; k++) {
            luaL_argcheck(L, s[k] >= '0' && s[k] <= '9', arg, "weights must be digits");
            ws->w[k] = s[k] - '0';
        }
        ws->n = n;
        return;
    }
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Integer n = luaL_len(L, arg);
    luaL_argcheck(L, n > 0 && n <= MAX_WEIGHTS, arg, "1 to 64 weights expected");
    for (lua_Integer k = 1; k <= n; k++) {
        int isnum = 0;
        lua_rawgeti(L, arg, k);
        lua_Integer w = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        luaL_argcheck(L, isnum && w >= 0 && w <= MAX_WEIGHT, arg, "weights must be integers 0..1000000");
        ws->w[k - 1] = w;
    }
    ws->n = (size_t)n;
}

/* Sum of digit * weight over s[from..to] from the right, reduced mod m as it
 * goes (so any length works).  Returns 0 and sets *badpos on a non-digit. */
static int weighted_sum(const char *s, size_t from, size_t to, const weights *ws,
                        lua_Integer m, lua_Integer *out, size_t *badpos)
{
    lua_Integer sum = 0;
    size_t k = 0;
    for (size_t p = to; p >= from && p > 0; p--) {
        unsigned char c = (unsigned char)s[p - 1];
        if (c < '0' || c > '9') { *badpos = p; return 0; }
        sum = (sum + (c - '0') * ws->w[k]) % m;
        if (++k == ws->n) k = 0;
    }
    *out = sum;
    return 1;
}

static int cd_weighted(lua_State *L)
{
    size_t len, from, to, bad = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    weights ws;
    get_weights(L, 2, &ws);
    lua_Integer m = luaL_checkinteger(L, 3);
    luaL_argcheck(L, m >= 1 && m <= INT_MAX, 3, "modulus must be 1..2^31-1");
    get_range(L, 4, len, &from, &to);
    lua_Integer r;
    if (!weighted_sum(s, from, to, &ws, m, &r, &bad))
        return bad_char(L, (unsigned char)s[bad - 1], bad);
    lua_pushinteger(L, r);
    return 1;
}

static int cd_mod11(lua_State *L)
{
    size_t len, from, to, bad = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    weights ws;
    if (lua_isnoneornil(L, 2)) {
        static const lua_Integer norwegian[] = { 2, 3, 4, 5, 6, 7 };
        memcpy(ws.w, norwegian, sizeof norwegian);
        ws.n = 6;
    } else {
        get_weights(L, 2, &ws);
    }
    get_range(L, 3, len, &from, &to);
    lua_Integer r;
    if (!weighted_sum(s, from, to, &ws, 11, &r, &bad))
        return bad_char(L, (unsigned char)s[bad - 1], bad);
    lua_pushinteger(L, (11 - r) % 11);
    return 1;
}

/* The digit to append for a mod-10 scheme where the digit at position k
 * from the right (k = 0 next to the check digit, cycling through `cycle`
 * rows) adds contrib[k][digit] to the sum.  Pushes its result(s). */
static int mod10_digit(lua_State *L, const unsigned char contrib[][10], int cycle)
{
    size_t len, from, to;
    const char *s = luaL_checklstring(L, 1, &len);
    get_range(L, 2, len, &from, &to);
    unsigned sum = 0;
    int k = 0;
    for (size_t p = to; p >= from && p > 0; p--) {
        unsigned char c = (unsigned char)s[p - 1];
        if (c < '0' || c > '9') return bad_char(L, c, p);
        sum += contrib[k][c - '0'];
        if (sum >= 1000000u) sum %= 10;
        if (++k == cycle) k = 0;
    }
    lua_pushinteger(L, (10 - sum % 10) % 10);
    return 1;
}

/* Luhn: from the right, the digit next to the check digit is doubled
 * (and its digits summed: 2*7 = 14 -> 5). */
static int cd_luhn(lua_State *L)
{
    static const unsigned char luhn[2][10] = {
        { 0, 2, 4, 6, 8, 1, 3, 5, 7, 9 },
        { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 },
    };
    return mod10_digit(L, luhn, 2);
}

/* Finnish reference: weights 7, 3, 1 from the right. */
static int cd_fi_check(lua_State *L)
{
    static const unsigned char w731[3][10] = {
        { 0, 7, 14, 21, 28, 35, 42, 49, 56, 63 },
        { 0, 3, 6, 9, 12, 15, 18, 21, 24, 27 },
        { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 },
    };
    return mod10_digit(L, w731, 3);
}

/* Shared with giro.record's field checker (giro.h): 1 when s, all digits,
 * ends in the mod-10 check digit of the digits before it, weighted from the
 * digit next to it leftwards by w[0], w[1], ... cycling (7, 3, 1 for Finnish
 * references). */
int giro_mod10_check(const char *s, size_t len, const unsigned char *w, size_t nw)
{
    if (len < 2 || nw == 0)
        return 0;
    unsigned sum = 0;
    size_t k = 0;
    for (size_t p = len - 1; p > 0; p--) {
        unsigned char c = (unsigned char)s[p - 1];
        if (c < '0' || c > '9')
            return 0;
        sum = (sum + (unsigned)(c - '0') * w[k]) % 10;
        if (++k == nw)
            k = 0;
    }
    return (unsigned char)s[len - 1] == '0' + (10 - sum) % 10;
}

/* Fold one character into a running mod-97 remainder; -1 on a bad one. */
static int mod97_step(int r, unsigned char c)
{
    if (c >= '0' && c <= '9') return (r * 10 + (c - '0')) % 97;
    if (c >= 'a' && c <= 'z') c = (unsigned char)(c - 'a' + 'A');
    if (c >= 'A' && c <= 'Z') return (r * 100 + (c - 'A' + 10)) % 97;
    return -1;
}

static int cd_mod97(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Integer rot = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, rot >= 0, 2, "rotate must not be negative");
    size_t start = (size_t)rot > len ? len : (size_t)rot;
    int r = 0;
    for (size_t k = 0; k < len; k++) {
        size_t p = (start + k) % len;   /* walk s[start..] then s[..start) */
        int nr = mod97_step(r, (unsigned char)s[p]);
        if (nr < 0) return bad_char(L, (unsigned char)s[p], p + 1);
        r = nr;
    }
    lua_pushinteger(L, r);
    return 1;
}

static const luaL_Reg checkdigit_funcs[] = {
    { "weighted", cd_weighted },
    { "luhn", cd_luhn },
    { "mod11", cd_mod11 },
    { "fi_check", cd_fi_check },
    { "iso7064_mod97", cd_mod97 },
    { NULL, NULL }
};

int luaopen_giro_checkdigit(lua_State *L)
{
    luaL_newlib(L, checkdigit_funcs);
    return 1;
}
