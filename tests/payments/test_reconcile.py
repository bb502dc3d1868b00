"""End-of-day reconciliation against the emulator: abandoned authorisations canceled, lost captures captured."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorHandle, make_client
from support.payments_core import Core, run, running_core

from readerhost.daemon.payments.model import Reason, RequestRefused, State
from readerhost.daemon.payments.outcomes import IntentView
from readerhost.daemon.payments.pacing import Allowance
from readerhost.daemon.payments.reconcile import ONE_MORE_EVERY_S, RUNS_IN_A_ROW, Reconciler


async def authorised(core: Core, order_id: str, card: str = "pm_card_present_visa") -> str:
    return (await core.authorise(order_id, card=card)).payment_id


def reconciler(core: Core, **kwargs: object) -> Reconciler:
    from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway

    gateway = StripeGateway(GatewaySettings(api_key="sk_test_reconcile", api_base=core.emulator.url))
    return Reconciler(core.store, gateway, core.service, "kiosk-1", **kwargs)  # type: ignore[arg-type]


def foreign_intent(emulator: EmulatorHandle, terminal_id: str, order_id: str, *, capture: bool = False) -> str:
    """A PaymentIntent made outside this daemon (another terminal, or lost from this store)."""
    client = make_client(emulator.url)
    intent = client.v1.payment_intents.create(
        params={
            "amount": 700,
            "currency": "usd",
            "allowed_payment_method_types": ["card_present"],
            "capture_method": "manual",
            "metadata": {"terminal_id": terminal_id, "order_id": order_id},
        }
    )
    client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_present_visa"})
    if capture:
        client.v1.payment_intents.capture(intent.id)
    return intent.id


def test_dry_run_reports_and_touches_nothing(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            abandoned = await authorised(core, "A-1")
            completed = await authorised(core, "A-2")
            other_terminal = foreign_intent(stripe_emulator, "kiosk-2", "Z-1")
            before = len(core.journal())
            report = await reconciler(core, grace_s=0).run(completed_order_ids=["A-2"])
            assert report.dry_run
            assert report.checked == 2  # the other terminal's PaymentIntent is not ours to judge
            assert [f.payment_id for f in report.to_capture] == [completed]
            assert [f.payment_id for f in report.to_cancel] == [abandoned]
            assert other_terminal not in {f.payment_intent for f in report.to_cancel + report.to_capture}
            assert report.done == []
            assert len(core.journal()) == before
            assert core.payment(abandoned).state is State.AUTHORIZED

    run(scenario())


def test_applying_cancels_the_abandoned_and_captures_the_completed_once(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            abandoned = await authorised(core, "B-1")
            completed = await authorised(core, "B-2")
            fresh = await authorised(core, "B-3")
            report = await reconciler(core, grace_s=0).run(completed_order_ids=["B-2"], dry_run=False)
            assert {f.payment_id for f in report.done} == {abandoned, completed, fresh}
            await core.until_queue_empty()
            assert core.payment(abandoned).state is State.CANCELED
            assert core.payment(completed).state is State.CAPTURED
            assert len(core.journal("payment_intent.capture")) == 1
            # A second run finds nothing left to do.
            again = await reconciler(core, grace_s=0).run(completed_order_ids=["B-2"], dry_run=False)
            assert again.to_capture == again.to_cancel == []

    run(scenario())


def test_fresh_authorisations_and_unknown_intents_are_left_to_a_person(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            fresh = await authorised(core, "C-1")
            lost = foreign_intent(stripe_emulator, "kiosk-1", "C-2")
            foreign_intent(stripe_emulator, "kiosk-1", "C-3", capture=True)
            double = foreign_intent(stripe_emulator, "kiosk-1", "C-3")
            report = await reconciler(core).run(completed_order_ids=["C-2", "C-3"], dry_run=False)
            skipped = {f.payment_intent: f.reason for f in report.skipped}
            assert "minutes ago" in skipped[core.payment(fresh).payment_intent or ""]
            assert "Dashboard" in skipped[lost]
            assert [f.payment_intent for f in report.to_cancel] == [double]
            assert "another payment" in report.to_cancel[0].reason
            assert core.payment(fresh).state is State.AUTHORIZED
            assert len(core.journal("payment_intent.capture")) == 1  # only the foreign one made above

    run(scenario())


def test_a_capture_deadline_within_a_day_is_warned_about(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clock) as core:
            await authorised(core, "D-1", "pm_card_present_mastercard")
            offset[0] += 30 * 3600
            stripe_emulator.emulator.advance_clock(30 * 3600)
            report = await reconciler(core, clock=clock).run()
            assert any("must be captured before" in w for w in report.warnings)

    run(scenario())


def test_stripe_unreachable_is_a_clear_refusal(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    from readerhost.daemon.payments.model import RequestRefused

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            stripe_emulator.emulator.add_fault({"path": ".", "action": "down"})
            with pytest.raises(RequestRefused) as refused:
                await reconciler(core).run()
            assert refused.value.reason == "STRIPE_UNAVAILABLE"

    run(scenario())


class CountingGateway:
    """The real gateway, counting how many IntentViews are alive whenever it hands one (or a list) out."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self.most_alive = 0
        self._handed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)

    def _count(self) -> None:
        alive = sum(1 for o in gc.get_objects() if isinstance(o, IntentView))
        self.most_alive = max(self.most_alive, alive)

    def list_intents(self, **params: Any) -> Any:
        listed = self._gateway.list_intents(**params)
        self._count()
        return listed

    def each_intent(self, *, visit: Callable[[IntentView], None], **params: Any) -> Any:
        def counted(view: IntentView) -> None:
            visit(view)
            self._handed += 1
            if self._handed % 50 == 0:
                self._count()

        return self._gateway.each_intent(visit=counted, **params)


