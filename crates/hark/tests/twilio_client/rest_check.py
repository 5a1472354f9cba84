#!/usr/bin/env python3
"""Drives Hark's REST API with the official Twilio helper library, unchanged, the way a user
would: `client.api.base_url` points it at Hark (SPEC §6.6). Checks what the helper sees and
writes a JSON report (downloaded media paths, the requests the helper made) for the Rust test.

Usage: rest_check.py --base-url URL --account-sid AC --auth-token T --expect FILE --out DIR
`--expect` is JSON: {"recordings": {RE: CA, ...}, "calls": [CA, ...]}. Exit 0 when every check
passed; otherwise a traceback on stderr naming the failed check.
"""

import argparse
import datetime
import json
import os
import sys

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.base.page import Page
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


class LoggingHttpClient(TwilioHttpClient):
    """The library's own HTTP client, remembering every request it makes."""

    def __init__(self):
        super().__init__(timeout=15)
        self.log = []

    def request(self, method, url, params=None, data=None, headers=None, auth=None, **kw):
        self.log.append({"method": method, "url": url, "params": dict(params or {})})
        return super().request(method, url, params=params, data=data, headers=headers, auth=auth, **kw)


def is_utc_datetime(v):
    return isinstance(v, datetime.datetime) and v.utcoffset() == datetime.timedelta(0)


def recent(v, now):
    return abs((now - v).total_seconds()) < 600


def envelope_checks(session, base, path, key, page_size, expect_total):
    """Walks a list with raw HTTP: exactly one collection key, path-relative page URIs."""
    uri = f"{path}?PageSize={page_size}"
    pages, items = [], []
    while uri is not None:
        check(uri.startswith("/2010-04-01/"), f"page URI is path-relative: {uri}")
        r = session.get(base + uri, timeout=15)
        check(r.status_code == 200, f"GET {uri}: {r.status_code} {r.text}")
        check(r.headers.get("Content-Type", "").startswith("application/json"), f"{uri}: content type")
        body = r.json()
        others = set(body) - set(Page.META_KEYS)
        check(others == {key}, f"{uri}: non-metadata keys {sorted(others)}, want exactly [{key!r}]")
        for k in ("first_page_uri", "previous_page_uri", "next_page_uri", "uri"):
            v = body.get(k)
            check(v is None or (isinstance(v, str) and v.startswith("/2010-04-01/")), f"{uri}: {k}={v!r}")
        check(body["first_page_uri"] is not None and body["uri"] is not None, f"{uri}: first/uri")
        check(body["page"] == len(pages), f"{uri}: page {body['page']}, want {len(pages)}")
        check(body["page_size"] == page_size, f"{uri}: page_size {body['page_size']}")
        check(len(body[key]) <= page_size, f"{uri}: {len(body[key])} items > page size")
        check(body["start"] == len(items), f"{uri}: start {body['start']}, want {len(items)}")
        if len(pages) == 0:
            check(body["previous_page_uri"] is None, "page 0 has no previous page")
        else:
            check(body["previous_page_uri"] is not None, f"{uri}: previous_page_uri")
        items.extend(body[key])
        pages.append(sorted(body.keys()))
        uri = body["next_page_uri"]
        check(len(pages) <= expect_total + 1, f"{path}: more pages than items")
    check(len(items) == expect_total, f"{path}: {len(items)} items over {len(pages)} pages, want {expect_total}")
    return {"pages": len(pages), "keys": pages[0], "sids": [i["sid"] for i in items]}


