/*
 * giro.hash — message digests, HMAC and constant-time comparison on OpenSSL EVP.
 *
 *   hash.md5(s) / sha1 / sha256 / sha512   -> raw digest
 *   hash.digest(alg, s)                    -> raw digest
 *   hash.hex(bytes [, "upper"|"lower"])    -> hex string (lower by default)
 *   hash.hmac(alg, key, data)              -> raw MAC
 *   hash.equal(a, b)                       -> boolean, time independent of content
 *   hash.new(alg)                          -> ctx with :update(s) (returns ctx) and :final()
 *   hash.hex_join(alg, case, sep, trailing, t [, idx [, extra]])
 *       -> hex digest of the parts joined with sep (and one more sep after
 *          the last part when trailing is true), without building the joined
 *          string; the parts are t[idx[1]], t[idx[2]], ... (or t[1], t[2], ...
 *          up to the first nil without idx), absent (nil) ones left out; an
 *          idx entry 0 stands for `extra` (a MAC key kept out of t).
 *   hash.joiner(alg, case, sep, trailing, idx)
 *       -> the same recipe compiled once: joiner:hex(t [, extra]) gives what
 *          hex_join(alg, case, sep, trailing, t, idx, extra) gives; here idx
 *          entries may also be strings (t's keys: a map by name);
 *          joiner:equal(t, extra, mac [, any_case]) -> whether mac is that hex
 *          (constant time in the content; any_case: letters of either case).
 *
 * Every digest runs on OpenSSL EVP with algorithms fetched once per Lua state
 * (EVP_MD_fetch) and one reusable EVP_MD_CTX for the one-shot calls: the
 * implicit fetch behind EVP_sha256() & co. costs ~0.4 us per call in OpenSSL 3,
 * which would be most of a 200-byte digest.  Both live in a userdata shared by
 * the module's functions as upvalue 1 and are made on first use, so a command
 * that never hashes never pays OpenSSL's provider start-up (~2 ms).
 */
#include <limits.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "giro.h"

#define CTX_MT "giro.hash.ctx"
#define JOINER_MT "giro.hash.joiner"
#define ENGINE_MT "giro.hash.engine"

typedef struct {
    EVP_MD_CTX *md;   /* NULL once finalised or collected */
    int finished;
} hash_ctx;

static const char *const alg_names[] = { "md5", "sha1", "sha256", "sha512", NULL };

static const char *const fetch_names[] = { "MD5", "SHA1", "SHA256", "SHA512" };

/* Per-state OpenSSL objects: the module's upvalue 1. */
typedef struct {
    EVP_MD *md[4];       /* fetched on first use, index into alg_names */
    EVP_MD_CTX *ctx;     /* reused by every one-shot digest */
} hash_engine;

static hash_engine *engine(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The fetched algorithm, or NULL (OpenSSL failure or out of memory). */
static const EVP_MD *engine_md(hash_engine *e, int alg)
{
    if (e->md[alg] == NULL)
        e->md[alg] = EVP_MD_fetch(NULL, fetch_names[alg], NULL);
    return e->md[alg];
}

static const EVP_MD *check_alg(lua_State *L, int arg)
{
    const EVP_MD *md = engine_md(engine(L), luaL_checkoption(L, arg, NULL, alg_names));
    if (md == NULL)
        luaL_error(L, "giro.hash: OpenSSL cannot fetch the digest");
    return md;
}

static int engine_gc(lua_State *L)
{
    hash_engine *e = luaL_checkudata(L, 1, ENGINE_MT);
    for (int i = 0; i < 4; i++) {
        EVP_MD_free(e->md[i]);
        e->md[i] = NULL;
    }
    EVP_MD_CTX_free(e->ctx);
    e->ctx = NULL;
    return 0;
}

/* Start a one-shot digest on the shared context; 1 on success. */
static int direct_init(hash_engine *e, int alg)
{
    const EVP_MD *md = engine_md(e, alg);
    if (e->ctx == NULL)
        e->ctx = EVP_MD_CTX_new();
    return md != NULL && e->ctx != NULL && EVP_DigestInit_ex2(e->ctx, md, NULL) == 1;
}

static int direct_update(hash_engine *e, const void *p, size_t n)
{
    return EVP_DigestUpdate(e->ctx, p, n) == 1;
}

/* Writes the digest to out (EVP_MAX_MD_SIZE bytes), returns its length or 0. */
static size_t direct_final(hash_engine *e, unsigned char *out)
{
    unsigned int len = 0;
    return EVP_DigestFinal_ex(e->ctx, out, &len) == 1 ? len : 0;
}

static int push_digest(lua_State *L, int alg, const char *s, size_t n)
{
    hash_engine *e = engine(L);
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t len = 0;
    if (direct_init(e, alg) && direct_update(e, s, n))
        len = direct_final(e, out);
    if (len == 0)
        return luaL_error(L, "giro.hash: OpenSSL digest failed");
    lua_pushlstring(L, (const char *)out, len);
    return 1;
}

static int one_shot(lua_State *L, int alg)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    return push_digest(L, alg, s, n);
}

