/*
 * giro.xml's reader: xml.open / xml.from_string and the event accessors, over
 * the push-parser core (parse.c); the record methods are in record.c.
 */
#include "xml/xml.h"

const char *const xml_ev_names[] = { NULL, "start", "end", "text", "cdata" };

xml_reader *xml_check_reader(lua_State *L)
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
    xml_reader *r = xml_check_reader(L);
    int rc = px_next(&r->p, &r->cur, 0);
    if (rc > 0) {
        lua_pushstring(L, xml_ev_names[r->cur.type]);
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
    xml_reader *r = xml_check_reader(L);
    if (r->cur.type == EV_START || r->cur.type == EV_END)
        lua_pushlstring(L, r->p.arena + r->cur.name, r->cur.namelen);
    else
        lua_pushnil(L);
    return 1;
}

static int r_value(lua_State *L)
{
    xml_reader *r = xml_check_reader(L);
    if (r->cur.type == EV_TEXT || r->cur.type == EV_CDATA)
        lua_pushlstring(L, r->p.arena + r->cur.val, r->cur.vallen);
    else
        lua_pushnil(L);
    return 1;
}

static int r_line(lua_State *L)
{
    xml_reader *r = xml_check_reader(L);
    if (r->cur.type == 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, r->cur.line);
    return 1;
}

static int r_depth(lua_State *L)
{
    xml_reader *r = xml_check_reader(L);
    if (r->cur.type == 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, r->cur.depth);
    return 1;
}

static int r_attributes(lua_State *L)
{
    xml_reader *r = xml_check_reader(L);
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
    xml_reader *r = xml_check_reader(L);
    /* the declaration is parsed with the first chunk */
    if (!r->p.started && !r->p.done && r->p.head == r->p.nev)
        px_feed(&r->p);
    if (r->p.enc[0] != '\0')
        lua_pushstring(L, r->p.enc);
    else
        lua_pushnil(L);
    return 1;
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
    { "read_record", xml_read_record },
    { "next_record", xml_next_record },
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
