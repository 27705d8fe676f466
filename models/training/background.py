"""Work that need not block training: one job at a time on a thread of its own, in order.

`models.training.checkpoints.Checkpoint` hands its file writes (serialize,
fsync, rename: 10-25 ms on 2 cores) to a `Serial`, so the next epoch runs
while the last one's state goes to disk. The caller snapshots what a job
needs before submitting it (the job must not read anything training goes on
changing). Jobs run in submission order, never two at once; a job's
exception is raised again in the caller's thread, at the next `submit` or
`wait`.

Example:

>>> from models.training.background import Serial
>>> jobs = Serial()
>>> done = []
>>> jobs.submit(done.append, 1)
>>> jobs.wait()
>>> done
[1]
>>> jobs.submit(int, "x")  # its error comes back at the next wait or submit
>>> jobs.wait()
Traceback (most recent call last):
    ...
ValueError: invalid literal for int() with base 10: 'x'
"""

from __future__ import annotations

import threading


class Serial:
    """Runs submitted jobs one after another on a background thread."""

    def __init__(self):
        self._thread = None
        self._error = None

    @property
    def busy(self):
        """Whether a job is still running."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job, *args):
        """Waits for the previous job, then starts `job(*args)` in the background.

        Raises:
            Exception: what the previous job raised (this one is not started then).
        """
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(job, args),
                                        name="models.training.background", daemon=False)
        self._thread.start()

    def wait(self):
        """Blocks until the running job (if any) ends; raises what it raised."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self, job, args):
        try:
            job(*args)
        except BaseException as error:  # handed to the caller's thread
            self._error = error
