#!/usr/bin/python3
"""The Python peer of `giro efaktura process --biller default` for make bench.

    /usr/bin/python3 bench/peer_efaktura.py REQUEST.xml --db REGISTER.db -o RESPONSE.xml
    /usr/bin/python3 bench/peer_efaktura.py --compare RESPONSE-A.xml RESPONSE-B.xml

The job a biller could write in an afternoon with the standard library only, done the way
the issue describes it: ElementTree iterparse of the request file (ISO-8859-1), sqlite3 with
executemany into an on-disk register in ONE transaction (giro's schema: customers looked up,
agreements upserted, history inserted, the file recorded), the default rule's name matching
(a faithful port of lua/giro/efaktura/names.lua at level "normal" and rules/billers/default.lua)
and the same response file (same layout, ISO-8859-1, values in CDATA).

REGISTER.db must already hold the customers (bench/efaktura.sh imports them with
`giro customers import`, not timed here).  What this peer does NOT do that giro does: check
the response against the response XSD (the standard library has no XSD validator), keep the
line numbers of records (iterparse gives none; `line` is stored as NULL), replay a file
already processed, write through a temp file + fsync + rename, or guard against hostile
input beyond the spec's field checks.  So it is the cheaper job; giro must still beat it.
"""
import hashlib
import json
import os
import re
import sqlite3
import sys
import time
import xml.etree.ElementTree as ET

BATCH = 256

MESSAGES = {
    "01": "Oppgitt efaktura referanse er ugyldig (se papirfaktura)",
    "02": "Oppgitte personopplysninger er ikke i samsvar med Kunderegister (se papirfaktura)",
    "03": "Det tilbys ikke efaktura for dette produktet",
}

LEAVES = [
    "PortalEnrollmentStatus",
    "BillerAccountNumber", "BillerUserName", "BillerPassword", "BillerEnrollmentStatus",
    "FirstName", "LastName", "DayPhone", "Email",
    "Address1", "Address2", "City", "State", "PostalCode", "Country",
    "ThorContentProviderId", "ThorUserId", "ThorUserKey",
]
KNOWN = set(LEAVES)
MAX_CHARS = [("FirstName", 50), ("LastName", 50), ("Address1", 50), ("Address2", 50), ("City", 50),
             ("State", 30), ("PostalCode", 20), ("Country", 30)]
ELEMENT = {"EnrollmentAdd": "Add", "EnrollmentChange": "Change", "EnrollmentDelete": "Delete"}
KIND = {
    "EnrollmentAdd": {"P": "add"},
    "EnrollmentChange": {"P": "change", "A": "receipt-A", "N": "receipt-N", "D": "receipt-D"},
    "EnrollmentDelete": {"D": "delete"},
}
FP_FIELDS = ["FirstName", "LastName", "DayPhone", "Email", "Address1", "Address2", "City", "State",
             "PostalCode", "Country"]
LUA_SPACE = " \t\n\v\f\r"          # Lua's %s in the C locale
NO_SPACE = {ord(c): None for c in LUA_SPACE}

# ---------------------------------------------------------------------------------------
# giro.efaktura.names, level "normal" (the default rule's name_match)


def lower_cp(cp):
    if 0x41 <= cp <= 0x5A:
        return cp + 32
    if cp < 0xC0:
        return cp
    if cp <= 0xDE:
        return cp if cp == 0xD7 else cp + 32
    if 0x100 <= cp <= 0x137:
        return cp | 1
    if 0x139 <= cp <= 0x148:
        return cp + 1 if cp % 2 == 1 else cp
    if 0x14A <= cp <= 0x177:
        return cp | 1
    if 0x179 <= cp <= 0x17E:
        return cp + 1 if cp % 2 == 1 else cp
    return cp


VARIANT = {
    0xE0: "a", 0xE1: "a", 0xE2: "a", 0xE3: "a", 0xE4: "æ", 0xE7: "c",
    0xE8: "e", 0xE9: "e", 0xEA: "e", 0xEB: "e", 0xEC: "i", 0xED: "i", 0xEE: "i", 0xEF: "i",
    0xF0: "d", 0xF1: "n", 0xF2: "o", 0xF3: "o", 0xF4: "o", 0xF5: "o", 0xF6: "ø",
    0xF9: "u", 0xFA: "u", 0xFB: "u", 0xFC: "u", 0xFD: "y", 0xFF: "y", 0xDF: "ss",
    0x10D: "c", 0x111: "d", 0x14B: "n", 0x161: "s", 0x167: "t", 0x17E: "z", 0x101: "a", 0x107: "c",
    0x142: "l", 0x144: "n", 0x15B: "s", 0x17A: "z", 0x17C: "z",
}


