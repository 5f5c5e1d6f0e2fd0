"""Re-verify a `lockbox audit export` offline, with Python's standard library only.

    python3 verify_export.py EXPORT.jsonl            # or EXPORT.csv
    LOCKBOX_AUDIT_KEY=... python3 verify_export.py EXPORT.jsonl   # a keyed chain

Each event's hash must be sha256(prevHash + canonical JSON of the hashed
fields) (HMAC-SHA256 under the audit key when the chain is keyed), and each
event must link to the one before it in the same tenant's chain. Exit 0 when
every event verifies, 1 naming the first that does not, 2 on unreadable input.
"""

import csv
import hashlib
import hmac
import json
import os
import sys

HASHED = ("tenantId", "seq", "at", "action", "actorId", "requestId", "detail")


def canonical(value):
    """Sorted keys, `,` and `:` separators, no ASCII escaping (UTF-8 when encoded)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(prev_hash, body, key):
    message = ((prev_hash or "") + canonical(body)).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def events(path):
    """Each exported event as a dict, JSON lines or CSV (by the first line)."""
    with open(path, encoding="utf-8", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if first.startswith("{") or not first:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
            return
        for row in csv.DictReader(handle):
            # CSV writes null as an empty cell, seq as text and detail as JSON.
            event = {name: (value if value != "" else None) for name, value in row.items()}
            event["seq"] = int(event["seq"])
            event["detail"] = json.loads(row["detail"])
            yield event


def verify(path, key):
    """(number of events, None) or (position, reason) for the first bad one."""
    last = {}  # tenant id -> (seq, hash) of its previous event in the export
    count = 0
    for count, event in enumerate(events(path), start=1):
        body = {name: event[name] for name in HASHED}
        where = f"event {event['id']} (tenant {event['tenantId']}, #{event['seq']})"
        if link(event["prevHash"], body, key) != event["hash"]:
            return count, where + ": hash does not match its content"
        previous = last.get(event["tenantId"])
        if previous is None:
            if event["seq"] == 1 and event["prevHash"] is not None:
                return count, where + ": the first event of a chain has a prevHash"
        elif event["seq"] != previous[0] + 1:
            return count, where + f": expected #{previous[0] + 1} here (missing or moved)"
        elif event["prevHash"] != previous[1]:
            return count, where + ": prevHash is not the hash of the event before"
        last[event["tenantId"]] = (event["seq"], event["hash"])
    return count, None


def main(argv):
    if len(argv) != 2:
        print("usage: verify_export.py EXPORT.jsonl|EXPORT.csv", file=sys.stderr)
        return 2
    secret = os.environ.get("LOCKBOX_AUDIT_KEY")
    key = secret.encode("utf-8") if secret else None
    try:
        count, problem = verify(argv[1], key)
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot read {argv[1]}: {exc}", file=sys.stderr)
        return 2
    if problem is not None:
        print(f"BROKEN  line {count}: {problem}")
        return 1
    print(f"ok      {count} events verify")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
