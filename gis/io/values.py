"""Coercion of file values to the catalog's field types (text, int, float, date, datetime, bool).

Vectorised over a chunk's column: the values come out as an object array ready for COPY (None
for null), with the masks of nulls and of values that do not fit the type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layers.base import Field

LOCAL_TZ = "Asia/Ho_Chi_Minh"  # naive datetimes in files are Huế local time
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "có", "co"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "không", "khong"})
INT_RANGES = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1),
              "bigint": (-(2**63), 2**63 - 1)}
_AWARE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


_strip = np.frompyfunc(str.strip, 1, 1)
to_str = np.frompyfunc(str, 1, 1)


def _as_text(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as stripped strings (object array, None for null or blank) and the null mask."""
    kind = raw.dtype.kind
    n = len(raw)
    out = np.full(n, None, dtype=object)
    if kind == "f":
        v = raw.astype(float)
        ok = np.isfinite(v)
        integral = ok & (v == np.floor(v)) & (np.abs(v) < 2**53)
        out[integral] = v[integral].astype(np.int64).astype(str)
        out[ok & ~integral] = v[ok & ~integral].astype(str)
        return out, ~ok
    if kind in "iu":
        return raw.astype(str).astype(object), np.zeros(n, dtype=bool)
    if kind == "b":
        return np.where(raw, "true", "false").astype(object), np.zeros(n, dtype=bool)
    if kind == "M":
        null = np.isnat(raw)
        out[~null] = np.datetime_as_string(raw[~null]).astype(object)
        return out, null
    null = np.asarray(pd.isna(raw), dtype=bool).copy()
    vals = raw[~null]
    if pd.api.types.infer_dtype(vals, skipna=False) not in ("string", "empty"):
        vals = to_str(vals)
    vals = _strip(vals)
    blank = np.asarray(vals == "", dtype=bool)
    out[~null] = vals
    null[~null] = blank
    out[null] = None
    return out, null


def coerce(f: Field, raw: np.ndarray, db_type: str | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Coerce one column to ``f.type``.

    Returns the values (object array ready for COPY, None for null), the null mask, the mask of
    bad values and the reason template (``{v}`` is replaced by the raw value).
    """
    text, null = _as_text(raw)
    n = len(text)
    bad = np.zeros(n, dtype=bool)
    out = np.full(n, None, dtype=object)
    good = ~null
    t = pd.Series(text, dtype=object)
    if f.type == "text":
        out = text
        if f.choices:
            canon = {c.lower(): c for c in f.choices}
            mapped = t[good].str.lower().map(canon)
            bad[good] = mapped.isna().to_numpy()
            out = text.copy()
            out[good] = mapped.to_numpy(dtype=object)
            shown = ", ".join(f.choices)
            return out, null, bad, f"{f.name}: {{v}} is not one of {shown}"
        return out, null, bad, ""
    if f.type in ("int", "float"):
        num = pd.to_numeric(t[good], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(num)
        if f.type == "int":
            lo, hi = INT_RANGES.get(db_type or "bigint", INT_RANGES["bigint"])
            ok &= (num == np.floor(num)) & (num >= lo) & (num <= hi)
            vals = np.zeros(len(num), dtype=np.int64)
            vals[ok] = num[ok].astype(np.int64)
            what = f"not an integer (or out of the {db_type or 'bigint'} range)"
        else:
            vals = num
            what = "not a finite number"
        idx = np.flatnonzero(good)
        bad[idx[~ok]] = True
        out[idx[ok]] = vals[ok].tolist()
        return out, null, bad, f"{f.name}: {{v}} is {what}"
    if f.type == "date":
        s = t[good]
        ts = pd.to_datetime(s, errors="coerce", format="ISO8601")
        retry = ts.isna().to_numpy()
        if retry.any():
            ts[retry] = pd.to_datetime(s[retry], errors="coerce", format="%d/%m/%Y")
        ok = ts.notna().to_numpy()
        idx = np.flatnonzero(good)
        bad[idx[~ok]] = True
        out[idx[ok]] = ts[ok].dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
        return out, null, bad, f"{f.name}: {{v}} is not a date (YYYY-MM-DD or DD/MM/YYYY)"
    if f.type == "datetime":
        s = t[good]
        aware = s.str.contains(_AWARE, regex=True).to_numpy(dtype=bool)
        res = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
        if aware.any():
            res[aware] = pd.to_datetime(s[aware], errors="coerce", format="ISO8601", utc=True)
        if (~aware).any():
            naive = pd.to_datetime(s[~aware], errors="coerce", format="ISO8601")
            res[~aware] = naive.dt.tz_localize(LOCAL_TZ, ambiguous="NaT",
                                               nonexistent="NaT").dt.tz_convert("UTC")
        ok = res.notna().to_numpy()
        idx = np.flatnonzero(good)
        bad[idx[~ok]] = True
        out[idx[ok]] = res[ok].dt.strftime("%Y-%m-%d %H:%M:%S.%f+00").to_numpy(dtype=object)
        return out, null, bad, (f"{f.name}: {{v}} is not an ISO 8601 date-time "
                                f"(naive times are taken as {LOCAL_TZ})")
    if f.type == "bool":
        low = t[good].str.lower()
        is_true = low.isin(TRUE_WORDS).to_numpy()
        is_false = low.isin(FALSE_WORDS).to_numpy()
        idx = np.flatnonzero(good)
        bad[idx[~(is_true | is_false)]] = True
        out[idx[is_true]] = True
        out[idx[is_false]] = False
        return out, null, bad, f"{f.name}: {{v}} is not a boolean (true/false, yes/no, 1/0)"
    raise AssertionError(f"unknown field type {f.type}")  # pragma: no cover


def plain(v: object) -> object:
    """A numpy scalar as the Python value (for messages); other values unchanged."""
    return v.item() if isinstance(v, np.generic) else v