def fold_table(strict):
    """names.lua's fold as one str.translate: ASCII lower case, Latin-1/Extended-A lower case,
    (normal) spelling variants of the lowered letter, NBSP and hyphens to space, apostrophes
    and full stops dropped."""
    t = {}
    for cp in range(0x41, 0x5B):
        t[cp] = chr(cp + 32)
    for cp in range(0xC0, 0x180):
        lo = lower_cp(cp)
        v = None if strict else VARIANT.get(lo)
        if v is not None:
            t[cp] = v
        elif lo != cp:
            t[cp] = chr(lo)
    for cp in (0xA0, 0x2010, 0x2011, 0x2013):
        t[cp] = " "
    for cp in (0x2019, 0xB4, ord("'"), ord("."), ord("`")):
        t[cp] = None
    return t


FOLD_NORMAL = fold_table(False)
SEPARATORS = re.compile("[ \t\n\v\f\r,/&-]+")
_memo = {}


def fold(s):
    r = _memo.get(s)
    if r is not None:
        return r
    x = SEPARATORS.sub(" ", s.translate(FOLD_NORMAL)).strip(" ").replace("aa", "å")
    if len(_memo) >= 4096:
        _memo.clear()
    _memo[s] = x
    return x


def split(x):
    return [w for w in x.split(" ") if w]


def shared(a, b):
    for x in a:
        if len(x) > 1:
            for y in b:
                if x == y:
                    return x
    return None


def q(s):
    """errors.quote(s, 60) for the short names of the bench: a double-quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' if len(s) <= 60 else '"' + s[:60] + '..."'


def names_match(first, last, cfirst, clast):
    rfs, cfs = fold(first), fold(cfirst)
    if rfs != "" and rfs == cfs and len(rfs.encode()) > 1:
        return True, "first name '" + rfs + "' equals the customer's"
    rls, cls = fold(last), fold(clast)
    if rls != "" and rls == cls and len(rls.encode()) > 1:
        return True, "last name '" + rls + "' equals the customer's"
    if rfs == "" and rls == "":
        return False, "the request carries no name"
    rf, rl, cf, cl = split(rfs), split(rls), split(cfs), split(cls)
    hit = shared(rf, cf)
    if hit:
        return True, "first name %s is one of the customer's given names %s" % (q(hit), q(" ".join(cf)))
    if rl and " ".join(rl) == " ".join(cl):
        return True, "last name %s equals the customer's" % q(" ".join(rl))
    hit = shared(rl, cl)
    if hit:
        return True, "last name part %s is part of the customer's last name %s" % (q(hit), q(" ".join(cl)))
    return False, "neither first name %s nor last name %s matches the customer's %s / %s (normal)" % (
        q(" ".join(rf)), q(" ".join(rl)), q(" ".join(cf)), q(" ".join(cl)))


def validate(fields, number, customer):
    """rules/billers/default.lua's validate: (answer, reason, message, why)."""
    if customer is None:
        return "N", "01", MESSAGES["01"], "no customer %s in the register" % q(number)
    ok, why = names_match(fields["FirstName"], fields["LastName"], customer[0], customer[1])
    if not ok:
        return "N", "02", MESSAGES["02"], why
    if not customer[2]:
        return "N", "03", MESSAGES["03"], "the customer's product offers no eFaktura (" + why + ")"
    return "A", "", "", why


# ---------------------------------------------------------------------------------------
# the response file (the layout of giro.efaktura.response)


def cdata(tag, v, ind):
    if v == "":
        return "%s<%s/>\n" % (ind, tag)
    v = v.replace("]]>", "]]]]><![CDATA[>")
    return "%s<%s><![CDATA[%s]]></%s>\n" % (ind, tag, v, tag)


def response_header(from_name, to_id, to_service):
    return ('<?xml version="1.0" encoding="iso-8859-1"?>\n<Message>\n  <Response>\n    <FromInfo>\n'
            '      <ServiceProvider>\n' + cdata("ServiceProviderName", from_name, "        ")
            + '      </ServiceProvider>\n    </FromInfo>\n    <ToInfo>\n      <ServiceProvider>\n'
            + cdata("ServiceProviderID", to_id, "        ") + cdata("ServiceID", to_service, "        ")
            + '      </ServiceProvider>\n    </ToInfo>\n    <Status/>\n  </Response>\n')


