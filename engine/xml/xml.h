/*
 * engine/xml/xml.h — what the files of giro.xml share: the push-parser core
 * (parse.c) that the reader (reader.c) and the validator (validate.c) drive,
 * and the pieces the writer (writer.c) borrows from them.  module.c holds
 * luaopen_giro_xml.  Nothing here is visible outside the module.
 */
#ifndef GIRO_XML_H
#define GIRO_XML_H

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
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>
#include "giro.h"

/* the module's internals never leave xml.so (and calls between its files skip the PLT) */
#pragma GCC visibility push(hidden)

#define READER_MT "giro.xml.reader"
#define WRITER_MT "giro.xml.writer"
#define CHUNK 65536
#define MAX_TEXT 10000000        /* libxml2's own limit without XML_PARSE_HUGE; also
                                    the limit on one leaf's whole value */
#define MAX_NAME 1000            /* element and attribute names (eFaktura's are < 40) */
#define MAX_ERRORS 100           /* validation errors kept; the rest are counted */

#define VJOB_MT "giro.xml.validation"

enum { EV_START = 1, EV_END, EV_TEXT, EV_CDATA };

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
    long (*pull)(void *ud, char *dst, size_t max);  /* or a pull source (check.c): bytes, 0 at
                                                       the end, -1 to stop */
    void *pull_ud;
    size_t fed;                 /* bytes read from the source so far */
    char *buf;                  /* read buffer (file and pull input) */
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
    xml_verr *verr;
    int nverr, verrcap, vdropped;
} xml_parse;

/* parse.c: the push-parser core */
static inline int xp_line(xml_parse *p)
{
    return (p->ctxt != NULL && p->ctxt->input != NULL) ? p->ctxt->input->line : 0;
}
void xp_fail(xml_parse *p, int line, const char *fmt, ...);
void xp_on_parse_error(void *ud, xmlErrorPtr e);
int px_begin(xml_parse *p, const char *first, size_t n);
const char *px_read(xml_parse *p, size_t max, size_t *n, int *last);
void px_feed(xml_parse *p);
int px_is_blank(const char *s, size_t n);
int px_next(xml_parse *p, xml_event *out, int keep_blank);
void px_free(xml_parse *p);
int px_open(xml_parse *p, const char *path, const char *mem, size_t memlen,
            const char *label, char *msg, size_t msglen);
int px_open_pull(xml_parse *p, long (*pull)(void *, char *, size_t), void *ud, const char *label);
void px_push_error(lua_State *L, xml_parse *p);
void xml_grow_slow(lua_State *L, char **buf, size_t *cap, size_t need);
static inline void xml_grow(lua_State *L, char **buf, size_t *cap, size_t need)
{
    if (need > *cap)
        xml_grow_slow(L, buf, cap, need);
}

/* validate.c */
typedef struct {
    const char *xsd, *xsd_string;
    size_t xsd_len;
} schema_spec;

/* One validation run (in a userdata for xml.validate, so that nothing leaks if Lua raises;
 * inside the writer's checker for commit). */
typedef struct {
    xml_parse p;
    int live;                   /* p is initialised */
    xmlSchemaPtr schema;
    xmlSchemaSAXPlugPtr plug;
} xml_vjob;

void xp_verr_add(xml_parse *p, int line, const char *msg);
int xml_vjob_load(xml_vjob *j, const schema_spec *s);
void xml_vjob_run(xml_vjob *j);
void xml_vjob_free(xml_vjob *j);
int xml_push_result(lua_State *L, xml_parse *p, const char *label);
void xml_check_schema(lua_State *L, int idx, schema_spec *s);
int xml_validate_into(lua_State *L, const char *path, const char *mem, size_t memlen,
                      const char *label, const schema_spec *s);
int xml_validate(lua_State *L);
void xml_validate_register(lua_State *L);

/* reader.c */
typedef struct {
    xml_parse p;
    int open;
    xml_event cur;              /* current event (type 0: none) */
    char *lname, *tbuf, *rname; /* record.c's scratch */
    size_t lcap, tcap, rcap;
} xml_reader;

extern const char *const xml_ev_names[];
xml_reader *xml_check_reader(lua_State *L);
int xml_open(lua_State *L);
int xml_from_string(lua_State *L);
void xml_reader_register(lua_State *L);

/* record.c */
#define SPEC_MT "giro.xml.record_spec"
int xml_read_record(lua_State *L);
int xml_next_record(lua_State *L);
int xml_record_spec(lua_State *L);
void xml_record_register(lua_State *L);

/* check.c: the writer's XSD check on a second thread */
typedef struct xml_check xml_check;
xml_check *xml_check_start(const schema_spec *s, const char *label, char *msg, size_t msglen);
void xml_check_put(xml_check *c, const char *s, size_t n);
void xml_check_eof(xml_check *c);
int xml_check_finish(lua_State *L, xml_check *c);   /* true | nil, errors | nil, message */
void xml_check_free(xml_check *c);

/* module.c */
void xml_quiet(void *ctx, const char *msg, ...);

/* writer.c */
int xml_writer_new(lua_State *L);
int xml_escape(lua_State *L);
void xml_writer_register(lua_State *L);

#pragma GCC visibility pop

#endif
