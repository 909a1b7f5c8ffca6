#!/usr/bin/env python3
"""A threaded static file server on 127.0.0.1 for the collect benchmark.

Serves Last-Modified and answers If-Modified-Since with 304 (the standard
library's handler does both), so both tools' second runs are conditional.
Usage: serve.py DIR PORT
"""
import functools
import http.server
import sys


class Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The handler writes the headers and the body in separate sends; with
    # Nagle's algorithm on, the body then waits for the client's delayed ACK
    # of the headers: 40 ms per response, which every client here paid and
    # which no real web server charges.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    handler = functools.partial(Quiet, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
