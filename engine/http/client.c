/*
 * giro.http — HTTP(S) client on libcurl, plus giro.url's URL/form encoding
 * helpers under giro.http names.
 *
 *   http.request{ method, url, headers, body | form, timeout, ca_file,
 *                 client_cert, client_key, key_password, max_body }
 *       -> status, headers, body        (or nil, message on transport failure)
 *   http.urlencode(s)       -> percent-encoded s (all but ALPHA DIGIT - . _ ~)
 *   http.urldecode(s)       -> decoded s ('+' is a space) | nil, message
 *   http.form_encode(list)  -> "a=1&b=2" from { {name, value}, ... }
 *   http.parse_query(s)     -> { {name, value}, ... } | nil, message
 *
 * Security decisions (a contract, see docs/modules.md):
 *  - peer and host verification are always on; `ca_file` may replace the
 *    trust store but nothing can switch verification off, and an unknown
 *    field in the request table (`insecure = true`) raises;
 *  - redirects are never followed; only http and https are spoken;
 *  - messages name the method and URL without userinfo or query string and
 *    never contain key_password.
 *
 * Memory: everything libcurl-side for one request (easy handle, header list,
 * response buffers) hangs off a userdata with a __gc, created before anything
 * is allocated, so a raise anywhere (bad argument, out of memory while
 * building the result) leaks nothing; it is also released eagerly before
 * returning.  The curl callbacks never touch Lua: they append to plain C
 * buffers and return 0 (abort) when a limit is passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "giro.h"

#define REQ_MT "giro.http.request"
#define GLOBAL_MT "giro.http.global"

#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_MAX_BODY ((size_t)16 * 1024 * 1024)
#define MAX_HEADER_BYTES ((size_t)256 * 1024)   /* response header block cap */

/* ---------------------------------------------------------------- helpers */

/* The URL and form helpers are giro.url's (engine/url.c, in the executable):
 * luaopen_giro_http re-exports its C functions under giro.http names. */
static const char *const url_funcs[] = { "urlencode", "urldecode", "form_encode", "parse_query", NULL };

/* ---------------------------------------------------------------- request */

typedef struct {
    char *data;
    size_t len, cap;
    size_t max;        /* refuse to grow past this */
    int overflow;      /* set when max was passed */
    int nomem;         /* set when realloc failed */
} membuf;

typedef struct {
    CURL *easy;
    struct curl_slist *headers;
    membuf body, head;
    char errbuf[CURL_ERROR_SIZE];
} http_req;

static int membuf_add(membuf *m, const char *p, size_t n)
{
    if (n == 0)
        return 1;
    if (n > m->max - m->len) {
        m->overflow = 1;
        return 0;
    }
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + n)
            cap = cap > m->max / 2 ? m->max : cap * 2;
        char *d = realloc(m->data, cap);
        if (d == NULL) {
            m->nomem = 1;
            return 0;
        }
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
    return 1;
}

static void membuf_free(membuf *m)
{
    free(m->data);
    m->data = NULL;
    m->len = m->cap = 0;
}

/* libcurl callbacks: plain C, no Lua; returning a short count aborts. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    http_req *r = ud;
    size_t n = size * nmemb;
    return membuf_add(&r->body, ptr, n) ? n : 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    http_req *r = ud;
    size_t n = size * nmemb;
    /* a new status line (after 100 Continue, say) starts a new header block */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        r->head.len = 0;
    return membuf_add(&r->head, ptr, n) ? n : 0;
}

static int req_gc(lua_State *L)
{
    http_req *r = luaL_checkudata(L, 1, REQ_MT);
    if (r->easy != NULL) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    if (r->headers != NULL) {
        curl_slist_free_all(r->headers);
        r->headers = NULL;
    }
    membuf_free(&r->body);
    membuf_free(&r->head);
    return 0;
}

/* Free the request's C resources now rather than at the next GC cycle and
 * return nres (the results already on top of the stack). */
static int release(lua_State *L, int ud, int nres)
{
    lua_pushcfunction(L, req_gc);
    lua_pushvalue(L, ud);
    lua_call(L, 1, 0);
    return nres;
}

static const char *const req_fields[] = {
    "method", "url", "headers", "body", "form", "timeout", "ca_file",
    "client_cert", "client_key", "key_password", "max_body", NULL
};

