"""How readerhostctl writes what it has to say: the Output class, and its progress spinner."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

SPINNER = "|/-\\"
SPIN_INTERVAL_S = 0.1


def fail(message: str, code: int) -> int:
    """Say why on stderr, as every readerhostctl failure does; return the exit code."""
    print(f"readerhostctl: {message}", file=sys.stderr, flush=True)
    return code


class Output:
    """Where results go: human lines (with a spinner on a terminal) or JSON documents."""

    def __init__(self, json_mode: bool, stream: TextIO) -> None:
        self.json = json_mode
        self.stream = stream
        self.tty = not json_mode and stream.isatty()
        self._spinning = False
        self._frame = 0

    def line(self, text: str = "") -> None:
        self._clear()
        print(text, file=self.stream, flush=True)

    def document(self, value: Any) -> None:
        self._clear()
        print(json.dumps(value, ensure_ascii=False), file=self.stream, flush=True)

    def spin(self, text: str) -> None:
        """One step of the progress indicator; only on a terminal."""
        if not self.tty:
            return
        self._frame = (self._frame + 1) % len(SPINNER)
        self.stream.write(f"\r{SPINNER[self._frame]} {text}\x1b[K")
        self.stream.flush()
        self._spinning = True

    def pause(self) -> None:
        """Take the spinner off the line (before a prompt)."""
        self._clear()
        self.stream.flush()

    def _clear(self) -> None:
        if self._spinning:
            self.stream.write("\r\x1b[K")
            self._spinning = False
