#!/usr/bin/env python3
"""Compare the GitHub stand-in's answers with GitHub's published OpenAPI description.

Usage:
    github-shapes.py DESCRIPTION ANSWERS_DIR

DESCRIPTION is `generated/api.github.com.json` from the npm package `@octokit/openapi`.
ANSWERS_DIR holds one `NAME.json` per endpoint, as the test
`providers::github::tests::answers_for_the_shape_check` of switchyard-test-support writes them
when `SWITCHYARD_GITHUB_SHAPES_DIR` is set.

For each answer it reports, recursively:
  missing  a field of the documented example that the answer lacks;
  type     a field whose JSON type differs from the example's (null aside) or the schema's;
  extra    a field of the answer that the documented schema does not have.
Exits 1 when anything is reported. Standard library only; the comparison is shapecheck.py's,
shared with okta-shapes.py and slack-shapes.py.
"""

import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # importing shapecheck leaves no __pycache__ behind
from shapecheck import Description, Operation, run

# answer file -> (path, method, status)
ENDPOINTS = {
    "user": ("/user", "get", "200"),
    "org": ("/orgs/{org}", "get", "200"),
    "members": ("/orgs/{org}/members", "get", "200"),
    "outside_collaborators": ("/orgs/{org}/outside_collaborators", "get", "200"),
    "teams": ("/orgs/{org}/teams", "get", "200"),
    "team_members": ("/orgs/{org}/teams/{team_slug}/members", "get", "200"),
    "repos": ("/orgs/{org}/repos", "get", "200"),
    "repo": ("/repos/{owner}/{repo}", "get", "200"),
    "protection": ("/repos/{owner}/{repo}/branches/{branch}/protection", "get", "200"),
    "issue": ("/repos/{owner}/{repo}/issues", "post", "201"),
    "comment": ("/repos/{owner}/{repo}/issues/{issue_number}/comments", "post", "201"),
    "access_token": ("/app/installations/{installation_id}/access_tokens", "post", "201"),
    "installation": ("/app/installations/{installation_id}", "get", "200"),
    "error_400": ("/repos/{owner}/{repo}/issues", "post", "400"),
    "error_401": ("/user", "get", "401"),
    "error_403": ("/repos/{owner}/{repo}/issues", "post", "403"),
    "error_404": ("/orgs/{org}", "get", "404"),
    "error_422": ("/repos/{owner}/{repo}/issues", "post", "422"),
}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    desc = Description(json.loads(Path(sys.argv[1]).read_text()))
    checks = {name: Operation(*where) for name, where in ENDPOINTS.items()}
    return 1 if run({"default": desc}, sys.argv[2], checks) else 0


if __name__ == "__main__":
    sys.exit(main())
