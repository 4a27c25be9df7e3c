/*
 * giro.xml's push-parser core, shared by the reader and the validator.
 *
 * Reading uses libxml2's SAX2 *push* parser with our own handler, not
 * xmlTextReader: the handler sees the DOCTYPE as it is parsed, so a document
 * declaring entities or naming an external subset is refused before anything
 * is expanded or fetched, and no tree is ever built (faster than the reader).
 * The callbacks only append events to a queue (names and texts copied into an
 * arena); Lua is only touched outside libxml2 calls, when the queue is
 * drained.  Input is fed in 64 KiB chunks and the queue is emptied before the
 * next chunk, so memory does not grow with the document.
 *
 * Errors: every parser gets a structured error handler (sax.serror); it finds
 * our state through err->ctxt->_private, which also works when the XSD
 * validator's SAX plug has replaced the parser's userData.
 */
#include "xml/xml.h"

/* Record the first fatal problem and stop the parser (safe inside callbacks). */
void xp_fail(xml_parse *p, int line, const char *fmt, ...)
{
    if (!p->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        size_t n = strlen(p->err);
        while (n > 0 && (p->err[n - 1] == '\n' || p->err[n - 1] == ' '))
            p->err[--n] = '\0';
        for (char *c = p->err; *c != '\0'; c++)   /* libxml2 adds "\nBytes: ..." */
            if (*c == '\n')
                *c = ' ';
        p->failed = 1;
        p->errline = line;
    }
    if (p->ctxt != NULL)
        xmlStopParser(p->ctxt);
}

void xp_on_parse_error(void *ud, xmlErrorPtr e)
{
    (void)ud;
    if (e == NULL || e->level < XML_ERR_ERROR || e->ctxt == NULL)
        return;
    xmlParserCtxtPtr c = e->ctxt;
    xml_parse *p = c->_private;
    if (p == NULL)
        return;
    if (c->input != NULL && c->input->buf != NULL && c->input->buf->error != 0) {
        /* the decoder failed: its own message went to libxml2's generic
         * channel, and what the parser says next ("Extra content") misleads */
        xp_fail(p, 0, "input is not valid %s", p->enc[0] ? p->enc : "in its declared encoding");
        return;
    }
    if (e->code == XML_ERR_DOCUMENT_END && c->nameNr > 0 && c->name != NULL) {
        /* the push parser's words for a truncated document */
        xp_fail(p, e->line, "premature end of document: <%s> is not closed", (const char *)c->name);
        return;
    }
    xp_fail(p, e->line, "%s", e->message != NULL ? e->message : "parse error");
}

static int arena_reserve(xml_parse *p, size_t n)
{
    if (p->acap - p->alen >= n)
        return 0;
    size_t cap = p->acap ? p->acap : 65536;
    while (cap - p->alen < n)
        cap *= 2;
    char *a = realloc(p->arena, cap);
    if (a == NULL)
        return -1;
    p->arena = a;
    p->acap = cap;
    return 0;
}

static int arena_add(xml_parse *p, const void *s, size_t n)
{
    if (n == 0)
        return 0;               /* an empty CDATA section: the arena may still be NULL */
    if (arena_reserve(p, n) != 0) {
        xp_fail(p, xp_line(p), "out of memory");
        return -1;
    }
    memcpy(p->arena + p->alen, s, n);
    p->alen += n;
    return 0;
}

static xml_event *ev_push(xml_parse *p, int type, int line)
{
    if (p->nev == p->evcap) {
        size_t cap = p->evcap ? 2 * p->evcap : 1024;
        xml_event *ev = realloc(p->ev, cap * sizeof *ev);
        if (ev == NULL) {
            xp_fail(p, line, "out of memory");
            return NULL;
        }
        p->ev = ev;
        p->evcap = cap;
    }
    xml_event *e = &p->ev[p->nev++];
    memset(e, 0, sizeof *e);
    e->type = type;
    e->line = line;
    e->depth = p->depth;
    return e;
}

/* 0, or -1 (and the parse failed) when prefix:local is longer than MAX_NAME */
static int name_ok(xml_parse *p, const xmlChar *local, const xmlChar *prefix, const char *what)
{
    size_t n = strlen((const char *)local) + (prefix != NULL ? strlen((const char *)prefix) + 1 : 0);
    if (n <= MAX_NAME)
        return 0;
    xp_fail(p, xp_line(p), "%s name longer than %d bytes (%zu bytes, starting \"%.32s\")",
         what, MAX_NAME, n, (const char *)(prefix != NULL ? prefix : local));
    return -1;
}

