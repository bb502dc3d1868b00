"""Events the payment core announces after each committed change, for the API, the UI and the log.

A listener can never fail a payment (docs/payments.md, "The promise"): by the time an event is
published its change is committed, so a listener that raises is logged — once per listener and
kind of exception, with its traceback — and skipped; the other listeners still hear the event and
the publisher carries on.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from readerhost.daemon.journal import MessageId

logger = logging.getLogger(__name__)


class Topic(enum.StrEnum):
    """What a POS subscribes to (events.subscribe's `topics`)."""

    PAYMENT = "payment"
    READER = "reader"
    DISPLAY = "display"
    QUEUE = "queue"
    SYSTEM = "system"


@dataclass(frozen=True)
class Event:
    topic: Topic
    type: str  # e.g. payment.state, reader.display_message, queue.changed, system.stripe
    data: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]


class EventHub:
    """Fan-out to listeners, each isolated from the others and from the publisher."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        # (listener, exception type) already logged with a traceback -> how often it failed since
        self._failures: dict[tuple[str, type[BaseException]], int] = {}

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as error:  # a listener's bug must not undo or stall a commit
                self._failed(listener, event, error)

    def failures(self) -> dict[str, int]:
        """How often each listener has failed, by 'listener: ExceptionType' (for diagnostics)."""
        return {f"{name}: {kind.__name__}": count for (name, kind), count in self._failures.items()}

    def _failed(self, listener: Listener, event: Event, error: Exception) -> None:
        name = getattr(listener, "__qualname__", None) or repr(listener)
        key = (name, type(error))
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        if count > 1:
            return  # said once with its traceback: the same bug again would flood the journal
        logger.error(
            "event listener %s failed on %s and was skipped (%s: %s); the payment is not affected, "
            "further %s errors of this listener are not logged again",
            name, event.type, type(error).__name__, error, type(error).__name__,
            exc_info=error,
            extra={"journal": {"MESSAGE_ID": MessageId.LISTENER_FAILED, "LISTENER": name}},
        )  # fmt: skip
