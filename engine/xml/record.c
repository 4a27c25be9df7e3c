/*
 * giro.xml's record methods: r:read_record() (the subtree of the element just
 * started, one call per record) and r:next_record(spec) (the next record, its
 * wrapping element and its checks against a compiled xml.record_spec, in one
 * call: the hot loop of a large request file never goes back to Lua per event
 * or per leaf).
 *
 *   spec = xml.record_spec{
 *     record = "Rec",                    -- the record element
 *     wrappers = { "Add", "Change" },    -- optional: each record sits alone in one of these
 *     leaves = { "A", "B", ... },        -- the known leaves (others are reported as unknown)
 *     required = true,                   -- every known leaf must be present
 *     chars = { { "A", min = 1, max = 32 }, { "B", max = 50, trim = true }, ... },
 *   }
 *
 * Character counts are of UTF-8 characters (the reader only ever yields valid
 * UTF-8); trim = true counts without surrounding whitespace (bytes 9-13, 32).
 */
#include "xml/xml.h"

#define SPEC_MAX 64             /* leaves, wrappers and char rules per spec */

typedef struct {
    int leaf;                   /* index into leaves */
    lua_Integer min, max;
    int trim;
} rec_rule;

typedef struct {
    int nwrap, nleaves, nrules, required;
    const char *record;         /* the strings are anchored in the uservalue table */
    size_t recordlen;
    const char *wrap[SPEC_MAX], *leaf[SPEC_MAX];
    size_t wraplen[SPEC_MAX], leaflen[SPEC_MAX];
    rec_rule rule[SPEC_MAX];
} rec_spec;

/* uservalue layout: [1..nleaves] leaf names (pushed per leaf with rawgeti) */

static const char *spec_string(lua_State *L, int uv, int *slot, size_t *len, const char *what)
{
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "giro.xml: record_spec: a %s name must be a string", what);
    const char *s = lua_tolstring(L, -1, len);
    if (*len == 0 || *len > MAX_NAME)
        luaL_error(L, "giro.xml: record_spec: a %s name must be an element name", what);
    lua_pushvalue(L, -1);
    lua_rawseti(L, uv, ++*slot);   /* anchored: the pointer stays valid */
    return s;
}

static int find_name(const char *const *names, const size_t *lens, int n, const char *s, size_t len)
{
    for (int i = 0; i < n; i++)
        if (lens[i] == len && memcmp(names[i], s, len) == 0)
            return i;
    return -1;
}

/* The list of names in field `key` of the table at 1 (absent: none), each anchored
 * in uv and listed once; returns how many. */
