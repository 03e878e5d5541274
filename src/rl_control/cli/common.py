"""What every `rl-control` command shares: exit statuses and one-line errors."""
from __future__ import annotations

import sys

EXIT_USAGE = 2


def fail(message: str, status: int) -> int:
    """Print `message` as one error line; returns `status`."""
    print(f'rl-control: error: {message}', file=sys.stderr)
    return status


def flush_c_stdio() -> None:
    """Flush Python and C stdio (pybullet printf()s on stdout)."""
    sys.stdout.flush()
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass
