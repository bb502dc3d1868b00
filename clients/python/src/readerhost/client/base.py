"""What AsyncClient and Client share word for word: what the daemon's banner said, and whether the
connection has ended."""

from __future__ import annotations

from .wire import Banner, ProtocolVersion


class ClientBase:
    """The banner's fields and `closed`, over a client's `banner` and its `_lost` (why the
    connection ended, once it has)."""

    banner: Banner
    _lost: str | None

    # -- what the banner said ------------------------------------------------------------------

    @property
    def protocol(self) -> ProtocolVersion:
        return self.banner.protocol

    @property
    def boot_id(self) -> str:
        return self.banner.boot_id

    @property
    def mode(self) -> str:
        return self.banner.mode

    # -- the connection ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._lost is not None
