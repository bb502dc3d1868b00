"""The one thing the BLE driver asks BlueZ itself, over D-Bus: is this device bonded with us?

bleak has no call for it. BlueZ keeps each known device as an org.bluez.Device1 object with its
`Address`, `Paired` and (BlueZ 5.63 and later) `Bonded` properties; a device paired without bonding
has no keys kept, so `Bonded` is what counts, and `Paired` stands in on an older BlueZ. Not run by the
tests (no BlueZ there): keep it this small.
"""

from __future__ import annotations

from typing import Any

BLUEZ = "org.bluez"
DEVICE = "org.bluez.Device1"


async def bonded(address: str) -> bool:
    """Whether BlueZ holds a bond with the device at `address` (on any adapter). OSError when the
    system bus cannot be reached (no D-Bus, no BlueZ)."""
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    try:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    except OSError:
        raise
    except Exception as error:  # dbus_fast's own (AuthError, ...): the caller expects OSError
        raise OSError(f"cannot reach BlueZ over D-Bus: {error}") from None
    try:
        reply = await bus.call(
            Message(
                destination=BLUEZ,
                path="/",
                interface="org.freedesktop.DBus.ObjectManager",
                member="GetManagedObjects",
            )
        )
    finally:
        bus.disconnect()
    if reply is None or reply.message_type is MessageType.ERROR:
        why = reply.error_name if reply is not None else "no reply"
        raise OSError(f"BlueZ did not answer: {why} (is bluetooth.service running?)")
    objects: dict[str, dict[str, dict[str, Any]]] = reply.body[0]
    for interfaces in objects.values():
        device = interfaces.get(DEVICE)
        if device is None or str(device["Address"].value).upper() != address.upper():
            continue
        flag = device.get("Bonded") or device.get("Paired")
        if flag is not None and bool(flag.value):
            return True
    return False
