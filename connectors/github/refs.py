"""Names GitHub uses: issue references (owner/repo#12) and repositories from git remote URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_REF = re.compile(r"^(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-_.]*)?)/(?P<repo>[A-Za-z0-9._-]+)#(?P<number>\d+)$")


@dataclass(frozen=True)
class IssueRef:
    owner: str
    repo: str
    number: int

    @classmethod
    def parse(cls, ref: str) -> IssueRef:
        m = _REF.match(ref.strip())
        if not m:
            raise ValueError(f"{ref!r} is not a GitHub issue reference like owner/repo#12")
        return cls(m["owner"], m["repo"], int(m["number"]))

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def __str__(self) -> str:
        return f"{self.owner}/{self.repo}#{self.number}"


def repo_from_remote(url: str) -> tuple[str, str]:
    """https://github.com/acme/payments(.git) -> ("acme", "payments"); git@github.com:acme/payments.git too."""
    if "://" in url:
        path = urlsplit(url).path
    elif ":" in url:
        path = url.split(":", 1)[1]
    else:
        path = url
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 2:
        raise ValueError(f"{url!r} does not name a repository like https://github.com/OWNER/REPO")
    owner, repo = parts[-2], parts[-1]
    return owner, repo.removesuffix(".git")