/* "prefix:local" or "local" into the arena */
static int arena_qname(xml_parse *p, const xmlChar *local, const xmlChar *prefix, size_t *len)
{
    size_t start = p->alen;
    if (prefix != NULL && (arena_add(p, prefix, strlen((const char *)prefix)) != 0
                           || arena_add(p, ":", 1) != 0))
        return -1;
    if (arena_add(p, local, strlen((const char *)local)) != 0)
        return -1;
    *len = p->alen - start;
    return 0;
}

/* Without entity substitution libxml2 passes '&' inside attribute values as
 * the literal "&#38;" (every other reference is already resolved and entity
 * declarations are refused), so this is the one decoding left to do. */
static size_t decode_amp(char *dst, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '&' && i + 5 <= n && memcmp(s + i, "&#38;", 5) == 0) {
            dst[o++] = '&';
            i += 4;
        } else {
            dst[o++] = s[i];
        }
    }
    return o;
}
/* ---- SAX callbacks ---- */

static void sx_start_document(void *ud)
{
    xml_parse *p = ud;
    const xmlChar *enc = NULL;
    if (p->ctxt->input != NULL && p->ctxt->input->encoding != NULL)
        enc = p->ctxt->input->encoding;
    else if (p->ctxt->encoding != NULL)
        enc = p->ctxt->encoding;
    if (enc != NULL)
        snprintf(p->enc, sizeof p->enc, "%s", (const char *)enc);
}

static void sx_start(void *ud, const xmlChar *local, const xmlChar *prefix,
                     const xmlChar *uri, int nb_ns, const xmlChar **ns,
                     int nattr, int ndefaulted, const xmlChar **attrs)
{
    xml_parse *p = ud;
    (void)uri; (void)nb_ns; (void)ns; (void)ndefaulted;
    if (p->failed)
        return;
    int line = xp_line(p);
    if (name_ok(p, local, prefix, "element") != 0)
        return;
    for (int i = 0; i < nattr; i++)
        if (name_ok(p, attrs[5 * i], attrs[5 * i + 1], "attribute") != 0)
            return;
    if (p->queue) {
        xml_event *e = ev_push(p, EV_START, line);
        if (e == NULL)
            return;
        e->name = p->alen;
        if (arena_qname(p, local, prefix, &e->namelen) != 0)
            return;
        e->attr = p->alen;
        for (int i = 0; i < nattr; i++) {
            const xmlChar **a = attrs + 5 * i;
            size_t n = (size_t)(a[4] - a[3]), nl = 0, pos = p->alen;
            if (arena_add(p, &nl, sizeof nl) != 0 || arena_qname(p, a[0], a[1], &nl) != 0)
                return;
            memcpy(p->arena + pos, &nl, sizeof nl);
            pos = p->alen;
            if (arena_add(p, &n, sizeof n) != 0 || arena_reserve(p, n) != 0) {
                xp_fail(p, line, "out of memory");
                return;
            }
            n = decode_amp(p->arena + p->alen, (const char *)a[3], n);
            p->alen += n;
            memcpy(p->arena + pos, &n, sizeof n);
        }
        e->attrlen = p->alen - e->attr;
        e->nattr = nattr;
    }
    p->depth++;
}

static void sx_end(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
    xml_parse *p = ud;
    (void)uri;
    if (p->failed)
        return;
    p->depth--;
    if (p->queue) {
        xml_event *e = ev_push(p, EV_END, xp_line(p));
        if (e == NULL)
            return;
        e->name = p->alen;
        arena_qname(p, local, prefix, &e->namelen);
    }
}

static void add_text(xml_parse *p, int type, const xmlChar *s, int len)
{
    if (p->failed)
        return;
    if (!p->queue)
        return;
    xml_event *e = p->nev > p->head ? &p->ev[p->nev - 1] : NULL;
    if (e == NULL || e->type != type) {
        /* text at the top level (outside the root) is never reported */
        if (p->depth == 0)
            return;
        e = ev_push(p, type, xp_line(p));
        if (e == NULL)
            return;
        e->val = p->alen;
    }
    /* the newest event's content is always at the end of the arena */
    if (e->vallen + (size_t)len > MAX_TEXT) {
        xp_fail(p, xp_line(p), "text longer than %d bytes", MAX_TEXT);
        return;
    }
    /* XML's end-of-line handling (CR LF and a lone CR read as LF) applies
     * inside CDATA too, but libxml2's push parser hands CDATA over
     * unnormalised (its tree and xmllint normalise; found by make fuzz): do it
     * here.  A long section comes in pieces, and a CR LF pair may be split
     * between two: a piece that starts where the last one ended continues its
     * section (adjacent sections have "]]><![CDATA[" between them). */
    if (type == EV_CDATA && (uintptr_t)s != p->cdata_end)
        p->cdata_cr = 0;
    if (type == EV_CDATA)
        p->cdata_end = (uintptr_t)(s + len);
    if (type == EV_CDATA && len > 0 && (p->cdata_cr || memchr(s, '\r', (size_t)len) != NULL)) {
        if (arena_reserve(p, (size_t)len) != 0) {
            xp_fail(p, xp_line(p), "out of memory");
            return;
        }
        char *o = p->arena + p->alen;
        size_t k = 0;
        for (int i = 0; i < len; i++) {
            if (s[i] == '\n' && p->cdata_cr) {
                p->cdata_cr = 0;
                continue;
            }
            p->cdata_cr = s[i] == '\r';
            o[k++] = p->cdata_cr ? '\n' : (char)s[i];
        }
        p->alen += k;
        e->vallen += k;
        return;
    }
    p->cdata_cr = 0;
    if (arena_add(p, s, (size_t)len) == 0)
        e->vallen += (size_t)len;
}

