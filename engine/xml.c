/*
 * giro.xml — streaming XML reading, validation and writing on libxml2.
 *
 *   xml.open(path [, opts]) / xml.from_string(s [, opts])  -> reader | nil, msg
 *     r:next() -> "start"|"end"|"text"|"cdata" | nil (end) | nil, msg (parse error)
 *     r:name(), r:value(), r:line(), r:depth(), r:attributes(), r:encoding()
 *     r:read_record() -> fields, lines | nil, msg       r:close()
 *   xml.validate(source, schema)  -> true | nil, errors
 *   xml.writer{ encoding=, path=, indent= } -> writer | nil, msg
 *     w:start/finish/text/cdata/leaf/leaf_cdata/empty, w:tostring(), w:commit([schema]), w:abort()
 *   xml.escape(s)
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
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>
#include "giro.h"

#define READER_MT "giro.xml.reader"
#define WRITER_MT "giro.xml.writer"
#define CHUNK 65536
#define MAX_TEXT 10000000        /* libxml2's own limit without XML_PARSE_HUGE; also
                                    the limit on one leaf's whole value */
#define MAX_NAME 1000            /* element and attribute names (eFaktura's are < 40) */
#define MAX_ERRORS 100           /* validation errors kept; the rest are counted */

/* ------------------------------------------------------------------------ */
/* The push-parser core shared by the reader and the validator              */
/* ------------------------------------------------------------------------ */

enum { EV_START = 1, EV_END, EV_TEXT, EV_CDATA };
static const char *const ev_names[] = { NULL, "start", "end", "text", "cdata" };

typedef struct {
    int type, line, depth, nattr;
    size_t name, namelen;   /* arena offsets */
    size_t val, vallen;     /* text / cdata content */
    size_t attr, attrlen;   /* attributes: (size_t len, bytes) name/value pairs */
} xml_event;

typedef struct {
    int line;
    char *msg;
} xml_verr;

typedef struct xml_parse {
    xmlParserCtxtPtr ctxt;
    char *label;                /* name for messages */
    FILE *fp;                   /* file input, or NULL for memory input */
    const char *mem;            /* memory input (kept alive by the owner) */
    size_t memlen, mempos;
    char *buf;                  /* read buffer (file input) */
    int started, done, failed, depth, queue;
    int cdata_cr;               /* the last CDATA byte queued was a CR (see add_text) */
    uintptr_t cdata_end;        /* where in libxml2's input that CDATA piece ended */
    int errline;
    char err[512];              /* first fatal problem, without file:line */
    char enc[64];               /* declared encoding */
    /* event queue: events [head, nev) not yet handed out */
    xml_event *ev;
    size_t nev, evcap, head;
    char *arena;
    size_t alen, acap;
    /* validation (xml.validate) */
    xmlSchemaValidCtxtPtr xsd;
    xmlValidCtxtPtr dtdv;
    xmlDocPtr dtddoc;
    xmlNodePtr *nodes;          /* open elements for DTD validation */
    int nnodes, nodecap;
    xml_verr *verr;
    int nverr, verrcap, vdropped;
    char scratch[512];
} xml_parse;

static int cur_line(xml_parse *p)
{
    return (p->ctxt != NULL && p->ctxt->input != NULL) ? p->ctxt->input->line : 0;
}

/* Record the first fatal problem and stop the parser (safe inside callbacks). */
static void fail(xml_parse *p, int line, const char *fmt, ...)
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

