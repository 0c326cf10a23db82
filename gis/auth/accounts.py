"""Accounts and API keys: creating, listing and revoking them (psycopg, for the CLI and tests).

Passwords are stored as argon2id hashes; API keys only as the SHA-256 of the key, with a short
public prefix that names the key in listings. None of these functions commits: the caller
does (``with psycopg.connect(url) as conn:`` commits when the block ends).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import psycopg
from argon2 import PasswordHasher

from gis.errors import InvalidParameter

# Roles an account or a key may carry ("public" is what anonymous callers are).
ACCOUNT_ROLES: tuple[str, ...] = ("citizen", "inspector", "planner", "admin")
KEY_PREFIX = "hgk"

_hasher = PasswordHasher()


def password_hasher() -> PasswordHasher:
    """The argon2id hasher every password goes through (argon2-cffi defaults)."""
    return _hasher


def hash_key(key: str) -> bytes:
    """SHA-256 of an API key: what is stored and looked up (the key itself never is).

    >>> hash_key("hgk_0123abcd_secret").hex()[:16]
    '8a03f5099cd4517c'
    """
    return hashlib.sha256(key.encode()).digest()


def new_api_key() -> tuple[str, str]:
    """A fresh key ``hgk_<prefix>_<secret>`` (32 random bytes) and its public prefix.

    >>> key, prefix = new_api_key()
    >>> key.startswith(f"hgk_{prefix}_") and len(prefix) == 8
    True
    """
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def _check_role_wards(conn: psycopg.Connection, role: str, wards: Sequence[str]) -> list[str]:
    """Validate a role and its wards: inspectors need one or more known ward GSO codes, other
    roles none."""
    if role not in ACCOUNT_ROLES:
        raise InvalidParameter(f"unknown role {role!r}; roles: {', '.join(ACCOUNT_ROLES)}",
                               role=role)
    codes = sorted({str(w).strip() for w in wards})
    if role != "inspector":
        if codes:
            raise InvalidParameter(f"only inspectors are scoped to wards, not {role!r}")
        return []
    if not codes:
        raise InvalidParameter("an inspector needs one or more wards (GSO codes)")
    known = {r[0] for r in conn.execute(
        "SELECT gso_code FROM admin_units WHERE level = 'ward' AND gso_code = ANY(%s)",
        (codes,))}
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InvalidParameter(f"unknown ward GSO code(s): {', '.join(unknown)}", wards=unknown)
    return codes


def create_user(conn: psycopg.Connection, username: str, password: str, role: str,
                wards: Sequence[str] = ()) -> int:
    """Create an account with an argon2 password hash; return its id.

    Parameters
    ----------
    conn : psycopg.Connection
        Connection to a migrated database (not committed here).
    username : str
        Letters, digits and ``. _ @ -``, at most 64 characters, unique.
    password : str
        At least 8 characters.
    role : str
        ``citizen``, ``inspector``, ``planner`` or ``admin``.
    wards : sequence of str
        GSO codes of the inspector's wards (inspectors only, at least one).

    Raises
    ------
    InvalidParameter
        Unknown role or ward, a bad or taken username, a short password.
    """
    codes = _check_role_wards(conn, role, wards)
    if len(password) < 8:
        raise InvalidParameter("a password needs at least 8 characters")
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO users (username, password_hash, role, wards) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (username, _hasher.hash(password), role, codes)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise InvalidParameter(f"user {username!r} already exists") from None
    except psycopg.errors.CheckViolation:
        raise InvalidParameter(f"invalid username {username!r}: letters, digits and . _ @ - "
                               "only, at most 64") from None
    assert row is not None
    return int(row[0])


def create_api_key(conn: psycopg.Connection, role: str, name: str, wards: Sequence[str] = (),
                   user_id: int | None = None) -> str:
    """Create an API key and return it in plain text (the only time it is ever shown).

    Only its SHA-256 and its public prefix are stored. ``wards`` as for :func:`create_user`;
    ``user_id`` optionally ties the key to an account (deleting the account deletes the key).
    """
    codes = _check_role_wards(conn, role, wards)
    key, prefix = new_api_key()
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO api_keys (prefix, key_hash, name, role, wards, user_id) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (prefix, hash_key(key), name, role, codes, user_id))
    except psycopg.errors.ForeignKeyViolation:
        raise InvalidParameter(f"no user with id {user_id}") from None
    return key


def revoke_api_key(conn: psycopg.Connection, key_or_prefix: str) -> bool:
    """Revoke a key given in full or by its prefix; ``False`` if no live key matched."""
    parts = key_or_prefix.split("_")
    prefix = parts[1] if len(parts) >= 3 and parts[0] == KEY_PREFIX else key_or_prefix
    cur = conn.execute("UPDATE api_keys SET revoked_at = now() "
                       "WHERE prefix = %s AND revoked_at IS NULL", (prefix,))
    return cur.rowcount > 0


def list_users(conn: psycopg.Connection) -> list[dict]:
    """Every account (without its hash), oldest first."""
    cur = conn.execute("SELECT id, username, role, wards, disabled, created_at FROM users "
                       "ORDER BY id")
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def list_api_keys(conn: psycopg.Connection) -> list[dict]:
    """Every key by prefix (never the key), oldest first."""
    cur = conn.execute("SELECT id, prefix, name, role, wards, user_id, created_at, revoked_at "
                       "FROM api_keys ORDER BY id")
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
