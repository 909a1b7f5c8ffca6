#!/usr/bin/env python3
"""Writes N RSS 2.0 feeds of M items each for the collect benchmark.

Usage: gen_feeds.py OUT_DIR N M
Every item has a guid, a link, a date in the last week, two categories and
a ~600-byte HTML description, about what a news site publishes. BROKEN
percent of the feeds (env, default 10) are not well-formed, as real ones
often are: a bare "&" in a title and in a link's query, an HTML entity.
"""
import datetime
import os
import random
import sys

TOPICS = ("cloud security breach ransomware model training inference policy vendor "
          "patch kernel network storage cluster latency budget release audit compliance "
          "open source regulation privacy identity token zero-day supply chain").split()


def vocabulary(rng, n):
    """Pseudo-words, so titles have a news-like spread of vocabulary."""
    syllables = "ka lo mi ten ra vu sel dor pin ex tra gon bel ul fa zen qua ris mo dak".split()
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


WORDS = TOPICS + vocabulary(random.Random(7), 5000)


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def main():
    out, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    rng = random.Random(42)
    now = datetime.datetime.now(datetime.timezone.utc)
    broken_every = 100 // int(os.environ.get("BROKEN", "10")) if int(os.environ.get("BROKEN", "10")) > 0 else 0
    for f in range(n):
        broken = broken_every > 0 and f % broken_every == 0
        items = []
        for i in range(m):
            when = now - datetime.timedelta(minutes=rng.randint(0, 7 * 24 * 60))
            desc = " ".join(sentence(rng, 12) for _ in range(6))
            title, query = sentence(rng, 8), "utm_source=rss"
            if broken and i == 0:
                title, query = f"Q&A&nbsp;{title}", "utm_source=rss&id=1"
            items.append(
                f"<item><title>{title} ({f}-{i})</title>"
                f"<link>https://feed{f}.example.com/story/{i}?{query}</link>"
                f"<guid isPermaLink=\"false\">feed{f}-item{i}</guid>"
                f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
                f"<category>{rng.choice(TOPICS)}</category><category>{rng.choice(TOPICS)}</category>"
                f"<description><![CDATA[<p>{desc}</p>]]></description></item>"
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>Feed {f}</title><link>https://feed{f}.example.com/</link>"
            f"<description>Benchmark feed {f}</description>{''.join(items)}</channel></rss>\n"
        )
        with open(os.path.join(out, f"feed{f}.xml"), "w", encoding="utf-8") as fh:
            fh.write(body)


if __name__ == "__main__":
    main()
