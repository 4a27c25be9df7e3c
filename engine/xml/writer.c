/*
 * giro.xml's writer: xml.writer and xml.escape.
 */
#include "xml/xml.h"

/*
 * Written by hand rather than on xmlTextWriter: the output rules we need are
 * not xmlTextWriter's (a character that ISO-8859-1 cannot hold must become a
 * character reference *outside* the CDATA section, "]]>" must be split, the
 * declaration must read encoding="iso-8859-1" exactly), UTF-8 -> Latin-1 is
 * a few lines without iconv, and escaping straight into one buffer is the
 * fastest path.  With a file descriptor (giro.output's temporary file), the
 * buffer is flushed to it every 64 KiB, so memory stays flat; where the file
 * ends up (rename, stdout) is giro.output's business, not the writer's.
 */

enum { W_OPEN, W_DONE, W_CLOSED };
enum { M_TEXT, M_ATTR };

typedef struct {
    int filemode, fd, latin1, indent, state, root, ioerr;
    char *path, *tmp;           /* name for messages; path that reads the file back */
    char *out;                  /* output (all of it in memory mode) */
    size_t olen, ocap;
    char *names;                /* open element names, NUL separated */
    size_t nlen, ncap;
    size_t *noff;               /* offsets of the open names */
    unsigned char *flags;       /* per open element: 1 child elements, 2 text */
    int depth, dcap;
    xml_check *check;           /* the XSD check running beside the writing (check.c) */
} xml_writer;

static xml_writer *check_writer(lua_State *L)
{
    return luaL_checkudata(L, 1, WRITER_MT);
}

static xml_writer *check_writing(lua_State *L)
{
    xml_writer *w = check_writer(L);
    if (w->state != W_OPEN)
        luaL_error(L, "giro.xml: writer is %s", w->state == W_DONE ? "finished" : "closed");
    return w;
}

static void w_flush(xml_writer *w)
{
    size_t off = 0;
    while (off < w->olen && w->ioerr == 0) {
        ssize_t n = write(w->fd, w->out + off, w->olen - off);
        if (n < 0) {
            if (errno != EINTR)
                w->ioerr = errno;
            continue;
        }
        off += (size_t)n;
    }
    xml_check_put(w->check, w->out, w->olen);
    w->olen = 0;
}

static void w_put(lua_State *L, xml_writer *w, const char *s, size_t n)
{
    if (w->ocap - w->olen < n) {
        if (w->filemode && w->olen > 0)
            w_flush(w);
        /* in file mode the buffer holds a whole chunk, so a flush writes 64 KiB */
        xml_grow(L, &w->out, &w->ocap, w->olen + n + (w->filemode ? CHUNK : 0));
    }
    memcpy(w->out + w->olen, s, n);
    w->olen += n;
    if (w->filemode && w->olen >= CHUNK)
        w_flush(w);
}

#define W_LIT(L, w, s) w_put(L, w, s, sizeof(s) - 1)

/* Decode one UTF-8 sequence; returns its length, or 0 if it is invalid. */
static int utf8_dec(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; c &= 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; c &= 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; c &= 0x07; min = 0x10000; }
    else return 0;
    if (n < (size_t)len)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Raise unless s is UTF-8 made of characters XML 1.0 allows. */
static void check_text(lua_State *L, const char *s, size_t n, const char *what)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        if (u[i] >= 0x20 && u[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_dec(u + i, n - i, &cp);
        if (k == 0)
            luaL_error(L, "giro.xml: invalid UTF-8 in %s at byte %d", what, (int)(i + 1));
        if ((cp < 0x20 && cp != 9 && cp != 10 && cp != 13) || cp == 0xFFFE || cp == 0xFFFF) {
            char u4[16];
            snprintf(u4, sizeof u4, "U+%04X", cp);
            luaL_error(L, "giro.xml: character %s at byte %d of %s is not allowed in XML 1.0"
                       " (it cannot be written, not even as a character reference)",
                       u4, (int)(i + 1), what);
        }
        i += (size_t)k;
    }
}

