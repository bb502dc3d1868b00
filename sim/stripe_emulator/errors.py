"""Stripe's error bodies, as one exception type the request pipeline turns into a response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DOCS = "https://stripe.com/docs/error-codes/"


@dataclass
class StripeError(Exception):
    """An error Stripe would answer with.

    `saved` tells the idempotency layer whether Stripe keeps this response under the request's
    key: errors found while validating parameters are not saved (the request never started
    executing); errors met while executing (declines, wrong state, a 500) are.
    """

    status: int
    type: str
    message: str
    code: str | None = None
    param: str | None = None
    decline_code: str | None = None
    embedded: dict[str, Any] = field(default_factory=dict)
    saved: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOCS + self.code.replace("_", "-")
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        if self.param is not None:
            error["param"] = self.param
        error.update(self.embedded)
        return {"error": error}

    def api_error(self) -> dict[str, Any]:
        """The error as a failed reader action carries it (`action.api_error`, API 2026-05-27 on): type, code,
        message, decline_code, doc_url, request_log_url and param."""
        return {
            "code": self.code,
            "decline_code": self.decline_code,
            "doc_url": DOCS + self.code.replace("_", "-") if self.code else None,
            "message": self.message,
            "param": self.param,
            "request_log_url": None,
            "type": self.type,
        }


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    """A parameter problem found before execution starts (never saved under a key)."""
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def missing_param(param: str) -> StripeError:
    return invalid_request(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid_request(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def no_such(kind: str, object_id: str, *, param: str, status: int = 404) -> StripeError:
    return StripeError(
        status, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def unexpected_state(message: str, payment_intent: dict[str, Any]) -> StripeError:
    return StripeError(
        400,
        "invalid_request_error",
        message,
        code="payment_intent_unexpected_state",
        embedded={"payment_intent": payment_intent},
        saved=True,
    )


def api_error(status: int, *, should_retry: bool | None = None) -> StripeError:
    headers = {} if should_retry is None else {"Stripe-Should-Retry": "true" if should_retry else "false"}
    return StripeError(
        status,
        "api_error",
        "An unknown error occurred. Please retry your request, or contact Stripe support if the problem persists.",
        headers=headers,
    )


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "invalid_request_error",
        "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def authentication(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def not_made_by_a_reader(payment_method: str) -> StripeError:
    """A live-mode confirm of a card-present PaymentIntent with a payment method no reader made. In live
    mode card-present PaymentMethods come only from Stripe's readers and Terminal SDKs
    (docs/stripe-emulator.md, "Live-mode keys"); the wording is the emulator's."""
    return invalid_request(
        f"The PaymentMethod '{payment_method}' was not collected by a Stripe Terminal reader: in live mode a "
        "card_present PaymentIntent is confirmed only with a payment method a reader or a Terminal SDK collected.",
        param="payment_method",
    )


def token_not_allowed(method: str, path: str) -> StripeError:
    """A connection token used for anything but a Terminal SDK's calls on a PaymentIntent."""
    return StripeError(
        403,
        "invalid_request_error",
        f"A Terminal connection token cannot be used for {method} {path}: it authorises only the Terminal SDK's "
        "calls on a PaymentIntent whose client_secret it presents.",
    )


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        f"Keys for idempotent requests can only be used with the same parameters they were first used with. "
        f"Try using a key other than '{key}' if you meant to execute a different request.",
    )


def idempotency_in_flight() -> StripeError:
    return StripeError(
        409,
        "invalid_request_error",
        "There is currently another in-progress request using this Idempotent Key (that probably means you "
        "submitted twice, and the other request is still going through). Please try again later.",
        code="idempotency_key_in_use",
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        "invalid_request_error",
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
        "https://support.stripe.com/.",
    )


# -- Terminal readers (server-driven integration) ---------------------------------------------------

_READER_GUIDE = "https://stripe.com/docs/terminal/payments/collect-card-payment?terminal-sdk-platform=server-driven"


def reader_busy() -> StripeError:
    return StripeError(
        400,
        "invalid_request_error",
        f"Reader is currently busy processing another request. Please reference the integration guide at "
        f"{_READER_GUIDE}#handle-errors for details on how to handle this error.",
        code="terminal_reader_busy",
        saved=True,
    )


def reader_offline() -> StripeError:
    return StripeError(
        400,
        "invalid_request_error",
        "Reader is currently offline, please ensure the reader is powered on and connected to the internet "
        f"before retrying your request. Reference the integration guide at {_READER_GUIDE}#reader-offline for "
        "details on how to handle this error.",
        code="terminal_reader_offline",
        saved=True,
    )


def reader_timeout() -> StripeError:
    return StripeError(
        400,
        "invalid_request_error",
        f"There was a timeout when sending this command to the reader. Please reference the integration guide at "
        f"{_READER_GUIDE}#handle-errors for details on how to handle this error.",
        code="terminal_reader_timeout",
        saved=True,
    )


def intent_invalid_state(status: str = "requires_payment_method", doing: str = "be processed by") -> StripeError:
    return StripeError(
        400,
        "invalid_request_error",
        f"Payment intent must be in the {status} state to {doing} a reader.",
        code="intent_invalid_state",
        saved=True,
    )
