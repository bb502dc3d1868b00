"""The reference device of the reader link protocol (docs/reader-link-protocol.md), with no
transport of its own: `serve(receive, send)` speaks it over one connection, and the knobs
(`present`, `set_script`, `drop_link`, `stop_answering`, `garble_next`, `set_battery`) change its
behaviour from the same event loop at any time.

What it does, device side of each rule:
- every intact message but an ACK is acknowledged at once, before it is acted on; a repeat of the
  seq processed last is acknowledged again and otherwise ignored;
- its own messages go out stop-and-wait (outbox.py): 500 ms per try, 3 retransmissions, then the
  link is lost (the collection ends and the device waits for a HELLO);
- HELLO, at any time, ends any collection, restarts both numberings and is answered with WELCOME
  for the highest version both speak, or ERROR unsupported_version; until a HELLO is welcomed
  (also after a lost link or 15 s without a byte from the host) other messages are acknowledged
  and ignored;
- COLLECT runs a DeviceScript (script.py, collection.py); a COLLECT during a collection is
  answered ERROR reader_busy; CANCEL of the collection in progress stops it and is answered
  CANCELED at once; a CANCEL of anything else is answered CANCELED, then
  ERROR {collection: null, code: not_collecting};
- a malformed message (unknown type, a device-only type, a bad body) is acknowledged, then
  answered ERROR {collection: null, code: malformed_message};
- set_battery() sends BATTERY when the level moved 5 points or more since last reported (WELCOME
  or BATTERY) or charging started or stopped, as the protocol says; it always updates WELCOME's values.

`stop_answering()` makes it deaf and mute: nothing is read, acknowledged or sent (a message in
flight then goes unacknowledged, so the device loses the link and wants a new HELLO when it
answers again). `garble_next()` damages outgoing frames, ACKs included.

Version 2 (a Terminal SDK bridge, with `sdk`, the device's way to Stripe): COLLECT names a
PaymentIntent and its client secret; once the card is read, the device attaches it at Stripe with a
connection token it asked the host for (TOKEN_REQUEST, kept for the connection) and answers
COLLECTED with the PaymentIntent; PROCESS confirms it there and is answered PROCESSED or
PROCESS_FAILED with the PaymentIntent's status as Stripe gave it. `fail_next_process()` makes the
next PROCESS fail one of PROCESS_FAILURES' ways.

`received` lists every intact message heard, in arrival order (ACKs and repeats included),
`frame_errors` counts damaged frames dropped; `on_event(name, fields)` tells an observer (the CLI)
what happens: welcome, unsupported_version, collecting, collected, error, canceled, link_lost,
host_silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from readerhost.drivers.reader.link.codec import (
    FrameDecoder,
    LinkCodecError,
    Message,
    MessageError,
    MessageType,
    encode,
    one_line,
)
from readerhost.sim.stripe_emulator.testcards import TEST_CARDS

from .collection import ERROR_TEXT, Collection, CollectRequest
from .offline import OfflineStore
from .outbox import Outbox
from .script import DeviceIdentity, DeviceScript, LinkTimings
from .sdk import SdkClient

__all__ = ["DeviceIdentity", "DeviceScript", "LinkTimings", "ReaderDevice"]

logger = logging.getLogger("readerhost.reader_device")

EventListener = Callable[[str, Mapping[str, Any]], None]
Receive = Callable[[], Awaitable[bytes]]
Send = Callable[[bytes], Awaitable[None]]
BATTERY_STEP = 5
# Frozen values, so sharing them as defaults is safe.
DEFAULT_IDENTITY = DeviceIdentity()
DEFAULT_SCRIPT = DeviceScript()
DEFAULT_TIMINGS = LinkTimings()
TOKEN_WAIT_S = 10.0
FORWARD_RETRY_S = 0.5  # how soon the SDK tries again to forward what it stored
# How the next PROCESS may be made to fail (fail_next_process):
PROCESS_FAILURES = {
    "drop_after_confirm": "confirm at Stripe, then the link drops before PROCESSED",
    "timeout_after_confirm": "confirm at Stripe, then answer as if its answer never came (status null)",
    "unreachable": "Stripe is not reached: PROCESS_FAILED, the PaymentIntent still requires_confirmation",
}


def garbled(frame: bytes) -> bytes:
    """`frame` with one byte changed, never to 0x00: the frame still ends where it did, but fails its CRC."""
    i = (len(frame) - 1) // 2
    damaged = bytearray(frame)
    damaged[i] ^= 0x01 if damaged[i] != 0x01 else 0x03
    return bytes(damaged)


class _Link:
    """The state of one served connection."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.write_lock = asyncio.Lock()  # an ACK's bytes never land inside another frame's
        self.decoder = FrameDecoder()
        self.dropped = asyncio.Event()
        self.outbox: Outbox | None = None
        self.welcomed = False
        self.last_seq: int | None = None
        self.collection: Collection | None = None
        self.collection_task: asyncio.Task[None] | None = None
        self.battery_reported: tuple[int | None, bool] = (None, False)
        self.silence: asyncio.TimerHandle | None = None
        self.version = 1
        self.token: str | None = None  # version 2: the connection token, for this connection only
        self.token_wait: asyncio.Future[str | None] | None = None
        self.processing: set[asyncio.Task[None]] = set()
        self.forwarder: asyncio.Task[None] | None = None