static void sx_characters(void *ud, const xmlChar *s, int len)
{
    add_text(ud, EV_TEXT, s, len);
}

static void sx_cdata(void *ud, const xmlChar *s, int len)
{
    add_text(ud, EV_CDATA, s, len);
}

static void sx_internal_subset(void *ud, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    xml_parse *p = ud;
    if (ext != NULL || sys != NULL)
        xp_fail(p, xp_line(p), "external DTD subsets are not allowed (<!DOCTYPE %s %s>)",
             (const char *)name, sys != NULL ? (const char *)sys : (const char *)ext);
}

static void sx_entity_decl(void *ud, const xmlChar *name, int type, const xmlChar *pub,
                           const xmlChar *sys, xmlChar *content)
{
    xml_parse *p = ud;
    (void)type; (void)pub; (void)sys; (void)content;
    xp_fail(p, xp_line(p), "entity declarations are not allowed (<!ENTITY %s>)", (const char *)name);
}

static void sx_unparsed_entity_decl(void *ud, const xmlChar *name, const xmlChar *pub,
                                    const xmlChar *sys, const xmlChar *notation)
{
    (void)notation;
    sx_entity_decl(ud, name, 0, pub, sys, NULL);
}

static void sx_reference(void *ud, const xmlChar *name)
{
    xml_parse *p = ud;
    xp_fail(p, xp_line(p), "entity references are not allowed (&%s;)", (const char *)name);
}

/* Set up the push parser on the first bytes of input. Returns 0, or -1 with
 * p->err set. The SAX handler is copied by libxml2. */
int px_begin(xml_parse *p, const char *first, size_t n)
{
    xmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startDocument = sx_start_document;
    sax.startElementNs = sx_start;
    sax.endElementNs = sx_end;
    sax.characters = sx_characters;
    sax.ignorableWhitespace = sx_characters;
    sax.cdataBlock = sx_cdata;
    sax.internalSubset = sx_internal_subset;
    sax.entityDecl = sx_entity_decl;
    sax.unparsedEntityDecl = sx_unparsed_entity_decl;
    sax.reference = sx_reference;
    sax.serror = xp_on_parse_error;
    size_t n4 = n < 4 ? n : 4;
    p->ctxt = xmlCreatePushParserCtxt(&sax, p, first, (int)n4, NULL);
    if (p->ctxt == NULL) {
        xp_fail(p, 0, "cannot create an XML parser (out of memory?)");
        return -1;
    }
    p->ctxt->_private = p;
    /* never the network; no entity substitution, no DTD loading */
    xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET);
    p->started = 1;
    return 0;
}

/* Feed the next chunk (the first call creates the parser). */
const char *px_read(xml_parse *p, size_t max, size_t *np, int *last)
{
    size_t n;
    const char *data;
    if (p->pull != NULL) {
        /* as much as max, unless the source ends first */
        n = 0;
        *last = 0;
        while (n < max) {
            long k = p->pull(p->pull_ud, p->buf + n, max - n);
            if (k < 0) {
                xp_fail(p, 0, "stopped");
                break;
            }
            if (k == 0) {
                *last = 1;
                break;
            }
            n += (size_t)k;
        }
        data = p->buf;
    } else if (p->fp != NULL) {
        n = fread(p->buf, 1, max, p->fp);
        if (n < max && ferror(p->fp))
            xp_fail(p, 0, "read error: %s", strerror(errno));
        *last = n < max && feof(p->fp);
        data = p->buf;
    } else {
        n = p->memlen - p->mempos;
        if (n > max)
            n = max;
        data = p->mem + p->mempos;
        p->mempos += n;
        *last = p->mempos == p->memlen;
    }
    p->fed += n;
    *np = n;
    return data;
}

