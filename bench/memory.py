"""Memory: steady-state RSS and USS of a real readerhostd after one payment, against the floor.

RSS is `Rss` and USS is `Private_Clean + Private_Dirty` from /proc/PID/smaps_rollup. The floor is
`python -c "import stripe"` kept alive, and a bare interpreter, measured the same way. What the
rest is spent on is measured by importing each heavy module in a fresh interpreter. The serial
reader row talks to `readerhost-reader-emulator` on a pty, started as a child process that
presents a Visa card by itself as soon as the daemon asks for one.
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from readerhost.client import Client

from .common import Result, spread, table
from .startup import SIMULATED_ONLY, external_config, external_emulator, reader_emulator, running_daemon, serial_reader

KEY = "memory"
TARGET_MB = 42.0  # with everything configured: serial reader, OLED, GPIO (issue 21)
SETTLE_S = 2.0  # after the payment, before measuring

UI_CONFIG = """
[display]
kind = "terminal"

[gpio]
enabled = true
"""
UI_ENV = {"GPIOZERO_PIN_FACTORY": "mock"}

# Modules imported one at a time in a fresh interpreter, for what the daemon's RSS is spent on.
HEAVY_MODULES = (
    "asyncio",
    "sqlite3",
    "requests",
    "stripe",
    "PIL.Image",
    "luma.oled.device",
    "gpiozero",
    "serial",
    "bleak",
    "readerhost.drivers.reader.link.reader",
    "readerhost.sim.stripe_emulator",
    "readerhost.daemon.app",
)
# What every daemon does with stripe once it is imported: its client (the gateway's), measured alike.
STRIPE_CLIENT = "import stripe; stripe.StripeClient('sk_test_bench')"

_SMAPS_SNIPPET = (
    "def rss():\n"
    "    fields = {}\n"
    "    for line in open('/proc/self/smaps_rollup'):\n"
    "        parts = line.split()\n"
    "        if len(parts) >= 3 and parts[-1] == 'kB':\n"
    "            fields[parts[0].rstrip(':')] = int(parts[1])\n"
    "    return fields['Rss'], fields['Private_Clean'] + fields['Private_Dirty']\n"
)


def smaps(pid: int) -> tuple[float, float]:
    """(RSS, USS) of a process in MB (1 MB = 1024 kB here)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1] == "kB":
            fields[parts[0].rstrip(":")] = int(parts[1])
    return fields["Rss"] / 1024, (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024


_order_ids = itertools.count(1)


def one_payment(socket_path: Path, *, present: bool = True) -> str:
    """Start a payment, present a card when the reader asks, capture once authorised; the final state.

    With `present=False` the reader presents the card itself (a link reader: reader.present is
    UNSUPPORTED there); the payment then waits for the reader's link to be up first.
    """
    with Client.connect(socket_path) as client:
        snapshot = client.subscribe(["payment", "reader"])
        if not present and snapshot["reader"]["state"] != "ready":
            client.wait_for_event(lambda e: e.type == "reader.connected", timeout=30)
        payment = client.start_payment(f"bench-{time.time_ns()}-{next(_order_ids)}", 1250, "usd", capture="manual")
        payment_id = payment["payment_id"]
        client.wait_for_event(
            lambda e: e.type == "reader.input_options" and e.data.get("payment_id") == payment_id, timeout=30
        )
        if present:
            client.present("visa")
        final = ("authorized", "captured", "declined", "canceled", "failed")
        event = client.wait_for_event(
            lambda e: e.type == "payment.state" and e.data["payment_id"] == payment_id and e.data["state"] in final,
            timeout=30,
        )
        if event.data["state"] != "authorized":
            return str(event.data["state"])
        client.capture(payment_id)
        event = client.wait_for_event(
            lambda e: (
                e.type == "payment.state"
                and e.data["payment_id"] == payment_id
                and e.data["state"] in ("captured", "failed")
            ),
            timeout=30,
        )
        return str(event.data["state"])


@contextmanager
def _kept_alive(code: str) -> Iterator[int]:
    """`python -c CODE` that then waits on stdin; yields its pid once CODE has run."""
    script = code + "\nimport sys\nprint('up', flush=True)\nsys.stdin.read()\n"
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        if process.stdout.readline().strip() != "up":
            raise RuntimeError(f"python -c {code!r} did not start")
        yield process.pid
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=15)


