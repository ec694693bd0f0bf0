"""A tiny GraphQL explorer that works offline: plain HTML and fetch(), nothing loaded from a CDN.

Ariadne's default GraphiQL page loads React and GraphiQL from a CDN, which operators behind
firewalls cannot reach. This page posts the query (with variables and a Bearer token kept in the
browser's localStorage) to the same URL and shows the JSON answer. For completion and docs, point a
desktop client (Altair, Insomnia, Postman) at the endpoint or load the SDL from `schema.graphql`.
"""

from __future__ import annotations

import html
from typing import Any

from ariadne.explorer import Explorer

DEFAULT_QUERY = """query Firing {
  alerts(status: FIRING, limit: 10) {
    id
    title
    severity
    status
    firedAt
    assignedTo { id name email }
  }
}
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fangorn Sentinel · GraphQL explorer</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1c1e21; }
  header { padding: 10px 16px; background: #1f2d3d; color: #fff; display: flex; gap: 12px; align-items: center; }
  header a { color: #9cc7ff; }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; padding: 12px 16px; height: calc(100vh - 70px); }
  section { display: flex; flex-direction: column; gap: 8px; min-height: 0; }
  textarea, pre { font: 13px ui-monospace, monospace; border: 1px solid #ccd; border-radius: 4px; padding: 8px;
    background: #fff; margin: 0; }
  textarea { resize: none; }
  #query { flex: 3; } #variables { flex: 1; }
  pre { flex: 1; overflow: auto; white-space: pre-wrap; }
  input { flex: 1; font: 13px ui-monospace, monospace; padding: 4px; }
  button { padding: 6px 14px; font-weight: 600; }
  label { font-weight: 600; }
</style>
</head>
<body>
<header>
  <strong>Fangorn Sentinel GraphQL</strong>
  <label for="token">Bearer token</label>
  <input id="token" type="password" placeholder="API key (sk_…) or session token (ss_…)" autocomplete="off">
  <button id="run" title="Ctrl+Enter">Run</button>
  <a href="__ENDPOINT__/schema.graphql" target="_blank">schema.graphql</a>
</header>
<main>
  <section>
    <label for="query">Query</label>
    <textarea id="query" spellcheck="false">__QUERY__</textarea>
    <label for="variables">Variables (JSON)</label>
    <textarea id="variables" spellcheck="false">{}</textarea>
  </section>
  <section>
    <label>Result <span id="status"></span></label>
    <pre id="result"></pre>
  </section>
</main>
<script>
  const endpoint = "__ENDPOINT__";
  const $ = (id) => document.getElementById(id);
  $("token").value = localStorage.getItem("sentinel.graphql.token") || "";
  $("query").value = localStorage.getItem("sentinel.graphql.query") || $("query").value;
  async function run() {
    localStorage.setItem("sentinel.graphql.token", $("token").value);
    localStorage.setItem("sentinel.graphql.query", $("query").value);
    let variables = {};
    try { variables = JSON.parse($("variables").value || "{}"); }
    catch (e) { $("result").textContent = "Variables are not valid JSON: " + e.message; return; }
    const headers = { "Content-Type": "application/json" };
    if ($("token").value) headers["Authorization"] = "Bearer " + $("token").value;
    const started = performance.now();
    try {
      const response = await fetch(endpoint, { method: "POST", headers,
        body: JSON.stringify({ query: $("query").value, variables }) });
      const text = await response.text();
      $("status").textContent = `HTTP ${response.status} · ${Math.round(performance.now() - started)} ms`;
      try { $("result").textContent = JSON.stringify(JSON.parse(text), null, 2); }
      catch { $("result").textContent = text; }
    } catch (e) { $("result").textContent = "Request failed: " + e.message; }
  }
  $("run").addEventListener("click", run);
  document.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(); });
</script>
</body>
</html>
"""


class OfflineExplorer(Explorer):
    """Serves the explorer page on GET (no external resources)."""

    def __init__(self, endpoint: str) -> None:
        self._html = _PAGE.replace("__ENDPOINT__", html.escape(endpoint, quote=True)).replace(
            "__QUERY__", html.escape(DEFAULT_QUERY)
        )

    def html(self, _request: Any) -> str:
        """The page."""
        return self._html
