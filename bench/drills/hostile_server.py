#!/usr/bin/env python3
"""An HTTP server on 127.0.0.1 for the hostile-sources drill: the healthy
feeds in DIR under /healthy/, and beside them one path per kind of hostile
source the collector must survive.

Usage: hostile_server.py DIR PORT
"""
import functools
import gzip
import http.server
import os
import sys
import time

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script><a href="javascript:alert(3)">x</a><iframe src="https://evil.example/"></iframe><svg onload=alert(4)>'


def rss(title, link, items):
    """An RSS 2.0 document around ready-made <item> elements."""
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title><link>{link}</link>{items}</channel></rss>'.encode()


def xss_feed():
    esc = XSS.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    items = "".join(
        f"<item><title>{esc} title {i}</title><link>https://xss.example/{i}?utm_source=x#{esc}</link>"
        f"<guid>xss-{i}</guid><category>{esc}</category><author>{esc}</author>"
        f"<description>{esc} body {i}</description><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
        for i in range(5)
    )
    return rss(esc, "https://xss.example/", items)


def crlf_feed():
    items = "".join(
        f"<item><title>Line one&#13;&#10;Bcc: victim@example.com\x01\x08 {i}</title>"
        f"<link>https://crlf.example/{i}</link><guid>crlf-{i}</guid>"
        f"<description>text&#13;&#10;more\x0b</description></item>"
        for i in range(5)
    )
    return rss("CRLF", "https://crlf.example/", items)


def many_items(n):
    items = "".join(f"<item><title>Item {i}</title><link>https://many.example/{i}</link></item>" for i in range(n))
    return rss("Many", "https://many.example/", items)


# A gzip bomb: 1 GiB of zeros, about 1 MiB compressed.
def gzip_bomb():
    path = "/tmp/tidings-drill-bomb.gz"
    if not os.path.exists(path):
        chunk = b"\0" * (1 << 20)
        with gzip.open(path, "wb", compresslevel=9) as f:
            for _ in range(1024):
                f.write(chunk)
    with open(path, "rb") as f:
        return f.read()


STATIC = {
    "/hostile/malformed.xml": (200, {"Content-Type": "application/rss+xml"}, b'<?xml version="1.0"?><rss version="2.0"><channel><title>Broken<item><title>x</channel>'),
    "/hostile/html-page": (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><p>Not a feed.</p></body></html>"),
    "/hostile/not-found.xml": (404, {}, b"not here"),
    "/hostile/error.xml": (500, {}, b"oops"),
    "/hostile/rate-limited.xml": (429, {"Retry-After": "3600"}, b"slow down"),
    "/hostile/unavailable.xml": (503, {"Retry-After": "120"}, b"maintenance"),
    "/hostile/gone.xml": (410, {}, b"gone"),
    "/hostile/loop-a": (302, {"Location": "/hostile/loop-b"}, b""),
    "/hostile/loop-b": (302, {"Location": "/hostile/loop-a"}, b""),
    # Not well-formed: a bare "&", an HTML entity, cut off inside the third item.
    "/hostile/recoverable.xml": (200, {"Content-Type": "application/rss+xml"},
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Q&A weekly</title>'
        b'<item><title>Caf&eacute; chain breach</title><link>https://recover.example.com/a?x=1&y=2</link></item>'
        b'<item><title>Second story</title><link>https://recover.example.com/b</link></item>'
        b'<item><title>Cut off</title><link>https://recover.ex'),
    # A full_text source whose pages are each hostile in another way, and one good page.
    "/hostile/articles.xml": (200, {"Content-Type": "application/rss+xml"},
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Articles</title>'
        + b"".join(b'<item><title>Page %d</title><link>%s</link></item>' % (i, link) for i, link in enumerate([
            b"/hostile/article.html", b"/hostile/50mib.xml", b"/hostile/slow-body.xml", b"/hostile/loop-a",
            b"/hostile/binary.png"]))
        + b"</channel></rss>"),
    "/hostile/article.html": (200, {"Content-Type": "text/html; charset=utf-8"},
        b"<!DOCTYPE html><html><head><title>A page</title></head><body><nav><a href='/'>Home</a></nav><article><h1>A page</h1>"
        + b"".join(b"<p>Paragraph %d of the article, with enough words in it to be read as the main text of the page.</p>" % i
                   for i in range(8))
        + b"</article><footer>Footer</footer></body></html>"),
    "/hostile/binary.png": (200, {"Content-Type": "image/png"}, bytes(range(256)) * 64),
}


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    generated = {}

    def log_message(self, *args):
        pass

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        p = self.path
        if p.startswith("/healthy/"):
            self.path = p[len("/healthy"):]
            return super().do_GET()
        if p in STATIC:
            return self.reply(*STATIC[p])
        if p == "/hostile/xss.xml":
            return self.reply(200, {"Content-Type": "application/rss+xml"}, xss_feed())
        if p == "/hostile/crlf.xml":
            return self.reply(200, {"Content-Type": "application/rss+xml"}, crlf_feed())
        if p == "/hostile/100000-items.xml":
            body = self.generated.setdefault(p, many_items(100_000))
            return self.reply(200, {"Content-Type": "application/rss+xml"}, body)
        if p == "/hostile/gzip-bomb.xml":
            body = self.generated.setdefault(p, gzip_bomb())
            return self.reply(200, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}, body)
        if p == "/hostile/50mib.xml":
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(50 << 20))
            self.end_headers()
            chunk = b"<!-- padding -->" * 4096
            try:
                for _ in range((50 << 20) // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if p == "/hostile/slow-headers.xml":
            time.sleep(60)
            return self.reply(200, {}, b"")
        if p == "/hostile/slow-body.xml":
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(60):
                    self.wfile.write(b"<")
                    self.wfile.flush()
                    time.sleep(1)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self.reply(404, {}, b"unknown")


HOSTILE = [
    "malformed.xml", "html-page", "not-found.xml", "error.xml", "rate-limited.xml", "unavailable.xml",
    "gone.xml", "loop-a", "xss.xml", "crlf.xml", "100000-items.xml", "gzip-bomb.xml", "50mib.xml",
    "slow-headers.xml", "slow-body.xml", "recoverable.xml", "articles.xml",
]


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "--list":
        print("\n".join(HOSTILE))
        return
    gzip_bomb()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=directory))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
