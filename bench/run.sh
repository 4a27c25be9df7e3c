#!/bin/sh
# make bench: speed and memory, each figure beside a baseline measured in the same run.
# Nothing here is a pass/fail test; it reports numbers (see each section's targets).
cd "$(dirname "$0")/.."
set -e
GIRO=./giro
echo "giro bench — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $($GIRO --version)"

section() { echo; echo "== $1"; }

section "reference numbers: giro.ref.check (C arithmetic) vs pure Lua"
$GIRO run bench/ref_bench.lua

for extra in bench/pay.sh bench/efaktura.sh bench/customers.sh bench/hostile.sh; do
  [ -f "$extra" ] && sh "$extra"
done
exit 0