static int h_md5(lua_State *L)    { return one_shot(L, 0); }
static int h_sha1(lua_State *L)   { return one_shot(L, 1); }
static int h_sha256(lua_State *L) { return one_shot(L, 2); }
static int h_sha512(lua_State *L) { return one_shot(L, 3); }

static int h_digest(lua_State *L)
{
    int alg = luaL_checkoption(L, 1, NULL, alg_names);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    return push_digest(L, alg, s, n);
}

static const char *const cases[] = { "lower", "upper", NULL };

static void to_hex(char *out, const unsigned char *s, size_t n, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
}

static int h_hex(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    int upper = luaL_checkoption(L, 2, "lower", cases) == 1;
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 2 * n);
    to_hex(out, s, n, upper);
    luaL_pushresultsize(&b, 2 * n);
    return 1;
}

/* Push part j of hex_join's parts (nil when absent, or past the end without
 * idx) and return its type; -1 (nothing pushed) for a bad idx entry. */
static int join_part(lua_State *L, int has_idx, lua_Integer j)
{
    if (!has_idx)
        return lua_rawgeti(L, 5, j);
    int isint;
    lua_rawgeti(L, 6, j);
    lua_Integer i = lua_tointegerx(L, -1, &isint);
    lua_pop(L, 1);
    if (!isint)
        return -1;
    if (i == 0) {
        lua_pushvalue(L, 7);
        return lua_type(L, -1);
    }
    return lua_rawgeti(L, 5, i);
}

/* Arguments 1..4 of hex_join and joiner: algorithm, hex case, separator,
 * trailing separator. */
typedef struct {
    int alg, upper, trailing;
    const char *sep;
    size_t seplen;
} recipe;

static recipe check_recipe(lua_State *L)
{
    recipe r;
    r.alg = luaL_checkoption(L, 1, NULL, alg_names);
    r.upper = luaL_checkoption(L, 2, NULL, cases) == 1;
    r.sep = luaL_checklstring(L, 3, &r.seplen);
    r.trailing = lua_toboolean(L, 4);
    return r;
}

static int h_hex_join(lua_State *L)
{
    recipe r = check_recipe(L);
    luaL_checktype(L, 5, LUA_TTABLE);
    int has_idx = !lua_isnoneornil(L, 6);
    lua_Integer n = LUA_MAXINTEGER;
    if (has_idx) {
        luaL_checktype(L, 6, LUA_TTABLE);
        n = (lua_Integer)lua_rawlen(L, 6);
    }
    lua_settop(L, 7);
    hash_engine *c = engine(L);
    int ok = direct_init(c, r.alg), first = 1, bad = 0;
    lua_Integer j;
    for (j = 1; ok && j <= n; j++) {
        int t = join_part(L, has_idx, j);
        if (t == LUA_TSTRING) {
            size_t len;
            const char *p = lua_tolstring(L, -1, &len);
            if (!first)
                ok = direct_update(c, r.sep, r.seplen);
            ok = ok && direct_update(c, p, len);
            first = 0;
        } else if (t == LUA_TNIL && !has_idx) {
            lua_pop(L, 1);
            break;
        } else if (t != LUA_TNIL) {
            bad = t;                                     /* pushed unless -1 */
            break;
        }
        lua_pop(L, 1);
    }
    if (ok && !bad && r.trailing)
        ok = direct_update(c, r.sep, r.seplen);
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t len = ok ? direct_final(c, out) : 0;
    if (bad < 0)
        return luaL_error(L, "giro.hash.hex_join: idx[%d] must be an integer", (int)j);
    if (bad)
        return luaL_error(L, "giro.hash.hex_join: part %d is a %s, expected a string", (int)j,
                          lua_typename(L, bad));
    if (!ok || len == 0)
        return luaL_error(L, "giro.hash: OpenSSL digest failed");
    char hex[2 * EVP_MAX_MD_SIZE];
    to_hex(hex, out, len, r.upper);
    OPENSSL_cleanse(out, sizeof out);
    lua_pushlstring(L, hex, 2 * len);
    return 1;
}

