#!/usr/bin/env python3
"""Parses every feed file in DIR with Python's feedparser (the parser
rss2email uses) and prints the number of entries: the peer for tidings'
collect from local files in bench/collect/run.

Usage: feedparser_peer.py DIR
"""
import os
import sys

import feedparser


def main():
    directory = sys.argv[1]
    entries = 0
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            parsed = feedparser.parse(f.read())
        entries += len(parsed.entries)
    print(entries)


if __name__ == "__main__":
    main()
