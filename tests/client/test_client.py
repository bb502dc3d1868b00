"""readerhost.client against the real daemon: in this process for the asyncio client, as a real
readerhostd process for the blocking one. Real sockets throughout; waits are on events with timeouts."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.daemon import daemon_process, running_daemon

from readerhost.client import (
    AsyncClient,
    Busy,
    CannotConnect,
    Client,
    ConnectionLost,
    Event,
    IdempotencyConflict,
    InvalidParams,
    InvalidState,
    MethodNotFound,
    NotFound,
    ProtocolError,
    ReaderhostError,
    default_socket_path,
    error_from,
)
from readerhost.daemon.config import load_config, resolve_socket_path
from readerhost.daemon.payments.reconcile import RUNS_IN_A_ROW

WAIT = 15.0


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def of_payment(payment_id: str, event_type: str, state: str | None = None) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        if event.type != event_type or event.data.get("payment_id") != payment_id:
            return False
        return state is None or event.data.get("state") == state

    return matches


# -- the asyncio client, against the daemon in this process ------------------------------------------


def test_connect_reads_the_banner(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            async with await AsyncClient.connect(daemon.socket_path) as client:
                assert client.protocol == (1, 6)
                assert client.protocol.major == 1
                assert client.boot_id == daemon.boot_id
                assert client.mode == "emulator"
                assert client.banner.daemon == daemon.version
                status = await client.status()
                assert status["boot_id"] == daemon.boot_id
                assert status["reader"]["state"] == "ready"
            assert client.closed

    run(scenario())


def test_a_whole_payment(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            snapshot = await pos.subscribe(["payment", "reader"])
            assert snapshot["payments"] == []
            payment = await pos.start_payment("C-1", 1250, description="two coffees", metadata={"till": "3"})
            assert (payment["order_id"], payment["amount"], payment["currency"]) == ("C-1", 1250, "usd")
            payment_id = payment["payment_id"]
            prompt = await pos.wait_for_event(of_payment(payment_id, "reader.input_options"), WAIT)
            assert set(prompt.data["options"]) == {"tap", "insert", "swipe"}
            await pos.present("visa")
            authorized = await pos.wait_for_event(of_payment(payment_id, "payment.state", "authorized"), WAIT)
            assert authorized.data["card"]["brand"] == "visa"
            assert authorized.data["card"]["last4"] == "4242"
            assert (await pos.capture(payment_id))["state"] in ("capturing", "captured")
            await pos.wait_for_event(of_payment(payment_id, "payment.state", "captured"), WAIT)
            again = await pos.get_payment(order_id="C-1")
            assert (again["payment_id"], again["state"], again["captured_amount"]) == (payment_id, "captured", 1250)
            listed = await pos.list_payments(states=["captured"], limit=10)
            assert [p["payment_id"] for p in listed] == [payment_id]

    run(scenario())


def test_a_declined_card_then_another_card_then_cancel(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            await pos.subscribe(["payment", "reader"])
            payment_id = (await pos.start_payment("D-1", 1000))["payment_id"]
            await pos.wait_for_event(of_payment(payment_id, "reader.input_options"), WAIT)
            await pos.present("charge_declined")
            declined = await pos.wait_for_event(of_payment(payment_id, "payment.state", "declined"), WAIT)
            assert declined.data["decline"]["code"] == "card_declined"
            assert (await pos.collect_again(payment_id))["state"] == "collecting"
            await pos.wait_for_event(of_payment(payment_id, "reader.input_options"), WAIT)
            canceled = await pos.cancel(payment_id, "abandoned")
            assert canceled["state"] == "canceled"

    run(scenario())


def test_confirm_after_the_card_is_read(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            await pos.subscribe(["payment", "reader"])
            payment_id = (await pos.start_payment("F-1", 700, confirm=True))["payment_id"]
            await pos.wait_for_event(of_payment(payment_id, "reader.input_options"), WAIT)
            await pos.present("mastercard")
            await pos.wait_for_event(of_payment(payment_id, "payment.state", "awaiting_confirmation"), WAIT)
            await pos.confirm(payment_id)
            await pos.wait_for_event(of_payment(payment_id, "payment.state", "authorized"), WAIT)

    run(scenario())


def test_typed_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            with pytest.raises(NotFound) as not_found:
                await pos.get_payment("pay_doesnotexist")
            assert (not_found.value.code, not_found.value.reason) == (1003, "NOT_FOUND")
            assert not not_found.value.retryable

            with pytest.raises(InvalidParams) as invalid:
                await pos.start_payment("E-1", 1000, currency="nope")
            assert (invalid.value.code, invalid.value.reason, invalid.value.field) == (
                -32602,
                "INVALID_PARAMS",
                "currency",
            )
            with pytest.raises(InvalidParams) as unknown:
                await pos.start_payment("E-1", 1000, colour="blue")
            assert unknown.value.field == "colour"

            with pytest.raises(MethodNotFound) as missing:
                await pos.call("payment.teleport", {"payment_id": "pay_x"})
            assert missing.value.code == -32601

            holder = await pos.start_payment("E-2", 1000)
            with pytest.raises(IdempotencyConflict) as conflict:
                await pos.start_payment("E-2", 2000)
            assert conflict.value.code == 1005
            assert (await pos.start_payment("E-2", 1000))["payment_id"] == holder["payment_id"]  # the same payment

            async with await AsyncClient.connect(daemon.socket_path) as other:
                with pytest.raises(Busy) as busy:
                    await other.start_payment("E-3", 1000)
                assert busy.value.retryable
                assert holder["payment_id"] in busy.value.message

            await pos.cancel(holder["payment_id"])
            with pytest.raises(InvalidState):
                await pos.capture(holder["payment_id"])

            with pytest.raises(NotFound):
                await pos.present("no_such_card")
            for error in (not_found.value, invalid.value, missing.value, conflict.value, busy.value):
                assert isinstance(error, ReaderhostError)
            # After all these errors the connection is still usable.
            assert (await pos.status())["boot_id"] == daemon.boot_id

    run(scenario())


def test_events_iterate_in_seq_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            await pos.subscribe()  # every topic: then no event of the daemon is skipped for this client
            await pos.show(["Welcome"], ttl_s=60)
            payment_id = (await pos.start_payment("S-1", 1500, capture="automatic"))["payment_id"]
            seen: list[Event] = []
            async for event in pos.events():
                seen.append(event)
                if event.type == "reader.input_options":
                    await pos.present("amex")
                if of_payment(payment_id, "payment.state", "captured")(event):
                    break
            seqs = [e.seq for e in seen]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert {e.boot_id for e in seen} == {daemon.boot_id}
            # Stripe's first answer since the start (system.stripe) may come at any point in between.
            ours = [e for e in seen if e.type != "system.stripe"]
            assert ours[0].type == "display.changed"
            assert ours[0].data == {"lines": ["Welcome"]}
            states = [e.data["state"] for e in seen if e.type == "payment.state"]
            assert states[0] == "creating"
            assert states[-1] == "captured"
            assert "authorized" in states or "processing" in states

    run(scenario())


def test_concurrent_calls_from_several_tasks(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            await pos.subscribe(["display"])  # events interleave with the answers

            async def one(n: int) -> Any:
                if n % 3 == 0:
                    await pos.show([f"line {n}"])
                    return "shown"
                if n % 3 == 1:
                    return (await pos.status())["boot_id"]
                try:
                    await pos.get_payment(f"pay_missing{n}")
                except NotFound as error:
                    return error.message
                return None

            results = await asyncio.gather(*(one(n) for n in range(60)))
            for n, result in enumerate(results):
                if n % 3 == 0:
                    assert result == "shown"
                elif n % 3 == 1:
                    assert result == daemon.boot_id
                else:
                    assert f"pay_missing{n}" in result
            shown = [(await pos.next_event(WAIT)).data["lines"][0] for _ in range(20)]
            assert sorted(shown) == sorted(f"line {n}" for n in range(0, 60, 3))

    run(scenario())


def test_connection_loss_raises_connection_lost(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            pos = await AsyncClient.connect(daemon.socket_path)
            await pos.subscribe(["display"])
            await pos.show(["before"])
            waiting = asyncio.create_task(pos.wait_for_event(lambda e: e.data.get("lines") == ["never"], WAIT))
            iterated: list[Event] = []

            async def iterate() -> None:
                async for event in pos.events():
                    iterated.append(event)

            # The daemon stops (leaving the context) while a task waits for an event.
        with pytest.raises(ConnectionLost):
            await waiting
        await asyncio.wait_for(iterate(), WAIT)  # the event stream ends instead of hanging
        assert iterated == []  # "before" was consumed by the waiting task
        with pytest.raises(ConnectionLost):
            await pos.status()
        with pytest.raises(ConnectionLost):
            await pos.next_event(WAIT)
        assert pos.closed
        await pos.close()

    run(scenario())


TWO_CLIENTS_AT_MOST = """
[api]
max_clients = 2