#define JOIN_BUF 1024

/* A compiled hex_join recipe; idx and sep live in the same block. */
typedef struct {
    int alg, upper, trailing;
    size_t seplen, n;
    lua_Integer *idx;
    char *sep;
} joiner;

static int joiner_new(lua_State *L)
{
    recipe r = check_recipe(L);
    luaL_checktype(L, 5, LUA_TTABLE);
    size_t n = (size_t)lua_rawlen(L, 5);
    if (n > 4096)
        return luaL_error(L, "giro.hash.joiner: at most 4096 parts");
    joiner *j = lua_newuserdatauv(L, sizeof *j + n * sizeof(lua_Integer) + r.seplen + 1, 1);
    j->alg = r.alg;
    j->upper = r.upper;
    j->trailing = r.trailing;
    j->n = n;
    j->seplen = r.seplen;
    j->idx = (lua_Integer *)(void *)(j + 1);
    j->sep = (char *)(j->idx + n);
    memcpy(j->sep, r.sep, r.seplen + 1);
    luaL_setmetatable(L, JOINER_MT);
    lua_createtable(L, 0, 0);                            /* [.., j, keys] string entries */
    lua_Integer nkeys = 0;
    for (size_t i = 0; i < n; i++) {
        int isint;
        if (lua_rawgeti(L, 5, (lua_Integer)i + 1) == LUA_TSTRING) {   /* idx[i] = -slot */
            lua_rawseti(L, -2, ++nkeys);
            j->idx[i] = -nkeys;
            continue;
        }
        lua_Integer k = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 1);
        if (!isint || k < 0)
            return luaL_error(L, "giro.hash.joiner: idx[%d] must be an integer >= 0 or a string",
                              (int)i + 1);
        j->idx[i] = k;
    }
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* joiner:hex gathers the parts into one stack buffer and hashes it with a
 * single update (an update per part and separator costs more than the hash
 * itself for MAC strings of a few hundred bytes); a longer string goes in
 * pieces.  The buffer held the key: it is cleansed. */
typedef struct {
    size_t used, dirty;   /* dirty: bytes of buf ever written (to cleanse) */
    char buf[JOIN_BUF];
} join_buf;

/* Add p[0..len) to the digest through b: copied while it fits, else b is
 * flushed first and a string longer than the buffer goes in directly.  1 on
 * success. */
static int feed(hash_engine *c, join_buf *b, const char *p, size_t len)
{
    if (b->used + len > sizeof b->buf) {
        if (b->used > b->dirty)
            b->dirty = b->used;
        int ok = b->used == 0 || direct_update(c, b->buf, b->used);
        b->used = 0;
        if (len > sizeof b->buf || !ok)
            return ok && direct_update(c, p, len);
    }
    memcpy(b->buf + b->used, p, len);
    b->used += len;
    return 1;
}

/* The joiner at index 1: joiner:hex holds the metatable as upvalue 2, and
 * comparing with it spares luaL_checkudata's registry lookup by name. */
static const joiner *check_joiner(lua_State *L)
{
    const joiner *j = lua_touserdata(L, 1);
    if (j != NULL && lua_getmetatable(L, 1)) {
        int same = lua_rawequal(L, -1, lua_upvalueindex(2));
        lua_pop(L, 1);
        if (same)
            return j;
    }
    return luaL_checkudata(L, 1, JOINER_MT);            /* raises the usual error */
}

/* Digest the parts of t (index 2) with extra (index 3) into hex (2 *
 * EVP_MAX_MD_SIZE bytes) in the joiner's case; returns the hex length.
 * Raises on a part that is not a string.  Uses one stack slot above top. */
