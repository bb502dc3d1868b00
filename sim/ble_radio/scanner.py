"""bleak's scanner backend on a `VirtualRadio`: bumble advertisements become bleak's AdvertisementData."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.uuids import normalize_uuid_str
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Device

if TYPE_CHECKING:
    from .radio import VirtualRadio

_UUID_LISTS = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID,
)


def bleak_uuid(uuid: UUID) -> str:
    """bumble's UUID as bleak spells UUIDs: 128-bit, lower case."""
    return normalize_uuid_str(uuid.to_hex_str("-"))


def bleak_address(address: Any) -> str:
    """A bumble address as bleak shows addresses on Linux: upper-case hex, no type suffix."""
    return str(address.to_string(False))


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    data = advertisement.data
    name = data.get(AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get(AdvertisingData.Type.SHORTENED_LOCAL_NAME)
    uuids: list[str] = []
    # get_all's result type depends on the kind; these kinds hold UUID lists and (UUID, bytes) pairs.
    for kind in _UUID_LISTS:
        for listed in cast(list[list[UUID]], data.get_all(kind)):
            uuids.extend(bleak_uuid(uuid) for uuid in listed)
    service_data = {
        bleak_uuid(uuid): bytes(value)
        for kind in _SERVICE_DATA
        for uuid, value in cast(list[tuple[UUID, bytes]], data.get_all(kind))
    }
    manufacturer_data = {
        company: bytes(value) for company, value in data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA)
    }
    tx_power = data.get(AdvertisingData.Type.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=name if isinstance(name, str) else None,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=list(dict.fromkeys(uuids)),  # a scan response may repeat them, as bumble's virtual one does
        tx_power=tx_power if isinstance(tx_power, int) else None,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


class BumbleBleakScanner(BaseBleakScanner):
    """Scans on the radio's shared adapter. The radio comes from `radio=` (bleak forwards extra
    keyword arguments) or from a subclass made by `VirtualRadio.bleak_backends()`."""

    default_radio: ClassVar[VirtualRadio | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        radio: VirtualRadio | None = None,
        **kwargs: Any,  # bleak's per-platform arguments (bluez=, cb=): nothing to do with them here
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        chosen = radio or self.default_radio
        if chosen is None:
            raise TypeError("BumbleBleakScanner needs a radio: pass radio= or use VirtualRadio.bleak_backends()")
        self._radio = chosen
        self._adapter: Device | None = None

    async def start(self) -> None:
        if self._adapter is not None:
            return
        self.seen_devices = {}
        self._adapter = await self._radio.start_scanning()
        self._adapter.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)

    async def stop(self) -> None:
        adapter, self._adapter = self._adapter, None
        if adapter is None:
            return
        adapter.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self._radio.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        adv = advertisement_data(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = bleak_address(advertisement.address)
        # `details` keeps bumble's address, with its type, for the client to connect to.
        device = self.create_or_update_device(address, address, adv.local_name, advertisement.address, adv)
        self.call_detection_callbacks(device, adv)
