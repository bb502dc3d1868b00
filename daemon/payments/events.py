"""Events the payment core announces after each committed change, for the API, the UI and the log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    topic: str  # payment, reader, queue, system
    type: str  # e.g. payment.state, reader.display_message, queue.changed, system.stripe
    data: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]


class EventHub:
    """Fan-out to listeners; a listener that fails is logged by the caller's logger and skipped."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)