class ReaderDevice:
    def __init__(
        self,
        identity: DeviceIdentity = DEFAULT_IDENTITY,
        script: DeviceScript = DEFAULT_SCRIPT,
        *,
        timings: LinkTimings = DEFAULT_TIMINGS,
        on_event: EventListener | None = None,
        sdk: SdkClient | None = None,
        offline: OfflineStore | None = None,
    ) -> None:
        self._offline = offline or OfflineStore()
        self._forward_wake = asyncio.Event()
        self._sdk = sdk
        self._process_failure: str | None = None
        self._identity = identity
        self._script = script
        self._timings = timings
        self._on_event = on_event
        self._garble = 0
        self._hung = False
        self._link: _Link | None = None
        self._waiting = asyncio.Event()  # set while a collection waits for a card
        self.received: list[Message] = []
        self.frame_errors = 0

    # -- knobs ------------------------------------------------------------------------------------

    @property
    def identity(self) -> DeviceIdentity:
        """The identity as WELCOME reports it now (set_battery changes the battery)."""
        return self._identity

    @property
    def script(self) -> DeviceScript:
        return self._script

    @property
    def collecting(self) -> int | None:
        """The number of the collection waiting for a card, or None."""
        link = self._link
        if link is None or link.collection is None or not self._waiting.is_set():
            return None
        return link.collection.request.collection

    @property
    def serving(self) -> bool:
        return self._link is not None

    async def wait_collecting(self) -> int:
        """Wait until a collection waits for a card; its number."""
        while True:
            await self._waiting.wait()
            number = self.collecting
            if number is not None:
                return number
            await asyncio.sleep(0)  # the flag is being cleared by the collection that just ended

    def present(self, card: str) -> bool:
        """Present a test card (by name) to the collection in progress. ValueError for an unknown
        name; False when no collection takes a card (a tap on an idle reader does nothing)."""
        if card not in TEST_CARDS:
            raise ValueError(f"unknown test card {card!r} (known: {', '.join(TEST_CARDS)})")
        link = self._link
        if link is None or link.collection is None:
            return False
        return link.collection.present(card)

    def set_script(self, script: DeviceScript) -> None:
        """Takes effect from the next COLLECT."""
        self._script = script

    def drop_link(self) -> None:
        """serve() returns, as if unplugged or disconnected."""
        if self._link is not None:
            self._link.dropped.set()

    def stop_answering(self, on: bool = True) -> None:
        """Hang: read and ignore everything, send nothing (so no ACKs, no CANCELED)."""
        self._hung = on

    def garble_next(self, count: int = 1) -> None:
        """Damage the next `count` outgoing frames (ACKs included) so that the far side drops them."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._garble += count

    def fail_next_process(self, mode: str) -> None:
        """Make the next PROCESS fail in one of PROCESS_FAILURES' ways."""
        if mode not in PROCESS_FAILURES:
            raise ValueError(f"unknown process failure {mode!r} (known: {', '.join(PROCESS_FAILURES)})")
        self._process_failure = mode

    def set_battery(self, level: int, charging: bool = False) -> None:
        if type(level) is not int or not 0 <= level <= 100:
            raise ValueError("battery level must be 0-100")
        self._identity = replace(self._identity, battery=level, charging=charging)
        link = self._link
        if link is None or not link.welcomed or link.outbox is None:
            return
        last_level, last_charging = link.battery_reported
        if last_level is None or abs(level - last_level) >= BATTERY_STEP or charging != last_charging:
            link.battery_reported = (level, charging)
            link.outbox.put(MessageType.BATTERY, {"battery": level, "charging": charging})

    # -- serving ----------------------------------------------------------------------------------

    async def serve(self, receive: Receive, send: Send) -> None:
        """Speak the protocol over one connection until receive() returns b"" (link closed) or
        drop_link() is called. `send` takes whole encoded frames."""
        if self._link is not None:
            raise RuntimeError("this device is already serving a link")
        link = _Link(send)
        link.outbox = self._new_outbox(link)
        self._link = link
        dropped = asyncio.ensure_future(link.dropped.wait())
        try:
            while True:
                reading = asyncio.ensure_future(receive())
                await asyncio.wait({reading, dropped}, return_when=asyncio.FIRST_COMPLETED)
                if dropped.done():
                    reading.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reading
                    return
                data = reading.result()
                if not data:
                    return
                await self._on_bytes(link, data)
        finally:
            dropped.cancel()
            self._end_collection(link)
            for task in link.processing:
                task.cancel()
            if link.forwarder is not None:
                link.forwarder.cancel()
            if link.silence is not None:
                link.silence.cancel()
            if link.outbox is not None:
                await link.outbox.close()
            self._link = None

    def _new_outbox(self, link: _Link) -> Outbox:
        return Outbox(lambda frame: self._write(link, frame), self._timings, lambda: self._lost(link))

    async def _write(self, link: _Link, frame: bytes) -> None:
        if self._hung:
            return
        if self._garble > 0:
            self._garble -= 1
            frame = garbled(frame)
        async with link.write_lock:
            await link.send(frame)

    def _put(self, link: _Link, kind: MessageType, body: Mapping[str, Any]) -> None:
        assert link.outbox is not None
        link.outbox.put(kind, body)
        if kind is MessageType.COLLECTED:
            self._event("collected", body)
        elif kind is MessageType.ERROR and body["collection"] is not None:
            self._event("error", {"collection": body["collection"], "code": body["code"]})

    def _event(self, name: str, fields: Mapping[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(name, fields)

    # -- receiving --------------------------------------------------------------------------------

    async def _on_bytes(self, link: _Link, data: bytes) -> None:
        if self._hung:
            return
        self._heard(link)
        for item in link.decoder.feed(data):
            if isinstance(item, MessageError):
                await self._on_malformed(link, item)
            elif isinstance(item, LinkCodecError):
                self.frame_errors += 1
                logger.info("dropped a damaged frame: %s", item)
            else:
                await self._on_message(link, item)

    def _heard(self, link: _Link) -> None:
        if link.silence is not None:
            link.silence.cancel()
        link.silence = asyncio.get_running_loop().call_later(self._timings.host_silence_s, self._host_silent, link)

    async def _ack(self, link: _Link, seq: int) -> None:
        await self._write(link, encode(Message(MessageType.ACK, 0, {"ack": seq})))

    async def _on_malformed(self, link: _Link, error: MessageError) -> None:
        logger.info("malformed message: %s", error)
        if error.type_code == MessageType.ACK:
            return  # an ACK is never acknowledged, nor answered
        await self._ack(link, error.seq)
        if error.seq == link.last_seq and error.type_code != MessageType.HELLO:
            return
        link.last_seq = error.seq
        self._answer_malformed(link, str(error))

    def _answer_malformed(self, link: _Link, why: str) -> None:
        text = f"{ERROR_TEXT['malformed_message']} {why}"[:200]
        self._put(link, MessageType.ERROR, {"collection": None, "code": "malformed_message", "message": text})

    async def _on_message(self, link: _Link, message: Message) -> None:
        self.received.append(message)
        if message.type is MessageType.ACK:
            if link.outbox is not None:
                link.outbox.acked(message.body["ack"])
            return
        await self._ack(link, message.seq)
        if message.type is MessageType.HELLO:
            await self._hello(link, message)
            return
        if message.seq == link.last_seq:
            return  # our ACK was lost; the message was handled already
        link.last_seq = message.seq
        if not message.type.from_host:
            self._answer_malformed(link, f"{message.type.name} is not a host message")
        elif not link.welcomed:
            logger.info("ignored %s before a HELLO", message.type.name)
        elif message.type is MessageType.COLLECT:
            self._collect(link, message.body)
        elif message.type is MessageType.CANCEL:
            self._cancel(link, message.body["collection"])
        elif message.type is MessageType.PING:
            pass  # its ACK is the answer
        elif link.version < 2:
            self._answer_malformed(link, f"{message.type.name} is not a version {link.version} message")
        elif message.type is MessageType.TOKEN:
            link.token = message.body["secret"]
            if link.token_wait is not None and not link.token_wait.done():
                link.token_wait.set_result(link.token)
        elif message.type is MessageType.TOKEN_FAILED:
            logger.warning("the host could not get a connection token: %s", message.body["message"])
            if link.token_wait is not None and not link.token_wait.done():
                link.token_wait.set_result(None)
        elif message.type is MessageType.LIST_STORED:
            self._list_stored(link)
        elif message.type is MessageType.PROCESS:
            task = asyncio.get_running_loop().create_task(self._process(link, message.body))
            link.processing.add(task)
            task.add_done_callback(link.processing.discard)

    async def _hello(self, link: _Link, hello: Message) -> None:
        self._end_collection(link)
        if link.outbox is not None:
            await link.outbox.close()
        link.outbox = self._new_outbox(link)
        link.last_seq = hello.seq
        common = set(hello.body["versions"]) & set(self._identity.versions)
        if not common:
            link.welcomed = False
            spoken = ", ".join(map(str, self._identity.versions))
            message = f"{ERROR_TEXT['unsupported_version']} The reader speaks {spoken}."
            self._put(link, MessageType.ERROR, {"collection": None, "code": "unsupported_version", "message": message})
            self._event("unsupported_version", {"versions": list(hello.body["versions"])})
            return
        identity = self._identity
        link.welcomed = True
        link.version = max(common)
        if link.token_wait is not None and not link.token_wait.done():
            link.token_wait.set_result(None)  # asked of the previous session: ask this one
        if link.version >= 2 and link.forwarder is None:
            link.forwarder = asyncio.get_running_loop().create_task(self._forward_stored(link))
        if link.version >= 2:
            self._forward_wake.set()  # what was stored before (also by a previous run)
        link.battery_reported = (identity.battery, identity.charging)
        welcome = {
            "version": max(common),
            "model": identity.model,
            "serial": identity.serial,
            "firmware": identity.firmware,
            "battery": identity.battery,
            "charging": identity.charging,
        }
        link.outbox.put(MessageType.WELCOME, welcome, seq=0)
        self._event("welcome", {"version": max(common)})

    def _collect(self, link: _Link, body: Mapping[str, Any]) -> None:
        request = CollectRequest(
            body["collection"],
            body["amount"],
            body["currency"],
            body["wait_s"],
            body.get("payment_intent"),
            body.get("client_secret"),
            bool(body.get("offline", False)),
            dict(body.get("metadata", {})),
        )
        online = request.payment_intent is not None and request.client_secret is not None
        if link.version >= 2 and not online and not request.offline:
            self._answer_malformed(link, "COLLECT: version 2 needs payment_intent and client_secret, or offline")
            return
        if link.collection is not None and not link.collection.ended:
            text = ERROR_TEXT["reader_busy"]
            self._put(
                link, MessageType.ERROR, {"collection": request.collection, "code": "reader_busy", "message": text}
            )
            return
        self._end_collection(link)  # one that has queued its result but not yet returned
        collection = Collection(
            request,
            self._script,
            lambda kind, fields: self._put(link, kind, fields),
            lambda: self._now_waiting(request),
            (lambda reference, collected: self._attach(link, request, reference, collected))
            if link.version >= 2
            else None,
        )
        task = asyncio.get_running_loop().create_task(collection.run())
        link.collection, link.collection_task = collection, task
        task.add_done_callback(lambda done: self._collection_done(link, collection, done))

    # -- version 2: the SDK's calls to Stripe --------------------------------------------------------

    async def _connection_token(self, link: _Link) -> str | None:
        """The connection's token, asked of the host the first time (TOKEN_REQUEST); None if none came."""
        if link.token is not None:
            return link.token
        if link.token_wait is None or link.token_wait.done():
            link.token_wait = asyncio.get_running_loop().create_future()
            if link.outbox is not None:
                link.outbox.put(MessageType.TOKEN_REQUEST, {})
        try:
            async with asyncio.timeout(TOKEN_WAIT_S):
                return await asyncio.shield(link.token_wait)
        except TimeoutError:
            return None

    async def _attach(
        self, link: _Link, request: CollectRequest, reference: str, collected: dict[str, Any]
    ) -> tuple[MessageType, dict[str, Any]] | str:
        if request.offline:
            stored = self._offline.store(
                request.amount, request.currency, collected["brand"], collected["last4"], reference, request.metadata
            )
            self._event("stored", {"collection": request.collection, "offline_ref": stored.offline_ref})
            self._forward_wake.set()
            ended = {
                **stored.stored_message(),
                "collection": request.collection,
                "read_method": collected["read_method"],
            }
            return MessageType.STORED, ended
        assert request.payment_intent is not None
        assert request.client_secret is not None
        token = await self._connection_token(link)
        if token is None or self._sdk is None:
            return "stripe_unreachable"
        answer = await asyncio.to_thread(
            self._sdk.collect, token, request.payment_intent, request.client_secret, reference
        )
        if answer.status == "requires_confirmation" and answer.code is None:
            return MessageType.COLLECTED, {**collected, "payment_intent": request.payment_intent}
        logger.warning("Stripe did not take the collected card: %s", answer.message)
        return "stripe_unreachable" if answer.code == "stripe_unreachable" else "stripe_refused"

    def _list_stored(self, link: _Link) -> None:
        """LIST_STORED: STORED for each payment still stored, FORWARDED for each forwarded one."""
        for payment in self._offline.all:
            if payment.payment_intent is None:
                self._put(link, MessageType.STORED, payment.stored_message())
            else:
                body = {"offline_ref": payment.offline_ref, "payment_intent": payment.payment_intent}
                self._put(link, MessageType.FORWARDED, body)
        self._forward_wake.set()

    async def _forward_stored(self, link: _Link) -> None:
        """The SDK's forwarding: each stored payment goes to Stripe (created and confirmed under its
        offline_ref as the idempotency key) as soon as Stripe answers, then FORWARDED tells the host."""
        while True:
            await self._forward_wake.wait()
            self._forward_wake.clear()
            while link.welcomed and self._offline.waiting and self._sdk is not None:
                payment = self._offline.waiting[0]
                token = await self._connection_token(link)
                answer = None
                if token is not None:
                    # The host's order metadata, as a bridge must set it, and the SDK's own reference.
                    metadata = {**payment.metadata, "offline_ref": payment.offline_ref}
                    answer = await asyncio.to_thread(
                        self._sdk.forward, token, payment.offline_ref, payment.amount, payment.currency,
                        payment.payment_method, metadata,
                    )  # fmt: skip
                if answer is None or answer.payment_intent is None:
                    if answer is not None and answer.code != "stripe_unreachable":
                        link.token = None  # refused (a token Stripe no longer knows?): ask for another
                    await asyncio.sleep(FORWARD_RETRY_S)
                    continue
                self._offline.forwarded(payment.offline_ref, answer.payment_intent)
                body = {"offline_ref": payment.offline_ref, "payment_intent": answer.payment_intent}
                self._put(link, MessageType.FORWARDED, body)
                self._event("forwarded", {**body, "status": answer.status})

    async def _process(self, link: _Link, body: Mapping[str, Any]) -> None:
        n, intent, secret = body["collection"], body["payment_intent"], body["client_secret"]
        failure, self._process_failure = self._process_failure, None
        self._event("processing", {"collection": n, "payment_intent": intent})
        token = await self._connection_token(link)
        if token is None or self._sdk is None or failure == "unreachable":
            text = ERROR_TEXT["stripe_unreachable"]
            self._process_failed(link, n, "stripe_unreachable", text, "requires_confirmation")
            return
        answer = await asyncio.to_thread(self._sdk.confirm, token, intent, secret)
        if failure == "drop_after_confirm":
            self._event("process_answer_lost", {"collection": n, "status": answer.status})
            self.drop_link()
            return
        if failure == "timeout_after_confirm":
            self._process_failed(link, n, "stripe_unreachable", "Stripe's answer did not come in time.", None)
            return
        if answer.code is None and answer.status is not None:
            self._put(link, MessageType.PROCESSED, {"collection": n, "payment_intent": intent, "status": answer.status})
            self._event("processed", {"collection": n, "payment_intent": intent, "status": answer.status})
            return
        self._process_failed(link, n, answer.code or "stripe_refused", answer.message, answer.status)

    def _process_failed(self, link: _Link, n: int, code: str, message: str, status: str | None) -> None:
        # Stripe's text (stripe-python's for a network error spans lines) as the protocol wants it.
        text = one_line(message) or code
        body = {"collection": n, "code": code, "message": text, "payment_intent_status": status}
        self._put(link, MessageType.PROCESS_FAILED, body)
        self._event("process_failed", {"collection": n, "code": code, "payment_intent_status": status})

    def _now_waiting(self, request: CollectRequest) -> None:
        self._waiting.set()
        fields = {"collection": request.collection, "amount": request.amount, "currency": request.currency}
        self._event("collecting", fields)

    def _collection_done(self, link: _Link, collection: Collection, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("collection %d failed", collection.request.collection, exc_info=task.exception())
            if not collection.ended and link.outbox is not None:
                collection.ended = True
                n = collection.request.collection
                text = ERROR_TEXT["internal_error"]
                self._put(link, MessageType.ERROR, {"collection": n, "code": "internal_error", "message": text})
        if link.collection is collection:
            link.collection, link.collection_task = None, None
            self._waiting.clear()

    def _end_collection(self, link: _Link) -> None:
        """Stop the collection in progress without a word (the caller says what is due)."""
        if link.collection_task is not None:
            link.collection_task.cancel()
        if link.collection is not None:
            link.collection.ended = True
        link.collection, link.collection_task = None, None
        self._waiting.clear()

    def _cancel(self, link: _Link, number: int) -> None:
        collection = link.collection
        if collection is not None and not collection.ended and collection.request.collection == number:
            self._end_collection(link)
            self._put(link, MessageType.CANCELED, {"collection": number})
            self._event("canceled", {"collection": number, "was_collecting": True})
            return
        self._put(link, MessageType.CANCELED, {"collection": number})
        text = ERROR_TEXT["not_collecting"]
        self._put(link, MessageType.ERROR, {"collection": None, "code": "not_collecting", "message": text})
        self._event("canceled", {"collection": number, "was_collecting": False})

    # -- losing the host --------------------------------------------------------------------------

    def _host_silent(self, link: _Link) -> None:
        logger.warning("nothing from the host for %.0f s: waiting for a HELLO", self._timings.host_silence_s)
        self._forget_session(link)
        self._event("host_silent", {})

    def _lost(self, link: _Link) -> None:
        self._forget_session(link)
        self._event("link_lost", {})

    def _forget_session(self, link: _Link) -> None:
        self._end_collection(link)
        link.welcomed = False
        link.last_seq = None
        old = link.outbox
        link.outbox = self._new_outbox(link)
        if old is not None:
            old.cancel()
