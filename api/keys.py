"""API keys: random bearer tokens, of which the store keeps only a SHA-256 hash.

A token has 256 bits from ``secrets``, so a plain hash cannot be reversed or guessed and needs no
salt or slow key derivation; a lookup is one indexed read by hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from storage import ApiKeyRecord
from storage.protocols import ApiKeys

PREFIX = "evo_"
HINT_LEN = 12  # "evo_" and 8 characters of the token: enough to tell keys apart in a listing
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class KeyProblem(ValueError):
    """A key request that cannot be done (bad name, nothing to revoke)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise KeyProblem(
            f"invalid key name {name!r}: 1 to 64 characters, letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    return name


def create_key(store: ApiKeys, name: str, *, admin: bool = False) -> tuple[ApiKeyRecord, str]:
    """A new key for ``name`` (the tenant whose jobs it sees); returns the record and the token,
    which is shown to the caller once and never stored."""
    token = new_token()
    record = store.create_api_key(
        name=check_name(name), token_sha256=hash_token(token), hint=token[:HINT_LEN],
        admin=admin,
    )
    return record, token


def revoke(store: ApiKeys, name: str) -> int:
    """Revoke every active key of ``name``."""
    count = store.revoke_api_keys(name)
    if count == 0:
        raise KeyProblem(f"no active key named {name!r}")
    return count


def lookup(store: ApiKeys, token: str) -> ApiKeyRecord | None:
    """The active key with this token, or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    return store.api_key(hash_token(token))
