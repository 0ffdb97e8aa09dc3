#!/usr/bin/env python3
"""An HTTPS reverse proxy that wants `Authorization: Bearer TOKEN`, in front of a plain-HTTP
server: an MLflow deployment behind a token gateway, as integration.mlflow_server meets it to
test MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_SERVER_CERT_PATH and MLFLOW_TRACKING_INSECURE_TLS
against a real `mlflow server`. Standard library only.

    tls_bearer_proxy.py PORT UPSTREAM_URL CERT_PEM KEY_PEM TOKEN LOG

Serves https://127.0.0.1:PORT until killed. Each request is appended to LOG as
"METHOD PATH STATUS" (401 without the token; otherwise the upstream's status)."""
import http.client
import http.server
import ssl
import sys
import urllib.parse

port, upstream, cert, key, token, log = sys.argv[1:7]
up = urllib.parse.urlsplit(upstream)
HOP = {"host", "authorization", "connection", "content-length", "transfer-encoding", "expect", "keep-alive"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and libcurl's Expect: 100-continue answered

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def forward(self):
        data = self.body()
        if self.headers.get("Authorization") != "Bearer " + token:
            status, headers, out = 401, [("Content-Type", "text/plain")], b"a bearer token is required"
        else:
            c = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            c.request(self.command, self.path, body=data,
                      headers={k: v for k, v in self.headers.items() if k.lower() not in HOP})
            r = c.getresponse()
            status, out = r.status, r.read()
            headers = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP]
            c.close()
        with open(log, "a") as f:  # before the answer: the test reads LOG once its client has one
            f.write(f"{self.command} {self.path} {status}\n")
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Proxy)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
