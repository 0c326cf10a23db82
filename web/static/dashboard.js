/* Operations-center dashboard: key figures, trend, hexagon heatmap, ward choropleth; live. */
"use strict";
(function () {
  const { cfg, esc, api, t } = Hue;
  const byId = (id) => document.getElementById(id);
  const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`);
  const fmt = (k, v) => (k === "count" ? (v === null || v === undefined ? "–" : v.toLocaleString()) : pct(v));
  let wardsGeo = null, byWard = [], hexMap = null, wardMap = null;
  window.hueDashboard = { refreshed: 0 };

  async function wardsGeojson() {
    if (!wardsGeo) {
      const resp = await fetch(`${cfg.base}/collections/wards/items?limit=100`, { headers: { Accept: "application/geo+json" } });
      wardsGeo = await resp.json();
    }
    return wardsGeo;
  }
  function drawTrend(groups) {
    const svg = byId("trend");
    const W = 600, H = 220, P = 30;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const recent = groups.slice(-52);
    if (!recent.length) { svg.innerHTML = ""; return; }
    const max = Math.max(...recent.map((g) => g.count), 1);
    const x = (i) => P + (i * (W - 2 * P)) / Math.max(recent.length - 1, 1);
    const y = (v) => H - P - (v * (H - 2 * P)) / max;
    const line = recent.map((g, i) => `${x(i).toFixed(1)},${y(g.count).toFixed(1)}`).join(" ");
    const onTime = recent.map((g, i) => `${x(i).toFixed(1)},${(H - P - (g.on_time_share || 0) * (H - 2 * P)).toFixed(1)}`).join(" ");
    svg.innerHTML = `<title>${esc(t("trend"))}</title>` +
      `<line x1="${P}" y1="${H - P}" x2="${W - P}" y2="${H - P}" stroke="#999"/>` +
      `<polyline points="${line}" fill="none" stroke="#6a3d9a" stroke-width="2.5"/>` +
      `<polyline points="${onTime}" fill="none" stroke="#1a9850" stroke-width="1.5" stroke-dasharray="4 3"/>` +
      `<text x="${P}" y="16" font-size="12">${esc(t("k_total"))}: max ${max}/week</text>` +
      `<text x="${W - P}" y="16" font-size="12" text-anchor="end" fill="#1a9850">— — ${esc(t("k_on_time"))}</text>` +
      `<text x="${P}" y="${H - 8}" font-size="11">${esc(recent[0].key)}</text>` +
      `<text x="${W - P}" y="${H - 8}" font-size="11" text-anchor="end">${esc(recent[recent.length - 1].key)}</text>`;
  }
  function drawTable(names) {
    const figs = ["count", "processed_share", "on_time_share", "satisfaction_share"];
    const head = `<tr><th scope="col">${esc(t("ward"))}</th>${figs.map((f) => `<th scope="col">${esc(t(f === "count" ? "k_total" : "k_" + f.replace("_share", "")))}</th>`).join("")}</tr>`;
    const rows = byWard.slice().sort((a, b) => b.count - a.count).map((g) => `<tr data-ward="${esc(g.key)}"><td>${esc(names[g.key] || g.key)}</td>${figs.map((f) => `<td>${fmt(f, g[f])}</td>`).join("")}</tr>`).join("");
    byId("wards").innerHTML = head + rows;
  }
  async function choropleth() {
    const geo = await wardsGeojson();
    const figure = byId("figure").value;
    const values = Object.fromEntries(byWard.map((g) => [g.key, g[figure]]));
    const data = { type: "FeatureCollection", features: geo.features.map((f) => ({
      type: "Feature", geometry: f.geometry,
      properties: { name: f.properties.name, value: values[f.properties.gso_code] ?? null } })) };
    const vals = Object.values(values).filter((v) => v !== null && v !== undefined);
    const lo = Math.min(...vals), hi = Math.max(...vals, lo + 1e-9);
    const colour = ["case", ["==", ["get", "value"], null], "#dddddd",
      ["interpolate", ["linear"], ["get", "value"], lo, "#fff7bc", (lo + hi) / 2, "#fd8d3c", hi, "#b10026"]];
    if (wardMap.getSource("wardfig")) {
      wardMap.getSource("wardfig").setData(data);
      wardMap.setPaintProperty("wardfig", "fill-color", colour);
    } else {
      wardMap.addSource("wardfig", { type: "geojson", data });
      wardMap.addLayer({ id: "wardfig", type: "fill", source: "wardfig", paint: { "fill-color": colour, "fill-opacity": 0.75 } }, "wards-line");
    }
    return geo;
  }
  async function refresh() {
    const [all, wards, weeks] = await Promise.all([
      api("/stats/incidents"), api("/stats/incidents?group_by=ward"), api("/stats/incidents?group_by=week&median=false")]);
    const g = all.groups[0] || {};
    for (const k of ["count", "processed_share", "on_time_share", "satisfaction_share"]) byId(`k-${k}`).textContent = fmt(k, g[k]);
    byWard = wards.groups;
    drawTrend(weeks.groups);
    const geo = await choropleth();
    drawTable(Object.fromEntries(geo.features.map((f) => [f.properties.gso_code, f.properties.name])));
    try {
      const hex = await api("/stats/incidents/hexbins");
      const max = Math.max(1, ...hex.features.map((f) => f.properties.count || 0));
      if (hexMap.getSource("hex")) hexMap.getSource("hex").setData(hex);
      else {
        hexMap.addSource("hex", { type: "geojson", data: hex });
        hexMap.addLayer({ id: "hex", type: "fill", source: "hex", paint: {
          "fill-color": ["interpolate", ["linear"], ["get", "count"], 1, "#fee5d9", max / 2, "#fb6a4a", max, "#a50f15"], "fill-opacity": 0.75 } });
      }
    } catch (e) { /* heatmap unavailable for now; the rest of the board stays up to date */ }
    window.hueDashboard.refreshed += 1;
  }
  function loaded(map) { return new Promise((r) => map.loaded() ? r() : map.once("load", r)); }
  async function start() {
    hexMap = Hue.baseMap("map", { zoom: 11.5, collapsed: true });
    wardMap = Hue.baseMap("wardmap", { zoom: 9.3, center: [107.55, 16.35], collapsed: true });
    window.hueMap = hexMap; window.hueWardMap = wardMap;
    await Promise.all([loaded(hexMap), loaded(wardMap)]);
    Hue.onlyLayers(hexMap, ["wards"]); Hue.onlyLayers(wardMap, ["wards"]);
    await refresh();
    byId("figure").addEventListener("change", choropleth);
    let timer = null;
    const bump = () => { clearTimeout(timer); timer = setTimeout(refresh, 2000); };
    Hue.stream("/incidents/events", bump, (on) => byId("live").classList.toggle("on", on));
    setInterval(refresh, 60000);
  }
  Hue.setupLang(() => refresh());
  start();
})();
