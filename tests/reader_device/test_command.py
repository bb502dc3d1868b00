"""`readerhost-reader-emulator` as a command: flags, the control channel's answers to bad input,
stopping on a signal, and running on after stdin closes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.link_host import MODULE, device_messages

from readerhost.drivers.reader.link.codec import MessageType

from .conftest import OpenHost, StartEmulator

SCRIPT = Path(sys.executable).parent / "readerhost-reader-emulator"
COLLECT = {"collection": 1, "amount": 990, "currency": "gbp", "wait_s": 30}


@pytest.mark.parametrize("how", ["module", "script"])
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_runs_until_a_signal_then_exits_0_and_removes_the_link(
    start_emulator: StartEmulator, open_host: OpenHost, tmp_path: Path, how: str, stop_with: signal.Signals
) -> None:
    if how == "script" and not SCRIPT.exists():
        pytest.fail(f"{SCRIPT} is not installed: run ./dev setup")
    link = tmp_path / "reader"
    emulator = start_emulator("--link", str(link), command=[str(SCRIPT)] if how == "script" else MODULE)
    assert emulator.line() == f"link: {link}"
    assert open_host(str(link)).hello().type is MessageType.WELCOME

    status, stderr = emulator.stop(stop_with)

    assert status == 0, stderr
    assert "Traceback" not in stderr
    assert not link.is_symlink()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--card", "visa_platinum"], "unknown test card"),
        (["--battery", "200"], "battery"),
        (["--battery", "full"], "--battery"),
        (["--prompt", "smile"], "display message"),
        (["--error", "oops"], "error code"),
        (["--versions", "one"], "--versions"),
        (["--ble-name", "shop"], "go with --ble"),
        (["--ble", "usb:0", "--link", "reader"], "--link"),
        (["--ble", "usb:0", "--ble-address", "00:11:22:33:44:55"], "random static address"),
        (["--ble", "usb:0", "--ble-address", "C0:DE"], "random static address"),
    ],
)
def test_bad_flags_exit_2_with_a_message(flags: list[str], named: str) -> None:
    finished = subprocess.run([*MODULE, *flags], capture_output=True, text=True, timeout=30, check=False)

    assert finished.returncode == 2
    assert named in finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""


def test_a_link_over_a_real_file_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "reader"
    taken.write_text("not a link")

    finished = subprocess.run([*MODULE, "--link", str(taken)], capture_output=True, text=True, timeout=30, check=False)

    assert finished.returncode == 1
    assert "not a symlink" in finished.stderr
    assert taken.read_text() == "not a link"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("present visa", "not JSON"),
        ('["present", "visa"]', "JSON object"),
        ("{}", "JSON object"),
        ('{"dance": true}', "unknown command"),
        ('{"present": "visa", "unplug": true}', "one command per line"),
        ('{"present": 7}', "test card"),
        ('{"present": "visa"}', "no collection is waiting"),
        ('{"present": "nope"}', "unknown test card"),
        ('{"garble_next": 0}', "garble_next"),
        ('{"battery": "low"}', "battery"),
        ('{"battery": 101}', "0-100"),
        ('{"stop_answering": "yes"}', "true or false"),
        ('{"script": {"card": "nope"}}', "unknown test card"),
        ('{"script": {"speed": 3}}', "unknown script field"),
        ('{"script": {"prompts": "retry_card"}}', "list of strings"),
        ('{"replug": 1}', "takes true"),
    ],
)
def test_bad_control_input_gets_an_error_line_and_the_emulator_goes_on(
    start_emulator: StartEmulator, line: str, says: str
) -> None:
    emulator = start_emulator()

    answer = emulator.control(line)

    assert set(answer) == {"error"}
    assert says in answer["error"]
    assert emulator.control({"status": True})["ok"] is True
    status, stderr = emulator.stop()
    assert status == 0
    assert "Traceback" not in stderr


def test_a_script_command_changes_the_next_collection(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator()
    host = open_host(emulator.pty)
    host.hello()

    assert emulator.control({"script": {"card": None, "prompts": ["insert_card"], "input_options": ["insert"]}}) == {
        "ok": True
    }
    host.send(MessageType.COLLECT, COLLECT)
    emulator.event("collecting")
    assert emulator.control({"status": True}) == {"ok": True, "pty": emulator.pty, "collecting": 1, "received": 3}
    assert emulator.control({"present": "discover"}) == {"ok": True}
    messages = device_messages(host.until(MessageType.COLLECTED))

    assert [m.type for m in messages] == [MessageType.INPUT_OPTIONS, MessageType.DISPLAY_MESSAGE, MessageType.COLLECTED]
    assert messages[0].body["options"] == ["insert"]
    assert messages[2].body["brand"] == "discover"


def test_end_of_stdin_only_ends_the_control_channel(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator()
    emulator.end_control()

    host = open_host(emulator.pty)
    assert host.hello().type is MessageType.WELCOME
    host.send(MessageType.COLLECT, COLLECT)
    assert device_messages(host.until(MessageType.COLLECTED))[-1].body["brand"] == "visa"
    assert emulator.process.poll() is None
    status, _ = emulator.stop()
    assert status == 0


def test_without_a_control_channel_it_runs_all_the_same(open_host: OpenHost) -> None:
    process = subprocess.Popen([*MODULE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("pty: ")
        assert open_host(line.removeprefix("pty: ").strip()).hello().type is MessageType.WELCOME
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert b"Traceback" not in stderr
