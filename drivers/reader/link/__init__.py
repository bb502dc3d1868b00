"""The reader link protocol: codec, host session and transports (docs/reader-link-protocol.md)."""
