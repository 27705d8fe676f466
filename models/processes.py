"""Whether the process that left a file behind is still running.

Two things a killed run can leave behind name the process that made them: an
export's hidden staging folder (`models.export`) and a training run's
checkpoint owner file (`models.checkpoints`). Before removing or taking over
either, the next run asks `alive(pid)`: a live process (this host) keeps what
it made, a dead one's leftovers are fair game. Standard library only.

Example:

>>> import os
>>> from models import processes
>>> processes.alive(os.getpid())
True
"""

from __future__ import annotations

import os
import socket


def host():
    """This machine's name, as written into the names of files a run leaves behind."""
    return socket.gethostname() or "localhost"


def alive(pid):
    """Whether process `pid` of this host is running (a zombie counts as dead).

    Args:
        pid: a process id.

    Returns:
        `True` when the process exists and has not exited. Without permission
        to signal it (another user's process), it counts as alive.
    """
    if not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"`pid` must be an integer > 0. Received: pid={pid!r}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. Windows: an unknown pid
        return False
    try:  # Linux: an exited child that its parent has not reaped yet is state Z
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True