static int spec_names(lua_State *L, int uv, int *slot, const char *key, const char *what,
                      const char **names, size_t *lens)
{
    int n = 0;
    if (lua_getfield(L, 1, key) != LUA_TNIL) {
        luaL_checktype(L, -1, LUA_TTABLE);
        n = (int)luaL_len(L, -1);
        if (n > SPEC_MAX)
            luaL_error(L, "giro.xml: record_spec: at most %d %s", SPEC_MAX, key);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            names[i] = spec_string(L, uv, slot, &lens[i], what);
            if (find_name(names, lens, i, names[i], lens[i]) >= 0)
                luaL_error(L, "giro.xml: record_spec: %s %s listed twice", what, names[i]);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return n;
}

int xml_record_spec(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    rec_spec *sp = lua_newuserdatauv(L, sizeof *sp, 1);
    memset(sp, 0, sizeof *sp);
    luaL_setmetatable(L, SPEC_MT);
    lua_newtable(L);
    int uv = lua_gettop(L), slot = 0;
    /* leaves first: their slots are 1..nleaves */
    sp->nleaves = spec_names(L, uv, &slot, "leaves", "leaf", sp->leaf, sp->leaflen);
    lua_getfield(L, 1, "record");
    sp->record = spec_string(L, uv, &slot, &sp->recordlen, "record");
    lua_pop(L, 1);
    sp->nwrap = spec_names(L, uv, &slot, "wrappers", "wrapper", sp->wrap, sp->wraplen);
    lua_getfield(L, 1, "required");
    sp->required = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (sp->required && sp->nleaves == 0)
        return luaL_error(L, "giro.xml: record_spec: required needs leaves");
    if (lua_getfield(L, 1, "chars") != LUA_TNIL) {
        luaL_checktype(L, -1, LUA_TTABLE);
        int n = (int)luaL_len(L, -1);
        if (n > SPEC_MAX)
            return luaL_error(L, "giro.xml: record_spec: at most %d chars rules", SPEC_MAX);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            luaL_checktype(L, -1, LUA_TTABLE);
            lua_rawgeti(L, -1, 1);
            size_t len;
            const char *name = lua_tolstring(L, -1, &len);
            int k = name != NULL ? find_name(sp->leaf, sp->leaflen, sp->nleaves, name, len) : -1;
            if (k < 0)
                return luaL_error(L, "giro.xml: record_spec: chars rule %d: not one of the leaves", i);
            rec_rule *ru = &sp->rule[i - 1];
            ru->leaf = k;
            lua_getfield(L, -2, "min");
            ru->min = luaL_optinteger(L, -1, 0);
            lua_getfield(L, -3, "max");
            ru->max = luaL_optinteger(L, -1, LUA_MAXINTEGER);
            lua_getfield(L, -4, "trim");
            ru->trim = lua_toboolean(L, -1);
            lua_pop(L, 5);
        }
        sp->nrules = n;
    }
    lua_pop(L, 1);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* UTF-8 characters in s (valid UTF-8: every byte but continuation bytes starts one) */
static lua_Integer utf8_chars(const char *s, size_t n, int trim)
{
    if (trim) {
        while (n > 0 && (*s == ' ' || (*s >= 9 && *s <= 13))) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || (s[n - 1] >= 9 && s[n - 1] <= 13)))
            n--;
    }
    lua_Integer c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

typedef struct {
    int line_of[SPEC_MAX];      /* line of each known leaf, 0 = absent */
    lua_Integer count[SPEC_MAX]; /* per char rule */
    int unknown_line;           /* the first unknown leaf (its name in r->rname's tail) */
    lua_Integer nleaves;
} rec_state;

/*
 * Consume the subtree of the element in r->cur (a start event) into the table
 * at fidx (fields); without a spec the leaf lines go into the table at lidx.
 * Returns 1, or 0 with nil, message pushed.  Afterwards r->cur is the record's
 * end event.
 */
