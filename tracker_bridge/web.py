"""The operator's window: a dashboard, a JSON API, Prometheus metrics, probes, and webhooks as a fast path to a poll.

Read-only except for two things. Webhooks never act on their payload: a verified webhook only wakes the poll loop,
so the daemon still reads the truth from the tracker (and a forged or replayed webhook can do no more than an early
poll). The control endpoints (stop, retry, pause, resume) only record a request in the store for the engine to act
on, and only for a caller holding the API token.

Who may see what: with `[web] api_token_env` set, the API and the controls need the token (`Authorization: Bearer`);
when `listen` is not a loopback address the pages and the metrics need it too (a browser signs in once at /login
and gets a cookie derived from the token). The probes are always open: they say nothing but "alive" and "ready".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import platform
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import structlog
import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tracker_bridge import __version__, dashboard_data, secrets
from tracker_bridge.agents.trace import read_trace
from tracker_bridge.config import Settings, TrackerKind
from tracker_bridge.control import ControlRow, Controls
from tracker_bridge.loop_health import LoopHealth
from tracker_bridge.scoring.model import describe_weights, load_weights
from tracker_bridge.store import Store, TicketRow, utcnow
from tracker_bridge.views import rejected_summaries, ticket_detail, ticket_summaries, ticket_summary
from tracker_bridge.workspaces import WorkspaceBytesCollector

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "tracker_bridge_session"

# --- webhooks --------------------------------------------------------------------------------------------------------

# Each service signs its webhooks one way; a tracker accepts only its own service's way, so a secret leaked through
# one scheme (a GitLab token is sent in clear) cannot be replayed as another.
SIGNATURE_SCHEMES: dict[str, str] = {
    "github": "x-hub-signature-256",  # sha256=<hex hmac of the body>
    "jira": "x-hub-signature",  # Jira Cloud: sha256=<hex hmac of the body>
    "linear": "linear-signature",  # <hex hmac of the body>
    "gitlab": "x-gitlab-token",  # the secret itself
    "local": "x-hub-signature-256",  # a script poking a local tracker signs like GitHub
}


def verify_webhook(secret: str, body: bytes, headers: dict[str, str], kind: TrackerKind | str) -> bool:
    """True when `headers` carry the signature scheme of a `kind` tracker and it matches `body` under `secret`."""
    header = SIGNATURE_SCHEMES.get(kind)
    value = headers.get(header) if header else None
    if value is None:
        return False
    if header == "x-gitlab-token":
        return hmac.compare_digest(value.encode(), secret.encode())
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = value.strip()
    if header != "linear-signature":
        if not given.startswith("sha256="):
            return False
        given = given.removeprefix("sha256=")
    return hmac.compare_digest(given.lower().encode(), expected.encode())


# --- binding ---------------------------------------------------------------------------------------------------------


class WebBindError(Exception):
    """The dashboard's address cannot be listened on; the message says which and how to fix it."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen before saying so: a busy port or a bad address is reported here, not lost in a server thread."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = exc.strerror or str(exc)
        fix = (
            "stop the other process on that port or choose another port in [web] listen"
            if exc.errno in (98, 48)  # EADDRINUSE on Linux, macOS
            else "use an address of this machine in [web] listen, e.g. 127.0.0.1:8787 or [::1]:8787"
        )
        raise WebBindError(f"[web] listen = {shown!r}: cannot listen there ({reason}). Fix: {fix}") from exc


def api_token(settings: Settings) -> str | None:
    """The API token, from the variable named by `[web] api_token_env` (the one place that reads it)."""
    return secrets.get(settings.web.api_token_env)


def security_warnings(settings: Settings) -> list[str]:
    """What an operator should hear at start: a dashboard reachable from the network without a token."""
    web = settings.web
    if is_loopback(web.host) or api_token(settings):
        return []
    return [
        f"[web] listen = {web.listen!r} is reachable from other machines and {web.api_token_env} is not set: "
        "anyone who can reach it sees every ticket. Fix: export "
        f"{web.api_token_env}=<a long random token>, or listen on 127.0.0.1"
    ]


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


