/*
 * giro.xml's validation: xml.validate (XSD) on the push-parser core,
 * also used by the writer's commit.
 */
#include "xml/xml.h"

void xp_verr_add(xml_parse *p, int line, const char *msg)
{
    if (p->nverr >= MAX_ERRORS) {
        p->vdropped++;
        return;
    }
    if (p->nverr == p->verrcap) {
        int cap = p->verrcap ? 2 * p->verrcap : 16;
        xml_verr *v = realloc(p->verr, (size_t)cap * sizeof *v);
        if (v == NULL) {
            xp_fail(p, line, "out of memory");
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
        xp_fail(p, line, "out of memory");
        return;
    }
    memcpy(m, msg, n);
    m[n] = '\0';
    p->verr[p->nverr].line = line;
    p->verr[p->nverr].msg = m;
    p->nverr++;
}

void xml_check_schema(lua_State *L, int idx, schema_spec *s)
{
    memset(s, 0, sizeof *s);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "xsd");
    s->xsd = luaL_optstring(L, -1, NULL);
    lua_getfield(L, idx, "xsd_string");
    s->xsd_string = luaL_optlstring(L, -1, NULL, &s->xsd_len);
    lua_pop(L, 2);   /* the strings stay referenced by the table */
    if (!!s->xsd + !!s->xsd_string != 1)
        luaL_argerror(L, idx, "schema must have exactly one of xsd, xsd_string");
}

static void on_schema_error(void *ud, xmlErrorPtr e)
{
    xml_parse *p = ud;
    if (e == NULL || e->level < XML_ERR_ERROR)
        return;
    xp_verr_add(p, e->line, e->message != NULL ? e->message : "schema error");
}

static int xsd_locator(void *ud, const char **file, unsigned long *line)
{
    xml_parse *p = ud;
    if (file != NULL)
        *file = NULL;
    if (line != NULL)
        *line = (unsigned long)xp_line(p);
    return 0;
}

void xml_vjob_free(xml_vjob *j)
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
    if (j->live) {
        px_free(&j->p);
        j->live = 0;
    }
}

static int vjob_gc(lua_State *L)
{
    xml_vjob_free(luaL_checkudata(L, 1, VJOB_MT));
    return 0;
}

/* Push true, or nil + errors; `label` names the document in errors.text. */
int xml_push_result(lua_State *L, xml_parse *p, const char *label)
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

/* Load the schema into j (parsed here, in the calling thread) and create its
 * validation context; 0, or -1 with the schema's errors in j->p. */
int xml_vjob_load(xml_vjob *j, const schema_spec *s)
{
    xml_parse *p = &j->p;
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
    if (p->xsd == NULL) {
        if (p->nverr == 0)
            xp_verr_add(p, 0, "cannot load the schema");
        p->failed = 0;
        return -1;
    }
    xmlSchemaSetValidStructuredErrors(p->xsd, on_schema_error, p);
    return 0;
}

/* Parse j's source to its end through the XSD layer (findings in j->p). */
void xml_vjob_run(xml_vjob *j)
{
    xml_parse *p = &j->p;
    /* Create the parser on the first 4 bytes (encoding detection) without
     * parsing anything, plug the XSD layer in, then feed the rest. */
    size_t n;
    int last;
    const char *data = px_read(p, 4, &n, &last);
    if (!p->failed && px_begin(p, data, n) == 0) {
        j->plug = xmlSchemaSAXPlug(p->xsd, &p->ctxt->sax, &p->ctxt->userData);
        if (j->plug == NULL) {
            xp_fail(p, 0, "cannot start XSD validation");
        } else {
            /* the plug's handler has no structured error channel */
            p->ctxt->sax->serror = xp_on_parse_error;
            xmlSchemaValidateSetLocator(p->xsd, xsd_locator, p);
        }
    }
    while (!p->done && !p->failed)
        px_feed(p);
    if (j->plug != NULL) {
        xmlSchemaSAXUnplug(j->plug);
        j->plug = NULL;
    }
}

/* Validate a file or a string against a schema; pushes true | nil, errors. */
int xml_validate_into(lua_State *L, const char *path, const char *mem, size_t memlen,
                      const char *label, const schema_spec *s)
{
    xml_vjob *j = lua_newuserdatauv(L, sizeof *j, 0);
    memset(j, 0, sizeof *j);
    luaL_setmetatable(L, VJOB_MT);
    xml_parse *p = &j->p;
    char msg[600];
    j->live = 1;
    if (px_open(p, path, mem, memlen, label, msg, sizeof msg) != 0) {
        xp_fail(p, 0, "%s", strncmp(msg, label, strlen(label)) == 0 ? msg + strlen(label) + 2 : msg);
        int r = xml_push_result(L, p, label);
        xml_vjob_free(j);
        return r;
    }
    p->queue = 0;
    if (xml_vjob_load(j, s) != 0)
        return xml_push_result(L, p, s->xsd != NULL ? s->xsd : "<xsd>");
    xml_vjob_run(j);
    return xml_push_result(L, p, label);
}

int xml_validate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    schema_spec s;
    xml_check_schema(L, 2, &s);
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
    return xml_validate_into(L, path, str, len, label, &s);
}

void xml_validate_register(lua_State *L)
{
    luaL_newmetatable(L, VJOB_MT);
    lua_pushcfunction(L, vjob_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
