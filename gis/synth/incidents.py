"""Citizen incident reports: references, reserved ids, reporters, addresses and texts of the
planned reports and of their events, written to ``incidents`` and ``incident_events``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import shapely

from gis.bulk import ProgressFn, copy_rows
from gis.raster import METRIC_EPSG, transformer
from gis.synth.context import CELL_M, SOURCE, _Context, _context, _hash, _metric_to_grid
from gis.synth.dates import DAY, _local_text
from gis.synth.incident_plan import (
    CATEGORIES,
    S_ASSIGNED,
    S_DUPLICATE,
    S_IN_PROGRESS,
    S_IN_PROGRESS2,
    S_RATED,
    S_RATED2,
    S_RECEIVED,
    S_REJECTED,
    S_REOPENED,
    STAGES,
    _incident_plan,
)
from gis.synth.names import STREETS, _people

INCIDENT_COLUMNS = ("id", "ref", "category", "description", "status", "priority", "channel",
                    "address", "ward_code", "reporter_name", "reporter_phone", "reporter_email",
                    "sla_due_at", "resolved_at", "rating", "source", "created_at", "updated_at",
                    "geom")
EVENT_COLUMNS = ("incident_id", "at", "actor", "kind", "from_status", "to_status", "note",
                 "data")

DESCRIPTIONS = {
    "roads": ("Mặt đường {street} xuất hiện nhiều ổ gà, gây nguy hiểm cho người đi xe máy.",
              "Nắp hố ga trên đường {street} bị vỡ, đề nghị thay thế sớm.",
              "Vỉa hè trước số {no} {street} bị sụt lún, gạch lát bong tróc.",
              "Biển báo giao thông ở ngã tư {street} bị nghiêng đổ.",
              "Đoạn đường kiệt {kiet} {street} lầy lội, xuống cấp sau mưa."),
    "lighting": ("Đèn đường đoạn {street} không sáng nhiều đêm nay, đi lại rất nguy hiểm.",
                 "Cột đèn chiếu sáng trước số {no} {street} bị nghiêng, có nguy cơ đổ.",
                 "Đèn chiếu sáng kiệt {kiet} {street} sáng cả ban ngày, gây lãng phí.",
                 "Dây điện chiếu sáng trên đường {street} bị đứt, buông thấp."),
    "waste": ("Rác tập kết tràn ra lòng đường {street}, bốc mùi hôi thối.",
              "Có người đổ trộm xà bần, rác xây dựng ở bãi đất trống gần {street}.",
              "Xe thu gom rác không đến khu vực kiệt {kiet} {street} mấy ngày nay.",
              "Thùng rác công cộng trên đường {street} bị hư hỏng, rác vương vãi.",
              "Xác động vật chết trôi dạt ở mương gần {street}, đề nghị xử lý."),
    "drainage": ("Mưa lớn, nước ngập sâu khoảng {depth} cm trên đường {street}, xe không qua "
                 "được.",
                 "Cống thoát nước tại {street} bị tắc, nước thải tràn lên mặt đường.",
                 "Mương thoát nước khu dân cư kiệt {kiet} {street} bồi lắng, bốc mùi.",
                 "Nước lũ dâng cao tràn vào nhà dân ở kiệt {kiet} {street}, cần hỗ trợ.",
                 "Hố ga trước số {no} {street} bị mất nắp, nước chảy xiết rất nguy hiểm."),
    "trees": ("Cây xanh trên đường {street} bị gãy cành sau mưa bão, đè lên dây điện.",
              "Cây trước số {no} {street} có dấu hiệu mục gốc, nguy cơ ngã đổ.",
              "Đề nghị cắt tỉa cây xanh che khuất đèn tín hiệu tại {street}.",
              "Cây đổ chắn ngang đường {street}, các phương tiện không qua được."),
    "construction": ("Công trình tại số {no} {street} xây dựng vượt số tầng được cấp phép.",
                     "Vật liệu xây dựng tập kết chiếm hết vỉa hè {street}.",
                     "Công trình ở kiệt {kiet} {street} không che chắn, gây bụi cho dân cư.",
                     "Hộ dân tại {no} {street} cơi nới lấn chiếm hành lang kiệt."),
    "noise": ("Quán karaoke trên đường {street} hát lớn đến khuya, ảnh hưởng giấc ngủ.",
              "Công trình thi công ban đêm tại {street} gây tiếng ồn lớn.",
              "Loa kẹo kéo tại số {no} {street} mở quá lớn cả ngày.",
              "Quán nhậu ở kiệt {kiet} {street} ồn ào đến nửa đêm."),
    "public_order": ("Nhóm thanh niên tụ tập gây mất trật tự tại {street} vào buổi tối.",
                     "Tình trạng đua xe trái phép trên đường {street} vào ban đêm.",
                     "Buôn bán lấn chiếm lòng đường gần chợ trên đường {street}.",
                     "Đỗ xe trái phép kéo dài trước số {no} {street}, gây ùn tắc."),
}
RESOLUTIONS = {
    "roads": ("Đã vá ổ gà, hoàn trả mặt đường.", "Đã thay nắp hố ga mới.",
              "Đã sửa chữa vỉa hè, lát lại gạch."),
    "lighting": ("Đã thay bóng đèn, hệ thống chiếu sáng hoạt động bình thường.",
                 "Đã sửa chữa tủ điện và dây dẫn chiếu sáng."),
    "waste": ("Đã thu gom, vận chuyển hết rác.", "Đã bố trí thêm thùng rác, tăng tần suất "
              "thu gom."),
    "drainage": ("Đã nạo vét cống, khơi thông dòng chảy.", "Nước đã rút, đã vệ sinh mặt "
                 "đường.", "Đã lắp lại nắp hố ga."),
    "trees": ("Đã cắt tỉa cành, thu dọn cây gãy đổ.", "Đã chặt hạ cây nguy hiểm và trồng "
              "cây thay thế."),
    "construction": ("Đã kiểm tra, lập biên bản vi phạm trật tự xây dựng.",
                     "Đã yêu cầu chủ công trình che chắn, thu dọn vật liệu."),
    "noise": ("Đã nhắc nhở, yêu cầu chấm dứt gây ồn.", "Đã lập biên bản xử phạt hành vi "
              "gây ồn."),
    "public_order": ("Công an phường đã kiểm tra, giải tán.", "Đã tăng cường tuần tra khu "
                     "vực."),
}
REJECTIONS = ("Nội dung phản ánh không thuộc thẩm quyền giải quyết của địa phương.",
              "Không xác định được vị trí phản ánh.",
              "Đã kiểm tra, nội dung phản ánh không đúng thực tế.",
              "Đã chuyển đơn vị chuyên ngành xử lý theo thẩm quyền.")
PHONE_PREFIXES = ("90", "91", "93", "94", "96", "97", "98", "32", "33", "34", "35", "36", "37",
                  "38", "39", "70", "76", "77", "78", "79", "81", "82", "83", "84", "85", "86",
                  "88", "89", "56", "58", "59")
CHANNELS = ("app", "hotline", "web", "open311")


def _incident_refs(conn: psycopg.Connection, t0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Year and number of each reference 'PA-2024-0001234': numbered per year in time order,
    after those already in the table."""
    start = dict(conn.execute(
        "SELECT split_part(ref, '-', 2)::int, max(split_part(ref, '-', 3)::bigint) "
        "FROM incidents WHERE ref ~ '^PA-[0-9]{4}-[0-9]{1,12}$' GROUP BY 1").fetchall())
    year = (t0 // DAY).astype("int64").astype("datetime64[D]").astype("datetime64[Y]")
    year = year.astype(np.int64) + 1970
    first = np.searchsorted(year, year, side="left")  # t0 is sorted, so years are contiguous
    base = np.array([int(start.get(int(y), 0)) for y in range(year.min(), year.max() + 1)]
                    if len(year) else [0], dtype=np.int64)
    return year, np.arange(len(t0)) - first + 1 + base[year - year.min()]


def _reserve_ids(conn: psycopg.Connection, n: int) -> int:
    """Reserve ids ``start … start + n - 1`` of ``incidents`` (the table stays locked against
    other writers until the transaction ends); returns ``start``."""
    conn.execute("LOCK TABLE incidents IN SHARE ROW EXCLUSIVE MODE")
    seq = conn.execute("SELECT pg_get_serial_sequence('incidents', 'id')").fetchone()[0]
    top = conn.execute("SELECT GREATEST(coalesce(max(id), 0), "
                       "coalesce(pg_sequence_last_value(%s::regclass), 0)) FROM incidents",
                       (seq,)).fetchone()[0]
    conn.execute("SELECT setval(%s::regclass, %s)", (seq, top + n))
    return int(top) + 1


def generate_incidents(conn: psycopg.Connection, n: int, seed: int = 46,
                       progress: ProgressFn | None = None) -> int:
    """Generate ``n`` citizen incident reports and their ``incident_events`` history (COPY).

    Reports run from 2019-01-01 to 2026-11-25 with a yearly growing volume and a city's
    category mix (drainage peaks in the October–November flood season), at points inside the
    wards weighted by population (urban wards more), routed to the ward they fall in. About
    98 % are processed (resolved, rejected, duplicate); the rest, mostly recent, are received,
    assigned or in progress. Due dates count working days per category (urgent reports: hours),
    most resolved reports are rated (92 % with 4 or 5 stars) and a poor rating sometimes
    reopens the report. Each report's events (received, assigned, in_progress, resolved,
    rejected, duplicate, rated, reopened) agree with its timestamps and final status. Reporter
    names, phones and e-mails are synthetic. Ids are reserved up front (the table is locked
    against other writers until the transaction ends). The connection is not committed.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection to a database with the wards loaded.
    n : int
        Number of reports (1,000,000 works; rows are streamed in chunks).
    seed : int
        Random seed: the same seed gives the same reports and events.
    progress : callable, optional
        Called with the number of reports written (with their events) since its last call.

    Returns
    -------
    int
        The number of reports written.
    """
    if n <= 0:
        return 0
    ctx = _context(conn, seed)
    plan = _incident_plan(ctx, n, seed)
    ref_year, ref_seq = _incident_refs(conn, plan["t0"])
    first_id = _reserve_ids(conn, n)
    # Where in the street grid: a street name coherent with the parcels' addresses there.
    rng = np.random.default_rng([seed, 32])
    mx, my = transformer(4326, METRIC_EPSG).transform(plan["lon"], plan["lat"])
    gu, gv = _metric_to_grid(ctx, mx, my)
    street = (_hash(np.rint(gu / CELL_M).astype(np.int64), np.rint(gv / CELL_M).astype(np.int64),
                    rng.integers(0, 5, n)) % np.uint64(len(STREETS))).astype(np.int64)
    written = 0
    chunk = 10_000  # reports per COPY of reports then events (and per progress step)
    for c, lo in enumerate(range(0, n, chunk)):
        hi = min(n, lo + chunk)
        _copy_incident_chunk(conn, ctx, plan, np.random.default_rng([seed, 33, c]), lo, hi,
                             first_id, ref_year, ref_seq, street[lo:hi])
        written += hi - lo
        if progress:
            progress(hi - lo)
    return written


def _copy_incident_chunk(conn: psycopg.Connection, ctx: _Context, plan: dict[str, np.ndarray],
                         rng: np.random.Generator, lo: int, hi: int, first_id: int,
                         ref_year: np.ndarray, ref_seq: np.ndarray, street: np.ndarray) -> None:
    """COPY the reports ``lo:hi`` and then their events."""
    wards = ctx.wards
    m = hi - lo
    sl = slice(lo, hi)

    def ref(i: int) -> str:
        return f"PA-{ref_year[i]}-{ref_seq[i]:07d}"

    # Reporters
    names, stems, _ = _people(rng, m)
    ch = plan["channel"][sl]
    u = rng.random((3, m))
    phones = [f"0{PHONE_PREFIXES[a]}{b:07d}" for a, b in zip(
        rng.integers(0, len(PHONE_PREFIXES), m).tolist(), rng.integers(0, 10**7, m).tolist(),
        strict=True)]
    has_phone = np.select([ch <= 1, ch == 2], [True, u[0] < .6], u[0] < .5)
    has_email = np.select([ch == 1, ch == 2, ch == 3], [False, True, u[1] < .7], u[1] < .35)
    has_email |= ~has_phone  # some way to reach the reporter
    domains = np.array(["gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com"])
    digits = np.where(u[2] < .6, rng.integers(1, 99, m).astype(str), "")
    emails = [f"{s}{d}@{x}" for s, d, x in zip(
        stems.tolist(), digits.tolist(), domains[rng.integers(0, len(domains), m)].tolist(),
        strict=True)]
    phones = [p if ok else None for p, ok in zip(phones, has_phone.tolist(), strict=True)]
    emails = [e if ok else None for e, ok in zip(emails, has_email.tolist(), strict=True)]
    # Texts
    street2 = ((street + rng.integers(1, len(STREETS), m)) % len(STREETS)).tolist()
    addr_form = rng.choice(4, m, p=[.5, .25, .1, .15]).tolist()
    number = rng.integers(1, 400, m).tolist()
    kiet = rng.integers(1, 150, m).tolist()
    tmpl = rng.integers(0, 1_000_000, m).tolist()
    depth = (rng.integers(2, 12, m) * 10).tolist()
    operators = rng.integers(1, 25, m).tolist()
    inspectors = rng.integers(1, 7, m).tolist()
    partner = rng.integers(0, 3, m).tolist()
    pick = rng.integers(0, 1_000_000, m).tolist()
    points = shapely.to_wkb(shapely.set_srid(shapely.points(plan["lon"][sl], plan["lat"][sl]),
                                             4326), hex=True, include_srid=True).tolist()
    created = _local_text(plan["t0"][sl])
    due = _local_text(plan["due"][sl])
    updated = _local_text(plan["updated"][sl])
    resolved_at = _local_text(np.where(plan["resolved"][sl], plan["final_at"][sl], np.nan))
    cat = plan["cat"][sl].tolist()
    ward = plan["ward"][sl].tolist()
    final = plan["final"][sl].tolist()
    urgent = plan["urgent"][sl].tolist()
    rating = plan["rating"][sl].tolist()
    chl = ch.tolist()
    streets = street.tolist()

    def incident_rows() -> Iterator[tuple]:
        for j in range(m):
            c = CATEGORIES[cat[j]]
            wi = ward[j]
            st = STREETS[streets[j]]
            if not wards.urban[wi]:
                address = f"Thôn {kiet[j] % 12 + 1}, {wards.names[wi]}"
            else:
                address = (f"{number[j]} {st}", f"Kiệt {kiet[j]} {st}",
                           f"Ngã tư {st} – {STREETS[street2[j]]}",
                           f"Đường {st}")[addr_form[j]] + f", {wards.names[wi]}"
            texts = DESCRIPTIONS[c]
            desc = texts[tmpl[j] % len(texts)].format(street=st, no=number[j], kiet=kiet[j],
                                                      depth=depth[j])
            yield (first_id + lo + j, ref(lo + j), c, desc, STAGES[final[j]][2],
                   "urgent" if urgent[j] else "normal", CHANNELS[chl[j]], address,
                   wards.codes[wi], names[j], phones[j], emails[j], due[j], resolved_at[j],
                   rating[j] or None, SOURCE, created[j], updated[j], points[j])

    copy_rows(conn, "incidents", INCIDENT_COLUMNS, incident_rows())
    e_lo, e_hi = np.searchsorted(plan["ev_inc"], [lo, hi])
    ev_at = _local_text(plan["ev_at"][e_lo:e_hi])
    ev_inc = (plan["ev_inc"][e_lo:e_hi] - lo).tolist()
    ev_stage = plan["ev_stage"][e_lo:e_hi].tolist()
    original = plan["original"][sl].tolist()
    rating1 = plan["rating1"][sl].tolist()
    rating2 = plan["rating2"][sl].tolist()
    partners = ("zalo-hue", "vnpt-smartcity", "hue-tourism")

    def event_rows() -> Iterator[tuple]:
        for at, j, s in zip(ev_at, ev_inc, ev_stage, strict=True):
            kind, before, after = STAGES[s]
            wi = ward[j]
            data = "{}"
            note = None
            if s == S_RECEIVED:
                c = chl[j]
                actor = (f"citizen:{CHANNELS[c]}" if c in (0, 2) else
                         f"operator:hotline-{operators[j]:02d}" if c == 1 else
                         f"open311:{partners[partner[j]]}")
                data = f'{{"channel": "{CHANNELS[c]}"}}'
            elif s == S_ASSIGNED:
                actor = f"ioc:operator-{operators[j]:02d}"
                note = f"Chuyển {wards.names[wi]} xử lý."
                data = f'{{"ward_code": "{wards.codes[wi]}"}}'
            elif s == S_DUPLICATE:
                actor = f"ioc:operator-{operators[j]:02d}"
                r = ref(original[j])
                note = f"Trùng với phản ánh {r}."
                data = f'{{"duplicate_of": "{r}"}}'
            elif s == S_REOPENED:
                actor = "system"
                note = f"Người phản ánh chưa hài lòng ({rating1[j]}/5 sao), mở lại phản ánh."
            elif s in (S_RATED, S_RATED2):
                actor = "citizen"
                data = f'{{"rating": {rating1[j] if s == S_RATED else rating2[j]}}}'
            else:
                actor = f"ward-{wards.codes[wi]}:inspector-{inspectors[j]:02d}"
                if s in (S_IN_PROGRESS, S_IN_PROGRESS2):
                    note = "Đã tiếp nhận, cử cán bộ kiểm tra hiện trường."
                elif s == S_REJECTED:
                    note = REJECTIONS[pick[j] % len(REJECTIONS)]
                else:
                    texts = RESOLUTIONS[CATEGORIES[cat[j]]]
                    note = texts[(pick[j] + s) % len(texts)]
            yield (first_id + lo + j, at, actor, kind, before, after, note, data)

    copy_rows(conn, "incident_events", EVENT_COLUMNS, event_rows())
