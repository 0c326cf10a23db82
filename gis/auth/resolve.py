"""Turning credentials into a :class:`~gis.auth.Principal` (asyncpg, for the API).

Each resolution is one query on a unique index: an API key by the SHA-256 of the key, a
bearer token by the account id it carries (so a disabled account or a changed role takes
effect at once), a password by the username.
"""

from __future__ import annotations

import asyncio

import asyncpg
from argon2.exceptions import InvalidHashError, VerificationError

from gis.auth import Principal
from gis.auth.accounts import hash_key, password_hasher
from gis.auth.tokens import decode_token
from gis.errors import Unauthorized
from gis.settings import Settings

# A fixed argon2 hash, verified when the username is unknown, so a wrong username costs
# the same time as a wrong password (no user enumeration by timing).
_DUMMY_HASH = password_hasher().hash("not a real password")


async def principal_for_key(conn: asyncpg.Pool | asyncpg.Connection, key: str) -> Principal:
    """The principal of a live API key; :class:`Unauthorized` for an unknown or revoked one."""
    row = await conn.fetchrow(
        "SELECT k.id, k.prefix, k.name, k.role, k.wards, k.user_id, u.username, "
        "coalesce(u.disabled, false) AS disabled "
        "FROM api_keys k LEFT JOIN users u ON u.id = k.user_id "
        "WHERE k.key_hash = $1 AND k.revoked_at IS NULL", hash_key(key.strip()))
    if row is None or row["disabled"]:
        raise Unauthorized("unknown or revoked API key")
    name = row["username"] or row["name"] or f"key {row['prefix']}"
    return Principal(role=row["role"], user_id=row["user_id"], name=name,
                     wards=frozenset(row["wards"]), via="api_key")


async def principal_for_token(conn: asyncpg.Pool | asyncpg.Connection, settings: Settings,
                              token: str) -> Principal:
    """The principal of a valid bearer token whose account still exists and is enabled."""
    claims = decode_token(settings, token)
    row = await conn.fetchrow("SELECT id, username, role, wards FROM users "
                              "WHERE id = $1 AND NOT disabled", int(claims["sub"]))
    if row is None:
        raise Unauthorized("the account of this bearer token no longer exists or is disabled")
    return Principal(role=row["role"], user_id=row["id"], name=row["username"],
                     wards=frozenset(row["wards"]), via="token")


async def authenticate(conn: asyncpg.Pool | asyncpg.Connection, username: str,
                       password: str) -> Principal:
    """Check a username and password (argon2, off the event loop); :class:`Unauthorized`
    when either is wrong, without saying which."""
    row = await conn.fetchrow("SELECT id, username, role, wards, password_hash FROM users "
                              "WHERE username = $1 AND NOT disabled", username)
    stored = row["password_hash"] if row is not None else _DUMMY_HASH
    try:
        await asyncio.to_thread(password_hasher().verify, stored, password)
        ok = row is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise Unauthorized("wrong username or password")
    assert row is not None
    return Principal(role=row["role"], user_id=row["id"], name=row["username"],
                     wards=frozenset(row["wards"]), via="token")
