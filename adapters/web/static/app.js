// Tioga's live page. Everything comes from the server's event stream
// (/api/events): one snapshot, then one update per batch period in which
// something changed. No polling: the page redraws when an update arrives.
"use strict";

const S = {
  props: new Map(),     // address -> {spec fields, value, time, len}
  roles: {},
  canWrite: false,
  // dozor-pass records by frame: spots, score, resolution (NaN = no record)
  n: 0, spots: new Float32Array(0), score: new Float32Array(0), res: new Float32Array(0),
  dirty: new Set(),
};
window.tioga = S; // for the browser test and for curious scientists

const $ = (id) => document.getElementById(id);

// --- values -------------------------------------------------------------
function prop(role, name) { const d = S.roles[role]; return d ? S.props.get(d + "/" + name) : undefined; }
function val(role, name, dflt) { const p = prop(role, name); return p && p.value !== undefined && p.value !== null ? p.value : dflt; }
function num(role, name) { const v = val(role, name, NaN); return typeof v === "number" ? v : NaN; }

function fmtInt(v) { return Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–"; }
function fmtNum(v, d) { return Number.isFinite(v) ? v.toFixed(d) : "–"; }
function fmtBytes(b) {
  if (!Number.isFinite(b)) return "–";
  const u = ["B", "kB", "MB", "GB", "TB", "PB"]; let i = 0;
  while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
  return b.toFixed(i ? 1 : 0) + " " + u[i];
}
function fmtValue(p) {
  const v = p.value;
  if (v === undefined) return p.query ? "(read with an input)" : (p.access.includes("r") ? "" : "(command)");
  if (v === null) return "NaN";
  if (typeof v === "object" && !Array.isArray(v)) return p.shape === "records" ? `${v.rows.toLocaleString("en-US")} records` : `${v.len.toLocaleString("en-US")} values`;
  if (Array.isArray(v)) {
    if (v.length && Array.isArray(v[0])) return v.length + " records: " + v.slice(0, 4).map((r) => "[" + r.map(fmtElem).join(", ") + "]").join(" ") + (v.length > 4 ? " …" : "");
    if (v.length > 12) return `${v.length} values: [` + v.slice(0, 8).map(fmtElem).join(", ") + ", …]";
    return "[" + v.map(fmtElem).join(", ") + "]";
  }
  return fmtElem(v);
}
function fmtElem(x) {
  if (typeof x === "number" && !Number.isInteger(x)) return String(+x.toPrecision(6));
  return String(x);
}

// --- per-frame records ----------------------------------------------------
function grow(n) {
  if (n <= S.spots.length) return;
  let cap = Math.max(1024, S.spots.length);
  while (cap < n) cap *= 2;
  for (const k of ["spots", "score", "res"]) {
    const a = new Float32Array(cap); a.fill(NaN); a.set(S[k]); S[k] = a;
  }
}
function resetPass() {
  S.n = 0; S.spots = new Float32Array(0); S.score = new Float32Array(0); S.res = new Float32Array(0);
}
function addPass(flat) {
  for (let i = 0; i + 3 < flat.length; i += 4) {
    const f = flat[i];
    if (!(f >= 0) || f > 1e8) continue;
    grow(f + 1);
    S.spots[f] = flat[i + 1]; S.score[f] = flat[i + 2] === null ? NaN : flat[i + 2]; S.res[f] = flat[i + 3] === null ? 0 : flat[i + 3];
    if (f + 1 > S.n) S.n = f + 1;
  }
}
function hitThreshold() { const t = num("stream", "hit-threshold"); return Number.isFinite(t) ? t : 0; }
function isHit(f, thr) { const s = S.score[f]; return s > 0 && s >= thr; }

// stats over frames [from, to): frames with a record, hits, mean resolution of hits
function stats(from, to) {
  const thr = hitThreshold();
  let frames = 0, hits = 0, rsum = 0, rn = 0;
  for (let f = Math.max(0, from); f < to; f++) {
    if (Number.isNaN(S.score[f])) continue;
    frames++;
    if (isHit(f, thr)) { hits++; if (S.res[f] > 0) { rsum += S.res[f]; rn++; } }
  }
  return { frames, hits, rate: frames ? 100 * hits / frames : NaN, res: rn ? rsum / rn : NaN };
}

// --- event stream -----------------------------------------------------------
function connect() {
  const es = new EventSource("api/events");
  es.addEventListener("snapshot", (e) => {
    const m = JSON.parse(e.data);
    S.roles = m.roles; S.canWrite = m.canWrite; S.allowWrites = m.allowWrites;
    S.frameView = m.frameView; S.heatMapFigure = m.heatMapFigure;
    S.props.clear();
    for (const d of m.devices) for (const p of d.props) S.props.set(p.address, p);
    S.devices = m.devices;
    resetPass(); if (m.pass) addPass(m.pass);
    buildDeviceTables();
    $("conn").textContent = "live"; $("conn").className = "conn-on";
    $("stream-addr").textContent = S.roles.stream || "";
    for (const a of S.props.keys()) S.dirty.add(a);
    schedule(true);
  });
  es.addEventListener("update", (e) => {
    const m = JSON.parse(e.data);
    for (const [a, u] of Object.entries(m.values || {})) {
      const p = S.props.get(a);
      if (!p) continue;
      p.value = u.value; p.time = u.time; p.len = u.len;
      p.quality = u.quality; p.cause = u.cause; p.reason = u.reason;
      S.dirty.add(a);
    }
    if (m.passReset) resetPass();
    if (m.pass) addPass(m.pass);
    schedule(m.passReset || (m.pass && m.pass.length > 0));
  });
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "conn-off"; };
}