static void check_name(lua_State *L, const char *s, size_t n)
{
    int ok = n > 0 && (((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z') || s[0] == '_' || s[0] == ':');
    for (size_t i = 1; ok && i < n; i++) {
        char c = s[i];
        ok = ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9')
             || c == '_' || c == ':' || c == '-' || c == '.';
    }
    if (!ok)
        luaL_error(L, "giro.xml: invalid XML name \"%s\" (ASCII letters, digits, _ : - . expected)", s);
}

static void w_charref(lua_State *L, xml_writer *w, unsigned cp)
{
    char ref[16];
    int n = snprintf(ref, sizeof ref, "&#%u;", cp);
    w_put(L, w, ref, (size_t)n);
}

/* Escaped text or attribute value; s has passed check_text. */
static void w_escaped(lua_State *L, xml_writer *w, const char *s, size_t n, int mode)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = u[i];
        const char *rep = NULL;
        if (c < 0x80) {
            switch (c) {
            case '&': rep = "&amp;"; break;
            case '<': rep = "&lt;"; break;
            case '>': rep = "&gt;"; break;
            case '\r': rep = "&#13;"; break;
            case '"': if (mode == M_ATTR) rep = "&quot;"; break;
            case '\t': if (mode == M_ATTR) rep = "&#9;"; break;
            case '\n': if (mode == M_ATTR) rep = "&#10;"; break;
            default: break;
            }
            i++;
            if (rep != NULL) {
                w_put(L, w, s + run, i - 1 - run);
                w_put(L, w, rep, strlen(rep));
                run = i;
            }
            continue;
        }
        unsigned cp;
        int k = utf8_dec(u + i, n - i, &cp);
        if (!w->latin1) {
            i += (size_t)k;
            continue;
        }
        w_put(L, w, s + run, i - run);
        if (cp <= 0xFF) {
            char b = (char)cp;
            w_put(L, w, &b, 1);
        } else {
            w_charref(L, w, cp);
        }
        i += (size_t)k;
        run = i;
    }
    w_put(L, w, s + run, n - run);
}

/* CDATA content; a character the encoding cannot hold (and CR, which the
 * parser would turn into LF) goes between sections as a character reference;
 * "]]>" is split over two sections.  Sections are opened lazily, so no empty
 * ones appear, except one for an empty string when `force`. */
static void w_cdata_body(lua_State *L, xml_writer *w, const char *s, size_t n, int force)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    int in = 0;
    /* A CR at either end becomes &#13; outside any section, and the reader
     * drops whitespace-only text before the first and after the last CDATA
     * section (the Nets layout " <![CDATA[x]]> "); an empty section at that
     * end keeps the CR inside the value. */
    if (n > 0 && u[0] == '\r')
        W_LIT(L, w, "<![CDATA[]]>");
#define CD_FLUSH() do { if (i > run) { if (!in) { W_LIT(L, w, "<![CDATA["); in = 1; } \
                        w_put(L, w, s + run, i - run); } } while (0)
    while (i < n) {
        unsigned char c = u[i];
        if (c == ']' && i + 2 < n && u[i + 1] == ']' && u[i + 2] == '>') {
            i += 2;                       /* "]]" ends this section, ">" starts the next */
            CD_FLUSH();
            W_LIT(L, w, "]]>");
            in = 0;
            run = i;
            continue;
        }
        if (c < 0x80 && c != '\r') {
            i++;
            continue;
        }
        unsigned cp;
        int k = utf8_dec(u + i, n - i, &cp);
        if (!w->latin1 && c != '\r') {
            i += (size_t)k;
            continue;
        }
        CD_FLUSH();
        if (c != '\r' && cp <= 0xFF) {
            char b = (char)cp;
            if (!in) {
                W_LIT(L, w, "<![CDATA[");
                in = 1;
            }
            w_put(L, w, &b, 1);
        } else {
            if (in) {
                W_LIT(L, w, "]]>");
                in = 0;
            }
            w_charref(L, w, cp);
        }
        i += (size_t)k;
        run = i;
    }
    CD_FLUSH();
