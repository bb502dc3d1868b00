"""PaymentIntents and their charges, for card-present payments with manual capture.

The life cycle Stripe Terminal uses: `requires_payment_method` -> (confirm with a payment
method) -> `requires_capture`, or back to `requires_payment_method` on a decline -> (capture) ->
`succeeded`; cancel from any `requires_*` state -> `canceled`. An uncaptured authorisation that
passes its `capture_before` deadline is canceled by Stripe. Handlers run under the emulator's
state lock and raise `StripeError` for everything Stripe refuses.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from readerhost.daemon.payments import currencies

from .errors import (
    StripeError,
    intent_invalid_state,
    invalid_request,
    no_such,
    not_made_by_a_reader,
    unexpected_state,
    unknown_param,
)
from .forms import FormValue, Params
from .ids import new_id, random_token
from .journal import Journal
from .receipts import emv_auth_data, receipt
from .testcards import (
    Decline,
    PresentedCard,
    amount_decline,
    authorisation_window_s,
    decline_for,
    extended_authorisation_window_s,
    increment_decline,
    resolve_payment_method,
    supports_incremental_authorisation,
)

PAYMENT_METHOD_TYPES = ("card_present", "interac_present", "card")
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
# API versions that changed how a PaymentIntent's payment method types are chosen.
ALLOWED_PAYMENT_METHOD_TYPES_ADDED = "2026-07-29"
# Interac takes no manual capture from then on: it is a single-message network (Stripe's changelog,
# 2025-03-31.basil, "Removes manual capture method for Interac cards").
INTERAC_MANUAL_CAPTURE_REMOVED = "2025-03-31"
PAYMENT_METHOD_TYPES_REMOVED = "2026-09-30"
# `payment_method_options[card_present][capture_method]` (manual, manual_preferred) overrides the
# top-level capture_method for card_present from then on (Stripe's changelog 2025-11-17.clover, "Adds the
# ability to specify the capture method for card present payments with Payment Intents"): with it a
# PaymentIntent that also allows Interac (automatic capture) still holds a card_present authorisation.
CARD_PRESENT_CAPTURE_METHOD_ADDED = "2025-11-17"
CARD_PRESENT_CAPTURE_METHODS = ("manual", "manual_preferred")
# The flexible-authorisation requests of payment_method_options[card_present] (docs/stripe-emulator.md).
CARD_PRESENT_REQUESTS = ("request_extended_authorization", "request_incremental_authorization_support")
# "Each PaymentIntent can have a maximum of 10 incremental authorization attempts, including declines"
# (API reference, increment_authorization).
MAX_INCREMENT_ATTEMPTS = 10
CLIENT_CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
# Stripe's metadata limits.
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
# Expansions the emulator can answer; the others are nullable references it never sets.
EXPANDABLE = ("latest_charge", "customer", "invoice", "review", "application", "on_behalf_of")


@dataclass
class Charge:
    id: str
    payment_intent: str
    amount: int
    currency: str
    created: int
    presented: PresentedCard
    description: str | None
    metadata: dict[str, str]
    decline: Decline | None
    capture_before: int | None
    amount_captured: int = 0
    amount_refunded: int = 0
    captured: bool = False
    balance_transaction: str | None = None
    reader: str | None = None  # the simulated reader that read the card, when one did
    incremental_authorization_supported: bool = False  # asked for, and the card's brand allows it

    @property
    def succeeded(self) -> bool:
        return self.decline is None

    def to_json(self) -> dict[str, Any]:
        card = self.presented.card
        kind = "interac_present" if card.interac else "card_present"
        details: dict[str, Any] = {
            "brand": card.brand,
            "cardholder_name": None,
            "country": "CA" if card.interac else "US",
            "description": None,
            "emv_auth_data": emv_auth_data(self.decline),
            "exp_month": 12,
            "exp_year": 2030,
            "fingerprint": hashlib.sha256(card.name.encode()).hexdigest()[:16],
            "funding": card.funding,
            "generated_card": None,
            "iin": None,
            "issuer": None,
            "last4": card.last4,
            "location": None,
            "network": card.brand,
            "network_transaction_id": None,
            "preferred_locales": ["en"],
            "read_method": self.presented.read_method,
            "reader": self.reader,
            "receipt": receipt(self.presented, self.id, self.decline),
        }
        if not card.interac:  # fields Stripe's interac_present details do not have
            details |= {
                "amount_authorized": self.amount if self.succeeded else None,
                "brand_product": None,
                "incremental_authorization_supported": self.incremental_authorization_supported,
                "offline": None,
                "overcapture_supported": False,
                "wallet": None,
            }
        if self.capture_before is not None:  # a failed or captured-at-once charge has none: Stripe leaves it out
            details["capture_before"] = self.capture_before
        if self.decline is None:
            outcome = {
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "seller_message": "Payment complete.",
                "type": "authorized",
            }
        else:
            outcome = {
                "network_status": "declined_by_network",
                "reason": self.decline.decline_code,
                "risk_level": "normal",
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined",
            }
        return {
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": self.balance_transaction,
            "billing_details": _no_billing_details(),
            "calculated_statement_descriptor": "READERHOST",
            "captured": self.captured,
            "created": self.created,
            "currency": self.currency,
            "customer": None,
            "description": self.description,
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": self.decline.code if self.decline else None,
            "failure_message": self.decline.message if self.decline else None,
            "fraud_details": {},
            "invoice": None,
            "livemode": False,
            "metadata": dict(self.metadata),
            "on_behalf_of": None,
            "outcome": outcome,
            "paid": self.succeeded,
            "payment_intent": self.payment_intent,
            "payment_method": self.presented.reference,
            "payment_method_details": {kind: details, "type": kind},
            "radar_options": {},
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{self.id}",
            "refunded": self.succeeded and self.amount_refunded == self.amount,
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded" if self.succeeded else "failed",
            "transfer_data": None,
            "transfer_group": None,
        }


@dataclass
class PaymentIntent:
    id: str
    seq: int
    amount: int
    currency: str
    capture_method: str
    created: int
    payment_method_types: list[str]
    allowed_payment_method_types: list[str] | None
    metadata: dict[str, str]
    description: str | None
    receipt_email: str | None
    statement_descriptor_suffix: str | None
    client_secret: str
    status: str = "requires_payment_method"
    payment_method: str | None = None
    latest_charge: str | None = None
    last_payment_error: dict[str, Any] | None = None
    amount_capturable: int = 0
    amount_received: int = 0
    amount_tip: int | None = None  # chosen by the customer on a reader
    card_present_capture_method: str | None = None  # payment_method_options[card_present][capture_method]
    request_extended_authorization: bool = False  # payment_method_options[card_present][...], as asked
    request_incremental_authorization_support: bool = False
    increment_attempts: int = 0  # increment_authorization attempts, declines included
    canceled_at: int | None = None
    cancellation_reason: str | None = None
    # Its payment method was made by a reader (a smart reader, or a Terminal SDK's collect): the
    # only card-present payment method a live-mode account can confirm with.
    collected_by_reader: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment_intent",
            "allowed_payment_method_types": self.allowed_payment_method_types,
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_details": {"tip": {} if self.amount_tip is None else {"amount": self.amount_tip}},
            "amount_received": self.amount_received,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": self.capture_method,
            "client_secret": self.client_secret,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": None,
            "description": self.description,
            "excluded_payment_method_types": None,
            "invoice": None,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": self.payment_method,
            "payment_method_options": {
                kind: {
                    "capture_method": self.card_present_capture_method,
                    "request_extended_authorization": self.request_extended_authorization,
                    "request_incremental_authorization_support": self.request_incremental_authorization_support,
                }
                if kind == "card_present"
                else {}
                for kind in self.payment_method_types
            },
            "payment_method_types": list(self.payment_method_types),
            "processing": None,
            "receipt_email": self.receipt_email,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": self.statement_descriptor_suffix,
            "status": self.status,
            "transfer_data": None,
            "transfer_group": None,
        }


@dataclass
class Mutation:
    """What a handler needs to know about the request it serves."""

    now: int
    idempotency_key: str | None
    api_version: str
    live: bool = False  # made with a live-mode key (an emulator started to accept them)


@dataclass
class PaymentIntentStore:
    """All PaymentIntents and charges of the emulated account."""

    journal: Journal
    on_change: Callable[[PaymentIntent, int], None] = lambda intent, at: None
    intents: dict[str, PaymentIntent] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    # Decline codes the next increment_authorization attempts meet, in order (the control interface's
    # POST /_emulator/increment_declines): how a test makes an issuer decline an increment.
    increment_declines: list[str] = field(default_factory=list)
    # (created, seq, id) of every PaymentIntent, ascending: the list endpoint's order and its
    # `created` filter by bisection, so an account of hundreds of thousands lists as fast as a small one.
    order: list[tuple[int, int, str]] = field(default_factory=list)
    # PaymentIntents authorised and perhaps still `requires_capture`: the only ones an authorisation
    # expiry can touch, so each request does not walk the whole account (dropped once they move on).
    held: set[str] = field(default_factory=set)
    _next_seq: int = 0

    # -- reading -------------------------------------------------------------------------------

    def get(self, intent_id: str, *, param: str = "intent") -> PaymentIntent:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise no_such("payment_intent", intent_id, param=param)
        return intent

    @staticmethod
    def _expansions(params: Params) -> list[str]:
        """The request's `expand`, checked before anything changes: Stripe refuses a request that
        names a property it cannot expand without applying it."""
        expand = params.expand()
        for name in expand:
            _check_expandable(name)
        return expand

    def render(self, intent: PaymentIntent, expand: list[str], prefix: str = "") -> dict[str, Any]:
        """The PaymentIntent's JSON with the requested expansions (`prefix` is e.g. `data.` in lists)."""
        body = intent.to_json()
        for path in expand:
            if prefix and not path.startswith(prefix):
                continue
            name = path[len(prefix) :]
            _check_expandable(name)
            if name == "latest_charge" and intent.latest_charge is not None:
                body["latest_charge"] = self.charges[intent.latest_charge].to_json()
        return body

    def expire_authorisations(self, now: int) -> list[PaymentIntent]:
        """Cancel, as Stripe does, every uncaptured authorisation whose capture window has closed."""
        expired = []
        for intent_id in sorted(self.held, key=lambda held: self.intents[held].seq):
            intent = self.intents[intent_id]
            if intent.status != "requires_capture" or intent.latest_charge is None:
                self.held.discard(intent_id)  # captured or canceled: it never holds again
                continue
            charge = self.charges[intent.latest_charge]
            if charge.capture_before is not None and charge.capture_before <= now:
                self._release(intent, charge)
                intent.status = "canceled"
                intent.cancellation_reason = "automatic"
                intent.canceled_at = charge.capture_before
                self._journal("payment_intent.expire", intent, charge.capture_before, None, intent.amount)
                expired.append(intent)
        return expired

    # -- mutations -----------------------------------------------------------------------------

    def next_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

    def add(self, intent: PaymentIntent) -> None:
        """Hold a new PaymentIntent (made by a request, or preloaded in-process)."""
        self.intents[intent.id] = intent
        bisect.insort(self.order, (intent.created, intent.seq, intent.id))

    def create(self, params: Params, mutation: Mutation) -> PaymentIntent:
        amount = params.required_integer("amount")
        currency = validate_currency(params.required_string("currency", max_length=3))
        _validate_amount(amount, currency)
        types, allowed_types = self._payment_method_types(params, currency, mutation.api_version)
        capture_method = params.choice("capture_method", CAPTURE_METHODS) or "automatic_async"
        card_present = _card_present_options(params.mapping("payment_method_options"), mutation)
        card_present_capture = card_present.get("capture_method")
        if "card_present" in types and capture_method != "manual" and card_present_capture is None:
            raise invalid_request(
                "PaymentIntents with card_present payment method types must use capture_method=manual, or "
                "payment_method_options[card_present][capture_method]=manual or manual_preferred.",
                param="capture_method",
            )
        if (
            "interac_present" in types
            and capture_method == "manual"
            and mutation.api_version >= INTERAC_MANUAL_CAPTURE_REMOVED
        ):
            raise invalid_request(
                "The interac_present payment method type does not support capture_method=manual; "
                "use automatic or automatic_async.",
                param="capture_method",
            )
        metadata = validate_metadata(params.mapping("metadata") or {})
        description = params.string("description", max_length=1000)
        receipt_email = params.string("receipt_email", max_length=800)
        suffix = params.string("statement_descriptor_suffix", max_length=22)
        confirm = params.boolean("confirm")
        payment_method = params.string("payment_method")
        expand = self._expansions(params)
        params.reject_unknown()
        presented = self._resolve_payment_method(payment_method) if payment_method else None
        if presented is not None and mutation.live:
            raise not_made_by_a_reader(payment_method or "")
        if confirm and presented is None:
            raise invalid_request(
                "You must provide a payment_method when confirming a PaymentIntent on creation.",
                param="payment_method",
            )

        intent_id = new_id("pi")
        intent = PaymentIntent(
            id=intent_id,
            seq=self.next_seq(),
            amount=amount,
            currency=currency,
            capture_method=capture_method,
            created=mutation.now,
            payment_method_types=types,
            allowed_payment_method_types=allowed_types,
            metadata=metadata,
            description=description,
            receipt_email=receipt_email,
            statement_descriptor_suffix=suffix,
            client_secret=f"{intent_id}_secret_{random_token(25)}",
            card_present_capture_method=card_present_capture,
            request_extended_authorization=card_present.get("request_extended_authorization") == "true",
            request_incremental_authorization_support=(
                card_present.get("request_incremental_authorization_support") == "true"
            ),
        )
        if presented is not None:
            self._check_type_allowed(intent, presented)
            intent.payment_method = presented.reference
            intent.status = "requires_confirmation"
        self.add(intent)
        self._journal("payment_intent.create", intent, mutation.now, mutation.idempotency_key, amount)
        if presented is not None and confirm:
            self._authorise(intent, presented, mutation, expand)
        return intent

    def confirm(self, intent_id: str, params: Params, mutation: Mutation) -> PaymentIntent:
        intent = self.get(intent_id)
        payment_method = params.string("payment_method")
        params.string("receipt_email", max_length=800)
        params.mapping("payment_method_options")
        expand = self._expansions(params)
        params.reject_unknown()
        presented = self._resolve_payment_method(payment_method) if payment_method else None
        if mutation.live and (presented is not None or not intent.collected_by_reader):
            raise not_made_by_a_reader(payment_method or intent.payment_method or "")
        self._check_confirmable(intent, expand)
        if presented is None:
            if intent.payment_method is None:
                raise unexpected_state(
                    "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm "
                    "the PaymentIntent with cus_..., specify a payment method attached to this customer along "
                    "with the customer ID.",
                    self.render(intent, expand),
                )
            presented = self._resolve_payment_method(intent.payment_method)
        self._check_type_allowed(intent, presented)
        self._authorise(intent, presented, mutation, expand)
        return intent

    def confirm_presented(
        self, intent_id: str, presented: PresentedCard | None, mutation: Mutation, *, tip: int = 0, reader: str | None
    ) -> PaymentIntent:
        """Confirm on a reader: what `confirm` checks and does, with the card the reader read
        (process_payment_intent) or the one it collected before (`presented` None: confirm_payment_intent).

        Raises what confirm raises; a decline (402) is raised after the attempt was applied and journaled.
        """
        intent = self.get(intent_id, param="payment_intent")
        self._check_confirmable(intent, [])
        if presented is None:
            if intent.payment_method is None:
                raise unexpected_state("This PaymentIntent has no payment method to confirm.", intent.to_json())
            presented = self._resolve_payment_method(intent.payment_method)
        self._check_type_allowed(intent, presented)
        self._add_tip(intent, tip)
        self._authorise(intent, presented, mutation, [], reader=reader)
        return intent

    def collect_presented(self, intent_id: str, presented: PresentedCard, mutation: Mutation, *, tip: int = 0) -> None:
        """A reader collected a card for the PaymentIntent (collect_payment_method): it is attached, unconfirmed.

        Raises `intent_invalid_state` if the PaymentIntent no longer waits for a payment method (canceled
        meanwhile), and what confirm raises for a payment method type the PaymentIntent does not allow.
        """
        intent = self.get(intent_id, param="payment_intent")
        if intent.status != "requires_payment_method":
            raise intent_invalid_state("requires_payment_method", "have a payment method collected by")
        self._check_type_allowed(intent, presented)
        self._add_tip(intent, tip)
        intent.payment_method = presented.reference
        intent.collected_by_reader = True
        intent.status = "requires_confirmation"
        self._journal("payment_intent.collect", intent, mutation.now, mutation.idempotency_key, intent.amount)

    def collect_by_sdk(self, intent_id: str, params: Params, mutation: Mutation) -> PaymentIntent:
        """A Terminal SDK collected a card for the PaymentIntent (its collectPaymentMethod): the card's
        payment method is attached and the PaymentIntent requires_confirmation. `payment_method` is
        the test card the SDK's reader read (pm_card_present_...); the client secret was checked."""
        reference = params.string("payment_method", required=True) or ""
        self._expansions(params)
        params.reject_unknown()
        presented = self._resolve_payment_method(reference)
        self.collect_presented(intent_id, presented, mutation)
        return self.get(intent_id)

    def forward_by_sdk(self, params: Params, mutation: Mutation) -> PaymentIntent:
        """A Terminal SDK forwards a payment it stored in its offline mode: it creates the PaymentIntent
        (card present, manual capture, its `metadata`) with the card it collected, and confirms it.
        A decline is raised (402) after the PaymentIntent was made and the attempt journaled."""
        amount = params.required_integer("amount")
        currency = params.required_string("currency", max_length=3)
        reference = params.required_string("payment_method")
        metadata = params.raw("metadata")
        params.reject_unknown()
        values: dict[str, Any] = {
            "amount": str(amount),
            "currency": currency,
            "allowed_payment_method_types": ["card_present"],
            "capture_method": "manual",
        }
        if metadata is not None:
            values["metadata"] = metadata
        intent = self.create(Params(values), mutation)
        self.collect_presented(intent.id, self._resolve_payment_method(reference), mutation)
        return self.confirm_presented(intent.id, None, mutation, reader=None)

    def confirm_by_sdk(self, intent_id: str, params: Params, mutation: Mutation) -> PaymentIntent:
        """A Terminal SDK confirms the PaymentIntent it collected a card for (its confirmPaymentIntent)."""
        self._expansions(params)
        params.reject_unknown()
        return self.confirm_presented(intent_id, None, mutation, reader=None)

    def update(self, intent_id: str, params: Params, mutation: Mutation) -> PaymentIntent:
        intent = self.get(intent_id)
        amount = params.integer("amount")
        metadata = params.mapping("metadata")
        description = params.string("description", max_length=1000)
        receipt_email = params.string("receipt_email", max_length=800)
        self._expansions(params)
        params.reject_unknown()
        if amount is not None:
            _validate_amount(amount, intent.currency)
        if amount is not None and intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise unexpected_state(
                f"This PaymentIntent's amount could not be updated because it has a status of {intent.status}. "
                f"You may only update the amount of a PaymentIntent with one of the following statuses: "
                f"requires_payment_method, requires_confirmation.",
                intent.to_json(),
            )
        if metadata is not None:
            merged = {**intent.metadata, **metadata}
            intent.metadata = validate_metadata(merged)
        if amount is not None:
            intent.amount = amount
        if description is not None:
            intent.description = description
        if receipt_email is not None:
            intent.receipt_email = receipt_email
        self._journal("payment_intent.update", intent, mutation.now, mutation.idempotency_key, intent.amount)
        return intent

    def capture(self, intent_id: str, params: Params, mutation: Mutation) -> PaymentIntent:
        intent = self.get(intent_id)
        amount = params.integer("amount_to_capture")
        params.mapping("metadata")
        params.string("statement_descriptor_suffix", max_length=22)
        expand = self._expansions(params)
        params.reject_unknown()
        if intent.status != "requires_capture":
            raise unexpected_state(
                f"This PaymentIntent could not be captured because it has a status of {intent.status}. Only a "
                f"PaymentIntent with one of the following statuses may be captured: requires_capture.",
                self.render(intent, expand),
            )
        assert intent.latest_charge is not None
        charge = self.charges[intent.latest_charge]
        to_capture = intent.amount_capturable if amount is None else amount
        if to_capture > intent.amount_capturable:
            raise StripeError(
                400,
                "invalid_request_error",
                f"The amount to capture ({to_capture}) must be less than or equal to the capturable amount "
                f"({intent.amount_capturable}).",
                code="amount_too_large",
                param="amount_to_capture",
                saved=True,
            )
        if to_capture < 1:
            raise invalid_request("Amount to capture must be a positive integer.", param="amount_to_capture")
        self._settle(intent, charge, to_capture)
        self._journal("payment_intent.capture", intent, mutation.now, mutation.idempotency_key, to_capture)
        return intent

    def increment_authorization(self, intent_id: str, params: Params, mutation: Mutation) -> PaymentIntent:
        """Raise an authorised PaymentIntent's hold to `amount`, the new total (Stripe's rules: the API
        reference's increment_authorization; what it leaves unsaid, docs/stripe-emulator.md)."""
        intent = self.get(intent_id)
        amount = params.required_integer("amount")
        description = params.string("description", max_length=1000)
        metadata = params.mapping("metadata")
        params.string("statement_descriptor", max_length=22)
        expand = self._expansions(params)
        params.reject_unknown()
        _validate_amount(amount, intent.currency)
        if intent.status != "requires_capture":
            raise unexpected_state(
                f"This PaymentIntent's authorization could not be incremented because it has a status of "
                f"{intent.status}. Only a PaymentIntent with one of the following statuses may be incremented: "
                "requires_capture.",
                self.render(intent, expand),
            )
        assert intent.latest_charge is not None
        charge = self.charges[intent.latest_charge]
        if not charge.incremental_authorization_supported:
            raise StripeError(
                400,
                "invalid_request_error",
                "This PaymentIntent is not eligible for incremental authorization: its charge's "
                "payment_method_details.card_present.incremental_authorization_supported is false.",
                saved=True,
            )
        if amount <= intent.amount:
            raise StripeError(
                400,
                "invalid_request_error",
                f"The amount ({amount}) must be greater than the currently authorized amount ({intent.amount}).",
                param="amount",
                saved=True,
            )
        if intent.increment_attempts >= MAX_INCREMENT_ATTEMPTS:
            raise StripeError(
                400,
                "invalid_request_error",
                f"This PaymentIntent has reached the maximum of {MAX_INCREMENT_ATTEMPTS} incremental "
                "authorization attempts.",
                saved=True,
            )
        intent.increment_attempts += 1
        # A scripted decline, else Stripe's test amounts (conservatively applied to the new total too).
        decline = increment_decline(self.increment_declines.pop(0)) if self.increment_declines else None
        decline = decline or amount_decline(amount)
        if decline is not None:
            # "no other fields on the PaymentIntent or Charge update": the hold stays as it was.
            self._journal(
                "payment_intent.increment_authorization.declined",
                intent,
                mutation.now,
                mutation.idempotency_key,
                amount,
            )
            raise StripeError(
                402,
                "card_error",
                decline.message,
                code=decline.code,
                decline_code=decline.decline_code,
                embedded={"charge": charge.id, "payment_intent": self.render(intent, expand)},
                saved=True,
            )
        intent.amount = amount
        intent.amount_capturable = amount
        charge.amount = amount
        if metadata is not None:
            intent.metadata = validate_metadata({**intent.metadata, **metadata})
        if description is not None:
            intent.description = description
        self._journal("payment_intent.increment_authorization", intent, mutation.now, mutation.idempotency_key, amount)
        return intent

    def cancel(self, intent_id: str, params: Params, mutation: Mutation) -> PaymentIntent:
        intent = self.get(intent_id)
        reason = params.choice("cancellation_reason", CLIENT_CANCELLATION_REASONS)
        expand = self._expansions(params)
        params.reject_unknown()
        if intent.status not in CANCELABLE:
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {intent.status}. Only a "
                f"PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}.",
                self.render(intent, expand),
            )
        if intent.latest_charge is not None and intent.status == "requires_capture":
            self._release(intent, self.charges[intent.latest_charge])
        intent.status = "canceled"
        intent.cancellation_reason = reason
        intent.canceled_at = mutation.now
        self._journal("payment_intent.cancel", intent, mutation.now, mutation.idempotency_key, intent.amount)
        return intent

    # -- helpers -------------------------------------------------------------------------------

    def _payment_method_types(
        self, params: Params, currency: str, api_version: str
    ) -> tuple[list[str], list[str] | None]:
        """The PaymentIntent's payment method types, by the rules of the request's API version.

        Up to 2026-09-30 a client sets `payment_method_types` and an unusable type is an error.
        From then on that parameter is gone; `allowed_payment_method_types` (from 2026-07-29)
        filters silently to the usable types. Without either, the account's dynamic payment
        methods apply: this emulated account has `card` only.
        """
        if api_version >= PAYMENT_METHOD_TYPES_REMOVED and "payment_method_types" in params:
            raise invalid_request(
                "payment_method_types is no longer supported on this API version. Use "
                "allowed_payment_method_types to choose which payment method types this PaymentIntent may use.",
                param="payment_method_types",
                code="payment_method_types_no_longer_supported",
            )
        if api_version < ALLOWED_PAYMENT_METHOD_TYPES_ADDED and "allowed_payment_method_types" in params:
            raise unknown_param("allowed_payment_method_types")
        explicit = params.string_list("payment_method_types")
        if explicit is not None:
            for kind in explicit:
                if kind not in PAYMENT_METHOD_TYPES:
                    raise invalid_request(
                        f"The payment method type provided: {kind} is invalid. Please ensure the provided type is "
                        "activated in your dashboard (https://dashboard.stripe.com/account/payments/settings) and "
                        "your account is enabled for any preview features that you are trying to use.",
                        param="payment_method_types",
                    )
            return explicit, None
        allowed = params.string_list("allowed_payment_method_types")
        if allowed is None:
            return ["card"], None
        usable = [kind for kind in allowed if kind in PAYMENT_METHOD_TYPES and _usable_in(kind, currency)]
        if not usable:
            raise invalid_request(
                f"None of the allowed_payment_method_types ({', '.join(allowed)}) can be used for a payment in "
                f"{currency}.",
                param="allowed_payment_method_types",
            )
        return usable, allowed

    def _check_confirmable(self, intent: PaymentIntent, expand: list[str]) -> None:
        if intent.status not in CONFIRMABLE:
            raise unexpected_state(
                f"You cannot confirm this PaymentIntent because it has a status of {intent.status}. Only a "
                f"PaymentIntent with one of the following statuses may be confirmed: "
                f"requires_confirmation, requires_action, requires_payment_method.",
                self.render(intent, expand),
            )

    def _resolve_payment_method(self, reference: str) -> PresentedCard:
        presented = resolve_payment_method(reference)
        if presented is None:
            raise no_such("PaymentMethod", reference, param="payment_method", status=400)
        return presented

    def _check_type_allowed(self, intent: PaymentIntent, presented: PresentedCard) -> None:
        kind = "interac_present" if presented.card.interac else "card_present"
        if kind not in intent.payment_method_types:
            raise invalid_request(
                f"The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. Please attach a "
                f"PaymentMethod of one of the following types: {', '.join(intent.payment_method_types)}. "
                f'Alternatively, update the allowed payment_method_types for this PaymentIntent to include "{kind}".',
                param="payment_method",
                code="payment_intent_incompatible_payment_method",
            )

    def _add_tip(self, intent: PaymentIntent, tip: int) -> None:
        """A tip the customer chose on the reader: added to the amount, and shown in `amount_details.tip`."""
        if tip:
            intent.amount += tip
            intent.amount_tip = tip

    def _authorise(
        self,
        intent: PaymentIntent,
        presented: PresentedCard,
        mutation: Mutation,
        expand: list[str],
        *,
        reader: str | None = None,
    ) -> None:
        decline = decline_for(presented, intent.amount)
        single_message = presented.card.interac  # captured as it is authorised: no hold, no capture window
        brand = presented.card.brand
        window = authorisation_window_s(brand)
        if intent.request_extended_authorization:
            window = extended_authorisation_window_s(brand) or window
        charge = Charge(
            id=new_id("ch"),
            payment_intent=intent.id,
            amount=intent.amount,
            currency=intent.currency,
            created=mutation.now,
            presented=presented,
            description=intent.description,
            metadata=intent.metadata,
            decline=decline,
            capture_before=None if decline or single_message else mutation.now + window,
            reader=reader,
            incremental_authorization_supported=(
                decline is None
                and not single_message
                and intent.request_incremental_authorization_support
                and supports_incremental_authorisation(presented.card)
            ),
        )
        self.charges[charge.id] = charge
        intent.latest_charge = charge.id
        if decline is None:
            intent.status = "requires_capture"
            self.held.add(intent.id)
            intent.payment_method = presented.reference
            intent.amount_capturable = intent.amount
            intent.last_payment_error = None
            if single_message:
                self._settle(intent, charge, intent.amount)
            self._journal("payment_intent.confirm", intent, mutation.now, mutation.idempotency_key, intent.amount)
            return
        error_fields = {
            "charge": charge.id,
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": "https://stripe.com/docs/error-codes/" + decline.code.replace("_", "-"),
            "message": decline.message,
            "payment_method": payment_method_json(presented, mutation.now),
            "type": "card_error",
        }
        intent.status = "requires_payment_method"
        intent.payment_method = None
        intent.last_payment_error = error_fields
        self._journal("payment_intent.confirm", intent, mutation.now, mutation.idempotency_key, intent.amount)
        raise StripeError(
            402,
            "card_error",
            decline.message,
            code=decline.code,
            decline_code=decline.decline_code,
            embedded={
                "charge": charge.id,
                "payment_intent": self.render(intent, expand),
                "payment_method": error_fields["payment_method"],
            },
            saved=True,
        )

    @staticmethod
    def _settle(intent: PaymentIntent, charge: Charge, amount: int) -> None:
        """Capture `amount` of the authorisation; the rest of the hold is released."""
        charge.captured = True
        charge.amount_captured = amount
        charge.amount_refunded = charge.amount - amount
        charge.balance_transaction = new_id("txn")
        intent.status = "succeeded"
        intent.amount_received = amount
        intent.amount_capturable = 0

    def _release(self, intent: PaymentIntent, charge: Charge) -> None:
        charge.amount_refunded = charge.amount
        intent.amount_capturable = 0

    def _journal(self, op: str, intent: PaymentIntent, at: int, key: str | None, amount: int) -> None:
        """Every change to a PaymentIntent passes here: it is journaled and shown to search."""
        self.on_change(intent, at)
        self.journal.record(
            at=at,
            op=op,
            object_id=intent.id,
            idempotency_key=key,
            status=intent.status,
            amount=amount,
            metadata=intent.metadata,
        )


