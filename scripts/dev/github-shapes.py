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
Exits 1 when anything is reported. Standard library only.
"""

import json
import sys
from pathlib import Path

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


class Description:
    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def response(self, path, method, status):
        response = self.resolve(self.doc["paths"][path][method]["responses"][status])
        content = response.get("content", {}).get("application/json", {})
        schema = content.get("schema", {})
        examples = [
            self.resolve(example).get("value")
            for example in content.get("examples", {}).values()
        ]
        if "example" in content:
            examples.append(content["example"])
        return schema, [e for e in examples if e is not None]

    def variants(self, schema):
        """The schema's alternatives (oneOf/anyOf), each with allOf merged."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return [{}]
        for key in ("oneOf", "anyOf"):
            if key in schema:
                out = []
                for option in schema[key]:
                    out.extend(self.variants(option))
                return out
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            merged.setdefault("properties", {})
            for part in schema["allOf"]:
                for variant in self.variants(part)[:1]:
                    merged["properties"].update(variant.get("properties", {}))
                    for k in ("type", "items", "nullable", "additionalProperties"):
                        if k in variant and k not in merged:
                            merged[k] = variant[k]
            return [merged]
        return [schema]


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def schema_types(schema):
    kinds = schema.get("type")
    kinds = set(kinds if isinstance(kinds, list) else [kinds] if kinds else [])
    if schema.get("nullable"):
        kinds.add("null")
    if "integer" in kinds:
        kinds.add("number")
    if "number" in kinds:
        kinds.add("integer")
    return kinds


def compare(desc, answer, example, schema, where, problems):
    """Compares `answer` with `example` (may be absent) under `schema` (may be absent)."""
    variants = desc.variants(schema) if schema else [{}]
    # Pick the variant that explains the answer best (fewest unknown keys).
    if isinstance(answer, dict) and len(variants) > 1:
        variants.sort(
            key=lambda v: len(set(answer) - set(v.get("properties", {})))
            if v.get("properties")
            else len(answer)
        )
    variant = variants[0]
    kinds = set().union(*(schema_types(v) for v in variants))
    got = json_type(answer)
    if kinds and got not in kinds:
        problems.append(f"type     {where}: {got}, schema says {sorted(kinds)}")
    if example is not None and answer is not None:
        want = json_type(example)
        if want != got and {want, got} != {"integer", "number"}:
            problems.append(f"type     {where}: {got}, example has {want}")
    if isinstance(answer, dict):
        properties = variant.get("properties")
        open_object = properties is None or variant.get("additionalProperties") not in (None, False)
        if isinstance(example, dict):
            for key in example:
                if key not in answer:
                    problems.append(f"missing  {where}.{key}")
        for key, value in answer.items():
            sub_schema = (properties or {}).get(key)
            if sub_schema is None and not open_object:
                problems.append(f"extra    {where}.{key}")
            if sub_schema is None and isinstance(variant.get("additionalProperties"), dict):
                sub_schema = variant["additionalProperties"]
            sub_example = example.get(key) if isinstance(example, dict) else None
            compare(desc, value, sub_example, sub_schema, f"{where}.{key}", problems)
    elif isinstance(answer, list):
        item_schema = variant.get("items")
        item_example = example[0] if isinstance(example, list) and example else None
        if not answer and item_example is not None and where.count(".") == 0:
            problems.append(f"empty    {where}: the answer's list is empty, cannot compare")
        for item in answer:
            compare(desc, item, item_example, item_schema, f"{where}[]", problems)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    desc = Description(json.loads(Path(sys.argv[1]).read_text()))
    answers = Path(sys.argv[2])
    total = 0
    for name, (path, method, status) in ENDPOINTS.items():
        file = answers / f"{name}.json"
        if not file.exists():
            print(f"{name}: no answer file {file}")
            total += 1
            continue
        answer = json.loads(file.read_text())
        schema, examples = desc.response(path, method, status)
        problems = []
        if not examples:
            compare(desc, answer, None, schema, "$", problems)
        else:
            # With several examples (e.g. /user public and private), the answer must match one.
            best = None
            for example in examples:
                found = []
                compare(desc, answer, example, schema, "$", found)
                if best is None or len(found) < len(best):
                    best = found
            problems = best
        problems = list(dict.fromkeys(problems))  # list items report once
        source = f"{len(examples)} example(s)" if examples else "schema only"
        print(f"{name}: {method.upper()} {path} {status} ({source}): "
              f"{'ok' if not problems else f'{len(problems)} difference(s)'}")
        for problem in problems:
            print(f"    {problem}")
        total += len(problems)
    print(f"{total} difference(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
