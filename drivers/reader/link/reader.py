"""A card reader that speaks the reader link protocol over some transport (serial, BLE).

It keeps the link up by itself: it connects, says HELLO, and after any loss reconnects with
backoff, reporting each connection and loss through `notify`. A collection in progress when
the link drops ends with a reader error (the payment stays collectable again); a cancel is
confirmed by the device within `cancel_confirm_s`, or the link is reset, whose HELLO stops the
device — so a cancel always completes, and the wait for a card is bounded.

Protocol 2 (`SdkLinkReader`): the device runs Stripe's Terminal SDK. The host gives it connection
tokens when it asks, COLLECT names the PaymentIntent and its client secret, and `process` has the
device's SDK confirm it; the reader CONFIRMS_ITSELF, and the outcome is always read from the
PaymentIntent at Stripe, never believed from the device. A daemon holding a live-mode key serves
protocol 2 only: protocol 1 devices cannot take real cards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
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
    StoredOffline,
)

from . import CAPABILITIES, SDK_CAPABILITIES, V1_CANNOT_TAKE_REAL_CARDS, LinkProtocolSettings
from .backend import BackendError, SdkBackend
from .codec import Message, MessageError, MessageType, one_line
from .session import LinkTimings, Session
from .transport import LinkLost, LinkRefused, LinkUnavailable, Transport

logger = logging.getLogger("readerhost.reader")

HOST_GRACE_S = 5.0  # the host's own bound on a collection is the device's wait_s plus this
LOW_BATTERY = 15
PROCESS_ATTEMPTS = 3  # PROCESS again while the device's SDK could not reach Stripe
CLIENT_SECRETS_KEPT = 16


@dataclass(frozen=True)
class LinkSettings:
    card_wait_s: int = 60
    cancel_confirm_s: float = 2.0
    hello_timeout_s: float = 3.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    process_wait_s: float = 60.0  # protocol 2: how long a PROCESS may take (the SDK's confirm, its retries)
    timings: LinkTimings = field(default_factory=LinkTimings)


class _Incompatible(Exception):
    pass


@dataclass
class _Process:
    number: int
    result: asyncio.Future[Message]


@dataclass
class _Collection:
    number: int
    listener: ReaderListener
    result: asyncio.Future[CollectedPaymentMethod]
    canceling: bool = False
    canceled: asyncio.Future[None] | None = None


def open_link_reader(
    transport: Transport,
    context: ReaderContext,
    protocol: LinkProtocolSettings,
    refused: str | None = None,
    *,
    classes: tuple[type[LinkReader], type[SdkLinkReader]] | None = None,
) -> LinkReader:
    """The link reader over `transport`, with the [reader] settings the serial and BLE drivers share;
    `refused`: why the transport may not be used at all (the reader says so and never connects);
    `classes`: a transport's own readers for versions 1 and 2 (BLE's, which also pair)."""
    v1, v2 = classes or (LinkReader, SdkLinkReader)
    reader = context.reader
    settings = LinkSettings(
        card_wait_s=reader.card_wait_s, cancel_confirm_s=reader.cancel_confirm_s, backoff_max_s=reader.reconnect_max_s
    )
    if protocol.protocol == 1:
        refused = V1_CANNOT_TAKE_REAL_CARDS if context.live else refused
        return v1(transport, settings, context.notify, context.host, refused=refused)
    if context.sdk_backend is None:
        raise ValueError("a protocol 2 reader needs the host's way to Stripe (sdk_backend)")
    backend = context.sdk_backend(protocol.location or None)
    return v2(
        transport,
        settings,
        context.notify,
        context.host,
        backend=backend,
        live=context.live,
        forwarded=context.forwarded,
        refused=refused,
    )


class LinkReader(ReaderBase):
    """A protocol 1 device: it hands over a payment-method reference the host confirms (test cards)."""

    capabilities = CAPABILITIES
    versions = (1,)

    def __init__(
        self,
        transport: Transport,
        settings: LinkSettings,
        notify: Notify,
        host: str = "readerhost",
        *,
        refused: str | None = None,
    ) -> None:
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
        self._refused = refused  # why this reader may not serve at all (e.g. protocol 1 with a live key)
        self._refusal: str | None = None  # the last refusal in a few words, until a device is taken
        self.state = ReaderState.CONNECTING

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._refused is not None:
            self._down_reason = self._refused
            self._refuse(self._refused, "live key")  # each refusal made at opening is a live key's rule
            return
        self._supervisor = asyncio.create_task(self._supervise(), name="reader link")

    def _refuse(self, reason: str, short: str) -> None:
        """Say that the reader may not be used, and why (the daemon journals it as READER_REFUSED)."""
        self._refusal = short
        self._notify("reader.refused", {"id": self._where(), "model": self._identity.get("model"), "reason": reason})

    @contextlib.asynccontextmanager
    async def link_paused(self, why: str) -> AsyncIterator[None]:
        """The link closed, and not tried again, while the body runs (pairing); no collection meanwhile."""
        async with self._gate:
            was_running = self._supervisor is not None
            await self.stop()
            if self._session is not None:
                self._down(why, was_up=True)
            try:
                yield
            finally:
                if was_running:
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
            refused=self._refusal,
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
                    if isinstance(error, LinkRefused):
                        self._refuse(error.reason, error.short)
                    else:
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
                await session.send(MessageType.HELLO, {"versions": list(self.versions), "host": self._host[:64]})
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
        if body["version"] not in self.versions:
            raise _Incompatible(f"the device answered with protocol version {body['version']}, not {self.versions}")
        self._identity = {k: body[k] for k in ("model", "serial", "firmware")}
        self._battery = body.get("battery")
        self._charging = bool(body.get("charging", False))
        self._session = session
        self._refusal = None
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
        self._link_lost(reason)
        if was_up:
            self._notify(
                "reader.disconnected",
                {"id": self._identity.get("serial"), "model": self._identity.get("model"), "reason": reason},
            )

    def _link_lost(self, reason: str) -> None:
        """What else a lost link ends (protocol 2: a PROCESS in progress)."""

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
        metadata: Mapping[str, str] | None = None,
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
                    request = {"collection": number, "amount": amount, "currency": currency, "wait_s": wait_s}
                    request.update(await self._collect_fields(payment_intent, metadata))
                    await session.send(MessageType.COLLECT, request)
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

    async def _collect_fields(self, payment_intent: str | None, metadata: Mapping[str, str] | None) -> dict[str, Any]:
        """What COLLECT carries beyond protocol 1's fields."""
        return {}

    def _collected(self, body: Mapping[str, Any]) -> CollectedPaymentMethod:
        """COLLECTED's payment method; ReaderError when the body is not this protocol's."""
        if "reference" not in body:
            raise ReaderError("malformed_message", "the reader's COLLECTED has no payment-method reference")
        return CollectedPaymentMethod(body["reference"], body["brand"], body["last4"], body["read_method"])

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
                self._welcome.set_exception(_Incompatible(self._unsupported(body["message"])))
            return
        if self._deliver_sdk(message):
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
            try:
                collection.result.set_result(self._collected(body))
            except ReaderError as error:
                collection.result.set_exception(error)
        elif kind is MessageType.ERROR:
            collection.result.set_exception(ReaderError(body["code"], body["message"]))

    def _unsupported(self, why: str) -> str:
        return f"the device does not speak protocol version {list(self.versions)}: {why}"

    def _deliver_sdk(self, message: Message) -> bool:
        """Protocol 2's own messages; True when `message` was one."""
        return False

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


