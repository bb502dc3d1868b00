"""readerhostctl as a real subprocess against readerhostd as a real process.

Every run is checked for what a technician must never see: a traceback. Waits are on output lines
and events, with timeouts; a terminal is a real pty.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorHandle, make_client
from support.daemon import DaemonProcess, LogLines, daemon_env, daemon_process

from readerhost.client import Client, Event, ReaderhostError
from readerhost.daemon.ctl import exit_codes, formatting
from readerhost.daemon.payments.model import rfc3339

CTL = [sys.executable, "-m", "readerhost.daemon.ctl"]
COMMANDS = (
    "status", "pay", "capture", "cancel", "close", "refund", "get", "list", "watch", "reconcile", "present", "display",
    "reader",
)  # fmt: skip
WAIT = 20.0
CONFIG = """
[reader.simulated]
present_after_s = -1

[payments]
reconcile_grace_s = 0.001
"""


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert 'File "' not in stderr, stderr


def ctl_env(tmp_path: Path) -> dict[str, str]:
    env = daemon_env(tmp_path)
    env.pop("READERHOST_SOCKET")
    return env


@contextlib.contextmanager
def logged_daemon(tmp_path: Path) -> Iterator[tuple[DaemonProcess, LogLines]]:
    """readerhostd with its log read as it comes (a log nobody reads would fill the pipe and stall it)."""
    with daemon_process(tmp_path, CONFIG) as running:
        yield running, running.log


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with logged_daemon(tmp_path_factory.mktemp("ctl")) as (running, log):
        if not any("Stripe answered (reachable)" in line for line in log.seen):  # `status` says so from then on
            log.until(lambda line: "Stripe answered (reachable)" in line)
        yield running


@pytest.fixture
def run_ctl(daemon: DaemonProcess, tmp_path: Path) -> Callable[..., Ran]:
    def run(*args: str, stdin: str = "", at: Path | None = None) -> Ran:
        command = [*CTL, "--socket", str(at or daemon.socket_path), *args]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=60, env=ctl_env(tmp_path), check=False
        )
        no_traceback(result.stderr)
        return Ran(result.returncode, result.stdout, result.stderr)

    return run


def paid(run_ctl: Callable[..., Ran], amount: str, order: str, *more: str) -> dict[str, Any]:
    """A payment taken with `pay --json`: its final payment object."""
    result = run_ctl("--json", "pay", amount, "--order", order, "--card", "visa", *more)
    assert result.code == 0, result.stderr
    last = result.json_lines()[-1]
    assert last["type"] == "result"
    payment: dict[str, Any] = last["payment"]
    return payment


def one_error_line(result: Ran) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("readerhostctl: ")
    return lines[0]


# -- commands -------------------------------------------------------------------------------------


def test_status_human_and_json(run_ctl: Callable[..., Ran]) -> None:
    human = run_ctl("status")
    assert human.code == 0
    assert human.stdout.startswith("readerhostd ")
    assert "mode emulator" in human.stdout
    assert "reader   ready: simulated sim-1" in human.stdout
    assert "stripe   reachable" in human.stdout
    assert "health   ok" in human.stdout
    deadline = next(line for line in human.stdout.splitlines() if line.startswith("deadline "))
    assert deadline == "deadline no authorisation waiting for a capture" or " capture before 20" in deadline
    assert "\npolicy   [reconcile] unattended = report: a payment its POS left authorised is reported 1 h 0 min " in (
        human.stdout
    )
    assert human.stderr == ""
    machine = run_ctl("status", "--json")  # the global options also work after the command
    assert machine.code == 0
    status = machine.json()
    assert status["mode"] == "emulator"
    assert status["protocol"] == {"major": 1, "minor": 6}
    assert status["reader"]["state"] == "ready"
    assert "deadline" in status
    assert status["unattended"] == {"policy": "report", "lead_s": 3600}


def test_status_says_what_the_daemon_does_with_what_a_pos_left_authorised() -> None:
    assert formatting.unattended_text({"policy": "capture", "lead_s": 5400}) == (
        "[reconcile] unattended = capture: a payment its POS left authorised is captured 1 h 30 min before its deadline"
    )
    assert formatting.unattended_text({"policy": "cancel", "lead_s": 600}).endswith(
        "is canceled 10 min before its deadline"
    )
    assert formatting.unattended_text({"policy": "report", "lead_s": 3600}).endswith(
        "is reported 1 h 0 min before its deadline, and left to lapse"
    )
    assert formatting.unattended_text(None) == "not told (a daemon before protocol 1.4)"


def test_status_names_the_nearest_capture_deadline() -> None:
    now = 1_796_000_000.0
    deadline = {"payment_id": "pay_1", "order_id": "A-1", "capture_before": rfc3339(now + 86_400 + 7_260)}
    assert formatting.deadline_text(deadline, now) == (
        f"pay_1 (order A-1) capture before {rfc3339(now + 93_660)}, in 1 d 2 h"
    )
    assert formatting.deadline_text(deadline, now + 86_400).endswith(", in 2 h 1 min")
    assert formatting.deadline_text(deadline, now + 10**6).endswith(", passed")
    assert formatting.deadline_text(None, now) == "no authorisation waiting for a capture"


def test_pay_shows_the_prompt_and_the_states_and_ends_authorized(run_ctl: Callable[..., Ran]) -> None:
    result = run_ctl("pay", "1250", "--card", "visa", "--order", "T-AUTH")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("payment pay_")
    assert "order T-AUTH: 12.50 USD, manual capture" in lines[0]
    assert "reader: present a card (tap, insert, swipe)" in lines
    assert "state: collecting" in lines
    assert "state: creating - waiting for Stripe to create the PaymentIntent" in lines
    assert "state: processing - waiting for Stripe to authorise the card" in lines
    assert "state: authorized - visa ****4242 (contactless)" in lines
    assert lines.index("state: collecting") < lines.index("state: authorized - visa ****4242 (contactless)")
    assert lines[-1].startswith("authorized 12.50 USD on visa ****4242")
    assert "\r" not in result.stdout  # no spinner when the output is not a terminal
    assert result.stderr == ""


def test_a_decline_exits_4_and_names_it(run_ctl: Callable[..., Ran]) -> None:
    result = run_ctl("pay", "1205", "--card", "visa", "--order", "T-DECL")
    assert result.code == exit_codes.EXIT_DECLINED == 4
    assert "state: declined - generic_decline: Your card was declined." in result.stdout
    assert result.stdout.splitlines()[-1].startswith("declined (generic_decline")
    machine = run_ctl("--json", "pay", "1000", "--card", "charge_declined_insufficient_funds", "--order", "T-DECL2")
    assert machine.code == 4
    final = machine.json_lines()[-1]["payment"]
    assert (final["state"], final["decline"]["decline_code"]) == ("declined", "insufficient_funds")


def test_pay_json_is_json_lines_in_order(run_ctl: Callable[..., Ran]) -> None:
    result = run_ctl("--json", "pay", "2000", "--card", "mastercard", "--order", "T-JSON")
    assert result.code == 0
    lines = result.json_lines()
    assert lines[0]["type"] == "payment.started"
    assert lines[-1]["type"] == "result"
    events = lines[1:-1]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    states = [e["data"]["state"] for e in events if e["type"] == "payment.state"]
    assert states[0] in ("creating", "collecting")
    assert states[-1] == "authorized"
    assert any(e["type"] == "reader.input_options" for e in events)
    assert lines[-1]["payment"]["card"]["brand"] == "mastercard"


def test_automatic_capture_in_a_zero_decimal_currency(run_ctl: Callable[..., Ran]) -> None:
    result = run_ctl("pay", "1250", "--currency", "JPY", "--capture", "auto", "--card", "visa", "--order", "T-JPY")
    assert result.code == 0, result.stderr
    assert "1250 JPY, automatic capture" in result.stdout
    assert "state: captured - visa ****4242 (contactless)" in result.stdout
    assert result.stdout.splitlines()[-1] == "captured 1250 JPY on visa ****4242 (contactless)"


def test_pay_with_confirm_and_yes(run_ctl: Callable[..., Ran]) -> None:
    result = run_ctl("pay", "800", "--confirm", "--yes", "--card", "amex", "--order", "T-YES")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "state: awaiting_confirmation - amex ****0005 (contactless)" in lines
    assert lines.index("proceeding (--yes)") < lines.index("state: authorized - amex ****0005 (contactless)")


def test_capture_then_get(run_ctl: Callable[..., Ran], daemon: DaemonProcess) -> None:
    payment = paid(run_ctl, "1250", "T-CAP")
    with Client.connect(daemon.socket_path) as watcher:
        watcher.subscribe(["payment"])
        result = run_ctl("capture", payment["payment_id"], "--amount", "1000")
        assert result.code == 0, result.stderr
        assert result.stdout.startswith(f"{payment['payment_id']}  order T-CAP  12.50 USD  ")
        assert result.stdout.split("  ")[3] in ("capturing", "captured")
        watcher.wait_for_event(
            lambda e: e.data.get("payment_id") == payment["payment_id"] and e.data.get("state") == "captured", WAIT
        )
    shown = run_ctl("get", payment["payment_id"])
    assert shown.code == 0
    assert "state     captured" in shown.stdout
    assert "captured  10.00 USD" in shown.stdout
    assert "card      visa ****4242 (contactless)" in shown.stdout
    by_order = run_ctl("--json", "get", "--order", "T-CAP")
    assert by_order.json()["payment_id"] == payment["payment_id"]
    assert by_order.json()["captured_amount"] == 1000
    again = run_ctl("cancel", payment["payment_id"])
    assert again.code == 1
    assert one_error_line(again).endswith("(INVALID_STATE)")


def test_get_shows_the_receipt_data_stripe_gave(run_ctl: Callable[..., Ran]) -> None:
    payment = paid(run_ctl, "1300", "T-RECEIPT")
    receipt = payment["receipt"]
    assert (receipt["brand"], receipt["last4"], receipt["read_method"]) == ("visa", "4242", "contactless_emv")
    assert (receipt["dedicated_file_name"], receipt["authorization_response_code"]) == ("A0000000031010", "3030")
    assert receipt["receipt_url"].startswith("https://pay.stripe.com/receipts/payment/ch_")
    shown = run_ctl("get", payment["payment_id"]).stdout.splitlines()
    assert "card      visa ****4242 (contactless)" in shown
    assert "app name  Visa Credit" in shown
    assert "AID       A0000000031010" in shown
    assert f"auth code {receipt['authorization_code']}" in shown
    assert "ARC       3030" in shown
    assert "verified  no verification" in shown  # contactless, below the limits
    assert f"receipt   {receipt['receipt_url']}" in shown
    assert not any(line.startswith("wallet") for line in shown)  # Stripe gave none


def test_reader_locations_and_register_on_a_smart_reader(tmp_path: Path, stripe_emulator: EmulatorHandle) -> None:
    config = f'[stripe]\napi_base = "{stripe_emulator.url}"\n\n[reader]\ndriver = "stripe_terminal"\n'
    with daemon_process(tmp_path, config) as smart:

        def ctl(*args: str) -> Ran:
            done = subprocess.run(
                [*CTL, "--socket", str(smart.socket_path), *args],
                capture_output=True, text=True, timeout=60, env=ctl_env(tmp_path), check=False,
            )  # fmt: skip
            no_traceback(done.stderr)
            return Ran(done.returncode, done.stdout, done.stderr)

        assert "readerhostctl reader register" in ctl("status").stdout  # what the reader line says to do
        empty = ctl("reader", "locations")
        assert (empty.code, empty.stdout) == (
            0,
            "no Terminal locations: make one in the Stripe Dashboard (Terminal > Locations)\n",
        )
        front = make_client(stripe_emulator.url).v1.terminal.locations.create(
            params={"display_name": "Front kiosk", "address": {"line1": "12 Station Road", "country": "US"}}
        )
        assert ctl("reader", "locations").stdout == f"{front.id}  Front kiosk  12 Station Road, US\n"
        assert ctl("--json", "reader", "locations").json()["locations"][0]["id"] == front.id

        unknown = ctl("reader", "register", "simulated-wpe", "--location", "tml_nowhere")
        assert unknown.code == 1
        assert one_error_line(unknown).endswith("(READER_UNAVAILABLE)")
        assert "tml_nowhere" in unknown.stderr
        assert ctl("reader", "register", "simulated-wpe", "--location", "pi_1").code == 1  # INVALID_PARAMS
        assert ctl("reader", "register").code == 2  # no code: usage

        registered = ctl("reader", "register", "simulated-wpe", "--location", front.id, "--label", "Kiosk 1")
        assert registered.code == 0, registered.stderr
        first, second = registered.stdout.splitlines()
        assert first.startswith("registered: ready: simulated_wisepos_e tmr_")
        assert second == "readerhostd uses it from now on, and after every restart (kept in its store)"
        assert "reader   ready: simulated_wisepos_e tmr_" in ctl("status").stdout


def test_pay_while_stripe_is_gone_fails_within_the_customer_wait_and_frees_the_reader(
    tmp_path: Path, stripe_emulator: EmulatorHandle
) -> None:
    """The headline of the bounded wait, daemon and CLI as processes: Stripe gone, `pay` says it
    waits for Stripe, fails within [payments] customer_wait_s, the next POS is not told BUSY, and
    the PaymentIntent its create left is canceled once Stripe is back."""
    config = f'[stripe]\napi_base = "{stripe_emulator.url}"\n{CONFIG}customer_wait_s = 1.5\n'
    emulator = stripe_emulator.emulator
    with daemon_process(tmp_path, config) as running:
        emulator.add_fault({"method": "POST", "path": "^/v1/payment_intents", "action": "down"})
        began = time.monotonic()
        done = subprocess.run(
            [*CTL, "--socket", str(running.socket_path), "pay", "1250", "--card", "visa", "--order", "T-GONE"],
            capture_output=True, text=True, timeout=60, env=ctl_env(tmp_path), check=False,
        )  # fmt: skip
        took = time.monotonic() - began
        no_traceback(done.stderr)
        lines = done.stdout.splitlines()
        assert done.returncode == exit_codes.EXIT_NOT_PAID, done.stdout + done.stderr
        assert "state: creating - waiting for Stripe to create the PaymentIntent" in lines
        assert lines[-1] == (
            "failed: Stripe did not answer within 1.5 s: card payments are unavailable (STRIPE_UNAVAILABLE)"
        )
        assert took < 1.5 + 10  # the wait's bound, and the two processes' start-up
        with Client.connect(running.socket_path) as pos:
            refused = None
            try:
                pos.start_payment("T-NEXT", 500, "usd")
            except ReaderhostError as error:
                refused = error.reason  # Stripe may count as unreachable by now: that is not BUSY
            assert refused != "BUSY"
            assert pos.get_payment(order_id="T-GONE")["error"]["reason"] == "STRIPE_UNAVAILABLE"
            gone = pos.get_payment(order_id="T-GONE")
            pos.subscribe(["queue"])
            emulator.faults.clear()  # Stripe is back: the daemon's outbox empties, told by its events
            pos.wait_for_event(lambda e: e.type == "queue.changed" and e.data.get("pending") == 0, WAIT)
            made = [e for e in emulator.journal_entries() if e.metadata.get("payment_id") == gone["payment_id"]]
            assert [e.op for e in made] == ["payment_intent.create", "payment_intent.cancel"]
            stripe = make_client(stripe_emulator.url)
            assert stripe.v1.payment_intents.retrieve(made[0].object).status == "canceled"


def test_cancel(run_ctl: Callable[..., Ran]) -> None:
    payment = paid(run_ctl, "1500", "T-CANCEL")
    result = run_ctl("cancel", payment["payment_id"], "--reason", "duplicate")
    assert result.code == 0, result.stderr
    assert f"{payment['payment_id']}  order T-CANCEL  15.00 USD  canceled" in result.stdout
    assert run_ctl("--json", "get", payment["payment_id"]).json()["state"] == "canceled"


def test_an_order_paid_again_then_closed_as_paid_another_way(run_ctl: Callable[..., Ran]) -> None:
    first = paid(run_ctl, "1500", "T-AGAIN")
    assert run_ctl("cancel", first["payment_id"]).code == 0
    second = paid(run_ctl, "1500", "T-AGAIN")  # the order's second attempt
    assert (second["order_attempt"], second["state"]) == (2, "authorized")
    refused = run_ctl("close", "T-AGAIN")
    assert refused.code == 1
    assert one_error_line(refused) == (
        f"readerhostctl: order T-AGAIN is already paid by card: payment {second['payment_id']} (attempt 2) is "
        "authorized; cancel it first if the order was paid another way (INVALID_STATE)"
    )
    assert run_ctl("cancel", second["payment_id"]).code == 0
    closed = run_ctl("close", "T-AGAIN")
    assert closed.code == 0, closed.stderr
    head, *attempts = closed.stdout.splitlines()
    assert head.startswith("order T-AGAIN closed: paid by other at ")
    assert head.endswith("; 2 card attempts")
    assert attempts[1].endswith("canceled  visa ****4242 (contactless)  attempt 2  order paid by other")
    listed = run_ctl("--json", "list", "--order", "T-AGAIN").json()["payments"]
    assert [(p["order_attempt"], p["closed_by"]) for p in listed] == [(2, "other"), (1, "other")]
    assert "attempt   2" in run_ctl("get", second["payment_id"]).stdout


def test_refund_waits_for_stripe_and_never_refunds_twice(run_ctl: Callable[..., Ran]) -> None:
    payment = paid(run_ctl, "2000", "T-REFUND", "--capture", "auto")
    payment_id = payment["payment_id"]
    result = run_ctl("refund", payment_id, "--amount", "500", "--refund-id", "T-REFUND-R1", "--reason", "duplicate")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "T-REFUND-R1  5.00 USD  online  pending"
    assert lines[-1].startswith("T-REFUND-R1  5.00 USD  online  succeeded  re_")
    again = run_ctl(
        "--json", "refund", payment_id, "--amount", "500", "--refund-id", "T-REFUND-R1", "--reason", "duplicate"
    )
    assert again.code == 0, again.stderr
    assert (again.json()["state"], again.json()["stripe_refund"]) == ("succeeded", lines[-1].split()[-1])
    too_much = run_ctl("refund", payment_id, "--amount", "1501")
    assert too_much.code == 1
    assert one_error_line(too_much).endswith("(REFUND_EXCEEDS_CAPTURED)")
    conflict = run_ctl("refund", payment_id, "--amount", "400", "--refund-id", "T-REFUND-R1")
    assert one_error_line(conflict).endswith("(IDEMPOTENCY_CONFLICT)")
    at_reader = run_ctl("refund", payment_id, "--at-reader")
    assert one_error_line(at_reader).endswith("cannot refund at the reader (UNSUPPORTED)")
    shown = run_ctl("get", payment_id)
    assert "refunded  5.00 USD" in shown.stdout
    assert "refund    T-REFUND-R1  5.00 USD  online  succeeded  re_" in shown.stdout


def test_get_of_nothing_is_not_found(run_ctl: Callable[..., Ran]) -> None:
    result = run_ctl("get", "pay_nothing")
    assert result.code == 1
    assert one_error_line(result) == "readerhostctl: no payment pay_nothing (NOT_FOUND)"
    assert result.stdout == ""
    assert run_ctl("get", "--order", "T-NOTHING").code == 1


def test_list(run_ctl: Callable[..., Ran]) -> None:
    first = paid(run_ctl, "1100", "T-LIST-1")
    second = paid(run_ctl, "1200", "T-LIST-2")
    listed = run_ctl("--json", "list", "--limit", "500")
    assert listed.code == 0
    ids = [p["payment_id"] for p in listed.json()["payments"]]
    assert ids.index(second["payment_id"]) < ids.index(first["payment_id"])  # newest first
    only = run_ctl("--json", "list", "--state", "authorized", "--state", "declined").json()["payments"]
    assert {p["state"] for p in only} <= {"authorized", "declined"}
    assert second["payment_id"] in [p["payment_id"] for p in only]
    assert len(run_ctl("--json", "list", "--limit", "1").json()["payments"]) == 1
    future = run_ctl("list", "--since", "2999-01-01T00:00:00Z")
    assert (future.code, future.stdout) == (0, "no payments\n")
    human = run_ctl("list", "--state", "authorized")
    assert f"{second['payment_id']}  order T-LIST-2  12.00 USD  authorized  visa ****4242" in human.stdout


def test_present_an_unknown_card_is_one_line(run_ctl: Callable[..., Ran]) -> None:
    result = run_ctl("present", "platinum")
    assert result.code == 1
    line = one_error_line(result)
    assert "unknown test card 'platinum'" in line
    assert line.endswith("(NOT_FOUND)")


def test_display(run_ctl: Callable[..., Ran], daemon: DaemonProcess) -> None:
    with Client.connect(daemon.socket_path) as watcher:
        watcher.subscribe(["display"])
        shown = run_ctl("display", "Welcome", "Tap to pay", "--ttl", "30")
        assert (shown.code, shown.stdout) == (0, "showing 2 lines while idle for 30 s\n")
        assert watcher.next_event(WAIT).data == {"lines": ["Welcome", "Tap to pay"]}
        cleared = run_ctl("--json", "display")
        assert (cleared.code, cleared.json()) == (0, {})
        assert watcher.next_event(WAIT).data == {"lines": []}
    too_many = run_ctl("display", "1", "2", "3", "4", "5")
    assert too_many.code == 1
    assert one_error_line(too_many).endswith("(INVALID_PARAMS)")


def test_reconcile_reads_completed_orders_from_stdin(run_ctl: Callable[..., Ran]) -> None:
    kept = paid(run_ctl, "1300", "T-REC-KEEP")
    dropped = paid(run_ctl, "1400", "T-REC-DROP")
    dry = run_ctl("reconcile", "--completed", "-", stdin="# completed today\nT-REC-KEEP\n\n")
    assert dry.code == 0, dry.stderr
    assert dry.stdout.startswith("Reconciliation (dry run: nothing changed): ")
    to_capture = dry.stdout.split("To capture:")[1].split("To cancel:")[0]
    assert "order T-REC-KEEP  13.00 USD" in to_capture
    assert "order T-REC-DROP  14.00 USD" in dry.stdout.split("To cancel:")[1]
    assert "Run again with --apply" in dry.stdout
    applied = run_ctl("--json", "reconcile", "--apply", "--completed", "-", stdin="T-REC-KEEP\n")
    assert applied.code == 0, applied.stderr
    report = applied.json()
    assert report["dry_run"] is False
    done = {finding["order_id"] for finding in report["done"]}
    assert {"T-REC-KEEP", "T-REC-DROP"} <= done
    assert run_ctl("--json", "get", kept["payment_id"]).json()["state"] in ("capturing", "captured")
    assert run_ctl("--json", "get", dropped["payment_id"]).json()["state"] == "canceled"


def test_reconcile_unattended_previews_then_applies_the_daemon_s_policy(run_ctl: Callable[..., Ran]) -> None:
    left = paid(run_ctl, "1600", "T-UNATTENDED")
    preview = run_ctl("reconcile", "--unattended", "--dry-run")
    assert preview.code == 0, preview.stderr
    assert preview.stdout.startswith("Reconciliation (dry run: nothing changed), [reconcile] unattended = report: ")
    reported = preview.stdout.split("Left authorised (reported only):")[1]
    assert "order T-UNATTENDED  16.00 USD  left authorised by its POS: [reconcile] unattended = report" in reported
    applied = run_ctl("--json", "reconcile", "--unattended")  # what the daily timer runs
    assert applied.code == 0, applied.stderr
    report = applied.json()
    assert (report["dry_run"], report["unattended"]) == (False, "report")
    assert "T-UNATTENDED" in {finding["order_id"] for finding in report["reported"]}
    assert run_ctl("--json", "get", left["payment_id"]).json()["state"] == "authorized"  # reported, nothing done
    both = run_ctl("reconcile", "--apply", "--dry-run")
    assert both.code == 2
    assert "not allowed with argument" in both.stderr


def test_reconcile_from_a_file_that_is_missing_is_a_usage_error(run_ctl: Callable[..., Ran], tmp_path: Path) -> None:
    result = run_ctl("reconcile", "--completed", str(tmp_path / "missing.txt"))
    assert result.code == 2
    assert "cannot read" in one_error_line(result)


def test_an_unreachable_socket_exits_3(run_ctl: Callable[..., Ran], tmp_path: Path) -> None:
    result = run_ctl("status", at=tmp_path / "nobody.sock")
    assert result.code == exit_codes.EXIT_NO_DAEMON == 3
    line = one_error_line(result)
    assert f"cannot connect to readerhostd at {tmp_path / 'nobody.sock'}: no such socket" in line
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left_over:
        left_over.bind(str(stale))  # bound, never listening: what a dead daemon leaves
    refused = run_ctl("status", at=stale)
    assert refused.code == 3
    assert "connection refused" in one_error_line(refused)


def test_the_socket_comes_from_the_environment(daemon: DaemonProcess, tmp_path: Path) -> None:
    env = ctl_env(tmp_path)
    env["READERHOST_SOCKET"] = str(daemon.socket_path)
    result = subprocess.run(
        [*CTL, "--json", "status"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "emulator"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["fly"],
        ["pay"],
        ["pay", "twelve"],
        ["pay", "0"],
        ["pay", "100", "--capture", "later"],
        ["pay", "100", "--confirm"],  # asks on a terminal; stdin is not one
        ["get"],
        ["get", "pay_x", "--order", "A-1"],
        ["list", "--state", "lost"],
        ["list", "--since", "yesterday"],
        ["list", "--since", "2026-11-26T08:00:00"],  # no zone
        ["list", "--limit", "-1"],
        ["cancel", "pay_x", "--reason", "bored"],
        ["watch", "--topic", "weather"],
        ["status", "--timeout", "0"],
        ["display", "hi", "--ttl", "soon"],
    ],
)
def test_bad_usage_exits_2(run_ctl: Callable[..., Ran], args: list[str]) -> None:
    result = run_ctl(*args)
    assert result.code == exit_codes.EXIT_USAGE == 2, result
    assert "usage: readerhostctl" in result.stderr
    assert result.stdout == ""


def test_help_documents_the_exit_codes() -> None:
    result = subprocess.run([*CTL, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    for line in exit_codes.EXIT_CODES.splitlines()[1:]:
        assert line in result.stdout
    for code in (0, 1, 2, 3, 4, 5, 130):
        assert f"  {code} " in result.stdout
    for name in COMMANDS:
        assert name in result.stdout
    pay_help = subprocess.run([*CTL, "pay", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert "exit codes:" in pay_help.stdout
    assert "--card NAME" in pay_help.stdout


def test_the_documentation_names_every_command_and_exit_code() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "readerhostctl.md").read_text()
    for name in COMMANDS:
        assert f"readerhostctl {name}" in doc, name
        assert f"## `{name}`" in doc, name
    for code in (0, 1, 2, 3, 4, 5, 130):
        assert f"| {code} |" in doc


# -- long-running commands: followed line by line -------------------------------------------------


def interruptible() -> None:
    """Ctrl-C as a terminal delivers it: a test run started in the background (CI) hands its
    children an ignored SIGINT, which a user's readerhostctl never has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def ctl_process(
    daemon: DaemonProcess, tmp_path: Path, *args: str, at: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [*CTL, "--socket", str(at or daemon.socket_path), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ctl_env(tmp_path),
        preexec_fn=interruptible,  # noqa: PLW1509 - single-threaded enough: it only resets a signal
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_watch_prints_events_until_ctrl_c(daemon: DaemonProcess, tmp_path: Path, run_ctl: Callable[..., Ran]) -> None:
    with ctl_process(daemon, tmp_path, "watch", "--topic", "display", "payment") as watch:
        assert watch.stdout is not None
        assert watch.stderr is not None
        lines = LogLines(watch.stdout)
        lines.until(lambda line: line.startswith("watching display, payment on "))  # subscribed
        assert run_ctl("display", "Hello", "World").code == 0
        shown = lines.until(lambda line: "display.changed" in line)
        assert shown.endswith("Hello | World")
        payment = paid(run_ctl, "1600", "T-WATCH")
        lines.until(lambda line: "payment.state" in line and payment["payment_id"] in line and "authorized" in line)
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=WAIT) == exit_codes.EXIT_INTERRUPTED == 130
        stderr = watch.stderr.read()
        assert stderr == ""


