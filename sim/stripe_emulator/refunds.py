"""Refunds: money given back from a captured charge, server-side (`POST /v1/refunds`) or in person on a
reader (the `refund_payment` reader action, which hands its charge here once the card is presented).

Stripe's rules as modelled (sources in docs/stripe-emulator.md): only a succeeded, captured charge is
refunded; partial refunds add up to at most the captured amount; every refund of a card-present charge
succeeds at once. Interac is single-message: its payments are refunded in person only, every other card
brand online only (https://docs.stripe.com/terminal/features/refunds, "Availability"). Handlers run
under the emulator's state lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from readerhost.daemon.payments import currencies

from .errors import StripeError, invalid_request, no_such
from .forms import Params, no_expansions
from .ids import new_id
from .journal import Journal
from .listing import created_filter, cursors, list_limit, paginate
from .payment_intents import Charge, Mutation, PaymentIntentStore, validate_metadata

LIST_URL = "/v1/refunds"
REASONS = ("duplicate", "fraudulent", "requested_by_customer")
IN_PERSON = "in_person"
ONLINE = "online"


@dataclass
class Refund:
    id: str
    seq: int
    amount: int
    charge: str
    payment_intent: str
    currency: str
    created: int
    reason: str | None
    metadata: dict[str, str]
    balance_transaction: str
    status: str = "succeeded"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.balance_transaction,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "destination_details": None,
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent,
            "reason": self.reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": self.status,
            "transfer_reversal": None,
        }


@dataclass(frozen=True)
class RefundRequest:
    """What to refund, as asked: a charge or a PaymentIntent, an amount (None: all that is left), metadata."""

    charge: str | None
    payment_intent: str | None
    amount: int | None
    metadata: dict[str, str]
    reason: str | None = None


@dataclass
class RefundStore:
    """The account's refunds; the charges they are of live in the PaymentIntent store."""

    payment_intents: PaymentIntentStore
    journal: Journal
    refunds: dict[str, Refund] = field(default_factory=dict)
    _seq: int = 0

    # -- the API -------------------------------------------------------------------------------

    def get(self, refund_id: str) -> Refund:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise no_such("refund", refund_id, param="id")
        return refund

    def retrieve(self, refund_id: str, params: Params) -> Refund:
        refund = self.get(refund_id)
        no_expansions(params)
        params.reject_unknown()
        return refund

    def list(self, params: Params) -> dict[str, Any]:
        limit = list_limit(params)
        created = created_filter(params)
        charge = params.string("charge")
        payment_intent = params.string("payment_intent")
        starting_after, ending_before = cursors(params)
        no_expansions(params)
        params.reject_unknown()
        ordered = sorted(
            (
                r
                for r in self.refunds.values()
                if created(r.created) and charge in (None, r.charge) and payment_intent in (None, r.payment_intent)
            ),
            key=lambda r: (r.created, r.seq),
            reverse=True,
        )
        page, has_more = paginate(
            ordered,
            limit,
            starting_after,
            ending_before,
            lambda cursor, _: self.get(cursor),
            lambda r: (r.created, r.seq),
        )
        return {"object": "list", "data": [r.to_json() for r in page], "has_more": has_more, "url": LIST_URL}

    def create(self, params: Params, mutation: Mutation) -> Refund:
        """`POST /v1/refunds`: a refund made online, without the card."""
        request = self.request(params, reason=params.choice("reason", REASONS))
        no_expansions(params)
        params.reject_unknown()
        return self.apply(request, ONLINE, mutation)

    # -- shared with the reader's refund_payment -----------------------------------------------

    @staticmethod
    def request(params: Params, *, reason: str | None = None) -> RefundRequest:
        """Read `charge` / `payment_intent`, `amount` and `metadata` (validation only)."""
        charge = params.string("charge")
        payment_intent = params.string("payment_intent")
        amount = params.integer("amount")
        metadata = validate_metadata(params.mapping("metadata") or {})
        if charge is None and payment_intent is None:
            raise invalid_request(
                "One of the following params should be provided for this request: payment_intent or charge.",
                param="charge",
            )
        if amount is not None and amount < 1:
            raise invalid_request("Invalid positive integer", param="amount", code="parameter_invalid_integer")
        return RefundRequest(charge, payment_intent, amount, metadata, reason)

    def check(self, request: RefundRequest, channel: str) -> tuple[Charge, int]:
        """The charge the request refunds and by how much; raises what Stripe refuses.

        An unknown id is a validation failure (not saved); the rest are met while executing (saved).
        """
        charge = self._charge(request)
        if not charge.succeeded:
            raise _no_successful_charge(charge.payment_intent)
        if not charge.captured:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Charge {charge.id} has not been captured: an uncaptured PaymentIntent is canceled, not refunded "
                f"(POST /v1/payment_intents/{charge.payment_intent}/cancel releases the authorisation).",
                param="charge",
                saved=True,
            )
        interac = charge.presented.card.interac
        if interac and channel == ONLINE:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Charge {charge.id} is an Interac payment: Interac payments can only be refunded in person, with "
                "the card presented to a reader (refund_payment).",
                param="charge",
                saved=True,
            )
        if not interac and channel == IN_PERSON:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Charge {charge.id} cannot be refunded in person: in-person refunds are only available for Interac "
                "payments. Refund it with POST /v1/refunds.",
                param="charge",
                saved=True,
            )
        remaining = charge.amount - charge.amount_refunded
        if remaining <= 0:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Charge {charge.id} has already been refunded.",
                code="charge_already_refunded",
                saved=True,
            )
        amount = remaining if request.amount is None else request.amount
        if amount > remaining:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Refund amount ({_money(amount, charge.currency)}) is greater than unrefunded amount on charge "
                f"({_money(remaining, charge.currency)})",
                param="amount",
                saved=True,
            )
        return charge, amount

    def apply(self, request: RefundRequest, channel: str, mutation: Mutation) -> Refund:
        """Refund the charge (after `check`), and journal it with its PaymentIntent, charge and amount."""
        charge, amount = self.check(request, channel)
        self._seq += 1
        refund = Refund(
            id=new_id("re"),
            seq=self._seq,
            amount=amount,
            charge=charge.id,
            payment_intent=charge.payment_intent,
            currency=charge.currency,
            created=mutation.now,
            reason=request.reason,
            metadata=request.metadata,
            balance_transaction=new_id("txn"),
        )
        charge.amount_refunded += amount
        self.refunds[refund.id] = refund
        self.journal.record(
            at=mutation.now,
            op="refund.create",
            object_id=refund.id,
            idempotency_key=mutation.idempotency_key,
            status=refund.status,
            amount=amount,
            metadata=refund.metadata,
            payment_intent=refund.payment_intent,
            charge=refund.charge,
        )
        return refund

    def _charge(self, request: RefundRequest) -> Charge:
        if request.charge is not None:
            charge = self.payment_intents.charges.get(request.charge)
            if charge is None:
                raise no_such("charge", request.charge, param="charge", status=400)
            if request.payment_intent not in (None, charge.payment_intent):
                raise invalid_request(
                    f"The charge {charge.id} does not belong to the PaymentIntent {request.payment_intent}.",
                    param="charge",
                )
            return charge
        assert request.payment_intent is not None
        intent = self.payment_intents.intents.get(request.payment_intent)
        if intent is None:
            raise no_such("payment_intent", request.payment_intent, param="payment_intent", status=400)
        if intent.latest_charge is None:
            raise _no_successful_charge(intent.id)
        return self.payment_intents.charges[intent.latest_charge]


def _no_successful_charge(intent_id: str) -> StripeError:
    return StripeError(
        400,
        "invalid_request_error",
        f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
        param="payment_intent",
        saved=True,
    )


def _money(amount: int, currency: str) -> str:
    """`$25.00`, as Stripe writes amounts in refund errors."""
    return currencies.format_amount(amount, currency).removesuffix(f" {currency}")
