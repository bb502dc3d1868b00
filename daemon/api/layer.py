"""The POS socket API built in one place: its methods, who owns which payment, the server, the events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from readerhost.daemon.payments.events import Event

from .backends import DaemonStatus, Payments, ReaderOperations, Reconciling, TextDisplay
from .forward import EventForwarder
from .methods import Methods
from .owners import PaymentOwners
from .server import ApiServer, PeerPolicy, ServerLimits


class PosApi:
    """Give `server` a socket to serve, and `on_event` to the event hub."""

    def __init__(
        self,
        *,
        payments: Payments,
        reconciler: Reconciling,
        status: DaemonStatus,
        display: TextDisplay,
        reader: ReaderOperations,
        boot_id: str,
        banner: Callable[[], dict[str, Any]],
        policy: PeerPolicy,
        limits: ServerLimits,
    ) -> None:
        self._owners = PaymentOwners(payments)
        methods = Methods(payments, reconciler, status, display, reader, self._owners)
        self.server = ApiServer(methods, banner, policy, limits, on_disconnect=self._owners.client_left)
        self._forward = EventForwarder(self.server, boot_id)

    def on_event(self, event: Event) -> None:
        """Each committed change: the owners forget a payment that let go of the reader, and the
        subscribed clients are told."""
        self._owners.on_event(event)
        self._forward(event)
