"""Argon2id password hashes (argon2-cffi), implementing core.accounts.PasswordHasher.

The encoded hash carries its parameters (``$argon2id$v=19$m=65536,t=3,p=4$salt$hash``), so hashes
made with older parameters still verify and are re-hashed at the next sign-in (needs_rehash)."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2Hasher:
    """argon2-cffi's recommended Argon2id parameters (RFC 9106, low-memory: 64 MiB, 3 passes) unless
    given; tests may pass cheaper ones."""

    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4) -> None:
        self._ph = _Argon2(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, encoded: str, password: str) -> bool:
        try:
            return self._ph.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        try:
            return self._ph.check_needs_rehash(encoded)
        except (InvalidHashError, ValueError):
            return True
