"""Learning the truth of a create on an account shared by a fleet: search first, a bounded list after.

Each test runs the real gateway (stripe-python over HTTP) against the emulator, whose search lags as
Stripe's does, on an account preloaded with other kiosks' PaymentIntents; the emulator counts the
requests each way of finding costs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import TEST_KEY, EmulatorHandle
from support.emulator_fidelity import wait_until
from support.killed_daemon import kill_when_in_flight
from support.payments_core import Clocks, run, running_core

from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.model import Payment, PaymentRequest, State
from readerhost.daemon.payments.operations import (
    SEARCH_LAG_S,
    Kind,
    Verdict,
    find_created,
    judge,
    learn_truth,
)
from readerhost.daemon.payments.outcomes import IntentView, NotFound, Refused, Succeeded, Unknown
from readerhost.daemon.payments.worker import WorkerSettings
from readerhost.sim.stripe_emulator.preload import PreloadedIntent, fleet_history

LAG_S = 60.0  # the emulator's search lag in these tests: a minute, Stripe's usual


@pytest.fixture
def gateway(stripe_emulator: EmulatorHandle) -> StripeGateway:
    stripe_emulator.emulator.set_search_lag(LAG_S)
    return StripeGateway(GatewaySettings(api_key=TEST_KEY, api_base=stripe_emulator.url, max_network_retries=0))


def preload_fleet(emulator: EmulatorHandle, count: int, span_s: int) -> None:
    """`count` PaymentIntents of other kiosks, made over the last `span_s` seconds of Stripe's clock."""
    now = int(emulator.emulator.clock.timestamp())
    emulator.emulator.preload_payment_intents(fleet_history(count, since=now - span_s, until=now))


def make_create(gateway: StripeGateway, payment: Payment) -> str:
    """The create as the worker sends it (its answer then lost, as far as the test tells it)."""
    made = gateway.create_intent(
        amount=payment.request.amount,
        currency="usd",
        metadata={"payment_id": payment.payment_id, "order_id": payment.order_id, "terminal_id": "kiosk-1"},
        idempotency_key=f"readerhost:kiosk-1:{payment.order_id}:1:create",
    )
    assert isinstance(made, Succeeded)
    return made.intent.id


def a_payment(order_id: str) -> Payment:
    now = time.time()
    return Payment(f"pay_{order_id}", PaymentRequest(order_id, 1000, "usd"), State.CREATING, now, now)


class RecordingGateway(StripeGateway):
    """The real gateway, noting which ways of finding a create it was asked for (in `asked`)."""

    asked: ClassVar[list[str]] = []

    def search_intents(self, query: str) -> list[IntentView] | Unknown | Refused:
        RecordingGateway.asked.append("search")
        return super().search_intents(query)

    def list_recent_intents(self, *, window_s: int, max_pages: int) -> list[IntentView] | Unknown | Refused:
        RecordingGateway.asked.append("recent list")
        return super().list_recent_intents(window_s=window_s, max_pages=max_pages)

    def list_intents(
        self, *, created_gte: int, created_lt: int, page_size: int = 100
    ) -> list[IntentView] | Unknown | Refused:
        if created_lt - created_gte > 1:  # not the worker's reachability probe
            RecordingGateway.asked.append("wide list")
        return super().list_intents(created_gte=created_gte, created_lt=created_lt, page_size=page_size)


def served(emulator: EmulatorHandle) -> Counter[str]:
    """The requests answered, by kind: search, list, retrieve."""
    counts: Counter[str] = Counter()
    for request, n in emulator.emulator.requests_served.items():
        method, path = request.split(" ", 1)
        if path == "/v1/payment_intents/search":
            counts["search"] += n
        elif method == "GET" and path == "/v1/payment_intents":
            counts["list"] += n
        elif method == "GET" and path.startswith("/v1/payment_intents/"):
            counts["retrieve"] += n
    return counts


