"""What the daemon tells about itself: status.get's answer, the status line systemd shows, and the
technician screen's facts — all read from the parts that know them, never kept twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from readerhost.drivers.reader.base import ReaderDriver

from .api.protocol import PROTOCOL_VERSION
from .payments.autopilot import AutopilotSettings
from .payments.deadlines import nearest_deadline
from .payments.model import StripeState, rfc3339
from .payments.store import Store
from .payments.worker import Worker

STRIPE_LINE = {
    StripeState.UNKNOWN: "Stripe not yet answered",
    StripeState.REACHABLE: "online",
    StripeState.UNREACHABLE: "Stripe unreachable",
    StripeState.KEY_REFUSED: "Stripe refuses the API key",
}


class StatusView:
    def __init__(
        self,
        *,
        version: str,
        boot_id: str,
        mode: str,
        store: Store,
        worker: Worker,
        reader: ReaderDriver,
        unattended: Callable[[], AutopilotSettings] = AutopilotSettings,
    ) -> None:
        self._version = version
        self._boot_id = boot_id
        self._mode = mode
        self._store = store
        self._worker = worker
        self._reader = reader
        self._unattended = unattended  # the autopilot's settings, as last (re)loaded
        self._started_at = time.monotonic()

    def banner(self) -> dict[str, Any]:
        """The first line every client reads."""
        return {"protocol": PROTOCOL_VERSION, "daemon": self._version, "boot_id": self._boot_id, "mode": self._mode}

    def status(self) -> dict[str, Any]:
        """status.get's answer."""
        health = self._worker.health
        stats = self._store.queue_stats()
        return {
            "daemon": self._version,
            "protocol": PROTOCOL_VERSION,
            "boot_id": self._boot_id,
            "mode": self._mode,
            "uptime_s": round(time.monotonic() - self._started_at, 1),
            "reader": self.reader_status(),
            "stripe": {
                "state": health.state.value,
                "reachable": health.reachable,
                "consecutive_failures": health.consecutive_failures,
                "last_ok_at": rfc3339(health.last_ok_at) if health.last_ok_at else None,
            },
            "queue": self.queue_status(),
            "offline": {"count": stats.offline_count, "amount_by_currency": stats.offline_amount_by_currency},
            "store": self.store_status(),
            "deadline": self.deadline_status(),
            "unattended": self.unattended_status(),
        }

    def unattended_status(self) -> dict[str, Any]:
        """What the daemon does with a payment its POS left authorised (1.4): {policy, lead_s}."""
        settings = self._unattended()
        lead = settings.lead_s
        return {"policy": settings.policy.value, "lead_s": int(lead) if lead.is_integer() else lead}

    def deadline_status(self) -> dict[str, Any] | None:
        """The authorisation that lapses first unless captured (1.3): {payment_id, order_id,
        capture_before}, or None when no payment waits for a capture."""
        deadline = nearest_deadline(self._store)
        return deadline.to_json() if deadline else None

    def store_status(self) -> dict[str, Any]:
        """Where the store is (for `readerhostctl backup`) and how much room it takes."""
        path = self._store.path
        try:
            size: int | None = sum(
                file.stat().st_size for file in (path, path.with_name(path.name + "-wal")) if file.exists()
            )
        except OSError:
            size = None
        return {"path": str(path), "bytes": size}

    def reader_status(self) -> dict[str, Any]:
        return self._reader.status()

    def queue_status(self) -> dict[str, Any]:
        stats = self._store.queue_stats()
        oldest = None if stats.oldest_created_at is None else round(time.time() - stats.oldest_created_at, 1)
        return {"pending": stats.pending, "oldest_age_s": oldest}

    def line(self) -> str:
        """One line for `systemctl status`: e.g. "ready · reader sim-1 ready · 0 queued · online"."""
        queue = self.queue_status()["pending"]
        stripe = STRIPE_LINE[self._worker.health.state]
        mode = "" if self._mode == "live" else f" · {self._mode} mode"
        return f"ready · reader {self._reader_summary()} · {queue} queued · {stripe}{mode}"

    def technician_info(self) -> dict[str, Any]:
        """What the technician screen shows (the OK button held)."""
        return {
            "reader": self._reader_summary(),
            "queue": self.queue_status()["pending"],
            "version": self._version,
            "deadline": nearest_deadline(self._store),
        }

    def _reader_summary(self) -> str:
        """e.g. "sim-1 ready", or "disconnected" for a reader never reached."""
        reader = self._reader.status()
        refused = (reader.get("link") or {}).get("refused")
        if refused:  # a link reader the host would not take, e.g. "refused: not bonded"
            return f"refused: {refused}"
        return f"{reader['id']} {reader['state']}" if reader["id"] else str(reader["state"])
