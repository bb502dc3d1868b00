"""display.show: the lines a POS puts on the kiosk's idle screen, for a while or until replaced.

Kept here whether or not a panel is attached: subscribed clients hear `display.changed` either way,
and the screen (daemon/ui) shows the lines when it is idle."""

from __future__ import annotations

import asyncio

from .payments.events import Event, EventHub, Topic


class DisplayText:
    def __init__(self, events: EventHub) -> None:
        self._events = events
        self._lines: list[str] = []
        self._expiry: asyncio.TimerHandle | None = None

    def show_text(self, lines: list[str], ttl_s: float | None) -> None:
        """Show `lines` (none: the plain idle screen), for `ttl_s` seconds or until replaced."""
        self._lines = list(lines)
        self.close()
        if ttl_s is not None:
            self._expiry = asyncio.get_running_loop().call_later(ttl_s, self.show_text, [], None)
        self._events.publish(Event(Topic.DISPLAY, "display.changed", {"lines": list(self._lines)}))

    def close(self) -> None:
        """Forget a pending expiry (at stop, or when the text is replaced)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
