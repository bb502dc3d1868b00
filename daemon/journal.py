"""Logging to the systemd journal with structured fields, through libsystemd (systemd-python's
sd_journal_sendv), which handles values with newlines and entries too large for one datagram.

Structured fields come from one `extra` key, so that they can never collide with LogRecord
attributes:

    fields = {"PAYMENT_ID": payment_id, "MESSAGE_ID": MessageId.PAYMENT_CAPTURED}
    logger.info("payment %s captured", payment_id, extra={"journal": fields})

Only the fields named here and in `journal` are sent (never the record's other attributes), so
nothing reaches the journal that the message and its explicit fields do not show.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from systemd import journal as sd_journal

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_IDENTIFIER = "readerhostd"
STDERR_FORMAT = "%(levelname)s %(name)s: %(message)s"

# journald keeps a client's field only when it is made of A-Z, 0-9 and _, does not start with a
# digit or with _ (those are its own trusted fields) and is at most 64 characters long.
_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")

FieldValue = str | bytes | int


@enum.unique
class MessageId(enum.StrEnum):
    """The journal's MESSAGE_IDs of readerhostd (explained in systemd/readerhost.catalog); never change one."""

    PAYMENT_AUTHORISED = "3d8f498e29944e50acb0e544a7c43ebd"
    PAYMENT_DECLINED = "f85c7c265e284848b76a205b4bfc44e3"
    PAYMENT_CAPTURED = "f6e746b28cc248e9898de0100f63710e"
    PAYMENT_FAILED = "0e66016014124d5ba09318d7ca92fbc1"
    PAYMENT_CANCELED = "7220d8db6a7a4419bb9d00920beddcc8"
    READER_CONNECTED = "907add30e039444eba792460373a85b3"
    READER_LOST = "976bab143f4241fa8f9a97549e336b85"
    STRIPE_UNREACHABLE = "8138879011204432bd5e076d544ed852"
    STRIPE_BACK = "25591cf96bab45288015a0c4bc9b1a6f"
    OFFLINE_STORED = "1dfc535b3fc34c42b62a3d00bf57b8f0"
    OFFLINE_FORWARDED = "509824b2dd2548f4bca3c6c40483f8fa"
    CAPTURE_DEADLINE_NEAR = "964efb87d0004dde8406ed2b5ea9b194"
    CAPTURE_AMOUNT_MISMATCH = "ba77532a39ca469d82b62aebbb9571e9"
    LISTENER_FAILED = "11bd9492e3094ee8b2d6fe6bb401c80a"
    DAEMON_STARTED = "65441a468cb54a14a161ac1b581fce11"
    DAEMON_STOPPING = "4a454785f84742debc1968ce8eaaed84"
    REFUND_REQUESTED = "e5478f6b8a974c519301e3bb3c856a25"
    REFUND_SUCCEEDED = "33e17eedb8eb40f4bc4442c7495646fe"
    REFUND_FAILED = "d4b60491f8384b5ebfd1d33cf47c6b85"
    READER_REFUSED = "d7f2bdf636cc4de481b813234f1ed085"
    INCREMENT_NOT_RAISED = "b8cc58b3ce134aa3a6a2306d8267b8ea"
    UNATTENDED_CAPTURE = "92007ef1b8584b388a95c2157675ad1a"
    UNATTENDED_CANCEL = "9153158213eb45079a2b58fd307aa67b"
    UNATTENDED_REPORT = "4f8360b60b2a4203bbb8e376792ae588"
    AUTHORIZATION_EXPIRED = "04bd69ae6b394a5cbf15568057ab866e"


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level: debug 7, info 6, warning 4, error 3, critical 2."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def valid_field_name(name: object) -> bool:
    return isinstance(name, str) and _FIELD_NAME.fullmatch(name) is not None


class JournalHandler(logging.Handler):
    """Sends each record to journald as one entry (see the module's docstring)."""

    def __init__(self, level: int = logging.NOTSET, *, identifier: str = SYSLOG_IDENTIFIER) -> None:
        super().__init__(level)
        self.identifier = identifier
        self.setFormatter(logging.Formatter("%(message)s"))  # level and logger travel as fields

    def fields(self, record: logging.LogRecord) -> list[tuple[str, FieldValue]]:
        """The entry's fields: the handler's own first, then the record's valid `journal` extras."""
        own: list[tuple[str, FieldValue]] = [
            ("MESSAGE", self.format(record)),
            ("PRIORITY", syslog_priority(record.levelno)),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("LOGGER", record.name),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", record.lineno),
            ("CODE_FUNC", record.funcName),
        ]
        taken = {name for name, _ in own}
        extra = getattr(record, "journal", None)
        if isinstance(extra, Mapping):
            for name, value in extra.items():
                if value is None or not valid_field_name(name) or name in taken:
                    continue
                own.append((name, value if isinstance(value, str | bytes | int) else str(value)))
                taken.add(name)
        return own

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sd_journal.sendv(*(journal_field(name, value) for name, value in self.fields(record)))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def journal_field(name: str, value: FieldValue) -> bytes:
    """`NAME=value` as sd_journal_sendv takes it: any bytes, newlines included."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "backslashreplace")
    return name.encode("ascii") + b"=" + data


def under_journald(env: Mapping[str, str], *, stderr_fd: int = 2, socket_path: str = JOURNAL_SOCKET) -> bool:
    """Whether systemd runs us with the journal at hand.

    True when JOURNAL_STREAM names our stderr (`st_dev:st_ino`, as systemd sets it), or when
    INVOCATION_ID is set (we are a systemd unit) and journald's socket exists.
    """
    stream = env.get("JOURNAL_STREAM", "")
    if stream:
        device, _, inode = stream.partition(":")
        try:
            status = os.fstat(stderr_fd)
            if (status.st_dev, status.st_ino) == (int(device), int(inode)):
                return True
        except (OSError, ValueError):
            pass
    return bool(env.get("INVOCATION_ID")) and Path(socket_path).is_socket()


def configure_logging(level: str, env: Mapping[str, str]) -> None:
    """The daemon's logging: the journal under systemd, else `LEVEL name: message` lines on stderr.

    Stripe's library logs every request at info: it is kept to warnings unless `level` is debug,
    and even then to info, because its debug lines carry whole response bodies, and a
    PaymentIntent's holds its client secret. Like logging.basicConfig, a root logger that already
    has handlers keeps them.
    """
    handler: logging.Handler
    if under_journald(env):
        handler = JournalHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(STDERR_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger("stripe").setLevel(logging.INFO if level.lower() == "debug" else logging.WARNING)