static int read_body(lua_State *L, xml_reader *r, const rec_spec *sp, int uvidx,
                     int fidx, int lidx, rec_state *st)
{
    xml_parse *p = &r->p;
    int rdepth = r->cur.depth;
    size_t rlen = r->cur.namelen, llen = rlen, tlen = 0;
    xml_grow(L, &r->rname, &r->rcap, rlen + 1);
    xml_grow(L, &r->lname, &r->lcap, rlen + 1);
    memcpy(r->rname, p->arena + r->cur.name, rlen);
    r->rname[rlen] = '\0';
    memcpy(r->lname, r->rname, rlen + 1);
    int leaf_open = 1, leaf_line = r->cur.line, seen_cdata = 0, hint = 0;
    size_t blank_tail = 0;      /* trailing whitespace-only text in tbuf */
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
            return 0;
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
                return 0;
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
                const char *val = r->tbuf != NULL ? r->tbuf : "";
                int k = -1;
                if (sp != NULL) {
                    /* leaves mostly come in the spec's order: try the one after the last first */
                    if (hint < sp->nleaves && sp->leaflen[hint] == llen
                        && memcmp(sp->leaf[hint], r->lname, llen) == 0)
                        k = hint;
                    else
                        k = find_name(sp->leaf, sp->leaflen, sp->nleaves, r->lname, llen);
                    if (k >= 0)
                        hint = k + 1;
                }
                int repeated;
                if (k >= 0) {
                    repeated = st->line_of[k] != 0;
                    if (!repeated) {
                        st->line_of[k] = leaf_line;
                        lua_rawgeti(L, uvidx, k + 1);           /* the anchored name */
                        lua_pushlstring(L, val, tlen);
                        lua_rawset(L, fidx);
                        for (int i = 0; i < sp->nrules; i++)
                            if (sp->rule[i].leaf == k)
                                st->count[i] = utf8_chars(val, tlen, sp->rule[i].trim);
                    }
                } else {
                    lua_pushlstring(L, r->lname, llen);         /* key */
                    repeated = lua_rawget(L, fidx) != LUA_TNIL;
                    lua_pop(L, 1);
                    if (!repeated) {
                        lua_pushlstring(L, r->lname, llen);
                        lua_pushlstring(L, val, tlen);
                        lua_rawset(L, fidx);
                        if (lidx != 0) {
                            lua_pushlstring(L, r->lname, llen);
                            lua_pushinteger(L, leaf_line);
                            lua_rawset(L, lidx);
                        } else if (st->unknown_line == 0) {
                            /* the first unknown leaf: its name after the record's */
                            xml_grow(L, &r->rname, &r->rcap, rlen + 1 + llen + 1);
                            memcpy(r->rname + rlen + 1, r->lname, llen + 1);
                            st->unknown_line = leaf_line;
                        }
                    }
                }
                if (repeated) {
                    r->cur = e;
                    lua_pushnil(L);
                    lua_pushfstring(L, "%s:%d: element <%s> repeated in <%s>",
                                    p->label, leaf_line, r->lname, r->rname);
                    return 0;
                }
                leaf_open = 0;
                st->nleaves++;
            }
            if (e.depth == rdepth) {
                r->cur = e;
                return 1;
            }
            break;
        }
    }
}

/* r:read_record() -> fields, lines, count | nil, message */
int xml_read_record(lua_State *L)
{
    xml_reader *r = xml_check_reader(L);
    if (r->cur.type != EV_START)
        return luaL_error(L, "giro.xml: read_record must follow a \"start\" event");
    rec_state st;
    st.nleaves = 0;
    st.unknown_line = 0;
    lua_settop(L, 1);
    lua_createtable(L, 0, 24);                 /* 2: fields */
    lua_createtable(L, 0, 24);                 /* 3: lines */
    lua_pushinteger(L, r->cur.line);
    lua_rawseti(L, 3, 0);
    if (!read_body(L, r, NULL, 0, 2, 3, &st))
        return 2;
    lua_pushinteger(L, st.nleaves);
    return 3;
}

/* The problem of a record read against sp, as a table, or nothing pushed (0). */
static int push_problem(lua_State *L, xml_reader *r, const rec_spec *sp, const rec_state *st)
{
    if (sp->required) {
        for (int i = 0; i < sp->nleaves; i++) {
            if (st->line_of[i] == 0) {
                lua_createtable(L, 0, 2);
                lua_pushliteral(L, "missing");
                lua_setfield(L, -2, "kind");
                lua_pushlstring(L, sp->leaf[i], sp->leaflen[i]);
                lua_setfield(L, -2, "leaf");
                return 1;
            }
        }
    }
    if (sp->nleaves > 0 && st->unknown_line != 0) {
        lua_createtable(L, 0, 3);
        lua_pushliteral(L, "unknown");
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, r->rname + strlen(r->rname) + 1);
        lua_setfield(L, -2, "leaf");
        lua_pushinteger(L, st->unknown_line);
        lua_setfield(L, -2, "line");
        return 1;
    }
    for (int i = 0; i < sp->nrules; i++) {
        const rec_rule *ru = &sp->rule[i];
        if (st->line_of[ru->leaf] == 0 || (st->count[i] >= ru->min && st->count[i] <= ru->max))
            continue;
        lua_createtable(L, 0, 5);
        lua_pushliteral(L, "chars");
        lua_setfield(L, -2, "kind");
        lua_pushinteger(L, i + 1);
        lua_setfield(L, -2, "rule");
        lua_pushlstring(L, sp->leaf[ru->leaf], sp->leaflen[ru->leaf]);
        lua_setfield(L, -2, "leaf");
        lua_pushinteger(L, st->line_of[ru->leaf]);
        lua_setfield(L, -2, "line");
        lua_pushinteger(L, st->count[i]);
        lua_setfield(L, -2, "count");
        return 1;
    }
    return 0;
}

