"""The POS socket API: JSON-RPC 2.0 lines over a Unix socket (docs/pos-protocol.md)."""