def download(session, url, dest):
    with session.get(url, stream=True, timeout=30) as r:
        status, ctype = r.status_code, r.headers.get("Content-Type", "")
        length = r.headers.get("Content-Length")
        with open(dest, "wb") as f:
            for chunk in r.iter_content(64 * 1024):
                f.write(chunk)
    size = os.path.getsize(dest)
    return {"status": status, "content_type": ctype, "content_length": length, "size": size, "path": dest}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--account-sid", required=True)
    ap.add_argument("--auth-token", required=True)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    expect = json.load(open(a.expect))
    want_recs = expect["recordings"]  # RE -> CA
    want_calls = set(expect["calls"])
    report = {}
    now = datetime.datetime.now(datetime.timezone.utc)

    http = LoggingHttpClient()
    client = Client(a.account_sid, a.auth_token, http_client=http)
    client.api.base_url = a.base_url

    # 1. List page by page; the helper follows next_page_uri by itself.
    recs = client.recordings.list(page_size=1)
    list_reqs = [r for r in http.log if r["url"].split("?")[0].endswith("/Recordings.json")]
    report["list_requests"] = list_reqs
    check(len(recs) == len(want_recs), f"list(page_size=1) gave {len(recs)} recordings, want {len(want_recs)}")
    check({r.sid for r in recs} == set(want_recs), f"listed {[r.sid for r in recs]}, want {sorted(want_recs)}")
    check(len(list_reqs) == len(want_recs), f"{len(list_reqs)} list requests for {len(want_recs)} one-item pages")
    created = [r.date_created for r in recs]
    check(all(is_utc_datetime(c) for c in created), f"date_created parsed: {created}")
    check(created == sorted(created, reverse=True), f"newest first: {created}")
    report["listed"] = [r.sid for r in recs]

    # 2. Fetch each.
    fetched = {}
    for sid, call_sid in want_recs.items():
        r = client.recordings(sid).fetch()
        check(r.sid == sid and r.account_sid == a.account_sid, f"{sid}: sid/account")
        check(r.call_sid == call_sid, f"{sid}: call_sid {r.call_sid}, want {call_sid}")
        check(r.status == "completed", f"{sid}: status {r.status}")
        check(isinstance(r.duration, str) and r.duration.isdigit() and int(r.duration) >= 1, f"{sid}: duration {r.duration!r}")
        check(r.channels == 1, f"{sid}: channels {r.channels!r}")
        check(r.source == "RecordVerb", f"{sid}: source {r.source!r}")
        check(r.api_version == "2010-04-01", f"{sid}: api_version")
        check(r.conference_sid is None and r.price is None and r.price_unit == "USD", f"{sid}: conference/price")
        check(r.error_code is None, f"{sid}: error_code {r.error_code!r}")
        for name in ("date_created", "date_updated", "start_time"):
            v = getattr(r, name)
            check(is_utc_datetime(v) and recent(v, now), f"{sid}: {name} {v!r} is a recent UTC datetime")
        check(r.start_time <= r.date_updated, f"{sid}: start_time after date_updated")
        check(r.uri == f"/2010-04-01/Accounts/{a.account_sid}/Recordings/{sid}.json", f"{sid}: uri {r.uri}")
        check(r.media_url == f"{a.base_url}/2010-04-01/Accounts/{a.account_sid}/Recordings/{sid}", f"{sid}: media_url {r.media_url}")
        check(r.encryption_details is None, f"{sid}: encryption_details")
        check(set(r.subresource_uris) >= {"transcriptions", "add_on_results"}, f"{sid}: subresource_uris")
        fetched[sid] = {"duration": r.duration, "media_url": r.media_url}
    report["fetched"] = fetched

    # The call's own recordings list and instance, through the Calls subresource.
    for sid, call_sid in want_recs.items():
        sub = client.calls(call_sid).recordings.list()
        check([x.sid for x in sub] == [sid], f"Calls/{call_sid}/Recordings: {[x.sid for x in sub]}")
        check(client.calls(call_sid).recordings(sid).fetch().sid == sid, "Calls/{CA}/Recordings/{RE} fetch")

    # 3. Media with the account's credentials.
    s = requests.Session()
    s.auth = (a.account_sid, a.auth_token)
    downloads = {}
    for sid in want_recs:
        base = fetched[sid]["media_url"]
        d = {
            "plain": download(s, base, os.path.join(a.out, f"{sid}.plain.wav")),
            "wav": download(s, base + ".wav", os.path.join(a.out, f"{sid}.wav")),
            "mp3": download(s, base + ".mp3", os.path.join(a.out, f"{sid}.mp3")),
        }
        for kind, want in (("plain", "audio/x-wav"), ("wav", "audio/x-wav"), ("mp3", "audio/mpeg")):
            x = d[kind]
            check(x["status"] == 200, f"{sid} {kind}: status {x['status']}")
            check(x["content_type"] == want, f"{sid} {kind}: content type {x['content_type']}")
            check(x["content_length"] == str(x["size"]), f"{sid} {kind}: Content-Length {x['content_length']} vs {x['size']} bytes")
        head = open(d["wav"]["path"], "rb").read(12)
        check(head[:4] == b"RIFF" and head[8:12] == b"WAVE", f"{sid}.wav starts {head!r}")
        mp3 = open(d["mp3"]["path"], "rb").read(4)
        sync = len(mp3) == 4 and mp3[0] == 0xFF and (mp3[1] & 0xE0) == 0xE0
        check(sync or mp3[:3] == b"ID3", f"{sid}.mp3 starts {mp3!r}: no frame sync or ID3")
        # Range: the RIFF header alone.
        r = s.get(base + ".wav", headers={"Range": "bytes=0-43"}, timeout=15)
        check(r.status_code == 206, f"{sid}: Range status {r.status_code}")
        check(r.content == open(d["wav"]["path"], "rb").read(44), f"{sid}: Range bytes")
        check(r.headers.get("Content-Range") == f"bytes 0-43/{d['wav']['size']}", f"{sid}: Content-Range {r.headers.get('Content-Range')}")
        downloads[sid] = d
    report["downloads"] = downloads

    # 4. Calls.
    calls = client.calls.list()
    check({c.sid for c in calls} == want_calls, f"calls.list(): {[c.sid for c in calls]}")
    call_report = {}
    for ca in want_calls:
        c = client.calls(ca).fetch()
        check(c.sid == ca and c.account_sid == a.account_sid, f"{ca}: sid/account")
        check(c.status == "completed", f"{ca}: status {c.status}")
        check(c.direction == "inbound", f"{ca}: direction {c.direction}")
        check(bool(c._from) and bool(c.to), f"{ca}: from {c._from!r} to {c.to!r}")
        check(isinstance(c.duration, str) and c.duration.isdigit() and int(c.duration) >= 1, f"{ca}: duration {c.duration!r}")
        check(is_utc_datetime(c.start_time) and is_utc_datetime(c.end_time), f"{ca}: start/end {c.start_time!r} {c.end_time!r}")
        check(c.start_time <= c.end_time and recent(c.end_time, now), f"{ca}: start <= end, recent")
        span = (c.end_time - c.start_time).total_seconds()
        check(abs(span - int(c.duration)) <= 1, f"{ca}: duration {c.duration} vs end-start {span}")
        call_report[ca] = {"from": c._from, "to": c.to, "duration": c.duration}
    report["calls"] = call_report

    # 5. Raw envelopes.
    report["recordings_envelope"] = envelope_checks(
        s, a.base_url, f"/2010-04-01/Accounts/{a.account_sid}/Recordings.json", "recordings", 1, len(want_recs))
    check(report["recordings_envelope"]["sids"] == report["listed"], "raw walk and helper list agree on order")
    report["calls_envelope"] = envelope_checks(
        s, a.base_url, f"/2010-04-01/Accounts/{a.account_sid}/Calls.json", "calls", 2, len(want_calls))

    # 6. Delete the newest one.
    victim = report["listed"][0]
    check(client.recordings(victim).delete() is True, f"delete {victim} returned True")
    try:
        client.recordings(victim).fetch()
        check(False, f"fetch of deleted {victim} succeeded")
    except TwilioRestException as e:
        check(e.status == 404, f"fetch deleted: status {e.status}")
        check(e.code == 20404, f"fetch deleted: code {e.code}")
        report["deleted_error"] = {"status": e.status, "code": e.code, "msg": e.msg}
    left = client.recordings.list(page_size=1)
    check(sorted(r.sid for r in left) == sorted(x for x in want_recs if x != victim), f"after delete: {[r.sid for r in left]}")
    gone = {}
    for ext in ("", ".wav", ".mp3"):
        r = s.get(fetched[victim]["media_url"] + ext, timeout=15)
        check(r.status_code == 404, f"deleted media{ext}: {r.status_code}")
        body = r.json()
        check(set(body) == {"code", "message", "more_info", "status"} and body["status"] == 404, f"deleted media{ext}: {body}")
        gone[ext or "none"] = r.status_code
    try:
        client.recordings(victim).delete()
        check(False, "second delete succeeded")
    except TwilioRestException as e:
        check(e.status == 404, f"second delete: {e.status}")
    report["deleted"] = victim
    report["deleted_media"] = gone

    json.dump(report, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