let pending = false, passChanged = false;
function schedule(pc) {
  passChanged = passChanged || !!pc;
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(passChanged); passChanged = false; });
}

// --- rendering ----------------------------------------------------------------
function render(pc) {
  renderNow();
  renderHits(pc);
  renderRaster();
  updateDeviceTables();
  followTracker();
  document.body.dataset.updates = String((+document.body.dataset.updates || 0) + 1);
}

function renderNow() {
  const status = String(val("stream", "status", "–"));
  const st = $("now-status");
  st.textContent = status;
  st.className = "v status-" + (status.startsWith("error") ? "error" : status);
  const sid = num("stream", "series-id");
  $("now-series").textContent = Number.isFinite(sid) ? String(sid) : "–";
  const start = val("stream", "series-start", "");
  $("now-series-sub").textContent = [start ? "started " + start.replace("T", " ").replace(/\.\d+/, "") : "", val("stream", "encoding", ""),
    Number.isFinite(num("stream", "stream-version")) && num("stream", "stream-version") ? "Stream V" + num("stream", "stream-version") : ""].filter(Boolean).join(" · ");
  // the active detector device, else the series header's description
  let det = null;
  for (const d of S.roles.detectors || []) { const a = S.props.get(d + "/active"); if (a && a.value === true) det = d; }
  if (det) {
    $("now-detector").textContent = S.props.get(det + "/model")?.value || det.split("/").pop();
    $("now-detector-sub").textContent = `${det.split("/").pop()} · ${S.props.get(det + "/detector-mode")?.value || ""} · ${S.props.get(det + "/status")?.value || ""}`;
  } else {
    $("now-detector").textContent = val("stream", "detector-description", "") || "–";
    $("now-detector-sub").textContent = "";
  }
  const nimg = num("stream", "nimages");
  $("now-received").textContent = fmtInt(num("stream", "frames-received"));
  $("now-nimages").textContent = nimg > 0 ? "of " + fmtInt(nimg) + " announced" : "";
  $("now-analysed").textContent = fmtInt(num("stream", "frame-count"));
  $("now-written").textContent = fmtInt(num("stream", "frames-written"));
  const failed = num("stream", "files-failed");
  $("now-failed").textContent = failed > 0 ? fmtInt(failed) + " failed" : "";
  $("now-failed").className = failed > 0 ? "sub bad" : "sub";
  const lost = num("stream", "count-dropped");
  $("now-lost").textContent = fmtInt(lost);
  $("now-lost").className = "v num" + (lost > 0 ? " bad" : "");
  const rate = num("stream", "average-speed");
  $("now-rate").textContent = Number.isFinite(rate) ? rate.toFixed(1) + " frames/s" : "–";
  const size = val("stream", "image-size", null);
  $("now-mpx").textContent = Array.isArray(size) && Number.isFinite(rate) ? (rate * size[0] * size[1] / 1e6).toFixed(1) + " Mpx/s" : "";
  const qd = num("stream", "queue-depth"), qc = num("stream", "queue-capacity");
  $("now-queue").textContent = Number.isFinite(qd) ? `${fmtInt(qd)} / ${fmtInt(qc)}` : "–";
  const qs = String(val("stream", "queue-state", ""));
  $("now-queue-state").textContent = qs + (num("stream", "count-back-pressure") > 0 ? ` · back-pressure ${fmtInt(num("stream", "count-back-pressure"))}` : "");
  $("now-queue-state").className = qs.startsWith("full") ? "sub warn" : "sub";
  $("now-disk").textContent = fmtBytes(num("stream", "free-disk"));
  $("now-dir").textContent = val("stream", "writer-directory", "") || "–";
  $("now-template").textContent = val("stream", "writer-template", "") || "–";
  const errs = [val("stream", "writer-error", ""), val("stream", "last-error", "")].filter(Boolean);
  $("now-error").hidden = errs.length === 0;
  $("now-error").textContent = errs.join(" · ");
}

