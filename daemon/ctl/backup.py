"""`readerhostctl backup PATH`: a consistent copy of the payment store, taken while the daemon runs.

The daemon says where its store is (status.get); the copy is made here, through a read-only
connection of this process (daemon/payments/backup.py), so the daemon never writes a file a socket
client named."""

from __future__ import annotations

import argparse
from pathlib import Path

from readerhost.client import Client

from .exit_codes import EXIT_BACKUP_FAILED, EXIT_OK
from .output import Output, fail


def cmd_backup(client: Client | None, args: argparse.Namespace, out: Output) -> int:
    """With --store no daemon is asked (client is None): the daemon may be stopped."""
    # Imported here: the other commands keep readerhostctl's start light (no store code).
    from readerhost.daemon.payments.backup import BackupError, backup

    if args.store is not None:
        store = Path(args.store)
    else:
        assert client is not None
        path = (client.status().get("store") or {}).get("path")
        if not isinstance(path, str) or not path:
            return fail(
                "the daemon did not say where its store is (an older readerhostd?): give --store FILE",
                EXIT_BACKUP_FAILED,
            )
        store = Path(path)
    target = Path(args.path)
    try:
        summary = backup(store, target)
    except (BackupError, OSError) as error:
        return fail(f"no backup made: {getattr(error, 'strerror', None) or error}", EXIT_BACKUP_FAILED)
    if out.json:
        out.document({"store": str(store), "backup": str(target), **vars(summary)})
    else:
        out.line(f"backed up {store} to {target}: {summary.describe()}")
    return EXIT_OK
