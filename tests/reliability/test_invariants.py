"""The invariant checker finds each kind of violation (it must be able to fail), and passes a clean history."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reliability.invariants import StoredIncrement, StoredPayment, StoredRefund, StoreView, Violation, check
from reliability.pos import PosRecord

TERMINAL = "rel-kiosk"


@dataclass(frozen=True)
class Entry:
    seq: int
    op: str
    object: str
    status: str
    amount: int | None = 1000
    metadata: dict[str, str] = field(default_factory=dict)


def meta(payment_id: str, order_id: str) -> dict[str, str]:
    return {"terminal_id": TERMINAL, "payment_id": payment_id, "order_id": order_id}


def captured_history(payment_id: str = "pay_1", intent: str = "pi_1", order: str = "A") -> list[Entry]:
    m = meta(payment_id, order)
    return [
        Entry(1, "payment_intent.create", intent, "requires_payment_method", metadata=m),
        Entry(2, "payment_intent.confirm", intent, "requires_capture", metadata=m),
        Entry(3, "payment_intent.capture", intent, "succeeded", metadata=m),
    ]


def store_with(*payments: StoredPayment, history: dict[str, set[str]] | None = None) -> StoreView:
    view = StoreView({p.payment_id: p for p in payments})
    view.history = history or {p.payment_id: {"creating", "collecting", "processing", p.state} for p in payments}
    return view


def rules(found: list[Violation]) -> set[str]:
    return {v.rule for v in found}


def test_a_clean_history_has_no_violation() -> None:
    pos = PosRecord(told={("pay_1", "captured")}, capture_asked={"pay_1": 1000})
    store = store_with(StoredPayment("pay_1", "A", "captured", "pi_1", 1000, None))
    assert check(store, captured_history(), pos, terminal_id=TERMINAL, settled=True) == []


def test_two_intents_for_one_payment_are_found() -> None:
    journal = [*captured_history(), Entry(9, "payment_intent.create", "pi_2", "requires_payment_method", None,
                                          meta("pay_1", "A"))]  # fmt: skip
    pos = PosRecord(capture_asked={"pay_1": 1000})
    store = store_with(StoredPayment("pay_1", "A", "captured", "pi_1", 1000, None))
    assert "one_intent_per_attempt" in rules(check(store, journal, pos, terminal_id=TERMINAL, settled=False))


def test_an_order_paid_again_after_a_cancel_is_clean() -> None:
    m = meta("pay_1", "A")
    canceled = [Entry(1, "payment_intent.create", "pi_1", "requires_payment_method", metadata=m),
                Entry(2, "payment_intent.cancel", "pi_1", "canceled", metadata=m)]  # fmt: skip
    journal = [*canceled, *(e.__class__(e.seq + 2, e.op, e.object, e.status, e.amount, e.metadata)
                            for e in captured_history("pay_2", "pi_2", "A"))]  # fmt: skip
    pos = PosRecord(capture_asked={"pay_2": 1000}, cancel_accepted={"pay_1"})
    store = store_with(
        StoredPayment("pay_1", "A", "canceled", "pi_1", 0, None),
        StoredPayment("pay_2", "A", "captured", "pi_2", 1000, None),
    )
    assert check(store, journal, pos, terminal_id=TERMINAL, settled=True) == []


def test_two_successful_attempts_of_one_order_are_found_at_stripe_and_in_the_store() -> None:
    journal = [*captured_history("pay_1", "pi_1", "A"), *captured_history("pay_2", "pi_2", "A")]
    pos = PosRecord(capture_asked={"pay_1": 1000, "pay_2": 1000})
    store = store_with(
        StoredPayment("pay_1", "A", "captured", "pi_1", 1000, None),
        StoredPayment("pay_2", "A", "captured", "pi_2", 1000, None),
    )
    found = [
        v for v in check(store, journal, pos, terminal_id=TERMINAL, settled=True) if v.rule == "one_success_per_order"
    ]
    details = [v.detail for v in found]
    assert "order A: 2 PaymentIntents captured: ['pi_1', 'pi_2']" in details
    assert "order A: 2 PaymentIntents hold money: ['pi_1', 'pi_2']" in details
    assert "order A has 2 successful attempts: ['pay_1', 'pay_2']" in details


def test_an_earlier_attempt_still_authorised_beside_the_paying_one_is_found_once_settled() -> None:
    first = captured_history("pay_1", "pi_1", "A")[:2]  # authorised, then the store canceled it: not at Stripe
    journal = [*first, *(e.__class__(e.seq + 2, e.op, e.object, e.status, e.amount, e.metadata)
                         for e in captured_history("pay_2", "pi_2", "A"))]  # fmt: skip
    pos = PosRecord(capture_asked={"pay_2": 1000})
    store = store_with(
        StoredPayment("pay_1", "A", "canceled", "pi_1", 0, None),
        StoredPayment("pay_2", "A", "captured", "pi_2", 1000, None),
    )
    assert "one_success_per_order" not in rules(check(store, journal, pos, terminal_id=TERMINAL, settled=False))
    assert "one_success_per_order" in rules(check(store, journal, pos, terminal_id=TERMINAL, settled=True))


def test_a_capture_never_asked_for_is_found() -> None:
    store = store_with(StoredPayment("pay_1", "A", "captured", "pi_1", 1000, None))
    assert "no_unasked_capture" in rules(check(store, captured_history(), PosRecord(), terminal_id=TERMINAL,
                                               settled=False))  # fmt: skip


def test_a_double_capture_and_a_wrong_amount_are_found() -> None:
    journal = [*captured_history(), Entry(4, "payment_intent.capture", "pi_1", "succeeded", 1000, meta("pay_1", "A"))]
    pos = PosRecord(capture_asked={"pay_1": 600})
    store = store_with(StoredPayment("pay_1", "A", "captured", "pi_1", 1000, None))
    found = check(store, journal, pos, terminal_id=TERMINAL, settled=False)
    assert [v.rule for v in found].count("capture_once") == 2


def test_a_capture_after_a_cancel_is_found() -> None:
    m = meta("pay_1", "A")
    journal = [*captured_history()[:2], Entry(3, "payment_intent.cancel", "pi_1", "canceled", metadata=m),
               Entry(4, "payment_intent.capture", "pi_1", "succeeded", metadata=m)]  # fmt: skip
    pos = PosRecord(capture_maybe={"pay_1"}, cancel_accepted={"pay_1"})
    store = store_with(StoredPayment("pay_1", "A", "canceled", "pi_1", 0, None))
    found = check(store, journal, pos, terminal_id=TERMINAL, settled=True)
    assert {"no_capture_after_cancel", "settled"} <= rules(found)


def test_an_asked_capture_that_never_happened_is_found_once_settled() -> None:
    journal = captured_history()[:2]
    pos = PosRecord(capture_asked={"pay_1": 1000})
    store = store_with(StoredPayment("pay_1", "A", "authorized", "pi_1", 0, None))
    assert check(store, journal, pos, terminal_id=TERMINAL, settled=False) == []
    assert "capture_once" in rules(check(store, journal, pos, terminal_id=TERMINAL, settled=True))


def test_an_asked_capture_may_end_failed_only_for_a_reason_that_rules_it_out() -> None:
    journal = captured_history()[:1]
    pos = PosRecord(capture_asked={"pay_1": 1000})
    declined = store_with(StoredPayment("pay_1", "A", "failed", "pi_1", 0, "OFFLINE_DECLINED"))
    assert check(declined, journal, pos, terminal_id=TERMINAL, settled=True) == []
    refused = store_with(StoredPayment("pay_1", "A", "failed", "pi_1", 0, "STRIPE_REFUSED"))
    assert "capture_once" in rules(check(refused, journal, pos, terminal_id=TERMINAL, settled=True))


def test_a_payment_left_on_its_way_or_disagreeing_with_stripe_is_found() -> None:
    journal = captured_history("pay_1")[:2]
    store = store_with(
        StoredPayment("pay_1", "A", "canceled", "pi_1", 0, None),  # Stripe still holds the authorisation
        StoredPayment("pay_2", "B", "capturing", None, 0, None),
    )
    store.pending_operations = 1
    found = check(store, journal, PosRecord(), terminal_id=TERMINAL, settled=True)
    details = " ".join(v.detail for v in found)
    assert "pay_1 is canceled" in details
    assert "pay_2 is still capturing" in details
    assert "1 operations still pending" in details


def test_a_state_told_but_not_in_the_store_is_found() -> None:
    pos = PosRecord(told={("pay_1", "authorized")})
    store = store_with(StoredPayment("pay_1", "A", "processing", None, 0, None), history={"pay_1": {"creating"}})
    assert rules(check(store, [], pos, terminal_id=TERMINAL, settled=False)) == {"told_in_store"}


def test_other_terminals_are_not_this_daemons_business() -> None:
    other = [Entry(1, "payment_intent.capture", "pi_9", "succeeded", metadata={"terminal_id": "elsewhere"})]
    assert check(store_with(), other, PosRecord(), terminal_id=TERMINAL, settled=True) == []


def test_the_evidence_of_a_violation_is_kept_outside_the_runs_folder(tmp_path: Path) -> None:
    from reliability.world import world

    (tmp_path / "run").mkdir()
    with world(tmp_path / "run") as w:
        w.record.capture_asked["pay_1"] = 1250
        kept = w.keep_evidence(tmp_path / "evidence")
    assert json.loads((kept / "pos.json").read_text())["capture_asked"] == {"pay_1": 1250}
    assert json.loads((kept / "journal.json").read_text()) == []
    assert (kept / "daemon.log").exists()


def test_a_crash_run_counts_a_violation_found_again_at_later_checks_once() -> None:
    from reliability.crash import CrashResult, note_violations

    result = CrashResult(seed=1)
    lasting = Violation("capture_once", "pay_1 captured 2000, the POS asked 1500")
    note_violations(result, 3, [lasting])
    note_violations(result, 4, [lasting, Violation("told_in_store", "pay_2 told captured")])
    note_violations(result, 5, [lasting])
    assert [(life, v.rule) for life, v in result.violations] == [(3, "capture_once"), (4, "told_in_store")]


# -- refunds ---------------------------------------------------------------------------------------


def refund_entry(seq: int, refund_id: str, amount: int, object_: str = "re_1") -> Entry:
    return Entry(seq, "refund.create", object_, "succeeded", amount, {**meta("pay_1", "A"), "refund_id": refund_id})


def refunded_store(*refunds: StoredRefund) -> StoreView:
    store = store_with(StoredPayment("pay_1", "A", "captured", "pi_1", 1000, None))
    store.refunds = {r.refund_id: r for r in refunds}
    store.refund_history = {r.refund_id: {"pending", r.state} for r in refunds}
    return store


def refund_pos(*refund_ids: str) -> PosRecord:
    return PosRecord(
        capture_asked={"pay_1": 1000},
        refund_maybe=set(refund_ids),
        refund_asked=dict.fromkeys(refund_ids, ("pay_1", None)),
    )


def test_clean_refunds_have_no_violation() -> None:
    journal = [*captured_history(), refund_entry(4, "R-1", 400), refund_entry(5, "R-2", 600, "re_2")]
    store = refunded_store(
        StoredRefund("R-1", "pay_1", "succeeded", 400, "re_1"), StoredRefund("R-2", "pay_1", "succeeded", 600, "re_2")
    )
    pos = refund_pos("R-1", "R-2")
    pos.refunds_told = {("R-1", "pending"), ("R-2", "succeeded")}
    assert check(store, journal, pos, terminal_id=TERMINAL, settled=True) == []


def test_more_refunded_than_captured_is_found() -> None:
    journal = [*captured_history(), refund_entry(4, "R-1", 700), refund_entry(5, "R-2", 400, "re_2")]
    store = refunded_store(
        StoredRefund("R-1", "pay_1", "succeeded", 700, "re_1"), StoredRefund("R-2", "pay_1", "succeeded", 400, "re_2")
    )
    found = check(store, journal, refund_pos("R-1", "R-2"), terminal_id=TERMINAL, settled=False)
    assert rules(found) == {"refund_within_captured"}


def test_two_refunds_for_one_refund_id_or_one_never_asked_are_found() -> None:
    journal = [*captured_history(), refund_entry(4, "R-1", 100), refund_entry(5, "R-1", 100, "re_2")]
    store = refunded_store(StoredRefund("R-1", "pay_1", "succeeded", 100, "re_1"))
    found = check(store, journal, refund_pos("R-1"), terminal_id=TERMINAL, settled=False)
    assert rules(found) == {"one_refund_per_refund_id"}
    found = check(store, journal[:4], refund_pos(), terminal_id=TERMINAL, settled=False)
    assert [v.detail for v in found] == ["R-1 refunded, never asked"]


def test_a_refund_that_disagrees_with_stripe_or_was_told_unstored_is_found() -> None:
    journal = [*captured_history(), refund_entry(4, "R-1", 100)]
    failed_but_made = refunded_store(StoredRefund("R-1", "pay_1", "failed", 100, None))
    found = check(failed_but_made, journal, refund_pos("R-1"), terminal_id=TERMINAL, settled=True)
    assert [v.rule for v in found] == ["refund_settled"]
    succeeded_unmade = refunded_store(StoredRefund("R-1", "pay_1", "succeeded", 100, "re_1"))
    found = check(succeeded_unmade, captured_history(), refund_pos("R-1"), terminal_id=TERMINAL, settled=True)
    assert [v.rule for v in found] == ["refund_settled"]
    pending = refunded_store(StoredRefund("R-1", "pay_1", "pending", 100, None))
    assert rules(check(pending, captured_history(), refund_pos("R-1"), terminal_id=TERMINAL, settled=True)) == {
        "refund_settled"
    }
    pos = refund_pos("R-1")
    pos.refunds_told = {("R-1", "canceled")}
    found = check(succeeded_unmade, journal, pos, terminal_id=TERMINAL, settled=False)
    assert [v.rule for v in found] == ["told_in_store"]


def test_a_refund_of_a_payment_an_sdk_forwarded_is_judged_by_what_its_payment_intent_captured() -> None:
    # The reader's SDK made the PaymentIntent: its metadata names only its offline_ref; the store links it.
    sdk = {"offline_ref": "off_1"}
    journal = [
        Entry(1, "payment_intent.create", "pi_1", "requires_payment_method", 1000, sdk),
        Entry(2, "payment_intent.confirm", "pi_1", "requires_capture", 1000, sdk),
        Entry(3, "payment_intent.capture", "pi_1", "succeeded", 1000, sdk),
        refund_entry(4, "R-1", 600),
    ]
    store = refunded_store(StoredRefund("R-1", "pay_1", "succeeded", 600, "re_1"))
    assert check(store, journal, refund_pos("R-1"), terminal_id=TERMINAL, settled=False) == []
    too_much = [*journal, refund_entry(5, "R-2", 500, "re_2")]
    found = check(store, too_much, refund_pos("R-1", "R-2"), terminal_id=TERMINAL, settled=False)
    assert [v.detail for v in found if v.rule == "refund_within_captured"] == ["pay_1: 1100 refunded, 1000 captured"]


def incremented_history(raised_to: int | None, declined: bool = False) -> list[Entry]:
    m = meta("pay_1", "A")
    history = captured_history()[:2]
    if declined:
        history.append(Entry(3, "payment_intent.increment_authorization.declined", "pi_1", "requires_capture", 1500, m))
    if raised_to is not None:
        history.append(Entry(4, "payment_intent.increment_authorization", "pi_1", "requires_capture", raised_to, m))
    return history


def test_increments_that_agree_with_stripe_have_no_violation() -> None:
    authorised = StoredPayment("pay_1", "A", "authorized", "pi_1", 0, None)
    raised, declined = store_with(authorised), store_with(authorised)
    raised.increments = {"I": StoredIncrement("I", "pay_1", "succeeded", 1500)}
    declined.increments = {"I": StoredIncrement("I", "pay_1", "declined", 1500)}
    pos = PosRecord()
    assert check(raised, incremented_history(1500), pos, terminal_id=TERMINAL, settled=True) == []
    assert check(declined, incremented_history(None, declined=True), pos, terminal_id=TERMINAL, settled=True) == []


def test_an_increment_that_disagrees_with_stripe_or_a_hold_raised_unasked_is_found() -> None:
    store = store_with(StoredPayment("pay_1", "A", "authorized", "pi_1", 0, None))
    store.increments = {"I": StoredIncrement("I", "pay_1", "succeeded", 1500)}
    believed_raised = check(store, incremented_history(None, declined=True), PosRecord(), terminal_id=TERMINAL,
                            settled=True)  # fmt: skip
    assert rules(believed_raised) == {"increment_settled"}
    store.increments = {"I": StoredIncrement("I", "pay_1", "declined", 1500)}
    raised_anyway = check(store, incremented_history(1500), PosRecord(), terminal_id=TERMINAL, settled=True)
    assert rules(raised_anyway) == {"increment_settled"}
    store.increments = {"I": StoredIncrement("I", "pay_1", "pending", 1500)}
    assert rules(check(store, incremented_history(None), PosRecord(), terminal_id=TERMINAL, settled=True)) == {
        "increment_settled"
    }
    unasked = check(store, incremented_history(2000), PosRecord(), terminal_id=TERMINAL, settled=False)
    assert [v.detail for v in unasked] == ["pay_1: hold raised to 2000, which no increment asked"]
