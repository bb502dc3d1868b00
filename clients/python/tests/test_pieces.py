"""The client's pieces that need no daemon: errors from answers, the banner, where the socket is.

Standard library only (unittest), so that `python -m unittest discover -s tests` runs them where only
this distribution is installed; the daemon's suite runs them there too (tests/packaging/test_client_dist.py).
"""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from readerhost.client import (
    Busy,
    IncompatibleProtocol,
    InvalidParams,
    MethodNotFound,
    ProtocolError,
    ReaderhostError,
    default_socket_path,
    error_from,
    wire,
)


def banner_line(major: int, minor: int = 0) -> bytes:
    params = {"protocol": {"major": major, "minor": minor}, "daemon": "9", "boot_id": "b", "mode": "test", "x": 1}
    return json.dumps({"jsonrpc": "2.0", "method": "hello", "params": params}).encode() + b"\n"


class ErrorsFromAnswers(unittest.TestCase):
    def test_error_from_maps_codes_and_reasons(self) -> None:
        app = {"code": 1001, "message": "the reader is held", "data": {"reason": "BUSY", "retryable": True}}
        busy = error_from(app)
        self.assertIs(type(busy), Busy)
        self.assertEqual(
            (busy.code, busy.message, busy.reason, busy.retryable, busy.field),
            (1001, "the reader is held", "BUSY", True, None),
        )
        bad = {"code": -32602, "message": "bad", "data": {"reason": "INVALID_PARAMS", "field": "amount"}}
        invalid = error_from(bad)
        self.assertIs(type(invalid), InvalidParams)
        self.assertEqual(invalid.field, "amount")
        for code in (-32700, -32600, -32603):
            self.assertIs(type(error_from({"code": code, "message": "m"})), ProtocolError)
        self.assertIs(type(error_from({"code": -32601, "message": "m"})), MethodNotFound)
        newer = error_from({"code": 1099, "message": "new", "data": {"reason": "SOMETHING_NEW"}})
        self.assertIs(type(newer), ReaderhostError)
        self.assertEqual(newer.reason, "SOMETHING_NEW")
        self.assertIs(type(error_from("garbage")), ProtocolError)
        gone = error_from({"code": 1003, "message": "gone", "data": {"reason": "NOT_FOUND"}})
        self.assertEqual(gone.data, {"reason": "NOT_FOUND"})


class TheBanner(unittest.TestCase):
    def test_the_banner_is_checked(self) -> None:
        banner = wire.parse_banner(banner_line(1, 7))
        self.assertEqual((banner.protocol, banner.daemon, banner.boot_id, banner.mode), ((1, 7), "9", "b", "test"))
        self.assertEqual(banner.params["x"], 1)  # fields a newer daemon adds are kept
        with self.assertRaisesRegex(IncompatibleProtocol, r"protocol 2\.0; this client speaks 1\.x"):
            wire.parse_banner(banner_line(2))
        forbidden_error = {"code": 1006, "message": "no", "data": {"reason": "FORBIDDEN"}}
        refusal = {"jsonrpc": "2.0", "id": None, "error": forbidden_error}
        with self.assertRaises(ReaderhostError) as forbidden:
            wire.parse_banner(json.dumps(refusal).encode())
        self.assertEqual(forbidden.exception.reason, "FORBIDDEN")
        with self.assertRaises(ProtocolError):
            wire.parse_banner(b"HTTP/1.1 400 Bad Request\r\n")


class TheSocketPath(unittest.TestCase):
    def test_the_socket_path_rules(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            here = Path(folder)
            absent = here / "no-system.sock"
            self.assertEqual(default_socket_path({"READERHOST_SOCKET": "/x/api.sock"}, here), Path("/x/api.sock"))
            self.assertEqual(default_socket_path({"READERHOST_SOCKET": "rel.sock"}, here), here / "rel.sock")
            xdg = {"XDG_RUNTIME_DIR": "/run/user/1000"}
            self.assertEqual(
                default_socket_path(xdg, here, system_socket=absent), Path("/run/user/1000/readerhost/api.sock")
            )
            self.assertEqual(default_socket_path({}, here, system_socket=absent), here / "readerhost-api.sock")
            relative = {"XDG_RUNTIME_DIR": "relative"}
            self.assertEqual(default_socket_path(relative, here, system_socket=absent), here / "readerhost-api.sock")
            system = here / "system.sock"
            system.touch()
            self.assertEqual(default_socket_path(xdg, here, system_socket=system), system)
            self.assertEqual(
                default_socket_path({"READERHOST_SOCKET": "/x/api.sock"}, here, system_socket=system),
                Path("/x/api.sock"),
            )


if __name__ == "__main__":
    unittest.main()
