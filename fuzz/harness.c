/*
 * One libFuzzer harness for giro's C entry points that take untrusted bytes.
 *
 * The entry points are Lua C functions (giro.xml, giro.url, giro.record,
 * giro.checkdigit), so the harness is a Lua state with those modules in
 * package.preload and giro's Lua library on package.path; the property script
 * fuzz/NAME.lua (NAME given at build time) returns a function called with
 * each input as a Lua string.  That function checks properties (round trips,
 * agreement between two routes) and raises when one fails: the harness then
 * prints the message and aborts, which libFuzzer reports as a crash and keeps
 * the input.  Memory errors and undefined behaviour in the C code under test
 * are caught by ASan/UBSan, the engine files being compiled into the harness
 * with -fsanitize=fuzzer,address,undefined.  See docs/fuzzing.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../engine/giro.h"

#ifndef FUZZ_SCRIPT
#error "build with -DFUZZ_SCRIPT='\"/path/to/fuzz/NAME.lua\"' (make fuzz)"
#endif
#ifndef FUZZ_LUA_PATH
#error "build with -DFUZZ_LUA_PATH='\"/path/to/lua/?.lua\"' (make fuzz)"
#endif

/* libFuzzer's interface: the state lives from LLVMFuzzerInitialize on */
static lua_State *L;
static int fn_ref;
static unsigned long runs;

static void die(const char *what)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what, lua_tostring(L, -1));
    abort();
}

/* ---- a second route to a record's leaves, for the xml_reader harness ----
 *
 * fuzz_dom_records(doc) parses doc into libxml2's tree (not giro's SAX reader)
 * and returns, for every child element of the root in order, the map of its
 * leaves (elements without element children, anywhere below it; name as
 * prefix:local) to their values, or false when a leaf name repeats; nil when
 * the tree parser refuses doc.  A leaf's value is its character data, comments
 * and processing instructions being transparent, except that when it has CDATA
 * sections, whitespace-only text before the first and after the last is
 * layout and dropped (the Nets convention giro documents). */
static int is_ws(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

static void push_leaf_value(lua_State *l, xmlNodePtr leaf)
{
    /* runs of text (type 0) and CDATA (type 1), adjacent text runs joined */
    luaL_Buffer all;
    int nseg = 0, first_cdata = -1, last_cdata = -1;
    lua_newtable(l);                              /* segments: { text, type } ... */
    int segs = lua_gettop(l);
    int prev_text = 0;
    for (xmlNodePtr c = leaf->children; c != NULL; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            const char *t = c->content != NULL ? (const char *)c->content : "";
            int cdata = c->type == XML_CDATA_SECTION_NODE;
            if (!cdata && prev_text) {
                lua_rawgeti(l, segs, 2 * nseg - 1);
                lua_pushstring(l, t);
                lua_concat(l, 2);
                lua_rawseti(l, segs, 2 * nseg - 1);
            } else {
                nseg++;
                lua_pushstring(l, t);
                lua_rawseti(l, segs, 2 * nseg - 1);
                lua_pushinteger(l, cdata);
                lua_rawseti(l, segs, 2 * nseg);
                if (cdata) {
                    if (first_cdata < 0) first_cdata = nseg;
                    last_cdata = nseg;
                }
            }
            prev_text = !cdata;
        }
    }
    luaL_buffinit(l, &all);
    for (int i = 1; i <= nseg; i++) {
        lua_rawgeti(l, segs, 2 * i - 1);
        const char *t = lua_tostring(l, -1);
        int drop = first_cdata > 0 && (i < first_cdata || i > last_cdata) && is_ws(t);
        if (drop)
            lua_pop(l, 1);
        else
            luaL_addvalue(&all);
    }
    luaL_pushresult(&all);
    lua_remove(l, segs);
}

static int has_element_child(xmlNodePtr n)
{
    for (xmlNodePtr c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return 1;
    return 0;
}

/* leaves below n into the table at the top; 0 when a name repeats */
static int collect_leaves(lua_State *l, xmlNodePtr n)
{
    if (!has_element_child(n)) {
        if (n->ns != NULL && n->ns->prefix != NULL)
            lua_pushfstring(l, "%s:%s", (const char *)n->ns->prefix, (const char *)n->name);
        else
            lua_pushstring(l, (const char *)n->name);
        lua_pushvalue(l, -1);
        if (lua_rawget(l, -3) != LUA_TNIL) {
            lua_pop(l, 2);
            return 0;
        }
        lua_pop(l, 1);
        push_leaf_value(l, n);
        lua_rawset(l, -3);
        return 1;
    }
    for (xmlNodePtr c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !collect_leaves(l, c))
            return 0;
    return 1;
}

static int dom_records(lua_State *l)
{
    size_t n;
    const char *s = luaL_checklstring(l, 1, &n);
    xmlDocPtr doc = xmlReadMemory(s, (int)n, "fuzz", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR
                                  | XML_PARSE_NOWARNING);
    if (doc == NULL)
        return 0;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    lua_newtable(l);
    int k = 0;
    for (xmlNodePtr c = root != NULL ? root->children : NULL; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        lua_newtable(l);
        if (!collect_leaves(l, c)) {
            lua_pop(l, 1);
            lua_pushboolean(l, 0);
        }
        lua_rawseti(l, -2, ++k);
    }
    xmlFreeDoc(doc);
    return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "fuzz harness: cannot create a Lua state\n");
        abort();
    }
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_giro_xml);
    lua_setfield(L, -2, "giro.xml");
    lua_pushcfunction(L, luaopen_giro_url);
    lua_setfield(L, -2, "giro.url");
    lua_pushcfunction(L, luaopen_giro_record);
    lua_setfield(L, -2, "giro.record");
    lua_pushcfunction(L, luaopen_giro_checkdigit);
    lua_setfield(L, -2, "giro.checkdigit");
    lua_pop(L, 1);
    lua_pushcfunction(L, dom_records);
    lua_setglobal(L, "fuzz_dom_records");
    lua_getglobal(L, "package");
    lua_pushstring(L, FUZZ_LUA_PATH);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_loadfile(L, FUZZ_SCRIPT) != LUA_OK)
        die("loading " FUZZ_SCRIPT);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK)
        die("running " FUZZ_SCRIPT);
    if (!lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz harness: %s must return a function\n", FUZZ_SCRIPT);
        abort();
    }
    fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static int traceback(lua_State *l)
{
    luaL_traceback(l, l, lua_tostring(l, 1), 1);
    return 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    lua_settop(L, 0);
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 1) != LUA_OK)
        die("property failed");
    lua_settop(L, 0);
    if (++runs % 256 == 0)
        lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