function lastN() { const v = +$("lastn").value; return v >= 1 ? Math.floor(v) : 200; }

function renderHits(pc) {
  const thr = hitThreshold();
  const N = lastN();
  for (const el of document.querySelectorAll(".lastn")) el.textContent = String(N);
  $("hits-count").textContent = fmtInt(num("stream", "hits"));
  const hr = num("stream", "hit-rate");
  $("hits-rate").textContent = Number.isFinite(hr) ? hr.toFixed(2) + " %" : "–";
  const all = stats(0, S.n), last = stats(S.n - N, S.n);
  $("hits-rate-last").textContent = Number.isFinite(last.rate) ? last.rate.toFixed(2) + " %" : "–";
  $("hits-res").textContent = Number.isFinite(all.res) ? all.res.toFixed(2) + " Å" : "–";
  $("hits-res-last").textContent = Number.isFinite(last.res) ? last.res.toFixed(2) + " Å" : "–";
  $("hits-thr").textContent = "hit: score ≥ " + fmtElem(thr) + " and > 0";
  $("hits-count").dataset.frames = String(all.frames);
  if (pc || !drawnOnce.hits) drawHits(thr, N);
}

const drawnOnce = {};

// setupCanvas sizes a canvas for the device pixel ratio and returns its context.
function setupCanvas(c, cssH) {
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 800;
  if (cssH) c.style.height = cssH + "px";
  const h = cssH || c.clientHeight || 300;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  return { g, w, h };
}

function niceTicks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(10));
  return out;
}

