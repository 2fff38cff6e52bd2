"""Weights-download test helpers: a test file, a local HTTP server with failure modes, a registered test asset."""

from __future__ import annotations

import hashlib
import http.server
import threading

from ferkit.hub import ASSETS, Asset

DATA = bytes(range(256)) * 1200  # 307,200 bytes: several 64 KiB chunks
SHA = hashlib.sha256(DATA).hexdigest()
SIZE = len(DATA)


class Server:
    """Tiny HTTP server: ``routes[path] = (mode, body)``; modes ok | no_range (ignores Range) | drop_once |
    drop_once_no_range | drop_always (send half the file, then close) | html | 404."""

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Range")))
                mode, body = outer.routes.get(self.path, ("404", b""))
                if mode == "404":
                    self.send_error(404, "Not Found")
                    return
                if mode == "html":
                    self._send(200, b"<html>Google Drive - virus scan warning</html>", "text/html; charset=utf-8")
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and mode != "no_range":
                    start = int(rng.split("=")[1].split("-")[0])
                if mode in ("drop_always", "drop_once", "drop_once_no_range"):
                    if mode != "drop_always":
                        outer.routes[self.path] = ("ok" if mode == "drop_once" else "no_range", body)
                    self._send(206 if start else 200, body[start:], drop_after=(len(body) - start) // 2, start=start,
                               total=len(body))
                    return
                self._send(206 if start else 200, body[start:], start=start, total=len(body))

            def _send(self, code, payload, ctype="application/octet-stream", drop_after=None, start=0, total=0):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                if code == 206:
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                self.end_headers()
                if drop_after is None:
                    self.wfile.write(payload)
                    return
                self.wfile.write(payload[:drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_asset(monkeypatch, server, *, sha=SHA, size=SIZE, name="test_blob", paths=("/blob.bin",)) -> Asset:
    asset = Asset(name, "blob.bin", tuple(server.url + p for p in paths), sha, size, "MIT", "https://example.org",
                  "test file", "detector")
    monkeypatch.setitem(ASSETS, name, asset)
    return asset