def response_answer(element, account, status, reason, message, provider, user):
    i = "          "
    return ("  <EnrollmentRS>\n    <%s>\n      <AccountInfoRecord>\n        <BillerInfo>\n" % element
            + cdata("BillerAccountNumber", account, i) + cdata("BillerEnrollmentStatus", status, i)
            + cdata("BillerReason", reason if status != "A" else "", i)
            + cdata("BillerMessage", message if status != "A" else "", i)
            + "        </BillerInfo>\n        <ThorInfo>\n"
            + cdata("ThorContentProviderId", provider, i) + cdata("ThorUserId", user, i)
            + "        </ThorInfo>\n        <ThorUserSignature/>\n      </AccountInfoRecord>\n"
            + "    </%s>\n  </EnrollmentRS>\n" % element)


# ---------------------------------------------------------------------------------------
# the request file


def text_of(e):
    # Nets pretty-prints " <![CDATA[x]]> ": the one space either side is layout, the spaces
    # inside the section are data (ElementTree joins text and CDATA, so this peer assumes that
    # layout, as in the spec's examples and the bench file; giro's reader knows the section)
    t = e.text
    if not t:
        return ""
    if len(t) >= 2 and t[0] == " " and t[-1] == " ":
        return t[1:-1]
    return t


def records(path, header):
    """Yield (element, fields, repeated leaves) per record; fills header from <Request>."""
    for _, e in ET.iterparse(path, events=("end",)):
        tag = e.tag
        if tag in ELEMENT:
            fields = {}
            extra = []
            rec = e.find("AccountInfoRecord")
            if rec is not None:
                for leaf in rec.iter():
                    if len(leaf) == 0:
                        if leaf.tag in fields:
                            extra.append(leaf.tag)
                        fields[leaf.tag] = text_of(leaf)
            yield tag, fields, extra
            e.clear()                    # memory holds one record (and its empty shell)
        elif tag == "EnrollmentRQ":
            e.clear()
        elif tag == "Request":
            sp = e.find("FromInfo/ServiceProvider/ServiceProviderName")
            header["from_name"] = text_of(sp) if sp is not None else ""
            header["to_id"] = text_of(e.find("ToInfo/ServiceProvider/ServiceProviderID"))
            header["to_service"] = text_of(e.find("ToInfo/ServiceProvider/ServiceID"))
            if header["from_name"] not in ("8080", "THOR", "Thor"):
                raise SystemExit("%s: ServiceProviderName %r: expected THOR, 8080 or Thor" % (path, header["from_name"]))
            if len(header["to_id"]) != 14:
                raise SystemExit("%s: ServiceProviderID %r: expected 14 characters" % (path, header["to_id"]))
            e.clear()


def problem(element, f, extra):
    for leaf in LEAVES:
        if leaf not in f:
            return "lacks <%s>" % leaf
    for k in f:
        if k not in KNOWN:
            return "unexpected <%s>" % k
    if extra:
        return "element <%s> repeated" % extra[0]
    n = len(f["BillerAccountNumber"])
    if n == 0:
        return "BillerAccountNumber is empty"
    if n > 32:
        return "BillerAccountNumber has %d characters (at most 32)" % n
    if len(f["ThorContentProviderId"].strip(LUA_SPACE)) != 14:
        return "ThorContentProviderId: expected 14 characters"
    if f["ThorUserId"].strip(LUA_SPACE) == "":
        return "ThorUserId is empty"
    if len(f["ThorUserId"]) > 35:
        return "ThorUserId has %d characters (at most 35)" % len(f["ThorUserId"])
    for name, most in MAX_CHARS:
        if len(f[name]) > most:
            return "%s has %d characters (at most %d)" % (name, len(f[name]), most)
    status = f["BillerEnrollmentStatus"].strip(LUA_SPACE)
    if status not in KIND[element]:
        return "<%s> with BillerEnrollmentStatus %r is not a message of the spec" % (element, status)
    return None


# ---------------------------------------------------------------------------------------

DDL = """
CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, digest TEXT UNIQUE, name TEXT,
  from_name TEXT, to_id TEXT, to_service TEXT, records INTEGER NOT NULL DEFAULT 0,
  answers INTEGER NOT NULL DEFAULT 0, summary TEXT, processed_at TEXT NOT NULL, delivered_at TEXT);
CREATE TABLE IF NOT EXISTS agreements (id INTEGER PRIMARY KEY, thor_user_id TEXT NOT NULL, provider TEXT NOT NULL,
  account TEXT NOT NULL, status TEXT NOT NULL, element TEXT, answer TEXT, reason TEXT, message TEXT,
  customer TEXT, request TEXT, fingerprint TEXT, proposal TEXT, decision TEXT, line INTEGER, file_id INTEGER,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (thor_user_id, provider, account));
CREATE INDEX IF NOT EXISTS agreements_status ON agreements (status);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY, thor_user_id TEXT NOT NULL, provider TEXT NOT NULL,
  account TEXT NOT NULL, file_id INTEGER, seq INTEGER, line INTEGER, element TEXT, event TEXT NOT NULL,
  status_before TEXT, status_after TEXT, answer TEXT, reason TEXT, message TEXT, detail TEXT, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_file ON history (file_id, seq);
"""

