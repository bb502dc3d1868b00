"""systemd integration through libsystemd (systemd-python): readiness notification, the watchdog and
socket activation.

Nothing here does anything outside systemd: `Notifier.from_env`, `Watchdog.from_env` and
`listen_sockets` return None / {} when the environment does not ask for them. The protocols are
libsystemd's own (sd_notify(3), sd_listen_fds(3)), which read the process's environment: the
`env` given here must be `os.environ` for them to act (tests set the variables there).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence

from systemd import daemon as sd_daemon

logger = logging.getLogger(__name__)

# What systemd hands to the service alone, which no child of the daemon must inherit. NOTIFY_SOCKET
# stays: libsystemd reads it at every notification.
HANDED_OVER = ("WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES")


def unset_environment(env: MutableMapping[str, str]) -> None:
    """Forget what systemd handed over but NOTIFY_SOCKET (pass `os.environ`), once the Notifier,
    Watchdog and sockets exist."""
    for name in HANDED_OVER:
        env.pop(name, None)


class Notifier:
    """Sends sd_notify messages; a failed send is logged (once per run of failures), never raised."""

    def __init__(self, address: str) -> None:
        if not address.startswith(("/", "@")):
            raise ValueError(f"NOTIFY_SOCKET={address!r}: only an absolute path or an @abstract name is supported")
        self.address = address
        self._failing = False
        self._last_status: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Notifier | None:
        address = env.get("NOTIFY_SOCKET", "")
        if not address:
            return None
        try:
            return cls(address)
        except ValueError as error:
            logger.warning("not notifying systemd: %s", error)
            return None

    def send(self, **fields: str | int) -> bool:
        """One message of `KEY=value` lines, e.g. `send(READY=1, STATUS="serving")`; True if it was sent."""
        return self.send_lines(*(f"{key}={value}" for key, value in fields.items()))

    def send_lines(self, *lines: str) -> bool:
        """One message of the given `KEY=value` lines; a newline inside a line becomes a space."""
        message = "".join(" ".join(line.splitlines()) + "\n" for line in lines)
        try:
            sent = bool(sd_daemon.notify(message))
            problem = None if sent else "NOTIFY_SOCKET is not in this process's environment"
        except OSError as error:
            sent, problem = False, error.strerror or str(error)
        if not sent:
            if not self._failing:
                logger.warning("cannot notify systemd at %s: %s", self.address, problem)
            self._failing = True
            return False
        if self._failing:
            logger.info("notifying systemd at %s again", self.address)
        self._failing = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The service is up (Type=notify); with its first status line."""
        if status is None:
            return self.send(READY=1)
        return self._remember(status, self.send(READY=1, STATUS=status))

    def status(self, text: str) -> bool:
        """Show `text` in `systemctl status`; an unchanged text is not sent again (unless it failed)."""
        if text == self._last_status:
            return True
        return self._remember(text, self.send(STATUS=text))

    def _remember(self, status: str, sent: bool) -> bool:
        self._last_status = status if sent else None
        return sent

    def stopping(self) -> bool:
        return self.send(STOPPING=1)

    def reloading(self) -> bool:
        """Reloading the configuration (Type=notify-reload wants the CLOCK_MONOTONIC time with it)."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.monotonic_ns() // 1000)

    def reloaded(self, status: str | None = None) -> bool:
        return self.ready(status)


class Watchdog:
    """Pings systemd's watchdog (`WatchdogSec=`) while a health check passes, so a wedged daemon is restarted."""

    def __init__(self, notifier: Notifier, timeout_usec: int) -> None:
        if timeout_usec <= 0:
            raise ValueError(f"watchdog timeout must be positive, not {timeout_usec} µs")
        self.notifier = notifier
        self.timeout_usec = timeout_usec
        self.interval_s = timeout_usec / 2_000_000  # ping at twice the rate systemd expects

    @classmethod
    def from_env(cls, env: Mapping[str, str], notifier: Notifier | None) -> Watchdog | None:
        """A watchdog when `WATCHDOG_USEC` is set for this process (`WATCHDOG_PID` absent or ours)."""
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if notifier is None or not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return cls(notifier, int(usec))
        except ValueError:
            logger.warning("ignoring WATCHDOG_USEC=%r: not a positive number of microseconds", usec)
            return None

    async def run(self, healthy: Callable[[], Awaitable[bool]]) -> None:
        """Every interval: ping if `healthy()` says True within the interval. Runs until cancelled."""
        loop = asyncio.get_running_loop()
        wake_at = loop.time()
        failing = False
        while True:
            problem = await self._check(healthy)
            if problem is None:
                self.notifier.send(WATCHDOG=1)
                if failing:
                    logger.info("the health check passes again: pinging the systemd watchdog")
            elif not failing:
                logger.warning("not pinging the systemd watchdog: %s", problem)
            failing = problem is not None
            wake_at = max(wake_at + self.interval_s, loop.time())
            await asyncio.sleep(wake_at - loop.time())

    async def _check(self, healthy: Callable[[], Awaitable[bool]]) -> str | None:
        """None when healthy, else what went wrong."""
        try:
            ok = await asyncio.wait_for(healthy(), self.interval_s)
        except TimeoutError:
            return f"the health check did not answer within {self.interval_s:.3g} s"
        except Exception as error:
            return f"the health check raised {error!r}"
        return None if ok is True else f"the health check returned {ok!r}"


