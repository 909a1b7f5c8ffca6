#!/usr/bin/env python3
"""Hostile clients and messages for the inbound listener (the hostile-mail
drill). Each scenario talks SMTP to HOST:PORT and checks the listener's
answer; one line per scenario ("name: ok|FAIL: what happened"), then the
legitimate bounce for GOOD_VERP, which must still be taken. Exit 1 if any
scenario failed.

Usage: hostile_mail.py HOST PORT GOOD_VERP FORGED_VERP VICTIM UNSUBSCRIBE MAX_BYTES TIMEOUT_S
"""
import os
import random
import socket
import sys
import threading
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])
GOOD, FORGED, VICTIM, UNSUB = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
MAX_BYTES, TIMEOUT = int(sys.argv[7]), float(sys.argv[8])
failures = 0


class Session:
    def __init__(self):
        self.sock = socket.create_connection((HOST, PORT), timeout=TIMEOUT + 10)
        self.buf = b""
        self.greeting = self.reply()

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def reply(self):
        while True:
            line = self.line()
            if len(line) < 4 or line[3] != "-":
                return line

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()

    def send_message(self, rcpt, data):
        for c in ("EHLO drill.example", "MAIL FROM:<>", f"RCPT TO:<{rcpt}>"):
            r = self.cmd(c)
            if not r.startswith("2"):
                return r
        r = self.cmd("DATA")
        if not r.startswith("354"):
            return r
        body = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in data.split(b"\r\n"))
        self.sock.sendall(body + b"\r\n.\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def check(name, ok, detail):
    global failures
    if not ok:
        failures += 1
    print(f"{name}: {'ok' if ok else 'FAIL'}: {detail}", flush=True)


def message(name, rcpt, data, expect=("250", "5")):
    try:
        s = Session()
        r = s.send_message(rcpt, data)
        s.cmd("QUIT")
        s.close()
    except (OSError, ConnectionError) as e:
        r = f"connection: {e}"
    check(name, r.startswith(expect), r[:120])


def dsn(verp, rcpt, diagnostic="550 5.1.1 user unknown", groups=1):
    per_rcpt = "".join(
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        for _ in range(groups))
    return (f"From: MAILER-DAEMON@mx.reader.example\r\nTo: {verp}\r\nSubject: Undelivered Mail\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            f"--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n\r\n"
            f"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.reader.example\r\n\r\n"
            f"{per_rcpt}--B--\r\n").encode("utf-8", "surrogateescape")


rng = random.Random(21)

# Messages that reach the processor: each must be answered (250: kept and
# recorded as not understood or not ours; or a 5xx) and change nobody.
nested = "Content-Type: multipart/mixed; boundary=\"n0\"\r\n\r\n"
for i in range(1, 2000):
    nested += f"--n{i - 1}\r\nContent-Type: multipart/mixed; boundary=\"n{i}\"\r\n\r\n"
message("nested-2000-multiparts", FORGED, ("From: x@y.example\r\nSubject: deep\r\n" + nested).encode())
message("20000-header-fields", FORGED,
        ("".join(f"X-Junk-{i}: {'v' * 20}\r\n" for i in range(20000)) + "\r\nbody\r\n").encode())
message("binary-junk", FORGED, bytes(rng.randrange(256) for _ in range(400_000)).replace(b"\r\n.\r\n", b"\r\n..\r\n"))
message("dsn-10000-recipients", FORGED, dsn(FORGED, "someone@reader.example", groups=10000))
message("10000-forged-verp-tokens", UNSUB,
        ("Subject: unsubscribe\r\n\r\n" + " ".join(
            f"{FORGED.split('+')[0]}+{i}-{rng.getrandbits(96):024x}@{FORGED.split('@')[1]}" for i in range(10000))
         + "\r\n").encode())
message("forged-token-hard-bounce", FORGED, dsn(FORGED, VICTIM))
message("control-characters-in-diagnostic", FORGED,
        dsn(FORGED, VICTIM, diagnostic="550 \x1b[31mred\x07\x00 =?utf-8?b?4oCuZXZpbA==?= \u202e"))
message("base64-bomb", FORGED,
        (b"Subject: b64\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         + b"QUFB" * 200_000 + b"\r\n"))
message("one-900k-line", FORGED, b"Subject: long\r\n\r\n" + b"x" * 900_000 + b"\r\n")
message("not-a-message", UNSUB, b"\x00\x01\x02 not mail at all\r\n")

# Refused at the door.
message("oversize", FORGED, b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * (MAX_BYTES // 1000 + 100), expect=("552",))
try:
    s = Session()
    s.cmd("EHLO drill.example")
    s.cmd("MAIL FROM:<>")
    r = s.cmd("RCPT TO:<victim@elsewhere.example>")
    s.close()
except (OSError, ConnectionError) as e:
    r = str(e)
check("relay-attempt", r.startswith("550"), r)
try:
    s = Session()
    s.sock.sendall(b"".join(b"\xff\xfe JUNK %d\r\n" % i for i in range(12)))
    last = ""
    while True:
        try:
            last = s.line()
        except (ConnectionError, OSError):
            break
    s.close()
except (OSError, ConnectionError) as e:
    last = str(e)
check("junk-commands", last.startswith("421"), last)

# Slow: a command trickled byte by byte is cut off within about TIMEOUT.
s = Session()
start = time.monotonic()
stop = threading.Event()


def trickle():
    for b in b"EHLO " + b"s" * 200:
        if stop.is_set():
            return
        try:
            s.sock.sendall(bytes([b]))
        except OSError:
            return
        time.sleep(0.2)


threading.Thread(target=trickle, daemon=True).start()
try:
    r = s.reply()
except (ConnectionError, OSError) as e:
    r = str(e)
stop.set()
took = time.monotonic() - start
s.close()
check("trickle", r.startswith("421") and took < TIMEOUT + 2, f"{r} after {took:.1f} s")

# A crowd: 80 connections at once; those over the limit are told 421.
crowd, told = [], 0
for _ in range(80):
    try:
        c = Session()
        if c.greeting.startswith("421"):
            told += 1
        crowd.append(c)
    except (OSError, ConnectionError):
        told += 1
for c in crowd:
    c.close()
check("crowd-of-80", told > 0, f"{told} told to come back later")
time.sleep(0.5)

# Last, the honest bounce: still taken.
message("legitimate-bounce", GOOD, dsn(GOOD, "reader0@example.com"), expect=("250",))
sys.exit(1 if failures else 0)
