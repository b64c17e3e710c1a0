"""The daemon's secrets (tokens, API keys), kept out of its own environment block once it has read them.

An unsandboxed agent runs as the daemon's user and can read `/proc/<daemon pid>/environ`: the environment the
daemon was started with, as the kernel keeps it at the top of its stack, whatever `os.environ` says later. So
`seal(names)` reads each secret once, keeps it in this module, removes it from `os.environ` and overwrites its
bytes in that original block. From then on `get(name)` is the only way to a secret, and it is passed per call
(an HTTP header, one git command's environment), never through the daemon's environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterable

_vault: dict[str, str] = {}


def get(name: str | None) -> str | None:
    """The secret held in variable `name`: sealed at start-up, or (before `seal`, in tools and tests) the
    environment's."""
    if not name:
        return None
    return _vault.get(name) or os.environ.get(name) or None


def _scrub_original_block(names: set[str]) -> None:
    """Overwrite `NAME=value` in the C environment (the strings /proc/<pid>/environ shows) before unsetting."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        libc = ctypes.CDLL(None)
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
        i = 0
        while environ[i]:
            addr = environ[i]
            entry = ctypes.string_at(addr)
            name, sep, value = entry.partition(b"=")
            if sep and name.decode(errors="replace") in names and value:
                ctypes.memset(addr + len(name) + 1, ord("x"), len(value))
            i += 1


def seal(names: Iterable[str]) -> list[str]:
    """Move the secrets `names` from the environment into the daemon's memory; returns the names moved."""
    wanted = {n for n in names if n and os.environ.get(n)}
    _vault.clear()
    for name in wanted:
        _vault[name] = os.environ[name]
    _scrub_original_block(wanted)
    for name in wanted:
        os.environ.pop(name, None)
    return sorted(wanted)


def sealed() -> list[str]:
    return sorted(_vault)


def unseal() -> None:
    """Put the secrets back into `os.environ` (when `run` returns inside a longer-lived process, e.g. a test)."""
    for name, value in _vault.items():
        os.environ[name] = value
    _vault.clear()
