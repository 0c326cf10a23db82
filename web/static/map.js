/* Huế GIS public map and embed: MapLibre GL JS over the service's own tiles and styles. */
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("huegis-config").textContent);
  const I18N = window.HueI18n;
  let lang = I18N.chooseLang(cfg.lang);
  const byId = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  // ---------------------------------------------------------------- the view in the URL hash
  // #map=zoom/lat/lon&layers=a,b  (a link reproduces the view)
  function readHash() {
    const out = {};
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const m = (params.get("map") || "").split("/").map(Number);
    if (m.length === 3 && m.every(Number.isFinite)) {
      out.zoom = m[0]; out.center = [m[2], m[1]];
    }
    if (params.has("layers")) out.layers = params.get("layers").split(",").filter(Boolean);
    return out;
  }
  const fromHash = cfg.embed ? {} : readHash();
  const legendInfo = cfg.legend;  // [{id, title, title_vi, items, fields, ...}] from the style
  const allIds = legendInfo.map((l) => l.id);
  let visible = new Set((fromHash.layers || cfg.layers || cfg.default_layers).filter((id) => allIds.includes(id)));

  const map = new maplibregl.Map({
    container: "map",
    style: cfg.style_url,
    center: fromHash.center || cfg.center,
    zoom: fromHash.zoom !== undefined ? fromHash.zoom : cfg.zoom,
    attributionControl: false,
    maxBounds: [[106.5, 15.7], [108.8, 17.1]],
    cooperativeGestures: !!cfg.embed && window.self !== window.top,
  });
  window.hueMap = map;  // for the tests and the console
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric", maxWidth: 120 }), "bottom-left");
  map.addControl(new maplibregl.AttributionControl({ compact: true }), "bottom-right");

  function styleLayersOf(id) {
    return map.getStyle().layers.filter((l) => l.metadata && l.metadata["huegis:collection"] === id);
  }
  function applyVisibility() {
    for (const id of allIds) {
      for (const l of styleLayersOf(id)) {
        map.setLayoutProperty(l.id, "visibility", visible.has(id) ? "visible" : "none");
      }
    }
  }
  function writeHash() {
    if (cfg.embed) return;
    const c = map.getCenter();
    const z = map.getZoom().toFixed(2);
    const h = `map=${z}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}&layers=${[...visible].join(",")}`;
    history.replaceState(null, "", `#${h}`);
    updateSnippet();
  }

  // ---------------------------------------------------------------- layer switcher and legend
  const title = (l) => I18N.title(lang, l);
  function swatch(colour, kind) {
    const shape = kind === "point" ? "dot" : kind === "line" ? "line" : "box";
    return `<span class="swatch ${shape}" style="background:${esc(colour || "#888")}"></span>`;
  }
  function renderSwitcher() {
    const box = byId("layers");
    if (!box) return;
    box.querySelectorAll("div").forEach((d) => d.remove());
    for (const l of legendInfo) {
      const div = document.createElement("div");
      div.className = "layer-row";
      div.innerHTML = `<input type="checkbox" id="layer-${esc(l.id)}" value="${esc(l.id)}"${visible.has(l.id) ? " checked" : ""}>` +
        `<label for="layer-${esc(l.id)}">${swatch(l.fill || l.stroke, l.geometry)}${esc(title(l))}</label>`;
      div.querySelector("input").addEventListener("change", (ev) => {
        if (ev.target.checked) visible.add(l.id); else visible.delete(l.id);
        applyVisibility(); renderLegend(); writeHash();
      });
      box.appendChild(div);
    }
  }
  function renderLegend() {
    const box = byId("legend");
    box.querySelectorAll(".legend-layer").forEach((d) => d.remove());
    for (const l of legendInfo.filter((x) => visible.has(x.id))) {
      const div = document.createElement("div");
      div.className = "legend-layer";
      let html = `<h3>${swatch(l.fill || l.stroke, l.geometry)}${esc(title(l))}</h3>`;
      if (l.items.length) {
        html += "<ul>" + l.items.map((i) => `<li>${swatch(i.colour, l.geometry)}${esc(i.value === null ? I18N.t(lang, "other") : lang === "vi" ? i.label_vi : i.label)}</li>`).join("") + "</ul>";
      }
      div.innerHTML = html;
      box.appendChild(div);
    }
  }

  // ---------------------------------------------------------------- popups (public fields only)
  // Field titles and coded values in the interface's language, from the catalog (legend.fields).
  let popup = null;
  function popupHtml(info, props, loading = false) {
    const shown = (fl) => props[fl.name] !== undefined && props[fl.name] !== null && props[fl.name] !== "";
    const rows = info.fields.filter(shown)
      .map((fl) => `<tr><th scope="row">${esc(title(fl))}</th><td>${esc(I18N.choice(lang, fl, props[fl.name]))}</td></tr>`).join("");
    return `<div class="popup" data-collection="${esc(info.id)}" lang="${lang}"${loading ? ' data-loading="true"' : ""}><h3>${esc(title(info))}</h3><table>${rows}</table></div>`;
  }
  const interactive = () => map.getStyle().layers.filter((l) => l.metadata && l.metadata["huegis:collection"] && l.type !== "symbol" && !(l.type === "line" && l.source !== "wards")).map((l) => l.id);
  map.on("click", (e) => {
    const hits = map.queryRenderedFeatures(e.point, { layers: interactive() });
    if (!hits.length) return;
    // Points before areas, the topmost first.
    hits.sort((a, b) => (a.geometry.type.includes("Point") ? 0 : 1) - (b.geometry.type.includes("Point") ? 0 : 1));
    const f = hits[0];
    const info = legendInfo.find((l) => l.id === f.layer.metadata["huegis:collection"]);
    const props = f.properties;
    // Tiles below a layer's full-detail zoom carry only what the map draws with: the
    // feature's other public fields come by id (the public items route: public fields only).
    const loading = f.id !== undefined && f.id !== null && info.fields.some((fl) => !(fl.name in props));
    const shown = new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(e.lngLat)
      .setHTML(popupHtml(info, props, loading)).addTo(map);
    shown.huegis = { info, props, loading };
    popup = shown;
    if (loading) {
      const done = (more) => {
        shown.huegis = { info, props: { ...props, ...more }, loading: false };
        if (popup === shown && shown.isOpen()) shown.setHTML(popupHtml(info, shown.huegis.props));
      };
      fetch(`${cfg.base}/collections/${encodeURIComponent(info.id)}/items/${encodeURIComponent(f.id)}?f=json`)
        .then((r) => (r.ok ? r.json() : { properties: {} }))
        .then((doc) => done(doc.properties || {}))
        .catch(() => done({}));
    }
  });
  map.on("mousemove", (e) => {
    const hits = map.getStyle() ? map.queryRenderedFeatures(e.point, { layers: interactive() }) : [];
    map.getCanvas().style.cursor = hits.length ? "pointer" : "";
  });

  // ---------------------------------------------------------------- search (gazetteer)
  function parseResults(data) {
    const list = data.features || data.results || data.items || (Array.isArray(data) ? data : []);
    return list.map((r) => {
      const p = r.properties || r;
      let center = null;
      if (r.geometry && r.geometry.type === "Point") center = r.geometry.coordinates;
      else if (p.lon !== undefined && p.lat !== undefined) center = [p.lon, p.lat];
      else if (r.center) center = r.center;
      const bbox = r.bbox || p.bbox || null;
      return { name: p.name || p.title || p.label || "?", kind: p.kind || p.type || p.layer || "", center, bbox };
    }).filter((r) => r.center || r.bbox);
  }
  function setupSearch() {
    const form = byId("search-form");
    if (!form) return;
    const input = byId("search"), list = byId("search-results");
    let timer = null, results = [];
    function go(r) {
      if (r.bbox) map.fitBounds([[r.bbox[0], r.bbox[1]], [r.bbox[2], r.bbox[3]]], { padding: 40, maxZoom: 17 });
      else map.flyTo({ center: r.center, zoom: r.kind === "ward" ? 13 : Math.max(map.getZoom(), 16) });
      list.hidden = true;
      input.value = r.name;
    }
    function show(items, message) {
      list.innerHTML = "";
      if (message) list.innerHTML = `<li class="none">${esc(message)}</li>`;
      items.forEach((r, i) => {
        const li = document.createElement("li");
        li.innerHTML = `<button type="button" role="option" data-i="${i}">${esc(r.name)}<small>${esc(r.kind)}</small></button>`;
        li.querySelector("button").addEventListener("click", () => go(r));
        list.appendChild(li);
      });
      list.hidden = false;
    }
    async function search() {
      const q = input.value.trim();
      if (q.length < 2) { list.hidden = true; return; }
      try {
        const resp = await fetch(`${cfg.base}/search?q=${encodeURIComponent(q)}&limit=8`);
        if (!resp.ok) throw new Error(String(resp.status));
        results = parseResults(await resp.json());
        show(results, results.length ? null : I18N.t(lang, "search_none"));
      } catch (err) {
        show([], I18N.t(lang, "search_error"));
      }
    }
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 250); });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") list.hidden = true;
      if (e.key === "ArrowDown") { const b = list.querySelector("button"); if (b) { e.preventDefault(); b.focus(); } }
    });
    form.addEventListener("submit", (e) => { e.preventDefault(); if (results.length) go(results[0]); else search(); });
  }

  // ---------------------------------------------------------------- embed snippet, language, panel
  function updateSnippet() {
    const box = byId("embed-snippet");
    if (!box) return;
    const c = map.getCenter();
    const url = `${cfg.public_base}/embed?layers=${[...visible].join(",")}&center=${c.lng.toFixed(5)},${c.lat.toFixed(5)}&zoom=${map.getZoom().toFixed(1)}&lang=${lang}`;
    box.value = `<iframe src="${url}" width="600" height="400" style="border:0" title="${title({ title: "Huế map", title_vi: "Bản đồ Huế" })}" loading="lazy"></iframe>`;
  }
  function setLang(l) {
    lang = l;
    I18N.apply(lang);
    I18N.save(lang);
    renderSwitcher(); renderLegend(); updateSnippet();
    if (popup && popup.isOpen()) popup.setHTML(popupHtml(popup.huegis.info, popup.huegis.props, popup.huegis.loading));
  }
  function setupChrome() {
    const sw = byId("lang-switch");
    if (sw) sw.addEventListener("click", () => setLang(lang === "vi" ? "en" : "vi"));
    const toggle = byId("panel-toggle"), panel = byId("panel");
    if (toggle) {
      if (window.innerWidth < 640) { panel.hidden = true; toggle.setAttribute("aria-expanded", "false"); }
      toggle.addEventListener("click", () => {
        panel.hidden = !panel.hidden;
        toggle.setAttribute("aria-expanded", String(!panel.hidden));
        map.resize();
      });
    }
    const copy = byId("embed-copy");
    if (copy) copy.addEventListener("click", async () => {
      const box = byId("embed-snippet");
      box.select();
      try { await navigator.clipboard.writeText(box.value); } catch (e) { document.execCommand("copy"); }
      copy.textContent = I18N.t(lang, "copied");
    });
  }

  I18N.apply(lang);
  setupChrome();
  setupSearch();
  renderSwitcher();
  renderLegend();
  map.on("load", () => { applyVisibility(); writeHash(); updateSnippet(); });
  map.on("moveend", writeHash);
  window.addEventListener("hashchange", () => {
    const h = readHash();
    if (h.layers) { visible = new Set(h.layers.filter((id) => allIds.includes(id))); applyVisibility(); renderSwitcher(); renderLegend(); }
    if (h.center) map.jumpTo({ center: h.center, zoom: h.zoom });
  });
})();