static void on_parse_error(void *ud, xmlErrorPtr e)
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
        fail(p, 0, "input is not valid %s", p->enc[0] ? p->enc : "in its declared encoding");
        return;
    }
    if (e->code == XML_ERR_DOCUMENT_END && c->nameNr > 0 && c->name != NULL) {
        /* the push parser's words for a truncated document */
        fail(p, e->line, "premature end of document: <%s> is not closed", (const char *)c->name);
        return;
    }
    fail(p, e->line, "%s", e->message != NULL ? e->message : "parse error");
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
        fail(p, cur_line(p), "out of memory");
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
            fail(p, line, "out of memory");
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
    fail(p, cur_line(p), "%s name longer than %d bytes (%zu bytes, starting \"%.32s\")",
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

/* The qualified name as a C string in p->scratch (for the DTD validator). */
static const char *scratch_qname(xml_parse *p, const xmlChar *local, const xmlChar *prefix)
{
    if (prefix != NULL)
        snprintf(p->scratch, sizeof p->scratch, "%s:%s", (const char *)prefix, (const char *)local);
    else
        snprintf(p->scratch, sizeof p->scratch, "%s", (const char *)local);
    return p->scratch;
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

/* ---- DTD validation on the event stream (xmlValidatePush*) ---- */

static void verr_add(xml_parse *p, int line, const char *msg)
{
    if (p->nverr >= MAX_ERRORS) {
        p->vdropped++;
        return;
    }
    if (p->nverr == p->verrcap) {
        int cap = p->verrcap ? 2 * p->verrcap : 16;
        xml_verr *v = realloc(p->verr, (size_t)cap * sizeof *v);
        if (v == NULL) {
            fail(p, line, "out of memory");
            return;
        }
        p->verr = v;
        p->verrcap = cap;
    }
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    char *m = malloc(n + 1);
    if (m == NULL) {
        fail(p, line, "out of memory");
        return;
    }
    memcpy(m, msg, n);
    m[n] = '\0';
    p->verr[p->nverr].line = line;
    p->verr[p->nverr].msg = m;
    p->nverr++;
}

/* xmlValidCtxt only offers a printf-style channel; the line is the parser's. */
static void dtd_verror(void *ud, const char *fmt, ...)
{
    xml_parse *p = ud;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    verr_add(p, cur_line(p), buf);
}

static void dtd_vwarning(void *ud, const char *fmt, ...)
{
    (void)ud;
    (void)fmt;
}

static void dtd_start(xml_parse *p, const xmlChar *local, const xmlChar *prefix,
                      int nattr, const xmlChar **attrs)
{
    const char *qname = scratch_qname(p, local, prefix);
    xmlNodePtr node = xmlNewDocNode(p->dtddoc, NULL, BAD_CAST qname, NULL);
    if (node == NULL || p->nnodes == p->nodecap) {
        int cap = p->nodecap ? 2 * p->nodecap : 64;
        xmlNodePtr *nodes = node ? realloc(p->nodes, (size_t)cap * sizeof *nodes) : NULL;
        if (nodes == NULL) {
            xmlFreeNode(node);
            fail(p, cur_line(p), "out of memory");
            return;
        }
        p->nodes = nodes;
        p->nodecap = cap;
    }
    p->nodes[p->nnodes++] = node;
    for (int i = 0; i < nattr; i++) {
        const xmlChar **a = attrs + 5 * i;
        size_t n = (size_t)(a[4] - a[3]);
        char *v = malloc(n + 1);
        if (v == NULL) {
            fail(p, cur_line(p), "out of memory");
            return;
        }
        v[decode_amp(v, (const char *)a[3], n)] = '\0';
        const char *aname = scratch_qname(p, a[0], a[1]);
        xmlAttrPtr at = xmlNewProp(node, BAD_CAST aname, BAD_CAST v);
        free(v);
        if (at == NULL) {
            fail(p, cur_line(p), "out of memory");
            return;
        }
    }
    xmlValidatePushElement(p->dtdv, p->dtddoc, node, node->name);
    for (xmlAttrPtr at = node->properties; at != NULL; at = at->next) {
        xmlChar *v = xmlNodeGetContent((xmlNodePtr)at);
        xmlValidateOneAttribute(p->dtdv, p->dtddoc, node, at, v);
        xmlFree(v);
    }
    /* #REQUIRED attributes: xmlValidateOneElement would also check the
     * (not yet seen) children, so this part is done here. */
    xmlElementPtr decl = xmlGetDtdElementDesc(p->dtddoc->extSubset, node->name);
    if (decl != NULL) {
        for (xmlAttributePtr ad = decl->attributes; ad != NULL; ad = ad->nexth) {
            if (ad->def == XML_ATTRIBUTE_REQUIRED && xmlHasProp(node, ad->name) == NULL) {
                char msg[300];
                snprintf(msg, sizeof msg, "Element %s does not carry attribute %s",
                         (const char *)node->name, (const char *)ad->name);
                verr_add(p, cur_line(p), msg);
            }
        }
    }
}

static void dtd_end(xml_parse *p)
{
    if (p->nnodes == 0)
        return;
    xmlNodePtr node = p->nodes[--p->nnodes];
    xmlValidatePopElement(p->dtdv, p->dtddoc, node, node->name);
    xmlFreeNode(node);
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
    int line = cur_line(p);
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
                fail(p, line, "out of memory");
                return;
            }
            n = decode_amp(p->arena + p->alen, (const char *)a[3], n);
            p->alen += n;
            memcpy(p->arena + pos, &n, sizeof n);
        }
        e->attrlen = p->alen - e->attr;
        e->nattr = nattr;
    }
    if (p->dtdv != NULL)
        dtd_start(p, local, prefix, nattr, attrs);
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
        xml_event *e = ev_push(p, EV_END, cur_line(p));
        if (e == NULL)
            return;
        e->name = p->alen;
        arena_qname(p, local, prefix, &e->namelen);
    }
    if (p->dtdv != NULL)
        dtd_end(p);
}

