"""The review page: one self-contained HTML document (no network, no build step), driven from
the keyboard. ``g`` good, ``b`` bad, ``s`` skip, ``u`` undo, ``n`` a note; the same as buttons."""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>groundset review</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.5rem;
         flex-wrap: wrap; align-items: baseline; }
header b { font-size: 1.05rem; }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem;
       padding: 1rem 1.2rem; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .8rem 1rem; }
#document { white-space: pre-wrap; max-height: 70vh; overflow: auto; }
mark.shared { background: #fff1a8; }
mark.nli { background: #cfe6ff; border-bottom: 2px solid #3b82f6; }
mark.nli.shared { background: #d9f2c4; }
.fields dt { font-weight: 600; margin-top: .4rem; } .fields dd { margin: 0 0 .3rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
td, th { padding: .2rem .4rem; border-bottom: 1px solid #eef0f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #17803d; font-weight: 600; } .fail { color: #b42318; font-weight: 600; }
.claims li { margin-bottom: .3rem; }
.actions { display: flex; gap: .5rem; flex-wrap: wrap; margin: .6rem 0; }
button { font: inherit; padding: .4rem .9rem; border-radius: 5px; border: 1px solid #aab2bf;
         background: #fff; cursor: pointer; }
button#good { border-color: #17803d; } button#bad { border-color: #b42318; }
kbd { font-size: .8rem; border: 1px solid #aab2bf; border-radius: 3px; padding: 0 .25rem; }
textarea { width: 100%; box-sizing: border-box; font: inherit; }
#status { min-height: 1.3rem; font-size: .9rem; } .error { color: #b42318; }
.legend mark { padding: 0 .3rem; }
</style></head>
<body>
<header><b>groundset review</b><span id="runs"></span><span id="progress"></span>
<span id="precision"></span></header>
<main>
<section><h3 id="title">Document</h3>
<p class="legend"><mark class="nli">window that decided a claim</mark>
<mark class="shared">words the answer shares</mark></p>
<div id="document"></div></section>
<section>
<dl class="fields" id="fields"></dl>
<div class="actions">
<button id="good" title="g">Good <kbd>g</kbd></button>
<button id="bad" title="b">Bad <kbd>b</kbd></button>
<button id="skip" title="s">Skip <kbd>s</kbd></button>
<button id="undo" title="u">Undo <kbd>u</kbd></button>
</div>
<label for="note">Note <kbd>n</kbd> (saved with the next label; Esc leaves it)</label>
<textarea id="note" rows="2"></textarea>
<div id="status"></div>
<h4>Scores against their thresholds</h4>
<table id="scores"><thead><tr><th>metric</th><th>score</th><th>threshold</th><th></th></tr>
</thead><tbody></tbody></table>
<h4>Claims and their evidence</h4><ul class="claims" id="claims"></ul>
<p id="sampling"></p>
</section>
</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
let current = null;
let busy = false;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function api(path, body) {
  const options = {headers: {"X-Groundset-Token": token}};
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function fmt(x) { return x === null || x === undefined ? "n/a" : Number(x).toFixed(3); }
// a claim's entailment (the default gate) where recorded, else its P(e) - P(c)
function claimValue(m) {
  return m.entailment === null || m.entailment === undefined
    ? "score " + fmt(m.score) : "P(e) " + fmt(m.entailment);
}

function renderDocument(text, marks) {
  const box = document.getElementById("document");
  box.replaceChildren();
  const cuts = new Set([0, text.length]);
  for (const m of marks) { cuts.add(m.start); cuts.add(m.end); }
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const [a, b] = [points[i], points[i + 1]];
    const over = marks.filter(m => m.start <= a && m.end >= b);
    const piece = text.slice(a, b);
    if (!over.length) { box.append(document.createTextNode(piece)); continue; }
    const kinds = [...new Set(over.map(m => m.kind))].sort();
    const mark = el("mark", {class: kinds.join(" ")}, piece);
    const claims = over.filter(m => m.kind === "nli").map(m => `${m.claim} (${claimValue(m)})`);
    if (claims.length) mark.title = "decides: " + claims.join("; ");
    box.append(mark);
  }
}

function render(data) {
  const p = data.progress;
  document.getElementById("runs").textContent = `runs: ${p.runs.join(", ")} · aspect ${p.aspect}`;
  document.getElementById("progress").textContent =
    `labelled ${p.labelled} (${p.this_sitting} now, ${p.skipped} skipped)` +
    ` · ${p.remaining} of ${p.candidates} left` + (p.pending ? ` · ${p.pending} saving` : "");
  const pr = p.accepted_precision;
  document.getElementById("precision").textContent = pr
    ? `accepted set: precision ${fmt(pr.value)} [${fmt(pr.low)}, ${fmt(pr.high)}]` +
      ` from ${p.accepted_labelled} labels of ${p.accepted_candidates}`
    : `accepted set: ${p.accepted_candidates} candidates, none labelled yet`;
  const status = document.getElementById("status");
  status.className = p.store_busy ? "error" : "";
  status.textContent = p.store_busy ? "labels wait for the store: " + p.store_busy : "";
  current = data.candidate;
  const fields = document.getElementById("fields");
  const scores = document.querySelector("#scores tbody");
  const claims = document.getElementById("claims");
  fields.replaceChildren(); scores.replaceChildren(); claims.replaceChildren();
  if (!current) {
    document.getElementById("title").textContent =
      p.store_busy ? "Waiting for the store" : "Nothing left to review";
    document.getElementById("document").replaceChildren();
    if (p.store_busy) setTimeout(() => act("/api/next"), 1500);
    return;
  }
  document.body.dataset.candidate = current.candidate_id;
  document.getElementById("title").textContent = current.title || "Document";
  renderDocument(current.document, current.marks);
  for (const [name, value] of Object.entries(current.fields)) {
    fields.append(el("dt", {}, name), el("dd", {"data-field": name}, value));
  }
  for (const s of current.scores) {
    const row = el("tr", {"data-metric": s.metric});
    const verdict = s.passes === null ? "" : (s.passes ? "pass" : "fail");
    const bound = s.threshold === null ? "none"
      : (s.higher_is_better ? "≥ " : "≤ ") + fmt(s.threshold);
    row.append(el("td", {title: s.description || ""}, s.metric),
               el("td", {class: "num"}, fmt(s.value)),
               el("td", {class: "num"}, bound), el("td", {class: verdict}, verdict));
    scores.append(row);
  }
  for (const m of current.marks.filter(m => m.kind === "nli")) {
    claims.append(el("li", {}, `${m.claim} — ${claimValue(m)}`));
  }
  const sampling = current.sampling;
  document.getElementById("sampling").textContent =
    `drawn ${sampling.phase}, weight ${sampling.weight}`;
}

async function act(path, body) {
  if (busy) return;
  busy = true;
  const status = document.getElementById("status");
  try {
    render(await api(path, body));
    if (path === "/api/label") { status.className = ""; status.textContent = "saved"; }
  } catch (error) {
    status.className = "error";
    status.textContent = error.message;
  } finally { busy = false; }
}

function label(value) {
  if (!current) return;
  const note = document.getElementById("note");
  const body = {candidate_id: current.candidate_id, value: value, note: note.value || null};
  note.value = "";
  act("/api/label", body);
}

document.getElementById("good").addEventListener("click", () => label(1));
document.getElementById("bad").addEventListener("click", () => label(0));
document.getElementById("skip").addEventListener("click",
  () => current && act("/api/skip", {candidate_id: current.candidate_id}));
document.getElementById("undo").addEventListener("click", () => act("/api/undo", {}));
document.addEventListener("keydown", (event) => {
  const note = document.getElementById("note");
  if (document.activeElement === note) {
    if (event.key === "Escape") note.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const keys = {g: () => label(1), b: () => label(0), u: () => act("/api/undo", {}),
    s: () => current && act("/api/skip", {candidate_id: current.candidate_id}),
    n: () => note.focus()};
  if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
});
act("/api/next").then(() => { document.body.dataset.ready = "1"; });
</script>
</body></html>
"""
