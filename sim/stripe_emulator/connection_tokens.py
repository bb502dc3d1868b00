"""Terminal connection tokens, and who may use one (docs/stripe-emulator.md, "Connection tokens").

A backend creates a token with its secret key (POST /v1/terminal/connection_tokens, `location`
optional) and hands the secret to a Terminal SDK, which then calls Stripe with it as its bearer.
Stripe documents the token ("short-lived", "pass this token to the Stripe Terminal SDK") but not
the SDK's own calls, so the emulator models them conservatively: a token authorises only the
calls an SDK makes for a PaymentIntent whose client secret it also presents (retrieve, collect,
confirm), and nothing else. A token is never written to the journal.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .errors import invalid_request
from .forms import Params
from .ids import random_token

LOCATION = re.compile(r"tml_[A-Za-z0-9]{1,64}")


@dataclass(frozen=True)
class ConnectionToken:
    secret: str
    location: str | None
    live: bool

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"object": "terminal.connection_token", "secret": self.secret}
        if self.location is not None:
            body["location"] = self.location
        return body


class ConnectionTokenStore:
    """The tokens issued by this account (in memory, like every emulated object)."""

    def __init__(self) -> None:
        self._tokens: dict[str, ConnectionToken] = {}
        self._lock = threading.Lock()

    def create(self, params: Params, *, live: bool) -> ConnectionToken:
        location = params.string("location")
        params.expand()
        params.reject_unknown()
        if location is not None and not LOCATION.fullmatch(location):
            raise invalid_request(f"No such location: '{location}'", param="location", code="resource_missing")
        token = ConnectionToken(f"pst_{'live' if live else 'test'}_{random_token(64)}", location, live)
        with self._lock:
            self._tokens[token.secret] = token
        return token

    def get(self, secret: str) -> ConnectionToken | None:
        with self._lock:
            return self._tokens.get(secret)
