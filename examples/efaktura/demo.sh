#!/bin/sh
# The eFaktura enrollment flow end to end (run by `make demo`):
#   customers -> request file -> response file -> held request decided by hand ->
#   receipts and a reminder -> changes and deletes, with the agreement register after each step.
# Everything is written under build/demo/ (a fresh register every run); examples/ is only read.
set -e
exec 2>&1   # summaries go to stderr: keep them in order with the rest
cd "$(dirname "$0")/../.."
GIRO=${GIRO:-./giro}
EX=examples/efaktura
OUT=build/demo
DB=$OUT/register.db
rm -rf "$OUT"
mkdir -p "$OUT"

step() { printf '\n== %s\n' "$*"; }

step "import the customer register ($EX/customers.csv)"
$GIRO customers import $EX/customers.csv --db $DB

step "process the request file $EX/01-requests.xml with the biller rule $EX/biller.lua"
$GIRO efaktura process $EX/01-requests.xml --biller $EX/biller.lua --db $DB -o $OUT/response-01.xml

step "validate the response $OUT/response-01.xml"
$GIRO efaktura validate $OUT/response-01.xml

step "held for a person (the rule holds unknown references instead of rejecting them)"
$GIRO efaktura pending --db $DB
# the first held request and its closest customer, from the JSON listing
$GIRO efaktura pending --db $DB --json > $OUT/pending.json
set -- $($GIRO run - $OUT/pending.json <<'LUA'
local f = assert(io.open(arg[1]))
local p = require("cjson").decode(f:read("a"))[1]
print(math.tointeger(p.id), p.suggestions[1].customer.account_number)
LUA
)
ID=$1 CUSTOMER=$2

step "decide: request #$ID is customer $CUSTOMER (the closest match), then answer"
$GIRO efaktura decide --db $DB "$ID" accept --customer "$CUSTOMER"
$GIRO efaktura answer --db $DB -o $OUT/response-held.xml
$GIRO efaktura validate $OUT/response-held.xml

step "the agreement register: answered, not active yet (eFaktura starts with Nets' receipt)"
$GIRO efaktura agreements --db $DB

step "process $EX/02-receipts-and-reminder.xml: receipts A/N and a reminder"
$GIRO efaktura process $EX/02-receipts-and-reminder.xml --biller $EX/biller.lua --db $DB -o $OUT/response-02.xml
$GIRO efaktura validate $OUT/response-02.xml

step "process $EX/03-changes-and-deletes.xml: a change, a delete, receipts A and D (nothing to answer but the change)"
$GIRO efaktura process $EX/03-changes-and-deletes.xml --biller $EX/biller.lua --db $DB -o $OUT/response-03.xml

step "who gets the next invoice as eFaktura (active agreements)"
$GIRO efaktura agreements --db $DB --status active

step "the whole register"
$GIRO efaktura agreements --db $DB

printf '\nresponses and register are in %s/\n' "$OUT"
