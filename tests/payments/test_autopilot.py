"""The autopilot: payments their POS left `authorized`, settled by `[reconcile] unattended` before their
deadline, and authorisations Stripe let lapse found out without a capture request.

Days pass with the emulator's clock: Stripe's clock and the daemon's are moved on together to a moment
just before `[reconcile] lead_s` before the deadline, so that the lead comes within seconds. Every
request reaches the emulator through the real stripe library over HTTP; what Stripe saw is counted
by the emulator itself (a fault rule that only delays by 0 s counts the requests it matches).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY, EmulatorHandle, make_client
from support.daemon import DaemonProcess, daemon_env, daemon_process, of_type, running_daemon, subscribed_when_connected
from support.killed_daemon import kill_when_in_flight
from support.payments_core import Clocks, Core, run, running_core

from readerhost.daemon.journal import MessageId
from readerhost.daemon.payments.autopilot import Autopilot, AutopilotSettings, Trigger
from readerhost.daemon.payments.events import Event
from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.model import OpStatus, Payment, Reason, State, Unattended, rfc3339
from readerhost.daemon.payments.outcomes import Outcome
from readerhost.daemon.payments.pacing import Pacer
from readerhost.daemon.payments.reconcile import Reconciler
from readerhost.sim.stripe_emulator.faults import FaultRule

LEAD_S = 3_600.0


class Reads:
    """The gateway's retrieve, as the autopilot calls it, with the moments it was called."""

    def __init__(self, emulator: EmulatorHandle) -> None:
        self.gateway = StripeGateway(GatewaySettings(api_key=TEST_KEY, api_base=emulator.url))
        self.at: list[float] = []  # monotonic

    def __call__(self, intent_id: str) -> Outcome:
        self.at.append(time.monotonic())
        return self.gateway.retrieve_intent(intent_id)


@contextlib.asynccontextmanager
async def piloting(
    core: Core, clocks: Clocks, policy: Unattended, *, reread_s: float = 900.0, lead_s: float = LEAD_S
) -> AsyncIterator[tuple[Autopilot, Reads]]:
    reads = Reads(core.emulator)
    settings = AutopilotSettings(policy, lead_s, reread_s)
    # It looks again every 0.2 s here: a jump of the clock is seen as a Pi's wall clock jump would be.
    autopilot = Autopilot(
        core.store, core.service, core.events, reads, Pacer(500).turn, settings, clock=clocks.now, recheck_s=0.2
    )
    task = asyncio.create_task(autopilot.run())
    try:
        yield autopilot, reads
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def counting(emulator: EmulatorHandle, method: str, path: str) -> FaultRule:
    """A rule that changes nothing and counts the requests Stripe receives on `path`."""
    return emulator.emulator.add_fault(
        {"method": method, "path": path, "action": "delay_after", "seconds": 0, "times": -1}
    )


def told(core: Core) -> list[Event]:
    return [e for e in core.seen if e.type == "payment.unattended"]


def due_of(payment: Payment) -> int:
    assert payment.capture_before is not None
    return payment.capture_before


def journal_entries(caplog: pytest.LogCaptureFixture, message_id: MessageId) -> list[dict[str, Any]]:
    return [
        r.journal  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "journal", {}).get("MESSAGE_ID") == message_id
    ]


ENDS = {
    Unattended.CAPTURE: (State.CAPTURED, "payment_intent.capture", MessageId.UNATTENDED_CAPTURE),
    Unattended.CANCEL: (State.CANCELED, "payment_intent.cancel", MessageId.UNATTENDED_CANCEL),
    Unattended.REPORT: (State.AUTHORIZED, None, MessageId.UNATTENDED_REPORT),
}