[reader.simulated]
present_after_s = -1
"""


def test_a_daemon_with_too_many_clients_refuses_at_connect(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            running_daemon(tmp_path, TWO_CLIENTS_AT_MOST) as daemon,
            await AsyncClient.connect(daemon.socket_path) as first,
            await AsyncClient.connect(daemon.socket_path) as second,
        ):
            # Both have spoken, so neither gives its slot up to a newcomer (silent ones would).
            await first.status()
            await second.status()
            with pytest.raises(Busy) as busy:
                await AsyncClient.connect(daemon.socket_path)
            assert busy.value.retryable
            with pytest.raises(Busy):
                await asyncio.to_thread(Client.connect, daemon.socket_path)

    run(scenario())


def test_events_nobody_takes_are_bounded_oldest_dropped(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            async with await AsyncClient.connect(daemon.socket_path, max_events=3) as pos:
                await pos.subscribe(["display"])
                for n in range(6):
                    await pos.show([f"line {n}"])  # each event is sent before the answer to its show
                kept = [await pos.next_event(WAIT) for _ in range(3)]
                assert [e.data["lines"] for e in kept] == [["line 3"], ["line 4"], ["line 5"]]
                assert [e.seq for e in kept] == [kept[0].seq, kept[0].seq + 1, kept[0].seq + 2]

            def blocking() -> list[Event]:
                with Client.connect(daemon.socket_path, max_events=3) as pos:
                    pos.subscribe(["display"])
                    for n in range(6):
                        pos.show([f"line {n}"])
                    return [pos.next_event(WAIT) for _ in range(3)]

            kept = await asyncio.to_thread(blocking)
            assert [e.data["lines"] for e in kept] == [["line 3"], ["line 4"], ["line 5"]]

    run(scenario())


def test_a_request_too_large_is_refused_here_and_the_connection_stays_usable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            with pytest.raises(ProtocolError) as too_large:
                await pos.show(["x" * 70_000])
            assert too_large.value.reason == "FRAME_TOO_LARGE"
            assert (await pos.status())["mode"] == "emulator"

    run(scenario())


def test_connect_to_nothing_is_a_clear_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(CannotConnect, match="no such socket"):
            await AsyncClient.connect(tmp_path / "missing.sock")

    run(scenario())
    with pytest.raises(CannotConnect, match="no such socket"):
        Client.connect(tmp_path / "missing.sock")


# -- the blocking client, against readerhostd as a process ---------------------------------------


def test_the_blocking_client_against_a_real_daemon(tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon, Client.connect(daemon.socket_path) as pos:
        assert pos.protocol == (1, 6)
        assert pos.mode == "emulator"
        assert pos.status()["boot_id"] == pos.boot_id
        pos.subscribe(["payment", "reader"])
        payment_id = pos.start_payment("B-1", 1250)["payment_id"]
        pos.wait_for_event(of_payment(payment_id, "reader.input_options"), WAIT)
        pos.present("visa")
        pos.wait_for_event(of_payment(payment_id, "payment.state", "authorized"), WAIT)
        pos.capture(payment_id, amount=1000)
        captured = pos.wait_for_event(of_payment(payment_id, "payment.state", "captured"), WAIT)
        assert captured.data["captured_amount"] == 1000
        assert pos.get_payment(payment_id)["state"] == "captured"
        with pytest.raises(NotFound):
            pos.get_payment(order_id="B-404")
        with pytest.raises(InvalidParams) as invalid:
            pos.list_payments(states=["lost"])
        assert invalid.value.field == "states"
        with pytest.raises(MethodNotFound):
            pos.call("no.such.method")
        report = pos.reconcile(completed_order_ids=["B-1"])
        assert report["dry_run"] is True
        for _ in range(RUNS_IN_A_ROW - 1):
            pos.reconcile()
        with pytest.raises(Busy, match="too many reconciliations") as rationed:  # protocol 1.6
            pos.reconcile()
        assert rationed.value.retryable

        pos.subscribe(["display"])
        for n in range(5):
            pos.show([f"line {n}"])  # the events arrive while the calls wait: they are kept, in order
        seqs = []
        for event in pos.events(timeout=WAIT):
            seqs.append(event.seq)
            if event.data["lines"] == ["line 4"]:
                break
        assert seqs == list(range(seqs[0], seqs[0] + 5))
        with pytest.raises(TimeoutError):
            pos.next_event(timeout=0.2)

        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=WAIT)
        with pytest.raises(ConnectionLost):
            pos.next_event(timeout=WAIT)
        with pytest.raises(ConnectionLost):
            pos.status()
        assert list(pos.events()) == []


def test_the_blocking_client_sees_the_daemon_stop(tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon, Client.connect(daemon.socket_path) as pos:
        pos.subscribe(["system"])
        daemon.process.send_signal(signal.SIGTERM)
        # Ends when the daemon says goodbye (Stripe's first answer since the start may come before).
        assert [event for event in pos.events(timeout=WAIT) if event.type != "system.stripe"] == []
        with pytest.raises(ConnectionLost):
            pos.status()
        assert daemon.process.wait(timeout=WAIT) == 0


# -- pieces held to the daemon's (the client's own tests, clients/python/tests, need no daemon) ----


def test_every_reason_of_the_daemon_has_its_class() -> None:
    from readerhost.daemon.api.protocol import REASON_CODES

    for reason, code in REASON_CODES.items():
        error = error_from({"code": code, "message": "m", "data": {"reason": reason}})
        assert type(error) is not ReaderhostError, reason
        assert error.reason == reason


@pytest.mark.parametrize(
    "env",
    [
        {"READERHOST_SOCKET": "/srv/pos/api.sock"},
        {"READERHOST_SOCKET": "relative/api.sock", "XDG_RUNTIME_DIR": "/run/user/1000"},
        {"XDG_RUNTIME_DIR": "/run/user/1000"},
        {"XDG_RUNTIME_DIR": "/run/user/1000:/other"},
        {"XDG_RUNTIME_DIR": "not/absolute"},
        {},
    ],
)
def test_the_client_finds_the_socket_where_a_user_run_daemon_puts_it(tmp_path: Path, env: dict[str, str]) -> None:
    config = load_config(None, env, system_path=tmp_path / "no-config.toml")
    daemon_side = resolve_socket_path(config, env, tmp_path)
    assert default_socket_path(env, tmp_path, system_socket=tmp_path / "absent.sock") == daemon_side


def test_the_client_finds_the_system_service_socket(tmp_path: Path) -> None:
    runtime = tmp_path / "run" / "readerhost"
    runtime.mkdir(parents=True)
    service_env = {"RUNTIME_DIRECTORY": str(runtime)}  # what systemd gives the daemon (RuntimeDirectory=)
    daemon_side = resolve_socket_path(
        load_config(None, service_env, system_path=tmp_path / "none"), service_env, Path("/")
    )
    daemon_side.touch()
    user_env = {"XDG_RUNTIME_DIR": "/run/user/1000"}  # a POS user's session
    assert default_socket_path(user_env, tmp_path, system_socket=daemon_side) == daemon_side


@pytest.mark.parametrize("module", ["readerhost.client", "readerhost.daemon.ctl"])
def test_importing_the_client_or_the_ctl_is_light(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in sys.modules if m == 'stripe' or m.startswith(('stripe.', 'requests', "
        "'readerhost.sim', 'readerhost.drivers', 'readerhost.daemon.api', 'readerhost.daemon.app', "
        "'readerhost.daemon.config', 'readerhost.daemon.payments.service', 'readerhost.daemon.payments.store')))\n"
        "client_only = [m for m in sys.modules if m.startswith('readerhost.daemon')]\n"
        f"print(heavy if {module!r} == 'readerhost.daemon.ctl' else heavy + client_only)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
