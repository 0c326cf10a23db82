"""Bearer tokens: HS256 JSON Web Tokens signed with one secret every worker shares.

The secret is ``HUEGIS_JWT_SECRET`` when set; otherwise it is generated once into
``var_dir/jwt-secret`` (mode 0600) and read back by every worker process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

import jwt

from gis.errors import Unauthorized
from gis.settings import Settings

ALGORITHM = "HS256"
ISSUER = "huegis"


def _secret_file(path: Path) -> str:
    """Read the secret at ``path``, creating it first (exclusively, 0600) if it is missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        tmp_secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as f:
            f.write(tmp_secret)
        return tmp_secret
    for _ in range(50):  # another worker may be writing it this very moment
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it and restart")


def jwt_secret(settings: Settings) -> str:
    """The signing secret: the setting, else ``var_dir/jwt-secret`` (made on first use).

    >>> import tempfile, pathlib
    >>> s = Settings(var_dir=pathlib.Path(tempfile.mkdtemp()), jwt_secret=None)
    >>> jwt_secret(s) == jwt_secret(s) and oct((s.var_dir / "jwt-secret").stat().st_mode)[-3:]
    '600'
    """
    if settings.jwt_secret:
        return settings.jwt_secret
    return _secret_file(settings.var_dir / "jwt-secret")


def issue_token(settings: Settings, user_id: int, username: str, role: str
                ) -> tuple[str, int]:
    """A signed token for an account and its lifetime in seconds.

    >>> s = Settings(jwt_secret="x" * 32)
    >>> token, ttl = issue_token(s, 7, "lan", "planner")
    >>> decode_token(s, token)["sub"], ttl == s.token_expires_s
    ('7', True)
    """
    now = int(time.time())
    ttl = settings.token_expires_s
    claims = {"sub": str(user_id), "name": username, "role": role, "iss": ISSUER,
              "iat": now, "exp": now + ttl}
    return jwt.encode(claims, jwt_secret(settings), algorithm=ALGORITHM), ttl


def decode_token(settings: Settings, token: str) -> dict:
    """The claims of a valid token; :class:`Unauthorized` when it is forged, malformed or
    expired.

    >>> decode_token(Settings(jwt_secret="x" * 32), "not-a-token")
    Traceback (most recent call last):
    ...
    gis.errors.Unauthorized: invalid bearer token: Not enough segments
    """
    try:
        claims = jwt.decode(token, jwt_secret(settings), algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub", "iss"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the bearer token has expired: ask /auth/token for a new one"
                           ) from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid bearer token: {exc}") from None
    if not str(claims["sub"]).isdigit():
        raise Unauthorized("invalid bearer token: bad subject")
    return claims
