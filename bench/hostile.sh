#!/bin/sh
# make bench section (called by bench/run.sh): bounded memory and output on hostile request
# files (issue 9, item 4c).  Each file is valid XML; what is hostile is the size of a value:
#   status-10   10 records, each BillerEnrollmentStatus 9 MiB (one CDATA section)
#   status-100  the same with 100 records (900 MB)
#   pieces      one FirstName of 50 MiB written as alternating CDATA sections and text
# beside a plain 100-record file.  Reported: exit code, wall time, peak RSS, bytes written to
# stderr and the register's size after the run.
# Targets: memory does not grow with the number of hostile records (status-100 within 1.2x of
# status-10's peak RSS) and stays under 64 MB; the 50 MiB leaf is refused under 64 MB; stderr
# under 64 KiB; the register under 1 MB.  This reports; it never fails the build.
cd "$(dirname "$0")/.."
GIRO=./giro
DIR=build/bench/hostile
mkdir -p "$DIR"
echo
echo "== hostile request files: memory, stderr and register stay bounded"
if [ ! -x /usr/bin/time ]; then
  echo "  skipped: /usr/bin/time is missing (Debian package time; make deps-test installs it)"
  exit 0
fi
{
  echo "account_number,first_name,last_name,efaktura,product,email"
  i=1
  while [ $i -le 100 ]; do echo "$((1000000 + i)),Kari,Nordmann,yes,strøm,"; i=$((i + 1)); done
} > "$DIR/customers.csv"
gen() {  # gen NAME ARGS...: generate once, keep for the next run
  name=$1; shift
  [ -s "$DIR/$name.xml" ] || { $GIRO run bench/gen_hostile.lua "$@" "$DIR/$name.xml.part" && mv "$DIR/$name.xml.part" "$DIR/$name.xml"; }
}
gen plain plain 100 || exit 0
gen status-10 big-status 10 9 || exit 0
gen status-100 big-status 100 9 || exit 0
gen pieces pieces 50 || exit 0
printf '  %-11s %9s %5s %8s %8s %11s %11s\n' file "file MB" exit "wall s" "RSS MB" "stderr B" "register B"
base=
for name in plain status-10 status-100 pieces; do
  db=$DIR/$name.db
  rm -f "$db" "$db-journal" "$DIR/$name-response.xml"
  $GIRO customers import "$DIR/customers.csv" --db "$db" >/dev/null 2>&1
  /usr/bin/time -f '%e %M' -o "$DIR/time" $GIRO efaktura process "$DIR/$name.xml" --biller default \
    --db "$db" -o "$DIR/$name-response.xml" >/dev/null 2>"$DIR/$name.err"
  rc=$?
  set -- $(cat "$DIR/time" | tail -n 1)
  mb=$(awk -v b="$(wc -c < "$DIR/$name.xml")" 'BEGIN { printf "%.0f", b / 1048576 }')
  rss=$(awk -v k="$2" 'BEGIN { printf "%.1f", k / 1024 }')
  errb=$(wc -c < "$DIR/$name.err")
  regb=$(wc -c < "$db" 2>/dev/null || echo 0)
  printf '  %-11s %9s %5s %8s %8s %11s %11s\n' "$name" "$mb" "$rc" "$1" "$rss" "$errb" "$regb"
  rm -f "$db" "$db-journal" "$DIR/$name-response.xml"
  [ "$name" = plain ] && continue
  [ "$name" = status-10 ] && { base=$2; continue; }
  if [ "$name" = status-100 ]; then
    verdict=$(awk -v r="$2" -v b="$base" -v e="$errb" -v g="$regb" \
      'BEGIN { print (r < 64 * 1024 && r <= 1.2 * b && e < 65536 && g < 1048576) ? "PASS" : "MISS" }')
    echo "    status-100: RSS < 64 MB and <= 1.2x status-10's, stderr < 64 KiB, register < 1 MB: $verdict"
  else
    verdict=$(awk -v r="$2" -v c="$rc" 'BEGIN { print (r < 64 * 1024 && c == 1) ? "PASS" : "MISS" }')
    echo "    pieces: refused (exit 1) with RSS < 64 MB: $verdict"
  fi
done
exit 0
