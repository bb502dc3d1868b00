"""Metrics for a fleet's Prometheus, with no port of its own: a node_exporter textfile
(`[metrics] textfile`), rewritten atomically when something changed, at most every `interval_s`,
and at least every minute (ages and uptimes move on their own). The values are those status.get
gives, and the store's counts; docs/operations.md lists them with alert rules."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from readerhost.drivers.settings import FilePath, Number, Section, Settings, setting

from .payments.model import TERMINAL, RefundState, State, StripeState

if TYPE_CHECKING:  # the configuration reads SETTINGS without loading the payment core
    from .payments.events import Event
    from .payments.store import Store
    from .payments.worker import StripeHealth

logger = logging.getLogger(__name__)

REFRESH_S = 60.0  # at least this often, so that ages and the uptime stay true without events
FINISHED_REFUNDS = frozenset({RefundState.SUCCEEDED, RefundState.FAILED, RefundState.CANCELED})


@dataclass(frozen=True)
class MetricsSettings(Settings):
    # The file node_exporter's textfile collector reads (its --collector.textfile.directory; Debian's
    # prometheus-node-exporter: /var/lib/prometheus/node-exporter); "" writes none.
    textfile: str = setting("", FilePath())
    interval_s: float = setting(5.0, Number(above=0))  # the least time between two writes


SETTINGS = Section("metrics", MetricsSettings)


@dataclass(frozen=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # "gauge" or "counter"
    help: str
    samples: tuple[Sample, ...]


def sample(value: float, **labels: str) -> Sample:
    return Sample(tuple(sorted(labels.items())), value)


def family(name: str, kind: str, help_text: str, *samples: Sample) -> Family:
    return Family(name, kind, help_text, samples)


def exposition(families: Iterable[Family]) -> str:
    """Prometheus' text format (0.0.4); a family without samples is left out."""
    lines: list[str] = []
    for one in families:
        if not one.samples:
            continue
        lines.append(f"# HELP {one.name} {one.help}")
        lines.append(f"# TYPE {one.name} {one.kind}")
        for each in one.samples:
            labels = ",".join(f'{key}="{_escaped(value)}"' for key, value in each.labels)
            lines.append(
                f"{one.name}{{{labels}}} {_number(each.value)}" if labels else f"{one.name} {_number(each.value)}"
            )
    return "\n".join(lines) + "\n"