/* Every key of the request table must be a known field: a typo or an attempt
 * to weaken TLS (`insecure = true`, `verify = false`) is refused loudly. */
static void check_fields(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        int known = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (int i = 0; req_fields[i] != NULL; i++)
                if (strcmp(k, req_fields[i]) == 0)
                    known = 1;
            if (!known)
                luaL_error(L, "giro.http.request: unknown field '%s' (known: method, url, "
                           "headers, body, form, timeout, ca_file, client_cert, client_key, "
                           "key_password, max_body; TLS verification cannot be turned off)", k);
        } else {
            luaL_error(L, "giro.http.request: unexpected %s key in the request table",
                       luaL_typename(L, -1));
        }
    }
}

/* Optional string field: NULL when absent, raises on another type.  Read raw
 * (an __index never runs, and check_fields saw every key) and LEFT ON THE
 * STACK, nil when absent: Lua code that runs later in h_request (a __len of
 * `headers`, say) may change the table, and the string must stay alive
 * while libcurl and this function use the pointer. */
static const char *opt_string_field(lua_State *L, int t, const char *name, size_t *len)
{
    lua_pushstring(L, name);
    int ty = lua_rawget(L, t);
    if (ty == LUA_TNIL)
        return NULL;
    if (ty != LUA_TSTRING)
        luaL_error(L, "giro.http.request: field '%s' is a %s, expected a string", name,
                   luaL_typename(L, -1));
    return lua_tolstring(L, -1, len);
}

static lua_Number opt_number_field(lua_State *L, int t, const char *name, lua_Number dflt)
{
    lua_pushstring(L, name);
    int ty = lua_rawget(L, t);
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return dflt;
    }
    if (ty != LUA_TNUMBER)
        luaL_error(L, "giro.http.request: field '%s' is a %s, expected a number", name,
                   luaL_typename(L, -1));
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

