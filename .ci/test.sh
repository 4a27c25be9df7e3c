#!/bin/sh
# Run every spec with the normal build, then with the ASan+UBSan build, then the
# specs of the threaded paths (giro.xml's writer with its XSD check on a second
# thread, and the eFaktura commands that use it) with the ThreadSanitizer build,
# then a self-check that a deliberately leaking build fails; end with one line
# "N passed, N failed" summed from busted's own counts and the self-check.
#
# The sanitized build carries its sanitizer defaults (engine/sanitizer/options.c:
# exit code 23, LeakSanitizer's TLS workaround); here ASan and LeakSanitizer are
# only told to write their reports to files, so a report from any process -- the
# spec runner or a giro a spec spawned and whose stderr the spec kept -- fails
# the run by name.  UBSan reports go to stderr and end the process with 23.
cd "$(dirname "$0")/.."
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
status=0
extra_passed=0 extra_failed=0

# sanitizer_reports DIR: print every report the runtimes wrote there; true if any
sanitizer_reports() {
  found=1
  for f in "$1"/report.*; do
    [ -e "$f" ] || continue
    found=0
    kind=$(grep -o -m 1 -E '(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer)[^=]*' "$f" | head -n 1)
    echo "== sanitizer report from process ${f##*.}: ${kind:-$(head -n 1 "$f")}"
    head -n 40 "$f"
  done
  return $found
}

# run LABEL BINARY [SPEC...]: run specs, fail on a non-zero exit or any sanitizer message
run() {
  label=$1 bin=$2; shift 2
  echo "== specs: $label"
  mkdir -p "$log/$label.san"
  ASAN_OPTIONS="log_path=$log/$label.san/report" TSAN_OPTIONS="log_path=$log/$label.san/report" \
    $wrap "$bin" run spec/support/busted.lua "$@" >"$log/$label.out" 2>&1
  rc=$?
  cat "$log/$label.out"
  if grep -q -E "(Address|Leak|UndefinedBehavior|Memory|Thread)Sanitizer|runtime error:" "$log/$label.out"; then
    echo "== $label: sanitizer message in the output above"
    rc=1
  fi
  if sanitizer_reports "$log/$label.san"; then
    echo "== $label: sanitizer reports above"
    rc=1
  fi
  return $rc
}

make -s --no-print-directory all build/asan/giro build/asan/giro-leak build/tsan/giro >/dev/null || exit 1
wrap=
run normal ./giro || status=1
run asan build/asan/giro || status=1
# ThreadSanitizer maps its shadow memory at fixed addresses, which a kernel with many
# bits of mmap randomisation (vm.mmap_rnd_bits > 28) can collide with ("unexpected
# memory mapping"): the run goes without address randomisation, so it never depends on
# where the kernel placed things.
wrap="setarch $(uname -m) -R"
$wrap true 2>/dev/null || wrap=
run tsan build/tsan/giro spec/xml_spec.lua spec/xml_leaf_spec.lua spec/efaktura_spec.lua spec/efaktura_held_spec.lua \
  || status=1
wrap=

# Self-check: the same harness must fail a build that leaks in every process.
echo "== self-check: a deliberately leaking build must fail"
if run leak build/asan/giro-leak spec/ref_spec.lua >"$log/leak.check" 2>&1; then
  echo "== self-check FAILED: the leaking build passed"
  extra_failed=1
elif ! grep -q "giro_test_leak" "$log"/leak.san/report.* 2>/dev/null; then
  cat "$log/leak.check"
  echo "== self-check FAILED: the run failed, but no LeakSanitizer report names the leak"
  extra_failed=1
else
  n=$(grep -l "giro_test_leak" "$log"/leak.san/report.* | wc -l)
  echo "== self-check ok: LeakSanitizer reported the deliberate leak in $n processes and the run failed"
  extra_passed=1
fi

passed=$extra_passed failed=$extra_failed
for f in "$log"/normal.out "$log"/asan.out "$log"/tsan.out; do
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
