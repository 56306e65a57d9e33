"""The app's port on 127.0.0.1: a free one when PORT is unset, a refusal when a set PORT is taken,
and the proof that whatever listens there is the app this runtime started (not a leftover
runtime's app or an unrelated server, which would receive writes meant for our database)."""
from __future__ import annotations

import errno
import os
import socket


class PortTaken(Exception):
    """Another process already listens on the port."""


def free_port() -> int:
    """A port nobody listens on now; the app binds it a moment later (the owner check covers the gap)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortTaken(f"PORT {port} is already in use by another process: stop it, set PORT to a free "
                            f"port, or leave PORT unset and the runtime picks a free one") from None


def listener_inodes(port: int, proc: str = "/proc") -> set[int] | None:
    """Socket inodes listening on `port` (IPv4 and IPv6), or None where /proc cannot tell (not Linux)."""
    found, readable = set(), False
    for table in ("net/tcp", "net/tcp6"):
        try:
            with open(os.path.join(proc, table)) as lines:
                rows = lines.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(int(fields[9]))
    return found if readable else None


def process_tree(root: int, proc: str = "/proc") -> set[int]:
    """`root` and every process descended from it (an npm script starts node as a child)."""
    parents: dict[int, int] = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                with open(os.path.join(proc, entry, "stat")) as stat:
                    # The command name is parenthesised and may hold spaces: the ppid follows the last ')'.
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return tree


def socket_inodes(pids: set[int], proc: str = "/proc") -> set[int]:
    inodes = set()
    for pid in pids:
        fd_dir = os.path.join(proc, str(pid), "fd")
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(os.path.join(fd_dir, name))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def owned_by(port: int, pid: int, proc: str = "/proc") -> bool | None:
    """Whether the listener on `port` belongs to `pid` or its descendants; None if this system
    cannot tell (no /proc), in which case only the check before the start protects the port."""
    listening = listener_inodes(port, proc)
    if listening is None:
        return None
    return bool(listening & socket_inodes(process_tree(pid, proc), proc))
