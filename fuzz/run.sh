#!/bin/sh
# Run each libFuzzer harness for SECONDS on its corpus (make fuzz; docs/fuzzing.md).
#   sh fuzz/run.sh SECONDS JOBS NAME...
# The working corpus build/fuzz/corpus/NAME starts from fuzz/seeds/NAME (and, for xml_reader, the
# XML files of examples/ and spec/fixtures/) and keeps what the runs find; crashes and failed
# properties are written to build/fuzz/artifacts/NAME-crash-* (reproduce: build/fuzz/NAME FILE).
# Exit status 1 if any harness found something.
set -u
secs=$1 jobs=$2
shift 2
status=0
mkdir -p build/fuzz/artifacts
for name in "$@"; do
  corpus=build/fuzz/corpus/$name
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$name" ] && cp -n fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null
  if [ "$name" = xml_reader ]; then
    find examples spec/fixtures -name '*.xml' -size -1000k | while read -r f; do
      cp -n "$f" "$corpus/seed-$(echo "$f" | tr / _)" 2>/dev/null
    done
  fi
  echo "fuzz: $name for ${secs}s ($(ls "$corpus" | wc -l) inputs in $corpus)"
  if [ "$jobs" -gt 1 ]; then par="-fork=$jobs"; else par=""; fi
  if ! build/fuzz/"$name" $par -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/"$name"- "$corpus" \
       >build/fuzz/"$name".log 2>&1; then
    echo "fuzz: $name FOUND A PROBLEM (build/fuzz/$name.log):"
    grep -E "fuzz harness:|ERROR: |SUMMARY|runtime error|Test unit written" build/fuzz/"$name".log | head -20
    status=1
  else
    grep -E "stat::number_of_executed_units|cov: " build/fuzz/"$name".log | tail -2 | sed "s/^/fuzz: $name: /"
  fi
done
exit $status
