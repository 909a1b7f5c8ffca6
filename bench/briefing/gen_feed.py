"""Writes an RSS feed of N generated security stories published over the
last six days, each a short article with figures (counts, amounts,
percentages, dates) for the grounding check to look for.

usage: gen_feed.py OUT.xml N
"""
import datetime
import random
import sys
from xml.sax.saxutils import escape

out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(20)
orgs = ["Northbay Clinic", "Keller Freight", "Orchard Bank", "Lumen Schools", "Vesta Energy", "Harrow Council",
        "Pike Insurance", "Quill Media", "Tarn Logistics", "Brightwater Utility", "Cobalt Retail", "Fenwick Labs"]
kinds = [("ransomware attack", "encrypted"), ("data breach", "exposed"), ("credential stuffing wave", "hit"),
         ("supply-chain compromise", "reached"), ("zero-day exploit", "affected")]
now = datetime.datetime.now(datetime.timezone.utc)
items = []
for i in range(n):
    org = orgs[i % len(orgs)]
    kind, verb = kinds[(i // len(orgs) + i) % len(kinds)]
    records = rng.randrange(200, 90000)
    share = rng.randrange(5, 80)
    cost = rng.choice(["$1.2 million", "$480,000", "$3.5 million", "$75,000", "$12 million"])
    day = rng.randrange(1, 28)
    when = now - datetime.timedelta(hours=rng.randrange(2, 140))
    title = f"{org} {kind} {verb} {records:,} records"
    text = (
        f"{org} disclosed a {kind} on Monday that {verb} {records:,} customer records. "
        f"The company said {share} percent of its systems were affected and that attackers entered through an "
        f"unpatched remote-access gateway first seen on November {day}. Recovery is expected to cost {cost}. "
        f"Security teams at similar firms were urged to review access logs and enforce a second factor. "
        f"Regulators said they would publish guidance within 30 days."
    )
    items.append(f"""    <item>
      <title>{escape(title)}</title>
      <link>https://bench.example.com/news/{i}</link>
      <guid isPermaLink="false">bench-{i}</guid>
      <pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>
      <description>{escape(text)}</description>
    </item>""")
with open(out, "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>\n'
            '<title>Bench Security Wire</title><link>https://bench.example.com/</link><description>generated</description>\n'
            + "\n".join(items) + "\n</channel></rss>\n")
