/*
 * giro.xml's reader: xml.open / xml.from_string, the event accessors and
 * read_record, over the push-parser core (parse.c).
 */
#include "xml/xml.h"

static const char *const ev_names[] = { NULL, "start", "end", "text", "cdata" };

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

int xml_open(lua_State *L)
{
    return reader_new(L, luaL_checkstring(L, 1), 0);
}

int xml_from_string(lua_State *L)
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
    px_push_error(L, &r->p);
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
/* Consume the subtree of the element just started; one Lua call per record. */
static int r_read_record(lua_State *L)
{
    xml_reader *r = check_reader(L);
    xml_parse *p = &r->p;
    if (r->cur.type != EV_START)
        return luaL_error(L, "giro.xml: read_record must follow a \"start\" event");
    int rdepth = r->cur.depth;
    size_t rlen = r->cur.namelen, llen = rlen, tlen = 0;
    xml_grow(L, &r->rname, &r->rcap, rlen + 1);
    xml_grow(L, &r->lname, &r->lcap, rlen + 1);
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
                px_push_error(L, p);
            else
                lua_pushfstring(L, "%s: unexpected end of document in <%s>", p->label, r->rname);
            return 2;
        }
        switch (e.type) {
        case EV_START:
            leaf_open = 1;
            leaf_line = e.line;
            llen = e.namelen;
            xml_grow(L, &r->lname, &r->lcap, llen + 1);
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
                blank_tail = px_is_blank(p->arena + e.val, e.vallen) ? e.vallen : 0;
            }
            if (e.vallen > 0) {
                xml_grow(L, &r->tbuf, &r->tcap, tlen + e.vallen);
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

void xml_reader_register(lua_State *L)
{
    luaL_newmetatable(L, READER_MT);
    luaL_setfuncs(L, reader_meta, 0);
    luaL_newlib(L, reader_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
