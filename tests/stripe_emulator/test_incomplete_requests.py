"""A request whose body never arrives whole is never acted on, as with Stripe.

A client killed between writing the headers and the body (urllib3 sends them in two writes)
leaves the server with a Content-Length it never receives. The emulator used to serve what had
come: a capture without its `amount_to_capture` captured the whole authorisation. The crash
harness found it (docs/reliability.md).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import stripe
from conftest import TEST_KEY
from support.emulator_fidelity import authorise, journal_for, journal_ops

from readerhost.sim.stripe_emulator import StripeEmulator


def send_cut_short(url: str, path: str, body: bytes, sent: int, key: str) -> bytes:
    """POST `path` announcing all of `body` but writing only its first `sent` bytes, then end the
    sending side as a killed client's kernel does; what the emulator answered before closing."""
    address = urlsplit(url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: Bearer {TEST_KEY}\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=10.0) as connection:
        connection.sendall(head + body[:sent])
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(4096):  # until the emulator closes its side
            answer += chunk
    return answer


def test_a_capture_whose_body_is_cut_short_captures_nothing(
    client: stripe.StripeClient, emulator: StripeEmulator, url: str
) -> None:
    intents = client.v1.payment_intents
    intent = authorise(client, 20412)
    body = b"expand[0]=latest_charge&amount_to_capture=16737"

    for sent in (0, 23, len(body) - 1):  # nothing, the expansion without the amount, all but a byte
        answer = send_cut_short(url, f"/v1/payment_intents/{intent.id}/capture", body, sent, key="capture-1")
        assert answer == b"", f"answered a request cut after {sent} bytes: {answer[:80]!r}"

    assert emulator.incomplete_requests == 3
    assert intents.retrieve(intent.id).status == "requires_capture"
    assert journal_for(emulator, "payment_intent.capture") == []
    # The key was never used: the whole request, sent again under it, is executed once, as asked.
    captured = intents.capture(
        intent.id, params={"amount_to_capture": 16737, "expand": ["latest_charge"]},
        options={"idempotency_key": "capture-1"},
    )  # fmt: skip
    assert (captured.status, captured.amount_received) == ("succeeded", 16737)
    assert [entry.amount for entry in journal_for(emulator, "payment_intent.capture")] == [16737]


def test_a_create_whose_body_is_cut_short_creates_nothing(
    client: stripe.StripeClient, emulator: StripeEmulator, url: str
) -> None:
    body = b"amount=1000&currency=usd&capture_method=manual&allowed_payment_method_types[0]=card_present"

    assert send_cut_short(url, "/v1/payment_intents", body, sent=24, key="order-1") == b""

    assert journal_ops(emulator) == []
    assert client.v1.payment_intents.list().data == []
