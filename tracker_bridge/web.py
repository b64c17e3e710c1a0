"""The operator's window: a dashboard, a JSON API, Prometheus metrics, and webhooks as a fast path to a poll.

Read-only except for the webhooks, which never act on their payload: a verified webhook only wakes the poll loop,
so the daemon still reads the truth from the tracker (and a forged or replayed webhook can do no more than an
early poll).
"""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tracker_bridge import secrets
from tracker_bridge.agents.trace import read_trace
from tracker_bridge.config import Settings
from tracker_bridge.models import Stage
from tracker_bridge.scoring.model import describe_weights, load_weights
from tracker_bridge.store import Store, TicketRow
from tracker_bridge.views import rejected_summaries, ticket_detail, ticket_summaries

SIGNATURE_HEADERS = ("x-hub-signature-256", "x-hub-signature", "linear-signature")


def verify_webhook(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """GitHub / Jira (X-Hub-Signature[-256]: sha256=<hmac>), Linear (Linear-Signature: <hmac>), GitLab (token)."""
    token = headers.get("x-gitlab-token")
    if token is not None:
        return hmac.compare_digest(token.encode(), secret.encode())
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    for name in SIGNATURE_HEADERS:
        value = headers.get(name)
        if value is not None:
            given = value.split("=", 1)[1] if value.startswith("sha256=") else value
            return hmac.compare_digest(given.strip().lower(), expected)
    return False


class StoreCollector(Collector):
    """Metrics computed from the store at scrape time: right after a restart, and across replicas."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = self.store.stage_counts()  # one grouped query, not a walk over every ticket
        by_stage = GaugeMetricFamily("tracker_bridge_tickets", "Tickets known, by stage", labels=["stage"])
        for stage in Stage:
            by_stage.add_metric([stage.value], counts.get(stage, 0))
        yield by_stage
        runs = self.store.all_runs()
        outcomes = CounterMetricFamily("tracker_bridge_runs", "Agent runs, by outcome", labels=["outcome"])
        for outcome in sorted({r.outcome or r.status for r in runs}):
            outcomes.add_metric([outcome], sum(1 for r in runs if (r.outcome or r.status) == outcome))
        yield outcomes
        spent = sum(r.cost_usd for r in runs)
        yield CounterMetricFamily("tracker_bridge_cost_usd", "Dollars spent on agent runs", spent)
        tokens = CounterMetricFamily("tracker_bridge_tokens", "Tokens used by agent runs", labels=["direction"])
        tokens.add_metric(["input"], sum(r.input_tokens for r in runs))
        tokens.add_metric(["output"], sum(r.output_tokens for r in runs))
        yield tokens
        errors = GaugeMetricFamily(
            "tracker_bridge_poll_failing", "1 when the last poll of a tracker failed", labels=["tracker"]
        )
        for c in self.store.cursors():
            errors.add_metric([c.tracker], 1.0 if c.last_error else 0.0)
        yield errors


PAGE_SIZE = 100  # tickets per dashboard page


def _row_html(t: dict[str, object]) -> str:
    pr = t["pr_url"]
    pr_cell = f'<a href="{html.escape(str(pr))}">pull request</a>' if pr else ""
    score = f"{t['score']:.2f}" if isinstance(t["score"], float) else ""
    ref = html.escape(str(t["ref"]))
    return (
        f'<tr class="{html.escape(str(t["stage"]))}"><td><a href="/tickets/{html.escape(str(t["tracker"]))}/{ref}">'
        f"{ref}</a></td><td>{html.escape(str(t['tracker']))}</td><td>{html.escape(str(t['stage']))}</td>"
        f"<td>{html.escape(str(t['column'] or ''))}</td><td>{score}</td><td>${float(str(t['cost_usd'])):.2f}</td>"
        f"<td>{pr_cell}</td><td>{html.escape(str(t['reason']))}</td></tr>"
    )


PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>tracker-bridge</title><style>
body{{font-family:system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}}
tr.review td{{background:#eef6ff}} tr.done td{{background:#eefbea}} tr.failed td{{background:#fdecec}}
tr.declined td{{background:#fff7e0}} .errors{{color:#b00}} pre{{white-space:pre-wrap}}
</style></head><body><h1>tracker-bridge</h1>{body}</body></html>"""


def create_app(settings: Settings, store: Store, wake: Callable[[], None] | None = None) -> Starlette:
    registry = CollectorRegistry()
    registry.register(StoreCollector(store))

    def find(tracker: str, ref: str) -> TicketRow | None:
        return store.ticket(tracker, ref)

    async def dashboard(request: Request) -> HTMLResponse:
        # Paged: the page stays fast with 10,000 stored tickets.
        asked = request.query_params.get("page", "1")
        page = max(int(asked), 1) if asked.isdigit() else 1
        rows = ticket_summaries(settings, store, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        total = sum(store.stage_counts().values())
        spent = store.total_cost()
        errors = "".join(
            f'<p class="errors">last poll of {html.escape(c.tracker)} failed: {html.escape(c.last_error)}</p>'
            for c in store.cursors()
            if c.last_error
        )
        errors += "".join(
            f'<p class="errors">skipped {html.escape(r["tracker"])}/{html.escape(r["ref"])}: '
            f'{html.escape(r["reason"])}</p>'
            for r in rejected_summaries(store)
        )
        pages = "".join(
            f" · <a href='/?page={n}'>{label}</a>"
            for n, label in ((page - 1, "previous"), (page + 1, "next"))
            if n >= 1 and (n - 1) * PAGE_SIZE < total
        )
        body = (
            f"<p>{total} ticket(s) · ${spent:.2f} spent · daily budget ${settings.agent.daily_budget_usd:.2f}"
            f" · <a href='/api/tickets'>JSON</a> · <a href='/metrics'>metrics</a>{pages}</p>"
            f"<p>scoring: {html.escape(describe_weights(load_weights(settings.state_dir)))}</p>{errors}"
            "<table><tr><th>ticket</th><th>tracker</th><th>stage</th><th>column</th><th>score</th><th>cost</th>"
            "<th>pull request</th><th>why</th></tr>" + "".join(_row_html(r) for r in rows) + "</table>"
        )
        return HTMLResponse(PAGE.format(body=body))

    async def ticket_page(request: Request) -> Response:
        row = find(request.path_params["tracker"], request.path_params["ref"])
        if row is None:
            return HTMLResponse(PAGE.format(body="<p>no such ticket</p>"), status_code=404)
        d = ticket_detail(settings, store, row)
        runs = "".join(
            f"<li>attempt {r['attempt']}: {html.escape(str(r['outcome'] or r['status']))}, {r['turns']} turn(s), "
            f"${r['cost_usd']:.2f} · <a href='/api/runs/{r['id']}/trace'>trace</a></li>"
            for r in d["runs"]
        )
        score = d["score_detail"]
        factors = "".join(
            f"<li><b>{html.escape(f['name'])}</b> {f['value']:.2f} × {f['weight']:.2f}: {html.escape(f['reason'])}</li>"
            for f in (score or {}).get("factors", [])
        )
        body = (
            f"<h2>{html.escape(d['ref'])}: {html.escape(d['title'])}</h2><p>stage <b>{d['stage']}</b> · "
            f"{html.escape(d['reason'])}</p><h3>score</h3><ul>{factors}</ul><h3>runs</h3><ul>{runs}</ul>"
            f"<p><a href='/'>all tickets</a></p>"
        )
        return HTMLResponse(PAGE.format(body=body))

    async def api_tickets(request: Request) -> JSONResponse:
        return JSONResponse(ticket_summaries(settings, store))

    async def api_rejected(request: Request) -> JSONResponse:
        return JSONResponse(rejected_summaries(store))

    async def api_ticket(request: Request) -> JSONResponse:
        row = find(request.path_params["tracker"], request.path_params["ref"])
        if row is None:
            return JSONResponse({"error": "no such ticket"}, status_code=404)
        return JSONResponse(ticket_detail(settings, store, row))

    async def api_trace(request: Request) -> JSONResponse:
        run = store.run(int(request.path_params["run_id"]))
        if run is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        return JSONResponse(read_trace(Path(run.trace_path)))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    async def healthz(request: Request) -> JSONResponse:
        failing = {c.tracker: c.last_error for c in store.cursors() if c.last_error}
        return JSONResponse({"ok": not failing, "poll_errors": failing}, status_code=200 if not failing else 503)

    async def webhook(request: Request) -> Response:
        tracker = request.path_params["tracker"]
        if tracker not in {t.name for t in settings.trackers}:
            return PlainTextResponse(f"no tracker named {tracker}", status_code=404)
        secret = secrets.get(settings.web.webhook_secret_env)
        if not secret:
            return PlainTextResponse(
                f"webhooks are off: set {settings.web.webhook_secret_env} to the webhook's secret", status_code=503
            )
        limit = settings.web.webhook_max_bytes
        body = await read_limited(request, limit)
        if body is None:
            return PlainTextResponse(
                f"the body is larger than {limit} bytes ([web] webhook_max_bytes); nothing of it was used",
                status_code=413,
                headers={"Connection": "close"},  # the rest of the body is not read: the connection ends here
            )
        headers = {k.lower(): v for k, v in request.headers.items()}
        # The signature is checked on the raw bytes before anything reads them as JSON.
        if not verify_webhook(secret, body, headers):
            return PlainTextResponse("signature does not match", status_code=401)
        if wake is not None:
            wake()
        return PlainTextResponse("poll scheduled", status_code=202)

    return Starlette(
        routes=[
            Route("/", dashboard),
            Route("/tickets/{tracker}/{ref:path}", ticket_page),
            Route("/api/tickets", api_tickets),
            Route("/api/rejected", api_rejected),
            Route("/api/tickets/{tracker}/{ref:path}", api_ticket),
            Route("/api/runs/{run_id:int}/trace", api_trace),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/webhooks/{tracker}", webhook, methods=["POST"]),
        ]
    )


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes: a declared Content-Length is
    refused before reading, a streamed body when its running total passes the limit (never held whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def serve_in_thread(app: Starlette, host: str, port: int) -> None:
    import threading

    import uvicorn

    # log_config=None: uvicorn's records reach the root logger and are rendered like every other line (logs.py).
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None))
    threading.Thread(target=server.run, daemon=True, name="web").start()
