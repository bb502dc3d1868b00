"""What `readerhostctl status` counts as unhealthy, for monitoring: each problem with its exit code."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from .exit_codes import EXIT_MONEY_AT_RISK, EXIT_OK, EXIT_READER_DOWN, EXIT_STRIPE_DOWN

# An authorisation this close to its capture deadline needs someone now (the lead of the second
# default `payment.deadline` announcement), and a request this old means the queue is stuck.
DEADLINE_AT_RISK_S = 2 * 3600
QUEUE_AT_RISK_S = 3600


@dataclass(frozen=True)
class Problem:
    exit_code: int
    text: str


def problems(status: dict[str, Any], now: float) -> list[Problem]:
    """The problems status.get's answer shows, most severe first."""
    found: list[Problem] = []
    deadline = status.get("deadline")
    if deadline:
        left = _seconds_until(str(deadline.get("capture_before")), now)
        if left is not None and left < DEADLINE_AT_RISK_S:
            found.append(Problem(EXIT_MONEY_AT_RISK, f"the capture deadline of {deadline.get('payment_id')} is near"))
    oldest = (status.get("queue") or {}).get("oldest_age_s")
    if isinstance(oldest, int | float) and oldest > QUEUE_AT_RISK_S:
        found.append(Problem(EXIT_MONEY_AT_RISK, f"a request has waited for Stripe for {int(oldest // 60)} min"))
    stripe = (status.get("stripe") or {}).get("state")
    if stripe in ("unreachable", "key_refused"):
        found.append(Problem(EXIT_STRIPE_DOWN, "Stripe refuses the API key" if stripe == "key_refused"
                             else "Stripe is unreachable"))  # fmt: skip
    reader = (status.get("reader") or {}).get("state")
    if reader in ("connecting", "disconnected"):
        found.append(Problem(EXIT_READER_DOWN, f"the reader is {reader}"))
    return found


def exit_code(found: list[Problem]) -> int:
    return found[0].exit_code if found else EXIT_OK


def _seconds_until(moment: str, now: float) -> float | None:
    try:
        return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() - now
    except ValueError:
        return None
