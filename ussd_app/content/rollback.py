"""``migrantline content rollback``: serve the previous version of the mirror again."""

from __future__ import annotations

import time

from ussd_app import settings
from ussd_app.content.files import fsync_dir, symlink
from ussd_app.content.mirror import Mirror
from ussd_app.content.sync import Result, data_dir


def rollback(config: settings.Config) -> Result:
    """Serve the previous version again; sync leaves it until a newer one is published."""
    mirror = Mirror(data_dir(config) / "content")
    if not mirror.root.is_dir():
        return Result("failed", f"nothing was ever synced into {mirror.root}: there is no "
                      "version to go back to")
    with mirror.locked() as holder:
        if holder is not None:
            return Result("busy", f"a sync is running ({holder}); roll back when it ends",
                          version=mirror.current())
        current, previous = mirror.current(), mirror.previous()
        if not previous or previous == current:
            return Result("failed", "there is no previous version to go back to (one is kept "
                          "from the second sync on)", version=current)
        state = mirror.read_state()
        left, back = mirror.manifest(current), mirror.manifest(previous)
        try:
            symlink(mirror.previous_link, f"versions/{current}")
            symlink(mirror.current_link, f"versions/{previous}")
            fsync_dir(mirror.root)
        except OSError as exc:
            return Result("failed", mirror.disk_message(exc), version=mirror.current())
        newer = left is not None and back is not None and left.created > back.created
        state["rolled_back_from"] = ({"version": current, "created": left.created.isoformat()}
                                     if newer and left else None)
        state.update({"result": "rolled back", "version": previous, "last_attempt": time.time(),
                      "message": f"rolled back from {current} to {previous}"})
        mirror.write_state(state)
        message = f"now serving version {previous} again; {current} is kept as the previous one"
        if newer:
            message += ("; sync will not install it again, only a version published after it")
        return Result("rolled back", message, version=previous, code=0)
