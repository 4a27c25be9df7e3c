# A throw-away PostgreSQL server for make bench, sourced by bench scripts (POSIX sh), the
# shell twin of spec/support/pgserver.lua: initdb into a temporary directory, listening on
# 127.0.0.1 at a free port, trust authentication, stopped by pg_stop -- which the caller
# arranges to run at exit, on failure and on ^C:
#
#   . bench/pgserver.sh
#   trap pg_stop EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
#   if pg_start; then url=$(pg_createdb name); ...; fi     # else $PG_WHY says why not
#
# A watchdog stops the server and removes the directory when the calling shell is gone
# (killed with SIGKILL, say) or after PG_LIFETIME seconds.  Unlike the specs' server this
# one keeps PostgreSQL's durable defaults (fsync and synchronous_commit on): the bench
# compares it with a SQLite register that fsyncs its commits (synchronous = FULL).
# initdb and postgres refuse to run as root: as root they run as the postgres system user.
PG_DIR= PG_PORT= PG_BIN= PG_AS= PG_WATCHDOG= PG_WHY=
PG_LIFETIME=${PG_LIFETIME:-3600}

pg_start() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    PG_WHY="no PostgreSQL binaries in /usr/lib/postgresql/*/bin (Debian package postgresql)"
    return 1
  fi
  PG_AS=
  if [ "$(id -u)" = 0 ]; then
    if ! id -u postgres >/dev/null 2>&1; then
      PG_WHY="running as root and there is no postgres user to run the server as"
      return 1
    fi
    PG_AS="runuser -u postgres --"
  fi
  PG_DIR=$(mktemp -d /tmp/giro-bench-pg.XXXXXX) || { PG_WHY="mktemp failed"; return 1; }
  [ -n "$PG_AS" ] && chown postgres "$PG_DIR"
  # the watchdog: the server goes when this shell goes, whatever way it goes
  setsid sh -c "n=0; while kill -0 $$ 2>/dev/null && [ \$n -lt $PG_LIFETIME ]; do sleep 1; n=\$((n+1)); done;
    $PG_AS '$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m immediate stop >/dev/null 2>&1; rm -rf '$PG_DIR'" \
    </dev/null >/dev/null 2>&1 &
  PG_WATCHDOG=$!
  if ! $PG_AS "$PG_BIN/initdb" -D "$PG_DIR/data" -U giro --auth=trust -N -E UTF8 --locale=C \
       >"$PG_DIR/initdb.log" 2>&1; then
    PG_WHY="initdb failed: $(tail -n 3 "$PG_DIR/initdb.log" | tr '\n' ' ')"
    pg_stop
    return 1
  fi
  for _try in 1 2 3 4 5; do   # a free port can be taken between looking and binding
    PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
              || echo $((20000 + $$ % 20000 + _try)))
    if $PG_AS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
         -o "-c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR -p $PG_PORT" start >/dev/null 2>&1; then
      return 0
    fi
    grep -q "already in use" "$PG_DIR/log" 2>/dev/null || break
  done
  PG_WHY="the PostgreSQL server did not start: $(tail -n 3 "$PG_DIR/log" 2>/dev/null | tr '\n' ' ')"
  PG_PORT=
  pg_stop
  return 1
}

# A fresh database NAME; prints its URL.
pg_createdb() {
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U giro "$1" && echo "postgres://giro@127.0.0.1:$PG_PORT/$1"
}

pg_stop() {
  if [ -n "$PG_PORT" ]; then
    $PG_AS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1
    PG_PORT=
  fi
  if [ -n "$PG_WATCHDOG" ]; then
    kill "$PG_WATCHDOG" 2>/dev/null
    PG_WATCHDOG=
  fi
  case "$PG_DIR" in /tmp/giro-bench-pg.*) rm -rf "$PG_DIR" ;; esac
  PG_DIR=
}
