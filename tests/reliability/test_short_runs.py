"""The documented reliability runs in short: the same code as `python -m reliability`, small counts,
and not one violation allowed. (The documented figures are in docs/reliability.md.)"""

from __future__ import annotations

import pytest

from bench.support import workdir
from reliability.crash import run_crashes
from reliability.fuzz import FuzzProgress, run_fuzz
from reliability.secrets_scan import scan
from reliability.soak import run_soak


# Longer than the harness's own bounds (an order's 180 s patience, then the 120 s settle bound): a
# slow run is reported by the harness, with what was stuck, instead of being cut off without a word.
@pytest.mark.timeout(420)
def test_a_short_fault_soak_keeps_every_invariant_and_every_secret() -> None:
    with workdir("rel-ci-soak-") as folder:
        result = run_soak(folder, seed=11, payments=14, cashiers=3, fault_gap_s=0.8)
    assert sum(result.faults.values()) >= 5, result.faults  # faults did hit the daemon
    assert result.violations == []
    assert result.secrets == []
    assert result.stuck == []
    assert sum(result.final_states.values()) >= 9
    assert result.refunds["succeeded"] >= 1, result.refunds  # refunds were made, under the same faults


@pytest.mark.timeout(240)  # the device's own requests meet the faults too, and a lost PROCESS waits for its bound
def test_a_short_fault_soak_with_a_protocol_2_serial_reader_keeps_every_invariant() -> None:
    with workdir("rel-ci-soak-sdk-") as folder:
        result = run_soak(folder, seed=11, payments=8, cashiers=3, fault_gap_s=0.8, sdk_reader=True)
    assert sum(result.faults.values()) >= 3, result.faults
    assert result.violations == []
    assert result.secrets == []
    assert result.stuck == []
    assert sum(result.final_states.values()) >= 7


@pytest.mark.timeout(120)
def test_a_short_crash_run_keeps_every_invariant_after_every_restart() -> None:
    with workdir("rel-ci-crash-") as folder:
        result = run_crashes(folder, seed=11, kills=10, chosen_every=2)
    assert result.kills == 10
    assert sorted(result.chosen_kills) == ["cancel", "capture", "confirm", "create", "refund"]
    assert result.violations == []
    assert result.unsettled == []
    assert result.payments >= 8
    assert result.refunds["succeeded"] >= 1, result.refunds  # the refund killed in flight was made
    assert result.orders_with_attempts >= 1, result.paid_again  # kills fell between an order's attempts


@pytest.mark.timeout(240)  # the default 60 s is too short on a loaded 2-core machine
def test_a_short_fuzz_gets_only_proper_answers_while_payments_complete() -> None:
    progress: list[FuzzProgress] = []
    with workdir("rel-ci-fuzz-") as folder:
        result = run_fuzz(folder, seed=11, frames=1500, batch=750, progress=progress.append, progress_every=700)
    assert [p.frames for p in progress] == [750, 1500]  # told at the end of each batch that passes 700 more
    assert all(p.daemon_rss_kb > 10_000 and p.harness_rss_kb > 10_000 and p.daemon_cpu_s > 0 for p in progress)
    assert sum(sum(p.stripe_requests.values()) for p in progress) > 0  # the well-behaved POS's payments
    assert progress[-1].line().startswith("fuzz: 1500 frames, ")
    assert result.frames >= 1500
    assert result.problems == []
    assert result.violations == []
    assert result.payments_completed >= 1
    assert result.answers["PARSE_ERROR"] > 0
    assert result.answers["INVALID_REQUEST"] > 0


def test_the_secrets_scan_finds_what_is_there() -> None:
    key = "sk_test_reliabilityabcdef0123"
    found = scan(
        [("log", f"key={key}".encode()), ("store", b"pan 4242424242424242"), ("socket", b"rk_live_somethinglong1")],
        key,
    )
    assert {(f.where, f.what) for f in found} >= {
        ("log", "the Stripe key"),
        ("store", "card number 4242..."),
        ("socket", "a secret key rk_live_some..."),
    }
    assert scan([("log", b"pm_card_present_visa last4 4242")], key) == []