// drawHits: three panels sharing the frame axis: score per frame (hits
// orange), spots per frame, and hit rate / mean resolution over the last N
// frames. With more frames than pixels, each pixel column shows the range
// of its frames (min to max), so a single strong frame never disappears.
function drawHits(thr, N) {
  drawnOnce.hits = true;
  const { g, w, h } = setupCanvas($("hits-plot"), 420);
  const L = 62, R = 62, T = 8, B = 30, gap = 14;
  const ph = (h - T - B - 2 * gap) / 3, pw = w - L - R;
  const n = Math.max(S.n, 1);
  const X = (f) => L + (f + 0.5) * pw / n;
  g.font = "12px system-ui, sans-serif";
  const panels = [
    { title: "score", y0: T, key: "score" },
    { title: "spots", y0: T + ph + gap, key: "spots" },
    { title: `hit rate (%) and mean resolution of hits (Å), last ${N} frames`, y0: T + 2 * (ph + gap), key: "rolling" },
  ];
  // rolling statistics
  const rate = new Float32Array(S.n), mres = new Float32Array(S.n);
  { let frames = 0, hits = 0, rsum = 0, rn = 0;
    for (let f = 0; f < S.n; f++) {
      const add = (k, sgn) => { if (k < 0 || Number.isNaN(S.score[k])) return; frames += sgn; if (isHit(k, thr)) { hits += sgn; if (S.res[k] > 0) { rsum += sgn * S.res[k]; rn += sgn; } } };
      add(f, 1); add(f - N, -1);
      rate[f] = frames ? 100 * hits / frames : NaN; mres[f] = rn ? rsum / rn : NaN;
    } }
  let resMax = 0; for (let f = 0; f < S.n; f++) if (mres[f] > resMax) resMax = mres[f];
  resMax = resMax > 0 ? Math.ceil(resMax * 1.1) : 5;
  for (const p of panels) {
    let max = 1;
    if (p.key !== "rolling") { const a = S[p.key]; for (let f = 0; f < S.n; f++) if (a[f] > max) max = a[f]; max *= 1.05; }
    else max = 100;
    const Y = (v) => p.y0 + ph - (v / max) * ph;
    g.strokeStyle = "#d0d7de"; g.fillStyle = "#57606a"; g.lineWidth = 1;
    g.strokeRect(L, p.y0, pw, ph);
    g.textAlign = "right"; g.textBaseline = "middle";
    for (const t of niceTicks(0, max, 4)) { const y = Y(t); g.beginPath(); g.moveTo(L - 4, y); g.lineTo(L, y); g.stroke(); g.fillText(fmtElem(t), L - 6, y); }
    g.save(); g.translate(14, p.y0 + ph / 2); g.rotate(-Math.PI / 2); g.textAlign = "center"; g.fillText(p.key === "rolling" ? "hit rate (%)" : p.title, 0, 0); g.restore();
    if (p.key === "rolling") {
      g.textAlign = "left";
      const Yr = (v) => p.y0 + ph - (v / resMax) * ph;
      for (const t of niceTicks(0, resMax, 4)) { const y = Yr(t); g.beginPath(); g.moveTo(L + pw, y); g.lineTo(L + pw + 4, y); g.stroke(); g.fillText(fmtElem(t), L + pw + 6, y); }
      g.save(); g.translate(w - 10, p.y0 + ph / 2); g.rotate(Math.PI / 2); g.textAlign = "center"; g.fillStyle = "#0969da"; g.fillText("mean resolution (Å)", 0, 0); g.restore();
      line(g, rate, X, Y, "#bc4c00"); line(g, mres, X, Yr, "#0969da");
      g.textAlign = "left"; g.fillStyle = "#bc4c00"; g.fillText("hit rate", L + 6, p.y0 + 10); g.fillStyle = "#0969da"; g.fillText("mean resolution", L + 70, p.y0 + 10);
      continue;
    }
    columns(g, S[p.key], X, Y, pw, L, thr, p.key === "score");
  }
  // frame axis
  g.fillStyle = "#57606a"; g.textAlign = "center"; g.textBaseline = "top";
  const yb = T + 3 * ph + 2 * gap;
  for (const t of niceTicks(0, Math.max(S.n - 1, 1), 8)) { const x = X(t); g.beginPath(); g.moveTo(x, yb); g.lineTo(x, yb + 4); g.stroke(); g.fillText(fmtInt(t), x, yb + 6); }
  g.fillText("frame", L + pw / 2, yb + 17);
}

function line(g, a, X, Y, colour) {
  g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
  let pen = false;
  const step = Math.max(1, Math.floor(a.length / 2000));
  for (let f = 0; f < a.length; f += step) {
    const v = a[f];
    if (!Number.isFinite(v)) { pen = false; continue; }
    if (pen) g.lineTo(X(f), Y(v)); else { g.moveTo(X(f), Y(v)); pen = true; }
  }
  g.stroke(); g.lineWidth = 1;
}

// columns draws per-frame values: dots when frames are wider than 2 px,
// else one min-max bar per pixel column; hits in orange, others grey.
function columns(g, a, X, Y, pw, L, thr, colourHits) {
  const n = S.n;
  if (n === 0) return;
  if (pw / n >= 2) {
    for (let f = 0; f < n; f++) {
      const v = a[f]; if (!Number.isFinite(v)) continue;
      g.fillStyle = isHit(f, thr) ? "#e16f24" : "#8c959f";
      g.fillRect(X(f) - 1.5, Y(v) - 1.5, 3, 3);
    }
    return;
  }
  const cols = Math.ceil(pw);
  for (let c = 0; c < cols; c++) {
    const f0 = Math.floor(c * n / pw), f1 = Math.min(n, Math.floor((c + 1) * n / pw));
    let lo = Infinity, hi = -Infinity, hit = false;
    for (let f = f0; f < Math.max(f1, f0 + 1) && f < n; f++) {
      const v = a[f]; if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v; if (v > hi) hi = v; if (isHit(f, thr)) hit = true;
    }
    if (hi < lo) continue;
    g.fillStyle = hit ? "#e16f24" : "#8c959f";
    g.fillRect(L + c, Y(hi) - 1, 1, Math.max(2, Y(lo) - Y(hi) + 1));
  }
}

