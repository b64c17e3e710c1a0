"""Git over smart HTTP for the code-host simulators: the real `git http-backend` CGI behind a token check.

A code host's clone and push go through real git over real HTTP, so the connector's credential handling (token
passed per command, never written to the clone) is tested the way GitHub or GitLab would see it.

    server = GitHttpServer(root, token="t0k3n").start()      # its own loopback server
    bare = server.create_repo("acme/widgets", seed=workdir)  # root/acme/widgets.git, pushed from a work tree
    url = server.repo_url("acme/widgets")                     # http://127.0.0.1:PORT/acme/widgets.git
    ...
    server.stop()

Accepted credentials, as GitHub and GitLab accept them: HTTP Basic with the token as the password (any user name,
e.g. `x-access-token` or `oauth2`), or `Authorization: Bearer <token>` / `token <token>`. Anything else gets
401 with `WWW-Authenticate: Basic`, which git reports as an authentication failure. With `token=None` every request
is allowed (a public repository). `server.log` lists (method, path, user) of every request, for tests that count
clones and pushes. `backend.stall_pushes.set()` makes every push request hang without an answer (until cleared, at
most STALL_MAX_S), like a code host whose git front end stalls.

`GitHttpBackend.handle(request)` is the same logic for mounting on a `SimServer` (see `mount_git_http`); that path
only suits small pushes, because `SimServer` reads bodies by Content-Length and git sends larger packs chunked.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.sims.http import LoopbackServer, Request, Response, SimServer

GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
STALL_MAX_S = 60.0


@dataclass
class GitRequest:
    method: str
    path: str
    user: str | None

    @property
    def is_push(self) -> bool:
        return self.path.endswith("/git-receive-pack")


@dataclass
class GitHttpBackend:
    """Runs `git http-backend` for paths like /{owner}/{repo}.git/... under `root`, after checking the token."""

    root: Path
    token: str | None = None
    path_prefix: str = ""  # e.g. "/git" when mounted beside an API on one server
    log: list[GitRequest] = field(default_factory=list)
    stall_pushes: threading.Event = field(default_factory=threading.Event)

    def authorised_user(self, authorization: str | None) -> str | None:
        """The user name the credentials carry ('' for a bearer token), or None when they are missing or wrong."""
        if self.token is None:
            return "anonymous"
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme in ("bearer", "token"):
            return "token-user" if value.strip() == self.token else None
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return (user or "token-user") if self.token in (password, user) else None
        return None

    def owns(self, path: str) -> bool:
        return path.startswith(self.path_prefix + "/") and ".git/" in path

    def run(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body). `headers` have lower-cased names."""
        parts = urlsplit(raw_path)
        path = parts.path[len(self.path_prefix) :]
        user = self.authorised_user(headers.get("authorization"))
        self.log.append(GitRequest(method, path, user))
        if "git-receive-pack" in raw_path and self.stall_pushes.is_set():
            until = time.monotonic() + STALL_MAX_S
            while self.stall_pushes.is_set() and time.monotonic() < until:
                time.sleep(0.05)
        if user is None:
            return 401, {"WWW-Authenticate": 'Basic realm="git"', "Content-Type": "text/plain"}, b"Unauthorized\n"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "REQUEST_METHOD": method,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            # http-backend enables receive-pack (push) only for an authenticated REMOTE_USER.
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
        }
        if headers.get("content-encoding"):
            env["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
        if headers.get("git-protocol"):
            env["GIT_PROTOCOL"] = headers["git-protocol"]
        proc = subprocess.run([GIT_HTTP_BACKEND], input=body, env=env, capture_output=True, check=False)
        if proc.returncode != 0 and not proc.stdout:
            return 500, {"Content-Type": "text/plain"}, proc.stderr
        head, payload = _split_cgi(proc.stdout)
        status = 200
        out_headers: dict[str, str] = {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                out_headers[name.strip()] = value.strip()
        return status, out_headers, payload

    def handle(self, req: Request) -> Response | None:
        """A `SimServer.before` hook: answers git paths, returns None for everything else."""
        if not self.owns(req.path):
            return None
        query = "&".join(f"{k}={v}" for k, values in req.query.items() for v in values)
        path = req.path + (f"?{query}" if query else "")
        status, headers, payload = self.run(req.method, path, req.headers, req.body)
        return Response(status, payload, headers)


def mount_git_http(server: SimServer, root: Path, token: str | None, path_prefix: str = "") -> GitHttpBackend:
    """Serve git for /{prefix}/{owner}/{repo}.git/... from `server` itself (small pushes only, see module doc)."""
    backend = GitHttpBackend(root=root, token=token, path_prefix=path_prefix)
    server.before.insert(0, backend.handle)
    return backend


class GitHttpServer(LoopbackServer):
    """A loopback smart-HTTP git server for the bare repositories under `root` (handles chunked pushes)."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.backend = GitHttpBackend(root=self.root, token=token)

    @property
    def log(self) -> list[GitRequest]:
        return self.backend.log

    def repo_url(self, full_name: str) -> str:
        """http://127.0.0.1:PORT/owner/repo.git"""
        return f"{self.url}/{full_name}.git"

    def repo_path(self, full_name: str) -> Path:
        return self.root / f"{full_name}.git"

    def create_repo(self, full_name: str, seed: Path | None = None, branch: str = "main") -> Path:
        """A bare repository `owner/repo`, filled from the work tree `seed` (all its branches) when given."""
        bare = self.repo_path(full_name)
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git(bare.parent, "init", "--bare", "-q", "-b", branch, bare.name)
        if seed is not None:
            _git(seed, "push", "-q", str(bare), "--all")
        return bare

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        backend = self.backend

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, out, payload = backend.run(self.command, self.path, headers, body)
                self.send_response(status)
                for k, v in out.items():
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return _Handler


def _split_cgi(output: bytes) -> tuple[bytes, bytes]:
    """CGI output: header lines, a blank line, the body (http-backend ends lines with CRLF)."""
    crlf, lf = output.find(b"\r\n\r\n"), output.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf < lf):
        return output[:crlf], output[crlf + 4 :]
    if lf != -1:
        return output[:lf], output[lf + 2 :]
    return output, b""


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()
