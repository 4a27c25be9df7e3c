#!/bin/sh
# make bench section for giro.pay (called by bench/run.sh): build+verify rate of a Danske v4
# payment beside the SHA-256 ceiling, and the time of one `giro pay form` process.
cd "$(dirname "$0")/.."
echo
echo "== payment buttons: giro.pay (Danske v4 build+verify) vs raw SHA-256, and giro pay form"
./giro run bench/pay_bench.lua "${PAY_BENCH_SECONDS:-2}"
