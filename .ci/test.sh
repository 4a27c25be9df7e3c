#!/bin/sh
# Run every spec with the normal build, then with the ASan+UBSan build, and end
# with one line "N passed, N failed" summed over both runs from busted's own counts.
cd "$(dirname "$0")/.."
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
status=0
run() {  # run LABEL BINARY
  echo "== specs: $1"
  "$2" run spec/support/busted.lua >"$log/$1.out" 2>&1
  rc=$?
  cat "$log/$1.out"
  if grep -q -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log/$1.out"; then
    echo "== $1: sanitizer report above"
    rc=1
  fi
  [ $rc -eq 0 ] || status=1
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
make -s --no-print-directory all build/asan/giro >/dev/null || exit 1
run normal ./giro
run asan build/asan/giro
passed=0 failed=0
for f in "$log"/normal.out "$log"/asan.out; do
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$f" | tail -n 1)
  if [ -z "$line" ]; then
    failed=$((failed + 1))   # the run died before busted could count
    continue
  fi
  passed=$((passed + $(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
done
[ "$failed" -eq 0 ] || status=1
echo
echo "$passed passed, $failed failed"
exit $status
