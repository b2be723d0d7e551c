"""API keys: who calls the 124 service API, and as what.

A key is ``s124_<id>_<secret>``: ``id`` names the entry in the key file, ``secret`` is 256 random
bits. The file (``<home>/api-keys.json`` unless ``SAMT124_API_KEYS`` says otherwise, written with
mode 0600) keeps only the SHA-256 of the secret — enough for a secret that cannot be guessed, and
a stolen file opens nothing. A key is shown once, when it is made (``samt124 keys add``).

Roles:

- ``publisher``: an upstream system (the 124 call centre, the web portal, the mobile app): it
  submits requests on its ``channel`` and reads the ones it submitted;
- ``body``: a body that answers requests (``samt-org:IR-23``, ``khaneh-samt:IR-30``): it reads
  and acts on the requests it holds, and no others;
- ``ministry``: headquarters (``samt-hq``): reads every request, reopens, transfers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from samt124.domain.events import Channel
from samt124.domain.lifecycle import HEADQUARTERS

Role = Literal["publisher", "body", "ministry"]
ROLES: tuple[str, ...] = get_args(Role)
CHANNELS: tuple[str, ...] = get_args(Channel)
PREFIX = "s124"
RECHECK_SECONDS = 1.0  # how often authenticating looks for another process's change to the file
_KEY = re.compile(rf"{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9\-_]{{43}})")
BODY = re.compile(r"(samt-org|khaneh-samt|association):IR-\d\d|ministry:[a-z\-]+|samt-hq")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")


class KeyProblem(ValueError):
    """A key entry that cannot be made as asked (a bad role, body, channel or name)."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name and role, the body it acts for, the channel it submits on."""

    key_id: str
    name: str
    role: Role
    body: str | None = None  # body role: its id; ministry: headquarters
    channel: Channel = "WEB_PORTAL"  # publisher role


@dataclass(frozen=True)
class Entry:
    key_id: str
    name: str
    role: Role
    body: str | None
    channel: Channel
    digest: str  # SHA-256 of the secret, hex
    created: str
    revoked: str | None = None

    def caller(self) -> Caller:
        return Caller(self.key_id, self.name, self.role, self.body, self.channel)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_entry(name: str, role: str, body: str | None, channel: str | None) -> None:
    if not NAME.fullmatch(name):
        raise KeyProblem(f"name {name!r}: letters, digits, '.', '_' or '-', at most 64")
    if role not in ROLES:
        raise KeyProblem(f"role {role!r}: one of {', '.join(ROLES)}")
    if role == "body" and (body is None or not BODY.fullmatch(body) or body == HEADQUARTERS):
        raise KeyProblem(
            f"body {body!r}: a body key names its body, e.g. samt-org:IR-23 or khaneh-samt:IR-30"
        )
    if role != "body" and body is not None:
        raise KeyProblem(f"--body is for body keys only (role {role})")
    if channel is not None and channel not in CHANNELS:
        raise KeyProblem(f"channel {channel!r}: one of {', '.join(CHANNELS)}")


class KeyStore:
    """The key file: read again when its modification time changes, written atomically.

    Authenticating looks at the file at most every ``recheck`` seconds, so a key added or revoked
    by another process (``samt124 keys``) counts within that time (a key not known yet sends it
    to the file at once); this store's own changes count at once."""

    def __init__(self, path: Path, *, recheck: float = RECHECK_SECONDS) -> None:
        self.path = path
        self.recheck = recheck
        self._entries: dict[str, Entry] = {}
        self._seen: tuple[int, int] | None = None
        self._looked = -math.inf  # time.monotonic() of the last look at the file

    def entries(self) -> list[Entry]:
        self._reload()
        return sorted(self._entries.values(), key=lambda e: (e.created, e.key_id))

    def add(
        self, name: str, role: str, *, body: str | None = None, channel: str | None = None
    ) -> tuple[Entry, str]:
        """A new key: the entry, and the key itself (shown once, stored nowhere)."""
        check_entry(name, role, body, channel)
        self._reload()
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        entry = Entry(
            key_id=key_id,
            name=name,
            role=role,  # type: ignore[arg-type]
            body=HEADQUARTERS if role == "ministry" else body,
            channel=(channel or "WEB_PORTAL"),  # type: ignore[arg-type]
            digest=_digest(secret),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._entries[key_id] = entry
        self._save()
        return entry, f"{PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id_or_name: str) -> list[Entry]:
        """Revoke the key with this id, or every live key with this name; the entries revoked."""
        self._reload()
        hits = [
            e
            for e in self._entries.values()
            if e.revoked is None and key_id_or_name in (e.key_id, e.name)
        ]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for entry in hits:
            self._entries[entry.key_id] = replace(entry, revoked=now)
        if hits:
            self._save()
        return hits

    def authenticate(self, key: str) -> Caller | None:
        """The caller a presented key belongs to; ``None`` for a wrong, unknown or revoked key."""
        match = _KEY.fullmatch(key.strip())
        if match is None:
            return None
        if time.monotonic() - self._looked >= self.recheck:
            self._reload()
        entry = self._entries.get(match.group(1))
        if entry is None:  # a key added since the last look works at once
            self._reload()
            entry = self._entries.get(match.group(1))
        if entry is None or entry.revoked is not None:
            return None
        if not hmac.compare_digest(entry.digest, _digest(match.group(2))):
            return None
        return entry.caller()

    def _reload(self) -> None:
        self._looked = time.monotonic()
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._seen = {}, None
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        self._entries = {row["key_id"]: Entry(**row) for row in data["keys"]}
        self._seen = seen

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [asdict(e) for e in sorted(self._entries.values(), key=lambda e: e.key_id)]
        text = json.dumps({"keys": rows}, indent=1, ensure_ascii=False) + "\n"
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, self.path)
        self._seen = None
