"""Who did it, for the audit log, when it was done on the server rather than the dashboard."""

from __future__ import annotations

import getpass
import os


def cli_actor() -> str:
    """``cli:<unix user>``: the account that ran a ``migrantline`` command.

    Why the Unix user: commands run on the server have no operator signed in,
    yet a supervisor reading the audit log must see that an account was
    changed, or data purged, and by whom.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the uid says enough
        user = f"uid {os.getuid()}"
    return f"cli:{user}"
