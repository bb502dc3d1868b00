"""A socket in front of a daemon's socket that passes every byte unchanged and hears each line.

A daemon running as its own process cannot be tapped from the test's side of the socket, and its
clients are often not the suite's own (readerhostctl in a subprocess, socat, the Python client, node):
`daemon_process` puts this relay between them, so that what they exchange is judged against
docs/protocol/ like an in-process daemon's traffic (tests/conftest.py taps `ProtocolRelay.hear`).

Bytes are passed on as they arrive, in both directions, and an end of file on one side is passed on
as a half-close (shutdown for writing) to the other, so a client sees the daemon's behaviour,
delayed by one hop. The daemon sees the test's process as its peer; tests about who the peer is use
the daemon's own socket (`DaemonProcess.daemon_socket_path`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from support.protocol_check import Exchange

CHUNK = 64 * 1024
MAX_HEARD_LINE = 1024 * 1024  # a longer line is passed on but not heard (the daemon refuses it anyway)


class _Lines:
    """Whole lines out of a byte stream; a line longer than MAX_HEARD_LINE is skipped."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        for piece in data.splitlines(keepends=True):
            if not piece.endswith(b"\n"):
                self._take_partial(piece)
                continue
            if not self._skipping and len(self._partial) + len(piece) <= MAX_HEARD_LINE:
                lines.append(bytes(self._partial) + piece)
            self._partial.clear()
            self._skipping = False
        return lines

    def _take_partial(self, piece: bytes) -> None:
        if self._skipping or len(self._partial) + len(piece) > MAX_HEARD_LINE:
            self._partial.clear()
            self._skipping = True
        else:
            self._partial += piece


class _Conversation:
    """One client's connection through the relay: requests kept by id until their answer."""

    def __init__(self, relay: ProtocolRelay) -> None:
        self._relay = relay
        self._asked: dict[Any, deque[bytes]] = defaultdict(deque)
        self._lock = threading.Lock()

    def asked(self, line: bytes) -> None:
        request = _message(line)
        if isinstance(request, dict) and "method" in request and isinstance(request.get("id"), int | str):
            with self._lock:
                self._asked[request["id"]].append(line)

    def told(self, line: bytes) -> None:
        message = _message(line)
        request = None
        if isinstance(message, dict) and "method" not in message:
            with self._lock:
                waiting = self._asked.get(message.get("id"))
                request = waiting.popleft() if waiting else None
        self._relay.hear(Exchange(request, line))


class ProtocolRelay:
    """Listens on `path` and relays each connection to the daemon's socket at `target`."""

    def __init__(self, target: Path, path: Path) -> None:
        self.target = target
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._start(self._accept_loop, "relay-accept")

    def hear(self, exchange: Exchange) -> None:
        """One line the daemon sent, with the request it answers; tests/conftest.py taps this."""

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _start(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                daemon.connect(str(self.target))
            except OSError:
                # The daemon is not there: the client sees its connection closed, as it would.
                daemon.close()
                client.close()
                continue
            with self._lock:
                self._open.update((client, daemon))
            conversation = _Conversation(self)
            directions = [2]  # how many of the two directions still run
            self._start(self._pump, "relay-up", client, daemon, conversation.asked, directions)
            self._start(self._pump, "relay-down", daemon, client, conversation.told, directions)

    def _pump(self, source: socket.socket, sink: socket.socket, heard: Any, pair: list[int]) -> None:
        lines = _Lines()
        try:
            while data := source.recv(CHUNK):
                # Heard before it is passed on: a request is kept before its answer can come back,
                # and an answer is recorded before the test that waits for it can end.
                for line in lines.feed(data):
                    heard(line)
                sink.sendall(data)
        except OSError:
            pass  # a reset or a closed peer ends this direction like an end of file
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with self._lock:
            pair[0] -= 1
            if pair[0]:
                return  # the other direction closes both when it ends
            self._open.difference_update((source, sink))
        source.close()
        sink.close()


def _message(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None
