"""What the kiosk shows and how its buttons act: the daemon's events in, a Screen and LED pattern out.

The controller keeps the little it needs to know — the payment in front of the customer, the
reader's last prompt, the POS's idle text, whether Stripe answers — and redraws only when the
screen it computes changes. A result (approved, declined, canceled) stays up for a few seconds,
then the idle screen returns. OK confirms a payment awaiting confirmation; Cancel cancels the
payment in front of the customer; holding either button shows the technician screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from readerhost.daemon.payments.deadlines import Deadline
from readerhost.daemon.payments.events import Event
from readerhost.daemon.payments.model import HOLDS_READER, SETTLED, Reason, State

from . import catalog
from .screens import OPTIONS, Screen, render

logger = logging.getLogger(__name__)

RESULT_SHOWN_S = 4.0
TECHNICIAN_SHOWN_S = 10.0
MARKERS = {"emulator": "EMU", "test": "TEST"}


class PanelLike(Protocol):
    width: int
    height: int
    dim_after_s: float
    sleep_after_s: float

    def show(self, image: Any) -> bool: ...

    def tick(self, now: float) -> None: ...

    def close(self) -> None: ...


class ControlsLike(Protocol):
    def led(self, pattern: str) -> None: ...

    def beep(self, kind: str) -> None: ...

    def close(self) -> None: ...


class PaymentActions(Protocol):
    async def confirm(self, payment_id: str) -> Any: ...

    async def cancel(self, payment_id: str, reason: str = ...) -> Any: ...


@dataclass
class _View:
    payment: dict[str, Any] | None = None
    options: tuple[str, ...] = ()
    prompt: str | None = None  # the reader's last display message
    idle_text: tuple[str, ...] = ()
    stripe_reachable: bool = True
    reader_connected: bool = True
    technician: bool = False
    result_until: float = 0.0  # a result screen stays up until then


class UiController:
    def __init__(
        self,
        panel: PanelLike | None,
        controls: ControlsLike | None,
        actions: PaymentActions,
        *,
        mode: str,
        technician_info: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
        reader_connected: bool = True,
    ) -> None:
        self._panel = panel
        self._controls = controls
        self._actions = actions
        self._marker = MARKERS.get(mode)
        self._technician_info = technician_info
        self._clock = clock
        self._view = _View(reader_connected=reader_connected)
        self._timers: list[asyncio.TimerHandle] = []
        self._drew_at: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.screen: Screen | None = None  # the screen shown last (also when no panel is attached)
        self.controls_pattern = "off"  # the status LED's pattern

    # -- inputs -------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        view = self._view
        data = event.data
        if event.type == "payment.state":
            previous = view.payment
            view.payment = data
            if previous is None or previous.get("payment_id") != data.get("payment_id"):
                view.options, view.prompt = (), None
            state = State.of(data.get("state"))
            if state in SETTLED and (previous or {}).get("state") != state:
                view.result_until = self._clock() + RESULT_SHOWN_S
                self._beep_for(state)
            if state is not State.COLLECTING:
                view.prompt = None
        elif event.type == "reader.input_options":
            view.options = tuple(data.get("options", ()))
        elif event.type == "reader.display_message":
            view.prompt = str(data.get("message"))
        elif event.type == "reader.card" and data.get("event") == "card_removed":
            view.prompt = None
        elif event.type == "reader.connected":
            view.reader_connected = True
        elif event.type == "reader.disconnected":
            view.reader_connected = False
        elif event.type == "system.stripe":
            view.stripe_reachable = bool(data.get("reachable"))
        elif event.type == "display.changed":
            view.idle_text = tuple(data.get("lines", ()))
        else:
            return
        self.refresh()

    def on_press(self, button: str) -> None:
        """A button, on the event loop: ok, cancel, ok_held, cancel_held."""
        if button.endswith("_held"):
            self._view.technician = True
            self._view.result_until = self._clock() + TECHNICIAN_SHOWN_S
            self.refresh()
            return
        if self._view.technician:
            self._view.technician = False
            self.refresh()
            return
        payment = self._view.payment or {}
        state, payment_id = State.of(payment.get("state")), payment.get("payment_id")
        if not payment_id:
            return
        if button == "ok" and state is State.AWAITING_CONFIRMATION:
            self._run(self._actions.confirm(payment_id))
        elif button == "cancel" and (state in HOLDS_READER or state is State.DECLINED):
            self._run(self._actions.cancel(payment_id, "requested_by_customer"))

    def _run(self, action: Any) -> None:
        async def guarded() -> None:
            try:
                await action
            except Exception as error:  # a refused request (e.g. the payment moved on) is not a crash
                logger.info("button action not carried out: %s", error)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- output -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Compute the screen and LED pattern; draw only what changed."""
        now = self._clock()
        screen = self._screen(now)
        if screen != self.screen:
            self.screen = screen
            if self._panel is not None and self._panel.show(render(screen, self._panel.width, self._panel.height)):
                self._drew_at = now
        self.controls_pattern = self._led_pattern(screen)
        if self._controls is not None:
            self._controls.led(self.controls_pattern)
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        """Timers for the moments the screen changes by itself: a result expiring, the panel dimming."""
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._view.result_until > now:
            self._timers.append(loop.call_later(self._view.result_until - now, self._expire))
        if self._panel is not None and self._drew_at is not None:
            for after in (self._panel.dim_after_s, self._panel.sleep_after_s):
                if after > 0:
                    at = self._drew_at + after
                    self._timers.append(loop.call_later(max(0.0, at - now) + 0.01, self._panel.tick, at + 0.01))

    def _expire(self) -> None:
        self._view.technician = False
        self.refresh()

    def _screen(self, now: float) -> Screen:
        """The screen for what is going on; every screen carries the mode's marker (TEST, EMU)."""
        return dataclasses.replace(self._unmarked(now), marker=self._marker)

    def _unmarked(self, now: float) -> Screen:
        view = self._view
        if view.technician and view.result_until > now:
            info = self._technician_info()
            ip = ", ".join(local_addresses()) or "none"
            deadline = info.get("deadline")
            due = _local_time(deadline.capture_before) if isinstance(deadline, Deadline) else ""
            return catalog.technician(
                ip, str(info.get("reader", "?")), int(info.get("queue", 0)), str(info.get("version")), due
            )
        payment = view.payment
        state = State.of(payment.get("state")) if payment else None
        if not view.reader_connected and state in (State.CREATING, State.COLLECTING):
            return catalog.reader_disconnected()  # "tap your card" would be a lie while it is gone
        showing = state in HOLDS_READER or state in (State.PROCESSING, State.DECLINED) or view.result_until > now
        if payment is not None and state is not None and showing:
            return self._payment_screen(payment, state)
        if not view.reader_connected:
            return catalog.reader_disconnected()
        if not view.stripe_reachable:
            return catalog.stripe_unreachable()
        return catalog.idle(view.idle_text)

    def _payment_screen(self, payment: dict[str, Any], state: State) -> Screen:
        amount, currency = int(payment.get("amount", 0)), str(payment.get("currency", "usd"))
        card = payment.get("card") or {}
        view = self._view
        if state is State.COLLECTING and view.prompt:
            return catalog.reader_message(view.prompt, amount, currency)
        if state in (State.CREATING, State.COLLECTING):
            return catalog.amount_due(amount, currency, view.options or OPTIONS)
        if state is State.AWAITING_CONFIRMATION:
            brand = str(card.get("brand", "")).capitalize()
            return catalog.confirm(amount, currency, f"{brand} {card.get('last4', '')}".strip() if card else "")
        if state is State.PROCESSING:
            return catalog.processing()
        if state in (State.AUTHORIZED, State.CAPTURING, State.CAPTURED):
            return catalog.approved(amount, currency)
        if state is State.QUEUED_OFFLINE:
            return catalog.offline_queued(amount, currency)
        if state is State.DECLINED:
            decline = payment.get("decline") or {}
            return catalog.declined(str(decline.get("decline_code") or decline.get("code") or ""))
        if state is State.FAILED and (payment.get("error") or {}).get("reason") == Reason.STRIPE_UNAVAILABLE:
            return catalog.stripe_unreachable()  # the customer's wait for Stripe ran out
        if state is State.FAILED:
            return catalog.declined()
        return catalog.canceled()

    def _led_pattern(self, screen: Screen) -> str:
        if screen.kind in ("reader_disconnected", "stripe_unreachable", "declined"):
            return "fast"
        if screen.kind in ("amount_due", "reader_message", "confirm", "processing"):
            return "blink"
        return "steady"

    def _beep_for(self, state: State | None) -> None:
        if self._controls is None:
            return
        if state in (State.AUTHORIZED, State.QUEUED_OFFLINE):
            self._controls.beep("approved")
        elif state in (State.DECLINED, State.FAILED):
            self._controls.beep("declined")

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        try:
            if self._panel is not None:
                self._panel.close()
        finally:  # the pins are released even when the panel fails to close
            if self._controls is not None:
                self._controls.close()


def _local_time(unix: float) -> str:
    """A moment as a technician on site reads it: the kiosk's local time, e.g. "05 Dec 10:00"."""
    return time.strftime("%d %b %H:%M", time.localtime(unix))


def local_addresses() -> list[str]:
    """This box's IPv4 addresses, read from its interfaces (nothing is sent on the network)."""
    import fcntl
    import struct

    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            with contextlib.suppress(OSError):
                request = struct.pack("256s", name.encode()[:15])
                answer = fcntl.ioctl(probe.fileno(), 0x8915, request)  # SIOCGIFADDR
                found.append(socket.inet_ntoa(answer[20:24]))
    return found
