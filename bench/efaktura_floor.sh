#!/bin/sh
# The floor under `giro efaktura process`: the work the issue requires that no code of
# giro's can make cheaper, timed with the tools that do nothing else.
#
#   sh bench/efaktura_floor.sh REQUEST.xml REGISTER.db RESPONSE.xml
#
# REGISTER.db and RESPONSE.xml are what giro wrote for REQUEST.xml.  Prints one line:
#   <parse s> <register s> <response s>
#   parse     xmllint --stream --noout on the request (reading the file at all)
#   register  SQLite itself (the sqlite3 shell, no SQL text per row) doing the same reads
#             and writes in one transaction, with giro's pragmas: every P request's customer
#             looked up, the file's history rows and agreement rows inserted in file order,
#             every record's agreement key looked up; minus the time of merely scanning
#             those rows from REGISTER.db (so it is a lower bound)
#   response  xmllint --stream --noout --schema on the response (checking it against the
#             response XSD, which giro must do before the response may be written)
# Prints "- - -" when sqlite3 is missing (Debian package sqlite3; make deps-test installs it).
req=$1 reg=$2 resp=$3
dir=$(dirname "$reg")
if ! command -v sqlite3 >/dev/null 2>&1; then echo "- - -"; exit 0; fi
floor=$dir/floor.db
rm -f "$floor" "$floor-journal"
secs() { /usr/bin/time -f '%e' -o "$dir/time.f" "$@" >/dev/null 2>&1; cat "$dir/time.f"; }
pick() { # the faster of two runs
  a=$(secs "$@"); b=$(secs "$@")
  awk -v a="$a" -v b="$b" 'BEGIN { print (a < b) ? a : b }'
}

# an empty register of the same schema with the same customers (not timed)
sqlite3 "$reg" .schema | sqlite3 "$floor"
sqlite3 "$floor" "ATTACH '$reg' AS src; INSERT INTO customers SELECT * FROM src.customers;"

PRAGMAS="PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096;"
cat > "$dir/floor-scan.sql" <<SQL
$PRAGMAS
ATTACH '$reg' AS src;
SELECT count(*) FROM src.history WHERE event IN ('add', 'change');
SELECT count(*) FROM (SELECT * FROM src.history ORDER BY id);
SELECT count(*) FROM (SELECT * FROM src.agreements ORDER BY file_id, line);
SELECT count(*) FROM src.history;
SQL
cat > "$dir/floor-work.sql" <<SQL
$PRAGMAS
ATTACH '$reg' AS src;
BEGIN IMMEDIATE;
SELECT count(*), sum(length(c.extra)) FROM src.history h JOIN customers c ON c.account_number = h.account
  WHERE h.event IN ('add', 'change');
INSERT INTO history SELECT * FROM src.history ORDER BY id;
INSERT INTO agreements SELECT * FROM src.agreements ORDER BY file_id, line;
SELECT count(*), sum(length(a.status)) FROM src.history h JOIN agreements a
  ON a.thor_user_id = h.thor_user_id AND a.provider = h.provider AND a.account = h.account;
COMMIT;
SQL
parse=$(pick xmllint --stream --noout "$req")
scan=$(pick sqlite3 "$floor" ".read $dir/floor-scan.sql")
work=$(secs sqlite3 "$floor" ".read $dir/floor-work.sql")
response=$(pick xmllint --stream --noout --schema lua/giro/efaktura/schemas/response.xsd "$resp")
rm -f "$floor" "$floor-journal" "$dir/floor-scan.sql" "$dir/floor-work.sql" "$dir/time.f"
awk -v p="$parse" -v w="$work" -v s="$scan" -v r="$response" \
  'BEGIN { reg = w - s; if (reg < 0) reg = 0; printf "%.2f %.2f %.2f\n", p, reg, r }'