def serve_in_thread(app: Starlette, sock: socket.socket) -> uvicorn.Server:
    """Serve on an already bound socket; set `should_exit` on the returned server to stop it."""
    # log_config=None: uvicorn's records reach the root logger and are rendered like every other line (logs.py).
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="web").start()
    return server


# --- metrics ---------------------------------------------------------------------------------------------------------


class StoreCollector(Collector):
    """Metrics computed from the store at scrape time (aggregate queries): right after a restart, across replicas."""

    def __init__(self, store: Store, loop: LoopHealth | None) -> None:
        self.store = store
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "tracker_bridge_build_info", "Always 1; the labels say which build runs", labels=["version", "python"]
        )
        info.add_metric([__version__, platform.python_version()], 1.0)
        yield info
        by_stage = GaugeMetricFamily("tracker_bridge_tickets", "Tickets known, by stage", labels=["stage"])
        for stage, n in dashboard_data.stage_counts(self.store).items():
            by_stage.add_metric([stage], n)
        yield by_stage
        outcomes = CounterMetricFamily("tracker_bridge_runs", "Agent runs, by outcome", labels=["outcome"])
        for outcome, n in sorted(dashboard_data.run_outcome_counts(self.store).items()):
            outcomes.add_metric([outcome], n)
        yield outcomes
        usage = dashboard_data.usage_totals(self.store)
        yield CounterMetricFamily("tracker_bridge_cost_usd", "US dollars spent on agent runs", usage.cost_usd)
        tokens = CounterMetricFamily("tracker_bridge_tokens", "Tokens used by agent runs", labels=["direction"])
        tokens.add_metric(["input"], usage.input_tokens)
        tokens.add_metric(["output"], usage.output_tokens)
        yield tokens
        failing = GaugeMetricFamily(
            "tracker_bridge_poll_failing", "1 when the last poll of a tracker failed", labels=["tracker"]
        )
        polled = GaugeMetricFamily(
            "tracker_bridge_last_poll_success_timestamp_seconds",
            "Unix time of the last successful poll of a tracker",
            labels=["tracker"],
        )
        for c in dashboard_data.cursors(self.store):
            failing.add_metric([c.tracker], 1.0 if c.last_error else 0.0)
            if c.polled_at is not None:
                polled.add_metric([c.tracker], _unix(c.polled_at))
        yield failing
        yield polled
        if self.loop is not None and self.loop.last_finished_wall is not None:
            yield GaugeMetricFamily(
                "tracker_bridge_last_cycle_timestamp_seconds",
                "Unix time the poll loop last finished a cycle",
                self.loop.last_finished_wall,
            )


def _unix(naive_utc: datetime) -> float:
    return (naive_utc - datetime(1970, 1, 1)).total_seconds()


# --- access ----------------------------------------------------------------------------------------------------------


class Access:
    """The API token and where it is needed. The token is read once, at start, from the named variable."""

    def __init__(self, settings: Settings) -> None:
        self.env = settings.web.api_token_env
        self.token = api_token(settings)
        self.pages_need_token = self.token is not None and not is_loopback(settings.web.host)
        # The browser keeps a value derived from the token, never the token itself.
        self.session = (
            hmac.new(self.token.encode(), b"tracker-bridge dashboard session", hashlib.sha256).hexdigest()
            if self.token
            else None
        )

    def bearer_ok(self, request: Request) -> bool:
        if self.token is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def cookie_ok(self, request: Request) -> bool:
        given = request.cookies.get(SESSION_COOKIE, "")
        return self.session is not None and hmac.compare_digest(given.encode(), self.session.encode())

    def reader_ok(self, request: Request, *, api: bool) -> bool:
        """May this request read? The API needs the token whenever one is set; pages only off loopback."""
        needed = self.token is not None if api else self.pages_need_token
        return not needed or self.bearer_ok(request) or self.cookie_ok(request)


