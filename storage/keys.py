"""REST API keys: ``KeyStore`` records a key by the hash of its token (never the token), finds
an active key by that hash, lists keys and revokes them by name."""

from __future__ import annotations

from sqlalchemy import select, update

from storage import convert
from storage.base import StoreBase
from storage.models import ApiKeyRow, utcnow
from storage.records import ApiKeyRecord


class KeyStore(StoreBase):
    """API keys, by name and token hash."""

    def create_api_key(
        self, *, name: str, token_sha256: str, hint: str, admin: bool = False
    ) -> ApiKeyRecord:
        """Record a key by the hash of its token (the token itself is never stored)."""
        if not name or len(name) > 64:
            raise ValueError(f"key name must be 1..64 characters, got {name!r}")
        if len(token_sha256) != 64:
            raise ValueError("token_sha256 must be a hex SHA-256 digest")
        row = ApiKeyRow(
            name=name, token_sha256=token_sha256, hint=hint, admin=admin, created_at=utcnow()
        )
        with self._write() as session:
            session.add(row)
            session.flush()
            return convert.api_key_record(row)

    def api_key(self, token_sha256: str) -> ApiKeyRecord | None:
        """The active (not revoked) key with this token hash."""
        stmt = select(ApiKeyRow).where(
            ApiKeyRow.token_sha256 == token_sha256, ApiKeyRow.revoked_at.is_(None)
        )
        with self._read() as session:
            row = session.scalars(stmt).first()
            return None if row is None else convert.api_key_record(row)

    def api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first."""
        with self._read() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)).all()
            return [convert.api_key_record(r) for r in rows]

    def revoke_api_keys(self, name: str) -> int:
        """Revoke every active key of ``name``; returns how many were revoked."""
        stmt = (
            update(ApiKeyRow)
            .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        with self._write() as session:
            result = session.execute(stmt, execution_options={"synchronize_session": False})
            return int(result.rowcount)  # type: ignore[attr-defined]
