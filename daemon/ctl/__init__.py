"""`readerhostctl`: the technician's and scripts' command line for readerhostd.

It talks to the daemon over its socket with the blocking client (readerhost.client) and imports
nothing heavy: no stripe, none of the daemon's machinery. Human output by default; `--json` gives
one JSON document per result, and JSON lines for `watch` and `pay`'s progress. Errors are one
line on stderr, never a traceback; the exit code says what happened (see exit_codes.py and
docs/readerhostctl.md).

The modules, by job: cli (one run: checks, connection, errors to exit codes), arguments (what the
command line accepts), commands (every command but pay), pay (the pay flow), output (human lines
or JSON documents), formatting (payments, money and events as text), exit_codes.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
