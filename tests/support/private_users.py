"""Run a command as systemd runs a service with PrivateUsers=yes: in a new user namespace that maps
only root and the service's own user and group onto themselves; every other uid and gid reads as
the overflow id, nobody (65534). The supplementary groups are set before, as systemd sets them.

    python private_users.py UID GID GROUP,GROUP,... COMMAND [ARG...]    (as root)

Python 3.11 has no os.unshare: libc's unshare(2) through ctypes. Only a process outside the new
namespace (and privileged there) may map ids other than its own: a forked child, still root, writes
the maps, then the command is exec'd in this process (so its pid is the command's).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import NoReturn

CLONE_NEWUSER = 0x10000000  # <linux/sched.h>


def main(argv: list[str]) -> NoReturn:
    uid, gid = int(argv[1]), int(argv[2])
    groups = [int(g) for g in argv[3].split(",") if g]
    command = argv[4:]
    unshared_r, unshared_w = os.pipe()
    mapper = os.fork()
    if mapper == 0:  # the child: waits until its parent is in its namespace, maps it, ends
        os.close(unshared_w)
        os.read(unshared_r, 1)
        target = os.getppid()
        for name, own in (("uid_map", uid), ("gid_map", gid)):
            Path(f"/proc/{target}/{name}").write_text(f"0 0 1\n{own} {own} 1\n")
        os._exit(0)
    os.close(unshared_r)
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare(CLONE_NEWUSER): {os.strerror(error)}")
    os.write(unshared_w, b".")
    _, status = os.waitpid(mapper, 0)
    if status != 0:
        sys.exit("private_users: the uid and gid maps could not be written")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
