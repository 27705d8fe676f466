"""The two kinds of failure a user can meet, and their exit statuses.

`UsageError` (exit 2): the command line asked for something that does not
exist or is out of range; nothing ran. `RunError` (exit 1): the run started and
could not finish, for a reason the message names (bad data, a diverging loss, a
missing GPU). Both carry a one-paragraph message that names the cause and the
fix; the CLI prints it without a traceback unless `--debug` is given.
"""


class UsageError(Exception):
    """A bad command line: unknown recipe, bad option value. Exit status 2."""

    exit_status = 2


class RunError(Exception):
    """A run that could not finish, with the cause and the fix. Exit status 1."""

    exit_status = 1