def _measure_daemon(config: str, env: dict[str, str], notes: list[str], *, present: bool = True) -> tuple[float, float]:
    with running_daemon(config, env) as daemon:
        state = one_payment(daemon.socket_path, present=present)
        if state != "captured":
            notes.append(f"a benchmark payment ended {state}, not captured")
        time.sleep(SETTLE_S)
        log = "\n".join(daemon.log)
        if "Traceback" in log:
            notes.append("the daemon logged a traceback: " + log[-500:])
        # A display, GPIO or reader that did not come up would make the figures meaningless: say so.
        for line in daemon.log:
            said = line.lower()
            note = f"the daemon said: {line}"
            if (
                line.startswith("WARNING")
                and any(w in said for w in ("gpio", "display", "readerhost.reader:"))
                and note not in notes
            ):
                notes.append(note)
        return smaps(daemon.pid)


def _measure_floor(code: str) -> tuple[float, float]:
    with _kept_alive(code) as pid:
        time.sleep(SETTLE_S)
        return smaps(pid)


def import_costs() -> list[tuple[str, float, float, float]]:
    """(statement, RSS MB added, USS MB added, seconds) of running it alone in a fresh interpreter:
    `import M` for each heavy module M, and building a Stripe client."""
    costs = []
    for statement in [*(f"import {module}" for module in HEAVY_MODULES), STRIPE_CLIENT]:
        script = (
            _SMAPS_SNIPPET + "import time, json\nr0, u0 = rss()\nt0 = time.perf_counter()\n"
            f"{statement}\n"
            "t1 = time.perf_counter()\nr1, u1 = rss()\n"
            "print(json.dumps([(r1 - r0) / 1024, (u1 - u0) / 1024, t1 - t0]))\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            costs.append((statement, float("nan"), float("nan"), float("nan")))
            continue
        rss, uss, seconds = json.loads(done.stdout.strip().splitlines()[-1])
        costs.append((statement, rss, uss, seconds))
    return costs


def _emulator_loaded(api_base: str, by_module: dict[str, float]) -> str:
    """Whether a daemon pointed at an external emulator still imports the emulator package (-X importtime)."""
    alone = by_module.get("readerhost.sim.stripe_emulator", float("nan"))
    with running_daemon(external_config(api_base), python_flags=("-X", "importtime")) as daemon:
        pass
    imported = [line for line in daemon.log if line.startswith("import time:")]
    raw = [line.rsplit("|", 1)[-1] for line in imported]
    names = [name.strip() for name in raw]
    if "readerhost.sim.stripe_emulator.server" not in names:
        return (
            "A daemon pointed at an external emulator (as live) does not load the emulator: it reads only the "
            f"test-card table of `readerhost.sim.stripe_emulator` for its simulated reader ({alone:.1f} MB with "
            "the package, most of it shared)."
        )
    # -X importtime lists a module once it is done, indented by depth: its importer is the next line less indented.
    index = names.index("readerhost.sim.stripe_emulator.server")
    depth = len(raw[index]) - len(raw[index].lstrip())
    importer = next((n.strip() for n in raw[index + 1 :] if len(n) - len(n.lstrip()) < depth), "?")
    return (
        "A daemon pointed at an external emulator (as live) still loads the emulator's HTTP server "
        f"(`-X importtime` shows it imported by `{importer}`): a live daemon should not pay for it."
    )


BUILTIN = "readerhostd, simulated reader, built-in emulator (emulator mode)"
LIVE = "readerhostd, simulated reader, external emulator (as live: no emulator inside)"
SERIAL = "readerhostd, serial reader (pyserial, reader emulator on a pty), external emulator"
UI = "readerhostd + OLED (`terminal`) + GPIO (mock pins), external emulator"
KIOSK = "readerhostd, serial reader + OLED (`terminal`) + GPIO (mock pins), external emulator: everything configured"
STRIPE_FLOOR = 'floor: `python -c "import stripe"` kept alive'
BARE_FLOOR = "floor: bare interpreter (`python -c pass` kept alive)"


def run(quick: bool) -> Result:
    repetitions = 1 if quick else 3
    notes: list[str] = []
    emulator: AbstractContextManager[tuple[str, int]] = external_emulator()
    with (
        emulator as (api_base, _),
        tempfile.TemporaryDirectory(prefix="readerhost-bench-") as folder,
        # One reader emulator for every repetition: each daemon's HELLO resets it.
        reader_emulator(Path(folder) / "reader-tty", "--card", "visa", "--present-after", "0"),
    ):
        serial_config = external_config(api_base, reader=serial_reader(Path(folder) / "reader-tty"))
        kiosk_config = external_config(api_base, UI_CONFIG, reader=serial_reader(Path(folder) / "reader-tty"))
        variants: list[tuple[str, Callable[[], tuple[float, float]]]] = [
            (BUILTIN, lambda: _measure_daemon(SIMULATED_ONLY, {}, notes)),
            (LIVE, lambda: _measure_daemon(external_config(api_base), {}, notes)),
            (SERIAL, lambda: _measure_daemon(serial_config, {}, notes, present=False)),
            (UI, lambda: _measure_daemon(external_config(api_base, UI_CONFIG), UI_ENV, notes)),
            (KIOSK, lambda: _measure_daemon(kiosk_config, UI_ENV, notes, present=False)),
            (STRIPE_FLOOR, lambda: _measure_floor("import stripe")),
            (BARE_FLOOR, lambda: _measure_floor("pass")),
        ]
        figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _ in variants}
        for _ in range(repetitions):  # alternating: one of each per repetition
            for name, measure in variants:
                rss, uss = measure()
                figures[name][0].append(rss)
                figures[name][1].append(uss)
    rows = [[name, spread(rss, " MB"), spread(uss, " MB")] for name, (rss, uss) in figures.items()]
    rss_of = {name: statistics.median(rss) for name, (rss, _) in figures.items()}
    uss_of = {name: statistics.median(uss) for name, (_, uss) in figures.items()}
    met = max(rss_of[name] for name in (BUILTIN, LIVE, SERIAL, UI, KIOSK)) <= TARGET_MB
    builtin_rss, live_rss, serial_rss, ui_rss = (rss_of[name] for name in (BUILTIN, LIVE, SERIAL, UI))
    kiosk_rss = rss_of[KIOSK]
    stripe_rss, bare_rss = rss_of[STRIPE_FLOOR], rss_of[BARE_FLOOR]

    costs = import_costs()
    cost_of = {statement.removeprefix("import "): rss for statement, rss, _, _ in costs if statement != STRIPE_CLIENT}
    client_rss = next(rss for statement, rss, _, _ in costs if statement == STRIPE_CLIENT)
    emulator_note = _emulator_loaded(api_base, cost_of)
    cost_rows = [
        [f"`{statement}`", f"{rss:.1f} MB", f"{uss:.1f} MB", f"{seconds * 1000:.0f} ms"]
        for statement, rss, uss, seconds in sorted(costs, key=lambda c: -c[1] if c[1] == c[1] else 0)
    ]

    text = table(["process", "RSS", "USS"], rows)
    text += "\n\nWhat importing each module alone adds to a fresh interpreter (overlapping: requests is part of "
    text += "stripe's cost, everything is part of readerhost.daemon.app's), and stripe with the client every "
    text += "daemon builds:\n\n"
    text += table(["statement", "RSS added", "USS added", "time"], cost_rows)

    notes.extend(
        [
            f"{repetitions} repetition(s), alternating the seven processes; median (min-max). Each daemon is measured "
            f"{SETTLE_S:g} s after one payment went through the socket (payment.start, reader.present on "
            "reader.input_options, payment.capture), so its lazily imported modules are loaded. The serial "
            "reader's payment needs no reader.present (UNSUPPORTED for link readers): `readerhost-reader-emulator "
            "--card visa --present-after 0`, a child process of the benchmark, presents the card as soon as the "
            "daemon's COLLECT arrives, and the payment starts once the daemon reports the reader connected.",
            f"Target: ≤ {TARGET_MB:g} MB RSS — {'met' if met else 'not met with everything configured'} "
            f"(built-in emulator {builtin_rss:.1f} MB, external emulator {live_rss:.1f} MB, "
            f"serial reader {serial_rss:.1f} MB, with OLED and GPIO {ui_rss:.1f} MB, serial reader with OLED and "
            f"GPIO {kiosk_rss:.1f} MB).",
            f"Of the live-like daemon's {live_rss:.1f} MB, the bare interpreter is {bare_rss:.1f} MB and "
            f"`import stripe` brings it to {stripe_rss:.1f} MB; the daemon's own modules, asyncio, sqlite3 and its "
            f"working data make the remaining {live_rss - stripe_rss:.1f} MB, of which the Stripe client "
            f"(`stripe.StripeClient`, which the gateway needs: the client's own modules for every API service) "
            f"is {client_rss - cost_of['stripe']:.1f} MB. Running the built-in emulator "
            f"(its HTTP server thread and stored objects) adds {builtin_rss - live_rss:.1f} MB in emulator mode.",
            emulator_note,
            f"The OLED and GPIO add {ui_rss - live_rss:.1f} MB: PIL.Image (the screens' pixels; "
            f"`import PIL.Image` alone: {cost_of.get('PIL.Image', float('nan')):.1f} MB) and gpiozero with its mock "
            f"pin factory via GPIOZERO_PIN_FACTORY=mock (`import gpiozero` alone: "
            f"{cost_of.get('gpiozero', float('nan')):.1f} MB). The `terminal` panel draws to stdout, sent to "
            "/dev/null; luma, which an SSD1306 or SH1106 panel loads on top "
            f"(`import luma.oled.device` alone: {cost_of.get('luma.oled.device', float('nan')):.1f} MB, PIL "
            "included), is not loaded for it. The screens are drawn with the daemon's own copy of two of luma's "
            "bitmap fonts (daemon/ui/glyphs.py) and PIL.Image alone: before issue 21 the fonts came from "
            "luma.core.legacy, which loaded luma's renderer, Pillow's ImageDraw and ImageFont, and FreeType and "
            "HarfBuzz with them (about 2.5 MB).",
            f"A serial reader instead of the simulated one: {serial_rss - live_rss:+.1f} MB RSS "
            f"({uss_of[SERIAL] - uss_of[LIVE]:+.1f} MB USS) against the live-like daemon. pyserial is the only "
            f"library it adds (`import serial` alone: {cost_of.get('serial', float('nan')):.1f} MB), with the link "
            "reader's own modules (`readerhost.drivers.reader.link.reader`, "
            f"{cost_of.get('readerhost.drivers.reader.link.reader', float('nan')):.1f} MB alone, most of it "
            "asyncio, which every daemon has anyway; a driver module imports its library only when it is opened, "
            "i.e. configured). bleak, which only a BLE reader loads "
            f"(`import bleak` alone: {cost_of.get('bleak', float('nan')):.1f} MB, asyncio included), is not "
            "measured in a daemon here: that needs a Bluetooth adapter (BlueZ) or the tests' virtual radio.",
        ]
    )
    return Result(KEY, "Memory", text, tuple(notes), met)
