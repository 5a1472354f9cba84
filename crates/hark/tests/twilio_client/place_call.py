#!/usr/bin/env python3
"""The official Twilio helper library places a call (`client.calls.create`), as Twilio documents
it, against Hark over HTTPS (the test's self-signed certificate is the CA bundle). Optionally
hangs it up later (`calls(sid).update(status=...)`) and fetches it.

Usage: place_call.py --base-url URL --account-sid AC --auth-token T --ca-bundle PEM --to TO
                     --from FROM (--url URL | --twiml XML) [--timeout S] [--status-callback URL]
                     [--hangup-after S --hangup-status completed|canceled]
Prints a JSON report: {"created": {...}, "updated": {...}?}.
"""

import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    for name in ("base-url", "account-sid", "auth-token", "ca-bundle", "to", "from"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--url")
    ap.add_argument("--twiml")
    ap.add_argument("--timeout", type=int)
    ap.add_argument("--status-callback")
    ap.add_argument("--hangup-after", type=float)
    ap.add_argument("--hangup-status", default="completed")
    a = ap.parse_args()
    # requests (under the helper) trusts this bundle for every HTTPS request.
    os.environ["REQUESTS_CA_BUNDLE"] = a.ca_bundle
    from twilio.rest import Client

    c = Client(a.account_sid, a.auth_token, a.account_sid)
    c.api.base_url = a.base_url
    kwargs = {"to": a.to, "from_": getattr(a, "from")}
    if a.url:
        kwargs["url"] = a.url
    if a.twiml:
        kwargs["twiml"] = a.twiml
    if a.timeout:
        kwargs["timeout"] = a.timeout
    if a.status_callback:
        kwargs["status_callback"] = a.status_callback
        kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
    call = c.calls.create(**kwargs)
    report = {"created": {"sid": call.sid, "status": call.status, "direction": call.direction,
                          "to": call.to, "from": call._from}}
    if a.hangup_after is not None:
        time.sleep(a.hangup_after)
        updated = c.calls(call.sid).update(status=a.hangup_status)
        report["updated"] = {"sid": updated.sid, "status": updated.status}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
