# giro — build, set-up and test.  `make demo` and `make test` are the two entry points;
# both first run `make deps`, which installs any missing Debian package (as root).

PREFIX   ?= /usr/local
VERSION  := 0.1.0
CC       ?= cc
PKGS     := lua5.4 libxml-2.0 libcurl openssl
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -pedantic \
            -DGIRO_VERSION='"$(VERSION)"' -DGIRO_PREFIX='"$(PREFIX)"'
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lreadline

SRC      := $(wildcard engine/*.c)
HDR      := $(wildcard engine/*.h)
OBJ      := $(SRC:engine/%.c=build/%.o)
ASAN_OBJ := $(SRC:engine/%.c=build/asan/%.o)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Packages needed to build and run (first line) and, in addition, to test and bench.
DEPS_RUN  := liblua5.4-dev libxml2-dev libssl-dev libcurl4-openssl-dev libreadline-dev \
             lua-sql-sqlite3 lua-sql-postgres lua-cjson lua-filesystem pkg-config gcc make
DEPS_TEST := lua-busted openssl libxml2-utils postgresql tmux lua-socket lua-sec

.PHONY: all deps deps-test test test-normal test-asan demo bench install uninstall clean

all: giro

giro: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $(OBJ) $(PKG_LIBS)

build/%.o: engine/%.c $(HDR) | build
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

build/asan/giro: $(ASAN_OBJ)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(ASAN_OBJ) $(PKG_LIBS)

build/asan/%.o: engine/%.c $(HDR) | build
	$(CC) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -c -o $@ $<

build:
	@mkdir -p build/asan

deps:
	@sh .ci/deps.sh $(DEPS_RUN)

deps-test:
	@sh .ci/deps.sh $(DEPS_RUN) $(DEPS_TEST)

# Every spec twice: the normal build, then the ASan+UBSan build (any leak or
# sanitizer report fails it).  The last line is the combined "N passed, N failed".
test: deps-test
	@$(MAKE) --no-print-directory giro build/asan/giro
	@sh .ci/test.sh

demo: deps giro
	@sh examples/efaktura/demo.sh

bench: deps-test giro
	@sh bench/run.sh

install: giro
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/giro
	install -m 755 giro $(DESTDIR)$(PREFIX)/bin/giro
	cp -R lua rules $(DESTDIR)$(PREFIX)/share/giro/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/giro
	rm -rf $(DESTDIR)$(PREFIX)/share/giro

clean:
	rm -rf build giro