def listen_sockets(env: Mapping[str, str], names: Sequence[str] = ("api",)) -> dict[str, socket.socket]:
    """The sockets systemd passed to this process (socket activation), by `FileDescriptorName=`.

    Only the sockets named in `names` are returned (non-blocking, close-on-exec), each checked to be
    a listening AF_UNIX stream socket; a single unnamed socket is returned under `names[0]`. Empty
    when the process was not socket-activated (`env`, the process's environment, names no sockets
    for it). Raises ValueError when the passed fds are not usable.
    """
    if env.get("LISTEN_PID", "") != str(os.getpid()):
        return {}
    try:
        passed = sd_daemon.listen_fds_with_names(False)  # sets close-on-exec; the caller unsets later
    except (OSError, ValueError) as error:
        raise ValueError(
            f"systemd passed sockets that cannot be taken (LISTEN_FDS={env.get('LISTEN_FDS', '')!r}, "
            f"LISTEN_FDNAMES={env.get('LISTEN_FDNAMES', '')!r}): {getattr(error, 'strerror', None) or error}"
        ) from None
    if len(passed) == 1 and next(iter(passed.values())) in ("", "unknown") and names:
        passed = dict.fromkeys(passed, names[0])
    wanted: list[tuple[str, int]] = []
    for fd, name in sorted(passed.items()):
        if name in names:
            wanted.append((name, fd))
        else:
            logger.warning("ignoring the socket systemd passed as %r (fd %d)", name, fd)
    sockets: dict[str, socket.socket] = {}
    try:
        for name, fd in wanted:
            if name in sockets:
                raise ValueError(f"systemd passed more than one socket named {name!r}")
            sockets[name] = _listening_socket(fd, name)
    except ValueError:
        for sock in sockets.values():
            sock.detach()  # leave the fds as systemd passed them
        raise
    return sockets


def _listening_socket(fd: int, name: str) -> socket.socket:
    if not sd_daemon.is_socket(fd):
        raise ValueError(f"the fd systemd passed as {name!r} (fd {fd}) is not a socket")
    if not sd_daemon.is_socket_unix(fd, socket.SOCK_STREAM, 1):
        sock = socket.socket(fileno=fd)
        kind = f"{_name(sock.family)} {_name(sock.type)}"
        if sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM:
            kind += ", not listening"
        sock.detach()
        raise ValueError(
            f"the socket systemd passed as {name!r} (fd {fd}) is {kind}; "
            "readerhostd needs a listening AF_UNIX stream socket (ListenStream=/path in the .socket unit)"
        )
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


def _name(constant: int) -> str:
    """`AF_INET` for a known constant, the number for one the socket module has no name for."""
    return str(getattr(constant, "name", constant))
