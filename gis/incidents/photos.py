"""Report photos: sniffed (JPEG, PNG, WebP only, whatever the upload claims), size- and
count-limited, re-encoded without EXIF/GPS or other metadata (the location is the report's,
not the phone's), kept in three sizes behind a small storage interface (a directory today,
object storage later). What was stripped is summarised in ``incident_photos.meta`` for staff.
"""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import asyncpg
from PIL import Image, ImageOps, UnidentifiedImageError

from gis.errors import InvalidParameter, NotFound, PayloadTooLarge, UnsupportedMediaType
from gis.incidents.events import record

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"),
           "WEBP": ("image/webp", "webp")}
MAX_BYTES = 10 * 1024 * 1024  # per photo, as uploaded
MAX_PHOTOS = 5  # per report
MAX_PIXELS = 40_000_000
# Longest side of each stored size, in pixels.
SIZES = {"large": 2048, "medium": 1024, "thumb": 256}
_GPS_IFD = 0x8825
_EXIF_NAMES = {0x010F: "make", 0x0110: "model", 0x0132: "datetime", 0x0131: "software"}


class MediaStorage(Protocol):
    """Where photo files live: keys are relative paths like ``incidents/ab/<id>/thumb.jpg``."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


@dataclass
class LocalStorage:
    """Files under a directory (``settings.var_dir / "media"``)."""

    root: Path

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise NotFound("no such media file")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise NotFound("no such media file")
        return path.read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


@dataclass
class Photo:
    """A processed photo: id, type, size of the largest copy, the files per size, and what
    metadata was stripped."""

    id: str
    content_type: str
    ext: str
    width: int
    height: int
    files: dict[str, bytes] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def key(self, size: str) -> str:
        return photo_key(self.id, size, self.ext)


def photo_key(photo_id: str, size: str, ext: str) -> str:
    """Storage key of one size of a photo.

    >>> photo_key("ab" * 16, "thumb", "jpg")
    'incidents/ab/abababababababababababababababab/thumb.jpg'
    """
    return f"incidents/{photo_id[:2]}/{photo_id}/{size}.{ext}"


def _stripped(img: Image.Image) -> dict:
    """A staff-only summary of the metadata the upload carried."""
    exif = img.getexif()
    meta: dict = {"exif_tags": len(exif), "gps": bool(exif.get_ifd(_GPS_IFD)) if exif else False}
    for tag, name in _EXIF_NAMES.items():
        if tag in exif:
            meta[name] = str(exif[tag])[:100]
    extra = sorted(k for k in img.info if k not in ("dpi", "exif", "jfif", "jfif_version",
                                                     "jfif_unit", "jfif_density", "progressive",
                                                     "progression", "loop", "duration",
                                                     "background", "transparency"))
    if extra:
        meta["other"] = extra[:20]
    return meta


def process(data: bytes, claimed_type: str | None = None) -> Photo:
    """Check and re-encode one upload: 413 when too big, 415 when it is not a JPEG, PNG or WebP
    image or not the type it claims; the stored copies carry no metadata."""
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"a photo may have at most {MAX_BYTES // (1024 * 1024)} MB")
    if not data:
        raise InvalidParameter("media: empty file")
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as probe:
            fmt = probe.format
            if probe.width * probe.height > MAX_PIXELS:
                raise PayloadTooLarge(f"a photo may have at most {MAX_PIXELS:,} pixels")
            probe.verify()
        img = Image.open(io.BytesIO(data), formats=[fmt])
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise UnsupportedMediaType("media: not a readable JPEG, PNG or WebP image") from exc
    content_type, ext = FORMATS[fmt]
    claimed = (claimed_type or "").split(";")[0].strip().lower()
    if claimed and claimed not in ("application/octet-stream", content_type,
                                   "image/jpg" if fmt == "JPEG" else content_type):
        raise UnsupportedMediaType(f"media: the file claims {claimed} but is {content_type}")
    meta = _stripped(img)
    img = ImageOps.exif_transpose(img)
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    elif img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        img = img.convert("RGBA")
    photo = Photo(secrets.token_hex(16), content_type, ext, img.width, img.height, meta=meta)
    for size, longest in SIZES.items():
        copy = img.copy()
        copy.thumbnail((longest, longest))
        buf = io.BytesIO()
        if fmt == "JPEG":
            copy.save(buf, "JPEG", quality=85, optimize=True)
        elif fmt == "PNG":
            copy.save(buf, "PNG", optimize=True)
        else:
            copy.save(buf, "WEBP", quality=80)
        photo.files[size] = buf.getvalue()
        if size == "large":
            photo.width, photo.height = copy.width, copy.height
    return photo


async def add_photos(pool: asyncpg.Pool, storage: MediaStorage, incident: asyncpg.Record,
                     photos: list[Photo], actor: str) -> list[str]:
    """Store the photos of a report (at most :data:`MAX_PHOTOS` in all, 413 beyond) and record
    the event; returns their ids."""
    if not photos:
        return []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE", incident["id"])
        have = await conn.fetchval("SELECT count(*) FROM incident_photos WHERE incident_id = $1",
                                   incident["id"])
        if have + len(photos) > MAX_PHOTOS:
            raise PayloadTooLarge(f"a report may have at most {MAX_PHOTOS} photos "
                                  f"(it has {have})")
        for p in photos:
            for size, data in p.files.items():
                storage.put(p.key(size), data, p.content_type)
            await conn.execute(
                "INSERT INTO incident_photos (id, incident_id, content_type, width, height, "
                "bytes, meta, actor) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
                p.id, incident["id"], p.content_type, p.width, p.height,
                len(p.files["large"]), json.dumps(p.meta), actor)
        await record(conn, incident, actor, "photo_added", None, None, None,
                     {"photos": [p.id for p in photos]})
    return [p.id for p in photos]


async def photos_of(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int
                    ) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, content_type, width, height, bytes, meta, created_at "
                            "FROM incident_photos WHERE incident_id = $1 ORDER BY created_at, id",
                            incident_id)


async def photo(conn: asyncpg.Connection | asyncpg.Pool, photo_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT id, incident_id, content_type FROM incident_photos "
                              "WHERE id = $1", photo_id)
    if row is None:
        raise NotFound(f"no photo {photo_id!r}")
    return row


EXTENSIONS = {ct: ext for ct, ext in FORMATS.values()}