def test_the_recent_list_is_measured_on_stripes_clock_and_pages_no_further_than_needed(
    stripe_emulator: EmulatorHandle, gateway: StripeGateway
) -> None:
    newest = int(stripe_emulator.emulator.clock.timestamp()) - 5 * 86400  # the account quiet since
    window = 1000
    specs = [PreloadedIntent(id=f"pi_recent{n:04d}", created=newest - window + n * window // 249) for n in range(250)]
    older = [PreloadedIntent(id=f"pi_older{n:04d}", created=newest - window - 1 - n) for n in range(300)]
    stripe_emulator.emulator.preload_payment_intents([*older, *specs])
    stripe_emulator.emulator.requests_served.clear()

    recent = gateway.list_recent_intents(window_s=window, max_pages=5)
    too_many = gateway.list_recent_intents(window_s=window, max_pages=2)

    assert isinstance(recent, list)
    assert [intent.id for intent in recent] == [spec.id for spec in reversed(specs)]
    assert isinstance(too_many, Unknown)
    assert served(stripe_emulator)["list"] == 3 + 2  # 250 in the window: three pages, then two


def test_a_create_older_than_the_lag_is_found_by_search_and_read_itself(
    stripe_emulator: EmulatorHandle, gateway: StripeGateway
) -> None:
    preload_fleet(stripe_emulator, 5_000, 14 * 86400)
    payment = a_payment("S-1")
    intent_id = make_create(gateway, payment)
    stripe_emulator.emulator.advance_clock(25 * 3600)  # a day later: the key may be forgotten
    stripe_emulator.emulator.requests_served.clear()

    truth = learn_truth(gateway, Kind.CREATE, payment, time.time())

    assert isinstance(truth, Succeeded)
    assert truth.intent.id == intent_id
    assert judge(Kind.CREATE, truth) is Verdict.DONE
    # Two requests, whatever the fleet: the search, and the PaymentIntent itself (search's copy lags).
    assert served(stripe_emulator) == Counter(search=1, retrieve=1)


def test_a_create_younger_than_the_lag_is_not_found_by_search_but_by_the_recent_list(
    stripe_emulator: EmulatorHandle, gateway: StripeGateway
) -> None:
    preload_fleet(stripe_emulator, 5_000, 14 * 86400)  # about 15 an hour: the recent ones fill one page
    payment = a_payment("L-1")
    intent_id = make_create(gateway, payment)
    stripe_emulator.emulator.advance_clock(LAG_S / 2)
    stripe_emulator.emulator.requests_served.clear()

    truth = learn_truth(gateway, Kind.CREATE, payment, time.time())

    assert isinstance(truth, Succeeded)
    assert truth.intent.id == intent_id
    counts = served(stripe_emulator)
    assert counts["search"] == 1
    assert counts["retrieve"] == 0
    assert 1 <= counts["list"] <= 2, counts


def test_nothing_made_is_concluded_only_after_the_recent_list_too(
    stripe_emulator: EmulatorHandle, gateway: StripeGateway
) -> None:
    preload_fleet(stripe_emulator, 5_000, 14 * 86400)
    stripe_emulator.emulator.requests_served.clear()

    truth = learn_truth(gateway, Kind.CREATE, a_payment("N-1"), time.time())

    assert isinstance(truth, NotFound)
    assert judge(Kind.CREATE, truth) is Verdict.SEND_ANEW
    counts = served(stripe_emulator)
    assert counts["search"] == 1
    assert counts["list"] >= 1, "search alone must never conclude"


def test_a_create_hidden_by_the_lag_on_a_busy_account_is_no_conclusion_until_search_shows_it(
    stripe_emulator: EmulatorHandle, gateway: StripeGateway
) -> None:
    # More PaymentIntents made within the lag than the daemon lists in one go (2 pages here; the
    # daemon's bound, RECENT_PAGES_MAX, is the same rule at a larger size).
    preload_fleet(stripe_emulator, 250, SEARCH_LAG_S // 2)
    payment = a_payment("B-1")
    intent_id = make_create(gateway, payment)

    first = find_created(gateway, payment, time.time(), pages_max=2)

    assert isinstance(first, Unknown), first
    assert judge(Kind.CREATE, first) is Verdict.WAIT  # looked at again later, never sent anew
    stripe_emulator.emulator.advance_clock(LAG_S + 1)
    later = find_created(gateway, payment, time.time(), pages_max=2)
    assert isinstance(later, Succeeded)
    assert later.intent.id == intent_id


def test_an_account_that_refuses_search_is_listed_instead_and_says_so(
    stripe_emulator: EmulatorHandle, gateway: StripeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    preload_fleet(stripe_emulator, 500, 14 * 86400)
    stripe_emulator.emulator.set_search_available(False)
    payment = a_payment("I-1")
    intent_id = make_create(gateway, payment)

    with caplog.at_level(logging.WARNING, logger="readerhost.daemon.payments.operations"):
        truth = learn_truth(gateway, Kind.CREATE, payment, time.time())
        missing = learn_truth(gateway, Kind.CREATE, a_payment("I-2"), time.time())

    assert isinstance(truth, Succeeded)
    assert truth.intent.id == intent_id
    assert isinstance(missing, NotFound)
    said = [r.getMessage() for r in caplog.records]
    assert any("search feature unavailable for merchant" in m and "listing two weeks" in m for m in said), said


def test_a_refused_api_key_is_not_taken_for_an_account_without_search(
    stripe_emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = StripeGateway(GatewaySettings(api_key="sk_live_notthisaccount", api_base=stripe_emulator.url))

    with caplog.at_level(logging.WARNING, logger="readerhost.daemon.payments.operations"):
        truth = learn_truth(wrong, Kind.CREATE, a_payment("A-1"), time.time())

    assert isinstance(truth, Refused)
    assert truth.authentication
    assert judge(Kind.CREATE, truth) is Verdict.WAIT  # the worker retries; a technician may fix the key
    assert served(stripe_emulator) == Counter(search=1)  # no list of two weeks with a key that cannot read
    assert caplog.records == []


def test_a_replayed_500_on_create_learns_by_search_and_list_then_sends_anew_once(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        stripe_emulator.emulator.set_search_lag(LAG_S)
        RecordingGateway.asked = []
        async with running_core(stripe_emulator, tmp_path / "store.db", gateway_class=RecordingGateway) as core:
            # Saved under the create's key: every retry with that key replays the 500.
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": r"/v1/payment_intents$", "action": "error", "status": 500}
            )
            payment = await core.service.start({"order_id": "R-1", "amount": 1000, "currency": "usd"})
            await core.until_state(payment.payment_id, State.COLLECTING)
            creates = core.journal("payment_intent.create")
            assert [c.idempotency_key for c in creates] == ["readerhost:kiosk-1:R-1:1:create:r2"]
            # Sent anew only after the search and the recent list both found nothing.
            # Each look (the key's age is unknown all along) searches, then lists the recent ones;
            # while the create still runs at Stripe it finds nothing, and the create goes on under
            # its own key (409) until a look finds it. Never the two-week list.
            assert RecordingGateway.asked[:2] == ["search", "recent list"]
            assert set(RecordingGateway.asked) == {"search", "recent list"}

    run(scenario())


def test_killed_during_create_and_back_a_day_later_finds_it_by_search_and_cancels_it(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    stripe_emulator.emulator.set_search_lag(LAG_S)
    db = tmp_path / "store.db"
    payment_id = kill_when_in_flight(stripe_emulator, db, "K-1", "create", r"/v1/payment_intents$")
    # The emulator still holds the create: made before the day passes, it is searchable a day later.
    assert stripe_emulator.emulator.journal.wait_for("payment_intent.create", timeout=10)
    clocks = Clocks(stripe_emulator)
    clocks.advance(25 * 3600)  # Stripe may have forgotten the create's key
    RecordingGateway.asked = []

    async def restarted() -> None:
        async with running_core(stripe_emulator, db, clock=clocks.now, gateway_class=RecordingGateway) as core:
            await core.until_queue_empty()
            created = core.journal("payment_intent.create")
            assert len(created) == 1  # found, never made again
            assert [(c.object, c.status) for c in core.journal("payment_intent.cancel")] == [
                (created[0].object, "canceled")
            ]
            assert core.payment(payment_id).state is State.CANCELED
            assert RecordingGateway.asked == ["search"]  # found by one search: nothing listed

    run(restarted())


def test_killed_during_create_with_the_clock_gone_back_finds_it_by_the_recent_list(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    stripe_emulator.emulator.set_search_lag(LAG_S)
    db = tmp_path / "store.db"
    payment_id = kill_when_in_flight(stripe_emulator, db, "K-2", "create", r"/v1/payment_intents$")

    async def restarted() -> None:
        # The wall clock is now an hour before the create's first send: its key's age is unknown,
        # so the truth comes first, seconds after the create, while search cannot show it yet.
        RecordingGateway.asked = []
        async with running_core(
            stripe_emulator, db, clock=lambda: time.time() - 3600, gateway_class=RecordingGateway
        ) as core:
            await core.until_queue_empty()
            created = core.journal("payment_intent.create")
            assert len(created) == 1
            assert core.journal("payment_intent.cancel")[0].object == created[0].object
            assert core.payment(payment_id).state is State.CANCELED
            # Each look (the key's age is unknown all along) searches, then lists the recent ones;
            # while the create still runs at Stripe it finds nothing, and the create goes on under
            # its own key (409) until a look finds it. Never the two-week list.
            assert RecordingGateway.asked[:2] == ["search", "recent list"]
            assert set(RecordingGateway.asked) == {"search", "recent list"}

    run(restarted())


def test_killed_during_create_on_an_account_without_search_lists_and_cancels(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "store.db"
    payment_id = kill_when_in_flight(stripe_emulator, db, "K-3", "create", r"/v1/payment_intents$")
    assert stripe_emulator.emulator.journal.wait_for("payment_intent.create", timeout=10)
    stripe_emulator.emulator.set_search_available(False)
    clocks = Clocks(stripe_emulator)
    clocks.advance(25 * 3600)
    RecordingGateway.asked = []

    async def restarted() -> None:
        async with running_core(stripe_emulator, db, clock=clocks.now, gateway_class=RecordingGateway) as core:
            await core.until_queue_empty()
            created = core.journal("payment_intent.create")
            assert len(created) == 1
            assert core.journal("payment_intent.cancel")[0].object == created[0].object
            assert core.payment(payment_id).state is State.CANCELED
            assert RecordingGateway.asked == ["search", "wide list"]

    with caplog.at_level(logging.WARNING):
        run(restarted())
    assert any("Stripe refused to search PaymentIntents" in r.getMessage() for r in caplog.records)


class OnePageGateway(RecordingGateway):
    """The real gateway, listing at most one page of recent PaymentIntents (the daemon's bound,
    RECENT_PAGES_MAX, at a size a test can fill), and noting when each search was made."""

    searched_at: ClassVar[list[float]] = []

    def search_intents(self, query: str) -> list[IntentView] | Unknown | Refused:
        OnePageGateway.searched_at.append(time.monotonic())
        return super().search_intents(query)

    def list_recent_intents(self, *, window_s: int, max_pages: int) -> list[IntentView] | Unknown | Refused:
        return super().list_recent_intents(window_s=window_s, max_pages=1)


BASE_S = 0.2


def test_looks_that_cannot_tell_a_creates_truth_back_off_like_retries(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    # A busy account: more PaymentIntents made within search's lag than the daemon lists in one go,
    # so each look (a search, a page of the list) concludes nothing. Each look sends nothing, so the
    # create's attempts stay at 1; the looks must still space out, or a kiosk would spend its share
    # of the fleet's rate limit looking every second.
    async def scenario() -> None:
        stripe_emulator.emulator.set_search_lag(LAG_S)
        preload_fleet(stripe_emulator, 250, SEARCH_LAG_S // 2)
        OnePageGateway.asked, OnePageGateway.searched_at = [], []
        settings = WorkerSettings(backoff_base_s=BASE_S, backoff_cap_s=10.0, requests_per_second=500.0)
        async with running_core(
            stripe_emulator, tmp_path / "store.db", gateway_class=OnePageGateway, worker_settings=settings
        ) as core:
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": r"/v1/payment_intents$", "action": "error", "status": 500}
            )
            await core.service.start({"order_id": "W-1", "amount": 1000, "currency": "usd"})
            await asyncio.to_thread(
                wait_until, lambda: len(OnePageGateway.searched_at) >= 5, timeout=30, what="five looks"
            )
            assert core.journal("payment_intent.create") == []  # never sent anew: nothing was concluded
        looks = OnePageGateway.searched_at
        gaps = [later - earlier for earlier, later in itertools.pairwise(looks)]
        # Attempt 1, look n: the next look waits base * 2**n, jittered down to half of it. After the
        # fourth: at least 8 * base (1.6 s). Counting the attempts alone, every wait is at most base.
        assert gaps[3] >= 8 * BASE_S, gaps

    run(scenario())
