/* Inspector map: the reports of the inspector's wards, filters, clusters, details, actions, live. */
"use strict";
(function () {
  const { cfg, esc, api, t } = Hue;
  const byId = (id) => document.getElementById(id);
  let map = null, reports = new Map(), selected = null, me = null;
  const STATUS_COLOURS = { received: "#e31a1c", assigned: "#fd8d3c", in_progress: "#ff7f00", reopened: "#b10026", resolved: "#33a02c", rejected: "#777777", duplicate: "#999999" };
  const NEXT = ["assigned", "in_progress", "resolved", "rejected", "reopened"];
  // Field titles and coded values from the catalog, in the interface's language.
  const FIELDS = Object.fromEntries(cfg.fields.map((f) => [f.name, f]));
  const lang = () => Hue.state.lang;
  const fieldTitle = (name) => (FIELDS[name] ? HueI18n.title(lang(), FIELDS[name]) : t(`f_${name}`));
  const valueText = (name, v) => HueI18n.choice(lang(), FIELDS[name], v);
  function labelOptions() {
    for (const [id, name] of [["f-status", "status"], ["f-category", "category"], ["a-status", "status"]]) {
      const sel = byId(id);
      if (sel) sel.querySelectorAll("option[value]:not([value=''])").forEach((o) => { o.textContent = valueText(name, o.value); });
    }
  }

  function query() {
    const p = new URLSearchParams({ limit: "1000" });
    if (byId("f-status").value) p.set("status", byId("f-status").value);
    if (byId("f-category").value) p.set("category", byId("f-category").value);
    if (byId("f-overdue").checked) p.set("overdue", "true");
    return p.toString();
  }
  function geojson() {
    return { type: "FeatureCollection", features: [...reports.values()].filter((r) => r.lon !== null).map((r) => ({
      type: "Feature", geometry: { type: "Point", coordinates: [r.lon, r.lat] },
      properties: { ref: r.ref, status: r.status, category: r.category } })) };
  }
  function row(r) {
    const overdue = r.sla_due_at && !["resolved", "rejected", "duplicate"].includes(r.status) && new Date(r.sla_due_at) < new Date();
    return `<button type="button" data-ref="${esc(r.ref)}"><b>${esc(r.ref)}</b> · ${esc(valueText("category", r.category))} · <span class="status" data-status="${esc(r.status)}">${esc(valueText("status", r.status))}</span>${overdue ? ` · <span class="error">${esc(t("overdue"))}</span>` : ""}<br><small>${esc(r.address || r.ward_name || "")}</small></button>`;
  }
  function renderList() {
    const ul = byId("reports");
    ul.innerHTML = "";
    for (const r of reports.values()) {
      const li = document.createElement("li");
      li.dataset.ref = r.ref; li.innerHTML = row(r);
      li.querySelector("button").addEventListener("click", () => select(r.ref));
      ul.appendChild(li);
    }
    byId("count").textContent = `${reports.size}`;
    if (map && map.getSource("reports")) map.getSource("reports").setData(geojson());
  }
  async function load() {
    const data = await api(`/incidents?${query()}`);
    reports = new Map(data.items.map((r) => [r.ref, r]));
    renderList();
  }
  async function select(ref) {
    selected = ref;
    const [r, hist] = await Promise.all([api(`/incidents/${encodeURIComponent(ref)}`), api(`/incidents/${encodeURIComponent(ref)}/events`)]);
    const fields = ["ref", "category", "status", "priority", "channel", "address", "ward_name", "assignee", "created_at", "sla_due_at", "resolved_at", "reporter_name", "reporter_phone", "description"];
    const rows = fields.filter((f) => r[f] !== null && r[f] !== undefined && r[f] !== "").map((f) => `<tr data-field="${f}"><th scope="row">${esc(fieldTitle(f))}</th><td${f === "status" ? ` class="status" data-status="${esc(r.status)}"` : ""}>${esc(valueText(f, r[f]))}</td></tr>`).join("");
    const photos = (r.photos || []).map((p) => `<a href="${esc(p.large_url)}" target="_blank" rel="noopener"><img src="${esc(p.thumb_url)}" alt="${esc(t("photos"))} ${esc(r.ref)}"></a>`).join("");
    const history = hist.events.map((e) => `<li>${esc(e.at.slice(0, 16).replace("T", " "))} · ${esc(e.actor)} · ${esc(e.kind)}${e.to_status ? ` → ${esc(valueText("status", e.to_status))}` : ""}${e.note ? ` — ${esc(e.note)}` : ""}</li>`).join("");
    byId("detail").innerHTML = `<h2>${esc(r.ref)}</h2><table>${rows}</table>` +
      (photos ? `<h3>${esc(t("photos"))}</h3><div>${photos}</div>` : "") +
      `<h3>${esc(t("history"))}</h3><ol class="history">${history}</ol>` +
      `<form id="act"><label for="a-status">${esc(t("change_status"))}</label><select id="a-status">${NEXT.map((s) => `<option value="${s}">${esc(valueText("status", s))}</option>`).join("")}</select>` +
      `<label for="a-assignee">${esc(t("assign"))}</label><input id="a-assignee" value="${esc(r.assignee || `ward:${r.ward_code}`)}">` +
      `<label for="a-note">${esc(t("add_note"))}</label><textarea id="a-note" rows="2"></textarea>` +
      `<button type="button" id="do-status">${esc(t("change_status"))}</button><button type="button" id="do-assign">${esc(t("assign"))}</button><button type="button" id="do-note">${esc(t("add_note"))}</button>` +
      `<p id="act-error" class="error" role="alert"></p></form>`;
    const note = () => byId("a-note").value.trim() || null;
    async function act(path, body) {
      try {
        const updated = await api(`/incidents/${encodeURIComponent(ref)}/${path}`, { method: "POST", json: body });
        reports.set(updated.ref, Object.assign(reports.get(updated.ref) || {}, updated));
        renderList(); await select(ref);
      } catch (e) { byId("act-error").textContent = e.message; }
    }
    byId("do-status").addEventListener("click", () => act("status", { status: byId("a-status").value, note: note() }));
    byId("do-assign").addEventListener("click", () => act("assign", { assignee: byId("a-assignee").value, note: note() }));
    byId("do-note").addEventListener("click", () => {
      if (!note()) { byId("act-error").textContent = t("add_note"); byId("a-note").focus(); return; }
      act("notes", { note: note() });
    });
  }
  let reloadTimer = null;
  async function onEvent(ev) {
    if (!ev.ref) return;
    if (reports.has(ev.ref)) {
      try {
        const r = await api(`/incidents/${encodeURIComponent(ev.ref)}`);
        reports.set(r.ref, Object.assign(reports.get(r.ref), r));
        renderList();
        const li = document.querySelector(`#reports li[data-ref="${CSS.escape(ev.ref)}"]`);
        if (li) { li.classList.add("flash"); setTimeout(() => li.classList.remove("flash"), 3000); }
        if (selected === ev.ref && !document.activeElement.closest("#act")) select(ev.ref);
      } catch (e) { /* the report left this inspector's wards */ }
    } else {
      clearTimeout(reloadTimer); reloadTimer = setTimeout(load, 1000);
    }
  }
  function setupMap() {
    map = Hue.baseMap("map");
    window.hueMap = map;
    map.on("load", () => {
      Hue.onlyLayers(map, ["wards"]);
      map.addSource("reports", { type: "geojson", data: geojson(), cluster: true, clusterRadius: 40, clusterMaxZoom: 15 });
      map.addLayer({ id: "report-clusters", type: "circle", source: "reports", filter: ["has", "point_count"],
        paint: { "circle-color": "#6a3d9a", "circle-opacity": 0.8, "circle-radius": ["step", ["get", "point_count"], 14, 10, 18, 50, 24] } });
      map.addLayer({ id: "report-count", type: "symbol", source: "reports", filter: ["has", "point_count"],
        layout: { "text-field": ["get", "point_count_abbreviated"], "text-font": ["DejaVu Sans Book"], "text-size": 12 }, paint: { "text-color": "#fff" } });
      const colour = ["match", ["get", "status"]];
      for (const [k, v] of Object.entries(STATUS_COLOURS)) colour.push(k, v);
      colour.push("#333");
      map.addLayer({ id: "report-points", type: "circle", source: "reports", filter: ["!", ["has", "point_count"]],
        paint: { "circle-color": colour, "circle-radius": 7, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } });
      map.on("click", "report-clusters", async (e) => {
        const f = e.features[0];
        const zoom = await map.getSource("reports").getClusterExpansionZoom(f.properties.cluster_id);
        map.easeTo({ center: f.geometry.coordinates, zoom });
      });
      map.on("click", "report-points", (e) => select(e.features[0].properties.ref));
      if (me && me.wards && me.wards.length) fitWards();
    });
  }
  async function fitWards() {
    const pts = [...reports.values()].filter((r) => r.lon !== null);
    if (!pts.length) return;
    const b = new maplibregl.LngLatBounds();
    pts.forEach((r) => b.extend([r.lon, r.lat]));
    map.fitBounds(b, { padding: 40, maxZoom: 15, duration: 0 });
  }
  async function start() {
    byId("signin").hidden = true; byId("work").hidden = false; byId("signout").hidden = false;
    byId("whoami").textContent = `${me.name} (${me.role}${me.wards.length ? ": " + me.wards.join(", ") : ""})`;
    await load();
    setupMap();
    ["f-status", "f-category", "f-overdue"].forEach((id) => byId(id).addEventListener("change", load));
    Hue.stream("/incidents/events", onEvent, (on) => byId("live").classList.toggle("on", on));
  }
  labelOptions();
  Hue.setupLang(() => { labelOptions(); if (selected) select(selected); renderList(); });
  byId("signout").addEventListener("click", Hue.signOut);
  byId("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      me = await Hue.signIn(byId("username").value, byId("password").value);
      if (!["inspector", "admin"].includes(me.role)) throw new Error(`role ${me.role}: inspectors only`);
      start();
    } catch (err) { byId("signin-error").textContent = err.message; }
  });
  (async () => {
    if (Hue.token()) {
      try { me = await api("/auth/me"); if (me.role !== "public") { start(); return; } } catch (e) { /* expired */ }
    }
    byId("signin").hidden = false;
  })();
})();
