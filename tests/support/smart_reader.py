"""A Stripe smart reader at the counter, for the daemon's tests: readerhostd with the stripe_terminal
driver against its built-in emulator's simulated WisePOS E, a POS on the real socket, and the
customer (Stripe's test helper present_payment_method, the reader's knobs, the emulator's journal)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from conftest import make_client

from readerhost.daemon.app import Daemon
from support.daemon import LineClient, emulator_of, of_type, running_daemon, subscribed_when_connected

CONFIG = """
[reader]
driver = "stripe_terminal"
cancel_confirm_s = 2
[reader.stripe_terminal]
registration_code = "simulated-wpe"
"""
# The one-step flow (process_payment_intent), as before the two-step flow became the default.
ONE_STEP = CONFIG + 'flow = "process"\n'
FLOWS = {"two_step": CONFIG, "process": ONE_STEP}
DECLINED_INSUFFICIENT_FUNDS = "4000000000009995"


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


class Customer:
    """Stripe's side of the counter: the test helper presents cards; the emulator's knobs play the rest."""

    def __init__(self, daemon: Daemon) -> None:
        emulator = emulator_of(daemon)
        self.emulator = emulator.emulator
        self.stripe = make_client(emulator.url)
        self.reader_id = str(daemon.parts.reader.status()["id"])
        self.emulator.configure_reader(self.reader_id, {"processing_s": 0.05})

    async def presents(self, number: str = "4242424242424242") -> None:
        await asyncio.to_thread(
            self.stripe.v1.test_helpers.terminal.readers.present_payment_method,
            self.reader_id,
            {"card_present": {"number": number}},
        )

    def journal(self, op: str) -> list[Any]:
        return [e for e in self.emulator.journal_entries() if e.op == op]


@contextlib.asynccontextmanager
async def at_the_counter(tmp_path: Path, config: str = CONFIG) -> AsyncIterator[tuple[LineClient, Customer]]:
    """readerhostd with a simulated WisePOS E, a POS subscribed once the reader is known, and the customer."""
    async with running_daemon(tmp_path, config) as daemon:
        pos = await subscribed_when_connected(daemon.socket_path)
        try:
            yield pos, Customer(daemon)
        finally:
            await pos.close()


async def waiting_for_card(pos: LineClient, payment_id: str) -> None:
    await pos.event(of_type("reader.display_message", payment_id=payment_id, message="follow_reader"))


def smart_reader_config(url: str, reader_id: str, *settings: str) -> str:
    """readerhostd's configuration for the emulator at `url` and its simulated reader `reader_id`, with
    `settings` (lines such as 'flow = "two_step"') added to [reader.stripe_terminal]."""
    from reliability.world import stripe_settings

    extra = "".join(f"{line}\n" for line in settings)
    return (
        stripe_settings(url)
        + f"""
[reader]
driver = "stripe_terminal"
cancel_confirm_s = 2

[reader.stripe_terminal]
reader_id = "{reader_id}"
{extra}"""
    )
