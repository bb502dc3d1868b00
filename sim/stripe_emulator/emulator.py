"""The emulated Stripe account and the path every API request takes through it.

A request meets, in order: its fault rule (if one matches), the rate limit, authentication,
routing, the idempotency layer, and the resource handler under the state lock. The result is
an `ApiResponse`, which the HTTP layer sends or, for connection faults, replaces by a reset.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import EmulatorClock
from .connection_tokens import ConnectionToken, ConnectionTokenStore
from .errors import (
    StripeError,
    api_error,
    authentication,
    invalid_request,
    rate_limited,
    token_not_allowed,
    unrecognized_url,
)
from .faults import FaultRule, FaultTable, rule_from_json
from .forms import Params, parse_form
from .idempotency import MAX_KEY_LENGTH, IdempotencyStore, SavedResponse, fingerprint
from .ids import new_id
from .journal import Journal, JournalEntry
from .listing import SearchIndex, list_intents
from .locations import LocationStore
from .payment_intents import MAX_INCREMENT_ATTEMPTS, Mutation, PaymentIntent, PaymentIntentStore
from .preload import PreloadedIntent
from .ratelimit import RateLimiter
from .refunds import RefundStore
from .terminal_readers import ReaderStore
from .testcards import INCREMENT_DECLINES
from .timers import Timers

logger = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"  # the version stripe-python 16 pins
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: str
    body: str
    headers: Mapping[str, str]  # lower-case names


@dataclass
class ApiResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    reset_connection: bool = False


@dataclass(frozen=True)
class Credential:
    """Who made a request: a secret key (test or live mode), or a Terminal SDK with a connection token."""

    live: bool = False
    token: ConnectionToken | None = None


@dataclass(frozen=True)
class Call:
    """One routed API request, as a resource handler sees it."""

    params: Params
    path_args: dict[str, str]
    mutation: Mutation
    credential: Credential = Credential()


Handler = Callable[[Call], dict[str, Any]]


class StripeEmulator:
    """A stateful, in-memory Stripe account in test mode.

    State lives in memory only: a restart of the emulator forgets every object and key.
    """

    def __init__(
        self,
        *,
        rate_limit: float | None = None,
        search_lag_s: float = 2.0,
        reader_processing_s: float = 1.0,
        accept_live_keys: bool = False,
        clock: EmulatorClock | None = None,
        pause: Callable[[float], object] | None = None,
    ) -> None:
        """`clock`: Stripe's time; by default the wall clock (a simulation passes one on its own time).
        `pause`: how a delay fault waits its seconds; by default a real wait that `stop` cuts short
        (a simulation holds the request on its own time instead)."""
        # An emulated live-mode account: sk_live_ keys are accepted, and what Stripe refuses in live
        # mode is refused (a card-present confirm with a payment method no reader made).
        self._key_prefixes = TEST_KEY_PREFIXES + (LIVE_KEY_PREFIXES if accept_live_keys else ())
        self.clock = clock or EmulatorClock()
        self.timers = Timers()
        self.journal = Journal()
        self.faults = FaultTable()
        self.rate_limiter = RateLimiter()
        self.idempotency = IdempotencyStore()
        self._initial_rate_limit = rate_limit
        self._initial_search_lag_s = search_lag_s
        self._reader_processing_s = reader_processing_s
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wait: Callable[[float], object] = pause or self._stopping.wait
        self._incomplete = 0
        # Requests answered, by "METHOD /path" (in-process only: benchmarks count what a task costs).
        self.requests_served: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self._new_account()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/v1/payment_intents"), self._create),
            ("GET", re.compile(r"/v1/payment_intents"), self._list),
            ("GET", re.compile(r"/v1/payment_intents/search"), self._search),
            ("GET", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)"), self._retrieve),
            ("POST", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)"), self._update),
            ("POST", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)/confirm"), self._confirm),
            ("POST", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)/capture"), self._capture),
            ("POST", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)/cancel"), self._cancel),
            (
                "POST",
                re.compile(r"/v1/payment_intents/(?P<id>[^/]+)/increment_authorization"),
                self._increment_authorization,
            ),
            ("POST", re.compile(r"/v1/terminal/connection_tokens"), self._create_connection_token),
            ("POST", re.compile(r"/v1/terminal/sdk/payment_intents/(?P<id>[^/]+)/collect"), self._sdk_collect),
            ("POST", re.compile(r"/v1/terminal/sdk/payment_intents"), self._sdk_forward),
            ("POST", re.compile(r"/v1/refunds"), self._create_refund),
            ("GET", re.compile(r"/v1/refunds"), self._list_refunds),
            ("GET", re.compile(r"/v1/refunds/(?P<id>[^/]+)"), self._retrieve_refund),
            ("POST", re.compile(r"/v1/terminal/locations"), self._create_location),
            ("GET", re.compile(r"/v1/terminal/locations"), self._list_locations),
            ("GET", re.compile(r"/v1/terminal/locations/(?P<id>[^/]+)"), self._retrieve_location),
            ("DELETE", re.compile(r"/v1/terminal/locations/(?P<id>[^/]+)"), self._delete_location),
            ("POST", re.compile(r"/v1/terminal/readers"), self._create_reader),
            ("GET", re.compile(r"/v1/terminal/readers"), self._list_readers),
            ("GET", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)"), self._retrieve_reader),
            ("POST", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)"), self._update_reader),
            ("DELETE", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)"), self._delete_reader),
            ("POST", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)/process_payment_intent"), self._process),
            ("POST", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)/collect_payment_method"), self._collect),
            ("POST", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)/confirm_payment_intent"), self._confirm_on_reader),
            ("POST", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)/refund_payment"), self._refund_on_reader),
            ("POST", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)/set_reader_display"), self._display),
            ("POST", re.compile(r"/v1/terminal/readers/(?P<id>[^/]+)/cancel_action"), self._cancel_action),
            (
                "POST",
                re.compile(r"/v1/test_helpers/terminal/readers/(?P<id>[^/]+)/present_payment_method"),
                self._present,
            ),
        ]

    def _new_account(self) -> None:
        self.search_index = SearchIndex(lag_s=self._initial_search_lag_s)
        self.payment_intents = PaymentIntentStore(self.journal, on_change=self._indexed)
        self.refunds = RefundStore(self.payment_intents, self.journal)
        self.locations = LocationStore(self.journal)
        self.connection_tokens = ConnectionTokenStore()
        self.readers = ReaderStore(
            self.payment_intents,
            self.refunds,
            self.journal,
            self.timers,
            self._reader_action_due,
            self._reader_processing_s,
            locations=self.locations,
        )
        self.rate_limiter.configure(self._initial_rate_limit)

    def _indexed(self, intent: PaymentIntent, at: int) -> None:
        self.search_index.note(intent, self.clock.now())

    def _reader_action_due(self, reader_id: str, token: int) -> None:
        """A simulated reader has processed the card presented to it (on a timer thread)."""
        with self._state_lock:
            now = self.clock.timestamp()
            self.payment_intents.expire_authorisations(now)
            self.readers.complete(reader_id, token, now)

    # -- the control interface, in-process ----------------------------------------------------

    def add_fault(self, spec: Mapping[str, Any]) -> FaultRule:
        """Arm a fault rule given as in POST /_emulator/faults; raises FaultSpecError if invalid."""
        return self.faults.add(rule_from_json(dict(spec)))

    def advance_clock(self, seconds: float) -> float:
        now = self.clock.advance(seconds)
        self._expire()
        return now

    def set_clock(self, unix_seconds: float) -> float:
        now = self.clock.set(unix_seconds)
        self._expire()
        return now

    def drop_incomplete(self) -> None:
        """Count a request whose body ended early; it is dropped unanswered and nothing is done."""
        with self._state_lock:
            self._incomplete += 1

    @property
    def incomplete_requests(self) -> int:
        """Requests dropped because their body ended early (a client killed mid-write)."""
        return self._incomplete

    def served(self) -> Counter[str]:
        """A copy of the requests served so far, by "METHOD /path" (the count goes on meanwhile)."""
        with self._count_lock:
            return Counter(self.requests_served)

    def journal_entries(self, since: int = 0) -> list[JournalEntry]:
        return self.journal.entries(since)

    def set_rate_limit(self, per_second: float | None) -> None:
        self.rate_limiter.configure(per_second)

    def set_search_lag(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the search lag must not be negative")
        with self._state_lock:
            self.search_index.lag_s = seconds

    def set_search_available(self, available: bool) -> None:
        """False: the account is one Stripe offers no search to (India): every search is refused."""
        with self._state_lock:
            self.search_index.available = available

    def preload_payment_intents(self, intents: Iterable[PreloadedIntent]) -> int:
        """Hold PaymentIntents as if made long ago by other integrations (in-process only: a benchmark's
        account of hundreds of thousands is built in a second, not over HTTP); they are searchable at
        once and journaled nowhere. Answers how many were added."""
        added = 0
        with self._state_lock:
            for spec in intents:
                intent = spec.build(self.payment_intents.next_seq())
                self.payment_intents.add(intent)
                self.search_index.show(intent)
                added += 1
        return added

    def configure_reader(self, reader_id: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """A reader's control knobs, as in POST /_emulator/terminal/readers/{id}; its state after.

        Raises ReaderControlError (with the HTTP status to answer) for an unknown reader or a bad request.
        """
        with self._state_lock:
            return self.readers.configure(reader_id, dict(spec))

    def decline_increments(self, times: int, decline_code: str = "insufficient_funds") -> list[str]:
        """The next `times` increment_authorization attempts (of any PaymentIntent) are declined by the
        issuer with `decline_code`; answers the decline codes now waiting."""
        if decline_code not in INCREMENT_DECLINES:
            raise ValueError(f"decline_code must be one of {', '.join(INCREMENT_DECLINES)}")
        if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_INCREMENT_ATTEMPTS:
            raise ValueError(f"times must be an integer from 1 to {MAX_INCREMENT_ATTEMPTS}")
        with self._state_lock:
            self.payment_intents.increment_declines.extend([decline_code] * times)
            return list(self.payment_intents.increment_declines)

    def wait_reader_action(self, reader_id: str, timeout: float = 5.0) -> bool:
        """Block until the reader has no action in progress (True), or `timeout` seconds pass (False)."""
        return self.readers.wait_settled(reader_id, timeout)

    def reset(self) -> None:
        """Forget everything: objects, keys, faults, the journal, the clock offset, the limits."""
        with self._state_lock:
            self.timers.cancel_all()
            self.readers.close()
            self.faults.clear()
            self.idempotency.clear()
            self.journal.clear()
            self.clock.reset()
            with self._count_lock:
                self.requests_served.clear()
            self._new_account()

    def stop(self) -> None:
        """Cut short any fault delay in progress and drop pending reader work (the server shuts down)."""
        self._stopping.set()
        self.timers.cancel_all()

    def _expire(self) -> None:
        with self._state_lock:
            self.payment_intents.expire_authorisations(self.clock.timestamp())

    # -- the API path -------------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> ApiResponse:
        with self._count_lock:
            self.requests_served[f"{request.method} {request.path}"] += 1
        rule = self.faults.take(request.method, request.path)
        action = rule.action if rule else None
        if action in ("reset_before", "down"):
            return ApiResponse(0, {}, reset_connection=True)
        if rule is not None and action == "delay_before":
            self._pause(rule)
        try:
            response = self._serve(request, rule)
        except StripeError as error:
            response = ApiResponse(error.status, error.body(), dict(error.headers))
        except Exception:  # a bug in the emulator: answer as Stripe does, and say why on stderr
            logger.exception("the emulator failed on %s %s", request.method, request.path)
            internal = api_error(500)
            response = ApiResponse(internal.status, internal.body())
        response.headers.setdefault("Request-Id", new_id("req", 14))
        response.headers.setdefault("Stripe-Version", request.headers.get("stripe-version", API_VERSION))
        if rule is not None and action == "delay_after":
            self._pause(rule)
        if action == "reset_after":
            response.reset_connection = True
        return response

    def _serve(self, request: ApiRequest, rule: FaultRule | None) -> ApiResponse:
        if not self.rate_limiter.allow(is_write=request.method != "GET"):
            raise rate_limited()
        credential = self._authenticate(request.headers.get("authorization", ""))
        handler, path_args = self._route(request.method, request.path)
        if credential.token is not None and handler not in self._sdk_handlers:
            raise token_not_allowed(request.method, request.path)
        values = parse_form(request.body if request.method == "POST" else request.query)
        api_version = request.headers.get("stripe-version") or API_VERSION
        if rule is not None and rule.action == "rate_limit":
            raise rate_limited()
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        if key is None:
            if rule is not None and rule.action == "error":
                raise api_error(rule.status or 500, should_retry=rule.should_retry)
            return self._run(handler, values, path_args, None, api_version, credential)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise invalid_request(
                f"Idempotency-Key must be between 1 and {MAX_KEY_LENGTH} characters long.", param="Idempotency-Key"
            )
        request_fingerprint = fingerprint(request.method, request.path, values)
        return self._run_once(handler, values, path_args, key, request_fingerprint, rule, api_version, credential)

    def _run_once(
        self,
        handler: Handler,
        values: dict[str, Any],
        path_args: dict[str, str],
        key: str,
        request_fingerprint: str,
        rule: FaultRule | None,
        api_version: str,
        credential: Credential,
    ) -> ApiResponse:
        """Execute under an idempotency key: replay what was saved, or run and save the first answer."""
        saved = self.idempotency.begin(key, request_fingerprint, self.clock.now())
        if saved is not None:
            headers = {name: value for name, value in saved.headers.items() if name != "Request-Id"}
            headers["Idempotent-Replayed"] = "true"
            return ApiResponse(saved.status, saved.body, headers)
        try:
            if rule is not None and rule.action == "error":
                # Stripe saves a 500 met while executing; a 502/503 or a 500 it asks to retry
                # never reached execution, so the key stays free.
                error = api_error(rule.status or 500, should_retry=rule.should_retry)
                error.saved = error.status == 500 and rule.should_retry is not True
                raise error
            if rule is not None and rule.action == "delay_during":
                self._pause(rule)
            response = self._run(handler, values, path_args, key, api_version, credential)
        except StripeError as error:
            if not error.saved:
                self.idempotency.release(key)
                raise
            response = ApiResponse(error.status, error.body(), dict(error.headers))
        except BaseException:
            self.idempotency.release(key)
            raise
        response.headers["Idempotency-Key"] = key
        response.headers["Original-Request"] = new_id("req", 14)
        response.headers["Request-Id"] = response.headers["Original-Request"]
        self.idempotency.save(key, SavedResponse(response.status, response.body, dict(response.headers)))
        return response

    def _run(
        self,
        handler: Handler,
        values: dict[str, Any],
        path_args: dict[str, str],
        key: str | None,
        api_version: str,
        credential: Credential,
    ) -> ApiResponse:
        with self._state_lock:
            now = self.clock.timestamp()
            self.payment_intents.expire_authorisations(now)
            mutation = Mutation(now, key, api_version, live=credential.live)
            body = handler(Call(Params(values), path_args, mutation, credential))
        return ApiResponse(200, body)

    def _route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler, match.groupdict()
        raise unrecognized_url(method, path)

    @property
    def _sdk_handlers(self) -> tuple[Handler, ...]:
        """What a connection token's bearer (a Terminal SDK) may call."""
        return (self._retrieve, self._confirm, self._sdk_collect, self._sdk_forward)

    def _authenticate(self, header: str) -> Credential:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic":  # curl -u sk_test_...: sends the key as the user name
            try:
                credentials = base64.b64decode(credentials).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                credentials = ""
        elif scheme.lower() != "bearer":
            raise authentication(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api"
                "#authentication for details, or we can help at https://support.stripe.com/."
            )
        key = credentials.strip()
        if key.startswith("pst_"):
            token = self.connection_tokens.get(key)
            if token is None:
                raise authentication("Invalid connection token provided: it was not issued by this account.")
            return Credential(live=token.live, token=token)
        if not key.startswith(self._key_prefixes) or len(key) <= len("sk_test_"):
            shown = f"{key[:8]}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"
            raise authentication(
                f"Invalid API Key provided: {shown}. The emulator accepts test-mode secret keys "
                "(sk_test_... or rk_test_...) only, and live-mode keys when started to accept them."
            )
        return Credential(live=key.startswith(LIVE_KEY_PREFIXES))

    def _pause(self, rule: FaultRule) -> None:
        self._wait(rule.seconds or 0)

    # -- resource handlers --------------------------------------------------------------------

    def _create(self, call: Call) -> dict[str, Any]:
        intent = self.payment_intents.create(call.params, call.mutation)
        return self.payment_intents.render(intent, call.params.expand())

    def _list(self, call: Call) -> dict[str, Any]:
        return list_intents(self.payment_intents, call.params)

    def _search(self, call: Call) -> dict[str, Any]:
        return self.search_index.search(call.params, self.clock.now())

    def _retrieve(self, call: Call) -> dict[str, Any]:
        intent = self.payment_intents.get(call.path_args["id"])
        if call.credential.token is not None:
            self._check_client_secret(call)
        call.params.string("client_secret")
        expand = call.params.expand()
        call.params.reject_unknown()
        return self.payment_intents.render(intent, expand)

    def _update(self, call: Call) -> dict[str, Any]:
        intent = self.payment_intents.update(call.path_args["id"], call.params, call.mutation)
        return self.payment_intents.render(intent, call.params.expand())

    def _confirm(self, call: Call) -> dict[str, Any]:
        if call.credential.token is not None:
            self._check_client_secret(call)
            intent = self.payment_intents.confirm_by_sdk(call.path_args["id"], call.params, call.mutation)
            return self.payment_intents.render(intent, [])
        intent = self.payment_intents.confirm(call.path_args["id"], call.params, call.mutation)
        return self.payment_intents.render(intent, call.params.expand())

    def _sdk_collect(self, call: Call) -> dict[str, Any]:
        if call.credential.token is None:
            raise authentication("This is a Terminal SDK's call: it is made with a connection token, not a secret key.")
        self._check_client_secret(call)
        intent = self.payment_intents.collect_by_sdk(call.path_args["id"], call.params, call.mutation)
        return self.payment_intents.render(intent, [])

    def _sdk_forward(self, call: Call) -> dict[str, Any]:
        if call.credential.token is None:
            raise authentication("This is a Terminal SDK's call: it is made with a connection token, not a secret key.")
        intent = self.payment_intents.forward_by_sdk(call.params, call.mutation)
        return self.payment_intents.render(intent, [])

    def _check_client_secret(self, call: Call) -> None:
        """A connection token's bearer acts on a PaymentIntent only with its client secret."""
        intent = self.payment_intents.get(call.path_args["id"])
        secret = call.params.string("client_secret", required=True) or ""
        if not hmac.compare_digest(secret.encode(), intent.client_secret.encode()):
            raise invalid_request(
                "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
                param="client_secret",
            )

    def _create_connection_token(self, call: Call) -> dict[str, Any]:
        return self.connection_tokens.create(call.params, live=call.credential.live).to_json()

    def _capture(self, call: Call) -> dict[str, Any]:
        intent = self.payment_intents.capture(call.path_args["id"], call.params, call.mutation)
        return self.payment_intents.render(intent, call.params.expand())

    def _increment_authorization(self, call: Call) -> dict[str, Any]:
        intent = self.payment_intents.increment_authorization(call.path_args["id"], call.params, call.mutation)
        return self.payment_intents.render(intent, call.params.expand())

    def _cancel(self, call: Call) -> dict[str, Any]:
        intent = self.payment_intents.cancel(call.path_args["id"], call.params, call.mutation)
        return self.payment_intents.render(intent, call.params.expand())

    def _create_location(self, call: Call) -> dict[str, Any]:
        return self.locations.create(call.params, call.mutation).to_json()

    def _list_locations(self, call: Call) -> dict[str, Any]:
        return self.locations.list(call.params)

    def _retrieve_location(self, call: Call) -> dict[str, Any]:
        return self.locations.retrieve(call.path_args["id"], call.params).to_json()

    def _delete_location(self, call: Call) -> dict[str, Any]:
        return self.locations.delete(call.path_args["id"], call.params, call.mutation)

    def _create_reader(self, call: Call) -> dict[str, Any]:
        return self.readers.create(call.params, call.mutation).to_json()

    def _list_readers(self, call: Call) -> dict[str, Any]:
        return self.readers.list(call.params)

    def _retrieve_reader(self, call: Call) -> dict[str, Any]:
        return self.readers.retrieve(call.path_args["id"], call.params).to_json()

    def _update_reader(self, call: Call) -> dict[str, Any]:
        return self.readers.update(call.path_args["id"], call.params, call.mutation).to_json()

    def _delete_reader(self, call: Call) -> dict[str, Any]:
        return self.readers.delete(call.path_args["id"], call.params, call.mutation)

    def _process(self, call: Call) -> dict[str, Any]:
        return self.readers.process_payment_intent(call.path_args["id"], call.params, call.mutation).to_json()

    def _collect(self, call: Call) -> dict[str, Any]:
        return self.readers.collect_payment_method(call.path_args["id"], call.params, call.mutation).to_json()

    def _confirm_on_reader(self, call: Call) -> dict[str, Any]:
        return self.readers.confirm_payment_intent(call.path_args["id"], call.params, call.mutation).to_json()

    def _refund_on_reader(self, call: Call) -> dict[str, Any]:
        return self.readers.refund_payment(call.path_args["id"], call.params, call.mutation).to_json()

    def _create_refund(self, call: Call) -> dict[str, Any]:
        return self.refunds.create(call.params, call.mutation).to_json()

    def _list_refunds(self, call: Call) -> dict[str, Any]:
        return self.refunds.list(call.params)

    def _retrieve_refund(self, call: Call) -> dict[str, Any]:
        return self.refunds.retrieve(call.path_args["id"], call.params).to_json()

    def _display(self, call: Call) -> dict[str, Any]:
        return self.readers.set_reader_display(call.path_args["id"], call.params, call.mutation).to_json()

    def _cancel_action(self, call: Call) -> dict[str, Any]:
        return self.readers.cancel_action(call.path_args["id"], call.params, call.mutation).to_json()

    def _present(self, call: Call) -> dict[str, Any]:
        return self.readers.present_payment_method(call.path_args["id"], call.params, call.mutation).to_json()
