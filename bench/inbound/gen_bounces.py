#!/usr/bin/env python3
"""Writes one bounce or complaint for each message tidings put in its
outbox, as the morning after a large send brings them: 70 % hard bounces
(RFC 3464 reports, some in Gmail's and Exim's plain-text shapes), 20 % soft
ones (mailbox full, delayed), 10 % ARF complaints. Each goes to the VERP
address of the message it answers.

Usage: gen_bounces.py OUTBOX_DIR BOUNCE_DIR
Writes BOUNCE_DIR/NNNNN.eml and BOUNCE_DIR/manifest.tsv ("rcpt<TAB>file").
"""
import os
import sys


def headers(path):
    found = {}
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                break
            if ":" in line and not line[0].isspace():
                name, value = line.split(":", 1)
                found.setdefault(name.strip().lower(), value.strip())
    return found


def dsn(verp, rcpt, mid, action, status, diagnostic, i):
    return f"""Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.reader.example>
To: {verp}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 07 Dec 2026 06:{i // 60 % 60:02d}:{i % 60:02d} +0000
Message-ID: <bounce-{i}@mx.reader.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b{i}"

--b{i}
Content-Type: text/plain

This is the mail system at host mx.reader.example.
I'm sorry to have to inform you that your message could not be delivered.

--b{i}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.reader.example
Arrival-Date: Mon, 07 Dec 2026 06:00:00 +0000

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822; {rcpt}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--b{i}
Content-Type: text/rfc822-headers

Return-Path: <{verp}>
To: {rcpt}
Message-ID: {mid}
Subject: Weekly Bench

--b{i}--
"""


def gmail(verp, rcpt, mid, i):
    return f"""Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {verp}
Subject: Delivery Status Notification (Failure)
Date: Mon, 07 Dec 2026 06:00:{i % 60:02d} +0000
Message-ID: <gmail-{i}@mail.gmail.example>
Content-Type: text/plain; charset=UTF-8

** Address not found **

Your message wasn't delivered to {rcpt} because the address couldn't be found, or is unable to receive mail.

The response from the remote server was:
550 5.1.1 The email account that you tried to reach does not exist.

----- Original message -----
Return-Path: <{verp}>
Message-ID: {mid}
"""


def arf(verp, rcpt, mid, i):
    return f"""From: Feedback Loop <fbl@isp.example>
To: {verp}
Subject: Abuse report
Date: Mon, 07 Dec 2026 06:00:{i % 60:02d} +0000
Message-ID: <arf-{i}@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="a{i}"

--a{i}
Content-Type: text/plain

This is an email abuse report.

--a{i}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <{verp}>
Original-Rcpt-To: <{rcpt}>

--a{i}
Content-Type: text/rfc822-headers

Return-Path: <{verp}>
From: Bench <bench@example.com>
To: {rcpt}
Message-ID: {mid}

--a{i}--
"""


def main():
    outbox, target = sys.argv[1], sys.argv[2]
    os.makedirs(target, exist_ok=True)
    files = sorted(f for f in os.listdir(outbox) if f.endswith(".eml"))
    manifest = []
    for i, name in enumerate(files):
        h = headers(os.path.join(outbox, name))
        verp = h["return-path"].strip("<>")
        rcpt, mid = h["to"].split("<")[-1].strip(">"), h.get("message-id", "<none>")
        shape = i % 10
        if shape < 5:
            text = dsn(verp, rcpt, mid, "failed", "5.1.1", "550 5.1.1 user unknown", i)
        elif shape == 5:
            text = gmail(verp, rcpt, mid, i)
        elif shape == 6:
            text = dsn(verp, rcpt, mid, "failed", "5.7.1", "554 5.7.1 rejected by policy", i)
        elif shape == 7:
            text = dsn(verp, rcpt, mid, "failed", "4.2.2", "452 4.2.2 mailbox full", i)
        elif shape == 8:
            text = dsn(verp, rcpt, mid, "delayed", "4.4.1", "421 4.4.1 connection timed out", i)
        else:
            text = arf(verp, rcpt, mid, i)
        out = f"{i:05d}.eml"
        with open(os.path.join(target, out), "w", newline="\r\n") as f:
            f.write(text)
        manifest.append(f"{verp}\t{out}")
    with open(os.path.join(target, "manifest.tsv"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