def _card_present_options(options: dict[str, FormValue] | None, mutation: Mutation) -> dict[str, str]:
    """`payment_method_options[card_present]`, checked: its capture_method (from 2025-11-17) and its
    flexible-authorisation requests (booleans, sent as "true"/"false"); the only payment method options
    the emulator models on create (any other is refused as unknown)."""
    if options is None:
        return {}
    for kind in options:
        if kind != "card_present":
            raise unknown_param(f"payment_method_options[{kind}]")
    card_present = options.get("card_present")
    if card_present is None:
        return {}
    if not isinstance(card_present, dict):
        raise invalid_request(
            "Invalid object: payment_method_options[card_present] must be a hash",
            param="payment_method_options[card_present]",
        )
    chosen: dict[str, str] = {}
    for name, value in card_present.items():
        param = f"payment_method_options[card_present][{name}]"
        if name in CARD_PRESENT_REQUESTS:
            if value not in ("true", "false"):
                raise invalid_request(f"Invalid boolean: {value}", param=param)
            chosen[name] = str(value)
        elif name == "capture_method" and mutation.api_version >= CARD_PRESENT_CAPTURE_METHOD_ADDED:
            if value not in CARD_PRESENT_CAPTURE_METHODS:
                raise invalid_request(
                    f"Invalid {param}: must be one of {', '.join(CARD_PRESENT_CAPTURE_METHODS)}", param=param
                )
            chosen[name] = str(value)
        else:
            raise unknown_param(param)
    return chosen


