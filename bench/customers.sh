#!/bin/sh
# make bench section for the customer register (called by bench/run.sh): `giro customers
# import` of a 1M-customer CSV into a new SQLite register, beside sqlite3's own
# `.mode csv` + `.import` of the same file into a table of the same schema (the
# customers table giro creates, with the CSV's columns: TEXT primary key, WITHOUT ROWID).
#
#   sh bench/customers.sh                       # 1M customers
#   CUSTOMERS_BENCH_SIZE=100000 sh bench/customers.sh
#
# The CSV comes from bench/gen_efaktura.lua (seed 2013; kept in build/bench/ for the next
# run).  Wall time and peak RSS from /usr/bin/time.  Target (the issue's): giro at most 2x
# sqlite3's time.  Also shown: a re-import of the unchanged file (every row compared, none
# written).  This reports; it never fails the build.
cd "$(dirname "$0")/.."
GIRO=./giro
N=${CUSTOMERS_BENCH_SIZE:-1000000}
DIR=build/bench
mkdir -p "$DIR"

echo
echo "== customers: giro customers import vs sqlite3 .import of the same CSV ($N customers)"
if [ ! -x /usr/bin/time ] || ! command -v sqlite3 >/dev/null 2>&1; then
  echo "  skipped: needs /usr/bin/time and sqlite3 (Debian packages time, sqlite3; make deps-test)"
  exit 0
fi
csv=$DIR/customers-$N.csv
if [ ! -s "$csv" ]; then
  if [ -s "$DIR/efaktura-$N.csv" ]; then
    cp "$DIR/efaktura-$N.csv" "$csv"
  elif ! $GIRO run bench/gen_efaktura.lua "$N" /dev/null --customers "$csv.part" --seed 2013 >/dev/null 2>"$DIR/gen.err"; then
    echo "  cannot generate the customer CSV: $(head -c 300 "$DIR/gen.err")"
    exit 0
  else
    mv "$csv.part" "$csv"
  fi
fi
echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (the machine may be shared)"
g=$DIR/customers-giro.db
s=$DIR/customers-sqlite3.db
rm -f "$g" "$g-journal" "$s" "$s-journal"
# the same schema giro creates for customers, with the CSV's columns as they are
sqlite3 "$s" "CREATE TABLE customers (account_number TEXT PRIMARY KEY, first_name TEXT NOT NULL,
  last_name TEXT NOT NULL, efaktura TEXT NOT NULL, product TEXT NOT NULL) WITHOUT ROWID"
/usr/bin/time -f '%e %M %U %S' -o "$DIR/time.s" sqlite3 "$s" ".mode csv" ".import --skip 1 $csv customers" 2>"$DIR/sqlite3.err"
if ! /usr/bin/time -f '%e %M %U %S' -o "$DIR/time.g" $GIRO customers import "$csv" --db "$g" >/dev/null 2>"$DIR/import.err"; then
  echo "  giro customers import failed: $(head -c 300 "$DIR/import.err")"
  exit 0
fi
/usr/bin/time -f '%e %M %U %S' -o "$DIR/time.r" $GIRO customers import "$csv" --db "$g" >/dev/null 2>"$DIR/import.err"
ns=$(sqlite3 "$s" "SELECT count(*) FROM customers")
ng=$(sqlite3 "$g" "SELECT count(*) FROM customers")
awk -v ns="$ns" -v ng="$ng" '
  FILENAME ~ /time.s/ { s = $1; sr = $2; sc = $3 + $4; next }
  FILENAME ~ /time.g/ { g = $1; gr = $2; gc = $3 + $4; next }
  { r = $1; rr = $2; rc = $3 + $4 }
  END {
    printf "  %-34s %9s %9s %9s %9s\n", "", "wall s", "CPU s", "rows", "RSS MB"
    printf "  %-34s %9.2f %9.2f %9d %9.1f\n", "sqlite3 .mode csv + .import", s, sc, ns, sr / 1024
    printf "  %-34s %9.2f %9.2f %9d %9.1f\n", "giro customers import (new)", g, gc, ng, gr / 1024
    printf "  %-34s %9.2f %9.2f %9s %9.1f\n", "giro customers import (unchanged)", r, rc, "-", rr / 1024
    ratio = g / (s > 0 ? s : 0.01)
    cratio = gc / (sc > 0 ? sc : 0.01)
    printf "  target: giro <= 2x sqlite3: %.1fx wall, %.1fx CPU (user + system; less sensitive to a shared machine)  %s\n",
      ratio, cratio, ratio <= 2 ? "PASS" : "MISS"
  }' "$DIR/time.s" "$DIR/time.g" "$DIR/time.r"
rm -f "$g" "$g-journal" "$s" "$s-journal"
exit 0
