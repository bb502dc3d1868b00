"""Store and forward: how much may wait, stored on the kiosk, for Stripe to come back.

A payment may be stored offline only when its POS allowed it (`offline: prefer_online`), its reader
can (docs/payments.md, "Offline forwarding") and these limits leave room. Pure rules: the service
hands in what is stored and the time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .currencies import format_amount
from .model import Payment, PaymentRequest

# Limits are money, not raw numbers: each currency has its own, in its own minor unit, each about
# 100 US dollars a payment and 500 in all (at late-2026 rates; a merchant sets its own). A currency
# without limits is never stored offline.
DEFAULT_MAX_PAYMENT: Mapping[str, int] = {
    "usd": 10_000, "eur": 10_000, "gbp": 8_000, "chf": 8_000, "cad": 14_000, "aud": 15_000,
    "nzd": 17_000, "sgd": 13_000, "jpy": 15_000, "sek": 100_000, "nok": 100_000, "dkk": 70_000,
}  # fmt: skip
DEFAULT_MAX_TOTAL: Mapping[str, int] = {currency: 5 * amount for currency, amount in DEFAULT_MAX_PAYMENT.items()}


@dataclass(frozen=True)
class OfflineLimits:
    """How much may wait, stored, for Stripe to come back, per currency (in its minor unit)."""

    max_payment_amount: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_PAYMENT))
    max_total_amount: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_TOTAL))
    max_count: int = 20
    max_age_s: float = 24 * 3600  # no new offline payment while an older one still waits


def offline_problem(
    limits: OfflineLimits, stored: Sequence[Payment], request: PaymentRequest, now: float
) -> str | None:
    """Why `request` may not be stored offline beside the `stored` payments, or None when it may."""
    currency = request.currency
    same_currency = sum(p.request.amount for p in stored if p.request.currency == currency)
    most, total = limits.max_payment_amount.get(currency), limits.max_total_amount.get(currency)
    if most is None or total is None:
        return f"no offline limits are set for {currency.upper()}, so payments in it are never stored offline"
    if request.amount > most:
        return f"one offline payment may be at most {format_amount(most, currency)}"
    if same_currency + request.amount > total:
        return f"offline payments in {currency.upper()} may total at most {format_amount(total, currency)}"
    if len(stored) >= limits.max_count:
        return f"at most {limits.max_count} payments may be stored offline"
    oldest = min((p.created_at for p in stored), default=None)
    if oldest is not None and now - oldest > limits.max_age_s:
        return "an offline payment has waited longer than allowed; forward it first"
    return None
