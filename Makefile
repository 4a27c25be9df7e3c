# giro — build, set-up and test.  `make demo` and `make test` are the two entry points;
# both first run `make deps`, which installs any missing Debian package (as root).

PREFIX   ?= /usr/local
VERSION  := 0.1.0
CC       ?= cc
CFLAGS   ?= -O2 -g
CFLAGS   += -Iengine -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -pedantic \
            -DGIRO_VERSION='"$(VERSION)"' -DGIRO_PREFIX='"$(PREFIX)"'
# deferred (=): evaluated after `make deps` has installed pkg-config and the -dev packages
PKG_CFLAGS = $(shell pkg-config --cflags lua5.4 libxml-2.0 libcurl openssl sqlite3 libpq 2>/dev/null)
CORE_LIBS  = $(shell pkg-config --libs lua5.4 libcrypto 2>/dev/null) -lreadline
XML_LIBS   = $(shell pkg-config --libs libxml-2.0 2>/dev/null)
HTTP_LIBS  = $(shell pkg-config --libs libcurl 2>/dev/null)

# giro.xml and giro.http are Lua C modules (shared objects, loaded by `require`)
# rather than part of the executable: libcurl's and libxml2's dependency chains
# (LDAP, Kerberos, ICU, ...) cost ~15 ms of dynamic loading at every start, which
# commands that never touch XML or HTTP (a web shop spawning `giro pay form`)
# should not pay.  The core links only Lua, OpenSSL and readline.
MODULES  := xml http sql sql_pg
# A module is engine/NAME.c or a folder engine/NAME/ of .c files (one file per concern),
# linked into build/lib/giro/NAME.so with the libraries in NAME_LIBS.
mod_src   = $(or $($(1)_SRC),$(wildcard engine/$(1).c engine/$(1)/*.c))
MOD_SRC  := $(foreach m,$(MODULES),$(call mod_src,$(m)))
SRC      := $(filter-out $(MOD_SRC),$(wildcard engine/*.c))
HDR      := $(wildcard engine/*.h engine/*/*.h)
OBJ      := $(SRC:engine/%.c=build/%.o)
ASAN_OBJ := $(SRC:engine/%.c=build/asan/%.o)
MODS      := $(MODULES:%=build/lib/giro/%.so)
ASAN_MODS := $(MODULES:%=build/asan/lib/giro/%.so)
TSAN_OBJ := $(SRC:engine/%.c=build/tsan/%.o)
TSAN_MODS := $(MODULES:%=build/tsan/lib/giro/%.so)
xml_LIBS  = $(XML_LIBS) -pthread
http_LIBS = $(HTTP_LIBS)
sql_LIBS  = $(shell pkg-config --libs sqlite3 2>/dev/null)
# giro.sql's PostgreSQL backend: its own module, so that libpq loads only for PostgreSQL
sql_pg_SRC  := $(wildcard engine/sql/pg/*.c) engine/sql/util.c
sql_pg_LIBS  = $(shell pkg-config --libs libpq 2>/dev/null)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# ThreadSanitizer build (build/tsan/giro): the specs of the threaded paths run under it in make test
TSANFLAGS := -fsanitize=thread -fno-omit-frame-pointer

# Packages needed to build and run (first line) and, in addition, to test and bench.
DEPS_RUN  := liblua5.4-dev libxml2-dev libssl-dev libcurl4-openssl-dev libreadline-dev libevent-dev \
             libsqlite3-dev libpq-dev lua-cjson lua-filesystem pkg-config gcc make
DEPS_TEST := lua-busted openssl libxml2-utils postgresql tmux lua-socket lua-sec time sqlite3 wrk \
             python3-stdnum

.PHONY: all deps deps-test test test-normal test-asan demo bench install uninstall clean fuzz fuzz-build deps-fuzz

all: giro build/luac.stamp

# giro's Lua library precompiled to bytecode (see tools/compile-lua.lua): the host
# loads a cached chunk only while it is newer than its source.
LUA_SRC := $(shell find lua -name '*.lua')
build/luac.stamp: giro $(LUA_SRC) tools/compile-lua.lua
	@./giro run tools/compile-lua.lua lua build/luac && touch $@

giro: $(OBJ) $(MODS)
	$(CC) $(CFLAGS) -o $@ $(OBJ) $(CORE_LIBS)

build/%.o: engine/%.c $(HDR) | build/asan/lib/giro build/lib/giro
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

# one link rule per module (normal and sanitized), from its source files
define module_rules
build/lib/giro/$(1).so: $(call mod_src,$(1)) $$(HDR) | build/lib/giro
	$$(CC) $$(CFLAGS) $$(PKG_CFLAGS) -fPIC -shared -o $$@ $(call mod_src,$(1)) $$($(1)_LIBS)
build/asan/lib/giro/$(1).so: $(call mod_src,$(1)) $$(HDR) | build/asan/lib/giro
	$$(CC) $$(CFLAGS) $$(SANFLAGS) $$(PKG_CFLAGS) -fPIC -shared -o $$@ $(call mod_src,$(1)) $$($(1)_LIBS)
build/tsan/lib/giro/$(1).so: $(call mod_src,$(1)) $$(HDR) | build/tsan/lib/giro
	$$(CC) $$(CFLAGS) $$(TSANFLAGS) $$(PKG_CFLAGS) -fPIC -shared -o $$@ $(call mod_src,$(1)) $$($(1)_LIBS)
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

# The sanitized build carries its own sanitizer defaults (engine/sanitizer/options.c);
# build/asan/giro-leak adds a deliberate leak for the test harness's self-check.
build/asan/giro: $(ASAN_OBJ) build/asan/sanitizer/options.o $(ASAN_MODS)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(ASAN_OBJ) build/asan/sanitizer/options.o $(CORE_LIBS)

build/asan/giro-leak: $(ASAN_OBJ) build/asan/sanitizer/options.o build/asan/sanitizer/leak.o $(ASAN_MODS)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(ASAN_OBJ) build/asan/sanitizer/options.o build/asan/sanitizer/leak.o $(CORE_LIBS)

build/asan/sanitizer/%.o: engine/sanitizer/%.c | build/asan/lib/giro
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SANFLAGS) -c -o $@ $<

build/asan/%.o: engine/%.c $(HDR) | build/asan/lib/giro
	$(CC) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -c -o $@ $<

build/tsan/giro: $(TSAN_OBJ) build/tsan/sanitizer/tsan.o $(TSAN_MODS)
	$(CC) $(CFLAGS) $(TSANFLAGS) -o $@ $(TSAN_OBJ) build/tsan/sanitizer/tsan.o $(CORE_LIBS)

build/tsan/sanitizer/%.o: engine/sanitizer/%.c | build/tsan/lib/giro
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(TSANFLAGS) -c -o $@ $<

build/tsan/%.o: engine/%.c $(HDR) | build/tsan/lib/giro
	$(CC) $(CFLAGS) $(TSANFLAGS) $(PKG_CFLAGS) -c -o $@ $<

build/lib/giro build/asan/lib/giro build/tsan/lib/giro:
	@mkdir -p $@

deps:
	@sh .ci/deps.sh $(DEPS_RUN)

deps-test:
	@sh .ci/deps.sh $(DEPS_RUN) $(DEPS_TEST)

# Every spec twice: the normal build, then the ASan+UBSan build (any leak or
# sanitizer report fails it); the specs of the threaded paths once more with the
# ThreadSanitizer build; then a leaking build that must fail (.ci/test.sh).
# The last line is the combined "N passed, N failed".
test: deps-test
	@$(MAKE) --no-print-directory all build/asan/giro build/asan/giro-leak build/tsan/giro
	@sh .ci/test.sh

# libFuzzer harnesses (docs/fuzzing.md): one per C entry point that takes untrusted bytes, each
# fuzz/harness.c + the engine file(s) it drives, built with clang; `make fuzz` runs each for
# FUZZ_TIME seconds on its seed corpus (fuzz/seeds/NAME plus the XML of examples/ and spec/fixtures/).
# Crashes and failed properties land in build/fuzz/artifacts/.
FUZZ_TIME ?= 30
FUZZ_JOBS ?= 1
FUZZ_CC   ?= clang
FUZZERS   := xml_reader xml_writer url record checkdigit
FUZZ_FLAGS = -g -O1 -Iengine -std=c11 -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined \
             -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_ALL_SRC := $(wildcard engine/xml/*.c) engine/url.c engine/record.c engine/checkdigit.c

fuzz-build: $(FUZZERS:%=build/fuzz/%)

build/fuzz/%: fuzz/harness.c fuzz/%.lua $(FUZZ_ALL_SRC) $(HDR)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -DFUZZ_SCRIPT='"$(CURDIR)/fuzz/$*.lua"' \
	  -DFUZZ_LUA_PATH='"$(CURDIR)/lua/?.lua;$(CURDIR)/fuzz/?.lua"' -o $@ fuzz/harness.c \
	  $(sort $(FUZZ_ALL_SRC)) $(shell pkg-config --libs lua5.4 libxml-2.0 2>/dev/null) -pthread

fuzz: deps-fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@sh fuzz/run.sh $(FUZZ_TIME) $(FUZZ_JOBS) $(FUZZERS)

deps-fuzz:
	@sh .ci/deps.sh $(DEPS_RUN) clang

demo: deps all
	@sh examples/efaktura/demo.sh

bench: deps-test all
	@sh bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/giro $(DESTDIR)$(PREFIX)/lib/giro/giro
	install -m 755 giro $(DESTDIR)$(PREFIX)/bin/giro
	install -m 644 $(MODS) $(DESTDIR)$(PREFIX)/lib/giro/giro/
	cp -R lua rules $(DESTDIR)$(PREFIX)/share/giro/
	./giro run tools/compile-lua.lua $(DESTDIR)$(PREFIX)/share/giro/lua $(DESTDIR)$(PREFIX)/share/giro/luac

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/giro
	rm -rf $(DESTDIR)$(PREFIX)/share/giro $(DESTDIR)$(PREFIX)/lib/giro

clean:
	rm -rf build giro
