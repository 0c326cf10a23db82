/* Planner page: what's here, intersects and flood exposure of a drawn or uploaded area, the
   flood-depth raster, downloads. */
"use strict";
(function () {
  const { cfg, esc, api, t } = Hue;
  const byId = (id) => document.getElementById(id);
  const num = (v, d = 0) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(undefined, { maximumFractionDigits: d }));
  let drawing = false, vertices = [], area = null;
  const map = Hue.baseMap("map", { zoom: 14 });
  window.hueMap = map;
  window.huePlanner = { results: 0 };
  // Layer and field titles, coded values (land use…) from the catalog, in the interface's language.
  const LAYERS = Object.fromEntries(cfg.legend.map((l) => [l.id, l]));
  const lang = () => Hue.state.lang;
  const layerTitle = (id) => (LAYERS[id] ? HueI18n.title(lang(), LAYERS[id]) : id);
  const fieldOf = (id, name) => (LAYERS[id] || { fields: [] }).fields.find((f) => f.name === name);
  const valueText = (id, name, v) => HueI18n.choice(lang(), fieldOf(id, name), v);
  function labelOptions() {
    byId("collection").querySelectorAll("option").forEach((o) => { o.textContent = layerTitle(o.value); });
  }
  let lastHere = null, lastArea = null;

  function drawn() {
    const ring = vertices.length ? [...vertices, vertices[0]] : [];
    const features = [];
    if (area) features.push({ type: "Feature", geometry: area, properties: {} });
    else if (vertices.length >= 2) features.push({ type: "Feature", geometry: { type: "LineString", coordinates: ring }, properties: {} });
    vertices.forEach((v) => features.push({ type: "Feature", geometry: { type: "Point", coordinates: v }, properties: {} }));
    return { type: "FeatureCollection", features };
  }
  function redraw() { if (map.getSource("draw")) map.getSource("draw").setData(drawn()); }
  map.on("load", () => {
    Hue.onlyLayers(map, ["wards", "parcels"]);
    map.addSource("flood", { type: "raster", tileSize: 256, attribution: "Flood depth: synthetic model",
      tiles: [`${cfg.base}/collections/flood-depth/map/tiles/WebMercatorQuad/{z}/{y}/{x}`] });
    map.addLayer({ id: "flood", type: "raster", source: "flood", layout: { visibility: "none" }, paint: { "raster-opacity": 0.7 } }, "wards-line");
    map.addSource("draw", { type: "geojson", data: drawn() });
    map.addLayer({ id: "draw-fill", type: "fill", source: "draw", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": "#ff7f00", "fill-opacity": 0.2 } });
    map.addLayer({ id: "draw-line", type: "line", source: "draw", filter: ["!=", ["geometry-type"], "Point"], paint: { "line-color": "#ff7f00", "line-width": 2.5 } });
    map.addLayer({ id: "draw-points", type: "circle", source: "draw", filter: ["==", ["geometry-type"], "Point"], paint: { "circle-color": "#ff7f00", "circle-radius": 4 } });
  });
  map.on("click", async (e) => {
    if (drawing) { vertices.push([e.lngLat.lng, e.lngLat.lat]); byId("finish").disabled = vertices.length < 3; redraw(); return; }
    try { showHere(await api(`/query/whats-here?lon=${e.lngLat.lng.toFixed(6)}&lat=${e.lngLat.lat.toFixed(6)}`)); window.huePlanner.results += 1; }
    catch (err) { byId("error").textContent = err.message; }
  });
  function showHere(r) {
    byId("error").textContent = "";
    lastHere = r;
    const rows = [[t("f_ward_name"), r.ward ? r.ward.name : "–"], [t("p_flood_depth"), num(r.flood_depth_m, 2)], [t("p_elevation"), num(r.elevation_m, 1)],
      [layerTitle("parcels"), (r.parcels || []).map((p) => `${p.properties.parcel_no} (${valueText("parcels", "land_use", p.properties.land_use)})`).join(", ") || "–"],
      [layerTitle("construction"), (r.construction || []).length]];
    for (const [k, f] of Object.entries(r.nearest || {})) if (f) rows.push([`${t("nearest")}: ${layerTitle(k)}`, `${f.properties.name} — ${num(f.properties.distance_m)} m`]);
    byId("here").innerHTML = `<h2>${esc(t("whats_here"))}</h2><table class="detail">${rows.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`).join("")}</table>`;
  }
  async function analyse() {
    byId("error").textContent = "";
    const collection = byId("collection").value;
    try {
      const [inter, flood] = await Promise.all([
        api("/query/intersects?limit=1", { method: "POST", json: { collection, geometry: area } }),
        api("/query/flood-exposure?limit=10", { method: "POST", json: { geometry: area } })]);
      const s = inter.summary;
      lastArea = { collection, inter, flood };
      showArea(lastArea);
      byId("exports").hidden = false;
      window.huePlanner.results += 1;
    } catch (err) { byId("error").textContent = err.message; }
  }
  function showArea({ collection, inter, flood }) {
    const s = inter.summary;
    const klass = Object.keys(inter).find((k) => k.startsWith("by_"));
    const groups = klass ? inter[klass] : [];
    const byField = klass ? klass.slice(3) : null;  // by_land_use: grouped by the land_use field
    const ft = flood.totals;
    byId("area").innerHTML = `<h2>${esc(t("area_results"))}</h2>` +
      `<table class="detail"><tr><th scope="row">${esc(t("p_query_area"))}</th><td>${num(s.query_area_m2)}</td></tr>` +
      `<tr><th scope="row">${esc(layerTitle(collection))}</th><td id="r-count">${num(s.count)}</td></tr>` +
      `<tr><th scope="row">${esc(t("p_intersection"))}</th><td>${num(s.intersection_area_m2)}</td></tr></table>` +
      (groups.length ? `<table class="detail">${groups.map((g) => `<tr><th scope="row">${esc(valueText(collection, byField, Object.values(g)[0]))}</th><td>${num(g.count)}</td><td>${num(g.intersection_m2)} m²</td></tr>`).join("")}</table>` : "") +
      `<h2>${esc(t("flood_results"))}</h2><table class="detail">` +
      `<tr><th scope="row">${esc(t("p_flooded_parcels"))}</th><td id="r-flooded">${num(ft.flooded_parcels)} / ${num(ft.parcels)}</td></tr>` +
      `<tr><th scope="row">${esc(t("p_flooded_area"))}</th><td>${num(ft.flooded_area_m2)}</td></tr>` +
      `<tr><th scope="row">${esc(t("p_depth"))}</th><td>${num(ft.mean_depth_m, 2)} / ${num(ft.max_depth_m, 2)}</td></tr></table>`;
  }
  function setArea(geom) {
    area = geom; drawing = false; vertices = [];
    byId("draw").setAttribute("aria-pressed", "false"); byId("finish").disabled = true;
    redraw(); analyse();
  }
  byId("draw").addEventListener("click", () => {
    drawing = !drawing; area = null; vertices = [];
    byId("draw").setAttribute("aria-pressed", String(drawing)); redraw();
    map.getCanvas().style.cursor = drawing ? "crosshair" : "";
  });
  byId("finish").addEventListener("click", () => setArea({ type: "Polygon", coordinates: [[...vertices, vertices[0]]] }));
  byId("clear").addEventListener("click", () => { area = null; vertices = []; drawing = false; redraw(); byId("area").innerHTML = ""; byId("exports").hidden = true; });
  byId("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const doc = JSON.parse(await file.text());
      const geom = doc.type === "FeatureCollection" ? doc.features[0].geometry : doc.type === "Feature" ? doc.geometry : doc;
      if (!["Polygon", "MultiPolygon"].includes(geom.type)) throw new Error("a Polygon or MultiPolygon is needed");
      const b = new maplibregl.LngLatBounds();
      JSON.stringify(geom.coordinates).match(/-?\d+(\.\d+)?,-?\d+(\.\d+)?/g).forEach((p) => b.extend(p.split(",").map(Number)));
      map.fitBounds(b, { padding: 40, duration: 0 });
      setArea(geom);
    } catch (err) { byId("error").textContent = err.message; }
  });
  byId("collection").addEventListener("change", () => { if (area) analyse(); });
  byId("flood-layer").addEventListener("change", (e) => map.setLayoutProperty("flood", "visibility", e.target.checked ? "visible" : "none"));
  byId("exports").addEventListener("click", async (e) => {
    const b = e.target.closest("button");
    if (!b || !area) return;
    const what = b.dataset.what, f = b.dataset.f;
    const body = what === "intersects" ? { collection: byId("collection").value, geometry: area } : { geometry: area };
    try {
      const resp = await api(`/query/${what}?f=${f}`, { method: "POST", json: body, raw: true });
      const blob = await resp.blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `${what}.${f === "gpkg" ? "gpkg" : f === "csv" ? "csv" : "geojson"}`;
      document.body.appendChild(a); a.click(); a.remove();
    } catch (err) { byId("error").textContent = err.message; }
  });
  labelOptions();
  Hue.setupLang(() => { labelOptions(); if (lastHere) showHere(lastHere); if (lastArea) showArea(lastArea); });
})();
