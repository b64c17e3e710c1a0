"""A loopback HTTP server for simulators of remote APIs: routing, a request log, and fault injection.

Each simulator (Jira, GitHub, GitLab, Linear) registers its routes on a `SimServer`, keeps its own state, and lets
tests inject 429/5xx faults and count requests (the idle-cycle benchmarks read `server.log`).
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Fault:
    """Answer the next `count` matching requests with `status` (and headers such as Retry-After)."""

    status: int
    count: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    path_prefix: str = ""
    method: str | None = None

    def matches(self, req: Request) -> bool:
        return req.path.startswith(self.path_prefix) and (self.method is None or self.method == req.method)


Handler = Callable[..., Response]


class _LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (a killed agent or daemon) is not the simulator's failure


class LoopbackServer:
    """Starting, stopping and addressing a request-handler class on 127.0.0.1, on a free port.

    Subclasses say how to answer in `handler_class()`; this is shared by the REST simulators (SimServer), the git
    smart-HTTP server and the fake Anthropic API.
    """

    _httpd: ThreadingHTTPServer | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        handler = self.handler_class()
        # Without this every keep-alive answer waits ~40 ms for Nagle's algorithm: slow tests, nothing gained.
        handler.disable_nagle_algorithm = True
        self._httpd = _LoopbackHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimServer(LoopbackServer):
    """Routes like "/rest/api/3/issue/{key}" to handlers called as handler(request, **path_params)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.log: list[Request] = []
        self.faults: deque[Fault] = deque()
        self.lock = threading.RLock()
        self.before: list[Callable[[Request], Response | None]] = []

    # --- routing --------------------------------------------------------------------------------------------------

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def register(fn: Handler) -> Handler:
            self._routes.append((method.upper(), regex, fn))
            return fn

        return register

    def add_route(self, method: str, pattern: str, fn: Handler) -> None:
        self.route(method, pattern)(fn)

    def not_found(self, req: Request) -> Response:
        return Response(404, {"message": f"no route for {req.method} {req.path}"})

    def dispatch(self, req: Request) -> Response:
        with self.lock:
            self.log.append(req)
            for fault in list(self.faults):
                if fault.matches(req):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return Response(fault.status, fault.body or {"message": f"injected {fault.status}"}, fault.headers)
            for hook in self.before:
                early = hook(req)
                if early is not None:
                    return early
            allowed = False
            for method, regex, fn in self._routes:
                m = regex.match(req.path)
                if m:
                    allowed = True
                    if method == req.method:
                        return fn(req, **m.groupdict())
            if allowed:
                return Response(405, {"message": f"method {req.method} not allowed on {req.path}"})
            return self.not_found(req)

    # --- fault injection and counting ------------------------------------------------------------------------------

    def inject(self, status: int, count: int = 1, **kwargs: Any) -> None:
        self.faults.append(Fault(status=status, count=count, **kwargs))

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        return sum(1 for r in self.log if (method is None or r.method == method) and r.path.startswith(path_prefix))

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    resp = sim.dispatch(req)
                except Exception as exc:  # a simulator bug must show as a 500, not hang the client
                    resp = Response(500, {"message": f"simulator error: {exc!r}"})
                payload, ctype = resp.encoded()
                self.send_response(resp.status)
                headers = {"Content-Type": ctype, **resp.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD" and resp.status not in (204, 304):
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return _Handler
