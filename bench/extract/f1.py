"""Word-level F1 of extracted texts against the truth each page was
written with (bag of words, as extraction benchmarks count it)."""
import collections
import json
import re
import sys

truth_dir, extracted = sys.argv[1], json.load(open(sys.argv[2]))
scores = []
for page, text in extracted.items():
    truth = open(f"{truth_dir}/{page}.txt").read()
    words = lambda t: collections.Counter(re.findall(r"\w+", t.lower()))
    got, want = words(text or ""), words(truth)
    common = sum((got & want).values())
    if common == 0:
        scores.append(0.0)
        continue
    p, r = common / sum(got.values()), common / sum(want.values())
    scores.append(2 * p * r / (p + r))
print(f"{sum(scores) / max(len(scores), 1):.3f}")
