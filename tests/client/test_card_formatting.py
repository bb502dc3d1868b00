"""readerhostctl's words for a card and a tip (protocol 1.3: the card's wallet, the payment's tip)."""

from __future__ import annotations

from readerhost.daemon.ctl.formatting import card_text, payment_details

CARD = {"brand": "visa", "last4": "4242", "read_method": "contactless_emv", "wallet": None, "network": "visa"}


def test_a_card_says_how_it_was_read_and_from_which_wallet() -> None:
    assert card_text(CARD) == "visa ****4242 (contactless)"
    assert card_text({**CARD, "wallet": "apple_pay"}) == "visa ****4242 (contactless, apple pay)"
    assert card_text({"brand": "interac", "last4": "1933", "wallet": "google_pay"}) == "interac ****1933 (google pay)"


def test_a_tip_is_shown_only_when_there_is_one() -> None:
    payment = {"payment_id": "pay_1", "amount": 1250, "currency": "usd", "state": "authorized", "card": CARD}
    assert not any(line.startswith("tip") for line in payment_details({**payment, "tip": 0}))
    assert "tip       2.00 USD" in payment_details({**payment, "tip": 200})
