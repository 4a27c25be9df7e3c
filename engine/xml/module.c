/*
 * giro.xml — streaming XML reading, validation and writing on libxml2.
 *
 *   xml.open(path [, opts]) / xml.from_string(s [, opts])  -> reader | nil, msg
 *     r:next() -> "start"|"end"|"text"|"cdata" | nil (end) | nil, msg (parse error)
 *     r:name(), r:value(), r:line(), r:depth(), r:attributes(), r:encoding()
 *     r:read_record() -> fields, lines | nil, msg       r:close()
 *     r:next_record(spec) -> fields, line, wrapper, problem | false, event, stage | nil, msg
 *   xml.record_spec{ record=, wrappers=, leaves=, required=, chars= } -> spec
 *   xml.validate(source, schema)  -> true | nil, errors
 *   xml.writer{ encoding=, indent=, fd=, path=, name=, schema= } -> writer | nil, msg
 *     w:start/finish/text/cdata/leaf/leaf_cdata/empty, w:tostring(), w:commit([schema]), w:abort()
 *   xml.escape(s)
 *
 * Files: parse.c (the SAX2 push-parser core and its event queue), reader.c,
 * record.c, validate.c, writer.c; xml.h holds what they share.
 */
#include "xml/xml.h"

static const luaL_Reg xml_funcs[] = {
    { "open", xml_open },
    { "from_string", xml_from_string },
    { "record_spec", xml_record_spec },
    { "validate", xml_validate },
    { "writer", xml_writer_new },
    { "escape", xml_escape },
    { NULL, NULL }
};

/* Messages that libxml2 raises without any parser context (the character
 * decoders, some I/O errors) can only go to its generic channel, which
 * prints to stderr by default.  Point it, once, at a sink: everything we
 * report comes from the per-parser handlers above. */
void xml_quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

int luaopen_giro_xml(lua_State *L)
{
    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, xml_quiet);
    xml_reader_register(L);
    xml_writer_register(L);
    xml_validate_register(L);
    xml_record_register(L);
    luaL_newlib(L, xml_funcs);
    return 1;
}
