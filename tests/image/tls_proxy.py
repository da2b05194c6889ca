"""A TLS reverse proxy for tests/image/run.sh: the simulated Kimai (plain HTTP on loopback)
behind https with a certificate of the test's own CA, so that the server in the image has to
verify Kimai's certificate with the CA file mounted into it.

Usage: tls_proxy.py CERT KEY UPSTREAM_URL
Listens on 127.0.0.1 (a free port), prints `port N` once it accepts, and runs until killed.
Logs nothing: request paths and headers carry tokens.
"""

import http.client
import http.server
import ssl
import sys
import urllib.parse

CERT, KEY, UPSTREAM = sys.argv[1:4]
UP = urllib.parse.urlsplit(UPSTREAM)
# Hop-by-hop headers, and the two this proxy sets itself.
DROP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
        "upgrade", "host", "content-length"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in DROP}
        conn = http.client.HTTPConnection(UP.hostname, UP.port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in DROP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = forward

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
server.daemon_threads = True
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("port", server.server_address[1], flush=True)
server.serve_forever()
