"""A protocol 2 serial reader for a reliability run: `readerhost-reader-emulator --version 2` as a real
process on a pty, a Stripe Terminal SDK bridge calling the run's Stripe emulator itself (so the
run's faults hit the device's own requests too), keeping what it stores offline in a file. The
cashiers present cards through its control channel, as a customer would at the reader."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

COMMAND_TIMEOUT_S = 10.0
FAILED = "readerhost-reader-emulator: the device failed"  # its log's line when serving the link raised


def serial_reader_config(link: Path) -> str:
    """The daemon's [reader] settings for this device."""
    return f"""
[reader]
driver = "serial"
reconnect_max_s = 0.5
[reader.serial]
device = "{link}"
protocol = 2
"""


class SdkDevice:
    def __init__(self, folder: Path, api_base: str) -> None:
        self.link = folder / "reader-tty"
        command = [
            sys.executable, "-m", "readerhost.sim.reader_device.cli", "--link", str(self.link), "--version", "2",
            "--stripe-api-base", api_base, "--card", "none", "--offline-store", str(folder / "device-offline.json"),
            "--verbose",
        ]  # fmt: skip
        self.log = folder / "device.log"  # its link and its SDK's calls, the evidence of a run
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.process.stdout is not None
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # one command, and its answer, at a time
        announced: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.process.stdout, announced), daemon=True).start()
        for _ in range(2):  # "pty: PATH", then "link: PATH"
            announced.get(timeout=COMMAND_TIMEOUT_S)

    def _pump(self, stream: IO[str], announced: queue.Queue[str]) -> None:
        for line in stream:
            if not line.startswith("{"):
                announced.put(line)
                continue
            message = json.loads(line)
            if "event" in message:
                self.events.append(message)
            else:
                self._answers.put(message)
        self._answers.put(None)

    def present(self, card: str) -> bool:
        """Present `card` to the collection waiting for one; False when none waits."""
        answer = self.command({"present": card})
        return answer.get("ok") is True

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            answer = self._answers.get(timeout=COMMAND_TIMEOUT_S)
        if answer is None:
            raise RuntimeError("the reader emulator exited")
        return answer

    def failure(self) -> str | None:
        """Why the device stopped serving for good (it exited, or its link's serving failed), or None."""
        if self.process.poll() is not None:
            return f"the reader emulator exited with status {self.process.returncode}"
        log = self.log.read_text(errors="replace").splitlines()
        if FAILED not in log:
            return None
        error = next((line for line in log[log.index(FAILED) + 1 :] if not line.startswith((" ", "Traceback"))), "")
        return f"the reader emulator failed: {error or 'see its log'}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