def _check_expandable(name: str) -> None:
    if name not in EXPANDABLE:
        raise invalid_request(f"This property cannot be expanded ({name}).", param="expand")


def payment_method_json(presented: PresentedCard, created: int) -> dict[str, Any]:
    """The PaymentMethod a reader made of a presented card, as Stripe embeds it in a decline."""
    card = presented.card
    kind = "interac_present" if card.interac else "card_present"
    return {
        "id": presented.reference,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": _no_billing_details(),
        kind: {
            "brand": card.brand,
            "brand_product": None,
            "cardholder_name": None,
            "country": "CA" if card.interac else "US",
            "description": None,
            "exp_month": 12,
            "exp_year": 2030,
            "fingerprint": hashlib.sha256(card.name.encode()).hexdigest()[:16],
            "funding": card.funding,
            "issuer": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "offline": None,
            "preferred_locales": ["en"],
            "read_method": presented.read_method,
            "wallet": None,
        },
        "created": created,
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": kind,
    }


def _no_billing_details() -> dict[str, Any]:
    address = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))
    return {"address": address, "email": None, "name": None, "phone": None}


def _usable_in(kind: str, currency: str) -> bool:
    return kind != "interac_present" or currency == "cad"


def validate_currency(currency: str) -> str:
    if currency.lower() not in currencies.SUPPORTED:
        raise invalid_request(
            f"Invalid currency: {currency}. Stripe currently supports these currencies: "
            + ", ".join(sorted(currencies.SUPPORTED)),
            param="currency",
        )
    return currency.lower()


