"""Phone numbers never appear in clear outside the call that carries them.

A number is kept only as a salted SHA-256 hash (``TOM_NUMBER_HASH_SALT``), enough to count
repeat callers; :class:`CallerInfo` carries the clear value for the call's own use and hides it
from ``repr`` and logs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets


class NumberHasher:
    def __init__(self, salt: str) -> None:
        # Without an operator's salt, a random one: hashes then link calls only within one run.
        self._salt = (salt or secrets.token_hex(16)).encode("utf-8")

    def hash(self, number: str) -> str:
        if not number:
            return ""
        return hashlib.sha256(self._salt + number.encode("utf-8")).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class CallerInfo:
    number_hash: str
    number: str = dataclasses.field(repr=False, default="")
    name: str = dataclasses.field(repr=False, default="")
