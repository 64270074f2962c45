#!/usr/bin/python3
"""hakube's health agent on a master: what the load balancer's legacy HTTP
health check probes (plain HTTP, GET /healthz every second).

It answers 200 "ok" when this master's own apiserver says it is ready
(GET /readyz over TLS, verified with the cluster CA, answers 200), else 503
with what /readyz said, so a master whose etcd lost quorum leaves the
target pool. Standard library only: Debian's python3 is on the image.
"""

import argparse
import http.server
import ssl
import sys
import urllib.error
import urllib.request


def probe(url, context, timeout):
    """Returns (ready, text) for one GET of the apiserver's /readyz."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as resp:
            body = resp.read(4096).decode("utf-8", "replace")
            return resp.status == 200, body
    except urllib.error.HTTPError as e:  # the apiserver answered, not ready
        return False, e.read(4096).decode("utf-8", "replace") or str(e)
    except (OSError, ValueError) as e:  # refused, timed out, TLS failed
        return False, "apiserver %s: %s\n" % (url, e)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--readyz", required=True, help="the apiserver's /readyz URL")
    p.add_argument("--ca", required=True, help="the cluster CA's certificate")
    # The health check times out after 1 s: answer before it does.
    p.add_argument("--timeout", type=float, default=0.8)
    a = p.parse_args()
    context = ssl.create_default_context(cafile=a.ca)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?", 1)[0] != "/healthz":
                self.answer(404, "not found: only /healthz is served\n")
                return
            ready, text = probe(a.readyz, context, a.timeout)
            if ready:
                self.answer(200, "ok")
            else:
                self.answer(503, text)

        def answer(self, code, text):
            body = text.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass  # a probe a second would flood the journal

    server = http.server.ThreadingHTTPServer((a.listen, a.port), Handler)
    host, port = server.server_address[:2]
    print("hakube health agent on %s:%d, ready when %s is" % (host, port, a.readyz), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