/* Not a record: the reader sits on e (or at the end); false, event, stage, wrapper. */
static int not_a_record(lua_State *L, xml_reader *r, int rc, const xml_event *e, int stage, int w)
{
    lua_pushboolean(L, 0);
    if (rc == 0) {
        r->cur.type = 0;
        lua_pushliteral(L, "eof");
    } else {
        r->cur = *e;
        lua_pushstring(L, xml_ev_names[e->type]);
    }
    lua_pushinteger(L, stage);
    lua_pushinteger(L, w);
    return 4;
}

static int is_start_of(const xml_parse *p, const xml_event *e, const char *name, size_t len)
{
    return e->type == EV_START && e->namelen == len && memcmp(p->arena + e->name, name, len) == 0;
}

/* A parse error: the reader sits nowhere; nil, message. */
static int parse_error(lua_State *L, xml_reader *r)
{
    r->cur.type = 0;
    lua_pushnil(L);
    px_push_error(L, &r->p);
    return 2;
}

/*
 * r:next_record(spec) -> fields, line, wrapper, problem   a record (wrapper: its index in
 *                                                        spec.wrappers, 0 without; problem nil
 *                                                        or { kind, leaf, line?, rule?, count? })
 *                      | false, event, stage, wrapper      not a record (see docs/modules.md)
 *                      | nil, message                    a parse error or a repeated leaf
 */
int xml_next_record(lua_State *L)
{
    xml_reader *r = xml_check_reader(L);
    const rec_spec *sp = luaL_checkudata(L, 2, SPEC_MT);
    xml_parse *p = &r->p;
    lua_settop(L, 2);
    lua_getiuservalue(L, 2, 1);                /* 3: the spec's names */
    xml_event e;
    int rc = px_next(p, &e, 0), w = 0;
    if (rc < 0)
        return parse_error(L, r);
    if (sp->nwrap > 0) {
        if (rc == 0 || e.type != EV_START)
            return not_a_record(L, r, rc, &e, 0, 0);
        w = find_name(sp->wrap, sp->wraplen, sp->nwrap, p->arena + e.name, e.namelen) + 1;
        if (w == 0)
            return not_a_record(L, r, rc, &e, 0, 0);
        rc = px_next(p, &e, 0);
        if (rc < 0)
            return parse_error(L, r);
        if (rc == 0 || !is_start_of(p, &e, sp->record, sp->recordlen))
            return not_a_record(L, r, rc, &e, 1, w);
    } else if (rc == 0 || !is_start_of(p, &e, sp->record, sp->recordlen)) {
        return not_a_record(L, r, rc, &e, 0, 0);
    }
    r->cur = e;
    int line = e.line;
    rec_state st;
    memset(st.line_of, 0, (size_t)sp->nleaves * sizeof st.line_of[0]);
    st.nleaves = 0;
    st.unknown_line = 0;
    lua_createtable(L, 0, sp->nleaves);        /* 4: fields */
    if (!read_body(L, r, sp, 3, 4, 0, &st))
        return 2;
    if (sp->nwrap > 0) {
        rc = px_next(p, &e, 0);
        if (rc < 0)
            return parse_error(L, r);
        if (rc == 0 || e.type != EV_END)
            return not_a_record(L, r, rc, &e, 2, w);
        r->cur = e;
    }
    lua_pushinteger(L, line);
    lua_pushinteger(L, w);
    if (!push_problem(L, r, sp, &st))
        lua_pushnil(L);
    return 4;
}

void xml_record_register(lua_State *L)
{
    luaL_newmetatable(L, SPEC_MT);
    lua_pop(L, 1);
}