// --- raster ----------------------------------------------------------------------
// The colour scale of the heat-map figure (driver/raster): square root of
// score / best score through this ramp; not yet measured cells grey.
const PALETTE = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]];
const UNMEASURED = [150, 150, 150]; // raster.UnmeasuredColour
function colourOf(score, max) {
  if (!(score > 0) || !(max > 0)) return PALETTE[0];
  let t = Math.sqrt(score / max); if (t > 1) t = 1;
  const pos = t * (PALETTE.length - 1), i = Math.floor(pos);
  if (i >= PALETTE.length - 1) return PALETTE[PALETTE.length - 1];
  const f = pos - i, a = PALETTE[i], b = PALETTE[i + 1];
  return [0, 1, 2].map((k) => Math.floor(a[k] + f * (b[k] - a[k]) + 0.5));
}
function grid() {
  const lines = num("scan", "lines"), fpl = num("scan", "frames-per-line");
  if (!(lines > 0) || !(fpl > 0)) return null;
  return { lines, fpl, serp: val("scan", "serpentine", false) === true };
}
function cellOf(gr, f) { const line = Math.floor(f / gr.fpl); let col = f % gr.fpl; if (gr.serp && line % 2 === 1) col = gr.fpl - 1 - col; return [line, col]; }
function frameOf(gr, line, col) { if (gr.serp && line % 2 === 1) col = gr.fpl - 1 - col; return line * gr.fpl + col; }