AGREEMENT_COLUMNS = ["thor_user_id", "provider", "account", "status", "element", "answer", "reason", "message",
                     "customer", "request", "fingerprint", "proposal", "decision", "line", "file_id",
                     "created_at", "updated_at"]
UPSERT = ("INSERT INTO agreements (%s) VALUES (%s) ON CONFLICT (thor_user_id, provider, account) DO UPDATE SET %s"
          % (",".join(AGREEMENT_COLUMNS), ",".join("?" * len(AGREEMENT_COLUMNS)),
             ", ".join("%s = excluded.%s" % (c, c) for c in AGREEMENT_COLUMNS
                       if c not in ("thor_user_id", "provider", "account", "created_at"))))
HISTORY = ("INSERT INTO history (thor_user_id, provider, account, file_id, seq, line, element, event,"
           " status_before, status_after, answer, reason, message, detail, at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")


def main(argv):
    req, db_path, out_path = None, None, None
    i = 1
    while i < len(argv):
        if argv[i] == "--db":
            db_path = argv[i + 1]
            i += 2
        elif argv[i] == "-o":
            out_path = argv[i + 1]
            i += 2
        else:
            req = argv[i]
            i += 1
    if not (req and db_path and out_path):
        sys.stderr.write("usage: peer_efaktura.py REQUEST.xml --db REGISTER.db -o RESPONSE.xml\n")
        return 2
    h = hashlib.sha256()
    with open(req, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    digest = h.hexdigest()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    db = sqlite3.connect(db_path, isolation_level=None)
    db.executescript(DDL)
    db.execute("BEGIN IMMEDIATE")
    cur = db.execute("INSERT INTO files (kind, digest, name, processed_at) VALUES ('request', ?, ?, ?)",
                     (digest, req, now))
    file_id = cur.lastrowid

    header = {}
    out = open(out_path + ".part", "w", encoding="iso-8859-1", errors="xmlcharrefreplace", newline="\n")
    wrote_header = False
    rows = {}                 # agreement key -> row dict (this file's view of the register)
    dirty, hist = {}, []
    counts = {"records": 0, "answers": 0, "skipped": 0}
    customer_q = "SELECT first_name, last_name, efaktura FROM customers WHERE account_number = ?"
    agreement_q = ("SELECT " + ",".join(AGREEMENT_COLUMNS) + " FROM agreements"
                   " WHERE thor_user_id = ? AND provider = ? AND account = ?")

    def flush():
        db.executemany(UPSERT, [[r[c] for c in AGREEMENT_COLUMNS] for r in dirty.values()])
        db.executemany(HISTORY, hist)
        dirty.clear()
        del hist[:]

    def answer(element, f, a, reason, message):
        nonlocal wrote_header
        if not wrote_header:
            out.write(response_header("8080", header["to_id"], header["to_service"]))
            wrote_header = True
        out.write(response_answer(element, f["BillerAccountNumber"], a, reason, message,
                                  f["ThorContentProviderId"], f["ThorUserId"]))
        counts["answers"] += 1

    seq = 0
    pending = 0
    for element, f, extra in records(req, header):
        counts["records"] += 1
        seq += 1
        why_not = problem(element, f, extra)
        if why_not:
            counts["skipped"] += 1
            continue
        status = f["BillerEnrollmentStatus"].strip(LUA_SPACE)
        kind = KIND[element][status]
        etype = ELEMENT[element]
        user, provider, account = f["ThorUserId"], f["ThorContentProviderId"], f["BillerAccountNumber"]
        key = (user, provider, account)
        row = rows.get(key)
        if row is None:
            r = db.execute(agreement_q, key).fetchone()
            if r is not None:
                row = dict(zip(AGREEMENT_COLUMNS, r))
        before = row["status"] if row else None

        def history(event, after, a=None, reason=None, message=None, detail=None):
            hist.append((user, provider, account, file_id, seq, None, element, event, before, after,
                         a, reason, message, detail, now))

        def touch(r):
            rows[key] = r
            dirty[key] = r

        def new_row():
            return {"thor_user_id": user, "provider": provider, "account": account, "status": None,
                    "element": None, "answer": None, "reason": None, "message": None, "customer": None,
                    "request": None, "fingerprint": None, "proposal": None, "decision": None, "line": None,
                    "file_id": None, "created_at": now, "updated_at": now}

        if kind in ("add", "change"):
            fp = hashlib.sha1("\x1f".join([element] + [f[k] for k in FP_FIELDS]).encode()).hexdigest()
            if row and before == "held":
                row["fingerprint"], row["element"] = fp, etype
                row["file_id"], row["updated_at"] = file_id, now
                touch(row)
                history("reminder", "held", detail="request is held for a manual decision")
            elif row and before == "answered" and row["fingerprint"] == fp and row["element"] == etype:
                answer(element, f, row["answer"], row["reason"] or "", row["message"] or "")
                history("reminder", before, row["answer"], row["reason"], row["message"],
                        "the same request again: same answer")
            elif kind == "change" and row and before == "active":
                row.update(fingerprint=fp, element=etype, answer="A", reason="", message="", updated_at=now,
                           file_id=file_id)
                touch(row)
                answer(element, f, "A", "", "")
                history("change", "active", "A", "", "", "already an active eFaktura agreement: change accepted")
            else:
                number = account.translate(NO_SPACE)
                c = db.execute(customer_q, (number,)).fetchone()
                a, reason, message, why = validate(f, number, c)
                row = row or new_row()
                after = "stopped" if (a == "N" and before == "active") else ("active" if before == "active" else "answered")
                row.update(fingerprint=fp, element=etype, customer=number if c else None, file_id=file_id,
                           updated_at=now, status=after, answer=a, reason=reason, message=message,
                           proposal=None, decision=None)
                touch(row)
                answer(element, f, a, reason, message)
                history(kind, after, a, reason, message, why)
        elif kind == "delete":
            if row and before in ("active", "answered", "held"):
                row.update(status="stopped", updated_at=now, file_id=file_id)
                touch(row)
                history("delete", "stopped", detail="deleted by the consumer: eFaktura stopped")
            else:
                history("delete", before, detail="agreement not active: nothing to stop" if row
                        else "not in the register: ignored")
        else:
            after = {"A": "active", "N": "rejected", "D": "stopped"}[status]
            customer = None
            if not row or row["customer"] is None:
                number = account.translate(NO_SPACE)
                if db.execute(customer_q, (number,)).fetchone() is not None:
                    customer = number
            if not row:
                row = new_row()
                row["element"] = "Change"
            if customer and row["customer"] is None:
                row["customer"] = customer
            row.update(status=after, updated_at=now, file_id=file_id)
            touch(row)
            history("receipt-" + status, after, detail="customer " + row["customer"] if customer else None)
        pending += 1
        if pending >= BATCH:
            flush()
            rows.clear()         # what was flushed is read back from the register
            pending = 0
    flush()
    if wrote_header:
        out.write("</Message>\n")
    out.close()
    db.execute("UPDATE files SET from_name = ?, to_id = ?, to_service = ?, records = ?, answers = ?, summary = ?"
               " WHERE id = ?", ("8080", header.get("to_id"), header.get("to_service"), counts["records"],
                                 counts["answers"], json.dumps(counts), file_id))
    db.execute("COMMIT")
    db.close()
    if wrote_header:
        os.replace(out_path + ".part", out_path)
    else:
        os.unlink(out_path + ".part")
    sys.stderr.write("%s: %d record(s), %d answer(s), %d skipped\n"
                     % (req, counts["records"], counts["answers"], counts["skipped"]))
    return 0


def answers(path):
    """The answers of a response file, in order: (element, leaf values) per record."""
    out = []
    for _, e in ET.iterparse(path, events=("end",)):
        if e.tag in ("EnrollmentAdd", "EnrollmentChange"):
            rec = e.find("AccountInfoRecord")
            out.append((e.tag,) + tuple((leaf.tag, leaf.text or "") for leaf in rec.iter() if len(leaf) == 0))
            e.clear()
    return out


def compare(a_path, b_path):
    """--compare A.xml B.xml: are the two responses the same, and if not, which answers differ."""
    with open(a_path, "rb") as fa, open(b_path, "rb") as fb:
        if fa.read() == fb.read():
            print("identical")
            return 0
    a, b = answers(a_path), answers(b_path)
    differ = [i for i in range(min(len(a), len(b))) if a[i] != b[i]]
    print("differ: %d vs %d answers, %d of the common ones differ%s" % (
        len(a), len(b), len(differ), (" (first: answer %d: %r vs %r)" % (differ[0] + 1, a[differ[0]], b[differ[0]]))
        if differ else " (the bytes differ, the answers do not)"))
    return 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    sys.exit(main(sys.argv))
