"""The worker's state rebuilt from the intake, the system of record (``samt124 worker --rebuild``).

The worker's state is a projection of the intake: each request's state and clocks on the
compacted changelogs, a copy of them in each worker's local store, and the worker group's
committed intake offsets. A rebuild forgets all three and lets the worker read the intake again
from its first message, deciding every request anew with the rules in force. What it publishes
again (province copies, referrals, SLA facts) carries the ids it carried the first time, so the
repeats collapse downstream like any at-least-once repeat.

Every worker's local store belongs to one changelog: the topic id of the request changelog it
was built from is kept beside it (``changelog.id``). A worker that starts and finds another id
(the changelog was deleted and made again, by a rebuild or by hand) discards its store instead
of keeping states the changelog no longer has; so the other hosts of a rebuilt worker group
need only to be started again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from samt124.errors import CommandFailed
from samt124.kafka.admin import admin_client
from samt124.kafka.topics import Topics
from samt124.settings import Settings

STORE_ID = "changelog.id"  # beside a worker's local store: the changelog it was built from
EMPTY_WAIT = 45.0  # seconds to wait for the group to empty (a worker's session is 30 s)
DELETED_WAIT = 60.0  # seconds to wait for the broker to forget the deleted changelogs


def store_verdict(recorded: str | None, current: str | None, has_store: bool) -> str:
    """What a starting worker does with its local store: ``"keep"`` it, ``"discard"`` it (it
    was built from a changelog that no longer exists), or ``"adopt"`` the changelog (no
    record yet: a store from before the records, or none at all)."""
    if current is None or recorded == current:
        return "keep"
    if recorded is None:
        return "adopt"
    return "discard" if has_store else "adopt"


def check_store(datadir: Path, current: str | None) -> str:
    """Keep, discard or adopt the local store in ``datadir`` (:func:`store_verdict`) against
    ``current``, the request changelog's topic id now (:func:`changelog_id`); returns the
    verdict."""
    marker = datadir / STORE_ID
    recorded = marker.read_text().strip() if marker.exists() else None
    has_store = datadir.exists() and any(p.name != STORE_ID for p in datadir.iterdir())
    verdict = store_verdict(recorded, current, has_store)
    if verdict == "discard":
        for path in datadir.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    if verdict != "keep":
        datadir.mkdir(parents=True, exist_ok=True)
        if current is not None:
            marker.write_text(current + "\n")
    return verdict


def changelog_id(settings: Settings) -> str | None:
    """The topic id of the request changelog (``None`` while it does not exist)."""
    topic = Topics(settings.topic_namespace).changelog("requests")
    with admin_client(settings) as admin:
        for described in admin.describe_topics([topic]):
            if described.get("name") == topic and not described.get("error_code"):
                found = described.get("topic_id")
                return str(found) if found else None
    return None


def rebuild(
    settings: Settings,
    *,
    group: str,
    instance: str,
    datadir: Path,
    say: Callable[[str], None],
    empty_wait: float = EMPTY_WAIT,
) -> None:
    """Forget the worker group's state: its committed offsets, its changelogs and this
    worker's local store. The caller holds this worker's home lock and starts it afterwards."""
    from kafka.admin import MemberToRemove
    from kafka.errors import GroupIdNotFoundError, UnknownMemberIdError

    topics = Topics(settings.topic_namespace)
    changelogs = topics.changelogs()
    with admin_client(settings) as admin:
        # this worker stopped without leaving (a static member stays for its session): it
        # cannot be running, its home is locked by the caller
        try:
            removed = admin.remove_group_members(
                group, [MemberToRemove(group_instance_id=instance, reason="rebuild")]
            )
        except (GroupIdNotFoundError, UnknownMemberIdError):
            removed = {}  # no such group, or not a member of it
        for error in _error_names(removed):
            if error not in ("NoError", UnknownMemberIdError.__name__):
                say(f"removing {instance} from {group}: {error}")
        deadline = time.monotonic() + empty_wait
        others = _members(admin, group)
        if others:
            say(f"waiting up to {empty_wait:.0f} s for {group} to empty: {', '.join(others)}")
        while others and time.monotonic() < deadline:
            time.sleep(1.0)
            others = _members(admin, group)
        if others:
            raise CommandFailed(
                f"workers still run in {group}: {', '.join(others)}",
                "stop every worker of the group first (with --leave-on-stop they leave at once)",
            )
        for error in _error_names(admin.delete_groups([group])):
            if error not in ("OK", "NoError", GroupIdNotFoundError.__name__):
                raise CommandFailed(
                    f"cannot delete the offsets of {group}: {error}",
                    "run it again; nothing has been deleted yet",
                )
        say(f"deleted the committed offsets of {group}")
        existing = set(admin.list_topics())
        doomed = [name for name in changelogs if name in existing]
        if doomed:
            admin.delete_topics(doomed, raise_errors=False)
            deadline = time.monotonic() + DELETED_WAIT
            while set(admin.list_topics()) & set(doomed):
                if time.monotonic() > deadline:
                    raise CommandFailed(
                        f"the broker has not deleted {', '.join(doomed)} yet",
                        "run `samt124 worker --rebuild` again once it has",
                    )
                time.sleep(0.5)
        say(f"deleted {', '.join(doomed) or 'no changelog (there was none)'}")
    if datadir.exists():
        shutil.rmtree(datadir)
        say(f"deleted the local store {datadir}")


def _members(admin: Any, group: str) -> list[str]:
    described = admin.describe_groups([group]).get(group, {})
    return sorted(
        str(m.get("group_instance_id") or m.get("client_id"))
        for m in described.get("members") or []
    )


def _error_names(result: dict[str, Any]) -> Iterator[str]:
    """The errors of an admin call's answer per group or member: an error class, or its name
    (``"OK"`` for none: kafka-python's ``delete_groups``)."""
    for error in result.values():
        yield error if isinstance(error, str) else error.__name__