#undef CD_FLUSH
    if (in)
        W_LIT(L, w, "]]>");
    else if ((force && n == 0) || (n > 0 && u[n - 1] == '\r'))
        W_LIT(L, w, "<![CDATA[]]>");
}

static void w_newline(lua_State *L, xml_writer *w, int depth)
{
    W_LIT(L, w, "\n");
    for (int i = 0; i < depth; i++)
        W_LIT(L, w, "  ");
}

/* Bookkeeping before a child element of the innermost open element. */
static void w_before_element(lua_State *L, xml_writer *w)
{
    if (w->depth == 0 && w->root)
        luaL_error(L, "giro.xml: the document already has its root element");
    if (w->depth > 0) {
        unsigned char *f = &w->flags[w->depth - 1];
        *f |= 1;
        if (w->indent && !(*f & 2))
            w_newline(L, w, w->depth);
    }
}

static const char **sorted_attrs(lua_State *L, int idx, int *count)
{
    *count = 0;
    if (lua_isnoneornil(L, idx))
        return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        n++;
        lua_pop(L, 1);
    }
    const char **keys = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *keys, 0);
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "giro.xml: attribute names must be strings");
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "giro.xml: attribute %s: string expected", lua_tostring(L, -2));
        size_t len;
        const char *key = lua_tolstring(L, -2, &len);
        check_name(L, key, len);
        keys[k++] = key;        /* anchored by the table */
        lua_pop(L, 1);
    }
    /* sorted, so the output does not depend on table order */
    for (int i = 1; i < n; i++) {
        const char *t = keys[i];
        int j = i - 1;
        while (j >= 0 && strcmp(keys[j], t) > 0) {
            keys[j + 1] = keys[j];
            j--;
        }
        keys[j + 1] = t;
    }
    for (int i = 0; i < n; i++) {
        size_t len;
        lua_getfield(L, idx, keys[i]);
        const char *v = lua_tolstring(L, -1, &len);
        check_text(L, v, len, "an attribute value");
        lua_pop(L, 1);
    }
    *count = n;
    return keys;                 /* the userdata stays on the stack */
}

static void w_attrs(lua_State *L, xml_writer *w, int idx, const char **keys, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len;
        W_LIT(L, w, " ");
        w_put(L, w, keys[i], strlen(keys[i]));
        W_LIT(L, w, "=\"");
        lua_getfield(L, idx, keys[i]);
        const char *v = lua_tolstring(L, -1, &len);
        w_escaped(L, w, v, len, M_ATTR);
        lua_pop(L, 1);
        W_LIT(L, w, "\"");
    }
}

static void w_push_name(lua_State *L, xml_writer *w, const char *name, size_t len)
{
    if (w->depth == w->dcap) {
        int cap = w->dcap ? 2 * w->dcap : 16;
        size_t *noff = realloc(w->noff, (size_t)cap * sizeof *noff);
        if (noff == NULL)
            luaL_error(L, "giro.xml: out of memory");
        w->noff = noff;
        unsigned char *flags = realloc(w->flags, (size_t)cap);
        if (flags == NULL)
            luaL_error(L, "giro.xml: out of memory");
        w->flags = flags;
        w->dcap = cap;
    }
    xml_grow(L, &w->names, &w->ncap, w->nlen + len + 1);
    w->noff[w->depth] = w->nlen;
    w->flags[w->depth] = 0;
    memcpy(w->names + w->nlen, name, len + 1);
    w->nlen += len + 1;
    w->depth++;
}

