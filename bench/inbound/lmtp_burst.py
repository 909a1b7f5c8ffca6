#!/usr/bin/env python3
"""Hands every bounce in BOUNCE_DIR to the LMTP server at HOST:PORT over
CONNECTIONS parallel sessions, as a relay delivering a backlog does, and
prints "accepted refused seconds" (the time from the first connection to
the last reply).

Usage: lmtp_burst.py HOST PORT BOUNCE_DIR CONNECTIONS
"""
import os
import smtplib
import sys
import threading
import time


def main():
    host, port, folder, connections = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    jobs = []
    with open(os.path.join(folder, "manifest.tsv")) as f:
        for line in f:
            if line.strip():
                rcpt, name = line.rstrip("\n").split("\t")
                with open(os.path.join(folder, name), "rb") as m:
                    jobs.append((rcpt, m.read()))
    counts = {"accepted": 0, "refused": 0}
    lock = threading.Lock()

    def worker(share):
        lmtp = smtplib.LMTP(host, port, timeout=60)
        lmtp.ehlo_or_helo_if_needed()
        for rcpt, data in share:
            try:
                refused = lmtp.sendmail("", [rcpt], data)
                ok = not refused
            except smtplib.SMTPException:
                ok = False
                lmtp.rset()
            with lock:
                counts["accepted" if ok else "refused"] += 1
        lmtp.quit()

    threads = [threading.Thread(target=worker, args=(jobs[k::connections],)) for k in range(connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(counts["accepted"], counts["refused"], f"{time.monotonic() - start:.3f}")


if __name__ == "__main__":
    main()
