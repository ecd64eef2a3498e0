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
from typing import Any, Self


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP(S) server on a free loopback port, served from a daemon thread of the sandbox.

    Every sandbox server (web endpoints, the simulated APIs, the registry's token front) is one.
    The TLS handshake happens in each request's own thread, so a client that never completes one
    cannot block the accept loop. ``start()`` serves; ``stop()`` shuts down and closes the port.
    """

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], cert: tuple[Path, Path] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.tls: ssl.SSLContext | None = None
        if cert is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(str(cert[0]), str(cert[1]))
        self.port = int(self.server_address[1])
        # A short poll interval makes stop() quick (shutdown waits for the loop's next poll).
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name=f"sandbox-{type(self).__name__}-{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        """``https://localhost:PORT`` (the certificates name localhost) or ``http://127.0.0.1:PORT``."""
        return f"https://localhost:{self.port}" if self.tls else f"http://127.0.0.1:{self.port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            request.settimeout(10)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body are separate writes
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
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


class WebServer(LoopbackServer):
    """Answers every GET with ``status``; started at once."""

    def __init__(self, status: int = 200, cert: tuple[Path, Path] | None = None) -> None:
        super().__init__(_Handler, cert)
        self.status = status
        self.start()

    @property
    def url(self) -> str:
        return super().url + "/"


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
