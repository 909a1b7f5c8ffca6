"""The peer: readability-lxml (a Python port of the same readability
algorithm) fetching and extracting the same pages from 127.0.0.1. Prints
one JSON object {page: text} to stdout."""
import json
import sys
import urllib.request

import lxml.html
from readability import Document

base, n = sys.argv[1].rstrip("/"), int(sys.argv[2])
texts = {}
for i in range(n):
    with urllib.request.urlopen(f"{base}/p{i}.html") as r:
        html = r.read().decode("utf-8")
    summary = Document(html).summary(html_partial=True)
    texts[f"p{i}"] = lxml.html.fromstring(summary).text_content()
json.dump(texts, sys.stdout)
