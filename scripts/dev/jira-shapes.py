#!/usr/bin/env python3
"""Compare the Jira stand-in's answers with the schemas of Atlassian's REST v3 description.

Usage:
    jira-shapes.py JIRA_JS_ROOT ANSWERS_DIR

Atlassian publishes its OpenAPI description (swagger-v3.v3.json) only on
developer.atlassian.com, which no package registry carries. The npm package `jira.js` (6.x)
is generated from it: every response model is a zod schema, and every API function names the
schema of its answer. JIRA_JS_ROOT is a folder where `npm install jira.js@6.2.0` was run
(it holds node_modules/jira.js and node_modules/zod). This script asks node to turn the
schemas of the endpoints below into JSON Schema (with `AUDIT_SCHEMAS=true`, jira.js's own
switch that makes every documented object closed), finds each endpoint's schema by reading
the API functions' `url`/`method`/`schema`, and compares.

ANSWERS_DIR holds one `NAME.json` per endpoint, as the test
`providers::jira::tests::answers_for_the_shape_check` of switchyard-test-support writes them
when `SWITCHYARD_JIRA_SHAPES_DIR` is set.

For each answer it reports, recursively:
  missing  a property the schema requires that the answer lacks;
  type     a value whose JSON type the schema does not allow;
  enum     a value outside the schema's enumeration;
  extra    a property the schema does not document (objects are closed in audit mode).
Issue `fields` are free-form in the description (their shapes depend on the site), so the
system fields the connector reads are checked against the description's own models for
them: `status`, `issuetype`, `priority` and `summary` against `Fields` (its linked-issue
fields), `project` against `Project`; a null field (asked, but without a value) is not
checked.
The description marks few properties required, so `missing` finds little: a field the stand-in
leaves out that Jira always sends goes unnoticed here.
Exits 1 when anything is reported. Needs node (18 or later) and Python 3 only.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

# answer file -> (method, path, status); the path as jira.js writes it.
ENDPOINTS = {
    "myself": ("GET", "/rest/api/3/myself", 200),
    "project_search": ("GET", "/rest/api/3/project/search", 200),
    "users_search": ("GET", "/rest/api/3/users/search", 200),
    "search_jql": ("POST", "/rest/api/3/search/jql", 200),
    "create_issue": ("POST", "/rest/api/3/issue", 201),
    "transitions": ("GET", "/rest/api/3/issue/{issueIdOrKey}/transitions", 200),
    "transition": ("POST", "/rest/api/3/issue/{issueIdOrKey}/transitions", 204),
    "add_comment": ("POST", "/rest/api/3/issue/{issueIdOrKey}/comment", 201),
}
# Error answers: jira.js describes no error bodies; the description's `ErrorCollection` is
# what Jira's 4xx carry.
ERRORS = {"error_400": "ErrorCollectionSchema", "error_404": "ErrorCollectionSchema"}
# Issue fields the connector reads, and the model each is checked against.
ISSUE_FIELDS = {
    "status": ("FieldsSchema", "status"),
    "issuetype": ("FieldsSchema", "issuetype"),
    "priority": ("FieldsSchema", "priority"),
    "summary": ("FieldsSchema", "summary"),
    "project": ("ProjectSchema", None),
}

EXPORTER = r"""
process.env.AUDIT_SCHEMAS = 'true';
const { readFileSync, readdirSync } = await import('node:fs');
const { join } = await import('node:path');
const { pathToFileURL } = await import('node:url');
const root = process.env.JIRA_JS_ROOT;
const pkg = join(root, 'node_modules', 'jira.js');
const load = (path) => import(pathToFileURL(path).href);
const models = await load(join(pkg, 'dist/cloud/models/index.js'));
const { z } = await load(join(root, 'node_modules/zod/index.js'));
const version = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version;
// Each API function builds `const config = { url, method, …, schema }`.
const operations = {};
const apiDir = join(pkg, 'dist/cloud/api');
for (const file of readdirSync(apiDir).filter((f) => f.endsWith('.js'))) {
  const text = readFileSync(join(apiDir, file), 'utf8');
  const blocks = /const config = \{\s*url: ([`'])(.*?)\1,\s*method: '(\w+)',([\s\S]*?)\n\s*\};/g;
  for (const m of text.matchAll(blocks)) {
    const path = m[2].replace(/\$\{parameters\??\.(\w+)\}/g, '{$1}');
    const schema = /\n\s*schema: (.+),\n/.exec(m[4] + '\n')?.[1] ?? null;
    operations[`${m[3]} ${path}`] = schema;
  }
}
const resolve = (expression) => {
  const array = /^z\.array\((\w+)\)$/.exec(expression);
  const schema = array ? z.array(models[array[1]]) : models[expression];
  if (!schema) throw new Error(`jira.js has no schema ${expression}`);
  return schema;
};
const convert = (schema) =>
  z.toJSONSchema(schema, { unrepresentable: 'any', io: 'output', cycles: 'ref', reused: 'inline' });
const wanted = JSON.parse(process.env.JIRA_SHAPES_WANTED);
const out = { version, operations: {}, models: {} };
for (const key of wanted.operations) {
  if (!(key in operations)) throw new Error(`jira.js has no operation ${key}`);
  const expression = operations[key];
  out.operations[key] = { schema_name: expression, schema: expression ? convert(resolve(expression)) : null };
}
for (const name of wanted.models) out.models[name] = convert(resolve(name));
process.stdout.write(JSON.stringify(out));
"""


def export(root):
    wanted = {
        "operations": [f"{m} {p}" for m, p, _ in ENDPOINTS.values()],
        "models": sorted(set(ERRORS.values()) | {m for m, _ in ISSUE_FIELDS.values()}),
    }
    env = dict(os.environ, JIRA_JS_ROOT=str(root), JIRA_SHAPES_WANTED=json.dumps(wanted))
    done = subprocess.run(
        ["node", "--input-type=module", "-e", EXPORTER],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"node could not export jira.js's schemas:\n{done.stderr}")
    return json.loads(done.stdout)


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


class Schema:
    """One exported JSON Schema document, with its `$defs` for references."""

    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def check(self, answer, node, where, problems):
        node = self.resolve(node)
        if not isinstance(node, dict) or not node:
            return  # anything goes
        for key in ("anyOf", "oneOf"):
            if key in node:
                # The alternative that explains the answer best.
                best = None
                for option in node[key]:
                    found = []
                    self.check(answer, option, where, found)
                    if best is None or len(found) < len(best):
                        best = found
                problems.extend(best or [])
                return
        for part in node.get("allOf", []):
            self.check(answer, part, where, problems)
        kinds = node.get("type")
        kinds = set(kinds if isinstance(kinds, list) else [kinds] if kinds else [])
        if "number" in kinds:
            kinds.add("integer")
        got = json_type(answer)
        if kinds and got not in kinds:
            problems.append(f"type     {where}: {got}, the description says {sorted(kinds)}")
            return
        if "enum" in node and answer not in node["enum"]:
            problems.append(f"enum     {where}: {answer!r} is not one of {node['enum']}")
        if "const" in node and answer != node["const"]:
            problems.append(f"enum     {where}: {answer!r} is not {node['const']!r}")
        if isinstance(answer, dict):
            properties = node.get("properties", {})
            for key in node.get("required", []):
                if key not in answer:
                    problems.append(f"missing  {where}.{key}")
            extra = node.get("additionalProperties")
            for key, value in answer.items():
                if key in properties:
                    self.check(value, properties[key], f"{where}.{key}", problems)
                elif extra is False:
                    problems.append(f"extra    {where}.{key}")
                elif isinstance(extra, dict):
                    self.check(value, extra, f"{where}.{key}", problems)
        elif isinstance(answer, list) and "items" in node:
            for item in answer:
                self.check(item, node["items"], f"{where}[]", problems)


def issue_field_problems(exported, answer):
    """The system fields of each issue in a search answer, against their models."""
    problems = []
    for issue in answer.get("issues", []) if isinstance(answer, dict) else []:
        fields = issue.get("fields", {}) if isinstance(issue, dict) else {}
        for name, (model, member) in ISSUE_FIELDS.items():
            # An asked field without a value is null (`"priority": null`), as for any field.
            if fields.get(name) is None:
                continue
            doc = exported["models"][model]
            schema = Schema(doc)
            node = doc["properties"][member] if member else doc
            schema.check(fields[name], node, f"$.issues[].fields.{name}", problems)
    return problems


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    exported = export(Path(sys.argv[1]))
    answers = Path(sys.argv[2])
    print(f"jira.js {exported['version']}")
    total = 0
    checks = [(name, f"{m} {p}", status) for name, (m, p, status) in ENDPOINTS.items()]
    checks += [(name, model, int(name.split("_")[1])) for name, model in ERRORS.items()]
    for name, key, status in checks:
        file = answers / f"{name}.json"
        if not file.exists():
            print(f"{name}: no answer file {file}")
            total += 1
            continue
        answer = json.loads(file.read_text())
        if key in exported["operations"]:
            operation = exported["operations"][key]
            schema_name, doc = operation["schema_name"], operation["schema"]
        else:
            schema_name, doc = key, exported["models"][key]
        problems = []
        if doc is None:
            if answer is not None:
                problems.append("type     $: a body, the description has none")
        else:
            Schema(doc).check(answer, doc, "$", problems)
        if name == "search_jql":
            problems += issue_field_problems(exported, answer)
        problems = list(dict.fromkeys(problems))  # list items report once
        verdict = "ok" if not problems else f"{len(problems)} difference(s)"
        print(f"{name}: {key} {status} ({schema_name or 'no body'}): {verdict}")
        for problem in problems:
            print(f"    {problem}")
        total += len(problems)
    print(f"{total} difference(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
