"""A card reader that speaks the reader link protocol over some transport (serial, BLE).

It keeps the link up by itself: it connects, says HELLO, and after any loss reconnects with
backoff, reporting each connection and loss through `notify`. A collection in progress when
the link drops ends with a reader error (the payment stays collectable again); a cancel is
confirmed by the device within `cancel_confirm_s`, or the link is reset, whose HELLO stops the
device — so a cancel always completes, and the wait for a card is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from readerhost.drivers.reader.base import (
    CollectedPaymentMethod,
    Notify,
    ReaderBase,
    ReaderContext,
    ReaderError,
    ReaderListener,
    ReaderState,
)

from . import CAPABILITIES
from .codec import Message, MessageError, MessageType
from .session import LinkTimings, Session
from .transport import LinkLost, LinkUnavailable, Transport

logger = logging.getLogger("readerhost.reader")

PROTOCOL_VERSIONS = [1]
HOST_GRACE_S = 5.0  # the host's own bound on a collection is the device's wait_s plus this
LOW_BATTERY = 15


@dataclass(frozen=True)
class LinkSettings:
    card_wait_s: int = 60
    cancel_confirm_s: float = 2.0
    hello_timeout_s: float = 3.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    timings: LinkTimings = field(default_factory=LinkTimings)


class _Incompatible(Exception):
    pass


@dataclass
class _Collection:
    number: int
    listener: ReaderListener
    result: asyncio.Future[CollectedPaymentMethod]
    canceling: bool = False
    canceled: asyncio.Future[None] | None = None


def open_link_reader(transport: Transport, context: ReaderContext) -> LinkReader:
    """The link reader over `transport`, with the [reader] settings the serial and BLE drivers share."""
    reader = context.reader
    settings = LinkSettings(
        card_wait_s=reader.card_wait_s, cancel_confirm_s=reader.cancel_confirm_s, backoff_max_s=reader.reconnect_max_s
    )
    return LinkReader(transport, settings, context.notify, context.host)


class LinkReader(ReaderBase):
    capabilities = CAPABILITIES

    def __init__(self, transport: Transport, settings: LinkSettings, notify: Notify, host: str = "readerhost") -> None:
        self.driver = str(transport.describe()["transport"])  # serial, ble
        self._transport = transport
        self._settings = settings
        self._notify = notify
        self._host = host
        self._session: Session | None = None
        self._identity: dict[str, Any] = {}
        self._battery: int | None = None
        self._charging = False
        self._welcome: asyncio.Future[Message] | None = None
        self._collection: _Collection | None = None
        self._numbers = itertools.count(1)
        self._supervisor: asyncio.Task[None] | None = None
        self._down_reason = "not connected yet"
        self._connected_since: float | None = None
        self._connections = 0
        self._gate = asyncio.Lock()  # one collection (or the cancel ending one) at a time
        self.state = ReaderState.CONNECTING

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="reader link")

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None

    def status(self) -> dict[str, Any]:
        link = self._transport.describe()
        link.update(
            connected=self._session is not None,
            connected_since=self._connected_since,
            connections=self._connections,
            last_error=None if self._session is not None else self._down_reason,
        )
        return {
            "state": self.state,
            "id": self._identity.get("serial"),
            "model": self._identity.get("model"),
            "serial": self._identity.get("serial"),
            "firmware": self._identity.get("firmware"),
            "battery": self._battery,
            "charging": self._charging,
            "link": link,
        }

    def unavailable(self) -> str | None:
        if self._session is None:
            return f"the reader is not connected ({self._down_reason})"
        return None

    # -- keeping the link up ----------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        last_logged = ""
        while True:
            try:
                connection = await self._transport.connect()
            except LinkUnavailable as error:
                self._down_reason = error.reason
                if error.reason != last_logged:  # say it once, not at every attempt
                    logger.warning("reader %s unavailable: %s; retrying", self._where(), error.reason)
                    last_logged = error.reason
                await asyncio.sleep(self._backoff(failures))
                failures += 1
                continue
            try:
                reason = await self._serve(connection)
            except Exception:  # a bug of ours must not end reconnection for good
                logger.exception("reader link: failed serving the connection")
                reason = "an internal error in the daemon (see the log)"
            failures = 0 if reason is None else failures + 1
            if reason is not None and reason != last_logged:  # reached but unusable: said once too
                logger.warning("reader %s: %s; retrying", self._where(), reason)
                last_logged = reason
            await asyncio.sleep(self._backoff(failures) if failures else self._settings.backoff_min_s)

    async def _serve(self, connection: Any) -> str | None:
        """One connection, from HELLO to loss. The reason it could not be used, or None if it was."""
        loop = asyncio.get_running_loop()
        session = Session(connection, self._deliver, self._settings.timings, self._malformed)
        running = asyncio.create_task(session.run())
        self._welcome = loop.create_future()
        usable = False
        reason = "the link closed"
        try:
            try:
                await session.send(MessageType.HELLO, {"versions": PROTOCOL_VERSIONS, "host": self._host[:64]})
                # asyncio.timeout, not wait_for, here and below: in 3.11 wait_for can swallow a cancel
                # that arrives with the result, and a stopping daemon must be able to stop this task.
                async with asyncio.timeout(self._settings.hello_timeout_s):
                    welcome = await asyncio.shield(self._welcome)
            except TimeoutError:
                raise LinkLost("no WELCOME in answer to HELLO") from None
            self._up(session, welcome)
            usable = True
            await running
        except (LinkLost, _Incompatible) as error:
            reason = str(error)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, LinkLost):
                await running
            with contextlib.suppress(Exception):
                await connection.close()
        self._down(reason, was_up=usable)
        return None if usable else reason

    def _up(self, session: Session, welcome: Message) -> None:
        body = welcome.body
        self._identity = {k: body[k] for k in ("model", "serial", "firmware")}
        self._battery = body.get("battery")
        self._charging = bool(body.get("charging", False))
        self._session = session
        self._connections += 1
        self._connected_since = time.time()
        self.state = ReaderState.READY
        reason = "connected" if self._connections == 1 else "reconnected"
        self._notify("reader.connected", {"id": body["serial"], "model": body["model"], "reason": reason})

    def _down(self, reason: str, was_up: bool) -> None:
        self._session = None
        self._connected_since = None
        self._down_reason = reason
        self.state = ReaderState.DISCONNECTED
        collection = self._collection
        if collection is not None and not collection.result.done():
            collection.result.set_exception(
                ReaderError("READER_UNAVAILABLE", f"the reader's link was lost during the collection ({reason})")
            )
        if collection is not None and collection.canceled is not None and not collection.canceled.done():
            collection.canceled.set_result(None)  # the next HELLO resets the device: the cancel holds
        if was_up:
            self._notify(
                "reader.disconnected",
                {"id": self._identity.get("serial"), "model": self._identity.get("model"), "reason": reason},
            )

    def _backoff(self, failures: int) -> float:
        return float(min(self._settings.backoff_max_s, self._settings.backoff_min_s * 2 ** min(failures, 16)))

    def _where(self) -> str:
        link = self._transport.describe()
        return " ".join(str(v) for v in link.values() if v is not None)

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
        async with self._gate:
            session = self._session
            if session is None:
                raise ReaderError("READER_UNAVAILABLE", f"the reader is not connected ({self._down_reason})")
            loop = asyncio.get_running_loop()
            number = next(self._numbers)
            collection = _Collection(number, listener, loop.create_future())
            self._collection = collection
            self.state = ReaderState.COLLECTING
            wait_s = self._settings.card_wait_s
            try:
                try:
                    await session.send(
                        MessageType.COLLECT,
                        {"collection": number, "amount": amount, "currency": currency, "wait_s": wait_s},
                    )
                    async with asyncio.timeout(wait_s + HOST_GRACE_S):
                        return await asyncio.shield(collection.result)
                except LinkLost as error:
                    raise ReaderError("READER_UNAVAILABLE", f"the reader's link was lost ({error.reason})") from None
                except TimeoutError:
                    await self._cancel_on_device(session, collection)
                    raise ReaderError("card_read_timed_out", f"no card was presented within {wait_s} s") from None
                except asyncio.CancelledError:
                    await self._cancel_on_device(session, collection)
                    raise
            finally:
                if collection.result.done() and not collection.result.cancelled():
                    collection.result.exception()  # a late error nobody awaits is not worth a warning
                self._collection = None
                if self._session is not None:
                    self.state = ReaderState.READY

    async def _cancel_on_device(self, session: Session, collection: _Collection) -> None:
        """Tell the device to stop and wait, boundedly, for CANCELED; reset the link otherwise."""
        if collection.result.done() and collection.result.exception() is not None:
            return  # the device ended it itself (an error, or the link is gone)
        collection.canceling = True
        collection.canceled = asyncio.get_running_loop().create_future()
        self.state = ReaderState.CANCELING
        try:
            async with asyncio.timeout(self._settings.cancel_confirm_s):
                await session.send(MessageType.CANCEL, {"collection": collection.number})
                await collection.canceled
        except (TimeoutError, LinkLost):
            logger.warning(
                "reader did not confirm the cancel of collection %d within %.1f s: resetting the link",
                collection.number,
                self._settings.cancel_confirm_s,
            )
            session.abandon("the device did not confirm a cancel")

    # -- what the device says ---------------------------------------------------------------------

    def _deliver(self, message: Message) -> None:
        body = message.body
        kind = message.type
        if kind is MessageType.WELCOME:
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_result(message)
            return
        if kind is MessageType.BATTERY:
            self._battery_changed(body["battery"], body["charging"])
            return
        if kind is MessageType.ERROR and body["code"] == "unsupported_version":
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_exception(
                    _Incompatible(f"the device does not speak protocol version {PROTOCOL_VERSIONS}: {body['message']}")
                )
            return
        collection = self._collection
        if collection is None or body.get("collection") != collection.number:
            logger.debug("reader link: %s for collection %s ignored", kind.name, body.get("collection"))
            return
        if kind is MessageType.CANCELED:
            if collection.canceled is not None and not collection.canceled.done():
                collection.canceled.set_result(None)
            elif not collection.result.done():
                collection.result.set_exception(
                    ReaderError("canceled_on_reader", "the collection was canceled on the reader")
                )
            return
        if collection.canceling or collection.result.done():
            return  # a late result for a collection the host has given up on
        if kind is MessageType.INPUT_OPTIONS:
            collection.listener.input_options(list(body["options"]))
        elif kind is MessageType.DISPLAY_MESSAGE:
            collection.listener.display_message(body["message"])
        elif kind is MessageType.CARD:
            collection.listener.card_event(body["event"])
        elif kind is MessageType.COLLECTED:
            collection.result.set_result(
                CollectedPaymentMethod(body["reference"], body["brand"], body["last4"], body["read_method"])
            )
        elif kind is MessageType.ERROR:
            collection.result.set_exception(ReaderError(body["code"], body["message"]))

    def _malformed(self, error: MessageError) -> None:
        collection = self._collection
        if collection is not None and not collection.canceling and not collection.result.done():
            collection.result.set_exception(
                ReaderError("malformed_message", f"the reader sent a malformed message ({error})")
            )

    def _battery_changed(self, battery: int, charging: bool) -> None:
        if battery <= LOW_BATTERY and not charging and (self._battery is None or self._battery > LOW_BATTERY):
            logger.warning("reader battery low: %d%%", battery)
        self._battery = battery
        self._charging = charging
