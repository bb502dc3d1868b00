"""The daemon's door to Stripe's PaymentIntents: stripe-python calls in, `Outcome`s out.

This module and terminal_api.py (Stripe's smart readers, built on `stripe_client` here) are the
only ones in the daemon that use `stripe`; both import it lazily (when first used, or when an
answer is read) so that importing and starting the daemon stay light: the daemon builds the
gateway's client only after READY=1 (`prepare`).

Every method blocks (the worker runs it in a thread) and returns an `Outcome`: no Stripe-side
problem — a decline, a refusal, a timeout, an answer that cannot be read — escapes as an
exception. Every mutation takes the idempotency key that the caller committed before sending;
stripe-python's own retries (connection errors, timeouts, 409, 5xx) reuse that key.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .model import Card, CardSupport, Decline, Receipt, intent_of_client_secret
from .outcomes import (
    Declined,
    IntentView,
    KeyConflict,
    NotFound,
    Outcome,
    Refunded,
    RefundView,
    Refused,
    Succeeded,
    Unknown,
    WrongState,
)

if TYPE_CHECKING:
    import stripe
    from stripe.params import (
        PaymentIntentCancelParams,
        PaymentIntentCaptureParams,
        PaymentIntentConfirmParams,
        PaymentIntentCreateParams,
        PaymentIntentCreateParamsPaymentMethodOptionsCardPresent,
        PaymentIntentIncrementAuthorizationParams,
        PaymentIntentListParams,
        PaymentIntentUpdateParams,
        RefundCreateParams,
        RefundListParams,
    )

logger = logging.getLogger(__name__)

_KEY_HINT = "check STRIPE_API_KEY / [stripe] api_key_file / the stripe-api-key credential"


@dataclass(frozen=True)
class GatewaySettings:
    api_key: str = field(repr=False)
    api_base: str | None = None  # None: Stripe's own
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_network_retries: int = 2
    country: str = ""  # the Stripe account's country ("CA": payments may take Interac), "" when not said

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError(f"no Stripe API key: {_KEY_HINT}")
        if not (self.connect_timeout_s > 0 and self.read_timeout_s > 0):
            raise ValueError(
                "Stripe timeouts must be positive; "
                f"got connect {self.connect_timeout_s} s, read {self.read_timeout_s} s"
            )
        if self.max_network_retries < 0:
            raise ValueError(f"max_network_retries must be 0 or more; got {self.max_network_retries}")


class StripeGateway:
    """PaymentIntents at Stripe (or at an emulator, with `api_base`), card present only."""

    def __init__(self, settings: GatewaySettings, http_client: stripe.HTTPClient | None = None) -> None:
        """`http_client`: stripe-python's transport; None for its default (a simulation passes its own)."""
        self.settings = settings
        self._http_client = http_client
        self._client: stripe.StripeClient | None = None
        self._building = threading.Lock()  # worker threads may make the first calls at once

    def prepare(self) -> None:
        """Build stripe-python's client now, if not yet: importing stripe takes a fifth of a second
        here and several times that on a Pi, which neither the daemon's start nor its first request
        should wait for (the daemon calls this in a thread once it is ready)."""
        self._stripe()

    def _stripe(self) -> stripe.StripeClient:
        client = self._client
        if client is None:
            with self._building:
                client = self._client
                if client is None:
                    client = self._client = stripe_client(self.settings, self._http_client)
        return client

    @property
    def _intents(self) -> stripe.PaymentIntentService:
        return self._stripe().v1.payment_intents

    @property
    def _refunds(self) -> stripe.RefundService:
        return self._stripe().v1.refunds

    # -- PaymentIntents -----------------------------------------------------------------------

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        capture_method: str = "manual",
        metadata: Mapping[str, str],
        description: str | None = None,
        idempotency_key: str,
        incremental: bool = False,
        extended: bool = False,
    ) -> Outcome:
        """`incremental` and `extended` ask for incremental authorisation support and an extended
        authorisation window (card_present's request_incremental_authorization_support and
        request_extended_authorization; what was granted is on the charge once authorised)."""
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": currency,
            "allowed_payment_method_types": ["card_present"],
            "capture_method": capture_method,
            "metadata": dict(metadata),
            "expand": ["latest_charge"],
        }
        if self.takes_interac(currency):
            # Interac is single-message: captured as it is authorised, never held (Stripe refuses
            # capture_method=manual with interac_present since 2025-03-31.basil). Cards are still held
            # for a manual capture through their own option (2025-11-17.clover): manual_preferred holds
            # them wherever the card's network allows, and never declines where it does not.
            params["allowed_payment_method_types"] = ["card_present", "interac_present"]
            if capture_method == "manual":
                params["capture_method"] = "automatic"
                params["payment_method_options"] = {"card_present": {"capture_method": "manual_preferred"}}
        if incremental or extended:
            card_present: PaymentIntentCreateParamsPaymentMethodOptionsCardPresent = {}
            if self.takes_interac(currency) and capture_method == "manual":
                card_present["capture_method"] = "manual_preferred"
            if incremental:
                card_present["request_incremental_authorization_support"] = True
            if extended:
                card_present["request_extended_authorization"] = True
            params["payment_method_options"] = {"card_present": card_present}
        if description is not None:
            params["description"] = description
        return self._call(
            "create", None, idempotency_key, lambda: self._intents.create(params, {"idempotency_key": idempotency_key})
        )

    def takes_interac(self, currency: str) -> bool:
        """Whether a payment in `currency` may take an Interac debit card: a Canadian account's (or a
        CAD payment; Stripe leaves Interac out of a payment it cannot serve)."""
        return currency == "cad" or self.settings.country == "CA"

    def retrieve_intent(self, intent_id: str) -> Outcome:
        return self._call(
            "retrieve", intent_id, None, lambda: self._intents.retrieve(intent_id, {"expand": ["latest_charge"]})
        )

    def retrieve_by_client_secret(self, client_secret: str) -> Outcome:
        """The PaymentIntent a POS backend created, named by its client secret (which must match it)."""
        intent_id = intent_of_client_secret(client_secret)
        if intent_id is None:
            refused = Refused(
                "payment_intent_client_secret is not a PaymentIntent client secret (pi_..._secret_...)",
                param="payment_intent_client_secret",
            )
            _log("retrieve_by_client_secret", None, None, refused)
            return refused
        return self._call(
            "retrieve_by_client_secret",
            intent_id,
            None,
            lambda: self._intents.retrieve(intent_id, {"expand": ["latest_charge"]}),
            client_secret=client_secret,
        )

    def update_metadata(self, intent_id: str, metadata: Mapping[str, str], idempotency_key: str) -> Outcome:
        """Merge `metadata` into the PaymentIntent's (an empty value removes a key)."""
        params: PaymentIntentUpdateParams = {"metadata": dict(metadata), "expand": ["latest_charge"]}
        return self._call(
            "update_metadata",
            intent_id,
            idempotency_key,
            lambda: self._intents.update(intent_id, params, {"idempotency_key": idempotency_key}),
        )

    def confirm_intent(self, intent_id: str, payment_method: str, idempotency_key: str) -> Outcome:
        params: PaymentIntentConfirmParams = {"payment_method": payment_method, "expand": ["latest_charge"]}
        return self._call(
            "confirm",
            intent_id,
            idempotency_key,
            lambda: self._intents.confirm(intent_id, params, {"idempotency_key": idempotency_key}),
        )

    def capture_intent(self, intent_id: str, amount_to_capture: int | None, idempotency_key: str) -> Outcome:
        """Capture `amount_to_capture` (None: all that is capturable); the rest of the hold is released."""
        params: PaymentIntentCaptureParams = {"expand": ["latest_charge"]}
        if amount_to_capture is not None:
            params["amount_to_capture"] = amount_to_capture
        return self._call(
            "capture",
            intent_id,
            idempotency_key,
            lambda: self._intents.capture(intent_id, params, {"idempotency_key": idempotency_key}),
        )

    def increment_authorization(self, intent_id: str, amount: int, idempotency_key: str) -> Outcome:
        """Raise the authorised hold to `amount`, the new total (Stripe's increment_authorization). A
        decline is `Declined` (the hold stays as it was); a PaymentIntent that cannot be raised, `WrongState`
        or `Refused`."""
        params: PaymentIntentIncrementAuthorizationParams = {"amount": amount, "expand": ["latest_charge"]}
        return self._call(
            "increment_authorization",
            intent_id,
            idempotency_key,
            lambda: self._intents.increment_authorization(intent_id, params, {"idempotency_key": idempotency_key}),
        )

    def cancel_intent(self, intent_id: str, reason: str | None, idempotency_key: str) -> Outcome:
        """Cancel; `reason` one of abandoned, duplicate, fraudulent, requested_by_customer (or None)."""
        params: PaymentIntentCancelParams = {"expand": ["latest_charge"]}
        if reason is not None:
            params["cancellation_reason"] = reason
        return self._call(
            "cancel",
            intent_id,
            idempotency_key,
            lambda: self._intents.cancel(intent_id, params, {"idempotency_key": idempotency_key}),
        )

    def list_intents(
        self, *, created_gte: int, created_lt: int, page_size: int = 100
    ) -> list[IntentView] | Unknown | Refused:
        """Every PaymentIntent created in [created_gte, created_lt), newest first, all pages.

        The list endpoint reads its own writes (search lags); filtering by metadata is the caller's job.
        """
        views: list[IntentView] = []
        failed = self.each_intent(
            created_gte=created_gte, created_lt=created_lt, visit=views.append, page_size=page_size
        )
        return views if failed is None else failed

    def each_intent(
        self,
        *,
        created_gte: int,
        created_lt: int,
        visit: Callable[[IntentView], None],
        page_size: int = 100,
        charges: bool = True,
    ) -> Unknown | Refused | None:
        """`visit` each PaymentIntent created in [created_gte, created_lt) once, newest first, a page at a
        time; None once all were visited, or why the list could not be read (some may have been visited).

        Only one page of Stripe's objects is held at a time: a window of thousands of PaymentIntents
        costs the caller what it keeps of them, not the whole list. Without `charges` the latest charge
        is not expanded (no card, receipt or capture deadline in the views): a third of the answer.
        """
        import stripe

        params: PaymentIntentListParams = {"created": {"gte": created_gte, "lt": created_lt}, "limit": page_size}
        if charges:
            params["expand"] = ["data.latest_charge"]
        seen: set[str] = set()
        try:
            for intent in self._intents.list(params).auto_paging_iter():
                view = _intent_view(intent)
                if view.id not in seen:
                    seen.add(view.id)
                    visit(view)
        except stripe.StripeError as error:
            return self._failed_read("list", error)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            unreadable = Unknown(f"Stripe's list of PaymentIntents could not be read: {error!r}")
            _log("list", None, None, unreadable)
            return unreadable
        logger.debug("stripe list created=[%d, %d) -> %d PaymentIntents", created_gte, created_lt, len(seen))
        return None

    def search_intents(self, query: str) -> list[IntentView] | Unknown | Refused:
        """Every PaymentIntent Stripe's search finds for `query` (its query language), all pages.

        Search lags the PaymentIntents themselves (a minute, an hour during outages) and answers
        from that lagging copy: what it does not find may exist, and what it finds may have moved on.
        """
        import stripe

        views: dict[str, IntentView] = {}
        try:
            for intent in self._intents.search({"query": query, "limit": 100}).auto_paging_iter():
                view = _intent_view(intent)
                views.setdefault(view.id, view)
        except stripe.StripeError as error:
            return self._failed_read("search", error)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            unreadable = Unknown(f"Stripe's search of PaymentIntents could not be read: {error!r}")
            _log("search", None, None, unreadable)
            return unreadable
        logger.debug("stripe search %s -> %d PaymentIntents", query, len(views))
        return list(views.values())

    def list_recent_intents(self, *, window_s: int, max_pages: int) -> list[IntentView] | Unknown | Refused:
        """Every PaymentIntent created within `window_s` before the account's newest one, newest first.

        The window is measured on Stripe's clock (the newest PaymentIntent's `created`), never this
        machine's: so it holds at least every PaymentIntent made in the last `window_s` seconds. More
        than `max_pages` pages of 100 is an Unknown: what was listed cannot tell the rest.
        """
        import stripe

        views: list[IntentView] = []
        params: PaymentIntentListParams = {"limit": 100, "expand": ["data.latest_charge"]}
        newest: int | None = None
        try:
            for _ in range(max_pages):
                page = self._intents.list(params)
                listed = [_intent_view(intent) for intent in page.data]
                if not listed:
                    return views
                newest = listed[0].created if newest is None else newest
                cutoff = newest - window_s
                views.extend(view for view in listed if view.created >= cutoff)
                if not page.has_more or listed[-1].created < cutoff:
                    return views
                params = {**params, "created": {"gte": cutoff}, "starting_after": listed[-1].id}
        except stripe.StripeError as error:
            return self._failed_read("list", error)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            unreadable = Unknown(f"Stripe's list of PaymentIntents could not be read: {error!r}")
            _log("list", None, None, unreadable)
            return unreadable
        return Unknown(
            f"more than {max_pages * 100} PaymentIntents were made on the account within {window_s} s: "
            "the recent ones could not all be listed"
        )

    @staticmethod
    def _failed_read(op: str, error: stripe.StripeError) -> Unknown | Refused:
        outcome = _outcome_of_error(error)
        failed = outcome if isinstance(outcome, (Unknown, Refused)) else Refused(_message(error), code=error.code)
        _log(op, None, None, failed, error.request_id)
        return failed

    # -- Refunds ------------------------------------------------------------------------------

    def create_refund(
        self, *, payment_intent: str, amount: int, reason: str | None, metadata: Mapping[str, str], idempotency_key: str
    ) -> Outcome:
        """Refund `amount` of the PaymentIntent's charge, online (not for Interac: Stripe refuses it)."""
        import stripe

        params: RefundCreateParams = {"payment_intent": payment_intent, "amount": amount, "metadata": dict(metadata)}
        if reason is not None:
            params["reason"] = reason  # one of REFUND_REASONS, checked before
        request_id: str | None = None
        outcome: Outcome
        try:
            refund = self._refunds.create(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            outcome = _outcome_of_error(error)
            request_id = error.request_id
        else:
            request_id = refund.last_response.request_id if refund.last_response else None
            try:
                view = _refund_view(refund)
            except (AttributeError, KeyError, TypeError, ValueError) as error:
                outcome = Unknown(f"Stripe's answer could not be read as a Refund: {error!r}")
            else:
                headers = refund.last_response.headers if refund.last_response else None
                outcome = Refunded(view, replayed=_replayed(headers))
        _log("refund", payment_intent, idempotency_key, outcome, request_id)
        return outcome

    def list_refunds(self, payment_intent: str) -> list[RefundView] | Unknown | Refused:
        """Every refund of the PaymentIntent, all pages (the list endpoint reads its own writes)."""
        import stripe

        params: RefundListParams = {"payment_intent": payment_intent, "limit": 100}
        views: dict[str, RefundView] = {}
        try:
            for refund in self._refunds.list(params).auto_paging_iter():
                view = _refund_view(refund)
                views.setdefault(view.id, view)
        except stripe.StripeError as error:
            outcome = _outcome_of_error(error)
            failed = outcome if isinstance(outcome, (Unknown, Refused)) else Refused(_message(error), code=error.code)
            _log("list_refunds", payment_intent, None, failed, error.request_id)
            return failed
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            unreadable = Unknown(f"Stripe's list of refunds could not be read: {error!r}")
            _log("list_refunds", payment_intent, None, unreadable)
            return unreadable
        logger.debug("stripe list refunds of %s -> %d refunds", payment_intent, len(views))
        return list(views.values())

    # -- one request ---------------------------------------------------------------------------

    def _call(
        self,
        op: str,
        intent_id: str | None,
        idempotency_key: str | None,
        send: Callable[[], stripe.PaymentIntent],
        *,
        client_secret: str | None = None,
    ) -> Outcome:
        import stripe

        request_id: str | None = None
        outcome: Outcome
        if intent_id is not None and not intent_id.strip():
            # stripe-python would send it as /v1/payment_intents/, another endpoint.
            outcome = Refused("a PaymentIntent id is needed", param="intent")
        else:
            try:
                intent = send()
            except stripe.StripeError as error:
                outcome = _outcome_of_error(error)
                request_id = error.request_id
            else:
                request_id = intent.last_response.request_id if intent.last_response else None
                outcome = _succeeded(intent, client_secret)
        _log(op, intent_id, idempotency_key, outcome, request_id)
        return outcome


def stripe_client(settings: GatewaySettings, http_client: stripe.HTTPClient | None = None) -> stripe.StripeClient:
    """stripe-python configured as the daemon uses it: explicit timeouts and retries, maybe an emulator."""
    import stripe

    if http_client is None:
        http_client = stripe.RequestsClient(timeout=(settings.connect_timeout_s, settings.read_timeout_s))
    if settings.api_base is None:
        return stripe.StripeClient(
            settings.api_key, http_client=http_client, max_network_retries=settings.max_network_retries
        )
    return stripe.StripeClient(
        settings.api_key,
        base_addresses={"api": settings.api_base},
        http_client=http_client,
        max_network_retries=settings.max_network_retries,
    )


def _succeeded(intent: stripe.PaymentIntent, client_secret: str | None) -> Outcome:
    try:
        view = _intent_view(intent)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        # A 2xx whose body is not a PaymentIntent (a proxy, a captive portal): applied or not, unknown.
        return Unknown(f"Stripe's answer could not be read as a PaymentIntent: {error!r}")
    if client_secret is not None:
        secret = intent.client_secret if "client_secret" in intent else None
        if not isinstance(secret, str) or not hmac.compare_digest(secret.encode(), client_secret.encode()):
            return Refused(
                f"payment_intent_client_secret does not belong to PaymentIntent {view.id}",
                param="payment_intent_client_secret",
            )
    headers = intent.last_response.headers if intent.last_response else None
    return Succeeded(view, replayed=_replayed(headers))


def _outcome_of_error(error: stripe.StripeError) -> Outcome:
    """The daemon's word for a stripe-python exception (https://docs.stripe.com/error-handling)."""
    import stripe

    status = error.http_status
    details = error.error
    message = _message(error)
    if isinstance(error, stripe.CardError):
        decline = Decline(
            code=error.code or _text(details, "code") or "card_declined",
            decline_code=_text(details, "decline_code"),
            message=message,
        )
        return Declined(decline, _embedded_intent(details))
    if isinstance(error, stripe.RateLimitError):
        return Unknown(f"Stripe is limiting the request rate ({status}): {message}", rate_limited=True)
    if isinstance(error, stripe.IdempotencyError):
        return KeyConflict(message)
    if isinstance(error, stripe.AuthenticationError):
        # Stripe's own message shows part of the key: leave it out.
        return Refused(f"Stripe refused the API key ({status}): {_KEY_HINT}", authentication=True)
    if isinstance(error, stripe.PermissionError):
        return Refused(
            f"Stripe refused the request: the API key lacks a permission ({status}); a restricted key (rk_...) "
            f"needs write access to PaymentIntents: {_KEY_HINT}",
            authentication=True,
        )
    if isinstance(error, stripe.InvalidRequestError):
        code = error.code or _text(details, "code")
        param = error.param or _text(details, "param")
        if code == "payment_intent_unexpected_state":
            return WrongState(message, _embedded_intent(details))
        if code == "resource_missing" and status == 404:
            return NotFound(message)
        # resource_missing on a 400 names a missing object in the body (e.g. the payment_method).
        return Refused(message, code=code, param=param)
    if isinstance(error, stripe.APIError):
        replayed = status is not None and status >= 500 and _replayed(error.headers)
        return Unknown(f"Stripe answered {status}: {message}", replayed_server_error=replayed)
    if isinstance(error, stripe.APIConnectionError):
        return Unknown(f"Stripe could not be reached: {message}", unreachable=True)
    return Refused(message, code=error.code)


def _message(error: stripe.StripeError) -> str:
    return error.user_message or type(error).__name__


def _replayed(headers: Mapping[str, str] | None) -> bool:
    """Whether the answer is one Stripe saved earlier under the idempotency key."""
    return any(
        name.lower() == "idempotent-replayed" and value.strip().lower() == "true"
        for name, value in (headers or {}).items()
    )


def _log(op: str, intent_id: str | None, key: str | None, outcome: Outcome, request_id: str | None = None) -> None:
    if intent_id is None and isinstance(outcome, Succeeded):
        intent_id = outcome.intent.id
    logger.debug(
        "stripe %s intent=%s idempotency_key=%s -> %s (request %s)",
        op,
        intent_id,
        key,
        type(outcome).__name__,
        request_id,
    )


# -- PaymentIntent -> IntentView ----------------------------------------------------------------


def _intent_view(intent: stripe.PaymentIntent) -> IntentView:
    card, capture_before = _card_of(intent.latest_charge)
    return IntentView(
        id=intent.id,
        status=intent.status,
        amount=intent.amount,
        currency=intent.currency,
        amount_capturable=intent.amount_capturable,
        amount_received=intent.amount_received,
        created=intent.created,
        metadata={str(name): str(value) for name, value in intent.metadata.to_dict().items()}
        if intent.metadata is not None
        else {},
        cancellation_reason=intent.cancellation_reason,
        card=card,
        capture_before=capture_before,
        last_decline=_decline_of(intent.last_payment_error),
        receipt=_receipt_of(intent.latest_charge),
        card_support=_card_support_of(intent),
    )


def _card_support_of(intent: stripe.PaymentIntent) -> CardSupport | None:
    """What the latest charge says the card allows (and whether a longer window was asked for), when the
    charge was expanded, succeeded and was read by a card reader; None otherwise (Interac: nothing)."""
    charge = intent.latest_charge
    if charge is None or isinstance(charge, str) or charge.status != "succeeded":
        return None
    present = _part(charge.payment_method_details, "card_present")
    if present is None:
        return None
    options = _part(_part(intent, "payment_method_options"), "card_present")
    return CardSupport(
        incremental_authorization_supported=_part(present, "incremental_authorization_supported") is True,
        overcapture_supported=_part(present, "overcapture_supported") is True,
        extended_authorization_requested=_part(options, "request_extended_authorization") is True,
    )


def _refund_view(refund: stripe.Refund) -> RefundView:
    intent = refund.payment_intent
    return RefundView(
        id=refund.id,
        status=str(refund.status),
        amount=refund.amount,
        payment_intent=intent if isinstance(intent, str) or intent is None else intent.id,
        metadata={str(name): str(value) for name, value in refund.metadata.to_dict().items()}
        if refund.metadata is not None
        else {},
        failure_reason=_text(refund, "failure_reason"),
    )


def _card_of(charge: str | stripe.Charge | None) -> tuple[Card | None, int | None]:
    """The card and the capture deadline from the latest charge, when it was expanded and succeeded."""
    if charge is None or isinstance(charge, str) or charge.status != "succeeded":
        return None, None
    details = charge.payment_method_details
    if details is None:
        return None, None
    # Stripe sends only the key of the charge's own type: look before reading.
    present: stripe.StripeObject | None = None
    capture_before: int | None = None
    if "card_present" in details and details.card_present is not None:
        present = details.card_present
        capture_before = details.card_present.capture_before
    elif "interac_present" in details and details.interac_present is not None:
        present = details.interac_present
    brand, last4 = _text(present, "brand"), _text(present, "last4")
    if brand is None or last4 is None:
        return None, capture_before
    wallet: Any = present["wallet"] if present is not None and "wallet" in present else None
    card = Card(
        brand=brand,
        last4=last4,
        read_method=_text(present, "read_method") or "unknown",
        wallet=_text(wallet, "type") if wallet is not None and not isinstance(wallet, str) else None,
        network=_text(present, "network"),
    )
    return card, capture_before


def _receipt_of(charge: str | stripe.Charge | None) -> Receipt | None:
    """What a receipt needs from the latest charge, approved or declined, when it was expanded and
    was read by a card reader (card_present or interac_present); None otherwise."""
    import stripe

    if charge is None or isinstance(charge, str) or charge.payment_method_details is None:
        return None
    details = charge.payment_method_details
    present = _part(details, "card_present") or _part(details, "interac_present")
    if not isinstance(present, stripe.StripeObject):
        return None
    emv = _part(present, "receipt")
    wallet = _part(present, "wallet")
    url = _part(charge, "receipt_url")
    return Receipt(
        brand=_text(present, "brand"),
        last4=_text(present, "last4"),
        read_method=_text(present, "read_method"),
        wallet=_text(wallet, "type") if isinstance(wallet, stripe.StripeObject) else None,
        account_type=_text(emv, "account_type"),
        application_preferred_name=_text(emv, "application_preferred_name"),
        dedicated_file_name=_text(emv, "dedicated_file_name"),
        authorization_code=_text(emv, "authorization_code"),
        authorization_response_code=_text(emv, "authorization_response_code"),
        application_cryptogram=_text(emv, "application_cryptogram"),
        terminal_verification_results=_text(emv, "terminal_verification_results"),
        transaction_status_information=_text(emv, "transaction_status_information"),
        cardholder_verification_method=_text(emv, "cardholder_verification_method"),
        receipt_url=url if isinstance(url, str) else None,
    )


def _decline_of(error: stripe.StripeObject | None) -> Decline | None:
    """A PaymentIntent's last_payment_error (Stripe leaves out its null fields)."""
    if error is None:
        return None
    return Decline(
        code=_text(error, "code") or _text(error, "type") or "unknown",
        decline_code=_text(error, "decline_code"),
        message=_text(error, "message") or "",
    )


def _embedded_intent(details: stripe.ErrorObject | None) -> IntentView | None:
    """The PaymentIntent an error body carries, if it carries one that can be read."""
    intent = details.payment_intent if details is not None else None
    if intent is None:
        return None
    try:
        return _intent_view(intent)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _part(obj: stripe.StripeObject | None, name: str) -> Any:
    """A field of a Stripe object, or None when the answer left it out (a StripeObject has no .get)."""
    return obj[name] if obj is not None and name in obj else None


def _text(obj: stripe.StripeObject | None, name: str) -> str | None:
    value: Any = obj[name] if obj is not None and name in obj else None
    return value if isinstance(value, str) else None
