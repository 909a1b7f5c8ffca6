#!/usr/bin/env python3
"""The peer: flufl.bounce (the bounce detector GNU Mailman uses) over the
same bounces, parsing each file and scanning it for the bounced address(es)
— detection only, nothing stored. Prints "scanned found seconds".

Usage: peer.py BOUNCE_DIR
"""
import email
import os
import sys
import time

from flufl.bounce import all_failures


def main():
    folder = sys.argv[1]
    names = sorted(n for n in os.listdir(folder) if n.endswith(".eml"))
    found = 0
    start = time.monotonic()
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            message = email.message_from_binary_file(f)
        permanent, temporary = all_failures(message)
        if permanent or temporary:
            found += 1
    print(len(names), found, f"{time.monotonic() - start:.3f}")


if __name__ == "__main__":
    main()