# Handlers that read the store are plain functions run in a worker thread, so a slow page (a large store, a busy
# SQLite writer) never holds up the event loop, and /healthz answers at once whatever else is being served.
Handler = Callable[[Request], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


# --- the app ---------------------------------------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return f"${(value or 0.0):,.2f}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") + "Z" if value else ""


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    return dashboard_data.human_duration((utcnow() - value).total_seconds()) + " ago"


def _link(url: str | None) -> str:
    """A URL from a tracker or code host, fit for an href: a `javascript:` link in a ticket never becomes clickable."""
    return url if url and url.split(":", 1)[0].lower() in ("http", "https", "file") else "#"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters.update(
        money=_money,
        when=_when,
        ago=_ago,
        link=_link,
        duration=dashboard_data.human_duration,
        quote=lambda s: quote(s, safe=""),
    )
    return templates


def spend_chart(days: list[dashboard_data.DaySpend], budget: float) -> dict[str, Any]:
    """Geometry of the 30-day spend chart, drawn as SVG by the template (no JavaScript, no chart library)."""
    width, height, gap = 600.0, 120.0, 2.0
    top = max([d.cost_usd for d in days] + [budget * 0.1, 0.01])
    scale = height / (top * 1.1)
    bar_w = width / max(1, len(days))
    bars = [
        {
            "x": round(i * bar_w + gap / 2, 1),
            "w": round(bar_w - gap, 1),
            "h": round(d.cost_usd * scale, 1),
            "y": round(height - d.cost_usd * scale, 1),
            "label": f"{d.day.isoformat()}: {_money(d.cost_usd)}",
            "over": d.cost_usd > budget,
        }
        for i, d in enumerate(days)
    ]
    budget_y = round(height - budget * scale, 1) if budget * scale <= height else None
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "budget_y": budget_y,
        "top": _money(top),
        "first": days[0].day.isoformat() if days else "",
        "last": days[-1].day.isoformat() if days else "",
        "total": _money(sum(d.cost_usd for d in days)),
    }


