"""Writes N article pages for the extraction benchmark, each with the main
text it holds (PAGE.txt, the truth for word-level F1) and boilerplate
around it: navigation, ads, a cookie banner, related links, comments, a
footer, in several layouts. Also writes feed.xml listing every page.
Everything here is generated; nothing is taken from real sites."""
import os
import random
import sys

out, n, base = sys.argv[1], int(sys.argv[2]), sys.argv[3].rstrip("/")
rng = random.Random(42)
WORDS = ("harbour port cranes ransomware operators manifests shipping vessels cargo authority "
         "security researchers gateway patch systems council budget energy prices grid storage "
         "battery wind solar turbine network outage provider customers regulator fine privacy "
         "data breach records hospital clinic patients software update vendor cloud region "
         "latency migration database replica backup restore audit compliance report quarter "
         "revenue growth market shares investors analysts forecast inflation rate bank loan").split()


def sentence(k):
    words = [rng.choice(WORDS) for _ in range(k)]
    return " ".join(words).capitalize() + "."


def paragraph():
    return " ".join(sentence(rng.randint(8, 18)) for _ in range(rng.randint(2, 5)))


def boiler(kind):
    links = "".join(f'<li><a href="/s/{i}">{sentence(4)}</a></li>' for i in range(rng.randint(4, 9)))
    return {
        "nav": f'<nav class="menu"><ul>{links}</ul></nav>',
        "ad": f'<div class="ad advertisement"><a href="https://ads.example/c">{sentence(6)}</a></div>',
        "cookie": f'<div class="cookie-consent">{sentence(10)} <button>Accept</button></div>',
        "related": f'<aside class="related"><h3>Related</h3><ul>{links}</ul></aside>',
        "comments": '<section class="comments">' + "".join(
            f'<div class="comment"><p class="author">user{i}</p><p>{sentence(9)}</p></div>' for i in range(rng.randint(2, 6))
        ) + "</section>",
        "footer": f'<footer><p>{sentence(7)}</p><ul>{links}</ul></footer>',
    }[kind]


os.makedirs(out, exist_ok=True)
items = []
for i in range(n):
    paragraphs = [paragraph() for _ in range(rng.randint(4, 12))]
    title = sentence(7)[:-1]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    layout = i % 3
    if layout == 0:
        main = f'<article><h1>{title}</h1><p class="byline">By Staff</p>{body}</article>'
    elif layout == 1:
        main = f'<div id="content" class="post-body"><h1>{title}</h1>{body}</div>'
    else:
        main = f'<main><div class="entry"><h2>{title}</h2><div class="text">{body}</div></div></main>'
    html = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<script>var x = {i};</script></head><body>"
            + boiler("cookie") + "<header>" + boiler("nav") + boiler("ad") + "</header>"
            + main + boiler("related") + boiler("comments") + boiler("footer") + "</body></html>")
    with open(os.path.join(out, f"p{i}.html"), "w") as f:
        f.write(html)
    with open(os.path.join(out, f"p{i}.txt"), "w") as f:
        f.write("\n\n".join(paragraphs))
    items.append(f"<item><title>{title}</title><link>{base}/p{i}.html</link><guid>p{i}</guid></item>")
with open(os.path.join(out, "feed.xml"), "w") as f:
    f.write('<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title><link>'
            + base + "/</link>" + "".join(items) + "</channel></rss>")
