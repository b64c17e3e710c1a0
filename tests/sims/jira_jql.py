"""The subset of JQL the Jira simulator understands, parsed and evaluated like Jira does.

Fields: project, key (issuekey), labels, status, updated, created, summary (~). Operators: = != > >= < <= in, not in,
~, is empty / is not empty; AND, OR, NOT, parentheses; ORDER BY. Dates ("yyyy/MM/dd HH:mm", "yyyy-MM-dd",
relative "-5m", "-2h", "-1d") are read in the time zone of the user who searches, at minute precision, as Jira does.
Anything else is a JQL error, answered as Jira answers it (400 with errorMessages).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Issue = dict[str, Any]
Predicate = Callable[[Issue], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>!=|>=|<=|!~|[=<>~(),])|(?P<word>[^\s=!<>~(),"\']+))'
)
FIELDS = {"project", "key", "issuekey", "labels", "status", "updated", "created", "summary", "text"}


class JQLError(Exception):
    """Jira answers these with 400 and the message in errorMessages."""


@dataclass
class Query:
    predicate: Predicate
    order: list[tuple[str, bool]]  # (field, descending)


def tokenize(jql: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(jql):
        if not jql[pos:].strip():
            break
        m = _TOKEN.match(jql, pos)
        if m is None or m.end() == pos:
            raise JQLError(
                f"Error in the JQL Query: The character '{jql[pos:].strip()[0]}' is a reserved JQL character."
            )
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            tokens.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("op") is not None:
            tokens.append(("op", m.group("op")))
        else:
            tokens.append(("word", m.group("word")))
        pos = m.end()
    return tokens


class Parser:
    def __init__(self, jql: str, *, statuses: dict[str, str], tz: str, now: datetime) -> None:
        self.tokens = tokenize(jql)
        self.i = 0
        self.statuses = statuses  # lower-case name -> id
        self.zone = ZoneInfo(tz)
        self.now = now

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def word_is(self, *words: str, offset: int = 0) -> bool:
        t = self.peek(offset)
        return t is not None and t[0] == "word" and t[1].lower() in words

    def take(self) -> tuple[str, str]:
        t = self.peek()
        if t is None:
            raise JQLError("Error in the JQL Query: Expecting more input at the end of the query.")
        self.i += 1
        return t

    def expect_op(self, op: str) -> None:
        t = self.take()
        if t != ("op", op):
            raise JQLError(f"Error in the JQL Query: Expecting '{op}' but got '{t[1]}'.")

    def parse(self) -> Query:
        predicate: Predicate = lambda issue: True  # noqa: E731 - an empty JQL matches everything
        if self.peek() is not None and not (self.word_is("order") and self.word_is("by", offset=1)):
            predicate = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.word_is("order"):
            self.take()
            if not self.word_is("by"):
                raise JQLError("Error in the JQL Query: Expecting 'by' after 'order'.")
            self.take()
            while True:
                field = self.take()[1].lower()
                if field not in FIELDS:
                    raise JQLError(f"Not able to sort using field '{field}'.")
                desc = False
                if self.word_is("asc", "desc"):
                    desc = self.take()[1].lower() == "desc"
                order.append((field, desc))
                if self.peek() == ("op", ","):
                    self.take()
                    continue
                break
        if self.peek() is not None:
            raise JQLError(f"Error in the JQL Query: Expecting end of query but got '{self.peek()[1]}'.")  # type: ignore[index]
        return Query(predicate, order)

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while self.word_is("or"):
            self.take()
            right = self.and_expr()
            left = (lambda a, b: lambda issue: a(issue) or b(issue))(left, right)
        return left

    def and_expr(self) -> Predicate:
        left = self.not_expr()
        while self.word_is("and"):
            self.take()
            right = self.not_expr()
            left = (lambda a, b: lambda issue: a(issue) and b(issue))(left, right)
        return left

    def not_expr(self) -> Predicate:
        if self.word_is("not"):
            self.take()
            inner = self.not_expr()
            return lambda issue: not inner(issue)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.or_expr()
            self.expect_op(")")
            return inner
        return self.clause()

    def clause(self) -> Predicate:
        kind, field = self.take()
        if kind != "word":
            raise JQLError(f"Error in the JQL Query: Expecting a field name but got '{field}'.")
        field = field.lower()
        if field not in FIELDS:
            raise JQLError(f"Field '{field}' does not exist or you do not have permission to view it.")
        if self.word_is("is"):
            self.take()
            negate = False
            if self.word_is("not"):
                self.take()
                negate = True
            if not self.word_is("empty", "null"):
                raise JQLError("Error in the JQL Query: Expecting 'EMPTY' after 'is'.")
            self.take()
            return lambda issue: negate == bool(self.values_of(issue, field))
        if self.word_is("in") or (self.word_is("not") and self.word_is("in", offset=1)):
            negate = self.take()[1].lower() == "not"
            if negate:
                self.take()
            self.expect_op("(")
            values = [self.value(field)]
            while self.peek() == ("op", ","):
                self.take()
                values.append(self.value(field))
            self.expect_op(")")
            wanted = set(values)
            return lambda issue: negate != bool(wanted.intersection(self.values_of(issue, field)))
        kind, op = self.take()
        if kind != "op" or op not in ("=", "!=", ">", ">=", "<", "<=", "~", "!~"):
            raise JQLError(f"Error in the JQL Query: Expecting operator but got '{op}'.")
        if field in ("updated", "created"):
            moment = self.date()
            return self.compare_date(field, op, moment)
        if op in ("~", "!~"):
            text = self.take()[1].lower()
            return lambda issue: (op == "~") == (text in str(issue["summary"]).lower())
        if op not in ("=", "!="):
            raise JQLError(f"The operator '{op}' is not supported by the '{field}' field.")
        value = self.value(field)
        return lambda issue: (op == "=") == (value in self.values_of(issue, field))

    def value(self, field: str) -> str:
        kind, raw = self.take()
        if kind == "op":
            raise JQLError(f"Error in the JQL Query: Expecting a value but got '{raw}'.")
        if field == "status":
            if raw.isdigit():
                if raw not in self.statuses.values():
                    raise JQLError(f"The value '{raw}' does not exist for the field 'status'.")
                return raw
            status_id = self.statuses.get(raw.lower())
            if status_id is None:
                raise JQLError(f"The value '{raw}' does not exist for the field 'status'.")
            return status_id
        return raw.lower() if field in ("project",) else raw

    @staticmethod
    def values_of(issue: Issue, field: str) -> list[str]:
        if field == "project":
            return [issue["project"].lower()]
        if field in ("key", "issuekey"):
            return [issue["key"]]
        if field == "labels":
            return list(issue["labels"])
        if field == "status":
            return [issue["status"]]
        return [str(issue.get(field, ""))]

    def date(self) -> datetime:
        _, raw = self.take()
        rel = re.fullmatch(r"([-+]?)(\d+)([mhdw])", raw.strip())
        if rel:
            unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(3)]
            delta = timedelta(**{unit: int(rel.group(2))})
            return self.now - delta if rel.group(1) == "-" else self.now + delta
        for fmt in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
            try:
                return datetime.strptime(raw.strip(), fmt).replace(tzinfo=self.zone)
            except ValueError:
                continue
        raise JQLError(
            f"Date value '{raw}' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
            "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
        )

    @staticmethod
    def compare_date(field: str, op: str, moment: datetime) -> Predicate:
        def pred(issue: Issue) -> bool:
            # The bound has minute precision (JQL cannot say seconds); the issue's timestamp keeps its seconds.
            value: datetime = issue[field]
            bound = moment.replace(second=0, microsecond=0)
            return {
                "=": value == bound,
                "!=": value != bound,
                ">": value > bound,
                ">=": value >= bound,
                "<": value < bound,
                "<=": value <= bound,
            }.get(op, False)

        return pred


def parse(jql: str, *, statuses: dict[str, str], tz: str, now: datetime) -> Query:
    return Parser(jql, statuses=statuses, tz=tz, now=now).parse()
