/* Huế GIS web pages: interface texts in Vietnamese (default) and English. */
"use strict";
window.HueI18n = (function () {
  const TEXTS = {
    vi: {
      title: "Bản đồ Huế", search_label: "Tìm địa điểm", search_placeholder: "Tìm phường, địa điểm…",
      search_help: "Gõ tên, không cần dấu", search_none: "Không tìm thấy", search_error: "Chưa tìm được, thử lại sau",
      layers: "Lớp bản đồ", layers_button: "Lớp", legend: "Chú giải", lang_switch: "EN",
      lang_switch_label: "Switch to English", other: "Khác", embed_title: "Nhúng bản đồ này",
      embed_help: "Chép đoạn mã này vào trang của bạn", copy: "Chép", copied: "Đã chép",
      popup_close: "Đóng", signin: "Đăng nhập", username: "Tên đăng nhập", password: "Mật khẩu",
      signout: "Đăng xuất", status: "Trạng thái", category: "Loại", overdue: "Quá hạn",
      all: "Tất cả", assign: "Giao", change_status: "Đổi trạng thái", add_note: "Thêm ghi chú",
      save: "Lưu", history: "Lịch sử", photos: "Ảnh", live: "Trực tiếp",
      inspector_title: "Bản đồ cán bộ kiểm tra", dashboard_title: "Trung tâm điều hành", planner_title: "Công cụ quy hoạch",
      figure: "Chỉ số", k_total: "Phản ánh", k_processed: "Đã xử lý", k_on_time: "Đúng hạn", k_satisfaction: "Hài lòng",
      choropleth: "Theo phường, xã", heatmap: "Điểm nóng", trend: "Xu hướng (theo tuần)", per_ward: "Từng phường, xã", ward: "Phường, xã",
      tools: "Công cụ", draw: "Vẽ vùng", finish: "Kết thúc vùng", clear: "Xóa", upload: "Hoặc tải lên vùng GeoJSON",
      collection: "Lớp giao cắt", flood_layer: "Độ sâu ngập (ảnh)", hint: "Nhấn vào bản đồ để xem thông tin tại chỗ.",
      export: "Xuất dữ liệu", export_flood: "Thửa bị ngập:", whats_here: "Tại đây có gì", area_results: "Trong vùng", flood_results: "Ngập lụt",
      f_ward_name: "Phường, xã", f_assignee: "Đơn vị, cán bộ xử lý", nearest: "Gần nhất",
      p_flood_depth: "Độ sâu ngập (m)", p_elevation: "Độ cao (m)", p_query_area: "Diện tích vùng (m²)",
      p_intersection: "Diện tích giao cắt (m²)", p_flooded_parcels: "Thửa bị ngập",
      p_flooded_area: "Diện tích ngập (m²)", p_depth: "Độ sâu trung bình / lớn nhất (m)",
    },
    en: {
      title: "Huế map", search_label: "Search places", search_placeholder: "Search wards, places…",
      search_help: "Type a name, diacritics optional", search_none: "Nothing found", search_error: "Search failed, try again later",
      layers: "Map layers", layers_button: "Layers", legend: "Legend", lang_switch: "VI",
      lang_switch_label: "Chuyển sang tiếng Việt", other: "Other", embed_title: "Embed this map",
      embed_help: "Copy this code into your page", copy: "Copy", copied: "Copied",
      popup_close: "Close", signin: "Sign in", username: "Username", password: "Password",
      signout: "Sign out", status: "Status", category: "Category", overdue: "Overdue",
      all: "All", assign: "Assign", change_status: "Change status", add_note: "Add note",
      save: "Save", history: "History", photos: "Photos", live: "Live",
      inspector_title: "Inspector map", dashboard_title: "Operations center", planner_title: "Planner tools",
      figure: "Figure", k_total: "Reports", k_processed: "Processed", k_on_time: "On time", k_satisfaction: "Satisfied",
      choropleth: "By ward", heatmap: "Hotspots", trend: "Trend (weekly)", per_ward: "Per ward", ward: "Ward",
      tools: "Tools", draw: "Draw an area", finish: "Finish the area", clear: "Clear", upload: "Or upload a GeoJSON polygon",
      collection: "Layer to intersect", flood_layer: "Flood depth (raster)", hint: "Click the map for what is there.",
      export: "Export", export_flood: "Flood exposure:", whats_here: "What's here", area_results: "In the area", flood_results: "Flood",
      f_ward_name: "Ward", f_assignee: "Assignee", nearest: "Nearest",
      p_flood_depth: "Flood depth (m)", p_elevation: "Elevation (m)", p_query_area: "Area (m²)",
      p_intersection: "Intersection (m²)", p_flooded_parcels: "Flooded parcels",
      p_flooded_area: "Flooded area (m²)", p_depth: "Mean / max depth (m)",
    },
  };
  function chooseLang(explicit) {
    if (explicit === "vi" || explicit === "en") return explicit;
    try {
      const saved = localStorage.getItem("huegis.lang");
      if (saved === "vi" || saved === "en") return saved;
    } catch (e) { /* storage unavailable (sandboxed iframe) */ }
    for (const l of navigator.languages || [navigator.language || ""]) {
      const code = (l || "").slice(0, 2).toLowerCase();
      if (code === "vi" || code === "en") return code;
    }
    return "vi";
  }
  function apply(lang, root) {
    const t = TEXTS[lang];
    document.documentElement.lang = lang;
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      const key = el.getAttribute("data-i18n");
      if (t[key] !== undefined) el.textContent = t[key];
    });
    (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = t[el.getAttribute("data-i18n-placeholder")];
    });
    const sw = document.getElementById("lang-switch");
    if (sw) sw.setAttribute("aria-label", t.lang_switch_label);
  }
  function save(lang) {
    try { localStorage.setItem("huegis.lang", lang); } catch (e) { /* ignore */ }
  }
  // The catalog's titles (style metadata ``huegis:legend``: layers {title, title_vi}, fields
  // {name, title, title_vi, choices: {value: [en, vi]}}) in the interface's language.
  const title = (lang, x) => (lang === "vi" ? x.title_vi : x.title) || x.title || x.name;
  function choice(lang, fieldEntry, value) {
    const c = fieldEntry && fieldEntry.choices && fieldEntry.choices[value];
    return c ? c[lang === "vi" ? 1 : 0] : value;
  }
  return { TEXTS, chooseLang, apply, save, title, choice, t: (lang, key) => TEXTS[lang][key] || key };
})();
