"""Reader operations on Stripe's smart readers, with readerhostd in this process, the real stripe
library over HTTP and the emulator's simulated readers: the reader a registration code made is kept
in the store and used at every start; reader.register and reader.locations on the socket; the
health check that notices an idle reader going offline (and back); a smart reader's receipt."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from conftest import EmulatorHandle, make_client
from support.daemon import LineClient, daemon_process, emulator_of, of_type, running_daemon, screen_of
from support.emulator_fidelity import control, count_requests, wait_until
from support.oled import RecordingBus
from support.other_user import NOBODY, open_to_all

from readerhost.daemon.payments.store import Store

REGISTERING = """
[reader]
driver = "stripe_terminal"
[reader.stripe_terminal]
registration_code = "simulated-wpe"
"""


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="switching to another user needs root and setpriv"
)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def at(url: str, reader: str = "") -> str:
    """A configuration for a daemon on the emulator at `url` (shared across restarts), with this reader table."""
    return f'[stripe]\napi_base = "{url}"\n\n[reader]\ndriver = "stripe_terminal"\n{reader}'


async def pos_of(socket_path: Path) -> LineClient:
    pos = await LineClient.connect(socket_path)
    await pos.receive()  # the banner
    await pos.call("events.subscribe", {"topics": ["payment", "reader"]})
    return pos


def creates(emulator: Any) -> list[str]:
    return [entry.object for entry in emulator.journal_entries() if entry.op == "reader.create"]


@pytest.fixture
def stripe_client(stripe_emulator: EmulatorHandle) -> stripe.StripeClient:
    return make_client(stripe_emulator.url)


# -- the registered reader is kept ---------------------------------------------------------------


def test_a_reader_registered_with_its_code_is_kept_and_used_at_every_start(
    tmp_path: Path, stripe_emulator: EmulatorHandle, stripe_client: stripe.StripeClient
) -> None:
    config = at(stripe_emulator.url, '[reader.stripe_terminal]\nregistration_code = "simulated-wpe"\n')
    store_paths: list[Path] = []

    async def scenario() -> None:
        async with running_daemon(tmp_path, config) as daemon:
            first = daemon.parts.reader.status()
            store_paths.append(daemon.store_path)
        assert first["id"].startswith("tmr_")
        assert first["state"] == "ready"
        assert creates(stripe_emulator.emulator) == [first["id"]]
        # Restarted with the same configuration: the kept reader, no second registration.
        async with running_daemon(tmp_path, config) as daemon:
            again = daemon.parts.reader.status()
            assert (again["id"], again["state"]) == (first["id"], "ready")
        assert creates(stripe_emulator.emulator) == [first["id"]]
        # A configured reader_id wins over the kept one.
        other = stripe_client.v1.terminal.readers.create(params={"registration_code": "simulated-s700"}).id
        configured = at(stripe_emulator.url, f'[reader.stripe_terminal]\nreader_id = "{other}"\n')
        async with running_daemon(tmp_path, configured) as daemon:
            assert daemon.parts.reader.status()["id"] == other
            pos = await pos_of(daemon.socket_path)
            refused = await pos.call("reader.register", {"registration_code": "simulated-wpe"})
            assert refused["error"]["data"]["reason"] == "INVALID_STATE"
            assert "reader_id" in refused["error"]["message"]
            await pos.close()

    run(scenario())
    store = Store.open(store_paths[0])
    try:
        kept = store.registered_reader("stripe_terminal")
        assert kept is not None
        assert kept.reader_id == creates(stripe_emulator.emulator)[0]
    finally:
        store.close()


# -- reader.register and reader.locations --------------------------------------------------------


def test_register_and_locations_on_the_socket_then_pay_with_a_receipt(
    tmp_path: Path, stripe_emulator: EmulatorHandle, stripe_client: stripe.StripeClient
) -> None:
    emulator = stripe_emulator.emulator

    async def scenario() -> None:
        async with running_daemon(tmp_path, at(stripe_emulator.url)) as daemon:
            pos = await pos_of(daemon.socket_path)
            reader = (await pos.call("status.get"))["result"]["reader"]
            assert (reader["state"], reader["id"]) == ("connecting", None)
            assert "readerhostctl reader register" in reader["link"]["last_error"]
            refused = await pos.call("payment.start", {"order_id": "R-0", "amount": 500, "currency": "usd"})
            assert refused["error"]["data"]["reason"] == "READER_UNAVAILABLE"

            assert (await pos.call("reader.locations"))["result"] == {"locations": []}
            front = stripe_client.v1.terminal.locations.create(
                params={
                    "display_name": "Front kiosk",
                    "address": {"line1": "12 Station Road", "city": "Springfield", "country": "US"},
                }
            )
            listed = (await pos.call("reader.locations"))["result"]["locations"]
            assert listed == [
                {
                    "id": front.id,
                    "display_name": "Front kiosk",
                    "address": {"line1": "12 Station Road", "city": "Springfield", "country": "US"},
                }
            ]

            # Bad input changes nothing: refused before Stripe is asked, or Stripe's own refusal.
            bad = await pos.call("reader.register", {"registration_code": "no code!"})
            assert bad["error"]["data"]["field"] == "registration_code"
            bad = await pos.call("reader.register", {"registration_code": "simulated-wpe", "location": "pi_1"})
            assert bad["error"]["data"]["field"] == "location"
            unknown = await pos.call(
                "reader.register", {"registration_code": "simulated-wpe", "location": "tml_missing"}
            )
            assert unknown["error"]["data"]["reason"] == "READER_UNAVAILABLE"
            assert "tml_missing" in unknown["error"]["message"]
            assert creates(emulator) == []

            answer = await pos.call(
                "reader.register", {"registration_code": "simulated-wpe", "location": front.id, "label": "Kiosk 1"}
            )
            registered = answer["result"]["reader"]
            assert registered["id"].startswith("tmr_")
            assert (registered["state"], registered["model"]) == ("ready", "simulated_wisepos_e")
            connected = await pos.event(of_type("reader.connected", id=registered["id"]))
            assert connected["params"]["data"]["reason"] == "connected"
            at_stripe = stripe_client.v1.terminal.readers.retrieve(registered["id"])
            assert (at_stripe.location, at_stripe.label) == (front.id, "Kiosk 1")

            # A payment on it: the smart reader's path carries the receipt too.
            emulator.configure_reader(registered["id"], {"processing_s": 0.05})
            started = await pos.call("payment.start", {"order_id": "R-1", "amount": 1250, "currency": "usd"})
            payment_id = started["result"]["payment_id"]
            await pos.event(of_type("reader.display_message", payment_id=payment_id, message="follow_reader"))
            busy = await pos.call("reader.register", {"registration_code": "simulated-wpe"})
            assert busy["error"]["data"]["reason"] == "BUSY"
            await asyncio.to_thread(
                stripe_client.v1.test_helpers.terminal.readers.present_payment_method,
                registered["id"],
                {"card_present": {"number": "4001000360000005"}, "type": "card_present"},
            )
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            receipt = authorised["params"]["data"]["receipt"]
            charge = stripe_client.v1.payment_intents.retrieve(
                authorised["params"]["data"]["payment_intent"], {"expand": ["latest_charge"]}
            ).latest_charge
            assert isinstance(charge, stripe.Charge)
            assert charge.payment_method_details is not None
            assert charge.payment_method_details.card_present
            emv = charge.payment_method_details.card_present.receipt
            assert emv is not None
            assert receipt["cardholder_verification_method"] == emv.cardholder_verification_method == "online_pin"
            assert receipt["authorization_code"] == emv.authorization_code is not None
            assert receipt["dedicated_file_name"] == emv.dedicated_file_name
            assert receipt["receipt_url"] == charge.receipt_url
            assert (await pos.call("payment.get", {"payment_id": payment_id}))["result"]["receipt"] == receipt
            await pos.close()
        assert creates(emulator) == [registered["id"]]
        # The next start uses the reader registered on the socket.
        async with running_daemon(tmp_path, at(stripe_emulator.url)) as daemon:
            assert daemon.parts.reader.status()["id"] == registered["id"]
        assert creates(emulator) == [registered["id"]]

    run(scenario())


def test_register_and_locations_are_unsupported_by_other_readers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            pos = await pos_of(daemon.socket_path)
            for method, params in (
                ("reader.register", {"registration_code": "simulated-wpe"}),
                ("reader.locations", {}),
            ):
                answer = await pos.call(method, params)
                assert answer["error"]["data"]["reason"] == "UNSUPPORTED", method
                assert "is not registered at Stripe" in answer["error"]["message"]
            await pos.close()

    run(scenario())


# -- the health check ----------------------------------------------------------------------------

HEALTH = """
[display]
kind = "ssd1306"