def families(status: dict[str, Any], store: Store, health: StripeHealth, started_at: float) -> list[Family]:
    """Every metric, from status.get's answer (`status`), the store's counts and Stripe's health."""
    census = store.census()
    protocol = status.get("protocol") or {}
    reader = status.get("reader") or {}
    queue = status.get("queue") or {}
    offline = status.get("offline") or {}
    deadline = status.get("deadline")
    open_payments = [state for state in State if state not in TERMINAL]
    open_refunds = [state for state in RefundState if state not in FINISHED_REFUNDS]
    return [
        family("readerhost_build_info", "gauge", "readerhostd's version, mode and POS protocol (always 1).",
               sample(1, version=str(status.get("daemon")), mode=str(status.get("mode")),
                      protocol=f"{protocol.get('major')}.{protocol.get('minor')}")),
        family("readerhost_start_time_seconds", "gauge", "When readerhostd started, in Unix time.", sample(started_at)),
        family("readerhost_payments", "gauge", "Payments not yet in a final state, by state.",
               *(sample(census.payments[state], state=state.value) for state in open_payments)),
        family("readerhost_payments_finished_total", "counter", "Payments in a final state, by that state.",
               *(sample(census.payments[state], state=state.value) for state in sorted(TERMINAL))),
        family("readerhost_refunds", "gauge", "Refunds not yet in a final state, by state.",
               *(sample(census.refunds[state], state=state.value) for state in open_refunds)),
        family("readerhost_refunds_finished_total", "counter", "Refunds in a final state, by that state.",
               *(sample(census.refunds[state], state=state.value) for state in sorted(FINISHED_REFUNDS))),
        family("readerhost_requests_pending", "gauge",
               "Requests for Stripe written to the store and not yet answered (the queue).",
               sample(queue.get("pending") or 0)),
        family("readerhost_requests_pending_by_kind", "gauge", "The queue's requests by kind (capture, cancel, ...).",
               *(sample(count, kind=kind) for kind, count in sorted(census.pending_operations.items()))),
        family("readerhost_requests_oldest_pending_age_seconds", "gauge",
               "How long the oldest request in the queue has waited for Stripe.",
               *([sample(queue["oldest_age_s"])] if queue.get("oldest_age_s") is not None else [])),
        family("readerhost_capture_deadline_timestamp_seconds", "gauge",
               "The nearest capture deadline of an authorised payment, in Unix time (none: no authorisation waits).",
               *([sample(_unix(str(deadline["capture_before"])))] if deadline else [])),
        family("readerhost_offline_payments", "gauge", "Payments taken offline and not yet forwarded to Stripe.",
               sample(offline.get("count") or 0)),
        family("readerhost_offline_amount", "gauge", "Their total, by currency, in the currency's minor unit.",
               *(sample(amount, currency=currency)
                 for currency, amount in sorted((offline.get("amount_by_currency") or {}).items()))),
        family("readerhost_stripe_state", "gauge", "What is known of Stripe: 1 for the current state, else 0.",
               *(sample(int(health.state is state), state=state.value) for state in StripeState)),
        family("readerhost_stripe_consecutive_failures", "gauge", "Requests to Stripe in a row that got no answer.",
               sample(health.consecutive_failures)),
        family("readerhost_stripe_last_answer_timestamp_seconds", "gauge", "When Stripe last answered, in Unix time.",
               *([sample(health.last_ok_at)] if health.last_ok_at is not None else [])),
        family("readerhost_stripe_rate_limited_total", "counter", "Stripe's 429 answers since readerhostd started.",
               sample(health.rate_limited)),
        family("readerhost_reader_connected", "gauge", "1 when the card reader is connected, else 0.",
               sample(int(reader.get("state") not in ("connecting", "disconnected")))),
        family("readerhost_reader_battery_ratio", "gauge", "The card reader's battery level, 0 to 1.",
               *([sample(reader["battery"] / 100)] if isinstance(reader.get("battery"), int | float) else [])),
        family("readerhost_store_size_bytes", "gauge", "The payment store's size, with its write-ahead log.",
               *([sample((status.get("store") or {})["bytes"])] if (status.get("store") or {}).get("bytes") is not None
                 else [])),
    ]  # fmt: skip


class MetricsTextfile:
    """Keeps `path` holding the daemon's metrics: subscribed to every event, it rewrites the file after
    a change, at most every `interval_s`, and at least every REFRESH_S."""

    def __init__(self, path: Path, render: Callable[[], str], interval_s: float) -> None:
        self._path = path
        self._render = render
        self._interval_s = interval_s
        self._changed = asyncio.Event()
        self._failing: str | None = None  # the last write's error, said once until a write succeeds
        self._task: asyncio.Task[None] | None = None

    def on_event(self, event: Event) -> None:
        self._changed.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.write()  # the last state, as the daemon stops

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            self.write()
            await asyncio.sleep(self._interval_s)  # a rate limit: events in between are taken together
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, REFRESH_S - self._interval_s))

    def write(self) -> None:
        """The file, replaced atomically (node_exporter never reads half of it); a failure is logged once."""
        partial = self._path.with_name(f".{self._path.name}.{os.getpid()}.partial")  # not *.prom: never collected
        try:
            partial.write_text(self._render(), encoding="utf-8")
            os.chmod(partial, 0o644)  # node_exporter runs as its own user
            os.replace(partial, self._path)
        except OSError as error:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            why = f"{error.strerror or error}: {error.filename or self._path}"
            if why != self._failing:
                logger.warning("cannot write the metrics file %s: %s", self._path, why)
            self._failing = why
            return
        if self._failing is not None:
            logger.info("the metrics file %s is written again", self._path)
            self._failing = None


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _unix(moment: str) -> float:
    return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
