/*
 * giro.hash — message digests, HMAC and constant-time comparison on OpenSSL EVP.
 *
 *   hash.md5(s) / sha1 / sha256 / sha512   -> raw digest
 *   hash.digest(alg, s)                    -> raw digest
 *   hash.hex(bytes [, "upper"|"lower"])    -> hex string (lower by default)
 *   hash.hmac(alg, key, data)              -> raw MAC
 *   hash.equal(a, b)                       -> boolean, time independent of content
 *   hash.new(alg)                          -> ctx with :update(s) (returns ctx) and :final()
 */
#include <limits.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "giro.h"

#define CTX_MT "giro.hash.ctx"

typedef struct {
    EVP_MD_CTX *md;   /* NULL once finalised or collected */
    int finished;
} hash_ctx;

static const char *const alg_names[] = { "md5", "sha1", "sha256", "sha512", NULL };

static const EVP_MD *alg_md(int i)
{
    switch (i) {
    case 0: return EVP_md5();
    case 1: return EVP_sha1();
    case 2: return EVP_sha256();
    default: return EVP_sha512();
    }
}

static const EVP_MD *check_alg(lua_State *L, int arg)
{
    return alg_md(luaL_checkoption(L, arg, NULL, alg_names));
}

static int push_digest(lua_State *L, const EVP_MD *md, const char *s, size_t n)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(s, n, out, &len, md, NULL) != 1)
        return luaL_error(L, "giro.hash: OpenSSL digest failed");
    lua_pushlstring(L, (const char *)out, len);
    return 1;
}

static int one_shot(lua_State *L, int alg)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    return push_digest(L, alg_md(alg), s, n);
}

static int h_md5(lua_State *L)    { return one_shot(L, 0); }
static int h_sha1(lua_State *L)   { return one_shot(L, 1); }
static int h_sha256(lua_State *L) { return one_shot(L, 2); }
static int h_sha512(lua_State *L) { return one_shot(L, 3); }

static int h_digest(lua_State *L)
{
    const EVP_MD *md = check_alg(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    return push_digest(L, md, s, n);
}

static int h_hex(lua_State *L)
{
    static const char *const cases[] = { "lower", "upper", NULL };
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    const char *digits = luaL_checkoption(L, 2, "lower", cases) == 1
        ? "0123456789ABCDEF" : "0123456789abcdef";
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 2 * n);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    luaL_pushresultsize(&b, 2 * n);
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
    { "hmac", h_hmac },
    { "equal", h_equal },
    { "new", ctx_new },
    { NULL, NULL }
};

int luaopen_giro_hash(lua_State *L)
{
    luaL_newmetatable(L, CTX_MT);                       /* [mt] */
    luaL_setfuncs(L, ctx_meta, 0);
    luaL_newlib(L, ctx_methods);                        /* [mt, methods] */
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, hash_funcs);
    return 1;
}