def _validate_amount(amount: int, currency: str) -> None:
    minimum = currencies.MINIMUM_AMOUNT.get(currency, 1)
    if amount < minimum:
        raise invalid_request(
            f"Amount must be at least {currencies.format_amount(minimum, currency)}",
            param="amount",
            code="amount_too_small",
        )
    if amount > currencies.MAXIMUM_AMOUNT:
        raise invalid_request(
            f"Amount must be no more than {currencies.format_amount(currencies.MAXIMUM_AMOUNT, currency)}",
            param="amount",
            code="amount_too_large",
        )


def validate_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    kept = sum(1 for value in metadata.values() if value != "")  # an empty value unsets its key
    if kept > METADATA_MAX_KEYS:
        raise invalid_request(
            f"Metadata can have up to {METADATA_MAX_KEYS} keys, but you passed in {kept} keys.",
            param="metadata",
        )
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_MAX:
            raise invalid_request(
                f"Metadata keys can have up to {METADATA_KEY_MAX} characters, but you passed in a key with "
                f"{len(key)} characters.",
                param=f"metadata[{key}]",
            )
        if not isinstance(value, str):
            raise invalid_request(f"Invalid metadata value for {key}: must be a string", param=f"metadata[{key}]")
        if len(value) > METADATA_VALUE_MAX:
            raise invalid_request(
                f"Metadata values can have up to {METADATA_VALUE_MAX} characters, but you passed in a value "
                f"that is {len(value)} characters.",
                param=f"metadata[{key}]",
            )
        if value != "":  # an empty value unsets the key
            clean[key] = value
    return clean
