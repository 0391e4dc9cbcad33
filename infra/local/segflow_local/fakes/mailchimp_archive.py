"""Where the fake Mailchimp keeps batch results: a stand-in for the S3 bucket behind `response_body_url`.

Mailchimp's results URL is a pre-signed S3 link on another host: it needs no Mailchimp credentials, and S3
refuses a request that carries an Authorization header as well as a signed query ("only one auth mechanism
allowed"). This host behaves the same, so a client that sends its API key to the archive fails here, and it
records every download (path, status, whether credentials came along) for tests.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

BUCKET_PATH = "/mailchimp-batch-results"
_XML = "application/xml"


@dataclass(frozen=True)
class Download:
    path: str
    status: int
    sent_authorization: bool


def _s3_error(code: str, message: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


class ArchiveHost:
    """A loopback HTTP server that serves published archives at pre-signed-looking URLs."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._objects: dict[str, tuple[str, bytes]] = {}  # key -> (signature, payload)
        self._downloads: list[Download] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((self._host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-s3", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("the archive host is not started")
        return f"http://{self._host}:{self._server.server_address[1]}"

    # ---- objects --------------------------------------------------------------------------------

    def publish(self, name: str, payload: bytes, expires_s: int = 3600) -> str:
        """Store an archive; returns its pre-signed URL."""
        signature = secrets.token_hex(16)
        key = f"{BUCKET_PATH}/{name}"
        with self._lock:
            self._objects[key] = (signature, payload)
        query = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={expires_s}&X-Amz-Signature={signature}"
        return f"{self.origin}{key}?{query}"

    def withdraw(self, name: str) -> None:
        with self._lock:
            self._objects.pop(f"{BUCKET_PATH}/{name}", None)

    def downloads(self) -> list[Download]:
        with self._lock:
            return list(self._downloads)

    def clear_downloads(self) -> None:
        with self._lock:
            self._downloads.clear()

    def serve(self, target: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """(status, body, content type) for a GET of `target`; records the download."""
        split = urlsplit(target)
        signature = (parse_qs(split.query).get("X-Amz-Signature") or [""])[-1]
        sent_authorization = any(name.lower() == "authorization" for name in headers)
        with self._lock:
            stored = self._objects.get(split.path)
            if sent_authorization:
                reply = (400, _s3_error("InvalidArgument", "Only one auth mechanism allowed"), _XML)
            elif stored is None:
                reply = (404, _s3_error("NoSuchKey", "The specified key does not exist."), _XML)
            elif not secrets.compare_digest(signature, stored[0]):
                reply = (403, _s3_error("SignatureDoesNotMatch", "The signature does not match."), _XML)
            else:
                reply = (200, stored[1], "application/x-gzip")
            self._downloads.append(Download(split.path, reply[0], sent_authorization))
        return reply

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _handler_for(host: ArchiveHost) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name for the GET handler
            status, body, content_type = host.serve(self.path, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
            """Silenced: the signed query is a credential."""

    return _Handler
