"""Who is asking: roles, principals and the checks every capability shares.

A :class:`Principal` is what the API resolves from a request (API key or bearer token); every
capability receives one and asks it, never the request, what the caller may do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gis.errors import Forbidden, Unauthorized

Role = Literal["public", "citizen", "inspector", "planner", "admin"]
ROLES: tuple[Role, ...] = ("public", "citizen", "inspector", "planner", "admin")
STAFF: frozenset[str] = frozenset({"inspector", "planner", "admin"})


@dataclass(frozen=True)
class Principal:
    """The caller: a role, and for inspectors the GSO codes of the wards they work in."""

    role: Role = "public"
    user_id: int | None = None
    name: str = "anonymous"
    wards: frozenset[str] = field(default_factory=frozenset)
    via: Literal["anonymous", "api_key", "token"] = "anonymous"

    @property
    def authenticated(self) -> bool:
        return self.role != "public"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF

    def require(self, *roles: str) -> Principal:
        """Raise 401 when anonymous, 403 when the role is not one of ``roles`` (admin always
        passes)."""
        if not self.authenticated:
            raise Unauthorized("sign in (X-API-Key or a bearer token) to do this")
        if self.role != "admin" and self.role not in roles:
            raise Forbidden(f"role {self.role!r} may not do this; needs one of "
                            f"{', '.join(roles)}")
        return self

    def require_ward(self, ward_code: str | None) -> Principal:
        """Inspectors act only in their wards (403 otherwise); other staff everywhere."""
        if self.role == "inspector" and ward_code not in self.wards:
            raise Forbidden(f"ward {ward_code} is not among this inspector's wards")
        return self

    def may_read(self, visible_to: tuple[str, ...]) -> bool:
        """Whether a private field readable by ``visible_to`` roles may be shown (admin: all)."""
        return self.role == "admin" or self.role in visible_to


PUBLIC = Principal()

__all__ = ["PUBLIC", "ROLES", "STAFF", "Principal", "Role"]