const RG = {}; // raster geometry on the canvas, for hover and click
// The raster's layout on its canvas (CSS pixels), for the browser test.
window.tioga_raster = () => ({ fpl: RG.gr.fpl, serp: RG.gr.serp, L: RG.L, T: RG.T, cell: RG.cell });
function renderRaster() {
  const gr = grid();
  $("raster-none").hidden = !!gr; $("raster-box").hidden = !gr;
  $("raster-figure").hidden = !S.heatMapFigure;
  if (!gr) return;
  const c = $("raster-plot");
  const L = 56, R = 110, T = 30, B = 44;
  const avail = (c.clientWidth || 900) - L - R;
  const cell = Math.max(2, Math.min(24, Math.floor(avail / gr.fpl)));
  const H = T + B + cell * gr.lines;
  const { g, w } = setupCanvas(c, H);
  let max = 0, measured = 0;
  const total = gr.lines * gr.fpl;
  for (let f = 0; f < Math.min(S.n, total); f++) { const s = S.score[f]; if (!Number.isNaN(s)) { measured++; if (s > max) max = s; } }
  const img = g.createImageData(gr.fpl, gr.lines);
  for (let i = 0; i < total; i++) { img.data[4 * i] = UNMEASURED[0]; img.data[4 * i + 1] = UNMEASURED[1]; img.data[4 * i + 2] = UNMEASURED[2]; img.data[4 * i + 3] = 255; }
  for (let f = 0; f < Math.min(S.n, total); f++) {
    const s = S.score[f]; if (Number.isNaN(s)) continue;
    const [l, col] = cellOf(gr, f), k = 4 * (l * gr.fpl + col), rgb = colourOf(s, max);
    img.data[k] = rgb[0]; img.data[k + 1] = rgb[1]; img.data[k + 2] = rgb[2];
  }
  // draw the cells at their size without smoothing (an offscreen canvas of one pixel per cell)
  const off = document.createElement("canvas"); off.width = gr.fpl; off.height = gr.lines;
  off.getContext("2d").putImageData(img, 0, 0);
  g.imageSmoothingEnabled = false;
  g.drawImage(off, L, T, gr.fpl * cell, gr.lines * cell);
  Object.assign(RG, { gr, L, T, cell, max });
  // title
  g.fillStyle = "#1b1f24"; g.font = "600 13px system-ui, sans-serif"; g.textAlign = "left"; g.textBaseline = "alphabetic";
  const tmpl = String(val("stream", "writer-template", "")).split("/").pop().replace(/_?%05d.*$/, "");
  g.fillText(`${tmpl || "raster"} · series ${fmtInt(num("stream", "series-id"))} · ${gr.lines} × ${gr.fpl}${gr.serp ? " serpentine" : ""}`, L, 18);
  // axes
  g.font = "12px system-ui, sans-serif"; g.fillStyle = "#57606a"; g.strokeStyle = "#57606a";
  g.textAlign = "right"; g.textBaseline = "middle";
  for (const t of niceTicks(0, gr.lines - 1, Math.min(10, gr.lines))) { if (!Number.isInteger(t)) continue; const y = T + (t + 0.5) * cell; g.beginPath(); g.moveTo(L - 4, y); g.lineTo(L, y); g.stroke(); g.fillText(String(t), L - 6, y); }
  g.textAlign = "center"; g.textBaseline = "top";
  const yb = T + gr.lines * cell;
  for (const t of niceTicks(0, gr.fpl - 1, Math.min(12, gr.fpl))) { if (!Number.isInteger(t)) continue; const x = L + (t + 0.5) * cell; g.beginPath(); g.moveTo(x, yb); g.lineTo(x, yb + 4); g.stroke(); g.fillText(String(t), x, yb + 6); }
  g.fillText("column (frame in line)", L + gr.fpl * cell / 2, yb + 22);
  g.save(); g.translate(14, T + gr.lines * cell / 2); g.rotate(-Math.PI / 2); g.textBaseline = "middle"; g.fillText("line", 0, 0); g.restore();
  // best cell
  const best = num("scan", "best-frame");
  if (best >= 0 && best < total) {
    const [l, col] = cellOf(gr, best);
    g.strokeStyle = "#00e5ff"; g.lineWidth = Math.max(2, cell / 5);
    g.strokeRect(L + col * cell - 1, T + l * cell - 1, cell + 2, cell + 2); g.lineWidth = 1;
  }
  // colour bar
  const bx = L + gr.fpl * cell + 24, bh = Math.min(gr.lines * cell, 260), bw = 14;
  for (let y = 0; y < bh; y++) { const t = 1 - y / (bh - 1), rgb = colourOf(t * t * max, max); g.fillStyle = `rgb(${rgb})`; g.fillRect(bx, T + y, bw, 1); }
  g.strokeStyle = "#57606a"; g.strokeRect(bx, T, bw, bh);
  g.fillStyle = "#57606a"; g.textAlign = "left"; g.textBaseline = "middle";
  if (max > 0) for (const t of niceTicks(0, max, 5)) { const y = T + (1 - Math.sqrt(t / max)) * (bh - 1); g.fillText(fmtElem(t), bx + bw + 4, y); }
  g.fillText("score", bx - 2, T + bh + 12);
  g.fillStyle = `rgb(${UNMEASURED})`; g.fillRect(bx, T + bh + 24, bw, 10);
  g.fillStyle = "#57606a"; g.fillText("not yet", bx + bw + 4, T + bh + 29); g.fillText("measured", bx + bw + 4, T + bh + 41);
  $("raster-sub").textContent = `${fmtInt(measured)} of ${fmtInt(total)} cells measured · best score ${fmtNum(max, 1)}` +
    (best >= 0 ? ` at frame ${best} (line ${cellOf(gr, best)[0]}, column ${cellOf(gr, best)[1]}, cyan frame)` : "") +
    " · colour: square root of score / best score";
  c.dataset.measured = String(measured);
}

