"""The readerhost daemon (`readerhostd`): configuration, POS API, payments, UI and systemd integration."""
