"""Accounts, API keys and tokens against a real database (gis.auth)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import psycopg
import pytest

from gis.auth.accounts import (
    create_api_key,
    create_user,
    hash_key,
    list_api_keys,
    list_users,
    revoke_api_key,
)
from gis.auth.resolve import authenticate, principal_for_key, principal_for_token
from gis.auth.tokens import decode_token, issue_token, jwt_secret
from gis.errors import InvalidParameter, Unauthorized
from gis.settings import Settings

WARD = "19753"  # Phường Phú Xuân (GSO code, real data)


def _run(coro):
    """Run ``coro`` on a fresh event loop in its own thread (safe even when another test left
    a loop running in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _with_conn(url: str, fn):
    c = await asyncpg.connect(url)
    try:
        return await fn(c)
    finally:
        await c.close()


def test_user_password_is_argon2_and_verifies(conn: psycopg.Connection) -> None:
    uid = create_user(conn, "hoa.inspector", "correct horse", "inspector", [WARD])
    stored = conn.execute("SELECT password_hash, role, wards FROM users WHERE id = %s",
                          (uid,)).fetchone()
    assert stored[0].startswith("$argon2id$") and "correct horse" not in stored[0]
    assert stored[1:] == ("inspector", [WARD])
    mine = [u for u in list_users(conn) if u["username"] == "hoa.inspector"]
    assert len(mine) == 1 and mine[0]["id"] == uid and "password_hash" not in mine[0]


@pytest.mark.parametrize("role,wards,why", [
    ("mayor", (), "unknown role"),
    ("public", (), "unknown role"),
    ("inspector", (), "needs one or more wards"),
    ("inspector", ("99999",), "unknown ward"),
    ("planner", (WARD,), "only inspectors"),
])
def test_bad_role_or_ward_refused(conn: psycopg.Connection, role, wards, why) -> None:
    with pytest.raises(InvalidParameter, match=why):
        create_user(conn, "x", "long enough", role, wards)
    with pytest.raises(InvalidParameter, match=why):
        create_api_key(conn, role, "k", wards)


def test_duplicate_user_short_password_bad_name(conn: psycopg.Connection) -> None:
    create_user(conn, "lan", "long enough", "planner")
    with pytest.raises(InvalidParameter, match="already exists"):
        create_user(conn, "lan", "long enough", "planner")
    with pytest.raises(InvalidParameter, match="8 characters"):
        create_user(conn, "mai", "short", "planner")
    with pytest.raises(InvalidParameter, match="invalid username"):
        create_user(conn, "bad name; drop", "long enough", "planner")


def test_api_key_stored_hashed_and_revocable(conn: psycopg.Connection) -> None:
    key = create_api_key(conn, "inspector", "field tablet", [WARD])
    row = conn.execute("SELECT prefix, key_hash FROM api_keys WHERE name = 'field tablet'"
                       ).fetchone()
    assert key.startswith(f"hgk_{row[0]}_") and len(key) > 40
    assert bytes(row[1]) == hash_key(key)
    assert key not in str(list_api_keys(conn))
    assert revoke_api_key(conn, row[0]) and not revoke_api_key(conn, key)


def test_resolution_key_token_password(database_url: str, tmp_path) -> None:
    settings = Settings(database_url=database_url, var_dir=tmp_path)
    with psycopg.connect(database_url) as c:
        uid = create_user(c, "binh.planner", "s3cret-pass", "planner")
        key = create_api_key(c, "inspector", "acc.tablet", [WARD])
        dead = create_api_key(c, "admin", "acc.old")
        revoke_api_key(c, dead)
    try:
        p = _run(_with_conn(database_url, lambda a: principal_for_key(a, key)))
        assert (p.role, p.wards, p.via, p.name) == ("inspector", frozenset({WARD}), "api_key",
                                                    "acc.tablet")
        for bad in (dead, key + "x", "hgk_nope_nope"):
            with pytest.raises(Unauthorized):
                _run(_with_conn(database_url, lambda a, b=bad: principal_for_key(a, b)))

        who = _run(_with_conn(database_url,
                              lambda a: authenticate(a, "binh.planner", "s3cret-pass")))
        assert (who.user_id, who.role) == (uid, "planner")
        for user, pw in (("binh.planner", "wrong-pass"), ("nobody", "s3cret-pass")):
            with pytest.raises(Unauthorized, match="wrong username or password"):
                _run(_with_conn(database_url, lambda a, u=user, w=pw: authenticate(a, u, w)))

        token, ttl = issue_token(settings, uid, "binh.planner", "planner")
        assert ttl == settings.token_expires_s and decode_token(settings, token)["sub"] == str(uid)
        p = _run(_with_conn(database_url, lambda a: principal_for_token(a, settings, token)))
        assert (p.role, p.user_id, p.via) == ("planner", uid, "token")
        # A token signed with another secret is refused.
        other = Settings(database_url=database_url, jwt_secret="another secret" * 3)
        with pytest.raises(Unauthorized, match="invalid bearer token"):
            decode_token(other, token)
        # Disabling the account invalidates its tokens at once.
        with psycopg.connect(database_url) as c:
            c.execute("UPDATE users SET disabled = true WHERE id = %s", (uid,))
        with pytest.raises(Unauthorized, match="disabled"):
            _run(_with_conn(database_url, lambda a: principal_for_token(a, settings, token)))
    finally:
        with psycopg.connect(database_url) as c:
            c.execute("DELETE FROM api_keys WHERE name LIKE 'acc.%'")
            c.execute("DELETE FROM users WHERE username = 'binh.planner'")


def test_expired_token_refused(tmp_path) -> None:
    settings = Settings(var_dir=tmp_path, token_expires_s=-10)
    token, _ = issue_token(settings, 1, "a", "admin")
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(settings, token)


def test_generated_secret_shared_and_private(tmp_path) -> None:
    s = Settings(var_dir=tmp_path / "v")
    first = jwt_secret(s)
    assert len(first) >= 48 and jwt_secret(Settings(var_dir=tmp_path / "v")) == first
    assert (tmp_path / "v" / "jwt-secret").stat().st_mode & 0o777 == 0o600
    assert jwt_secret(Settings(var_dir=tmp_path / "w")) != first
