"""Storage faults: a full state directory (a small tmpfs in a private mount namespace), a read-only
one, a database file corrupted or truncated before start. The daemon refuses new payments or
refuses to start, with a clear message; it never recreates the store and never loses what it
committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.support import JsonLines, daemon_config, daemon_env, pay, readerhostd, workdir

STORE = Path("state") / "readerhost" / "readerhost.db"


def start_fails(folder: Path) -> subprocess.CompletedProcess[str]:
    """readerhostd started on `folder`'s store, expected to refuse."""
    config = folder / "readerhost.toml"
    config.write_text(daemon_config())
    return subprocess.run(
        [sys.executable, "-m", "readerhost.daemon.app", "--config", str(config)],
        env=daemon_env(folder), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def paid_store() -> Iterator[Path]:
    """A store with committed payments: one captured, one authorised (a daemon that ran and stopped)."""
    with workdir("rel-st-") as folder:
        with readerhostd(daemon_config(), folder=folder) as daemon:

            async def sell() -> None:
                client = await JsonLines.connect(daemon.socket_path, ("payment", "reader"))
                await pay(client, "S-1")
                await client.close()

            asyncio.run(sell())
        yield folder / STORE


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated to nothing":
        path.write_bytes(b"")
    elif how == "truncated to half":
        path.write_bytes(data[: len(data) // 2])
    elif how == "header overwritten":
        path.write_bytes(b"\x00garbage" * 16 + data[128:])
    else:  # pages overwritten
        path.write_bytes(data[:4096] + bytes(range(256)) * ((len(data) - 4096) // 256))


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("truncated to nothing", r"is empty \(truncated\?\): refusing to start over"),
        ("truncated to half", r"(is damaged|cannot be read \(database disk image is malformed\)); it is kept"),
        ("header overwritten", r"cannot be read \(file is not a database\); it is kept as it is"),
        ("pages overwritten", r"(is damaged|cannot be read \(database disk image is malformed\))"),
    ],
)
def test_a_damaged_store_stops_the_start_and_is_kept_as_it_is(paid_store: Path, how: str, said: str) -> None:
    with workdir("rel-dmg-") as folder:
        store = folder / STORE
        store.parent.mkdir(parents=True)
        shutil.copy(paid_store, store)
        damage(store, how)
        before = digest(store)
        done = start_fails(folder)
        assert done.returncode == 1, done.stderr
        assert re.search(said, done.stderr), done.stderr
        assert str(store) in done.stderr
        assert digest(store) == before  # never rewritten, never started over
        assert sorted(p.name for p in store.parent.iterdir()) == ["readerhost.db"]


def namespace_problem() -> str | None:
    if os.geteuid() != 0:
        return "a tmpfs in a private mount namespace needs root"
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    return f"unshare -m with a tmpfs mount failed: {probe.stderr.strip()}" if probe.returncode else None


needs_namespace = pytest.mark.skipif(namespace_problem() is not None, reason=str(namespace_problem()))


@contextlib.contextmanager
def tmpfs_state(folder: Path, size: str) -> Iterator[tuple[int, Path]]:
    """A process holding a private mount namespace where `folder`/state is a tmpfs of `size`;
    yields its pid and the state folder as seen from here (through /proc/PID/root)."""
    state = folder / "state"
    state.mkdir()
    holder = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs -o size={size} tmpfs "$1" && echo mounted && exec sleep 3600', "sh", str(state)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "mounted"
        yield holder.pid, Path(f"/proc/{holder.pid}/root") / state.relative_to("/")
    finally:
        holder.kill()
        holder.wait()


def in_namespace(pid: int) -> list[str]:
    return ["nsenter", f"--target={pid}", "--mount", "--"]


def fill(folder: Path) -> Path:
    """Write until the file system is full; the filler file."""
    filler = folder / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


BIG_METADATA = {f"k{i}": "x" * 500 for i in range(40)}  # about 20 KB a payment: the WAL grows fast


@needs_namespace
def test_a_full_state_directory_refuses_new_payments_and_loses_nothing() -> None:
    with workdir("rel-full-") as folder, tmpfs_state(folder, "2m") as (holder, state):
        with readerhostd(daemon_config(), folder=folder, wrapper=in_namespace(holder)) as daemon:

            async def scenario() -> tuple[list[str], str]:
                client = await JsonLines.connect(daemon.socket_path, ("payment", "reader"))
                committed = [await pay(client, "FULL-0")]
                filler = fill(state)
                refusal = ""
                for number in range(1, 200):
                    try:
                        started = await client.call(
                            "payment.start",
                            {"order_id": f"FULL-{number}", "amount": 1000, "currency": "usd", "metadata": BIG_METADATA},
                        )
                    except RuntimeError as error:  # the daemon's error answer
                        refusal = str(error)
                        break
                    committed.append(started["payment_id"])
                    with contextlib.suppress(RuntimeError):
                        await client.call("payment.cancel", {"payment_id": started["payment_id"]})
                assert "STORAGE_UNAVAILABLE" in refusal, refusal
                assert "full" in refusal
                assert (await client.call("status.get"))["mode"] == "emulator"  # still serving
                filler.unlink()
                for payment_id in committed[1:]:  # what was left open is finished now that there is room
                    with contextlib.suppress(RuntimeError):
                        await client.call("payment.cancel", {"payment_id": payment_id})
                committed.append(await pay(client, "FULL-after"))
                await client.close()
                return committed, refusal

            committed, _ = asyncio.run(scenario())
        # Restarted on the same tmpfs: every payment it accepted is there, the paid ones captured.
        with readerhostd(daemon_config(), folder=folder, wrapper=in_namespace(holder)) as daemon:

            async def states() -> dict[str, str]:
                client = await JsonLines.connect(daemon.socket_path)
                found = {p: (await client.call("payment.get", {"payment_id": p}))["state"] for p in committed}
                await client.close()
                return found

            after = asyncio.run(states())
        assert after[committed[0]] == after[committed[-1]] == "captured"
        assert set(after.values()) <= {"captured", "canceled"}


@needs_namespace
def test_a_read_only_state_directory_stops_the_start_with_a_clear_message() -> None:
    """(While the daemon runs, the kernel refuses to make its file system read-only: the store is
    open for writing. A disk that fails read-only at run time looks like the full one above.)"""
    with workdir("rel-ro-") as folder, tmpfs_state(folder, "8m") as (holder, state):
        remount = [*in_namespace(holder), "mount", "-o"]
        with readerhostd(daemon_config(), folder=folder, wrapper=in_namespace(holder)) as daemon:

            async def scenario() -> None:
                client = await JsonLines.connect(daemon.socket_path, ("payment", "reader"))
                await pay(client, "RO-1")
                await client.close()

            asyncio.run(scenario())
        store = state / "readerhost" / "readerhost.db"
        before = digest(store)
        subprocess.run([*remount, "remount,ro", str(folder / "state")], check=True, timeout=10)
        config = folder / "readerhost.toml"
        done = subprocess.run(
            [*in_namespace(holder), sys.executable, "-m", "readerhost.daemon.app", "--config", str(config)],
            env=daemon_env(folder), capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert "cannot be written" in done.stderr, done.stderr
        assert str(folder / STORE) in done.stderr
        assert digest(store) == before