void px_feed(xml_parse *p)
{
    size_t n;
    int last;
    const char *data = px_read(p, CHUNK, &n, &last);
    if (p->failed) {
        p->done = 1;
        return;
    }
    if (!p->started) {
        if (px_begin(p, data, n) != 0) {
            p->done = 1;
            return;
        }
        size_t n4 = n < 4 ? n : 4;
        data += n4;
        n -= n4;
    }
    if (last && p->fed == 0 && !p->failed) {
        xp_fail(p, 1, "document is empty");
        p->done = 1;
        return;
    }
    int rc = xmlParseChunk(p->ctxt, data, (int)n, last);
    if (last)
        p->done = 1;
    if (!p->failed && p->ctxt->input != NULL && p->ctxt->input->buf != NULL
        && p->ctxt->input->buf->error != 0)
        xp_fail(p, 0, "input is not valid %s", p->enc[0] ? p->enc : "in its declared encoding");
    if (!p->failed && (rc != 0 || (last && !p->ctxt->wellFormed))) {
        xmlErrorPtr e = xmlCtxtGetLastError(p->ctxt);
        xp_fail(p, e != NULL ? e->line : xp_line(p), "%s",
             (e != NULL && e->message != NULL) ? e->message : "not well-formed");
    }
    if (p->failed)
        p->done = 1;
}

int px_is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* Next event: 1 (in *out; valid until the next call), 0 at the end, -1 on error.
 * Whitespace-only text is skipped unless keep_blank (read_record decides for
 * itself which whitespace belongs to a leaf's value). */
int px_next(xml_parse *p, xml_event *out, int keep_blank)
{
    for (;;) {
        while (p->head < p->nev) {
            xml_event *e = &p->ev[p->head];
            /* a text at the end of the queue may continue in the next chunk */
            if ((e->type == EV_TEXT || e->type == EV_CDATA) && p->head + 1 == p->nev && !p->done)
                break;
            p->head++;
            if (!keep_blank && e->type == EV_TEXT && px_is_blank(p->arena + e->val, e->vallen))
                continue;
            *out = *e;
            return 1;
        }
        if (p->failed)
            return -1;
        if (p->done)
            return 0;
        if (p->head == p->nev) {
            p->head = p->nev = 0;
            p->alen = 0;
        } else if (p->head + 1 == p->nev) {
            /* only an unfinished text is left: move it to the front, or the
             * arena would grow whenever a chunk ends inside a text */
            xml_event *e = &p->ev[p->head];
            memmove(p->arena, p->arena + e->val, e->vallen);
            e->val = 0;
            p->alen = e->vallen;
            p->ev[0] = *e;
            p->head = 0;
            p->nev = 1;
        }
        px_feed(p);
    }
}

void px_free(xml_parse *p)
{
    if (p->ctxt != NULL) {
        if (p->ctxt->myDoc != NULL)
            xmlFreeDoc(p->ctxt->myDoc);
        xmlFreeParserCtxt(p->ctxt);
        p->ctxt = NULL;
    }
    if (p->fp != NULL) {
        fclose(p->fp);
        p->fp = NULL;
    }
    for (int i = 0; i < p->nverr; i++)
        free(p->verr[i].msg);
    free(p->verr);
    free(p->buf);
    free(p->ev);
    free(p->arena);
    free(p->label);
    p->verr = NULL;
    p->nverr = 0;
    p->buf = NULL;
    p->ev = NULL;
    p->arena = NULL;
    p->label = NULL;
    p->mem = NULL;
}

/* Open the source: path (file) or memory. Returns 0, or -1 with a message. */
int px_open(xml_parse *p, const char *path, const char *mem, size_t memlen,
                   const char *label, char *msg, size_t msglen)
{
    memset(p, 0, sizeof *p);
    p->label = strdup(label);
    if (p->label == NULL) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    if (path != NULL) {
        p->fp = fopen(path, "rb");
        if (p->fp == NULL) {
            snprintf(msg, msglen, "%s: cannot open: %s", label, strerror(errno));
            return -1;
        }
        p->buf = malloc(CHUNK);
        if (p->buf == NULL) {
            snprintf(msg, msglen, "out of memory");
            return -1;
        }
    } else {
        p->mem = mem;
        p->memlen = memlen;
    }
    return 0;
}

int px_open_pull(xml_parse *p, long (*pull)(void *, char *, size_t), void *ud, const char *label)
{
    memset(p, 0, sizeof *p);
    p->label = strdup(label);
    p->buf = malloc(CHUNK);
    p->pull = pull;
    p->pull_ud = ud;
    return p->label != NULL && p->buf != NULL ? 0 : -1;
}

void px_push_error(lua_State *L, xml_parse *p)
{
    if (p->errline > 0)
        lua_pushfstring(L, "%s:%d: %s", p->label, p->errline, p->err);
    else
        lua_pushfstring(L, "%s: %s", p->label, p->err);
}

void xml_grow_slow(lua_State *L, char **buf, size_t *cap, size_t need)
{
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (b == NULL)
        luaL_error(L, "giro.xml: out of memory");
    *buf = b;
    *cap = c;
}