static void w_end(lua_State *L, xml_writer *w)
{
    w->depth--;
    const char *name = w->names + w->noff[w->depth];
    if (w->indent && w->flags[w->depth] == 1)
        w_newline(L, w, w->depth);
    W_LIT(L, w, "</");
    w_put(L, w, name, strlen(name));
    W_LIT(L, w, ">");
    w->nlen = w->noff[w->depth];
    if (w->depth == 0)
        w->root = 1;
}

/* "<name attrs" of w:start and w:empty (name at 2, attributes at 3); everything
 * is checked before a byte is written.  Returns the name. */
static const char *w_open_tag(lua_State *L, xml_writer *w, size_t *len)
{
    const char *name = luaL_checklstring(L, 2, len);
    check_name(L, name, *len);
    int n;
    const char **keys = sorted_attrs(L, 3, &n);
    w_before_element(L, w);
    W_LIT(L, w, "<");
    w_put(L, w, name, *len);
    w_attrs(L, w, 3, keys, n);
    return name;
}

static int w_start(lua_State *L)
{
    xml_writer *w = check_writing(L);
    size_t len;
    const char *name = w_open_tag(L, w, &len);
    W_LIT(L, w, ">");
    w_push_name(L, w, name, len);
    lua_settop(L, 1);
    return 1;
}

static int w_finish(lua_State *L)
{
    xml_writer *w = check_writing(L);
    if (w->depth == 0)
        return luaL_error(L, "giro.xml: finish: no element is open");
    w_end(L, w);
    lua_settop(L, 1);
    return 1;
}

static void w_in_element(lua_State *L, xml_writer *w, const char *what)
{
    if (w->depth == 0)
        luaL_error(L, "giro.xml: %s outside the root element", what);
    w->flags[w->depth - 1] |= 2;
}