static void add_text(xml_parse *p, int type, const xmlChar *s, int len)
{
    if (p->failed)
        return;
    if (p->dtdv != NULL)
        xmlValidatePushCData(p->dtdv, s, len);
    if (!p->queue)
        return;
    xml_event *e = p->nev > p->head ? &p->ev[p->nev - 1] : NULL;
    if (e == NULL || e->type != type) {
        /* text at the top level (outside the root) is never reported */
        if (p->depth == 0)
            return;
        e = ev_push(p, type, cur_line(p));
        if (e == NULL)
            return;
        e->val = p->alen;
    }
    /* the newest event's content is always at the end of the arena */
    if (e->vallen + (size_t)len > MAX_TEXT) {
        fail(p, cur_line(p), "text longer than %d bytes", MAX_TEXT);
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
            fail(p, cur_line(p), "out of memory");
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
        fail(p, cur_line(p), "external DTD subsets are not allowed (<!DOCTYPE %s %s>)",
             (const char *)name, sys != NULL ? (const char *)sys : (const char *)ext);
}

static void sx_entity_decl(void *ud, const xmlChar *name, int type, const xmlChar *pub,
                           const xmlChar *sys, xmlChar *content)
{
    xml_parse *p = ud;
    (void)type; (void)pub; (void)sys; (void)content;
    fail(p, cur_line(p), "entity declarations are not allowed (<!ENTITY %s>)", (const char *)name);
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
    fail(p, cur_line(p), "entity references are not allowed (&%s;)", (const char *)name);
}

/* Set up the push parser on the first bytes of input. Returns 0, or -1 with
 * p->err set. The SAX handler is copied by libxml2. */
static int px_begin(xml_parse *p, const char *first, size_t n)
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
    sax.serror = on_parse_error;
    size_t n4 = n < 4 ? n : 4;
    p->ctxt = xmlCreatePushParserCtxt(&sax, p, first, (int)n4, NULL);
    if (p->ctxt == NULL) {
        fail(p, 0, "cannot create an XML parser (out of memory?)");
        return -1;
    }
    p->ctxt->_private = p;
    /* never the network; no entity substitution, no DTD loading */
    xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET);
    p->started = 1;
    return 0;
}

