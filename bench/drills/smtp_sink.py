#!/usr/bin/env python3
"""An SMTP server on 127.0.0.1 that accepts mail, records each accepted
message and injects faults, for the fault drills.

Every message it answers 250 to is one line in LOG: "RECIPIENT MESSAGE-ID".
A message counts as delivered exactly when that line is written, so the
drills count lost and duplicated messages from LOG alone.

Faults (all deterministic, so a drill can be rerun and give the same
counts):
  --tempfail PCT  that share of recipients is answered 450 at RCPT the first
                  time it is seen (greylisting), then accepted;
  --permfail PCT  that share is answered 550 at RCPT every time;
  --drop-every N  every Nth DATA is cut off mid-message: the server reads
                  part of it and closes the connection without a reply;
  --auth USER:PASSWORD  requires AUTH PLAIN or LOGIN with those credentials;
  --delay MS      wait that long before each reply after the greeting (a
                  relay far away or busy: a transaction — MAIL, RCPT and the
                  message's end — costs three times MS), --jitter MS more
                  at random;
  --data-delay MS wait that long before the reply to a message's end only
                  (where a real relay spends its time: queueing, scanning),
                  so a transaction costs MS plus three round trips;
                  --jitter adds to it as well;
  --max-per-client N  a client with N connections open is told 421 on the
                  next, as large providers do.

Which recipients are hit is decided by CRC-32 of the address, and written
to LOG too ("TEMPFAIL addr", "PERMFAIL addr", "DROPPED n") so the drill
knows what to expect; "PEAK n" whenever more connections are open at once
than ever before.

Usage: smtp_sink.py PORT LOG [--tempfail 10] [--permfail 2] [--drop-every 100] [--auth u:p]
"""
import argparse
import asyncio
import base64
import random
import zlib


class Sink:
    def __init__(self, args):
        self.args = args
        self.log = open(args.log, "a", buffering=1)
        self.greylisted = set()
        self.data_count = 0
        self.open = {}
        self.peak = 0
        self.rng = random.Random(5)

    def bucket(self, rcpt):
        return zlib.crc32(rcpt.lower().encode()) % 100

    def rcpt_reply(self, rcpt):
        b = self.bucket(rcpt)
        if b < self.args.permfail:
            self.log.write(f"PERMFAIL {rcpt}\n")
            return b"550 5.1.1 no such user here\r\n"
        if b < self.args.permfail + self.args.tempfail and rcpt not in self.greylisted:
            self.greylisted.add(rcpt)
            self.log.write(f"TEMPFAIL {rcpt}\n")
            return b"450 4.2.0 greylisted, try again later\r\n"
        return b"250 2.1.5 ok\r\n"

    async def session(self, reader, writer):
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        if self.args.max_per_client and self.open.get(peer, 0) >= self.args.max_per_client:
            writer.write(b"421 4.7.0 too many connections from you\r\n")
            await writer.drain()
            writer.close()
            return
        self.open[peer] = self.open.get(peer, 0) + 1
        if sum(self.open.values()) > self.peak:
            self.peak = sum(self.open.values())
            self.log.write(f"PEAK {self.peak}\n")
        try:
            await self.conversation(reader, writer)
        finally:
            self.open[peer] -= 1

    async def conversation(self, reader, writer):
        w = writer.write
        authed = self.args.auth is None
        w(b"220 drill-sink ESMTP\r\n")
        rcpts, sender = [], None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                cmd = line.decode("utf-8", "replace").strip()
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    caps = ["250-drill-sink", "250-PIPELINING", "250-8BITMIME", "250-SMTPUTF8"]
                    if self.args.auth:
                        caps.append("250-AUTH PLAIN LOGIN")
                    caps.append("250 SIZE 52428800")
                    w(("\r\n".join(caps) + "\r\n").encode())
                elif verb == "AUTH":
                    parts = cmd.split()
                    mech = parts[1].upper() if len(parts) > 1 else ""
                    if mech == "PLAIN":
                        blob = parts[2] if len(parts) > 2 else None
                        if blob is None:
                            w(b"334 \r\n")
                            await writer.drain()
                            blob = (await reader.readline()).decode().strip()
                        try:
                            _, user, password = base64.b64decode(blob).decode().split("\x00")
                        except Exception:
                            user, password = "", ""
                    elif mech == "LOGIN":
                        w(b"334 VXNlcm5hbWU6\r\n")
                        await writer.drain()
                        user = base64.b64decode((await reader.readline()).strip()).decode()
                        w(b"334 UGFzc3dvcmQ6\r\n")
                        await writer.drain()
                        password = base64.b64decode((await reader.readline()).strip()).decode()
                    else:
                        w(b"504 5.5.4 mechanism not supported\r\n")
                        continue
                    if self.args.auth and f"{user}:{password}" == self.args.auth:
                        authed = True
                        w(b"235 2.7.0 authenticated\r\n")
                    else:
                        w(b"535 5.7.8 authentication credentials invalid\r\n")
                elif verb == "MAIL":
                    if not authed:
                        w(b"530 5.7.0 authentication required\r\n")
                        continue
                    sender, rcpts = cmd, []
                    w(b"250 2.1.0 ok\r\n")
                elif verb == "RCPT":
                    rcpt = cmd.split(":", 1)[1].strip().strip("<>").split(">")[0]
                    reply = self.rcpt_reply(rcpt)
                    if reply.startswith(b"250"):
                        rcpts.append(rcpt)
                    w(reply)
                elif verb == "DATA":
                    if not sender or not rcpts:
                        w(b"554 5.5.1 no valid recipients\r\n")
                        continue
                    w(b"354 go ahead\r\n")
                    await writer.drain()
                    self.data_count += 1
                    if self.args.drop_every and self.data_count % self.args.drop_every == 0:
                        await reader.read(1024)
                        self.log.write(f"DROPPED {self.data_count}\n")
                        writer.transport.abort()
                        return
                    body = await reader.readuntil(b"\r\n.\r\n")
                    mid = "-"
                    head = body[: body.find(b"\r\n\r\n")]
                    for h in head.split(b"\r\n"):
                        if h.lower().startswith(b"message-id:"):
                            mid = h.split(b":", 1)[1].strip().decode()
                            break
                    for r in rcpts:
                        self.log.write(f"{r} {mid}\n")
                    if self.args.data_delay:
                        await asyncio.sleep((self.args.data_delay + self.rng.uniform(0, self.args.jitter)) / 1000)
                    w(b"250 2.0.0 queued\r\n")
                    sender, rcpts = None, []
                elif verb == "RSET":
                    sender, rcpts = None, []
                    w(b"250 2.0.0 ok\r\n")
                elif verb == "NOOP":
                    w(b"250 2.0.0 ok\r\n")
                elif verb == "QUIT":
                    w(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    break
                else:
                    w(b"502 5.5.2 command not recognised\r\n")
                if self.args.delay:
                    await asyncio.sleep((self.args.delay + self.rng.uniform(0, self.args.jitter)) / 1000)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("log")
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--permfail", type=int, default=0)
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--auth")
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--jitter", type=float, default=0)
    p.add_argument("--data-delay", type=float, default=0)
    p.add_argument("--max-per-client", type=int, default=0)
    args = p.parse_args()
    sink = Sink(args)
    server = await asyncio.start_server(sink.session, "127.0.0.1", args.port, limit=64 * 1024 * 1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