static size_t joiner_digest(lua_State *L, const joiner *j, char *hex)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getiuservalue(L, 1, 1);                          /* the string keys */
    int keys = lua_gettop(L);
    hash_engine *c = engine(L);
    int ok = direct_init(c, j->alg), first = 1, bad = 0;
    join_buf b;
    b.used = b.dirty = 0;
    size_t i;
    for (i = 0; ok && i <= j->n; i++) {
        if (i == j->n) {                                 /* after the last part */
            if (j->trailing)
                ok = feed(c, &b, j->sep, j->seplen);
            break;
        }
        lua_Integer k = j->idx[i];
        int t;
        if (k == 0) {
            lua_pushvalue(L, 3);
            t = lua_type(L, -1);
        } else if (k < 0) {
            lua_rawgeti(L, keys, -k);
            t = lua_rawget(L, 2);
        } else {
            t = lua_rawgeti(L, 2, k);
        }
        if (t != LUA_TSTRING) {
            lua_pop(L, 1);
            if (t == LUA_TNIL)
                continue;
            bad = t;
            break;
        }
        size_t len;
        const char *p = lua_tolstring(L, -1, &len);
        lua_pop(L, 1);   /* still referenced by the table (or slot 3): p stays valid */
        if (!first)
            ok = feed(c, &b, j->sep, j->seplen);
        ok = ok && feed(c, &b, p, len);
        first = 0;
    }
    if (ok && !bad && b.used > 0)
        ok = direct_update(c, b.buf, b.used);
    OPENSSL_cleanse(b.buf, b.used > b.dirty ? b.used : b.dirty);   /* every byte that held the key */
    /* finished after a bad part too: the final wipes the input the shared
     * context still buffers (with key = first, the key) */
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t len = ok ? direct_final(c, out) : 0;
    if (!bad && len > 0)
        to_hex(hex, out, len, j->upper);
    OPENSSL_cleanse(out, sizeof out);
    if (bad)
        return (size_t)luaL_error(L, "giro.hash.joiner: part %d is a %s, expected a string", (int)i + 1,
                          lua_typename(L, bad));
    if (!ok || len == 0)
        return (size_t)luaL_error(L, "giro.hash: OpenSSL digest failed");
    lua_pop(L, 1);                                       /* the keys */
    return 2 * len;
}

static int joiner_hex(lua_State *L)
{
    const joiner *j = check_joiner(L);
    lua_settop(L, 3);
    char hex[2 * EVP_MAX_MD_SIZE];
    size_t n = joiner_digest(L, j, hex);
    lua_pushlstring(L, hex, n);
    return 1;
}

static unsigned char upper_of(unsigned char c)
{
    return (unsigned char)(c - 32 * ((c >= 'a') & (c <= 'z')));
}

/* joiner:equal(t, extra, mac [, any_case]): does mac equal joiner:hex(t, extra)?
 * Constant time in the content (the lengths, public for MACs, may leak);
 * with any_case the letters' case does not matter. */
static int joiner_equal(lua_State *L)
{
    const joiner *j = check_joiner(L);
    size_t mlen;
    const char *mac = luaL_checklstring(L, 4, &mlen);
    int any_case = lua_toboolean(L, 5);
    lua_settop(L, 5);
    char hex[2 * EVP_MAX_MD_SIZE];
    size_t n = joiner_digest(L, j, hex);
    int same = 0;
    if (mlen == n) {
        same = CRYPTO_memcmp(hex, mac, n) == 0;
        if (!same && any_case) {
            char a[2 * EVP_MAX_MD_SIZE], b[2 * EVP_MAX_MD_SIZE];
            for (size_t i = 0; i < n; i++) {
                a[i] = (char)upper_of((unsigned char)hex[i]);
                b[i] = (char)upper_of((unsigned char)mac[i]);
            }
            same = CRYPTO_memcmp(a, b, n) == 0;
            OPENSSL_cleanse(a, n);                       /* the expected MAC, as hex was */
            OPENSSL_cleanse(b, n);
        }
    }
    OPENSSL_cleanse(hex, sizeof hex);
    lua_pushboolean(L, same);
    return 1;
}

static int joiner_tostring(lua_State *L)
{
    const joiner *j = luaL_checkudata(L, 1, JOINER_MT);
    lua_pushfstring(L, JOINER_MT " (%s, %d parts)", alg_names[j->alg], (int)j->n);
    return 1;
}

static int h_hmac(lua_State *L)
{
    const EVP_MD *md = check_alg(L, 1);
    size_t klen, dlen;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *data = luaL_checklstring(L, 3, &dlen);
    luaL_argcheck(L, klen <= INT_MAX, 2, "key too long");  /* HMAC() takes an int */
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(md, key, (int)klen, (const unsigned char *)data, dlen, out, &len) == NULL)
        return luaL_error(L, "giro.hash: OpenSSL HMAC failed");
    lua_pushlstring(L, (const char *)out, len);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