def test_a_window_of_many_payment_intents_is_read_a_page_at_a_time(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """A reconcile over months of a busy account holds what it judges, not every PaymentIntent listed:
    the daemon's memory must not grow with the account (issue 21: a fuzzer's reconcile.run calls grew it)."""
    from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway

    others = 450
    client = make_client(stripe_emulator.url)
    for number in range(others):  # other terminals' checkouts, never confirmed: one request each
        client.v1.payment_intents.create(
            params={"amount": 500 + number, "currency": "usd", "metadata": {"terminal_id": "kiosk-2"}}
        )

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            abandoned = await authorised(core, "M-1")
            gateway = CountingGateway(StripeGateway(GatewaySettings(api_key="sk_test_r", api_base=core.emulator.url)))
            report = await Reconciler(core.store, gateway, core.service, "kiosk-1", grace_s=0).run(since=0)
            assert report.checked == 1
            assert [f.payment_id for f in report.to_cancel] == [abandoned]
            # At most a page (100) of them at once, never the 451 listed.
            assert 0 < gateway.most_alive <= 100, gateway.most_alive

    run(scenario())


def lists_served(emulator: EmulatorHandle) -> int:
    return emulator.emulator.served()["GET /v1/payment_intents"]


def test_runs_beyond_the_allowance_are_refused_busy_before_anything_is_sent(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """A POS calling reconcile.run in a loop (the socket fuzzer did) must not make the daemon list the
    account again and again: each run costs pages in proportion to the account."""
    now = [5000.0]

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            abandoned = await authorised(core, "L-1")
            runs = reconciler(core, grace_s=0, allowance=Allowance(RUNS_IN_A_ROW, ONE_MORE_EVERY_S, lambda: now[0]))
            for _ in range(RUNS_IN_A_ROW):
                assert [f.payment_id for f in (await runs.run()).to_cancel] == [abandoned]
            listed = lists_served(stripe_emulator)
            for _ in range(20):
                with pytest.raises(RequestRefused) as refused:
                    await runs.run(dry_run=False)
                assert (refused.value.reason, refused.value.retryable) == (Reason.BUSY, True)
            assert f"the next in {ONE_MORE_EVERY_S:.0f} s" in refused.value.message
            assert lists_served(stripe_emulator) == listed  # not one more request at Stripe
            assert core.payment(abandoned).state is State.AUTHORIZED  # the refused applications did nothing
            now[0] += ONE_MORE_EVERY_S
            report = await runs.run(dry_run=False)
            assert [f.payment_id for f in report.done] == [abandoned]
            assert lists_served(stripe_emulator) == listed + 1

    run(scenario())


class HeldGateway:
    """The real gateway, whose listing waits for `release` once it has begun (`listing` set)."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self.listing = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)

    def each_intent(self, **params: Any) -> Any:
        self.listing.set()
        if not self.release.wait(10):
            raise TimeoutError("the test never released the listing")
        return self._gateway.each_intent(**params)


def test_a_run_asked_while_another_runs_is_refused_busy(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            abandoned = await authorised(core, "H-1")
            gateway = HeldGateway(StripeGateway(GatewaySettings(api_key="sk_test_r", api_base=core.emulator.url)))
            runs = Reconciler(core.store, gateway, core.service, "kiosk-1", grace_s=0)
            first = asyncio.create_task(runs.run())
            assert await asyncio.to_thread(gateway.listing.wait, 10)
            with pytest.raises(RequestRefused) as refused:
                await runs.run(dry_run=False)
            assert (refused.value.reason, refused.value.retryable) == (Reason.BUSY, True)
            assert "a reconciliation is running" in refused.value.message
            gateway.release.set()
            assert [f.payment_id for f in (await first).to_cancel] == [abandoned]
            report = await runs.run(dry_run=False)  # once it has ended, the next runs
            assert [f.payment_id for f in report.done] == [abandoned]

    run(scenario())


def test_the_documents_state_the_allowance_the_daemon_applies() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    ration = f"{RUNS_IN_A_ROW} in a row, then one every {ONE_MORE_EVERY_S / 60:.0f} minutes"
    assert ration in (docs / "pos-protocol.md").read_text()
    assert ration in " ".join((docs / "payments.md").read_text().split())
