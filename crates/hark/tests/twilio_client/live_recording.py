#!/usr/bin/env python3
"""The official Twilio helper library records a live call (Call Recordings resource) against
Hark: starts a recording, pauses it with the given PauseBehavior, resumes it through
`Twilio.CURRENT`, stops it, and fetches it. Prints a JSON report with each answer's status and
when (seconds since start) it came.

Usage: live_recording.py --base-url URL --account-sid AC --auth-token T --call CA
                         --pause-behavior skip|silence [--callback URL]
"""

import argparse
import json
import time

from twilio.rest import Client


def main():
    ap = argparse.ArgumentParser()
    for name in ("base-url", "account-sid", "auth-token", "call", "pause-behavior"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--callback")
    a = ap.parse_args()
    c = Client(a.account_sid, a.auth_token, a.account_sid)
    c.api.base_url = a.base_url
    t0 = time.monotonic()
    steps = []

    def step(name, rec):
        steps.append({"step": name, "sid": rec.sid, "status": rec.status,
                      "channels": rec.channels, "source": rec.source,
                      "at": round(time.monotonic() - t0, 3)})

    kwargs = {"recording_channels": "dual"}
    if a.callback:
        kwargs["recording_status_callback"] = a.callback
        kwargs["recording_status_callback_event"] = ["in-progress", "completed"]
    rec = c.calls(a.call).recordings.create(**kwargs)
    step("start", rec)
    time.sleep(1.5)
    step("pause", c.calls(a.call).recordings(rec.sid).update(
        status="paused", pause_behavior=a.pause_behavior))
    time.sleep(2.0)
    step("resume", c.calls(a.call).recordings("Twilio.CURRENT").update(status="in-progress"))
    time.sleep(1.5)
    step("stop", c.calls(a.call).recordings(rec.sid).update(status="stopped"))
    time.sleep(1.0)
    fetched = c.recordings(rec.sid).fetch()
    report = {"steps": steps, "final": {"status": fetched.status, "duration": fetched.duration,
                                        "channels": fetched.channels}}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