function rasterCell(ev) {
  if (!RG.gr) return null;
  const r = $("raster-plot").getBoundingClientRect();
  const x = ev.clientX - r.left - RG.L, y = ev.clientY - r.top - RG.T;
  const col = Math.floor(x / RG.cell), line = Math.floor(y / RG.cell);
  if (col < 0 || line < 0 || col >= RG.gr.fpl || line >= RG.gr.lines) return null;
  return { line, col, frame: frameOf(RG.gr, line, col), x: ev.clientX - r.left, y: ev.clientY - r.top };
}
function tipText(c) {
  const f = c.frame, s = S.score[f];
  if (f >= S.n || Number.isNaN(s)) return `frame ${f}\nline ${c.line}, column ${c.col}\nnot yet measured`;
  return `frame ${f}\nline ${c.line}, column ${c.col}\nscore ${fmtElem(s)}\nspots ${S.spots[f]}\nresolution ${S.res[f] > 0 ? S.res[f].toFixed(2) + " Å" : "–"}`;
}
function setupRaster() {
  const c = $("raster-plot"), tip = $("raster-tip");
  c.addEventListener("mousemove", (ev) => {
    const cell = rasterCell(ev);
    if (!cell) { tip.hidden = true; return; }
    tip.textContent = tipText(cell); tip.hidden = false;
    tip.style.left = (cell.x + 14) + "px"; tip.style.top = (cell.y + 10) + "px";
    c.style.cursor = "pointer";
  });
  c.addEventListener("mouseleave", () => { tip.hidden = true; });
  c.addEventListener("click", (ev) => {
    const cell = rasterCell(ev); if (!cell) return;
    $("frame-follow").checked = false;
    showFrame(String(cell.frame));
    $("frame").scrollIntoView({ behavior: "smooth" });
  });
}

// --- frame view ----------------------------------------------------------------------
let shownKey = "";
async function showFrame(which) {
  const scale = $("frame-scale").value;
  $("frame-scale-name").textContent = scale === "sqrt" ? "square-root" : "log";
  const err = $("frame-error");
  try {
    const r = await fetch("api/frame?frame=" + encodeURIComponent(which));
    const fi = await r.json();
    if (!r.ok) throw new Error(fi.error || r.statusText);
    $("frame-caption").innerHTML = "";
    const parts = [["frame", fi.frame], ["score", fi.known ? fmtElem(fi.score) : "–"], ["spots", fi.known ? fi.spots : "–"],
      ["resolution", fi.known && fi.resolution > 0 ? fi.resolution.toFixed(2) + " Å" : "–"], ["file", fi.file || "–"]];
    for (const [k, v] of parts) { const s = document.createElement("span"); s.innerHTML = `${k} <b></b> &nbsp; `; s.querySelector("b").textContent = String(v); $("frame-caption").appendChild(s); }
    if (fi.spotsNote) { const s = document.createElement("div"); s.className = "sub"; s.textContent = "spots not drawn: " + fi.spotsNote; $("frame-caption").appendChild(s); }
    $("frame-caption").dataset.frame = String(fi.frame);
    $("frame-number").value = String(fi.frame);
    if (!fi.render) throw new Error(S.frameView ? "no image file for this frame" : "the frame view is not configured on this server");
    const key = fi.path + "|" + scale;
    const img = $("frame-img");
    img.onerror = async () => {
      try { const rr = await fetch(img.src); const j = await rr.json(); err.textContent = j.error; } catch (e) { err.textContent = "cannot draw " + fi.path; }
      err.hidden = false;
    };
    img.onload = () => { err.hidden = true; };
    if (key !== shownKey || which !== "best") img.src = `api/frame.png?frame=${fi.frame}&scale=${scale}&t=${Date.now()}`;
    shownKey = key;
    img.alt = "frame " + fi.frame;
    err.hidden = true;
  } catch (e) {
    err.textContent = String(e.message || e); err.hidden = false;
  }
}
let lastShown = "";
function followTracker() {
  if (!$("frame-follow").checked) return;
  // the tracker's "shown" (or the scan's best frame) changed: show it
  const k = String(val("tracker", "shown", "")) + "|" + num("scan", "best-frame") + "|" + (val("tracker", "queue", {}).length || 0);
  if (k === lastShown) return;
  lastShown = k;
  if (S.n > 0 || val("tracker", "shown", "")) showFrame("best");
}
function setupFrame() {
  $("frame-form").addEventListener("submit", (e) => { e.preventDefault(); $("frame-follow").checked = false; showFrame($("frame-number").value); });
  $("frame-best").addEventListener("click", () => { $("frame-follow").checked = true; lastShown = ""; followTracker(); showFrame("best"); });
  $("frame-scale").addEventListener("change", () => { shownKey = ""; showFrame($("frame-number").value || "best"); });
}

