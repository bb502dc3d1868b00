"""A tiny reader link host for tests (pyserial and the codec, nothing of readerhost's own host), and
`readerhost-reader-emulator` as a child process whose stdout lines a test can wait for."""

from __future__ import annotations

import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import serial

from readerhost.drivers.reader.link.codec import (
    HEADER,
    FrameDecoder,
    LinkCodecError,
    Message,
    MessageType,
    cobs_encode,
    encode,
)

MODULE = [sys.executable, "-m", "readerhost.sim.reader_device.cli"]
Item = Message | LinkCodecError


def raw_frame(type_code: int, seq: int, body: bytes) -> bytes:
    """A frame with any type and body, intact (good COBS and CRC): for malformed messages."""
    payload = HEADER.pack(type_code, 0, seq) + body
    return cobs_encode(payload + struct.pack(">I", zlib.crc32(payload))) + b"\x00"


def device_messages(items: list[Item]) -> list[Message]:
    return [i for i in items if isinstance(i, Message) and i.type is not MessageType.ACK]


def acks(items: list[Item]) -> list[int]:
    return [i.body["ack"] for i in items if isinstance(i, Message) and i.type is MessageType.ACK]


class LinkHost:
    """The host end of a serial link: sends messages, reads what comes back, ACKs device messages."""

    def __init__(self, path: str, *, auto_ack: bool = True) -> None:
        self.port = serial.Serial(path, 115200, timeout=0.05)
        self.auto_ack = auto_ack
        self._decoder = FrameDecoder()
        self._pending: deque[Item] = deque()
        self._seq = 0

    def close(self) -> None:
        self.port.close()

    def send(self, kind: MessageType, body: Mapping[str, Any] | None = None, *, seq: int | None = None) -> int:
        """Send a message with the next seq (HELLO: 0, and the count restarts); its seq."""
        if seq is None:
            self._seq = 0 if kind is MessageType.HELLO else self._seq + 1
            seq = self._seq
        self.port.write(encode(Message(kind, seq, body or {})))
        return seq

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def next(self, timeout: float = 3.0) -> Item:
        """The next message or damaged frame from the device; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing from the device within {timeout} s")
            for item in self._decoder.feed(self.port.read(4096)):
                self._pending.append(item)
                if self.auto_ack and isinstance(item, Message) and item.type is not MessageType.ACK:
                    self.port.write(encode(Message(MessageType.ACK, 0, {"ack": item.seq})))
        return self._pending.popleft()

    def read_until(self, done: Callable[[Message], bool], timeout: float = 3.0) -> list[Item]:
        """Everything up to and including the first message for which `done` is true."""
        deadline = time.monotonic() + timeout
        items: list[Item] = []
        while True:
            item = self.next(max(0.0, deadline - time.monotonic()))
            items.append(item)
            if isinstance(item, Message) and done(item):
                return items

    def until(self, kind: MessageType, timeout: float = 3.0) -> list[Item]:
        return self.read_until(lambda m: m.type is kind, timeout)

    def quiet_for(self, seconds: float) -> list[Item]:
        """Whatever arrives within `seconds` (to show that nothing does)."""
        items: list[Item] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                items.append(self.next(left))
            except AssertionError:
                break
        return items

    def hello(self, versions: list[int] | None = None) -> Message:
        """HELLO, and the WELCOME or ERROR that answers it."""
        self.send(MessageType.HELLO, {"versions": versions or [1], "host": "test host"})
        answers = device_messages(self.read_until(lambda m: m.type in (MessageType.WELCOME, MessageType.ERROR)))
        return answers[-1]


class EmulatorProcess:
    """The emulator command in a child process; JSON lines on its stdout, commands on its stdin."""

    def __init__(
        self, *args: str, command: list[str] | None = None, announces: str = "pty: ", timeout: float = 5.0
    ) -> None:
        """Starts it and waits up to `timeout` for its first line, `announces` and where it is
        (`pty: PATH`, or `ble: ADDRESS NAME` with --ble), kept in `announced`."""
        self.process = subprocess.Popen(
            [*(command or MODULE), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        self._buffer = b""
        self._lines: deque[str] = deque()
        self.events: list[dict[str, Any]] = []
        try:
            first = self.line(timeout)
            assert first.startswith(announces), first
        except BaseException:
            self.stop()
            raise
        self.announced = first.removeprefix(announces)

    @property
    def pty(self) -> str:
        return self.announced

    def line(self, timeout: float = 5.0) -> str:
        """The next line on stdout; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._fd, selectors.EVENT_READ)
            while not self._lines:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise AssertionError(f"no line from the emulator within {timeout} s")
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    raise AssertionError(f"the emulator exited: {self.stop()[1]}")
                self._buffer += chunk
                *complete, self._buffer = self._buffer.split(b"\n")
                self._lines.extend(line.decode() for line in complete)
        return self._lines.popleft()

    def _json(self, timeout: float) -> dict[str, Any]:
        value = json.loads(self.line(timeout))
        assert isinstance(value, dict)
        return value

    def control(self, command: Mapping[str, Any] | str, timeout: float = 5.0) -> dict[str, Any]:
        """Send one command (an object, or a raw line) and return its answer; events seen meanwhile are kept."""
        assert self.process.stdin is not None
        text = command if isinstance(command, str) else json.dumps(command)
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()
        while "event" in (answer := self._json(timeout)):
            self.events.append(answer)
        return answer

    def event(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first event `name` not yet waited for (the ones before it are dropped)."""
        while self.events:
            seen = self.events.pop(0)
            if seen.get("event") == name:
                return seen
        while (seen := self._json(timeout)).get("event") != name:
            pass
        return seen

    def end_control(self) -> None:
        """Close the emulator's stdin (EOF on its control channel)."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.stdin = None  # communicate() would flush it

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal the emulator, wait for it; its exit status and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            _, stderr = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate(timeout=10)
        return self.process.returncode, stderr.decode(errors="replace")
