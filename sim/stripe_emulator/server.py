"""HTTP on 127.0.0.1 for the emulator: Stripe's API under /v1, the control interface under /_emulator."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .control import handle_control
from .emulator import ApiRequest, ApiResponse, StripeEmulator

LOOPBACK = "127.0.0.1"
MAX_BODY = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Stripe's API and stripe-python's pool expect
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold every response back by ~40 ms.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer
    error_content_type = "application/json"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # Stripe answers any other method with its JSON 404 (unrecognized URL), not an HTML 501.
    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": {"type": "invalid_request_error", "message": "Request body too large."}}, {})
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-request (a process killed between writing the headers and
            # the body): Stripe never acts on a request it did not receive whole, so neither do we.
            self.server.emulator.drop_incomplete()
            self.close_connection = True
            return
        if url.path.startswith("/_emulator/"):
            status, answer = handle_control(self.server.emulator, self.command, url.path, url.query, body)
            self._send(status, answer, {})
            return
        request = ApiRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            body=body.decode("utf-8", errors="replace"),
            headers={name.lower(): value for name, value in self.headers.items()},
        )
        response: ApiResponse = self.server.emulator.handle(request)
        if response.reset_connection:
            self._reset()
            return
        self._send(response.status, response.body, response.headers)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = json.dumps(body, indent=2).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        """Abort the connection with a TCP reset: the client gets no response at all."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: StripeEmulator, port: int = 0, *, verbose: bool = False) -> None:
        self.emulator = emulator
        self.verbose = verbose
        super().__init__((LOOPBACK, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is normal under fault injection; anything else is a bug.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def running_emulator(
    port: int = 0,
    *,
    rate_limit: float | None = None,
    search_lag_s: float = 2.0,
    reader_processing_s: float = 1.0,
    accept_live_keys: bool = False,
    verbose: bool = False,
) -> Iterator[tuple[str, StripeEmulator]]:
    """Serve an emulator on 127.0.0.1 in a background thread; yields (base URL, emulator)."""
    emulator = StripeEmulator(
        rate_limit=rate_limit,
        search_lag_s=search_lag_s,
        reader_processing_s=reader_processing_s,
        accept_live_keys=accept_live_keys,
    )
    server = EmulatorHTTPServer(emulator, port, verbose=verbose)
    # A short poll interval: shutdown() waits for it, and tests start and stop an emulator each.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-emulator", daemon=True
    )
    thread.start()
    try:
        yield server.url, emulator
    finally:
        emulator.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
