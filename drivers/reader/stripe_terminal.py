"""Stripe's smart readers (WisePOS E, S700/S710, and Stripe's simulated readers), driven through
Stripe's API: the reader takes the card and presents it to Stripe itself.

Two flows (`[reader.stripe_terminal] flow`):

- `two_step` (the default): `collect` has the reader collect a payment method for the payment's
  PaymentIntent (`collect_payment_method`) and returns the card it read (brand, last4, read method,
  wallet, network: the kiosk may show it and ask for confirmation); `process` then has the reader
  confirm the PaymentIntent (`confirm_payment_intent`).
- `process`: `collect` has the reader collect and confirm at once (`process_payment_intent`); a
  success, or a decline, comes back without the card, and `process` has nothing left to do.

Each action is followed by polling (a kiosk cannot receive webhooks) until it ends. The daemon
then reads the PaymentIntent, the source of truth, and never confirms it itself. A collect that
ends otherwise is a reader error, and the payment can collect again. A cancel stops the reader's
action (bounded in time); if the customer's card went through at that very moment, the daemon's
cancel of the PaymentIntent releases the authorisation.

Why the reader's actions need no idempotency key kept in the store: a collect moves no money, and
a PaymentIntent is confirmed at most once whatever the reader is asked (Stripe refuses to confirm
one that is not `requires_confirmation`). Before asking again, the driver looks at what the reader
is doing (a timeout is often a false negative): its own action in progress is followed, never sent
again; a fresh key per ask, after that look, is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from readerhost.drivers.reader.base import (
    REFUND_REFUSED,
    UNREACHED,
    Capability,
    Cart,
    CollectedPaymentMethod,
    FixedByConfiguration,
    Location,
    Notify,
    ReaderBase,
    ReaderContext,
    ReaderError,
    ReaderListener,
    ReaderState,
    RefundOrder,
    RefundOutcomeUnknown,
)
from readerhost.drivers.settings import Choice, Number, Section, Settings, Text, setting

if TYPE_CHECKING:
    from readerhost.drivers.reader import ReaderSettings

logger = logging.getLogger("readerhost.reader")

POLL_FIRST_S = 0.5  # the first look at the reader's action; the gaps grow from here
POLL_MAX_S = 2.0
FLOWS = ("two_step", "process")
COLLECT = "collect_payment_method"
CONFIRM = "confirm_payment_intent"
PROCESS = "process_payment_intent"
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
    # How often an idle reader is looked up at Stripe, so that one gone offline is noticed between payments.
    health_check_s: float = setting(60.0, Number(above=0))
    # two_step: collect_payment_method, then confirm_payment_intent (the card can be shown and confirmed
    # between the two); process: process_payment_intent, both in one action.
    flow: str = setting("two_step", Choice(*FLOWS))


SETTINGS = Section("reader.stripe_terminal", StripeTerminalSettings)
CAPABILITIES = frozenset(
    {
        Capability.SHOWS_CART,
        Capability.CONFIRMS_ITSELF,
        Capability.TAKES_TIPS,
        Capability.REGISTERS,
        Capability.REFUNDS_AT_READER,
    }
)


def open_reader(settings: StripeTerminalSettings, context: ReaderContext) -> SmartReader:
    if context.terminal_api is None:
        raise ValueError("a Stripe smart reader needs the host's Stripe Terminal API (ReaderContext.terminal_api)")
    return SmartReader(
        context.terminal_api(),
        settings,
        context.reader,
        context.notify,
        registrations=context.registrations,
        stripe_turn=context.stripe_turn,
    )


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
    action_intent: str | None = None  # the PaymentIntent of a payment action
    failure_code: str | None = None
    failure_message: str | None = None
    collected: CollectedPaymentMethod | None = None  # what a collect_payment_method action read
    action_refund_id: str | None = None  # the refund_id in a refund_payment action's metadata


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

    def locations(self) -> list[Location]: ...

    def process(self, reader_id: str, payment_intent: str, idempotency_key: str, tipping: int | None) -> ReaderView: ...

    def collect(self, reader_id: str, payment_intent: str, idempotency_key: str, tipping: int | None) -> ReaderView: ...

    def confirm(self, reader_id: str, payment_intent: str, idempotency_key: str) -> ReaderView: ...

    def cancel_action(self, reader_id: str) -> ReaderView: ...

    def show_cart(self, reader_id: str, cart: Cart) -> ReaderView: ...

    def refund(self, reader_id: str, order: RefundOrder) -> ReaderView: ...


class Registrations(Protocol):
    """Where the host keeps the reader a registration code made (its store), to use it again at the
    next start instead of registering another."""

    def recall(self) -> str | None:
        """The reader id kept, if any."""
        ...

    def keep(self, reader_id: str, location: str | None) -> None:
        """Keep `reader_id` (durably: it is used at the next start)."""
        ...


# Stripe's action failures that mean the customer stopped it at the reader.
_CUSTOMER_CANCELED = ("customer_canceled", "canceled", "cancelled")
# A failure that leaves a decline on the PaymentIntent: the daemon reads it from there.
_DECLINED = ("card_declined",)
_DOING = {COLLECT: "collected", CONFIRM: "confirmed", PROCESS: "processed"}
_WHAT = {COLLECT: "card", CONFIRM: "confirmation", PROCESS: "payment"}


class SmartReader(ReaderBase):
    driver = "stripe_terminal"
    capabilities = CAPABILITIES

    def __init__(
        self,
        api: TerminalApi,
        settings: StripeTerminalSettings,
        reader: ReaderSettings,
        notify: Notify,
        *,
        registrations: Registrations | None = None,
        stripe_turn: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._api = api
        self._settings = settings
        self._card_wait_s = reader.card_wait_s
        self._cancel_confirm_s = reader.cancel_confirm_s
        self._notify = notify
        self._registrations = registrations
        self._stripe_turn = stripe_turn
        self._reader: ReaderView | None = None
        self._reader_id = settings.reader_id
        self._online: bool | None = None  # None: not known yet
        self._last_error = "not reached yet"
        self._health_check: asyncio.Task[None] | None = None
        self.state = ReaderState.CONNECTING

    # -- lifecycle and status ---------------------------------------------------------------------

    async def start(self) -> None:
        """Find the reader (the configured reader_id, else the one registered before, else register
        one with the registration code) and look it up; a failure is reported, not fatal. Then look
        it up again every health_check_s while idle."""
        if not self._reader_id and self._registrations is not None:
            self._reader_id = self._registrations.recall() or ""
        try:
            if self._reader_id:
                view = await asyncio.to_thread(self._api.retrieve, self._reader_id)
            elif self._settings.registration_code:
                view = await self._register(self._settings.registration_code, self._settings.location or None, None)
            else:
                self._last_error = (
                    "no reader: register one (readerhostctl reader register CODE --location tml_...), "
                    'or set reader_id = "tmr_..." or registration_code in [reader.stripe_terminal]'
                )
                logger.warning("the Stripe reader is not registered: %s", self._last_error)
                view = None
        except TerminalError as error:
            if error.unreachable:
                self._went_offline(f"cannot reach Stripe to look the reader up: {error.message}")
            elif self._reader_id:
                self._went_offline(f"Stripe refused the reader {self._reader_id}: {error.message}")
            else:
                self._went_offline(f"cannot register a Stripe reader: {error.message}")
            view = None
        if view is not None:
            self._seen(view)
        self._health_check = asyncio.create_task(self._check_health(), name="stripe-reader-health")

    async def stop(self) -> None:
        task, self._health_check = self._health_check, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def unavailable(self) -> str | None:
        if not self._reader_id:
            return f"the Stripe reader is not registered ({self._last_error})"
        return None  # Stripe decides at each payment: an offline reader is said so then

    async def _check_health(self) -> None:
        """Every health_check_s, look an idle reader up at Stripe (in the host's pace): one gone
        offline is said so (reader.disconnected) before a customer finds out, and one back is
        reconnected. A collection's own polls watch the reader while it collects."""
        while True:
            await asyncio.sleep(self._settings.health_check_s)
            if not self._reader_id or self.state in (ReaderState.COLLECTING, ReaderState.CANCELING):
                continue
            if self._stripe_turn is not None:
                await self._stripe_turn()
            reader_id = self._reader_id
            try:
                view = await asyncio.to_thread(self._api.retrieve, reader_id)
            except TerminalError as error:
                if reader_id != self._reader_id:
                    continue  # another reader was registered meanwhile: this says nothing of it
                if error.unreachable:
                    self._went_offline(f"cannot reach Stripe to look the reader up: {error.message}")
                else:
                    self._went_offline(f"Stripe refused the reader {reader_id}: {error.message}")
                continue
            if view.id == self._reader_id:
                self._seen(view)

    async def register(self, registration_code: str, location: str | None, label: str | None) -> None:
        """Register a reader with the code it shows and use it from now on; kept for the next start.
        The configured reader_id, when set, wins: registering another is refused."""
        if self._settings.reader_id:
            raise FixedByConfiguration(
                f"[reader.stripe_terminal] reader_id = {self._settings.reader_id!r} is configured and wins at "
                "every start: remove it from the configuration to use a registered reader"
            )
        try:
            view = await self._register(registration_code, location, label)
        except TerminalError as error:
            raise ReaderError("READER_UNAVAILABLE", f"Stripe did not register the reader: {error.message}") from None
        self._online = None  # another reader: its first look says connected, not reconnected
        self._seen(view)

    async def _register(self, registration_code: str, location: str | None, label: str | None) -> ReaderView:
        view = await asyncio.to_thread(self._api.register, registration_code, location, label or "readerhost")
        self._reader_id = view.id
        if self._registrations is not None:
            self._registrations.keep(view.id, location)
        logger.info(
            "registered the Stripe reader %s (%s) in location %s; it is kept in the store and used at every start",
            view.id, view.device_type, location or "(none)",
        )  # fmt: skip
        return view

    async def locations(self) -> list[Location]:
        try:
            return await asyncio.to_thread(self._api.locations)
        except TerminalError as error:
            raise ReaderError("READER_UNAVAILABLE", f"Stripe did not list the locations: {error.message}") from None

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
        metadata: Mapping[str, str] | None = None,
    ) -> CollectedPaymentMethod:
        if payment_intent is None:
            raise ReaderError("READER_UNAVAILABLE", "a Stripe reader needs the PaymentIntent, which is not created yet")
        if not self._reader_id:
            raise ReaderError("READER_UNAVAILABLE", f"the Stripe reader is not registered ({self._last_error})")
        action = COLLECT if self._settings.flow == "two_step" else PROCESS
        self.state = ReaderState.COLLECTING
        try:
            await self._start(action, payment_intent, tipping)
            listener.display_message("follow_reader")
            try:
                async with asyncio.timeout(self._card_wait_s):
                    view = await self._follow(action, payment_intent)
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
        """two_step: have the reader confirm the PaymentIntent it collected a card for, and follow it
        until it ends (a decline too: it is on the PaymentIntent). With flow = "process" the collect
        already confirmed: nothing is left to ask."""
        if self._settings.flow != "two_step":
            return
        # Nothing for the customer to do (the card was read): the kiosk shows that it is processing.
        try:
            async with asyncio.timeout(self._card_wait_s):
                # Truth first: a confirm of this PaymentIntent still in progress (asked before a lost
                # answer) is followed, not asked again.
                current = await self._look()
                if not (
                    current.action_type == CONFIRM
                    and current.action_intent == payment_intent
                    and current.action_status == "in_progress"
                ):
                    await self._start(CONFIRM, payment_intent, None)
                await self._follow(CONFIRM, payment_intent)
        except TimeoutError:
            raise ReaderError(
                "confirm_timed_out", f"the reader's confirm did not end within {self._card_wait_s:g} s"
            ) from None

    async def _start(self, action: str, payment_intent: str, tipping: int | None) -> None:
        """Ask the reader for `action` on the PaymentIntent; learn the truth before asking again."""
        for attempt in range(3):
            key = f"readerhost-{action}-{payment_intent}-{uuid.uuid4().hex[:12]}"
            try:
                view = await asyncio.to_thread(self._send, action, payment_intent, key, tipping)
            except TerminalError as error:
                if error.code == "terminal_reader_offline":
                    self._went_offline(f"the reader is offline at Stripe: {error.message}")
                    raise ReaderError("READER_UNAVAILABLE", "the Stripe reader is offline") from None
                if error.code == "intent_invalid_state" and action == COLLECT and await self._collected(payment_intent):
                    return  # the card was collected after the daemon lost sight of it: read it from the reader
                if error.code == "intent_invalid_state":
                    raise ReaderError(
                        "READER_UNAVAILABLE", f"the PaymentIntent cannot be {_DOING[action]}: {error.message}"
                    ) from None
                if error.code not in ("terminal_reader_busy", "terminal_reader_timeout") and not error.unreachable:
                    raise ReaderError(
                        "READER_UNAVAILABLE", f"Stripe refused the reader's action: {error.message}"
                    ) from None
                # Busy, timed out or no answer: the reader may be on it already (a timeout is often
                # a false negative). Look before asking again.
                current = await self._look()
                ours = current.action_type == action and current.action_intent == payment_intent
                if ours and (current.action_status == "in_progress" or action == CONFIRM):
                    return  # followed, never sent again (a confirm that ended is read from the PaymentIntent)
                if current.action_status == "in_progress" and current.action_type == CONFIRM:
                    # A card being confirmed must not be cut off: the POS is told the reader is busy.
                    raise ReaderError(
                        "READER_UNAVAILABLE", "the Stripe reader is busy confirming another payment"
                    ) from None
                if error.code == "terminal_reader_busy" and attempt == 0 and action != CONFIRM:
                    logger.warning("the Stripe reader is busy with another action: canceling it")
                    await self._cancel_action(current.action_intent)
                continue
            self._seen(view)
            return
        raise ReaderError(
            "READER_UNAVAILABLE", f"the Stripe reader would not take the {_WHAT[action]} (busy or not answering)"
        )

    async def _collected(self, payment_intent: str) -> bool:
        """Whether the reader's last action collected a card for this PaymentIntent (which then no
        longer takes another: a collect followed while Stripe could not be reached succeeded meanwhile)."""
        current = await self._look()
        return (
            current.action_type == COLLECT
            and current.action_intent == payment_intent
            and current.action_status == "succeeded"
        )

    def _send(self, action: str, payment_intent: str, key: str, tipping: int | None) -> ReaderView:
        if action == COLLECT:
            return self._api.collect(self._reader_id, payment_intent, key, tipping)
        if action == CONFIRM:
            return self._api.confirm(self._reader_id, payment_intent, key)
        return self._api.process(self._reader_id, payment_intent, key, tipping)

    async def _follow(self, action: str, payment_intent: str) -> ReaderView:
        """Poll the reader's action until it ends (gaps from POLL_FIRST_S growing to POLL_MAX_S)."""
        gap = POLL_FIRST_S
        while True:
            await asyncio.sleep(gap)
            view = await self._look()
            if view.action_intent != payment_intent or view.action_type != action:
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
        if view.action_status == "succeeded" and view.action_type == COLLECT:
            if view.collected is None:
                raise ReaderError("READER_UNAVAILABLE", "the reader collected a card but Stripe did not say which")
            return view.collected
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

    # -- refunding at the reader ----------------------------------------------------------------

    async def refund(self, order: RefundOrder, listener: ReaderListener) -> None:
        """refund_payment with the card presented; the reader's action followed until it ends."""
        if not self._reader_id:
            raise ReaderError("READER_UNAVAILABLE", f"the Stripe reader is not registered ({self._last_error})")
        self.state = ReaderState.COLLECTING
        try:
            await self._start_refund(order)
            listener.display_message("follow_reader")
            try:
                async with asyncio.timeout(self._card_wait_s):
                    view = await self._follow_refund(order)
            except TimeoutError:
                await self._cancel_action(order.payment_intent)
                raise ReaderError(
                    "card_read_timed_out", f"no card was presented within {self._card_wait_s:g} s"
                ) from None
            except asyncio.CancelledError:
                await self._cancel_action(order.payment_intent)
                raise
            if view.action_status != "succeeded":
                code = view.failure_code or "failed"
                if code in _CUSTOMER_CANCELED:
                    raise ReaderError("canceled_on_reader", "the customer canceled the refund on the reader")
                raise ReaderError(code, view.failure_message or f"the reader's refund failed ({code})")
        finally:
            if self.state in (ReaderState.COLLECTING, ReaderState.CANCELING):
                self.state = ReaderState.READY

    async def _start_refund(self, order: RefundOrder) -> None:
        """Ask for refund_payment, always under the order's one key: a request that reached Stripe
        before (a restart, a lost answer) is answered again, never made twice. An action of this
        refund already under way is followed instead. When Stripe will not say whether it took the
        request, RefundOutcomeUnknown: the refund may still be made."""
        if self._refunding(await self._look_at_refund(), order):
            return
        gap = POLL_FIRST_S
        for _ in range(5):
            try:
                view = await asyncio.to_thread(self._api.refund, self._reader_id, order)
            except TerminalError as error:
                if error.code == "terminal_reader_offline":
                    self._went_offline(f"the reader is offline at Stripe: {error.message}")
                    raise ReaderError("READER_UNAVAILABLE", "the Stripe reader is offline") from None
                if error.code == "terminal_reader_busy":
                    raise ReaderError("BUSY", "the Stripe reader is busy with another action") from None
                if error.code not in ("terminal_reader_timeout", "idempotency_key_in_use") and not error.unreachable:
                    raise ReaderError(
                        REFUND_REFUSED, f"Stripe refused the refund at the reader: {error.message}"
                    ) from None
                # Timed out, in flight or no answer: the reader may be on it already. Look before asking again.
                await asyncio.sleep(gap)
                gap *= 2
                if self._refunding(await self._look_at_refund(), order):
                    return
                continue
            self._seen(view)
            return
        raise RefundOutcomeUnknown("Stripe did not say whether the reader took the refund")

    async def _follow_refund(self, order: RefundOrder) -> ReaderView:
        """Poll the reader's refund action until it ends."""
        gap = POLL_FIRST_S
        while True:
            await asyncio.sleep(gap)
            view = await self._look_at_refund()
            if view.action_type != "refund_payment" or view.action_refund_id != order.refund_id:
                raise ReaderError("READER_UNAVAILABLE", "the reader's refund action was replaced by another")
            if view.action_status != "in_progress":
                return view
            gap = min(POLL_MAX_S, gap * 1.5)

    async def _look_at_refund(self) -> ReaderView:
        """The reader as Stripe has it; not knowing it leaves a refund's fate unknown."""
        try:
            return await self._look()
        except ReaderError as error:
            raise RefundOutcomeUnknown(error.message) from None

    @staticmethod
    def _refunding(view: ReaderView, order: RefundOrder) -> bool:
        return (
            view.action_type == "refund_payment"
            and view.action_refund_id == order.refund_id
            and view.action_status == "in_progress"
        )