[reader]
driver = "stripe_terminal"
[reader.stripe_terminal]
registration_code = "simulated-wpe"
health_check_s = 0.1
"""


@pytest.fixture
def journal(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="readerhostd"):
        yield caplog


def message_ids(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(getattr(r, "journal", {}).get("MESSAGE_ID")) for r in caplog.records if hasattr(r, "journal")]


def test_an_idle_reader_going_offline_is_noticed_shown_and_reconnected(
    tmp_path: Path, journal: pytest.LogCaptureFixture
) -> None:
    from readerhost.daemon.journal import MessageId

    async def scenario() -> None:
        async with running_daemon(tmp_path, HEALTH, display_bus=RecordingBus()) as daemon:
            url = emulator_of(daemon).url
            pos = await pos_of(daemon.socket_path)
            reader_id = (await pos.call("status.get"))["result"]["reader"]["id"]
            assert screen_of(daemon).kind != "reader_disconnected"

            # Taken offline through the emulator's control interface, while idle: noticed by the health check.
            taken = await asyncio.to_thread(control, url, "POST", f"terminal/readers/{reader_id}", {"online": False})
            assert taken.status_code == 200
            lost = await pos.event(of_type("reader.disconnected", id=reader_id))
            assert "offline" in lost["params"]["data"]["reason"]
            status = (await pos.call("status.get"))["result"]["reader"]
            assert (status["state"], status["link"]["connected"]) == ("disconnected", False)
            assert screen_of(daemon).kind == "reader_disconnected"
            assert str(MessageId.READER_LOST) in message_ids(journal)

            back = await asyncio.to_thread(control, url, "POST", f"terminal/readers/{reader_id}", {"online": True})
            assert back.status_code == 200
            again = await pos.event(of_type("reader.connected", id=reader_id, reason="reconnected"))
            assert again["params"]["data"]["model"] == "simulated_wisepos_e"
            status = (await pos.call("status.get"))["result"]["reader"]
            assert (status["state"], status["link"]["connected"]) == ("ready", True)
            assert screen_of(daemon).kind != "reader_disconnected"
            await pos.close()

    run(scenario())


def test_the_health_checks_share_the_pace_of_the_daemons_requests_to_stripe(tmp_path: Path) -> None:
    config = HEALTH.replace("[reader]", "[stripe]\nrequests_per_second = 4\n\n[reader]").replace(
        "health_check_s = 0.1", "health_check_s = 0.01"
    )

    async def scenario() -> None:
        async with running_daemon(tmp_path, config, display_bus=RecordingBus()) as daemon:
            emulator = emulator_of(daemon).emulator
            reader_id = daemon.parts.reader.status()["id"]
            looks = count_requests(emulator, "GET", f"^/v1/terminal/readers/{reader_id}$")
            await asyncio.to_thread(wait_until, lambda: looks.fired >= 1, timeout=10, what="a first look")
            # Seen after look n (perhaps late, on a busy machine) but before look n+1: looks n+1 to
            # n+4 come at least three paced gaps later. Asked every 0.01 s, paced at 4 a second.
            first, seen = time.monotonic(), looks.fired
            await asyncio.to_thread(wait_until, lambda: looks.fired >= seen + 4, timeout=10, what="four more looks")
            assert time.monotonic() - first >= 3 * 0.25 - 0.05

    run(scenario())


# -- who may register ----------------------------------------------------------------------------

ASK_AS_POS = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
f.readline()  # the banner
answers = []
for n, (method, params) in enumerate([("reader.register", {"registration_code": "simulated-wpe"}),
                                      ("reader.locations", {})], 1):
    f.write(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params}).encode() + b"\\n")
    f.flush()
    answers.append(json.loads(f.readline()))
print(json.dumps(answers))
"""


