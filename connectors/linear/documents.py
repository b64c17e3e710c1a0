"""Every GraphQL document the Linear connector sends, one named constant each.

Keeping them here (and nowhere else) lets a test validate all of them against Linear's official schema, and keeps
each query's complexity visible: Linear charges 1 point per object, 0.1 per scalar, and multiplies a connection's
children by its `first` (50 when omitted), so every connection below asks for an explicit, small page.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """A named GraphQL operation; `name` is also the operationName sent with it."""

    name: str
    text: str


# The fields a Ticket is built from. Comments are fetched separately (they are only needed to score a ticket, and
# they would multiply the cost of every poll).
_TICKET_FIELDS = """
fragment TicketFields on Issue {
  id
  identifier
  title
  description
  url
  updatedAt
  state { id name }
  labels(first: 20) { nodes { id name } }
}
"""

# Incremental poll: the filter (team key, trigger label or trigger state, updatedAt > cursor) is built in Python and
# sent as a variable, so one static document covers the first poll (no cursor) and every later one.
POLL_ISSUES = Document(
    "PollIssues",
    """
query PollIssues($filter: IssueFilter!, $first: Int!, $after: String) {
  issues(filter: $filter, first: $first, after: $after, orderBy: updatedAt) {
    nodes { ...TicketFields }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + _TICKET_FIELDS,
)

# Linear's issue(id:) accepts the UUID or the identifier (ENG-7).
GET_ISSUE = Document(
    "GetIssue",
    """
query GetIssue($id: String!) {
  issue(id: $id) {
    ...TicketFields
    comments(first: 50) { nodes { body createdAt } }
  }
}
"""
    + _TICKET_FIELDS,
)

ISSUE_STATE = Document(
    "IssueState",
    """
query IssueState($id: String!) {
  issue(id: $id) { id identifier state { id name } team { key } }
}
""",
)

# The team, its workflow states (Linear's board columns) — resolved once and cached.
TEAM_BY_KEY = Document(
    "TeamByKey",
    """
query TeamByKey($key: String!) {
  teams(first: 1, filter: { key: { eq: $key } }) {
    nodes { id key name states(first: 100) { nodes { id name type } } }
  }
}
""",
)

TEAM_KEYS = Document(
    "TeamKeys",
    """
query TeamKeys {
  teams(first: 100) { nodes { key name } }
}
""",
)

VIEWER = Document(
    "Viewer",
    """
query Viewer {
  viewer { id name email }
}
""",
)

# Labels by name: team labels and workspace labels (team null) share one namespace per team in Linear.
LABELS_BY_NAME = Document(
    "LabelsByName",
    """
query LabelsByName($name: String!) {
  issueLabels(first: 20, filter: { name: { eqIgnoreCase: $name } }) {
    nodes { id name team { id } }
  }
}
""",
)

CREATE_LABEL = Document(
    "CreateLabel",
    """
mutation CreateLabel($id: String!, $name: String!, $teamId: String!) {
  issueLabelCreate(input: { id: $id, name: $name, teamId: $teamId }) {
    success
    issueLabel { id name team { id } }
  }
}
""",
)

MOVE_ISSUE = Document(
    "MoveIssue",
    """
mutation MoveIssue($id: String!, $stateId: String!) {
  issueUpdate(id: $id, input: { stateId: $stateId }) {
    success
    issue { id state { id name } }
  }
}
""",
)

# addedLabelIds / removedLabelIds change only the named label; labelIds would replace the whole set.
ADD_LABEL = Document(
    "AddLabel",
    """
mutation AddLabel($id: String!, $labelId: String!) {
  issueUpdate(id: $id, input: { addedLabelIds: [$labelId] }) {
    success
  }
}
""",
)

REMOVE_LABEL = Document(
    "RemoveLabel",
    """
mutation RemoveLabel($id: String!, $labelId: String!) {
  issueUpdate(id: $id, input: { removedLabelIds: [$labelId] }) {
    success
  }
}
""",
)

# Our status comment, found on the remote by its marker (and authored by us), whatever the local store knows.
FIND_STATUS_COMMENT = Document(
    "FindStatusComment",
    """
query FindStatusComment($id: String!, $marker: String!) {
  issue(id: $id) {
    id
    comments(first: 10, filter: { body: { contains: $marker } }) {
      nodes { id body createdAt user { id isMe } }
    }
  }
}
""",
)

# The comment's id is chosen by us (Linear accepts a client UUID), so a create retried after a lost response cannot
# make a second comment: Linear refuses the duplicate id instead.
CREATE_COMMENT = Document(
    "CreateComment",
    """
mutation CreateComment($id: String!, $issueId: String!, $body: String!) {
  commentCreate(input: { id: $id, issueId: $issueId, body: $body }) {
    success
    comment { id }
  }
}
""",
)

UPDATE_COMMENT = Document(
    "UpdateComment",
    """
mutation UpdateComment($id: String!, $body: String!) {
  commentUpdate(id: $id, input: { body: $body }) {
    success
    comment { id }
  }
}
""",
)

# Linear keys attachments by (issue, url): creating one for a url already attached updates it, so this is
# idempotent and also refreshes the subtitle when the pull request's state changes.
ATTACH_PULL_REQUEST = Document(
    "AttachPullRequest",
    """
mutation AttachPullRequest($issueId: String!, $url: String!, $title: String!, $subtitle: String) {
  attachmentCreate(input: { issueId: $issueId, url: $url, title: $title, subtitle: $subtitle }) {
    success
    attachment { id url }
  }
}
""",
)

# Who added the trigger: the issue's history, newest first.
ISSUE_HISTORY = Document(
    "IssueHistory",
    """
query IssueHistory($id: String!, $after: String) {
  issue(id: $id) {
    history(first: 50, after: $after) {
      nodes { createdAt actor { id email } addedLabels { name } toState { name } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
""",
)


def all_documents() -> dict[str, Document]:
    """Every document of this module by operation name (the test validates each against the schema)."""
    return {v.name: v for v in globals().values() if isinstance(v, Document)}
