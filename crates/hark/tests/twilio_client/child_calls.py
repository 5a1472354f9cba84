#!/usr/bin/env python3
"""The official Twilio helper library lists a call's child calls (`calls.list(parent_call_sid=)`,
what a `<Dial>` placed) and fetches the parent, against Hark. Prints a JSON report.

Usage: child_calls.py --base-url URL --account-sid AC --auth-token T --parent CA
"""

import argparse
import json

from twilio.rest import Client


def main():
    ap = argparse.ArgumentParser()
    for name in ("base-url", "account-sid", "auth-token", "parent"):
        ap.add_argument(f"--{name}", required=True)
    a = ap.parse_args()
    c = Client(a.account_sid, a.auth_token, a.account_sid)
    c.api.base_url = a.base_url
    children = c.calls.list(parent_call_sid=a.parent)
    parent = c.calls(a.parent).fetch()
    report = {
        "parent": {"sid": parent.sid, "status": parent.status,
                   "parent_call_sid": parent.parent_call_sid},
        "children": [
            {"sid": x.sid, "parent_call_sid": x.parent_call_sid, "direction": x.direction,
             "status": x.status, "to": x.to, "from": x._from, "duration": x.duration,
             "start_time": str(x.start_time), "end_time": str(x.end_time)}
            for x in children
        ],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