@needs_root
def test_a_pos_user_may_list_locations_but_not_register_a_reader(tmp_path: Path) -> None:
    config = f"[api]\nallowed_gids = [{NOBODY}]\n\n{REGISTERING}"
    with daemon_process(tmp_path, config) as daemon:
        open_to_all(daemon.daemon_socket_path)
        done = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", ASK_AS_POS,
             str(daemon.daemon_socket_path)],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        register, locations = json.loads(done.stdout)
        assert register["error"]["data"]["reason"] == "FORBIDDEN"
        assert "root and the daemon's own user" in register["error"]["message"]
        assert locations["result"] == {"locations": []}  # reading them changes nothing: any allowed user


def test_stripe_unreachable_between_payments_shows_the_reader_disconnected_until_it_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, HEALTH, display_bus=RecordingBus()) as daemon:
            url = emulator_of(daemon).url
            pos = await pos_of(daemon.socket_path)
            reader_id = (await pos.call("status.get"))["result"]["reader"]["id"]
            rule = {"method": "GET", "path": f"^/v1/terminal/readers/{reader_id}$", "action": "down", "times": -1}
            assert (await asyncio.to_thread(control, url, "POST", "faults", rule)).status_code == 200
            lost = await pos.event(of_type("reader.disconnected", id=reader_id), timeout=30)
            assert lost["params"]["data"]["reason"].startswith("cannot reach Stripe to look the reader up")
            assert screen_of(daemon).kind == "reader_disconnected"
            assert (await asyncio.to_thread(control, url, "DELETE", "faults")).status_code == 200
            await pos.event(of_type("reader.connected", id=reader_id, reason="reconnected"), timeout=30)
            assert (await pos.call("status.get"))["result"]["reader"]["state"] == "ready"
            await pos.close()

    run(scenario())