static int w_text(lua_State *L)
{
    xml_writer *w = check_writing(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    check_text(L, s, len, "text");
    w_in_element(L, w, "text");
    w_escaped(L, w, s, len, M_TEXT);
    lua_settop(L, 1);
    return 1;
}

static int w_cdata(lua_State *L)
{
    xml_writer *w = check_writing(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    check_text(L, s, len, "CDATA");
    w_in_element(L, w, "CDATA");
    w_cdata_body(L, w, s, len, 1);
    lua_settop(L, 1);
    return 1;
}

static int w_leaf_common(lua_State *L, int cdata)
{
    xml_writer *w = check_writing(L);
    size_t len, slen = 0;
    const char *name = luaL_checklstring(L, 2, &len);
    const char *s = luaL_optlstring(L, 3, NULL, &slen);
    check_name(L, name, len);
    if (s != NULL) {
        lua_pushfstring(L, "the value of <%s>", name);
        check_text(L, s, slen, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    w_before_element(L, w);
    W_LIT(L, w, "<");
    w_put(L, w, name, len);
    if (slen == 0) {
        W_LIT(L, w, "/>");
    } else {
        W_LIT(L, w, ">");
        if (cdata)
            w_cdata_body(L, w, s, slen, 1);
        else
            w_escaped(L, w, s, slen, M_TEXT);
        W_LIT(L, w, "</");
        w_put(L, w, name, len);
        W_LIT(L, w, ">");
    }
    if (w->depth == 0)
        w->root = 1;
    lua_settop(L, 1);
    return 1;
}

static int w_leaf(lua_State *L) { return w_leaf_common(L, 0); }
static int w_leaf_cdata(lua_State *L) { return w_leaf_common(L, 1); }

static int w_empty(lua_State *L)
{
    xml_writer *w = check_writing(L);
    size_t len;
    w_open_tag(L, w, &len);
    W_LIT(L, w, "/>");
    if (w->depth == 0)
        w->root = 1;
    lua_settop(L, 1);
    return 1;
}

/* Close what is open and end the document. */
static void w_finish_doc(lua_State *L, xml_writer *w)
{
    while (w->depth > 0)
        w_end(L, w);
    if (!w->root)
        luaL_error(L, "giro.xml: the document has no root element");
    W_LIT(L, w, "\n");
}

static int w_tostring(lua_State *L)
{
    xml_writer *w = check_writer(L);
    if (w->filemode)
        return luaL_error(L, "giro.xml: tostring: this writer writes to a file (use commit)");
    if (w->state == W_CLOSED)
        return luaL_error(L, "giro.xml: writer is closed");
    if (w->state == W_OPEN) {
        w_finish_doc(L, w);
        w->state = W_DONE;
    }
    lua_pushlstring(L, w->out != NULL ? w->out : "", w->olen);
    return 1;
}

static void w_drop_fd(xml_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
}

static int w_commit(lua_State *L)
{
    xml_writer *w = check_writing(L);
    if (!w->filemode)
        return luaL_error(L, "giro.xml: commit: this writer has no file (use tostring)");
    schema_spec s;
    int has_schema = !lua_isnoneornil(L, 2);
    if (has_schema && w->check != NULL)
        return luaL_error(L, "giro.xml: commit: this writer checks against the schema given to xml.writer");
    if (has_schema)
        xml_check_schema(L, 2, &s);
    w_finish_doc(L, w);
    w_flush(w);
    w->state = W_CLOSED;          /* from here on, success or not, it is over */
    if (w->check != NULL)
        xml_check_eof(w->check);  /* the check finishes while the file is synced */
    if (w->ioerr == 0 && fsync(w->fd) != 0)
        w->ioerr = errno;
    if (close(w->fd) != 0 && w->ioerr == 0)
        w->ioerr = errno;
    w->fd = -1;
    if (w->ioerr != 0) {
        xml_check_free(w->check);
        w->check = NULL;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot write: %s", w->path, strerror(w->ioerr));
        return 2;
    }
    if (w->check != NULL) {
        int top = lua_gettop(L);
        int n = xml_check_finish(L, w->check);
        xml_check_free(w->check);
        w->check = NULL;
        if (n == 2)
            return 2;                     /* nil, errors */
        lua_settop(L, top);
    } else if (has_schema) {
        int top = lua_gettop(L);
        if (xml_validate_into(L, w->tmp, NULL, 0, w->path, &s) == 2)
            return 2;                     /* nil, errors */
        lua_settop(L, top);
    }
    w->state = W_DONE;
    lua_pushboolean(L, 1);
    return 1;
}

/* Stop the check (joining its thread) and drop the descriptor: abort, __close, __gc. */
static void w_stop(xml_writer *w)
{
    xml_check_free(w->check);
    w->check = NULL;
    w_drop_fd(w);
    if (w->state == W_OPEN)
        w->state = W_CLOSED;
}

static int w_abort(lua_State *L)
{
    w_stop(check_writer(L));
    lua_pushboolean(L, 1);
    return 1;
}

static int w_gc(lua_State *L)
{
    xml_writer *w = check_writer(L);
    w_stop(w);
    free(w->out);
    free(w->names);
    free(w->noff);
    free(w->flags);
    free(w->path);
    free(w->tmp);
    w->out = w->names = w->path = w->tmp = NULL;
    w->noff = NULL;
    w->flags = NULL;
    w->olen = w->ocap = w->nlen = w->ncap = 0;
    w->depth = w->dcap = 0;
    return 0;
}

static int w_tostr(lua_State *L)
{
    xml_writer *w = check_writer(L);
    lua_pushfstring(L, "giro.xml.writer (%s%s%s)",
                    w->state == W_OPEN ? "open" : w->state == W_DONE ? "finished" : "closed",
                    w->filemode ? ", " : "", w->filemode ? w->path : "");
    return 1;
}

int xml_writer_new(lua_State *L)
{
    static const char *const encs[] = { "UTF-8", "ISO-8859-1", "utf-8", "iso-8859-1", NULL };
    int has_opts = !lua_isnoneornil(L, 1);
    if (has_opts)
        luaL_checktype(L, 1, LUA_TTABLE);
    int latin1 = 0, indent = 0;
    const char *name = NULL, *readback = NULL;
    int fd = -1, has_schema = 0;
    schema_spec schema;
    if (has_opts) {
        lua_getfield(L, 1, "encoding");
        latin1 = luaL_checkoption(L, -1, "UTF-8", encs) % 2;
        lua_getfield(L, 1, "indent");
        indent = lua_toboolean(L, -1);
        lua_getfield(L, 1, "fd");
        if (!lua_isnil(L, -1)) {
            fd = (int)luaL_checkinteger(L, -1);
            lua_getfield(L, 1, "path");
            readback = luaL_checkstring(L, -1);
            lua_getfield(L, 1, "name");
            name = luaL_optstring(L, -1, readback);
            lua_getfield(L, 1, "schema");
            if (!lua_isnil(L, -1)) {
                xml_check_schema(L, lua_gettop(L), &schema);   /* anchored by the options */
                has_schema = 1;
            }
        } else {
            lua_getfield(L, 1, "path");
            if (!lua_isnil(L, -1))
                return luaL_error(L, "giro.xml: writer: a path needs fd (files are opened by giro.output)");
            lua_getfield(L, 1, "schema");
            if (!lua_isnil(L, -1))
                return luaL_error(L, "giro.xml: writer: a schema needs fd (the check runs beside the file's writing)");
        }
    }
    xml_writer *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->state = W_CLOSED;
    luaL_setmetatable(L, WRITER_MT);
    w->latin1 = latin1;
    w->indent = indent;
    if (fd >= 0) {
        /* our own descriptor: commit and abort close it, the caller's stays */
        w->path = strdup(name);
        w->tmp = strdup(readback);
        if (w->path == NULL || w->tmp == NULL)
            return luaL_error(L, "giro.xml: out of memory");
        w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (w->fd < 0) {
            int err = errno;
            lua_pushnil(L);
            lua_pushfstring(L, "%s: cannot write: %s", name, strerror(err));
            return 2;
        }
        w->filemode = 1;
        if (has_schema) {
            char msg[300];
            w->check = xml_check_start(&schema, name, msg, sizeof msg);
            if (w->check == NULL) {
                w_drop_fd(w);
                w->state = W_CLOSED;
                lua_pushnil(L);
                lua_pushfstring(L, "%s: %s", name, msg);
                return 2;
            }
        }
    }
    w->state = W_OPEN;
    if (latin1)
        W_LIT(L, w, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n");
    else
        W_LIT(L, w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    return 1;
}

/* Text escaping (& < > "), bytes passed through. */
int xml_escape(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': luaL_addstring(&b, "&amp;"); break;
        case '<': luaL_addstring(&b, "&lt;"); break;
        case '>': luaL_addstring(&b, "&gt;"); break;
        case '"': luaL_addstring(&b, "&quot;"); break;
        default: luaL_addchar(&b, s[i]); break;
        }
    }
    luaL_pushresult(&b);
    return 1;
}
static const luaL_Reg writer_meta[] = {
    { "__gc", w_gc },
    { "__close", w_gc },
    { "__tostring", w_tostr },
    { NULL, NULL }
};

static const luaL_Reg writer_methods[] = {
    { "start", w_start },
    { "finish", w_finish },
    { "text", w_text },
    { "cdata", w_cdata },
    { "leaf", w_leaf },
    { "leaf_cdata", w_leaf_cdata },
    { "empty", w_empty },
    { "tostring", w_tostring },
    { "commit", w_commit },
    { "abort", w_abort },
    { NULL, NULL }
};

void xml_writer_register(lua_State *L)
{
    luaL_newmetatable(L, WRITER_MT);
    luaL_setfuncs(L, writer_meta, 0);
    luaL_newlib(L, writer_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