#define SETOPT(L, r, opt, val) \
    setopt_check((L), curl_easy_setopt((r)->easy, (opt), (val)), #opt)

static void setopt_check(lua_State *L, CURLcode rc, const char *what)
{
    if (rc != CURLE_OK)
        luaL_error(L, "giro.http.request: libcurl refused %s: %s", what, curl_easy_strerror(rc));
}

static int is_token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Append "Name: value" to the request's header list, refusing names that are
 * not HTTP tokens and values with CR, LF or NUL (header injection). */
static void add_header(lua_State *L, http_req *r, int nidx, int vidx)
{
    nidx = lua_absindex(L, nidx);
    vidx = lua_absindex(L, vidx);
    if (lua_type(L, nidx) != LUA_TSTRING)
        luaL_error(L, "giro.http.request: header name is a %s, expected a string",
                   luaL_typename(L, nidx));
    int vt = lua_type(L, vidx);
    if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
        luaL_error(L, "giro.http.request: header '%s' value is a %s, expected a string",
                   lua_tostring(L, nidx), luaL_typename(L, vidx));
    size_t nn, vn;
    const char *name = lua_tolstring(L, nidx, &nn);
    const char *value = lua_tolstring(L, vidx, &vn);
    if (nn == 0)
        luaL_error(L, "giro.http.request: empty header name");
    for (size_t i = 0; i < nn; i++)
        if (!is_token_char((unsigned char)name[i]))
            luaL_error(L, "giro.http.request: invalid header name '%s'", name);
    for (size_t i = 0; i < vn; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            luaL_error(L, "giro.http.request: header '%s' value contains CR, LF or NUL", name);
    /* curl: "Name:" removes a header, "Name;" sends it empty */
    const char *line = vn ? lua_pushfstring(L, "%s: %s", name, value)
                          : lua_pushfstring(L, "%s;", name);
    struct curl_slist *next = curl_slist_append(r->headers, line);
    lua_pop(L, 1);
    if (next == NULL)
        luaL_error(L, "giro.http.request: out of memory");
    r->headers = next;
}

static void set_headers(lua_State *L, http_req *r, int t)
{
    lua_pushliteral(L, "headers");
    int ty = lua_rawget(L, t);
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (ty != LUA_TTABLE)
        luaL_error(L, "giro.http.request: field 'headers' is a %s, expected a table",
                   luaL_typename(L, -1));
    int h = lua_gettop(L);
    lua_Integer n = (lua_Integer)luaL_len(L, h);
    for (lua_Integer i = 1; i <= n; i++) {             /* list part: {name, value} */
        if (lua_rawgeti(L, h, i) != LUA_TTABLE)
            luaL_error(L, "giro.http.request: headers[%d] is a %s, expected {name, value}",
                       (int)i, luaL_typename(L, -1));
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        add_header(L, r, -2, -1);
        lua_pop(L, 3);
    }
    lua_pushnil(L);                                     /* map part: name = value */
    while (lua_next(L, h) != 0) {
        if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 && lua_tointeger(L, -2) <= n) {
            lua_pop(L, 1);
            continue;
        }
        add_header(L, r, -2, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* The URL for messages: scheme://host[:port]/path, without userinfo (which
 * may hold a password) and with any query or fragment elided. */
static const char *push_safe_url(lua_State *L, const char *url)
{
    const char *p = strstr(url, "://");
    const char *auth = p ? p + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *q = auth; q < auth + alen; q++)
        if (*q == '@')
            at = q;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, url, (size_t)(auth - url));
    const char *host = at ? at + 1 : auth;
    luaL_addlstring(&b, host, (size_t)(auth + alen - host));
    const char *rest = auth + alen;
    size_t plen = strcspn(rest, "?#");
    luaL_addlstring(&b, rest, plen);
    if (rest[plen] != '\0')
        luaL_addstring(&b, "?...");
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* Turn the raw header block (status line, "Name: value" lines) into
 * { [lower-name] = "v1, v2", [i] = {name, value} }. */
static void push_headers(lua_State *L, const membuf *m)
{
    lua_newtable(L);                                     /* [t] */
    if (m->data == NULL)
        return;
    int t = lua_gettop(L);
    const char *p = m->data, *end = m->data + m->len;
    int first = 1;
    lua_Integer count = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        while (le > p && (le[-1] == '\r' || le[-1] == '\n'))
            le--;
        if (first || le == p) {                          /* status line or final blank line */
            first = 0;
            p = next;
            continue;
        }
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if ((*p == ' ' || *p == '\t') && count > 0) {
            /* obsolete line folding: continues the previous value */
            const char *v = p;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            lua_rawgeti(L, t, count);                    /* [t, pair] */
            lua_rawgeti(L, -1, 2);
            lua_pushliteral(L, " ");
            lua_pushlstring(L, v, (size_t)(le - v));
            lua_concat(L, 3);                            /* [t, pair, value'] */
            lua_rawseti(L, -2, 2);
            lua_pop(L, 1);
            p = next;
            continue;
        }
        if (colon == NULL || colon == p) {               /* not a header line: ignore */
            p = next;
            continue;
        }
        const char *ne = colon;
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        lua_createtable(L, 2, 0);                        /* [t, pair] */
        lua_pushlstring(L, p, (size_t)(ne - p));
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, t, ++count);                      /* [t] */
        p = next;
    }
    /* the map: lower-cased names, repeated headers joined with ", " */
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, t, i);                            /* [t, pair] */
        int pair = lua_gettop(L);
        lua_rawgeti(L, pair, 1);                         /* [t, pair, name] */
        size_t nn;
        const char *name = lua_tolstring(L, -1, &nn);
        luaL_Buffer b;
        char *low = luaL_buffinitsize(L, &b, nn);
        for (size_t k = 0; k < nn; k++)
            low[k] = (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] + 32) : name[k];
        luaL_pushresultsize(&b, nn);                     /* [t, pair, name, low] */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, t) == LUA_TSTRING) {           /* [t, pair, name, low, old] */
            lua_pushliteral(L, ", ");
            lua_rawgeti(L, pair, 2);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_rawgeti(L, pair, 2);
        }
        lua_rawset(L, t);                                /* [t, pair, name] */
        lua_pop(L, 2);
    }
}