@pytest.mark.parametrize("policy", list(Unattended))
def test_a_payment_left_authorised_is_settled_by_the_policy_at_its_lead_before_the_deadline(
    policy: Unattended, stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clocks = Clocks(stripe_emulator)
    end_state, stripe_op, message_id = ENDS[policy]

    async def scenario() -> None:
        async with (
            running_core(stripe_emulator, tmp_path / "store.db", clock=clocks.now) as core,
            piloting(core, clocks, policy) as (autopilot, reads),
        ):
            payment = await core.authorise("U-1", amount=2500)
            taken = await core.authorise("U-2")  # its POS captures it: the autopilot never touches it
            await core.service.capture(taken.payment_id)
            await core.until_state(taken.payment_id, State.CAPTURED)
            due = due_of(payment)
            clocks.advance(due - LEAD_S - 60 - clocks.now())  # a minute before the lead
            assert await autopilot.tend() == pytest.approx(60, abs=2)  # nothing yet: its lead comes in a minute
            assert (told(core), reads.at) == ([], [])
            clocks.advance(60 - 1.5)  # the lead comes 1.5 s later
            await core.until(lambda: len(told(core)) == 1, what="the autopilot")
            [event] = told(core)
            assert clocks.now() >= due - LEAD_S  # at its lead, not before
            assert event.topic == "payment"
            assert event.data == {
                "payment_id": payment.payment_id,
                "order_id": "U-1",
                "payment_intent": payment.payment_intent,
                "policy": policy.value,
                "trigger": "deadline",
                "amount": 2500,
                "currency": "usd",
                "capture_before": rfc3339(due),
                "state": "capturing" if policy is Unattended.CAPTURE else end_state.value,
            }
            assert len(reads.at) == 1  # the truth was read first
            ended = await core.until_state(payment.payment_id, end_state)
            await core.until_queue_empty()
            settled = [
                (e.op, e.idempotency_key)
                for e in core.journal()
                if e.object == payment.payment_intent and e.op in ("payment_intent.capture", "payment_intent.cancel")
            ]
            # Exactly as the POS's request would have made it: its one key, sent once.
            assert settled == ([] if stripe_op is None else [(stripe_op, f"{payment.payment_id}:{stripe_op[15:]}")])
            if policy is Unattended.CAPTURE:
                assert ended.captured_amount == 2500
            await autopilot.tend()  # looked at again: nothing more is done or said
            assert len(told(core)) == 1
            assert len(core.journal("payment_intent.capture")) == 1 + (policy is Unattended.CAPTURE)

    run(scenario())
    [fields] = journal_entries(caplog, message_id)
    assert (fields["ORDER_ID"], fields["POLICY"], fields["TRIGGER"]) == ("U-1", policy.value, "deadline")
    assert "PAYMENT_INTENT" in fields
    assert "CAPTURE_BEFORE_UNIX" in fields


def test_an_authorisation_stripe_let_expire_ends_failed_without_a_capture_request(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clocks = Clocks(stripe_emulator)

    async def scenario() -> str:
        db = tmp_path / "store.db"
        async with running_core(stripe_emulator, db, clock=clocks.now) as core:
            payment = await core.authorise("E-1")
        # The daemon is down while the deadline passes; Stripe cancels the authorisation at it.
        clocks.advance(due_of(payment) + 5 - clocks.now())
        captures = counting(stripe_emulator, "POST", r"/capture$")
        # The policy would capture it: it must find out first that there is nothing left to capture.
        async with (
            running_core(stripe_emulator, db, clock=clocks.now) as core,
            piloting(core, clocks, Unattended.CAPTURE) as (autopilot, reads),
        ):
            failed = await core.until_state(payment.payment_id, State.FAILED)
            assert failed.error is not None
            assert failed.error.reason is Reason.AUTHORIZATION_EXPIRED
            assert "automatic" in failed.error.message
            assert core.states_told(payment.payment_id) == ["failed"]
            assert [e.data["error"]["reason"] for e in core.seen if e.type == "payment.state"] == [
                "AUTHORIZATION_EXPIRED"
            ]
            assert told(core) == []  # no policy applied to money that is gone
            assert len(reads.at) == 1
            await autopilot.tend()
            assert len(reads.at) == 1  # a failed payment is not read again
            assert captures.fired == 0  # Stripe saw no capture request
            assert [op.kind for op in core.store.operations_of(payment.payment_id) if op.kind == "capture"] == []
        return payment.payment_id

    payment_id = run(scenario())
    [fields] = journal_entries(caplog, MessageId.AUTHORIZATION_EXPIRED)
    assert (fields["PAYMENT_ID"], fields["ORDER_ID"], fields["REASON"]) == (payment_id, "E-1", "AUTHORIZATION_EXPIRED")
    loud = [r for r in caplog.records if getattr(r, "journal", {}).get("MESSAGE_ID") == MessageId.AUTHORIZATION_EXPIRED]
    assert [r.levelno for r in loud] == [logging.ERROR]


def test_a_reported_payment_is_read_again_at_most_once_per_interval_until_stripe_lets_it_lapse(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    clocks = Clocks(stripe_emulator)
    reread_s = 0.4
    gets = counting(stripe_emulator, "GET", r"^/v1/payment_intents/pi_[A-Za-z0-9]+$")

    async def scenario() -> None:
        async with (
            running_core(stripe_emulator, tmp_path / "store.db", clock=clocks.now) as core,
            piloting(core, clocks, Unattended.REPORT, reread_s=reread_s) as (_autopilot, reads),
        ):
            payment = await core.authorise("P-1")
            first_gets = gets.fired
            clocks.advance(due_of(payment) - LEAD_S + 1 - clocks.now())
            await core.until(lambda: len(reads.at) >= 4, what="four reads", timeout=20)
            gaps = [later - earlier for earlier, later in zip(reads.at, reads.at[1:], strict=False)]
            assert min(gaps) >= reread_s - 0.05  # never more often than the interval
            assert gets.fired - first_gets >= 4  # each read reached Stripe
            assert len(told(core)) == 1  # reported once, read many times
            assert core.payment(payment.payment_id).state is State.AUTHORIZED
            clocks.advance(LEAD_S)  # the deadline passes: Stripe cancels the authorisation
            failed = await core.until_state(payment.payment_id, State.FAILED)
            assert failed.error is not None
            assert failed.error.reason is Reason.AUTHORIZATION_EXPIRED
            assert core.journal("payment_intent.capture") == []

    run(scenario())


def test_the_pos_capturing_while_stripe_is_read_wins_and_the_policy_does_nothing(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    clocks = Clocks(stripe_emulator)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clocks.now) as core:
            async with piloting(core, clocks, Unattended.CANCEL) as (autopilot, _reads):
                payment = await core.authorise("W-1")
            await core.service.capture(payment.payment_id, 700)  # the POS, late but in time
            applied = await autopilot.apply(core.payment(payment.payment_id), Trigger.DEADLINE)
            assert (applied.done, applied.policy) == (False, Unattended.CANCEL)
            assert "is capturing and cannot be canceled" in applied.reason
            captured = await core.until_state(payment.payment_id, State.CAPTURED)
            assert captured.captured_amount == 700
            assert core.journal("payment_intent.cancel") == []
            assert told(core) == []

    run(scenario())


def test_a_payment_captured_elsewhere_is_left_alone_and_said_once(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="readerhost.daemon.payments.autopilot")
    clocks = Clocks(stripe_emulator)

    async def scenario() -> None:
        async with (
            running_core(stripe_emulator, tmp_path / "store.db", clock=clocks.now) as core,
            piloting(core, clocks, Unattended.CANCEL, reread_s=0.2) as (_autopilot, reads),
        ):
            payment = await core.authorise("X-1")
            assert payment.payment_intent is not None
            make_client(stripe_emulator.url).v1.payment_intents.capture(payment.payment_intent)  # the Dashboard
            cancels = counting(stripe_emulator, "POST", r"/cancel$")
            clocks.advance(due_of(payment) - LEAD_S + 1 - clocks.now())
            await core.until(lambda: len(reads.at) >= 3, what="three reads")
            assert cancels.fired == 0  # a captured PaymentIntent is never canceled by the policy
            assert told(core) == []
            assert core.payment(payment.payment_id).state is State.AUTHORIZED  # a person settles it

    run(scenario())
    left_alone = [r for r in caplog.records if "left alone" in r.getMessage()]
    assert len(left_alone) == 1
    assert "is succeeded at Stripe" in left_alone[0].getMessage()


# -- the daily run ------------------------------------------------------------------------------


def reconciler(core: Core, autopilot: Autopilot) -> Reconciler:
    gateway = StripeGateway(GatewaySettings(api_key=TEST_KEY, api_base=core.emulator.url))
    return Reconciler(core.store, gateway, core.service, "kiosk-1", grace_s=0, autopilot=autopilot)


@pytest.mark.parametrize("policy", list(Unattended))
def test_the_daily_run_applies_the_policy_to_what_the_pos_left_authorised(
    policy: Unattended, stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clocks = Clocks(stripe_emulator)
    end_state, _stripe_op, message_id = ENDS[policy]

    async def scenario() -> None:
        async with (
            running_core(stripe_emulator, tmp_path / "store.db", clock=clocks.now) as core,
            piloting(core, clocks, policy) as (autopilot, _reads),
        ):
            left = await core.authorise("N-1")
            completed = await core.authorise("N-2")
            daily = reconciler(core, autopilot)
            preview = await daily.run(completed_order_ids=["N-2"], unattended=True)  # --unattended --dry-run
            assert preview.dry_run
            assert preview.unattended is policy
            decided = {
                Unattended.CAPTURE: {f.payment_id for f in preview.to_capture} - {completed.payment_id},
                Unattended.CANCEL: {f.payment_id for f in preview.to_cancel},
                Unattended.REPORT: {f.payment_id for f in preview.reported},
            }
            assert decided == {p: ({left.payment_id} if p is policy else set()) for p in Unattended}
            assert completed.payment_id in {f.payment_id for f in preview.to_capture}
            assert preview.done == []
            assert told(core) == []
            assert core.journal("payment_intent.capture") == []

            report = await daily.run(completed_order_ids=["N-2"], dry_run=False, unattended=True)
            assert report.to_json()["unattended"] == policy.value
            done = {f.payment_id: f.reason for f in report.done}
            assert done[completed.payment_id].startswith("capture of 1000 queued")
            [event] = told(core)
            assert (event.data["payment_id"], event.data["policy"], event.data["trigger"]) == (
                left.payment_id,
                policy.value,
                "daily",
            )
            await core.until_state(left.payment_id, end_state)
            await core.until_state(completed.payment_id, State.CAPTURED)
            await core.until_queue_empty()
            canceled = {e.object for e in core.journal("payment_intent.cancel")}
            assert canceled == ({left.payment_intent} if policy is Unattended.CANCEL else set())
            assert len(core.journal("payment_intent.capture")) == 1 + (policy is Unattended.CAPTURE)
            # The next day's run finds nothing new to settle (a reported payment is reported again).
            again = await daily.run(dry_run=False, unattended=True)
            assert again.done == []
            assert len(told(core)) == 1 + (policy is Unattended.REPORT)

    run(scenario())
    assert [f["TRIGGER"] for f in journal_entries(caplog, message_id)][:1] == ["daily"]


def test_a_plain_dry_run_still_cancels_the_abandoned_and_never_applies_the_policy(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    clocks = Clocks(stripe_emulator)

    async def scenario() -> None:
        async with (
            running_core(stripe_emulator, tmp_path / "store.db", clock=clocks.now) as core,
            piloting(core, clocks, Unattended.CAPTURE) as (autopilot, _reads),
        ):
            left = await core.authorise("O-1")
            report = await reconciler(core, autopilot).run()
            assert report.unattended is None
            assert report.to_json()["unattended"] is None
            assert [f.payment_id for f in report.to_cancel] == [left.payment_id]  # as before 1.4
            assert report.to_capture == []
            assert told(core) == []

    run(scenario())


# -- restart safety ---------------------------------------------------------------------------


def test_killed_while_the_autopilot_s_capture_is_in_flight_the_next_process_captures_once(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    payment_id = kill_when_in_flight(stripe_emulator, db, "AP-1", "autopilot", "/capture$")

    async def restarted() -> None:
        clocks = Clocks(stripe_emulator)
        async with (
            running_core(stripe_emulator, db, clock=clocks.now) as core,
            piloting(core, clocks, Unattended.CAPTURE, lead_s=10 * 86_400) as (autopilot, reads),
        ):
            assert core.payment(payment_id).state is State.CAPTURING  # committed before it was sent
            captured = await core.until_state(payment_id, State.CAPTURED)
            assert captured.captured_amount == 1000
            await autopilot.tend()
            captures = core.journal("payment_intent.capture")
            assert [c.idempotency_key for c in captures] == [f"{payment_id}:capture"]
            [op] = [op for op in core.store.operations_of(payment_id) if op.kind == "capture"]
            assert op.status == OpStatus.DONE
            assert told(core) == []  # the new process did not apply the policy again
            assert reads.at == []

    run(restarted())


# -- the daemon: configuration, status, the POS's events and reconcile.run -------------------------


def test_the_daemon_applies_its_configured_policy_and_tells_the_pos(tmp_path: Path) -> None:
    config = """
[reader.simulated]
present_after_s = -1

[payments]
reconcile_grace_s = 0

[reconcile]
unattended = "cancel"
lead_s = 600
"""

    async def scenario() -> None:
        async with running_daemon(tmp_path, config) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            status = (await pos.call("status.get"))["result"]
            assert status["unattended"] == {"policy": "cancel", "lead_s": 600}
            started = await pos.call("payment.start", {"order_id": "D-1", "amount": 1500, "currency": "usd"})
            payment_id = started["result"]["payment_id"]
            await pos.event(of_type("reader.input_options", payment_id=payment_id))
            await pos.call("reader.present", {"card": "visa"})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            preview = await pos.call("reconcile.run", {"unattended": True})
            assert preview["result"]["dry_run"] is True
            assert preview["result"]["unattended"] == "cancel"
            assert [f["order_id"] for f in preview["result"]["to_cancel"]] == ["D-1"]
            wrong = await pos.call("reconcile.run", {"unattended": "yes"})
            assert wrong["error"]["data"]["field"] == "unattended"
            ran = await pos.call("reconcile.run", {"unattended": True, "dry_run": False})
            assert [f["order_id"] for f in ran["result"]["done"]] == ["D-1"]
            event = await pos.event(of_type("payment.unattended", payment_id=payment_id))
            assert (event["params"]["data"]["order_id"], event["params"]["data"]["policy"]) == ("D-1", "cancel")
            await pos.event(of_type("payment.state", payment_id=payment_id, state="canceled"))
            await pos.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_the_daily_run_killed_mid_capture_captures_once_after_the_daemon_restarts(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """readerhostd as a process, the timer's own command (`readerhostctl reconcile --unattended`), and
    SIGKILL while the capture it queued is in flight at Stripe."""
    config = f"""
[stripe]
api_base = "{stripe_emulator.url}"

[reader.simulated]
present_after_s = -1

[payments]
reconcile_grace_s = 0

[reconcile]
unattended = "capture"
"""

    async def ctl(*args: str) -> dict[str, Any]:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "readerhost.daemon.ctl", "--json", *args,
            env=daemon_env(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await child.communicate()
        assert child.returncode == 0, err.decode()
        report: dict[str, Any] = json.loads(out)
        return report

    async def authorised_then_killed_mid_capture(daemon: DaemonProcess) -> str:
        pos = await subscribed_when_connected(daemon.socket_path)
        started = await pos.call("payment.start", {"order_id": "DP-1", "amount": 1800, "currency": "usd"})
        payment_id: str = started["result"]["payment_id"]
        await pos.event(of_type("reader.input_options", payment_id=payment_id))
        await pos.call("reader.present", {"card": "visa"})
        await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
        rule = stripe_emulator.emulator.add_fault(
            {"method": "POST", "path": "/capture$", "action": "delay_during", "seconds": 3}
        )
        report = await ctl("reconcile", "--unattended")  # what readerhost-reconcile.service runs
        assert [f["payment_id"] for f in report["done"]] == [payment_id]
        await pos.event(of_type("payment.unattended", payment_id=payment_id, policy="capture", trigger="daily"))
        fired = await asyncio.to_thread(stripe_emulator.emulator.faults.wait_fired, rule, 1, 30)
        assert fired, "the capture never reached Stripe"
        daemon.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(daemon.process.wait, 10)
        return payment_id

    async def restarted(daemon: DaemonProcess, payment_id: str) -> None:
        pos = await subscribed_when_connected(daemon.socket_path)
        current = (await pos.call("payment.get", {"payment_id": payment_id}))["result"]
        if current["state"] != "captured":
            assert current["state"] == "capturing"  # committed before it was sent
            await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"), timeout=30)
        again = await ctl("reconcile", "--unattended")  # the next day's run: nothing left to capture
        assert again["done"] == []
        await pos.close()

    with daemon_process(tmp_path, config) as daemon:
        payment_id = asyncio.run(asyncio.wait_for(authorised_then_killed_mid_capture(daemon), 60))
    with daemon_process(tmp_path, config) as daemon:
        asyncio.run(asyncio.wait_for(restarted(daemon, payment_id), 60))
    captures = stripe_emulator.emulator.journal_entries()
    assert [(e.op, e.idempotency_key) for e in captures if e.op == "payment_intent.capture"] == [
        ("payment_intent.capture", f"{payment_id}:capture")
    ]
