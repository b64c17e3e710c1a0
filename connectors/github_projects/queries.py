"""Every GraphQL document the GitHub Projects tracker sends, as named constants.

Kept in one module so a test can validate each of them against GitHub's published schema (tests/schemas/github/).
Each query also asks for `rateLimit { cost remaining }`, which is free and tells us what the query cost.
"""

from __future__ import annotations

_PROJECT_FIELDS = """
      id
      title
      url
      field(name: $statusField) {
        __typename
        ... on ProjectV2SingleSelectField {
          id
          databaseId
          name
          options { id name }
        }
      }
"""

# The project and its Status field with options, read once per process and cached.
ORG_PROJECT_QUERY = (
    """
query TrackerBridgeOrgProject($login: String!, $number: Int!, $statusField: String!) {
  organization(login: $login) {
    projectV2(number: $number) {"""
    + _PROJECT_FIELDS
    + """    }
  }
  rateLimit { cost remaining }
}
"""
)

USER_PROJECT_QUERY = (
    """
query TrackerBridgeUserProject($login: String!, $number: Int!, $statusField: String!) {
  user(login: $login) {
    projectV2(number: $number) {"""
    + _PROJECT_FIELDS
    + """    }
  }
  rateLimit { cost remaining }
}
"""
)

# One issue with what a ticket needs: text, labels, people's comments, and its items on projects with the Status
# value (who set it is the value's creator: that is how a card move is attributed to a person).
ISSUE_QUERY = """
query TrackerBridgeIssue($owner: String!, $repo: String!, $number: Int!, $statusField: String!) {
  repository(owner: $owner, name: $repo) {
    issue(number: $number) {
      id
      number
      title
      body
      url
      state
      updatedAt
      labels(first: 100) { nodes { name } }
      comments(last: 100) { nodes { databaseId body author { login } } }
      projectItems(first: 20) {
        nodes {
          id
          isArchived
          project { id }
          fieldValueByName(name: $statusField) {
            __typename
            ... on ProjectV2ItemFieldSingleSelectValue {
              name
              optionId
              updatedAt
              creator { login }
            }
          }
        }
      }
    }
  }
  rateLimit { cost remaining }
}
"""

# Moving a card: set the item's Status to the option of the target column.
MOVE_ITEM_MUTATION = """
mutation TrackerBridgeMoveItem($project: ID!, $item: ID!, $field: ID!, $option: String!) {
  updateProjectV2ItemFieldValue(
    input: {projectId: $project, itemId: $item, fieldId: $field, value: {singleSelectOptionId: $option}}
  ) {
    projectV2Item { id }
  }
}
"""

# A labelled issue that is not on the board yet is added to it before its card can move.
ADD_ITEM_MUTATION = """
mutation TrackerBridgeAddItem($project: ID!, $content: ID!) {
  addProjectV2ItemById(input: {projectId: $project, contentId: $content}) {
    item { id }
  }
}
"""

# The token's owner: `doctor` says whose token it is.
VIEWER_QUERY = """
query TrackerBridgeViewer {
  viewer { login }
  rateLimit { cost remaining }
}
"""

ALL_DOCUMENTS: dict[str, str] = {
    "ORG_PROJECT_QUERY": ORG_PROJECT_QUERY,
    "USER_PROJECT_QUERY": USER_PROJECT_QUERY,
    "ISSUE_QUERY": ISSUE_QUERY,
    "MOVE_ITEM_MUTATION": MOVE_ITEM_MUTATION,
    "ADD_ITEM_MUTATION": ADD_ITEM_MUTATION,
    "VIEWER_QUERY": VIEWER_QUERY,
}
