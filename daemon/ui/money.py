"""Amounts as the customer reads them: "$12.50", "£12.50", "¥1250", "12.50 CHF".

A currency's symbol is used only when the screen font can draw it; otherwise its code takes the
symbol's place ("EUR 12.50": the font has no €). Minor units follow Stripe: zero-decimal
currencies (JPY, KRW, ...) have none, all others two. No thousands separators.
"""

from __future__ import annotations

from readerhost.daemon.payments.currencies import ZERO_DECIMAL
from readerhost.daemon.ui.fonts import TEXT

SYMBOLS = {"usd": "$", "eur": "\u20ac", "gbp": "\xa3", "jpy": "\xa5"}


def format_amount(amount: int, currency: str) -> str:
    """`amount` in minor units of `currency` (ISO 4217, any case), for the screen."""
    code = currency.lower()
    sign = "-" if amount < 0 else ""
    minor = abs(amount)
    number = str(minor) if code in ZERO_DECIMAL else f"{minor // 100}.{minor % 100:02d}"
    symbol = SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{number} {code.upper()}"
    if TEXT.covers(symbol):
        return f"{sign}{symbol}{number}"
    return f"{sign}{code.upper()} {number}"
