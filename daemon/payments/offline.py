"""Store and forward: how much may wait, stored on the kiosk, for Stripe to come back.

A payment may be stored offline only when its POS allowed it (`offline: prefer_online`), its reader
can (docs/payments.md, "Offline forwarding") and these limits leave room. Pure rules: the service
hands in what is stored and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import Payment, PaymentRequest


@dataclass(frozen=True)
class OfflineLimits:
    """How much may wait, stored, for Stripe to come back (Stripe's SDKs cap one payment at 10,000 USD)."""

    max_payment_amount: int = 10_000  # minor units, per payment
    max_total_amount: int = 50_000  # minor units, per currency, all stored payments together
    max_count: int = 20
    max_age_s: float = 24 * 3600  # no new offline payment while an older one still waits


def offline_problem(
    limits: OfflineLimits, stored: Sequence[Payment], request: PaymentRequest, now: float
) -> str | None:
    """Why `request` may not be stored offline beside the `stored` payments, or None when it may."""
    same_currency = sum(p.request.amount for p in stored if p.request.currency == request.currency)
    if request.amount > limits.max_payment_amount:
        return f"one offline payment may be at most {limits.max_payment_amount} (minor units)"
    if same_currency + request.amount > limits.max_total_amount:
        return f"offline payments in {request.currency} may total at most {limits.max_total_amount}"
    if len(stored) >= limits.max_count:
        return f"at most {limits.max_count} payments may be stored offline"
    oldest = min((p.created_at for p in stored), default=None)
    if oldest is not None and now - oldest > limits.max_age_s:
        return "an offline payment has waited longer than allowed; forward it first"
    return None
