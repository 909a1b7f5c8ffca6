#!/usr/bin/env python3
"""Counts what the drill sink accepted against who should have received the
issue: subscribers reader0..reader{N-1}@example.com, less those the sink
refuses permanently.

Prints one line of key=value counts: expected, delivered (distinct
recipients), lost (expected but never accepted), duplicated (accepted
messages beyond the first per recipient), suppressed (refused with 550),
greylisted (answered 450 once), dropped (connections cut mid-DATA).

Usage: count.py SINK_LOG N
"""
import collections
import sys


def main():
    log, n = sys.argv[1], int(sys.argv[2])
    accepted = collections.Counter()
    permfail, tempfail, dropped = set(), set(), 0
    with open(log) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "PERMFAIL":
                permfail.add(parts[1])
            elif parts[0] == "TEMPFAIL":
                tempfail.add(parts[1])
            elif parts[0] == "DROPPED":
                dropped += 1
            elif parts[0] == "PEAK":
                # The sink's count of connections open at once, not a recipient.
                continue
            else:
                accepted[parts[0]] += 1
    everyone = {f"reader{i}@example.com" for i in range(n)}
    expected = everyone - permfail
    lost = len(expected - set(accepted))
    duplicated = sum(c - 1 for c in accepted.values() if c > 1)
    strangers = len(set(accepted) - everyone) + len(set(accepted) & permfail)
    print(
        f"expected={len(expected)} delivered={len(set(accepted) & expected)} lost={lost} "
        f"duplicated={duplicated} suppressed={len(permfail)} greylisted={len(tempfail)} "
        f"dropped={dropped} unexpected={strangers}"
    )


if __name__ == "__main__":
    main()