static int h_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_checkstack(L, 40, "giro.http.request");  /* the fields stay on the stack */
    check_fields(L, 1);

    /* the resources first, in a closed state, so any raise below leaks nothing */
    http_req *r = lua_newuserdatauv(L, sizeof *r, 0);    /* [req, ud] */
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, REQ_MT);
    int ud = lua_gettop(L);

    size_t len;
    const char *url = opt_string_field(L, 1, "url", &len);
    if (url == NULL)
        return luaL_error(L, "giro.http.request: field 'url' is required");
    if (strlen(url) != len)
        return luaL_error(L, "giro.http.request: url contains a NUL byte");
    const char *safe_url = push_safe_url(L, url);        /* [req, ud, safe_url] */

    const char *body = opt_string_field(L, 1, "body", &len);
    size_t body_len = len;
    lua_pushliteral(L, "form");
    if (lua_rawget(L, 1) != LUA_TNIL) {                  /* [.., form] */
        if (body != NULL)
            return luaL_error(L, "giro.http.request: give 'body' or 'form', not both");
        if (!lua_istable(L, -1))
            return luaL_error(L, "giro.http.request: field 'form' is a %s, expected a list "
                              "of {name, value}", luaL_typename(L, -1));
        lua_pushvalue(L, lua_upvalueindex(2));           /* giro.url's form_encode */
        lua_insert(L, -2);
        lua_call(L, 1, 1);
        body = lua_tolstring(L, -1, &body_len);          /* [.., encoded] */
    }
    /* (the encoded form stays on the stack, so body lives until we return) */

    const char *method = opt_string_field(L, 1, "method", &len);
    if (method == NULL)
        method = body ? "POST" : "GET";
    if (method[0] == '\0')
        return luaL_error(L, "giro.http.request: empty method");
    for (const char *m = method; *m; m++)
        if (!(*m >= 'A' && *m <= 'Z'))
            return luaL_error(L, "giro.http.request: method '%s' must be upper-case letters",
                              method);
    if (body && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
        return luaL_error(L, "giro.http.request: a %s request cannot carry a body", method);

    lua_Number timeout = opt_number_field(L, 1, "timeout", DEFAULT_TIMEOUT);
    if (!(timeout > 0 && timeout <= 86400))
        return luaL_error(L, "giro.http.request: timeout must be between 0 and 86400 seconds");
    lua_Number max_body = opt_number_field(L, 1, "max_body", (lua_Number)DEFAULT_MAX_BODY);
    if (!(max_body >= 0 && max_body <= (lua_Number)((size_t)1 << 40)))
        return luaL_error(L, "giro.http.request: max_body must be a byte count >= 0");
    const char *ca_file = opt_string_field(L, 1, "ca_file", &len);
    const char *client_cert = opt_string_field(L, 1, "client_cert", &len);
    const char *client_key = opt_string_field(L, 1, "client_key", &len);
    const char *key_password = opt_string_field(L, 1, "key_password", &len);
    if (client_key && !client_cert)
        return luaL_error(L, "giro.http.request: client_key given without client_cert");
    if (key_password && !client_cert)
        return luaL_error(L, "giro.http.request: key_password given without client_cert");

    r->body.max = (size_t)max_body;
    r->head.max = MAX_HEADER_BYTES;
    r->easy = curl_easy_init();
    if (r->easy == NULL)
        return luaL_error(L, "giro.http.request: curl_easy_init failed");

    set_headers(L, r, 1);

    SETOPT(L, r, CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(L, r, CURLOPT_URL, url);
    SETOPT(L, r, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(L, r, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(L, r, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(L, r, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(L, r, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(L, r, CURLOPT_NOSIGNAL, 1L);        /* no SIGALRM: safe in any host */
    long timeout_ms = timeout * 1000 < 1 ? 1 : (long)(timeout * 1000);  /* 0 = none */
    SETOPT(L, r, CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(L, r, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    SETOPT(L, r, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(L, r, CURLOPT_WRITEDATA, r);
    SETOPT(L, r, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(L, r, CURLOPT_HEADERDATA, r);
    if (max_body > 0)   /* early refusal on Content-Length; 0 would mean "no limit" */
        SETOPT(L, r, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
    if (r->headers != NULL)
        SETOPT(L, r, CURLOPT_HTTPHEADER, r->headers);
    if (ca_file != NULL) {
        /* replace the system store: the file alone decides who is trusted */
        SETOPT(L, r, CURLOPT_CAINFO, ca_file);
        SETOPT(L, r, CURLOPT_CAPATH, (char *)NULL);
    }
    if (client_cert != NULL) {
        SETOPT(L, r, CURLOPT_SSLCERT, client_cert);
        SETOPT(L, r, CURLOPT_SSLCERTTYPE, "PEM");
        SETOPT(L, r, CURLOPT_SSLKEY, client_key ? client_key : client_cert);
        SETOPT(L, r, CURLOPT_SSLKEYTYPE, "PEM");
        if (key_password != NULL)
            SETOPT(L, r, CURLOPT_KEYPASSWD, key_password);
    }

    if (strcmp(method, "HEAD") == 0) {
        SETOPT(L, r, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0) {
        SETOPT(L, r, CURLOPT_HTTPGET, 1L);
    } else {
        /* POST machinery for the body (empty if none), the verb as given */
        if (body == NULL) {
            body = "";
            body_len = 0;
        }
        SETOPT(L, r, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SETOPT(L, r, CURLOPT_POSTFIELDS, body);   /* lives on our stack until the end */
        if (strcmp(method, "POST") != 0)
            SETOPT(L, r, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode rc = curl_easy_perform(r->easy);
    if (rc != CURLE_OK) {
        const char *why;
        if (rc == CURLE_FILESIZE_EXCEEDED || r->body.overflow)
            why = lua_pushfstring(L, "response body larger than max_body (%I bytes)",
                                  (lua_Integer)r->body.max);
        else if (r->head.overflow)
            why = lua_pushfstring(L, "response headers larger than %I bytes",
                                  (lua_Integer)MAX_HEADER_BYTES);
        else if (r->body.nomem || r->head.nomem)
            why = lua_pushliteral(L, "out of memory for the response");
        else if (r->errbuf[0] != '\0')
            why = lua_pushfstring(L, "%s: %s", curl_easy_strerror(rc), r->errbuf);
        else
            why = lua_pushstring(L, curl_easy_strerror(rc));
        lua_pushnil(L);
        lua_pushfstring(L, "giro.http: %s %s failed: %s", method, safe_url, why);
        return release(L, ud, 2);
    }
    long status = 0;
    rc = curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "giro.http: %s %s: no status: %s", method, safe_url,
                        curl_easy_strerror(rc));
        return release(L, ud, 2);
    }
    lua_pushinteger(L, status);
    push_headers(L, &r->head);
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    return release(L, ud, 3);
}

/* -------------------------------------------------------- global set-up */

/* curl_global_init is reference counted by libcurl (and thread-safe since
 * 7.84), so each state that opens the module takes one reference and gives
 * it back when the state closes, through the __gc of a sentinel userdata kept
 * as an upvalue of request().  No static flag is needed. */
typedef struct {
    int inited;
} http_global;

static int global_gc(lua_State *L)
{
    http_global *g = luaL_checkudata(L, 1, GLOBAL_MT);
    if (g->inited) {
        g->inited = 0;
        curl_global_cleanup();
    }
    return 0;
}

/* giro.url's C function `name` as a closure that names itself `shown` */
static void push_url_func(lua_State *L, int url, const char *name, const char *shown)
{
    lua_getfield(L, url, name);
    lua_CFunction f = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (f == NULL)
        luaL_error(L, "giro.http: giro.url.%s is missing", name);
    lua_pushstring(L, shown);
    lua_pushcclosure(L, f, 1);
}

int luaopen_giro_http(lua_State *L)
{
    luaL_newmetatable(L, REQ_MT);
    lua_pushcfunction(L, req_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, req_gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newmetatable(L, GLOBAL_MT);
    lua_pushcfunction(L, global_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "giro.url");
    lua_call(L, 1, 1);                                   /* [url] */
    int url = lua_gettop(L);
    lua_newtable(L);                                     /* [url, M] */
    for (const char *const *n = url_funcs; *n; n++) {
        lua_pushfstring(L, "giro.http.%s", *n);
        push_url_func(L, url, *n, lua_tostring(L, -1));  /* [url, M, shown, fn] */
        lua_setfield(L, -3, *n);
        lua_pop(L, 1);
    }
    http_global *g = lua_newuserdatauv(L, sizeof *g, 0); /* [url, M, g] */
    g->inited = 0;
    luaL_setmetatable(L, GLOBAL_MT);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "giro.http: curl_global_init failed");
    g->inited = 1;
    push_url_func(L, url, "form_encode", "giro.http.request: form");  /* [url, M, g, enc] */
    lua_pushcclosure(L, h_request, 2);                   /* [url, M, request] */
    lua_setfield(L, -2, "request");
    return 1;
}
