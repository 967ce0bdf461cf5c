"""The labelling page: plain HTML and JavaScript the daemon serves at ``/`` with ``--http``.

Nothing is fetched from elsewhere and nothing is built. It shows the next
open request (its features as a table, the model's prediction and the
query probability), one button a class with keys 1-9, skip (``s``) and
undo (``u``): an answer is held a few seconds (or until the next one)
before it is sent, so that undo can take it back. It keeps the token in the
browser's session storage, given once in the field or as ``#token=...``,
and the person's name (sent as ``annotator``) in its local storage; a
request waiting for a second opinion is not shown to the person it waits on.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>streamal: label requests</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; color: #222; }
  table { border-collapse: collapse; margin: 1rem 0; }
  td, th { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; }
  button { font-size: 1.1rem; margin: .2rem; padding: .4rem .9rem; }
  #counters { color: #555; font-size: .9rem; }
  #held { color: #a60; }
  .hidden { display: none; }
</style>
</head>
<body>
<h1>Label requests</h1>
<div id="login" class="hidden">
  <label>API token <input id="token" size="48"></label>
  <button id="save-token">Use it</button>
  <p>The daemon wrote it to <code>streamal-out/http.token</code>.</p>
</div>
<div id="counters"><label>Your name <input id="who" size="12"></label> ·
  labels given: <span id="given">0</span> ·
  budget spent: <span id="spent">-</span> · accuracy estimate: <span id="accuracy">-</span></div>
<p id="held"></p>
<div id="request">
  <p id="empty">No open request right now.</p>
  <div id="current" class="hidden">
    <p>Request <code id="rid"></code>: the model predicts <b id="prediction"></b>
      (asked <span id="why"></span>, with probability <span id="qp"></span><span
      id="second"></span>).</p>
    <p id="probabilities"></p>
    <table id="features"></table>
    <div id="classes"></div>
    <p><label>Another label <input id="other" size="16"></label>
      <button id="send-other">Send</button></p>
    <p><button id="skip">Skip (s)</button> <button id="undo">Undo last answer (u)</button></p>
  </div>
</div>
<script>
"use strict";
const HOLD_MS = 4000;
let token = sessionStorage.getItem("streamal-token");
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) {
  token = hash.get("token");
  sessionStorage.setItem("streamal-token", token);
  history.replaceState(null, "", location.pathname);
}
let current = null, classes = [], skipped = new Set(), given = 0, held = null;
// who answers: a request held for a second opinion is never shown to the one it waits on
let who = localStorage.getItem("streamal-annotator") || "page";

function $(id) { return document.getElementById(id); }
async function api(path, body) {
  const init = {headers: {"Authorization": "Bearer " + token}};
  if (body !== undefined) {
    init.method = "POST"; init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const reply = await fetch(path, init);
  if (reply.status === 401) { $("login").classList.remove("hidden"); throw new Error("token"); }
  return reply.json();
}
function cell(row, text, head) {
  const td = document.createElement(head ? "th" : "td");
  td.textContent = text; row.appendChild(td);
}
function show(req) {
  current = req;
  $("empty").classList.toggle("hidden", !!req);
  $("current").classList.toggle("hidden", !req);
  if (!req) return;
  $("rid").textContent = req.request_id;
  $("prediction").textContent = req.prediction === null ? "nothing yet" : String(req.prediction);
  $("qp").textContent = Number(req.query_probability).toFixed(3);
  $("second").textContent = req.second_opinion
    ? ", a second opinion: another person's answer waits for yours" : "";
  const why = {strategy: "by the strategy: the model is unsure of it",
               cold_start: "while the model learns its first labels"};
  $("why").textContent = why[req.reason] || "by the strategy";
  $("probabilities").textContent = Object.entries(req.probabilities || {})
    .map(([c, p]) => c + " " + Number(p).toFixed(2)).join(" · ");
  const table = $("features"); table.innerHTML = "";
  for (const [name, value] of Object.entries(req.features)) {
    const row = table.insertRow(); cell(row, name, true); cell(row, String(value), false);
  }
  const box = $("classes"); box.innerHTML = "";
  classes.slice(0, 9).forEach((c, i) => {
    const b = document.createElement("button");
    b.textContent = (i + 1) + ": " + String(c);
    b.dataset.label = JSON.stringify(c);
    b.onclick = () => answer(c);
    box.appendChild(b);
  });
}
async function next() {
  const page = await api("/requests?limit=100");
  classes = page.classes;
  const taken = held ? held.request_id : null;
  show(page.requests.find(r => !skipped.has(r.request_id) && r.request_id !== taken &&
                              r.exclude_annotator !== who) || null);
}
async function send() {
  if (!held) return;
  const label = held; held = null; clearTimeout(label.timer);
  $("held").textContent = "";
  const reply = await api("/labels", {request_id: label.request_id, label: label.label,
                                      annotator: who});
  // applied, held for a second opinion, or accepted onto the Kafka labels topic
  if (["applied", "held", "accepted"].includes(reply.results[0].outcome)) {
    given += 1; $("given").textContent = given;
  }
  await stats();
}
async function answer(label) {
  if (!current) return;
  await send();
  held = {request_id: current.request_id, label: label};
  held.timer = setTimeout(send, HOLD_MS);
  $("held").textContent = "Answered " + current.request_id + ": " + String(label) +
    " (sent in a moment; u to undo)";
  await next();
}
function undo() {
  if (!held) return;
  clearTimeout(held.timer); held = null;
  $("held").textContent = "Last answer taken back.";
  next();
}
async function stats() {
  const s = await api("/stats");
  $("spent").textContent = (100 * s.budget_spent).toFixed(1) + " % of " +
    (100 * s.budget).toFixed(1) + " %";
  $("accuracy").textContent = s.accuracy === null ? "-" : s.accuracy.toFixed(3);
}
$("who").value = who;
$("who").onchange = () => {
  who = $("who").value.trim() || "page"; localStorage.setItem("streamal-annotator", who); next();
};
$("skip").onclick = () => { if (current) skipped.add(current.request_id); next(); };
$("undo").onclick = undo;
$("send-other").onclick = () => { const v = $("other").value.trim(); if (v) answer(v); };
$("save-token").onclick = () => {
  token = $("token").value.trim(); sessionStorage.setItem("streamal-token", token);
  $("login").classList.add("hidden"); next(); stats();
};
document.addEventListener("keydown", e => {
  if (e.target.tagName === "INPUT") return;
  if (e.key >= "1" && e.key <= "9" && classes[e.key - 1] !== undefined) answer(classes[e.key - 1]);
  else if (e.key === "s") $("skip").click();
  else if (e.key === "u") undo();
});
window.addEventListener("beforeunload", () => { if (held) send(); });
if (!token) $("login").classList.remove("hidden");
else { next(); stats(); setInterval(() => { if (!current) next(); stats(); }, 3000); }
</script>
</body>
</html>
"""