def create_app(
    settings: Settings,
    store: Store,
    wake: Callable[[], None] | None = None,
    loop: LoopHealth | None = None,
) -> Starlette:
    loop = loop or LoopHealth(settings.bridge.poll_interval)
    access = Access(settings)
    # A store opened before tracker_bridge.control was first imported has no `controls` table yet.
    ControlRow.__table__.create(store.engine, checkfirst=True)  # type: ignore[attr-defined]
    controls = Controls(store)
    templates = make_templates()
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, loop))
    registry.register(loop.duration)
    registry.register(WorkspaceBytesCollector(settings.state_dir / "workspaces"))  # disk used by workspaces
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)

    def page(handler: Handler, *, sign_in: bool = True) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if not access.reader_ok(request, api=False):
                if sign_in:  # a person with a browser
                    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
                return _unauthorized(access)  # a scraper
            return await run_in_threadpool(handler, request)

        return guarded

    def api(handler: Handler) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if not access.reader_ok(request, api=True):
                return _unauthorized(access)
            return await run_in_threadpool(handler, request)

        return guarded

    def control(handler: Handler) -> Endpoint:
        # Bearer only, never the cookie: a page on another site cannot make the browser send this header.
        async def guarded(request: Request) -> Response:
            if access.token is None:
                return JSONResponse(
                    {"error": f"controls are off: set {access.env} to a token and send it as a bearer token"},
                    status_code=403,
                )
            if not access.bearer_ok(request):
                return _unauthorized(access)
            return await run_in_threadpool(handler, request)

        return guarded

    def common(request: Request) -> dict[str, Any]:
        return {
            "request": request,
            "version": __version__,
            "paused": controls.paused(),
            "controls_on": access.token is not None,
        }

    def find(tracker: str, ref: str) -> TicketRow | None:
        return store.ticket(tracker, ref)

    def int_param(request: Request, name: str) -> int:
        try:
            return max(1, int(request.query_params.get(name, "1")))
        except ValueError:
            return 1

    def now_context() -> dict[str, Any]:
        return {"now_items": dashboard_data.running_now(store), "paused": controls.paused()}

    def dashboard(request: Request) -> Response:
        today = utcnow().date()
        days = dashboard_data.spend_by_day(store, 30, today)
        budget = settings.agent.daily_budget_usd
        spent_today = days[-1].cost_usd if days else 0.0
        context = {
            **common(request),
            **now_context(),
            "counts": dashboard_data.stage_counts(store),
            "queue": dashboard_data.queue(store),
            "outcomes": dashboard_data.recent_outcomes(store, int_param(request, "outcomes_page")),
            "spent_today": spent_today,
            "budget": budget,
            "budget_pct": min(100.0, 100.0 * spent_today / budget) if budget else 0.0,
            "chart": spend_chart(days, budget),
            "trackers": [(t.name, store.cursor(t.name)) for t in settings.trackers],
            "loop": loop,
            "rejected": rejected_summaries(store),
            "weights": describe_weights(load_weights(settings.state_dir), settings.scoring.clarity_share),
        }
        return templates.TemplateResponse(request, "dashboard.html", context)

    def now_fragment(request: Request) -> Response:
        return templates.TemplateResponse(request, "_now.html", {**common(request), **now_context()})

    def tickets_list(request: Request) -> Response:
        stage = request.query_params.get("stage") or None
        listing = dashboard_data.tickets_page(store, int_param(request, "page"), stage=stage)
        return templates.TemplateResponse(
            request, "tickets.html", {**common(request), "listing": listing, "stage": stage,
                                      "counts": dashboard_data.stage_counts(store)}
        )

    def ticket_page(request: Request) -> Response:
        row = find(request.path_params["tracker"], request.path_params["ref"])
        if row is None:
            return templates.TemplateResponse(
                request, "missing.html", {**common(request), "what": "no such ticket"}, status_code=404
            )
        runs = store.runs(row.id)
        last = runs[-1] if runs else None
        context = {
            **common(request),
            "t": row,
            "score": row.score_model,
            "runs": runs,
            "cost": sum(r.cost_usd for r in runs),
            "timeline": dashboard_data.timeline(store, row),
            "tests": dashboard_data.test_outputs(last.trace_path) if last else [],
            "last_run": last,
            "durations": {r.id: dashboard_data.seconds_between(r.started_at, r.finished_at or utcnow()) for r in runs},
        }
        return templates.TemplateResponse(request, "ticket.html", context)

    def trace_page(request: Request) -> Response:
        run = store.run(int(request.path_params["run_id"]))
        if run is None:
            return templates.TemplateResponse(
                request, "missing.html", {**common(request), "what": "no such run"}, status_code=404
            )
        with store.session() as s:
            ticket = s.get(TicketRow, run.ticket_id)
        records = read_trace(Path(run.trace_path)) if run.trace_path else []
        context = {
            **common(request),
            "run": run,
            "t": ticket,
            "turns": dashboard_data.trace_turns(records),
            "events": len(records),
        }
        return templates.TemplateResponse(request, "trace.html", context)

    async def login(request: Request) -> Response:
        target = request.query_params.get("next", "/")
        target = target if target.startswith("/") and not target.startswith("//") else "/"
        if request.method == "POST":
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            given = (form.get("token") or [""])[0]
            if access.token is not None and access.session is not None and hmac.compare_digest(
                given.encode(), access.token.encode()
            ):
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(SESSION_COOKIE, access.session, httponly=True, samesite="strict")
                return response
            return templates.TemplateResponse(
                request, "login.html", {**common(request), "next": target, "error": "that token is not right"},
                status_code=401,
            )
        return templates.TemplateResponse(request, "login.html", {**common(request), "next": target, "error": ""})

    def api_tickets(request: Request) -> Response:
        if "page" in request.query_params:  # the paged form, for large stores
            listing = dashboard_data.tickets_page(store, int_param(request, "page"))
            rows = [ticket_summary(settings, store, line.ticket) for line in listing.items]
            return JSONResponse({"tickets": rows, "page": listing.page, "pages": listing.pages, "total": listing.total})
        return JSONResponse(ticket_summaries(settings, store))

    def api_rejected(request: Request) -> Response:
        return JSONResponse(rejected_summaries(store))

    def api_ticket(request: Request) -> Response:
        row = find(request.path_params["tracker"], request.path_params["ref"])
        if row is None:
            return JSONResponse({"error": "no such ticket"}, status_code=404)
        return JSONResponse(ticket_detail(settings, store, row))

    def api_trace(request: Request) -> Response:
        run = store.run(int(request.path_params["run_id"]))
        if run is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        return JSONResponse(read_trace(Path(run.trace_path)))

    def api_now(request: Request) -> Response:
        return JSONResponse(
            {
                "paused": controls.paused(),
                "running": [
                    {
                        "ref": i.ticket.ref,
                        "tracker": i.ticket.tracker,
                        "title": i.ticket.title,
                        "elapsed_s": round(i.elapsed_s, 1),
                        "turns": i.run.turns,
                        "tokens": i.tokens,
                        "cost_usd": round(i.run.cost_usd, 6),
                        "progress": i.ticket.progress,
                    }
                    for i in dashboard_data.running_now(store)
                ],
            }
        )

    def ticket_control(kind: str) -> Handler:
        def handler(request: Request) -> Response:
            ref = request.path_params["ref"]
            if store.find_ticket(ref) is None:
                return JSONResponse({"error": f"no ticket {ref}"}, status_code=404)
            request_id = controls.request(kind, ref, by="web")
            log.info("web.control", kind=kind, ref=ref, id=request_id)
            return JSONResponse({"id": request_id, "kind": kind, "ref": ref}, status_code=202)

        return handler

    def daemon_control(kind: str) -> Handler:
        def handler(request: Request) -> Response:
            request_id = controls.request(kind, None, by="web")
            log.info("web.control", kind=kind, id=request_id)
            return JSONResponse({"id": request_id, "kind": kind, "paused": controls.paused()}, status_code=202)

        return handler

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    async def healthz(request: Request) -> Response:
        idle = loop.seconds_since_progress()
        alive = loop.alive()
        body = {
            "ok": alive,
            "seconds_since_cycle": round(idle, 1),
            "limit_seconds": loop.limit,
            "cycles": loop.cycles,
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    def readyz(request: Request) -> Response:
        known = {c.tracker: c for c in dashboard_data.cursors(store)}
        trackers: dict[str, str] = {}
        for t in settings.trackers:
            c = known.get(t.name)
            if c is None or (c.polled_at is None and not c.last_error):
                trackers[t.name] = "not polled yet"
            elif c.last_error:
                trackers[t.name] = f"last poll failed: {c.last_error}"
            else:
                trackers[t.name] = "ok"
        ready = all(v == "ok" for v in trackers.values())
        return JSONResponse({"ok": ready, "trackers": trackers}, status_code=200 if ready else 503)

    async def webhook(request: Request) -> Response:
        tracker = request.path_params["tracker"]
        if tracker not in {t.name for t in settings.trackers}:
            return PlainTextResponse(f"no tracker named {tracker}", status_code=404)
        kind = settings.tracker(tracker).kind
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
        if not verify_webhook(secret, body, headers, kind):
            return PlainTextResponse(
                f"signature does not match (a {kind} tracker takes only the {SIGNATURE_SCHEMES[kind]} header)",
                status_code=401,
            )
        if wake is not None:
            wake()
        return PlainTextResponse("poll scheduled", status_code=202)

    return Starlette(
        routes=[
            Route("/", page(dashboard)),
            Route("/fragments/now", page(now_fragment)),
            Route("/tickets", page(tickets_list)),
            Route("/tickets/{tracker}/{ref:path}", page(ticket_page)),
            Route("/runs/{run_id:int}/trace", page(trace_page)),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/api/pause", control(daemon_control("pause")), methods=["POST"]),
            Route("/api/resume", control(daemon_control("resume")), methods=["POST"]),
            Route("/api/tickets/{ref:path}/stop", control(ticket_control("stop")), methods=["POST"]),
            Route("/api/tickets/{ref:path}/retry", control(ticket_control("retry")), methods=["POST"]),
            Route("/api/tickets", api(api_tickets)),
            Route("/api/now", api(api_now)),
            Route("/api/rejected", api(api_rejected)),
            Route("/api/tickets/{tracker}/{ref:path}", api(api_ticket)),
            Route("/api/runs/{run_id:int}/trace", api(api_trace)),
            Route("/metrics", page(metrics, sign_in=False)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/webhooks/{tracker}", webhook, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
    )


def _unauthorized(access: Access) -> Response:
    return JSONResponse(
        {"error": f"send the token from {access.env} as 'Authorization: Bearer <token>'"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="tracker-bridge"'},
    )

