"""Synthetic Vietnamese people and Huế place names: surnames, given names, streets, places,
businesses, pagodas and parishes, and the people drawn from them (names, e-mail stems)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np

SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi",
            "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Trương", "Nguyễn Phước", "Tôn")
SURNAME_WEIGHTS = (30, 10, 9, 4, 4, 2, 5, 6, 2, 1.5, 1.2, 4, 2.5, 1.5, 0.6, 2.5, 1.2, 1.5)
MALE_MIDDLE = ("Văn", "Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Xuân", "Thanh", "Ngọc",
               "Anh", "Đình", "Quốc")
FEMALE_MIDDLE = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Phương", "Bảo", "Diệu",
                 "Hoài", "Thị Minh")
MALE_GIVEN = ("An", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Hải", "Hậu", "Hiếu", "Hòa",
              "Hoàng", "Hùng", "Huy", "Khánh", "Khoa", "Lâm", "Long", "Lộc", "Minh", "Nam",
              "Nghĩa", "Nhân", "Phong", "Phúc", "Phước", "Quân", "Quang", "Sơn", "Tài", "Tâm",
              "Thắng", "Thành", "Thiện", "Thịnh", "Tiến", "Toàn", "Trí", "Trung", "Tuấn", "Tùng",
              "Việt", "Vinh", "Vũ")
FEMALE_GIVEN = ("Anh", "Châu", "Chi", "Diễm", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền",
                "Hoa", "Hồng", "Hương", "Huyền", "Lan", "Liên", "Linh", "Loan", "Mai", "My", "Nga",
                "Ngân", "Nhung", "Nhi", "Oanh", "Phương", "Quỳnh", "Thảo", "Thu", "Thủy", "Trang",
                "Trâm", "Tuyết", "Uyên", "Vân", "Vy", "Xuân", "Yến")
STREETS = (
    "Lê Lợi", "Hùng Vương", "Trần Hưng Đạo", "Lê Duẩn", "Đinh Tiên Hoàng", "Mai Thúc Loan",
    "Nguyễn Trãi", "Điện Biên Phủ", "Phan Đình Phùng", "Bà Triệu", "Nguyễn Huệ", "Hà Nội",
    "Đống Đa", "Lý Thường Kiệt", "Bến Nghé", "Ngô Quyền", "Nguyễn Thái Học", "Chu Văn An",
    "Võ Thị Sáu", "Phạm Ngũ Lão", "Đội Cung", "Trần Cao Vân", "Nguyễn Tri Phương",
    "Nguyễn Công Trứ", "Hai Bà Trưng", "Lê Quý Đôn", "Nguyễn Lương Bằng", "Tố Hữu",
    "Võ Văn Kiệt", "Nguyễn Sinh Cung", "Phạm Văn Đồng", "Trường Chinh", "Bùi Thị Xuân",
    "Kim Long", "Nguyễn Phúc Nguyên", "Lê Ngô Cát", "Huyền Trân Công Chúa", "Minh Mạng",
    "Ngự Bình", "An Dương Vương", "Dương Văn An", "Hoàng Quốc Việt", "Nguyễn Lộ Trạch",
    "Hải Triều", "Ngô Đức Kế", "Chi Lăng", "Huỳnh Thúc Kháng", "Nguyễn Chí Thanh", "Đào Duy Từ",
    "Đặng Thái Thân", "Đoàn Thị Điểm", "Lê Huân", "Ông Ích Khiêm", "Thạch Hãn", "Nhật Lệ",
    "Tăng Bạt Hổ", "Xuân 68", "Lý Nam Đế", "Nguyễn Văn Linh", "Nguyễn Hoàng", "Lê Văn Hưu",
    "Phan Bội Châu", "Phan Chu Trinh", "Trần Phú", "Hàm Nghi", "Duy Tân", "Tôn Đức Thắng",
    "Trần Quang Khải", "Lê Thánh Tôn", "Đặng Dung", "Yết Kiêu", "Nguyễn Khoa Chiêm",
    "Hồ Đắc Di", "Nguyễn Khánh Toàn", "Tự Đức", "Thiên Thai", "Hoài Thanh", "Văn Cao",
    "Phùng Hưng", "Trần Văn Kỷ", "Tô Hiến Thành", "Cao Bá Quát", "Nguyễn Du",
    "Nguyễn Đình Chiểu", "Lê Lai", "Trương Định", "Ngô Thời Nhậm", "Bạch Đằng",
    "Nguyễn Chí Diểu", "Hồ Xuân Hương", "Thái Phiên", "Trần Nguyên Hãn", "Lương Ngọc Quyến",
    "Nguyễn Văn Cừ", "Lâm Hoằng", "Hoàng Thị Loan", "Phạm Thị Liên", "Tùng Thiện Vương",
    "Nguyễn Khoa Văn", "Lê Minh", "Trần Thúc Nhẫn", "Nguyễn Hữu Thọ", "Vạn Xuân",
)
PLACES = ("Hương Giang", "Ngự Bình", "Phú Xuân", "Thuận Hóa", "Kim Long", "Vỹ Dạ", "Cố Đô",
          "Thần Kinh", "Bến Ngự", "Đông Ba", "Gia Hội", "An Cựu", "Thiên Mụ", "Hải Vân",
          "Bạch Mã", "Tam Giang", "Lăng Cô", "Thuận An", "Trường Tiền", "Sông Hương")
SECTORS = ("Thương mại", "Du lịch", "Xây dựng", "Đầu tư", "Dịch vụ", "Khách sạn", "Vận tải",
           "Sản xuất", "Bất động sản", "Thực phẩm")
PAGODAS = ("Từ Đàm", "Báo Quốc", "Diệu Đế", "Từ Hiếu", "Quốc Ân", "Huyền Không", "Linh Quang",
           "Trúc Lâm", "Thuyền Tôn", "Tường Vân", "Kim Tiên", "Từ Quang", "Vạn Phước", "Hồng Ân")
PARISHES = ("Phủ Cam", "Kim Long", "Thợ Đúc", "Bến Ngự", "Dương Sơn", "Nước Ngọt", "Thuận An")


def _ascii(text: str) -> str:
    """Vietnamese text without diacritics, lower case (for e-mail addresses)."""
    t = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in t if not unicodedata.combining(c)).lower()


@lru_cache(maxsize=1)
def _name_pool() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every full name: (names, ASCII stems for e-mails, is_female, surname weight)."""
    names, stems, female, weight = [], [], [], []
    for fem, middles, givens in ((False, MALE_MIDDLE, MALE_GIVEN),
                                 (True, FEMALE_MIDDLE, FEMALE_GIVEN)):
        for surname, w in zip(SURNAMES, SURNAME_WEIGHTS, strict=True):
            if surname == "Tôn":  # descendants of the Nguyễn lords: Tôn Thất / Tôn Nữ
                surname = "Tôn Nữ" if fem else "Tôn Thất"
            for m in middles:
                for g in givens:
                    full = f"{surname} {m} {g}"
                    names.append(full)
                    stems.append(_ascii(full).replace(" ", ""))
                    female.append(fem)
                    weight.append(w)
    return (np.array(names, dtype=object), np.array(stems, dtype=object), np.array(female),
            np.array(weight, float))


def _people(rng: np.random.Generator, n: int, female: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` synthetic people: (full names, ASCII stems, is_female)."""
    names, stems, is_female, weight = _name_pool()
    if female is None:
        female = rng.random(n) < 0.5
    out = np.empty(n, dtype=np.int64)
    for g in (False, True):
        sel = np.flatnonzero(female == g)
        cand = np.flatnonzero(is_female == g)
        p = weight[cand] / weight[cand].sum()
        out[sel] = cand[rng.choice(len(cand), size=len(sel), p=p)]
    return names[out], stems[out], female