// --- devices table -------------------------------------------------------------------------
const rows = new Map(); // address -> value cell
function buildDeviceTables() {
  const box = $("device-tables");
  box.innerHTML = ""; rows.clear();
  $("write-note").textContent = S.canWrite ? "writes allowed from this client" : (S.allowWrites ? "read-only for this client (not in the write lists)" : "read-only ([http] allow_writes is off)");
  for (const d of S.devices) {
    const det = document.createElement("details");
    det.open = (S.roles.detectors || []).includes(d.address) ? S.props.get(d.address + "/active")?.value === true : true;
    const sum = document.createElement("summary");
    sum.textContent = `${d.address} — ${d.description}`;
    det.appendChild(sum);
    const t = document.createElement("table"); t.className = "props";
    t.innerHTML = "<thead><tr><th>name</th><th>value</th><th>units</th><th>access</th><th>time</th><th>quality</th>" + (S.canWrite ? "<th>write</th>" : "") + "</tr></thead>";
    const tb = document.createElement("tbody");
    for (const p of d.props) {
      const tr = document.createElement("tr"); tr.title = p.description + (p.limits ? ` [${p.limits[0]} … ${p.limits[1]}]` : "");
      tr.dataset.address = p.address;
      const cells = [p.name, "", p.units, p.access, "", ""];
      for (const [i, text] of cells.entries()) { const td = document.createElement("td"); td.textContent = text; if (i === 0) td.className = "name"; if (i === 1) td.className = "val"; if (i === 4) td.className = "sub"; if (i === 5) td.className = "q"; tr.appendChild(td); }
      if (S.canWrite) {
        const td = document.createElement("td"); td.className = "w";
        if (p.access.includes("w") || p.access.includes("x")) {
          const inp = document.createElement("input"); inp.placeholder = p.access.includes("x") ? "argument" : p.type;
          const b = document.createElement("button"); b.textContent = p.access.includes("x") ? "Run" : "Set";
          b.addEventListener("click", () => write(p, inp.value, td));
          td.append(inp, " ", b);
        }
        tr.appendChild(td);
      }
      tb.appendChild(tr);
      rows.set(p.address, tr);
    }
    t.appendChild(tb); det.appendChild(t); box.appendChild(det);
  }
}
function updateDeviceTables() {
  for (const a of S.dirty) {
    const tr = rows.get(a), p = S.props.get(a);
    if (!tr || !p) continue;
    tr.children[1].textContent = fmtValue(p);
    tr.children[4].textContent = p.time ? new Date(p.time).toLocaleTimeString() : "";
    showQuality(tr, p);
    tr.classList.add("changed");
    setTimeout(() => tr.classList.remove("changed"), 50);
  }
  S.dirty.clear();
}
// showQuality fills the quality cell (good / uncertain / bad, the cause
// and reason on hover) and marks the row of a value that is not good.
function showQuality(tr, p) {
  if (!p.access.includes("r") || p.query) return;
  const q = p.quality || "good", td = tr.children[5];
  td.textContent = q;
  td.title = q === "good" ? "" : [p.cause, p.reason].filter(Boolean).join(": ");
  tr.classList.toggle("q-bad", q === "bad");
  tr.classList.toggle("q-uncertain", q === "uncertain");
}
async function write(p, text, td) {
  let v = text.trim();
  if (p.type === "bool") v = v === "true" || v === "1";
  else if (p.type !== "text" && p.shape === "scalar") v = v === "" ? 0 : Number(v);
  else if (p.type !== "text") v = v.replace(/[\[\]]/g, "").split(/[\s,]+/).filter(Boolean).map(Number);
  const r = await fetch("api/write", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ address: p.address, value: v }) });
  const j = await r.json().catch(() => ({}));
  td.title = r.ok ? "written" : (j.error || r.statusText);
  td.style.background = r.ok ? "#dafbe1" : "#ffebe9";
  setTimeout(() => { td.style.background = ""; }, 1500);
}

// --- start -----------------------------------------------------------------------------------
$("lastn").addEventListener("change", () => schedule(true));
window.addEventListener("resize", () => schedule(true));
setupRaster();
setupFrame();
connect();
