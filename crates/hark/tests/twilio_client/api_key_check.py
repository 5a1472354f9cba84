#!/usr/bin/env python3
"""The official Twilio helper library authenticating with an API key, as Twilio documents it:
`Client(api_key_sid, api_key_secret, account_sid)`. Lists and fetches the recording and call the
Rust test made, downloads the media, and reports what a wrong secret and the bare key get.

Usage: api_key_check.py --base-url URL --account-sid AC --key-sid SK --key-secret S
                        --recording RE --call CA
Prints a JSON report; exit 0 when every check passed.
"""

import argparse
import json

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def client(a, username, password):
    c = Client(username, password, a.account_sid)
    c.api.base_url = a.base_url
    return c


def refused(c, recording):
    try:
        c.recordings(recording).fetch()
    except TwilioRestException as e:
        return {"status": e.status, "code": e.code}
    return "accepted"


def main():
    ap = argparse.ArgumentParser()
    for name in ("base-url", "account-sid", "key-sid", "key-secret", "recording", "call"):
        ap.add_argument(f"--{name}", required=True)
    a = ap.parse_args()

    c = client(a, a.key_sid, a.key_secret)
    check(c.account_sid == a.account_sid, f"client account {c.account_sid}")
    recs = c.recordings.list()
    check([r.sid for r in recs] == [a.recording], f"recordings.list(): {[r.sid for r in recs]}")
    r = c.recordings(a.recording).fetch()
    check(r.account_sid == a.account_sid and r.call_sid == a.call, f"recording {r.sid}: {r.account_sid} {r.call_sid}")
    calls = c.calls.list()
    check([x.sid for x in calls] == [a.call], f"calls.list(): {[x.sid for x in calls]}")
    check(c.calls(a.call).fetch().status == "completed", "call status")
    # Media with the key's credentials, as the helper's users download it.
    media = requests.get(r.media_url + ".wav", auth=(a.key_sid, a.key_secret), timeout=15)
    check(media.status_code == 200 and media.content[:4] == b"RIFF", f"media: {media.status_code}")

    report = {
        "recordings": [x.sid for x in recs],
        "calls": [x.sid for x in calls],
        "media_bytes": len(media.content),
        "wrong_secret": refused(client(a, a.key_sid, a.key_secret + "x"), a.recording),
        "secret_as_auth_token": refused(client(a, a.account_sid, a.key_secret), a.recording),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