def test_watch_json_ends_with_exit_3_when_the_daemon_stops(tmp_path: Path) -> None:
    # On the daemon's own socket: its log names the peer, which through the relay would be this process.
    with (
        logged_daemon(tmp_path) as (own, log),
        ctl_process(own, tmp_path, "--json", "watch", at=own.daemon_socket_path) as watch,
    ):
        assert watch.stdout is not None
        assert watch.stderr is not None
        lines = LogLines(watch.stdout)
        log.until(lambda line: f"(pid {watch.pid}," in line and line.endswith(": events.subscribe"))
        with Client.connect(own.socket_path) as probe:
            probe.show(["ping"])
        event = json.loads(lines.until(lambda line: True))
        assert (event["topic"], event["type"], event["data"]) == ("display", "display.changed", {"lines": ["ping"]})
        own.process.send_signal(signal.SIGTERM)
        assert watch.wait(timeout=WAIT) == 3
        stderr = watch.stderr.read()
        no_traceback(stderr)
        assert stderr.startswith("readerhostctl: lost the connection to readerhostd")


def test_ctrl_c_while_waiting_for_a_card_cancels_and_exits_130(
    daemon: DaemonProcess, tmp_path: Path, run_ctl: Callable[..., Ran]
) -> None:
    with ctl_process(daemon, tmp_path, "pay", "900", "--order", "T-INT") as pay:
        assert pay.stdout is not None
        assert pay.stderr is not None
        lines = LogLines(pay.stdout)
        lines.until(lambda line: line.startswith("reader: present a card"))
        pay.send_signal(signal.SIGINT)
        assert pay.wait(timeout=WAIT) == 130
        stderr = pay.stderr.read()
        no_traceback(stderr)
        assert stderr.startswith("readerhostctl: payment pay_")
        assert stderr.strip().endswith("canceled")
    assert run_ctl("--json", "get", "--order", "T-INT").json()["state"] == "canceled"