/* Constant time in the content; only the lengths (public for MACs) may leak. */
static int h_equal(lua_State *L)
{
    size_t na, nb;
    const char *a = luaL_checklstring(L, 1, &na);
    const char *b = luaL_checklstring(L, 2, &nb);
    lua_pushboolean(L, na == nb && CRYPTO_memcmp(a, b, na) == 0);
    return 1;
}

static hash_ctx *check_ctx(lua_State *L)
{
    return luaL_checkudata(L, 1, CTX_MT);
}

static int ctx_new(lua_State *L)
{
    const EVP_MD *md = check_alg(L, 1);
    /* userdata first, in a closed state, so a failure below leaks nothing */
    hash_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->md = NULL;
    c->finished = 1;
    luaL_setmetatable(L, CTX_MT);
    c->md = EVP_MD_CTX_new();
    if (c->md == NULL)
        return luaL_error(L, "giro.hash: out of memory");
    if (EVP_DigestInit_ex(c->md, md, NULL) != 1)
        return luaL_error(L, "giro.hash: OpenSSL digest init failed");
    c->finished = 0;
    return 1;
}

static int ctx_update(lua_State *L)
{
    hash_ctx *c = check_ctx(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (c->finished)
        return luaL_error(L, "giro.hash: update after final");
    if (EVP_DigestUpdate(c->md, s, n) != 1)
        return luaL_error(L, "giro.hash: OpenSSL digest update failed");
    lua_settop(L, 1);
    return 1;
}

static int ctx_final(lua_State *L)
{
    hash_ctx *c = check_ctx(L);
    if (c->finished)
        return luaL_error(L, "giro.hash: final called twice");
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    c->finished = 1;
    if (EVP_DigestFinal_ex(c->md, out, &len) != 1)
        return luaL_error(L, "giro.hash: OpenSSL digest final failed");
    lua_pushlstring(L, (const char *)out, len);
    return 1;
}

static int ctx_gc(lua_State *L)
{
    hash_ctx *c = check_ctx(L);
    if (c->md != NULL) {
        EVP_MD_CTX_free(c->md);
        c->md = NULL;
    }
    c->finished = 1;
    return 0;
}

static int ctx_tostring(lua_State *L)
{
    hash_ctx *c = check_ctx(L);
    lua_pushfstring(L, "giro.hash.ctx (%s)", c->finished ? "finished" : "open");
    return 1;
}

static const luaL_Reg ctx_meta[] = {
    { "__gc", ctx_gc },
    { "__close", ctx_gc },
    { "__tostring", ctx_tostring },
    { NULL, NULL }
};

static const luaL_Reg ctx_methods[] = {
    { "update", ctx_update },
    { "final", ctx_final },
    { NULL, NULL }
};

static const luaL_Reg hash_funcs[] = {
    { "md5", h_md5 },
    { "sha1", h_sha1 },
    { "sha256", h_sha256 },
    { "sha512", h_sha512 },
    { "digest", h_digest },
    { "hex", h_hex },
    { "hex_join", h_hex_join },
    { "hmac", h_hmac },
    { "equal", h_equal },
    { "new", ctx_new },
    { "joiner", joiner_new },
    { NULL, NULL }
};

int luaopen_giro_hash(lua_State *L)
{
    luaL_newmetatable(L, CTX_MT);                       /* [mt] */
    luaL_setfuncs(L, ctx_meta, 0);
    luaL_newlib(L, ctx_methods);                        /* [mt, methods] */
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    hash_engine *e = lua_newuserdatauv(L, sizeof *e, 0); /* [engine] */
    memset(e, 0, sizeof *e);
    luaL_newmetatable(L, ENGINE_MT);
    lua_pushcfunction(L, engine_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);

    luaL_newmetatable(L, JOINER_MT);                    /* [engine, jmt] */
    lua_pushcfunction(L, joiner_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_createtable(L, 0, 2);                           /* [engine, jmt, methods] */
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, joiner_hex, 2);
    lua_setfield(L, -2, "hex");
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, joiner_equal, 2);
    lua_setfield(L, -2, "equal");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);                                      /* [engine] */

    luaL_newlibtable(L, hash_funcs);                    /* [engine, lib] */
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, hash_funcs, 1);
    return 1;
}
