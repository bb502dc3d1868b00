"""The reader a driver registered at Stripe, kept in the store so that the next start uses it again
(the smart-reader driver's `Registrations`; the configuration's reader_id, when set, still wins)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .payments.store import RegisteredReader, Store


class StoredRegistrations:
    def __init__(self, store: Store, driver: str, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._driver = driver
        self._clock = clock

    def recall(self) -> str | None:
        registered = self._store.registered_reader(self._driver)
        return registered.reader_id if registered else None

    def keep(self, reader_id: str, location: str | None) -> None:
        self._store.save_registered_reader(RegisteredReader(self._driver, reader_id, location, self._clock()))
