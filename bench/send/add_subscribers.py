#!/usr/bin/env python3
"""Inserts N active subscribers of the edition "weekly" straight into a
tidings database (benchmark setup only; the CLI's import is per row).

Usage: add_subscribers.py sqlite|postgres URL N
"""
import datetime
import subprocess
import sys


def main():
    kind, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    if kind == "sqlite":
        import sqlite3
        db = sqlite3.connect(url[len("sqlite://"):])
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO subscribers (id, email, name, status, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?)",
            ((i + 1, f"reader{i}@example.com", f"Reader {i}", now, now) for i in range(n)),
        )
        db.executemany("INSERT INTO subscriptions (subscriber_id, edition) VALUES (?, 'weekly')", ((i + 1,) for i in range(n)))
        db.commit()
    else:
        sql = (
            "BEGIN;"
            f"INSERT INTO subscribers (email, name, status, created_at, updated_at) "
            f"SELECT 'reader' || g || '@example.com', 'Reader ' || g, 'active', now(), now() FROM generate_series(0, {n - 1}) g;"
            "INSERT INTO subscriptions (subscriber_id, edition) SELECT id, 'weekly' FROM subscribers;"
            "COMMIT;"
        )
        subprocess.run(["psql", url, "-qc", sql], check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
