"""The local gazetteer: place names of Huế (wards, curated landmarks, streets named in
addresses, points of interest) searched without regard to Vietnamese diacritics or case.

The ``gazetteer`` view (migration 0006) unions the sources; names are compared through
``huegis_unaccent`` and ``pg_trgm``, so "Dai Noi" finds "Đại Nội" and "hue" finds "Huế".
Used by the search box of the web map (``GET /search``) and to geocode the ``address_string``
of citizen reports.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import asyncpg

from gis.errors import InvalidParameter

KINDS = ("ward", "landmark", "street", "tourism", "health", "education")
MAX_QUERY = 200
# Least trigram word similarity for a fuzzy (not substring) match.
MIN_SIMILARITY = 0.5

_SEARCH = """
WITH q AS (SELECT lower(huegis_unaccent($1)) AS q)
SELECT kind, id, name, alt_names, ward_code, ST_X(geom) AS lon, ST_Y(geom) AS lat,
       (lower(huegis_unaccent(name)) = q.q) AS exact,
       GREATEST(word_similarity(q.q, lower(huegis_unaccent(name))),
                word_similarity(q.q, lower(huegis_unaccent(coalesce(alt_names, ''))))) AS score
FROM gazetteer, q
WHERE ($3::text[] IS NULL OR kind = ANY($3))
  AND ($4::text IS NULL OR ward_code = $4 OR kind = 'landmark')
  AND (strpos(lower(huegis_unaccent(name)), q.q) > 0
       OR strpos(lower(huegis_unaccent(coalesce(alt_names, ''))), q.q) > 0
       OR word_similarity(q.q, lower(huegis_unaccent(name))) >= $5)
ORDER BY exact DESC, score DESC, rank, weight DESC, length(name), name
LIMIT $2
"""


@dataclass(frozen=True)
class Place:
    """A named place: its kind, id, name, ward (GSO code), position (lon/lat) and score."""

    kind: str
    id: str
    name: str
    ward_code: str | None
    lon: float
    lat: float
    score: float
    alt_names: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def clean_query(q: str | None) -> str:
    """A search text with spaces normalised; 400 when empty or too long.

    >>> clean_query("  Dai   Noi ")
    'Dai Noi'
    """
    text = " ".join((q or "").split())
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidParameter("q: control characters are not allowed")
    if not text:
        raise InvalidParameter("q: give a place name to search for")
    if len(text) > MAX_QUERY:
        raise InvalidParameter(f"q: at most {MAX_QUERY} characters")
    return text


async def search(conn: asyncpg.Connection | asyncpg.Pool, q: str, limit: int = 10,
                 kinds: tuple[str, ...] | None = None, ward_code: str | None = None,
                 min_similarity: float = MIN_SIMILARITY) -> list[Place]:
    """Places whose name contains ``q`` or resembles it, best first, ignoring diacritics and
    case.

    Parameters
    ----------
    conn : asyncpg connection or pool
    q : str
        The text searched, e.g. ``"Dai Noi"``.
    limit : int
        Most places returned (1–100).
    kinds : tuple of str, optional
        Restrict to these kinds (see :data:`KINDS`).
    ward_code : str, optional
        Only places in this ward (landmarks are kept).

    Example
    -------
    ``await search(pool, "dai noi")`` → ``[Place(kind='landmark', name='Đại Nội', …)]``
    """
    text = clean_query(q)
    if not 1 <= limit <= 100:
        raise InvalidParameter("limit: between 1 and 100")
    if kinds:
        bad = sorted(set(kinds) - set(KINDS))
        if bad:
            raise InvalidParameter(f"kind: unknown {', '.join(bad)}; one of {', '.join(KINDS)}")
    rows = await conn.fetch(_SEARCH, text, limit, list(kinds) if kinds else None, ward_code,
                            min_similarity)
    return [Place(r["kind"], r["id"], r["name"], r["ward_code"], r["lon"], r["lat"],
                  round(1.0 if r["exact"] else float(r["score"]), 3), r["alt_names"])
            for r in rows]


_HOUSE_NO = re.compile(r"^\s*(số\s+|so\s+|kiệt\s+|kiet\s+|hẻm\s+)?[0-9]+[A-Za-z]?(/[0-9]+)*\s+",
                       re.IGNORECASE)
_WARD_WORDS = re.compile(r"^\s*(phường|phuong|xã|xa|p\.|tp\.?|thành phố|thanh pho)\s+",
                         re.IGNORECASE)


async def geocode(conn: asyncpg.Connection | asyncpg.Pool, address: str) -> Place | None:
    """The best place for a free-text address ("12 Lê Lợi, Phú Xuân", "Dai Noi"), or None.

    The comma-separated parts are read as place then ward: a part naming a ward narrows the
    other parts to it; a house number in front of a street is ignored. With only a ward
    recognised, the ward's representative point is returned.
    """
    parts = [p.strip() for p in address.split(",") if p.strip()]
    if not parts:
        return None
    ward: Place | None = None
    for part in parts[1:]:
        bare = _WARD_WORDS.sub("", part)
        if not bare:
            continue
        hits = await search(conn, bare, limit=1, kinds=("ward",), min_similarity=0.8)
        if hits and (hits[0].score >= 0.8 or len(parts) > 1):
            ward = hits[0]
            break
    for part in (parts[0], " ".join(parts)):
        bare = _HOUSE_NO.sub("", part).strip()
        if not bare or len(bare) < 2:
            continue
        hits = await search(conn, bare, limit=1, ward_code=ward.ward_code if ward else None,
                            min_similarity=0.6)
        if hits:
            return hits[0]
        if ward is not None:
            hits = await search(conn, bare, limit=1, min_similarity=0.6)
            if hits:
                return hits[0]
    return ward


# Rebuilds the streets of the gazetteer from the addresses of parcels and points of interest.
REFRESH_SQL = "REFRESH MATERIALIZED VIEW gazetteer_streets"


async def refresh(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Rebuild the streets of the gazetteer (after loading or importing parcels or POIs)."""
    await conn.execute(REFRESH_SQL)
