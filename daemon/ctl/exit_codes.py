"""readerhostctl's exit codes, and how `--help` explains them (docs/readerhostctl.md lists them too)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_DAEMON = 3
EXIT_DECLINED = 4
EXIT_NOT_PAID = 5
EXIT_BACKUP_FAILED = 6
EXIT_TIMEOUT = 7
EXIT_READER_DOWN = 10
EXIT_STRIPE_DOWN = 11
EXIT_MONEY_AT_RISK = 12
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    done (pay: authorized, captured or queued offline)
  {EXIT_DAEMON_ERROR}    the daemon answered with an error (printed with its reason, e.g. NOT_FOUND)
  {EXIT_USAGE}    usage error (a wrong or missing argument)
  {EXIT_NO_DAEMON}    cannot connect to the daemon, or the connection was lost
  {EXIT_DECLINED}    pay: the card was declined
  {EXIT_NOT_PAID}    pay: the payment was canceled or failed; refund: the refund failed or was canceled
  {EXIT_BACKUP_FAILED}    backup: no copy was made (the reason is printed; nothing was changed)
  {EXIT_TIMEOUT}    no answer from the daemon within --timeout
  {EXIT_READER_DOWN}   status: the reader is not connected
  {EXIT_STRIPE_DOWN}   status: Stripe is unreachable or refuses the API key
  {EXIT_MONEY_AT_RISK}   status: a capture deadline is less than 2 h away (or passed), or a request has
       waited for Stripe for more than an hour (when several hold: 12, then 11, then 10)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); pay cancels a collection still waiting for a card
"""
