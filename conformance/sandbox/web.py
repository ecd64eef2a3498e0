"""Small HTTP(S) servers on loopback, healthy or with one fault each.

They run in threads of the process that owns the sandbox, so they cannot
outlive it.
"""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status = self.server.status
        body = b"ok\n" if status < 400 else b"service unavailable\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server", "conformance-sandbox")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the request's thread, so a client
        # that never completes one cannot block the accept loop.
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


class WebServer:
    """One HTTP(S) server answering every GET with ``status``."""

    def __init__(self, status: int = 200, cert: tuple[Path, Path] | None = None) -> None:
        tls = None
        if cert is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(str(cert[0]), str(cert[1]))
        self._server = _Server(status, tls)
        self.port = int(self._server.server_address[1])
        self.scheme = "https" if tls else "http"
        # A short poll interval makes stop() quick (shutdown waits for the loop's next poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"sandbox-web-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HungPort:
    """Accepts TCP connections (the kernel does, from the backlog) and never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])

    def stop(self) -> None:
        self._sock.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
