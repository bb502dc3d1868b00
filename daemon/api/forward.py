"""Events to the clients subscribed to their topic, as `event` notifications."""

from __future__ import annotations

import time

from readerhost.daemon.payments.events import Event
from readerhost.daemon.payments.model import rfc3339

from .protocol import notification_line
from .server import ApiServer


class EventForwarder:
    def __init__(self, server: ApiServer, boot_id: str) -> None:
        self._server = server
        self._boot_id = boot_id

    def __call__(self, event: Event) -> None:
        """Hand the event to the server, which numbers it per connection (`seq`)."""
        at = rfc3339(time.time())

        def line_for(seq: int) -> bytes:
            params = {
                "topic": event.topic, "type": event.type, "seq": seq, "boot_id": self._boot_id, "at": at,
                "data": event.data,
            }  # fmt: skip
            return notification_line("event", params)

        self._server.publish(event.topic, line_for)
