"""A JSON API served by Python's http.server over Python's ssl module (OpenSSL), for
mpcstats's tests: a TLS stack that is not rustls.

Usage: server.py CERT KEY VERSION   (VERSION: 1.2 or 1.3)
Prints the port it listens on, then serves until killed. GET /api/balance with
`Authorization: Bearer py-token-<n>` answers {"user":{"id":<4242+n>},"balance":<n>.25}
(JSON numbers); anything else 401/404. Closes each connection without a TLS close_notify,
as http.server does.
"""
import http.server
import json
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        if self.path != "/api/balance":
            return self.reply(404, {"error": "not found"})
        if not auth.startswith("Bearer py-token-"):
            return self.reply(401, {"error": "bad token"})
        n = int(auth.rsplit("-", 1)[1])
        self.reply(200, {"user": {"id": 4242 + n}, "balance": n + 0.25, "currency": "EUR"})

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


def main():
    cert, key, version = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
