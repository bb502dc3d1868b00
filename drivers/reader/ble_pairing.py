"""The BLE driver's readers: the link readers of versions 1 and 2, which also pair (PAIRS).

Pairing takes the link for a moment: the reader stops reconnecting, the transport bonds (ble.py),
and the reader reconnects, now to a bonded device. A reader already bonded is left alone.
"""

from __future__ import annotations

from .base import Capability, Paired, ReaderError
from .ble import BleTransport
from .link import CAPABILITIES, SDK_CAPABILITIES
from .link.reader import LinkReader, SdkLinkReader, logger
from .link.transport import LinkUnavailable


async def _pair(reader: LinkReader, transport: object) -> Paired:
    if not isinstance(transport, BleTransport):
        raise TypeError("a BLE reader pairs over its BleTransport")
    try:
        address = await transport.address()
        if await transport.bonded(address):
            return Paired(address, already=True)
        async with reader.link_paused("the link is paused for pairing"):
            await transport.pair(address)
    except LinkUnavailable as error:
        raise ReaderError("READER_UNAVAILABLE", f"pairing failed: {error.reason}") from None
    logger.info("reader ble %s bonded (LE Secure Connections)", address)
    return Paired(address, already=False)


class BleLinkReader(LinkReader):
    capabilities = CAPABILITIES | {Capability.PAIRS}

    async def pair(self) -> Paired:
        return await _pair(self, self._transport)


class BleSdkLinkReader(SdkLinkReader):
    capabilities = SDK_CAPABILITIES | {Capability.PAIRS}

    async def pair(self) -> Paired:
        return await _pair(self, self._transport)
