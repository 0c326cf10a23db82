/* Shared by the staff pages: configuration, sign-in (bearer token), API calls, live feed. */
"use strict";
window.Hue = (function () {
  const cfg = JSON.parse(document.getElementById("huegis-config").textContent);
  const I18N = window.HueI18n;
  const state = { lang: I18N.chooseLang(cfg.lang) };
  const esc = (s) => String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const KEY = "huegis.token";
  function token() { try { return sessionStorage.getItem(KEY); } catch (e) { return null; } }
  async function api(path, opts = {}) {
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
    const resp = await fetch(cfg.base + path, Object.assign({}, opts, { headers }));
    if (!resp.ok) {
      let msg = `${resp.status}`;
      try { const b = await resp.json(); msg = b.description || msg; } catch (e) { /* not JSON */ }
      const err = new Error(msg); err.status = resp.status; throw err;
    }
    return opts.raw ? resp : resp.json();
  }
  async function signIn(username, password) {
    const body = new URLSearchParams({ username, password, grant_type: "password" });
    const resp = await fetch(cfg.base + "/auth/token", { method: "POST", body });
    if (!resp.ok) throw new Error((await resp.json()).description || "sign-in failed");
    const data = await resp.json();
    sessionStorage.setItem(KEY, data.access_token);
    return api("/auth/me");
  }
  function signOut() { sessionStorage.removeItem(KEY); location.reload(); }
  // Server-Sent Events over fetch (EventSource cannot send the bearer token); reconnects.
  function stream(path, onEvent, onState) {
    let stopped = false, lastId = null;
    async function run() {
      while (!stopped) {
        try {
          const headers = { Accept: "text/event-stream" };
          if (token()) headers.Authorization = `Bearer ${token()}`;
          if (lastId) headers["Last-Event-ID"] = lastId;
          const resp = await fetch(cfg.base + path, { headers });
          if (!resp.ok) throw new Error(String(resp.status));
          onState && onState(true);
          const reader = resp.body.getReader();
          const dec = new TextDecoder();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += dec.decode(value, { stream: true });
            let i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, i); buf = buf.slice(i + 2);
              const ev = { id: null, event: "message", data: "" };
              for (const line of block.split("\n")) {
                const [k, ...rest] = line.split(":");
                const v = rest.join(":").replace(/^ /, "");
                if (k === "id") ev.id = v; else if (k === "event") ev.event = v; else if (k === "data") ev.data += v;
              }
              if (ev.id) lastId = ev.id;
              if (ev.data) { try { onEvent(JSON.parse(ev.data), ev); } catch (e) { /* ignore bad data */ } }
            }
          }
        } catch (e) { /* reconnect below */ }
        onState && onState(false);
        if (!stopped) await new Promise((r) => setTimeout(r, 2000));
      }
    }
    run();
    return { stop() { stopped = true; } };
  }
  function setupLang(onChange) {
    I18N.apply(state.lang);
    const sw = document.getElementById("lang-switch");
    sw.addEventListener("click", () => {
      state.lang = state.lang === "vi" ? "en" : "vi";
      I18N.save(state.lang); I18N.apply(state.lang); onChange && onChange();
    });
  }
  function baseMap(container, options = {}) {
    const map = new maplibregl.Map(Object.assign({
      container, style: cfg.style_url, center: cfg.center, zoom: cfg.zoom, attributionControl: false,
    }, Object.fromEntries(Object.entries(options).filter(([k]) => k !== "collapsed"))));
    map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    map.addControl(new maplibregl.AttributionControl({ compact: true }), "bottom-right");
    if (options.collapsed) {  // small maps: the attribution stays one click away (the i button)
      map.once("load", () => map.getContainer().querySelectorAll(".maplibregl-compact-show")
        .forEach((el) => { el.classList.remove("maplibregl-compact-show"); el.removeAttribute("open"); }));
    }
    return map;
  }
  function onlyLayers(map, keep) {
    for (const l of map.getStyle().layers) {
      const c = l.metadata && l.metadata["huegis:collection"];
      if (c) map.setLayoutProperty(l.id, "visibility", keep.includes(c) ? "visible" : "none");
    }
  }
  const t = (key) => I18N.t(state.lang, key);
  return { cfg, state, esc, api, signIn, signOut, token, stream, setupLang, baseMap, onlyLayers, t };
})();
