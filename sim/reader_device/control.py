"""The emulator's control channel: one JSON object per line in, one JSON answer per line out.

Commands (one key each, plus `charging` with `battery`):
  {"present": "visa"}           present a test card to the collection waiting for one
  {"unplug": true}              the reader vanishes (pty: closed, link name removed; BLE: disconnected, silent)
  {"replug": true}              it comes back (pty: a new one; BLE: advertising); answers {"ok": true, "pty"/"ble": ...}
  {"stop_answering": true}      hang (false: answer again)
  {"garble_next": 2}            damage the next 2 outgoing frames
  {"battery": 15, "charging": false}   change the battery (BATTERY is sent as the protocol says)
  {"script": {"card": null, "prompts": ["retry_card"]}}   change these script fields, from the next collection
  {"fail_next_process": "drop_after_confirm"}   version 2: the next PROCESS fails that way
  {"status": true}              {"ok": true, "pty"/"ble": ..., "collecting": n or null, "received": count}
Answers are {"ok": true, ...} or {"error": "..."}. What unplug, replug and status mean is the
transport's (a Port: pty.PluggablePty, ble_cli.PeripheralPort).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from .device import ReaderDevice

Answer = dict[str, Any]


class Port(Protocol):
    """How the emulated reader is attached, as the control channel sees it."""

    async def unplug(self) -> None:
        """The reader vanishes from the host's view; RuntimeError when it is not plugged in."""
        ...

    async def replug(self) -> Answer:
        """It comes back (unplugged first when plugged in); what the answer adds, e.g. {"pty": path}."""
        ...

    def describe(self) -> Answer:
        """What `status` tells of the attachment, e.g. {"pty": path or None}."""
        ...


class ControlError(Exception):
    """A command that cannot be carried out; its text is the answer."""


async def handle(line: str, device: ReaderDevice, port: Port) -> Answer:
    """Carry out one command line; never raises for bad input."""
    try:
        command = json.loads(line)
    except ValueError:
        return {"error": "not JSON: send one JSON object per line"}
    if not isinstance(command, dict) or not command:
        return {"error": 'send a JSON object such as {"present": "visa"}'}
    try:
        return await _run(command, device, port)
    except (ControlError, ValueError, RuntimeError, OSError) as error:
        return {"error": str(error)}


async def _run(command: dict[str, Any], device: ReaderDevice, port: Port) -> Answer:
    keys = set(command)
    if keys in ({"battery", "charging"}, {"battery"}):
        level, charging = command["battery"], command.get("charging", False)
        if type(level) is not int or not isinstance(charging, bool):
            raise ControlError("battery must be an integer 0-100 and charging true or false")
        device.set_battery(level, charging)
        return {"ok": True}
    if len(keys) != 1:
        raise ControlError(f"one command per line, not {', '.join(sorted(keys))}")
    (name, value), *_ = command.items()
    if name == "present":
        if not isinstance(value, str):
            raise ControlError("present takes a test card's name")
        if not device.present(value):
            raise ControlError("no collection is waiting for a card")
        return {"ok": True}
    if name == "unplug":
        _true(name, value)
        await port.unplug()
        return {"ok": True}
    if name == "replug":
        _true(name, value)
        return {"ok": True, **(await port.replug())}
    if name == "stop_answering":
        if not isinstance(value, bool):
            raise ControlError("stop_answering takes true or false")
        device.stop_answering(value)
        return {"ok": True}
    if name == "garble_next":
        if type(value) is not int or value < 1:
            raise ControlError("garble_next takes a count of frames, 1 or more")
        device.garble_next(value)
        return {"ok": True}
    if name == "script":
        if not isinstance(value, dict):
            raise ControlError("script takes an object of script fields")
        device.set_script(device.script.updated(value))
        return {"ok": True}
    if name == "fail_next_process":
        if not isinstance(value, str):
            raise ControlError("fail_next_process takes a failure's name")
        device.fail_next_process(value)
        return {"ok": True}
    if name == "status":
        _true(name, value)
        return {"ok": True, **port.describe(), "collecting": device.collecting, "received": len(device.received)}
    raise ControlError(
        f"unknown command {name!r} (known: present, unplug, replug, stop_answering, "
        "garble_next, battery, script, fail_next_process, status)"
    )


def _true(name: str, value: Any) -> None:
    if value is not True:
        raise ControlError(f"{name} takes true")
