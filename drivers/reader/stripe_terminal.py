"""Stripe's smart readers (WisePOS E, S700/S710, and Stripe's simulated readers), driven through
Stripe's API: the reader takes the card and presents it to Stripe itself.

`collect` asks the reader to process the payment's PaymentIntent, then follows the reader's
action by polling (a kiosk cannot receive webhooks) until it ends. A success, or a decline, comes
back as a collected payment method of a reader that CONFIRMS_ITSELF: the daemon then reads the
PaymentIntent, the source of truth, and never confirms it itself. Anything else ends the
collection with a reader error, and the payment can collect again. A cancel stops the reader's
action (bounded in time); if the customer's card went through at that very moment, the daemon's
cancel of the PaymentIntent releases the authorisation.

Why process_payment_intent needs no idempotency key kept in the store: it moves no money. Only
the PaymentIntent's confirmation does, and a PaymentIntent is confirmed at most once whatever
the reader is asked; a fresh key per attempt, after learning what the reader is doing, is safe.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from readerhost.drivers.reader.base import (
    UNREACHED,
    Capability,
    Cart,
    CollectedPaymentMethod,
    Notify,
    ReaderBase,
    ReaderContext,
    ReaderError,
    ReaderListener,
    ReaderState,
)
from readerhost.drivers.settings import Missing, Section, Settings, Text, setting

if TYPE_CHECKING:
    from readerhost.drivers.reader import ReaderSettings

logger = logging.getLogger("readerhost.reader")

POLL_FIRST_S = 0.5  # the first look at the reader's action; the gaps grow from here
POLL_MAX_S = 2.0
_CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")


def _stripe_id(prefix: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not value or (value.startswith(prefix) and _CODE.fullmatch(value)):
            return None
        return f'a Stripe id starting with "{prefix}", or "" for none'

    return check


def _registration_code(value: str) -> str | None:
    if not value or _CODE.fullmatch(value):
        return None
    return 'the code the reader shows (letters, digits, "-" and "_"), or "" for none'


@dataclass(frozen=True)
class StripeTerminalSettings(Settings):
    reader_id: str = setting("", Text(_stripe_id("tmr_")))  # tmr_...: the smart reader at Stripe
    # With no reader_id: register a reader (e.g. simulated-wpe in test mode).
    registration_code: str = setting("", Text(_registration_code))
    location: str = setting("", Text(_stripe_id("tml_")))  # tml_...: the Terminal location of a registered reader


def _needs_a_reader(settings: StripeTerminalSettings) -> Missing | None:
    if settings.reader_id or settings.registration_code:
        return None
    return Missing(
        "reader_id",
        'the Stripe reader needs its id (reader_id = "tmr_...", from the Dashboard), or a registration_code to '
        'register one (registration_code = "simulated-wpe" makes a simulated WisePOS E in test mode)',
    )


SETTINGS = Section("reader.stripe_terminal", StripeTerminalSettings, required=_needs_a_reader)
CAPABILITIES = frozenset({Capability.SHOWS_CART, Capability.CONFIRMS_ITSELF})


def open_reader(settings: StripeTerminalSettings, context: ReaderContext) -> SmartReader:
    if context.terminal_api is None:
        raise ValueError("a Stripe smart reader needs the host's Stripe Terminal API (ReaderContext.terminal_api)")
    return SmartReader(context.terminal_api(), settings, context.reader, context.notify)


@dataclass(frozen=True)
class ReaderView:
    """What the daemon reads of a Terminal Reader object."""

    id: str
    device_type: str
    serial_number: str | None
    label: str | None
    online: bool
    action_type: str | None = None
    action_status: str | None = None  # in_progress | succeeded | failed
    action_intent: str | None = None  # the PaymentIntent of a process_payment_intent action
    failure_code: str | None = None
    failure_message: str | None = None


class TerminalError(Exception):
    """Stripe refused or did not answer; `code` is Stripe's error code (terminal_reader_busy, ...)."""

    def __init__(self, message: str, code: str | None = None, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.unreachable = unreachable


class TerminalApi(Protocol):
    """Stripe's Terminal Readers API (blocking: called in a thread). Raises TerminalError."""

    def retrieve(self, reader_id: str) -> ReaderView: ...

    def register(self, registration_code: str, location: str | None, label: str | None) -> ReaderView: ...

    def process(self, reader_id: str, payment_intent: str, idempotency_key: str) -> ReaderView: ...

    def cancel_action(self, reader_id: str) -> ReaderView: ...

    def show_cart(self, reader_id: str, cart: Cart) -> ReaderView: ...


# Stripe's action failures that mean the customer stopped it at the reader.
_CUSTOMER_CANCELED = ("customer_canceled", "canceled", "cancelled")
# A failure that leaves a decline on the PaymentIntent: the daemon reads it from there.
_DECLINED = ("card_declined",)


class SmartReader(ReaderBase):
    driver = "stripe_terminal"
    capabilities = CAPABILITIES

    def __init__(
        self, api: TerminalApi, settings: StripeTerminalSettings, reader: ReaderSettings, notify: Notify
    ) -> None:
        self._api = api
        self._settings = settings
        self._card_wait_s = reader.card_wait_s
        self._cancel_confirm_s = reader.cancel_confirm_s
        self._notify = notify
        self._reader: ReaderView | None = None
        self._reader_id = settings.reader_id
        self._online: bool | None = None  # None: not known yet
        self._last_error = "not reached yet"
        self.state = ReaderState.CONNECTING

    # -- lifecycle and status ---------------------------------------------------------------------

    async def start(self) -> None:
        """Look the reader up (or register it) once; a failure is reported, not fatal."""
        try:
            if not self._reader_id:
                settings = self._settings
                view = await asyncio.to_thread(
                    self._api.register, settings.registration_code, settings.location or None, "readerhost"
                )
                self._reader_id = view.id
                logger.warning(
                    'registered the Stripe reader %s (%s): put reader_id = "%s" in [reader.stripe_terminal] so '
                    "that a restart uses it instead of registering again",
                    view.id,
                    view.device_type,
                    view.id,
                )
            else:
                view = await asyncio.to_thread(self._api.retrieve, self._reader_id)
        except TerminalError as error:
            if error.unreachable:
                self._went_offline(f"cannot reach Stripe to look the reader up: {error.message}")
            elif self._reader_id:
                self._went_offline(f"Stripe refused the reader {self._reader_id}: {error.message}")
            else:
                self._went_offline(f"cannot register a Stripe reader: {error.message}")
            return
        self._seen(view)

    async def stop(self) -> None:
        pass  # nothing runs between collections: there is no link to keep up

    def unavailable(self) -> str | None:
        if not self._reader_id:
            return f"the Stripe reader is not registered ({self._last_error})"
        return None  # Stripe decides at each payment: an offline reader is said so then

    def status(self) -> dict[str, Any]:
        reader = self._reader
        return {
            "state": self.state,
            "id": reader.id if reader else (self._reader_id or None),
            "model": reader.device_type if reader else None,
            "serial": reader.serial_number if reader else None,
            "battery": None,
            "link": {
                "transport": "stripe",
                "reader": self._reader_id or None,
                "connected": bool(self._online),
                "last_error": None if self._online else self._last_error,
            },
        }

    def _seen(self, view: ReaderView) -> None:
        self._reader = view
        if view.online:
            self._came_online()
        else:
            self._went_offline("the reader is offline at Stripe (no signal for 2 minutes: power, network)")

    def _came_online(self) -> None:
        if self.state in UNREACHED:
            self.state = ReaderState.READY
        if self._online is not True:
            reason = "connected" if self._online is None else "reconnected"
            self._online = True
            self._notify("reader.connected", self._identity(reason))

    def _went_offline(self, why: str) -> None:
        self._last_error = why
        self.state = ReaderState.DISCONNECTED
        if self._online is not False:
            self._online = False
            self._notify("reader.disconnected", self._identity(why))

    def _identity(self, reason: str) -> dict[str, Any]:
        reader = self._reader
        return {
            "id": reader.id if reader else self._reader_id or None,
            "model": reader.device_type if reader else None,
            "reason": reason,
        }

    async def show_cart(self, cart: Cart) -> None:
        """Show the cart on the reader's screen (between payments: it would replace a collection)."""
        if not self._reader_id:
            raise ReaderError("READER_UNAVAILABLE", f"the Stripe reader is not registered ({self._last_error})")
        try:
            view = await asyncio.to_thread(self._api.show_cart, self._reader_id, cart)
        except TerminalError as error:
            if error.code == "terminal_reader_offline":
                self._went_offline(f"the reader is offline at Stripe: {error.message}")
            raise ReaderError("READER_UNAVAILABLE", f"the reader did not show the cart: {error.message}") from None
        self._seen(view)

    # -- collecting -------------------------------------------------------------------------------

    async def collect(
        self,
        amount: int,
        currency: str,
        listener: ReaderListener,
        *,
        payment_intent: str | None = None,
        tipping: int | None = None,
    ) -> CollectedPaymentMethod:
        if payment_intent is None:
            raise ReaderError("READER_UNAVAILABLE", "a Stripe reader needs the PaymentIntent, which is not created yet")
        if not self._reader_id:
            raise ReaderError("READER_UNAVAILABLE", f"the Stripe reader is not registered ({self._last_error})")
        self.state = ReaderState.COLLECTING
        try:
            await self._start_processing(payment_intent)
            listener.display_message("follow_reader")
            try:
                async with asyncio.timeout(self._card_wait_s):
                    view = await self._follow(payment_intent)
            except TimeoutError:
                await self._cancel_action(payment_intent)
                raise ReaderError(
                    "card_read_timed_out", f"no card was presented within {self._card_wait_s:g} s"
                ) from None
            except asyncio.CancelledError:
                await self._cancel_action(payment_intent)
                raise
            return self._result(view)
        finally:
            if self.state in (ReaderState.COLLECTING, ReaderState.CANCELING):
                self.state = ReaderState.READY

    async def process(self, payment_intent: str, listener: ReaderListener) -> None:
        """The reader's collect already confirmed the PaymentIntent (process_payment_intent): nothing
        is left to ask; the host reads the outcome from the PaymentIntent."""

    async def _start_processing(self, payment_intent: str) -> None:
        """Ask the reader to process the PaymentIntent; learn the truth before asking again."""
        for attempt in range(3):
            key = f"readerhost-process-{payment_intent}-{uuid.uuid4().hex[:12]}"
            try:
                view = await asyncio.to_thread(self._api.process, self._reader_id, payment_intent, key)
            except TerminalError as error:
                if error.code == "terminal_reader_offline":
                    self._went_offline(f"the reader is offline at Stripe: {error.message}")
                    raise ReaderError("READER_UNAVAILABLE", "the Stripe reader is offline") from None
                if error.code == "intent_invalid_state":
                    raise ReaderError(
                        "READER_UNAVAILABLE", f"the PaymentIntent cannot be processed: {error.message}"
                    ) from None
                if error.code not in ("terminal_reader_busy", "terminal_reader_timeout") and not error.unreachable:
                    raise ReaderError(
                        "READER_UNAVAILABLE", f"Stripe refused the reader's action: {error.message}"
                    ) from None
                # Busy, timed out or no answer: the reader may be on it already (a timeout is often
                # a false negative). Look before asking again.
                current = await self._look()
                if current.action_intent == payment_intent and current.action_status == "in_progress":
                    return
                if error.code == "terminal_reader_busy" and attempt == 0:
                    logger.warning("the Stripe reader is busy with another action: canceling it")
                    await self._cancel_action(current.action_intent)
                continue
            self._seen(view)
            return
        raise ReaderError("READER_UNAVAILABLE", "the Stripe reader would not take the payment (busy or not answering)")

    async def _follow(self, payment_intent: str) -> ReaderView:
        """Poll the reader's action until it ends (gaps from POLL_FIRST_S growing to POLL_MAX_S)."""
        gap = POLL_FIRST_S
        while True:
            await asyncio.sleep(gap)
            view = await self._look()
            if view.action_intent != payment_intent or view.action_type != "process_payment_intent":
                raise ReaderError("READER_UNAVAILABLE", "the reader's action was replaced by another")
            if view.action_status != "in_progress":
                return view
            gap = min(POLL_MAX_S, gap * 1.5)

    async def _look(self) -> ReaderView:
        try:
            view = await asyncio.to_thread(self._api.retrieve, self._reader_id)
        except TerminalError as error:
            if error.unreachable:
                raise ReaderError("READER_UNAVAILABLE", f"Stripe cannot be reached: {error.message}") from None
            raise ReaderError("READER_UNAVAILABLE", f"cannot read the reader's state: {error.message}") from None
        self._seen(view)
        return view

    def _result(self, view: ReaderView) -> CollectedPaymentMethod:
        if view.action_status == "succeeded":
            return CollectedPaymentMethod("", "", "", "")
        code = view.failure_code or "failed"
        if code in _DECLINED:
            return CollectedPaymentMethod("", "", "", "")  # the decline is on the PaymentIntent
        if code in _CUSTOMER_CANCELED:
            raise ReaderError("canceled_on_reader", "the customer canceled on the reader")
        raise ReaderError(code, view.failure_message or f"the reader's action failed ({code})")

    async def _cancel_action(self, payment_intent: str | None) -> None:
        """Stop the reader's action, within cancel_confirm_s; a failure is logged, never raised."""
        self.state = ReaderState.CANCELING
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._cancel_confirm_s):
                await asyncio.to_thread(self._api.cancel_action, self._reader_id)
        except (TimeoutError, TerminalError) as error:
            logger.warning(
                "could not stop the Stripe reader's action (PaymentIntent %s) within %.1f s: %s",
                payment_intent,
                time.monotonic() - started,
                getattr(error, "message", "no answer"),
            )