class SdkLinkReader(LinkReader):
    """A protocol 2 device: a Stripe Terminal SDK bridge. It collects for the PaymentIntent the host
    created and confirms it when asked (`process`); the host creates, captures and cancels."""

    capabilities = SDK_CAPABILITIES
    versions = (2,)

    def __init__(
        self,
        transport: Transport,
        settings: LinkSettings,
        notify: Notify,
        host: str = "readerhost",
        *,
        backend: SdkBackend,
        live: bool = False,
        forwarded: Callable[[str, str], None] | None = None,
        refused: str | None = None,
    ) -> None:
        super().__init__(transport, settings, notify, host, refused=refused)
        self._backend = backend
        self._live = live
        self._forwarded = forwarded
        self._client_secrets: dict[str, str] = {}  # in memory only, never stored or logged
        self._process: _Process | None = None
        self._processing_gate = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._token_trouble: str | None = None

    def _up(self, session: Session, welcome: Message) -> None:
        super()._up(session, welcome)
        # What the device's SDK stored or forwarded while the host was away is asked on every connect.
        self._spawn(self._send_quietly(session, MessageType.LIST_STORED, {}))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_quietly(self, session: Session, kind: MessageType, body: dict[str, Any]) -> None:
        with contextlib.suppress(LinkLost):
            await session.send(kind, body)

    # -- the device's SDK asks for a connection token ----------------------------------------------

    def _deliver_sdk(self, message: Message) -> bool:
        if message.type is MessageType.TOKEN_REQUEST:
            session = self._session
            if session is not None:
                self._spawn(self._give_token(session))
            return True
        if message.type is MessageType.STORED:
            self._stored(message.body)
            return True
        if message.type is MessageType.FORWARDED:
            ref, intent = message.body["offline_ref"], message.body["payment_intent"]
            logger.info("the reader forwarded its stored payment %s as %s", ref, intent)
            if self._forwarded is not None:
                self._forwarded(ref, intent)
            return True
        if message.type in (MessageType.PROCESSED, MessageType.PROCESS_FAILED):
            pending = self._process
            if pending is not None and message.body["collection"] == pending.number and not pending.result.done():
                pending.result.set_result(message)
            else:
                logger.info("reader link: %s for request %s ignored", message.type.name, message.body["collection"])
            return True
        return False

    async def _give_token(self, session: Session) -> None:
        try:
            secret = await asyncio.to_thread(self._backend.connection_token)
        except BackendError as error:
            if error.message != self._token_trouble:  # said once, not at each of the device's tries
                logger.warning("no connection token for the reader: %s", error.message)
            self._token_trouble = error.message
            with contextlib.suppress(LinkLost):
                text = one_line(error.message)
                await session.send(MessageType.TOKEN_FAILED, {"message": text or "no connection token"})
            return
        self._token_trouble = None
        with contextlib.suppress(LinkLost):
            await session.send(MessageType.TOKEN, {"secret": secret})
        logger.info("gave the reader a connection token")

    def _stored(self, body: Mapping[str, Any]) -> None:
        """STORED: the end of an offline collection, or (after LIST_STORED) one still waiting to be forwarded."""
        collection = self._collection
        if collection is not None and body.get("collection") == collection.number and not collection.result.done():
            method = body.get("read_method", "contactless_emv")
            collection.result.set_exception(StoredOffline(body["offline_ref"], body["brand"], body["last4"], method))
            return
        logger.info(
            "the reader holds a payment stored offline: %s (%d %s), not forwarded yet",
            body["offline_ref"], body["amount"], body["currency"],
        )  # fmt: skip

    # -- collecting and processing ---------------------------------------------------------------

    def _unsupported(self, why: str) -> str:
        if self._live:
            return f"{V1_CANNOT_TAKE_REAL_CARDS}; the device does not speak protocol 2 ({why})"
        return super()._unsupported(why)

    async def _client_secret(self, payment_intent: str) -> str:
        secret = self._client_secrets.get(payment_intent)
        if secret is None:
            try:
                secret = await asyncio.to_thread(self._backend.client_secret, payment_intent)
            except BackendError as error:
                why = f"the PaymentIntent could not be read: {error.message}"
                raise ReaderError("stripe_unreachable", why) from None
            while len(self._client_secrets) >= CLIENT_SECRETS_KEPT:
                del self._client_secrets[next(iter(self._client_secrets))]
            self._client_secrets[payment_intent] = secret
        return secret

    async def _collect_fields(self, payment_intent: str | None, metadata: Mapping[str, str] | None) -> dict[str, Any]:
        if payment_intent is None:  # Stripe is unreachable: the device's SDK stores the payment
            # ...and puts the host's order metadata on the PaymentIntent it makes when it forwards it.
            return {"offline": True, "metadata": dict(metadata or {})}
        return {"payment_intent": payment_intent, "client_secret": await self._client_secret(payment_intent)}

    def _collected(self, body: Mapping[str, Any]) -> CollectedPaymentMethod:
        if "payment_intent" not in body:
            raise ReaderError("malformed_message", "the reader's COLLECTED names no PaymentIntent")
        return CollectedPaymentMethod("", body["brand"], body["last4"], body["read_method"], wallet=body.get("wallet"))

    async def process(self, payment_intent: str, listener: ReaderListener) -> None:
        """PROCESS: the device's SDK confirms the PaymentIntent it collected for. Returns once it
        answered; what it says is not believed: the caller reads the PaymentIntent. ReaderError when
        the answer was lost (link lost, no answer, or the SDK's own request got none). Not behind the
        collections' gate: the next customer's card may be collected meanwhile (the device numbers
        each request), one PROCESS at a time."""
        async with self._processing_gate:
            for attempt in range(1, PROCESS_ATTEMPTS + 1):
                answer = await self._process_once(payment_intent)
                if answer.type is MessageType.PROCESSED:
                    return
                body = answer.body
                status = body["payment_intent_status"]
                if status is None:
                    raise ReaderError(
                        "reader_answer_lost", f"the reader's confirm got no answer from Stripe ({body['code']})"
                    )
                if status != "requires_confirmation":
                    return  # declined, or otherwise ended: the PaymentIntent says how
                logger.warning(
                    "the reader could not confirm %s (%s), attempt %d of %d",
                    payment_intent, body["code"], attempt, PROCESS_ATTEMPTS,
                )  # fmt: skip
                await asyncio.sleep(self._backoff(attempt))
            raise ReaderError("stripe_unreachable", "the reader could not reach Stripe to confirm the payment")

    async def _process_once(self, payment_intent: str) -> Message:
        session = self._session
        if session is None:
            raise ReaderError("READER_UNAVAILABLE", f"the reader is not connected ({self._down_reason})")
        secret = await self._client_secret(payment_intent)
        number = next(self._numbers)
        pending = _Process(number, asyncio.get_running_loop().create_future())
        self._process = pending
        wait_s = self._settings.process_wait_s
        try:
            body = {"collection": number, "payment_intent": payment_intent, "client_secret": secret}
            await session.send(MessageType.PROCESS, body)
            async with asyncio.timeout(wait_s):
                return await asyncio.shield(pending.result)
        except LinkLost as error:
            raise ReaderError(
                "READER_UNAVAILABLE", f"the reader's link was lost while it confirmed ({error.reason})"
            ) from None
        except TimeoutError:
            why = f"the reader did not answer PROCESS within {wait_s:.0f} s"
            raise ReaderError("reader_answer_lost", why) from None
        finally:
            if pending.result.done() and not pending.result.cancelled():
                pending.result.exception()
            self._process = None

    def _link_lost(self, reason: str) -> None:
        pending = self._process
        if pending is not None and not pending.result.done():
            pending.result.set_exception(
                ReaderError("READER_UNAVAILABLE", f"the reader's link was lost while it confirmed ({reason})")
            )