def test_a_reader_that_stops_reading_the_output_is_no_traceback(
    daemon: DaemonProcess, tmp_path: Path, run_ctl: Callable[..., Ran]
) -> None:
    with ctl_process(daemon, tmp_path, "--json", "pay", "950", "--order", "T-PIPE") as pay:
        assert pay.stdout is not None
        assert pay.stderr is not None
        for line in pay.stdout:  # the collection is under way once the reader asks for a card
            if json.loads(line)["type"] == "reader.input_options":
                break
        pay.stdout.close()  # as `| head` does
        assert run_ctl("present", "visa").code == 0  # what pay prints next has nowhere to go
        assert pay.wait(timeout=WAIT) == 1
        assert pay.stderr.read() == ""


# -- on a terminal ------------------------------------------------------------------------------


class Terminal:
    """readerhostctl on a real pty: everything it writes, and what we type."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
            preexec_fn=interruptible,  # noqa: PLW1509 - it only resets a signal
        )  # fmt: skip
        os.close(slave)
        self.output = ""

    def until(self, text: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} not shown; the terminal has {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError as error:  # EIO: the process has exited and closed the terminal
                    if error.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} not shown before the end; the terminal has {self.output!r}")
                self.output += chunk.decode(errors="replace")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        with contextlib.suppress(OSError):
            while True:  # drain what is left, so that the process can finish writing
                ready, _, _ = select.select([self.master], [], [], WAIT)
                if not ready:
                    break
                chunk = os.read(self.master, 4096)
                if not chunk:
                    break
                self.output += chunk.decode(errors="replace")
        code = self.process.wait(timeout=WAIT)
        os.close(self.master)
        return code


def test_pay_on_a_terminal_spins_while_waiting_then_asks_to_proceed(
    daemon: DaemonProcess, tmp_path: Path, run_ctl: Callable[..., Ran]
) -> None:
    terminal = Terminal(
        [*CTL, "--socket", str(daemon.socket_path), "pay", "2500", "--confirm", "--order", "T-TTY"], ctl_env(tmp_path)
    )
    try:
        terminal.until("waiting for a card...")  # the spinner, while nobody presents a card
        assert run_ctl("present", "visa").code == 0
        terminal.until("Proceed with 25.00 USD on visa ****4242 (contactless)? [y/N] ")
        terminal.type("y\n")
        terminal.until("authorized 25.00 USD on visa ****4242")
    except BaseException:
        terminal.process.kill()
        raise
    finally:
        code = terminal.close()
    assert code == 0, terminal.output
    assert "\r" in terminal.output
    no_traceback(terminal.output)
    assert run_ctl("--json", "get", "--order", "T-TTY").json()["state"] == "authorized"


def test_answering_no_on_a_terminal_cancels(daemon: DaemonProcess, tmp_path: Path, run_ctl: Callable[..., Ran]) -> None:
    terminal = Terminal(
        [*CTL, "--socket", str(daemon.socket_path), "pay", "2600", "--confirm", "--card", "visa", "--order", "T-NO"],
        ctl_env(tmp_path),
    )
    try:
        terminal.until("[y/N] ")
        terminal.type("\n")
        terminal.until("canceled: nothing was charged")
    except BaseException:
        terminal.process.kill()
        raise
    finally:
        code = terminal.close()
    assert code == exit_codes.EXIT_NOT_PAID == 5
    assert run_ctl("--json", "get", "--order", "T-NO").json()["state"] == "canceled"


# -- formatting -----------------------------------------------------------------------------------


def test_money_is_shown_with_its_currency() -> None:
    assert formatting.money(1250, "usd") == "12.50 USD"
    assert formatting.money(5, "eur") == "0.05 EUR"
    assert formatting.money(1250, "jpy") == "1250 JPY"
    assert formatting.money(100000, "krw") == "100000 KRW"
    assert formatting.money(123456, "gbp") == "1234.56 GBP"


def test_the_reader_line_tells_a_technician_what_and_where_and_why_not() -> None:
    link = {"transport": "serial", "device": "/dev/readerhost-reader", "connected": True, "last_error": None}
    connected = {
        "state": "ready", "id": "EMU-0001", "model": "readerhost-emulator", "serial": "EMU-0001",
        "firmware": "1.0.0", "battery": 80, "charging": True, "link": link,
    }  # fmt: skip
    assert formatting.reader_text(connected) == (
        "ready: readerhost-emulator EMU-0001 (serial EMU-0001), firmware 1.0.0, battery 80% (charging)"
        " · serial /dev/readerhost-reader"
    )
    why = "cannot open /dev/readerhost-reader: no such device (unplugged?)"
    never = {"state": "connecting", "id": None, "link": {**link, "connected": False, "last_error": why}}
    assert formatting.reader_text(never) == f"connecting · serial /dev/readerhost-reader: {why}"
    lost = {**connected, "state": "disconnected", "link": {**link, "last_error": "the Bluetooth connection dropped"}}
    assert formatting.reader_text(lost).endswith(": the Bluetooth connection dropped")
    simulated = {"state": "ready", "id": "sim-1", "model": "simulated", "serial": "SIM-0001", "battery": None}
    assert formatting.reader_text(simulated) == "ready: simulated sim-1 (serial SIM-0001)"


def test_event_lines_for_a_technician() -> None:
    def event(event_type: str, data: dict[str, Any]) -> Event:
        return Event("t", event_type, 1, "b", "2026-11-26T08:00:00.000Z", data)

    assert formatting.event_summary(event("queue.changed", {"pending": 2, "oldest_age_s": 12.5})) == (
        "2 waiting for Stripe, oldest 12.5 s"
    )
    assert formatting.event_summary(event("system.stripe", {"reachable": False, "consecutive_failures": 3})) == (
        "UNREACHABLE (3 failures in a row)"
    )
    assert formatting.event_summary(event("system.stripe", {"state": "reachable", "reachable": True})) == "reachable"
    assert formatting.event_summary(event("reader.card", {"payment_id": "pay_1", "event": "card_inserted"})) == (
        "pay_1 card inserted"
    )
    assert formatting.event_summary(event("display.changed", {"lines": []})) == "(cleared)"
    deadline = {
        "payment_id": "pay_1",
        "order_id": "A-1",
        "state": "authorized",
        "capture_before": "2026-11-28T08:00:00.000Z",
    }
    assert formatting.event_summary(event("payment.deadline", deadline)) == (
        "pay_1 (order A-1) authorized: capture before 2026-11-28T08:00:00.000Z"
    )
    declined = {
        "payment_id": "pay_1",
        "increment_id": "EV-1-I3",
        "amount": 9500,
        "state": "declined",
        "decline": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "..."},
        "payment": {"currency": "usd"},
    }
    assert formatting.event_summary(event("increment.updated", declined)) == (
        "pay_1 increment EV-1-I3 to 95.00 USD: declined (insufficient_funds)"
    )
    raised = {**declined, "state": "succeeded", "decline": None}
    assert formatting.event_summary(event("increment.updated", raised)) == (
        "pay_1 increment EV-1-I3 to 95.00 USD: succeeded"
    )
    unattended = {"payment_id": "pay_1", "order_id": "A-1", "policy": "capture", "trigger": "deadline"}
    assert formatting.event_summary(event("payment.unattended", unattended)) == (
        "pay_1 (order A-1) left authorised by its POS: [reconcile] unattended = capture (deadline)"
    )
    assert formatting.event_summary(event("something.new", {"a": 1})) == '{"a": 1}'