/* Feed the next chunk (the first call creates the parser). */
static void px_feed(xml_parse *p)
{
    const char *data;
    size_t n;
    int last;
    if (p->fp != NULL) {
        n = fread(p->buf, 1, CHUNK, p->fp);
        if (n < CHUNK && ferror(p->fp)) {
            fail(p, 0, "read error: %s", strerror(errno));
            p->done = 1;
            return;
        }
        last = n < CHUNK && feof(p->fp);
        data = p->buf;
    } else {
        n = p->memlen - p->mempos;
        if (n > CHUNK)
            n = CHUNK;
        data = p->mem + p->mempos;
        p->mempos += n;
        last = p->mempos == p->memlen;
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
    if (last && n == 0 && p->mempos == 0 && (p->fp == NULL || ftell(p->fp) <= 0) && !p->failed) {
        fail(p, 1, "document is empty");
        p->done = 1;
        return;
    }
    int rc = xmlParseChunk(p->ctxt, data, (int)n, last);
    if (last)
        p->done = 1;
    if (!p->failed && p->ctxt->input != NULL && p->ctxt->input->buf != NULL
        && p->ctxt->input->buf->error != 0)
        fail(p, 0, "input is not valid %s", p->enc[0] ? p->enc : "in its declared encoding");
    if (!p->failed && (rc != 0 || (last && !p->ctxt->wellFormed))) {
        xmlErrorPtr e = xmlCtxtGetLastError(p->ctxt);
        fail(p, e != NULL ? e->line : cur_line(p), "%s",
             (e != NULL && e->message != NULL) ? e->message : "not well-formed");
    }
    if (p->failed)
        p->done = 1;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* Next event: 1 (in *out; valid until the next call), 0 at the end, -1 on error.
 * Whitespace-only text is skipped unless keep_blank (read_record decides for
 * itself which whitespace belongs to a leaf's value). */
static int px_next(xml_parse *p, xml_event *out, int keep_blank)
{
    for (;;) {
        while (p->head < p->nev) {
            xml_event *e = &p->ev[p->head];
            /* a text at the end of the queue may continue in the next chunk */
            if ((e->type == EV_TEXT || e->type == EV_CDATA) && p->head + 1 == p->nev && !p->done)
                break;
            p->head++;
            if (!keep_blank && e->type == EV_TEXT && is_blank(p->arena + e->val, e->vallen))
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

static void px_free(xml_parse *p)
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
    while (p->nnodes > 0)
        xmlFreeNode(p->nodes[--p->nnodes]);
    for (int i = 0; i < p->nverr; i++)
        free(p->verr[i].msg);
    free(p->verr);
    free(p->nodes);
    free(p->buf);
    free(p->ev);
    free(p->arena);
    free(p->label);
    p->verr = NULL;
    p->nverr = 0;
    p->nodes = NULL;
    p->buf = NULL;
    p->ev = NULL;
    p->arena = NULL;
    p->label = NULL;
    p->mem = NULL;
}

/* Open the source: path (file) or memory. Returns 0, or -1 with a message. */
static int px_open(xml_parse *p, const char *path, const char *mem, size_t memlen,
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

static void push_error(lua_State *L, xml_parse *p)
{
    if (p->errline > 0)
        lua_pushfstring(L, "%s:%d: %s", p->label, p->errline, p->err);
    else
        lua_pushfstring(L, "%s: %s", p->label, p->err);
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    xml_parse p;
    int open;
    xml_event cur;              /* current event (type 0: none) */
    char *lname, *tbuf, *rname; /* read_record scratch */
    size_t lcap, tcap, rcap;
} xml_reader;

static xml_reader *check_reader(lua_State *L)
{
    xml_reader *r = luaL_checkudata(L, 1, READER_MT);
    if (!r->open)
        luaL_error(L, "giro.xml: reader is closed");
    return r;
}

static void reader_free(xml_reader *r)
{
    if (r->open) {
        px_free(&r->p);
        r->open = 0;
    }
    free(r->lname);
    free(r->tbuf);
    free(r->rname);
    r->lname = r->tbuf = r->rname = NULL;
    r->lcap = r->tcap = r->rcap = 0;
    r->cur.type = 0;
}

static int reader_new(lua_State *L, const char *path, int strarg)
{
    const char *label = path;
    size_t memlen = 0;
    const char *mem = NULL;
    int optarg = 2;
    if (strarg) {
        mem = luaL_checklstring(L, 1, &memlen);
        label = "<string>";
    }
    if (!lua_isnoneornil(L, optarg)) {
        luaL_checktype(L, optarg, LUA_TTABLE);
        lua_getfield(L, optarg, "name");
        if (!lua_isnil(L, -1))
            label = luaL_checkstring(L, -1);
        /* the string stays referenced by the options table on the stack */
    }
    xml_reader *r = lua_newuserdatauv(L, sizeof *r, 1);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, READER_MT);
    if (strarg) {
        lua_pushvalue(L, 1);              /* keep the input string alive */
        lua_setiuservalue(L, -2, 1);
    }
    char msg[600];
    r->open = 1;
    if (px_open(&r->p, path, mem, memlen, label, msg, sizeof msg) != 0) {
        reader_free(r);
        lua_pushnil(L);
        lua_pushstring(L, msg);
        return 2;
    }
    r->p.queue = 1;
    return 1;
}

static int x_open(lua_State *L)
{
    return reader_new(L, luaL_checkstring(L, 1), 0);
}

static int x_from_string(lua_State *L)
{
    return reader_new(L, NULL, 1);
}

static int r_next(lua_State *L)
{
    xml_reader *r = check_reader(L);
    int rc = px_next(&r->p, &r->cur, 0);
    if (rc > 0) {
        lua_pushstring(L, ev_names[r->cur.type]);
        return 1;
    }
    r->cur.type = 0;
    lua_pushnil(L);
    if (rc == 0)
        return 1;
    push_error(L, &r->p);
    return 2;
}

static int r_name(lua_State *L)
{
    xml_reader *r = check_reader(L);
    if (r->cur.type == EV_START || r->cur.type == EV_END)
        lua_pushlstring(L, r->p.arena + r->cur.name, r->cur.namelen);
    else
        lua_pushnil(L);
    return 1;
}

static int r_value(lua_State *L)
{
    xml_reader *r = check_reader(L);
    if (r->cur.type == EV_TEXT || r->cur.type == EV_CDATA)
        lua_pushlstring(L, r->p.arena + r->cur.val, r->cur.vallen);
    else
        lua_pushnil(L);
    return 1;
}

static int r_line(lua_State *L)
{
    xml_reader *r = check_reader(L);
    if (r->cur.type == 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, r->cur.line);
    return 1;
}

static int r_depth(lua_State *L)
{
    xml_reader *r = check_reader(L);
    if (r->cur.type == 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, r->cur.depth);
    return 1;
}

static int r_attributes(lua_State *L)
{
    xml_reader *r = check_reader(L);
    lua_createtable(L, 0, r->cur.type == EV_START ? r->cur.nattr : 0);
    if (r->cur.type != EV_START)
        return 1;
    const char *a = r->p.arena + r->cur.attr;
    for (int i = 0; i < r->cur.nattr; i++) {
        size_t n;
        memcpy(&n, a, sizeof n);
        a += sizeof n;
        lua_pushlstring(L, a, n);
        a += n;
        memcpy(&n, a, sizeof n);
        a += sizeof n;
        lua_pushlstring(L, a, n);
        a += n;
        lua_rawset(L, -3);
    }
    return 1;
}

static int r_encoding(lua_State *L)
{
    xml_reader *r = check_reader(L);
    /* the declaration is parsed with the first chunk */
    if (!r->p.started && !r->p.done && r->p.head == r->p.nev)
        px_feed(&r->p);
    if (r->p.enc[0] != '\0')
        lua_pushstring(L, r->p.enc);
    else
        lua_pushnil(L);
    return 1;
}

static void grow(lua_State *L, char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (b == NULL)
        luaL_error(L, "giro.xml: out of memory");
    *buf = b;
    *cap = c;
}

/* Consume the subtree of the element just started; one Lua call per record. */
static int r_read_record(lua_State *L)
{
    xml_reader *r = check_reader(L);
    xml_parse *p = &r->p;
    if (r->cur.type != EV_START)
        return luaL_error(L, "giro.xml: read_record must follow a \"start\" event");
    int rdepth = r->cur.depth;
    size_t rlen = r->cur.namelen, llen = rlen, tlen = 0;
    grow(L, &r->rname, &r->rcap, rlen + 1);
    grow(L, &r->lname, &r->lcap, rlen + 1);
    memcpy(r->rname, p->arena + r->cur.name, rlen);
    r->rname[rlen] = '\0';
    memcpy(r->lname, r->rname, rlen + 1);
    int leaf_open = 1, leaf_line = r->cur.line, seen_cdata = 0;
    size_t blank_tail = 0;      /* trailing whitespace-only text in tbuf */
    lua_Integer nleaves = 0;
    lua_settop(L, 1);
    lua_createtable(L, 0, 24);                 /* 2: fields */
    lua_createtable(L, 0, 24);                 /* 3: lines */
    lua_pushinteger(L, r->cur.line);
    lua_rawseti(L, 3, 0);
    xml_event e;
    for (;;) {
        int rc = px_next(p, &e, 1);
        if (rc <= 0) {
            r->cur.type = 0;
            lua_pushnil(L);
            if (rc < 0)
                push_error(L, p);
            else
                lua_pushfstring(L, "%s: unexpected end of document in <%s>", p->label, r->rname);
            return 2;
        }
        switch (e.type) {
        case EV_START:
            leaf_open = 1;
            leaf_line = e.line;
            llen = e.namelen;
            grow(L, &r->lname, &r->lcap, llen + 1);
            memcpy(r->lname, p->arena + e.name, llen);
            r->lname[llen] = '\0';
            tlen = blank_tail = 0;
            seen_cdata = 0;
            break;
        case EV_TEXT:
        case EV_CDATA:
            if (!leaf_open)
                break;          /* whitespace between elements, or mixed content after a child */
            if (e.vallen > MAX_TEXT - tlen) {
                r->cur.type = 0;
                lua_pushnil(L);
                lua_pushfstring(L, "%s:%d: <%s> in <%s>: text longer than %d bytes",
                                p->label, leaf_line, r->lname, r->rname, MAX_TEXT);
                return 2;
            }
            if (e.type == EV_CDATA) {
                /* whitespace before the first CDATA section is layout
                 * (Nets pretty-prints " <![CDATA[x]]> "); between two it is data */
                if (!seen_cdata)
                    tlen -= blank_tail;
                seen_cdata = 1;
                blank_tail = 0;
            } else {
                /* a text event is all the character data up to the next
                 * CDATA section or tag (add_text joins the pieces) */
                blank_tail = is_blank(p->arena + e.val, e.vallen) ? e.vallen : 0;
            }
            if (e.vallen > 0) {
                grow(L, &r->tbuf, &r->tcap, tlen + e.vallen);
                memcpy(r->tbuf + tlen, p->arena + e.val, e.vallen);
                tlen += e.vallen;
            }
            break;
        case EV_END:
            if (leaf_open && seen_cdata)
                tlen -= blank_tail;     /* layout after the last CDATA section */
            if (leaf_open) {
                lua_pushlstring(L, r->lname, llen);            /* key */
                lua_pushvalue(L, -1);
                if (lua_rawget(L, 2) != LUA_TNIL) {
                    r->cur = e;
                    lua_pushnil(L);
                    lua_pushfstring(L, "%s:%d: element <%s> repeated in <%s>",
                                    p->label, leaf_line, r->lname, r->rname);
                    return 2;
                }
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
                lua_pushlstring(L, r->tbuf != NULL ? r->tbuf : "", tlen);
                lua_rawset(L, 2);
                lua_pushinteger(L, leaf_line);
                lua_rawset(L, 3);
                leaf_open = 0;
                nleaves++;
            }
            if (e.depth == rdepth) {
                r->cur = e;
                lua_pushinteger(L, nleaves);
                return 3;
            }
            break;
        }
    }
}

static int r_close(lua_State *L)
{
    xml_reader *r = luaL_checkudata(L, 1, READER_MT);
    reader_free(r);
    return 0;
}

static int r_tostring(lua_State *L)
{
    xml_reader *r = luaL_checkudata(L, 1, READER_MT);
    lua_pushfstring(L, "giro.xml.reader (%s)", r->open ? r->p.label : "closed");
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *xsd, *xsd_string, *dtd, *dtd_string;
    size_t xsd_len, dtd_len;
} schema_spec;

static void check_schema(lua_State *L, int idx, schema_spec *s)
{
    memset(s, 0, sizeof *s);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "xsd");
    s->xsd = luaL_optstring(L, -1, NULL);
    lua_getfield(L, idx, "xsd_string");
    s->xsd_string = luaL_optlstring(L, -1, NULL, &s->xsd_len);
    lua_getfield(L, idx, "dtd");
    s->dtd = luaL_optstring(L, -1, NULL);
    lua_getfield(L, idx, "dtd_string");
    s->dtd_string = luaL_optlstring(L, -1, NULL, &s->dtd_len);
    lua_pop(L, 4);   /* the strings stay referenced by the table */
    int n = !!s->xsd + !!s->xsd_string + !!s->dtd + !!s->dtd_string;
    if (n != 1)
        luaL_argerror(L, idx, "schema must have exactly one of xsd, xsd_string, dtd, dtd_string");
}

static void on_schema_error(void *ud, xmlErrorPtr e)
{
    xml_parse *p = ud;
    if (e == NULL || e->level < XML_ERR_ERROR)
        return;
    verr_add(p, e->line, e->message != NULL ? e->message : "schema error");
}

/* Errors while parsing the caller's DTD: data is that parser's context. */
static void on_dtd_parse_error(void *ud, xmlErrorPtr e)
{
    xmlParserCtxtPtr c = ud;
    if (e == NULL || e->level < XML_ERR_ERROR || c == NULL || c->_private == NULL)
        return;
    verr_add(c->_private, e->line, e->message != NULL ? e->message : "DTD error");
}

static int xsd_locator(void *ud, const char **file, unsigned long *line)
{
    xml_parse *p = ud;
    if (file != NULL)
        *file = NULL;
    if (line != NULL)
        *line = (unsigned long)cur_line(p);
    return 0;
}

/* The caller's DTD (trusted: it is ours), parsed as an external subset the way
 * xmlIOParseDTD does, but with our error handler. */
static xmlDtdPtr load_dtd(xml_parse *sink, const char *path, const char *s, size_t n)
{
    xmlDtdPtr dtd = NULL;
    xmlParserCtxtPtr c = xmlNewParserCtxt();
    if (c == NULL)
        return NULL;
    c->_private = sink;
    c->sax->serror = on_dtd_parse_error;
    c->sax->warning = NULL;
    c->sax->error = NULL;
    c->sax->fatalError = NULL;
    xmlCtxtUseOptions(c, XML_PARSE_NONET);
    xmlParserInputBufferPtr in = path != NULL
        ? xmlParserInputBufferCreateFilename(path, XML_CHAR_ENCODING_NONE)
        : xmlParserInputBufferCreateMem(s, (int)n, XML_CHAR_ENCODING_NONE);
    if (in == NULL) {
        if (path != NULL)
            verr_add(sink, 0, "cannot open the DTD");
        xmlFreeParserCtxt(c);
        return NULL;
    }
    xmlParserInputPtr pin = xmlNewIOInputStream(c, in, XML_CHAR_ENCODING_NONE);
    if (pin == NULL) {
        xmlFreeParserInputBuffer(in);
        xmlFreeParserCtxt(c);
        return NULL;
    }
    if (xmlPushInput(c, pin) < 0) {
        xmlFreeParserCtxt(c);
        return NULL;
    }
    if (c->input->end - c->input->cur >= 4) {
        xmlCharEncoding enc = xmlDetectCharEncoding(c->input->cur, 4);
        xmlSwitchEncoding(c, enc);
    }
    c->inSubset = 2;
    c->myDoc = xmlNewDoc(BAD_CAST "1.0");
    if (c->myDoc != NULL) {
        c->myDoc->properties = XML_DOC_INTERNAL;
        c->myDoc->extSubset = xmlNewDtd(c->myDoc, BAD_CAST "none", BAD_CAST "none", BAD_CAST "none");
        xmlParseExternalSubset(c, BAD_CAST "none", BAD_CAST "none");
        if (c->wellFormed && c->myDoc->extSubset != NULL) {
            dtd = c->myDoc->extSubset;
            c->myDoc->extSubset = NULL;
            xmlUnlinkNode((xmlNodePtr)dtd);
            dtd->doc = NULL;
            for (xmlNodePtr t = dtd->children; t != NULL; t = t->next)
                t->doc = NULL;
        }
        xmlFreeDoc(c->myDoc);
        c->myDoc = NULL;
    }
    xmlFreeParserCtxt(c);
    return dtd;
}


/* One validation run, in a userdata so that nothing leaks if Lua raises. */
typedef struct {
    xml_parse p;
    int live;                   /* p is initialised */
    xmlSchemaPtr schema;
    xmlSchemaSAXPlugPtr plug;
} xml_vjob;

#define VJOB_MT "giro.xml.validation"

static void vjob_free(xml_vjob *j)
{
    if (j->plug != NULL) {
        xmlSchemaSAXUnplug(j->plug);      /* needs the parser and the validator */
        j->plug = NULL;
    }
    if (j->p.xsd != NULL) {
        xmlSchemaFreeValidCtxt(j->p.xsd);
        j->p.xsd = NULL;
    }
    if (j->schema != NULL) {
        xmlSchemaFree(j->schema);
        j->schema = NULL;
    }
    if (j->p.dtdv != NULL) {
        /* a document that stopped early leaves states (with their regexp
         * executions) on the validator's stack: pop them, quietly */
        j->p.dtdv->error = dtd_vwarning;
        while (j->p.nnodes > 0)
            dtd_end(&j->p);
    }
    while (j->p.nnodes > 0)                 /* before their document */
        xmlFreeNode(j->p.nodes[--j->p.nnodes]);
    if (j->p.dtdv != NULL) {
        xmlFreeValidCtxt(j->p.dtdv);
        j->p.dtdv = NULL;
    }
    if (j->p.dtddoc != NULL) {
        xmlFreeDoc(j->p.dtddoc);            /* also frees the DTD */
        j->p.dtddoc = NULL;
    }
    if (j->live) {
        px_free(&j->p);
        j->live = 0;
    }
}

static int vjob_gc(lua_State *L)
{
    vjob_free(luaL_checkudata(L, 1, VJOB_MT));
    return 0;
}

/* Push true, or nil + errors; `label` names the document in errors.text. */
static int push_result(lua_State *L, xml_parse *p, const char *label)
{
    if (p->nverr == 0 && !p->failed && p->vdropped == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_createtable(L, p->nverr + 2, 1);
    int t = lua_gettop(L), k = 0;
    lua_createtable(L, p->nverr + 2, 0);          /* the text lines */
    for (int i = 0; i < p->nverr + 2; i++) {
        int line;
        const char *msg;
        char more[80];
        if (i < p->nverr) {
            line = p->verr[i].line;
            msg = p->verr[i].msg;
        } else if (i == p->nverr && p->vdropped > 0) {
            line = 0;
            snprintf(more, sizeof more, "%d more errors not shown", p->vdropped);
            msg = more;
        } else if (i == p->nverr + 1 && p->failed) {
            line = p->errline;
            msg = p->err;
        } else {
            continue;
        }
        k++;
        if (line > 0)
            lua_pushfstring(L, "%s:%d: %s", label, line, msg);
        else
            lua_pushfstring(L, "%s: %s", label, msg);
        lua_rawseti(L, t + 1, k);
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, line);
        lua_setfield(L, -2, "line");
        lua_pushstring(L, msg);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, t, k);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= k; i++) {
        if (i > 1)
            luaL_addchar(&b, '\n');
        lua_rawgeti(L, t + 1, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_setfield(L, t, "text");
    lua_settop(L, t);
    return 2;
}

/* Validate a file or a string against a schema; pushes true | nil, errors. */
static int validate(lua_State *L, const char *path, const char *mem, size_t memlen,
                    const char *label, const schema_spec *s)
{
    xml_vjob *j = lua_newuserdatauv(L, sizeof *j, 0);
    memset(j, 0, sizeof *j);
    luaL_setmetatable(L, VJOB_MT);
    xml_parse *p = &j->p;
    char msg[600];
    j->live = 1;
    if (px_open(p, path, mem, memlen, label, msg, sizeof msg) != 0) {
        fail(p, 0, "%s", strncmp(msg, label, strlen(label)) == 0 ? msg + strlen(label) + 2 : msg);
        int r = push_result(L, p, label);
        vjob_free(j);
        return r;
    }
    p->queue = 0;
    const char *slabel = s->xsd ? s->xsd : s->dtd ? s->dtd : s->xsd_string ? "<xsd>" : "<dtd>";

    if (s->xsd != NULL || s->xsd_string != NULL) {
        xmlSchemaParserCtxtPtr sp = s->xsd != NULL
            ? xmlSchemaNewParserCtxt(s->xsd)
            : xmlSchemaNewMemParserCtxt(s->xsd_string, (int)s->xsd_len);
        if (sp != NULL) {
            xmlSchemaSetParserStructuredErrors(sp, on_schema_error, p);
            j->schema = xmlSchemaParse(sp);
            xmlSchemaFreeParserCtxt(sp);
        }
        if (j->schema != NULL)
            p->xsd = xmlSchemaNewValidCtxt(j->schema);
        if (p->xsd == NULL)
            goto schema_failed;
        xmlSchemaSetValidStructuredErrors(p->xsd, on_schema_error, p);
    } else {
        xmlDtdPtr dtd = load_dtd(p, s->dtd, s->dtd_string, s->dtd_len);
        if (dtd == NULL)
            goto schema_failed;
        p->dtddoc = xmlNewDoc(BAD_CAST "1.0");
        if (p->dtddoc == NULL) {
            xmlFreeDtd(dtd);
            goto schema_failed;
        }
        p->dtddoc->extSubset = dtd;
        dtd->doc = p->dtddoc;
        p->dtdv = xmlNewValidCtxt();
        if (p->dtdv == NULL)
            goto schema_failed;
        p->dtdv->userData = p;
        p->dtdv->error = dtd_verror;
        p->dtdv->warning = dtd_vwarning;
    }

    /* Create the parser on the first 4 bytes (encoding detection) without
     * parsing anything, plug the XSD layer in, then feed the rest. */
    {
        const char *data;
        size_t n;
        if (p->fp != NULL) {
            n = fread(p->buf, 1, 4, p->fp);
            data = p->buf;
        } else {
            n = p->memlen < 4 ? p->memlen : 4;
            data = p->mem;
            p->mempos = n;
        }
        if (px_begin(p, data, n) == 0 && p->xsd != NULL) {
            j->plug = xmlSchemaSAXPlug(p->xsd, &p->ctxt->sax, &p->ctxt->userData);
            if (j->plug == NULL) {
                fail(p, 0, "cannot start XSD validation");
            } else {
                /* the plug's handler has no structured error channel */
                p->ctxt->sax->serror = on_parse_error;
                xmlSchemaValidateSetLocator(p->xsd, xsd_locator, p);
            }
        }
    }
    while (!p->done && !p->failed)
        px_feed(p);
    if (j->plug != NULL) {
        xmlSchemaSAXUnplug(j->plug);
        j->plug = NULL;
    }
    return push_result(L, p, label);

schema_failed:
    if (p->nverr == 0)
        verr_add(p, 0, "cannot load the schema");
    p->failed = 0;
    return push_result(L, p, slabel);
}

static int x_validate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    schema_spec s;
    check_schema(L, 2, &s);
    lua_getfield(L, 1, "path");
    const char *path = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "string");
    size_t len = 0;
    const char *str = luaL_optlstring(L, -1, NULL, &len);
    lua_getfield(L, 1, "name");
    const char *label = luaL_optstring(L, -1, NULL);
    if ((path == NULL) == (str == NULL))
        return luaL_argerror(L, 1, "source must have exactly one of path, string");
    if (label == NULL)
        label = path != NULL ? path : "<string>";
    return validate(L, path, str, len, label, &s);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

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
    w->olen = 0;
}

static void w_put(lua_State *L, xml_writer *w, const char *s, size_t n)
{
    if (w->ocap - w->olen < n) {
        if (w->filemode && w->olen > 0)
            w_flush(w);
        /* in file mode the buffer holds a whole chunk, so a flush writes 64 KiB */
        grow(L, &w->out, &w->ocap, w->olen + n + (w->filemode ? CHUNK : 0));
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
    grow(L, &w->names, &w->ncap, w->nlen + len + 1);
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

static int w_start(lua_State *L)
{
    xml_writer *w = check_writing(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    check_name(L, name, len);
    int n;
    const char **keys = sorted_attrs(L, 3, &n);
    w_before_element(L, w);
    W_LIT(L, w, "<");
    w_put(L, w, name, len);
    w_attrs(L, w, 3, keys, n);
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
    const char *name = luaL_checklstring(L, 2, &len);
    check_name(L, name, len);
    int n;
    const char **keys = sorted_attrs(L, 3, &n);
    w_before_element(L, w);
    W_LIT(L, w, "<");
    w_put(L, w, name, len);
    w_attrs(L, w, 3, keys, n);
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
    if (has_schema)
        check_schema(L, 2, &s);
    w_finish_doc(L, w);
    w_flush(w);
    w->state = W_CLOSED;          /* from here on, success or not, it is over */
    if (w->ioerr == 0 && fsync(w->fd) != 0)
        w->ioerr = errno;
    if (close(w->fd) != 0 && w->ioerr == 0)
        w->ioerr = errno;
    w->fd = -1;
    if (w->ioerr != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot write: %s", w->path, strerror(w->ioerr));
        return 2;
    }
    if (has_schema) {
        int top = lua_gettop(L);
        if (validate(L, w->tmp, NULL, 0, w->path, &s) == 2)
            return 2;                     /* nil, errors */
        lua_settop(L, top);
    }
    w->state = W_DONE;
    lua_pushboolean(L, 1);
    return 1;
}

static int w_abort(lua_State *L)
{
    xml_writer *w = check_writer(L);
    w_drop_fd(w);
    if (w->state == W_OPEN)
        w->state = W_CLOSED;
    lua_pushboolean(L, 1);
    return 1;
}

static int w_gc(lua_State *L)
{
    xml_writer *w = check_writer(L);
    w_drop_fd(w);
    if (w->state == W_OPEN)
        w->state = W_CLOSED;
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

static int x_writer(lua_State *L)
{
    static const char *const encs[] = { "UTF-8", "ISO-8859-1", "utf-8", "iso-8859-1", NULL };
    int has_opts = !lua_isnoneornil(L, 1);
    if (has_opts)
        luaL_checktype(L, 1, LUA_TTABLE);
    int latin1 = 0, indent = 0;
    const char *name = NULL, *readback = NULL;
    int fd = -1;
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
        } else {
            lua_getfield(L, 1, "path");
            if (!lua_isnil(L, -1))
                return luaL_error(L, "giro.xml: writer: a path needs fd (files are opened by giro.output)");
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
    }
    w->state = W_OPEN;
    if (latin1)
        W_LIT(L, w, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n");
    else
        W_LIT(L, w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    return 1;
}

/* Text escaping (& < > "), bytes passed through. */
static int x_escape(lua_State *L)
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

/* ------------------------------------------------------------------------ */

static const luaL_Reg reader_meta[] = {
    { "__gc", r_close },
    { "__close", r_close },
    { "__tostring", r_tostring },
    { NULL, NULL }
};

static const luaL_Reg reader_methods[] = {
    { "next", r_next },
    { "name", r_name },
    { "value", r_value },
    { "line", r_line },
    { "depth", r_depth },
    { "attributes", r_attributes },
    { "encoding", r_encoding },
    { "read_record", r_read_record },
    { "close", r_close },
    { NULL, NULL }
};

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

static const luaL_Reg xml_funcs[] = {
    { "open", x_open },
    { "from_string", x_from_string },
    { "validate", x_validate },
    { "writer", x_writer },
    { "escape", x_escape },
    { NULL, NULL }
};

/* Messages that libxml2 raises without any parser context (the character
 * decoders, some I/O errors) can only go to its generic channel, which
 * prints to stderr by default.  Point it, once, at a sink: everything we
 * report comes from the per-parser handlers above. */
static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

int luaopen_giro_xml(lua_State *L)
{
    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, quiet);
    luaL_newmetatable(L, READER_MT);
    luaL_setfuncs(L, reader_meta, 0);
    luaL_newlib(L, reader_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, WRITER_MT);
    luaL_setfuncs(L, writer_meta, 0);
    luaL_newlib(L, writer_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, VJOB_MT);
    lua_pushcfunction(L, vjob_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, xml_funcs);
    return 1;
}
