"""Compare a stand-in's JSON answers with a provider's published API description.

Shared by `github-shapes.py`, `okta-shapes.py` and `slack-shapes.py`. A description is an
OpenAPI 3 or Swagger 2 document (`Description`); an answer is compared, recursively, with
the documented example(s) and schema of what it stands in for (`Operation` or `Schema`).
Reported, one line each:

  missing  a field of the documented example that the answer lacks;
  required a field the schema marks required that the answer lacks (strict only);
  type     a field whose JSON type differs from the example's (null aside) or the schema's;
  value    a string outside the schema's `enum` or not matching its `pattern` (strict only);
  extra    a field of the answer that the documented schema does not have;
  empty    a top-level list that is empty, so nothing could be compared.

`strict` (the required and value checks, and following a schema's `discriminator` to the
subschema the answer names) is on for Okta and Slack, off for GitHub, whose script predates
it. Differences a script explains (`explained`) are listed with the reason, not counted.
"""

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


class Description:
    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            node = self.pointer(node["$ref"])
        return node

    def pointer(self, ref):
        target = self.doc
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return target

    def response(self, path, method, status):
        """`(schema, examples)` of one response; a body-less response has `(None, [])`."""
        response = self.resolve(self.doc["paths"][path][method]["responses"][status])
        if "content" not in response and ("schema" in response or "examples" in response):
            # Swagger 2: the schema and `examples: {mime type: example}` on the response.
            examples = list(response.get("examples", {}).values())
            return response.get("schema"), [e for e in examples if e is not None]
        content = response.get("content", {}).get("application/json")
        if content is None:
            return None, []
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
        if isinstance(schema.get("items"), list) and "type" not in schema:
            # Slack's description writes alternatives as a list under `items`.
            out = []
            for option in schema["items"]:
                out.extend(self.variants(option))
            return out
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            merged.setdefault("properties", {})
            merged["required"] = list(merged.get("required", []))
            for part in schema["allOf"]:
                for variant in self.variants(part)[:1]:
                    merged["properties"].update(variant.get("properties", {}))
                    merged["required"].extend(variant.get("required", []))
                    for k in ("type", "items", "nullable", "additionalProperties"):
                        if k in variant and k not in merged:
                            merged[k] = variant[k]
            return [merged]
        return [schema]

    def discriminated(self, schema, answer):
        """The subschema a discriminator (`signOnMode`, `factorType`…) picks for `answer`."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or not isinstance(answer, dict):
            return schema
        discriminator = schema.get("discriminator", {})
        mapping = discriminator.get("mapping", {})
        chosen = mapping.get(answer.get(discriminator.get("propertyName")))
        return self.pointer(chosen) if chosen else schema


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


def compare(desc, answer, example, schema, where, problems, strict=False, null_shown=False):
    """Compares `answer` with `example` (may be absent) under `schema` (may be absent).
    `null_shown`: the example has null here, so a null answer is documented even where the
    schema forgot `nullable` (strict only)."""
    if schema and strict:
        schema = desc.discriminated(schema, answer)
    variants = desc.variants(schema) if schema else [{}]
    # Pick the variant that explains the answer best (fewest unknown keys).
    if isinstance(answer, dict) and len(variants) > 1:

        def unexplained(v):
            props = v.get("properties")
            unknown = len(set(answer) - set(props)) if props else len(answer)
            if not strict:
                return unknown
            # Then the fewest required fields the answer lacks.
            return unknown, len(set(v.get("required", [])) - set(answer))

        variants.sort(key=unexplained)
    elif len(variants) > 1:
        # A scalar or list: prefer an alternative of its own type.
        variants.sort(key=lambda v: json_type(answer) not in schema_types(v))
    variant = variants[0]
    kinds = set().union(*(schema_types(v) for v in variants))
    got = json_type(answer)
    if kinds and got not in kinds and not (strict and got == "null" and null_shown):
        problems.append(f"type     {where}: {got}, schema says {sorted(kinds)}")
    if example is not None and answer is not None:
        want = json_type(example)
        if want != got and {want, got} != {"integer", "number"}:
            problems.append(f"type     {where}: {got}, example has {want}")
    if strict and isinstance(answer, (str, bool)):
        allowed = [v.get("enum") for v in variants if v.get("enum")]
        if allowed and not any(answer in values for values in allowed):
            problems.append(f"value    {where}: {answer!r} not in the schema's enum")
        patterns = [v["pattern"] for v in variants if isinstance(answer, str) and "pattern" in v]
        if patterns and not any(re.search(p, answer) for p in patterns):
            problems.append(f"value    {where}: {answer!r} does not match {patterns[0]}")
    if isinstance(answer, dict):
        properties = variant.get("properties")
        # Listed properties close an object unless it says otherwise; none listed leave it open.
        open_object = not properties or variant.get("additionalProperties") not in (None, False)
        is_map = not properties and isinstance(variant.get("additionalProperties"), dict)
        if isinstance(example, dict) and not (strict and is_map):  # a map's keys are data
            for key in example:
                if key not in answer:
                    problems.append(f"missing  {where}.{key}")
        if strict:
            for key in variant.get("required", []):
                if key not in answer:
                    problems.append(f"required {where}.{key}")
        for key, value in answer.items():
            sub_schema = (properties or {}).get(key)
            if sub_schema is None and not open_object:
                problems.append(f"extra    {where}.{key}")
            if sub_schema is None and isinstance(variant.get("additionalProperties"), dict):
                sub_schema = variant["additionalProperties"]
            sub_example = example.get(key) if isinstance(example, dict) else None
            shown = isinstance(example, dict) and key in example and sub_example is None
            compare(desc, value, sub_example, sub_schema, f"{where}.{key}", problems, strict,
                    shown)
    elif isinstance(answer, list):
        item_schema = variant.get("items")
        item_example = example[0] if isinstance(example, list) and example else None
        if not answer and item_example is not None and where.count(".") == 0:
            problems.append(f"empty    {where}: the answer's list is empty, cannot compare")
        for item in answer:
            if strict and isinstance(example, list) and len(example) > 1:
                # A list of kinds (factors, apps): each item against the example item it
                # resembles most.
                item_example = closest(desc, item, example, item_schema, f"{where}[]")
            compare(desc, item, item_example, item_schema, f"{where}[]", problems, strict)


def closest(desc, answer, examples, schema, where):
    """The example `answer` differs least from (strict comparison); the first on a tie."""

    def differences(example):
        found = []
        compare(desc, answer, example, schema, where, found, True)
        return len(found)

    return min(examples, key=differences)


@dataclass
class Operation:
    """One documented response: `paths[path][method].responses[status]` of `doc`."""

    path: str
    method: str
    status: str
    doc: str = "default"

    def label(self):
        return f"{self.method.upper()} {self.path} {self.status}"


@dataclass
class Schema:
    """A schema by JSON pointer (`#/components/schemas/LogEvent`) of `doc`, or one given
    inline (`inline`, for shapes a description leaves out), with optional examples."""

    ref: str = ""
    doc: str = "default"
    inline: dict = None
    examples: list = field(default_factory=list)

    def label(self):
        return self.ref.rsplit("/", 1)[-1] if self.ref else "documented shape"


def pick(answer, at):
    """The parts of `answer` at `at` (`data.events`, `event.user`, `members[]`), with paths."""
    found = [(answer, "$")]
    for step in [s for s in at.split(".") if s]:
        each = step.endswith("[]")
        key = step[:-2] if each else step
        nxt = []
        for value, where in found:
            if key:
                if not isinstance(value, dict) or key not in value:
                    continue
                value, where = value[key], f"{where}.{key}"
            if each:
                items = value if isinstance(value, list) else []
                nxt.extend((item, f"{where}[]") for item in items)
            else:
                nxt.append((value, where))
        found = nxt
    return found


def check(descriptions, answer, target, strict, at=""):
    """Problems of (the part `at` of) `answer` against `target`, and a label of the source."""
    desc = descriptions[target.doc]
    if isinstance(target, Operation):
        schema, examples = desc.response(target.path, target.method, target.status)
    else:
        schema = target.inline if target.inline is not None else {"$ref": target.ref}
        examples = target.examples
    parts = pick(answer, at)
    if schema is None and not examples:
        # A body-less response: the answer must have none either.
        if answer is None:
            return [], "no body"
        return ["extra    $: a body where the description has none"], "no body"
    if at and not parts:
        return [f"missing  $.{at}: nothing to compare"], target.label()
    kind = json_type(parts[0][0]) if parts else None
    if strict and any(json_type(e) == kind for e in examples):
        # Some descriptions list an example of another shape (an object for an array).
        examples = [e for e in examples if json_type(e) == kind]
    problems = []
    for part, where in parts:
        if not examples:
            compare(desc, part, None, schema, where, problems, strict)
            continue
        # With several examples (e.g. /user public and private), the answer must match one.
        best = None
        for example in examples:
            found = []
            compare(desc, part, example, schema, where, found, strict)
            if best is None or len(found) < len(best):
                best = found
        problems.extend(best)
    source = f"{len(examples)} example(s)" if examples else "schema only"
    return list(dict.fromkeys(problems)), source  # list items report once


def read_answer(file):
    """An answer file's JSON; an empty file is an answer without a body (`None`)."""
    text = file.read_text()
    return json.loads(text) if text.strip() else None


def explanation(explained, name, problem):
    """Why `problem` of answer `name` is expected: `explained` maps (answer-name glob,
    problem glob) to the reason."""
    for (name_glob, problem_glob), reason in explained.items():
        if fnmatch.fnmatchcase(name, name_glob) and fnmatch.fnmatchcase(
            " ".join(problem.split()), problem_glob
        ):
            return reason
    return None


def run(descriptions, answers, checks, strict=False, explained=None):
    """Compares every answer file with its targets and prints a report; returns the number
    of unexplained differences. `checks` maps an answer name to a target or a list of
    `(at, target)` pairs; `descriptions` maps a doc name to its `Description`."""
    explained = explained or {}
    used = {}  # reason -> its number in the report
    total = 0
    answers = Path(answers)
    for name, targets in checks.items():
        file = answers / f"{name}.json"
        if not file.exists():
            print(f"{name}: no answer file {file}")
            total += 1
            continue
        answer = read_answer(file)
        if not isinstance(targets, list):
            targets = [("", targets)]
        for at, target in targets:
            problems, source = check(descriptions, answer, target, strict, at)
            open_problems = []
            reasons = []
            for problem in problems:
                reason = explanation(explained, name, problem)
                if reason is None:
                    open_problems.append(problem)
                else:
                    reasons.append((problem, used.setdefault(reason, len(used) + 1)))
            part = f" at $.{at}" if at else ""
            status = "ok" if not open_problems else f"{len(open_problems)} difference(s)"
            if reasons:
                status += f", {len(reasons)} explained"
            print(f"{name}{part}: {target.label()} ({source}): {status}")
            for problem in open_problems:
                print(f"    {problem}")
            for problem, number in reasons:
                print(f"    explained ({number}) {' '.join(problem.split())}")
            total += len(open_problems)
    if used:
        print("Explained:")
        for reason, number in used.items():
            print(f"  ({number}) {reason}")
    for reason in dict.fromkeys(explained.values()):
        if reason not in used:
            print(f"unused explanation (nothing to explain any more?): {reason}")
    print(f"{total} difference(s)")
    return total


# The command line the Okta and Slack scripts share.

REPO = Path(__file__).resolve().parents[2]
SPECS_ENV = "SWITCHYARD_PROVIDER_SPECS"


def stand_in_answers(test, env_var, into):
    """Runs the stand-in's answer-writing test (`providers::okta::shapes::…`), which starts
    the stand-in, requests every endpoint and writes one `NAME.json` per answer into `into`.
    Cargo's and the test's output go to stderr, the report alone to stdout."""
    command = ["cargo", "test", "-q", "-p", "switchyard-test-support", "--lib", "--", test,
               "--exact"]
    print(f"{env_var}={into} " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, cwd=REPO, env={**os.environ, env_var: str(into)},
                          stdout=sys.stderr)
    if done.returncode != 0:
        sys.exit(f"the stand-in's answers could not be written ({test} failed)")


def cli(doc, test, env_var, load, checks, explained):
    """`SCRIPT [--specs DIR] [--answers DIR]`: the exit status of a provider's script.

    `load(specs_dir)` returns the descriptions by doc name. Without `--answers` the stand-in
    is started (through `test`) and its answers go to a temporary directory."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_specs = os.environ.get(SPECS_ENV, REPO.parent / "shared" / "provider-specs")
    parser.add_argument("--specs", type=Path, default=Path(default_specs),
                        help=f"the provider descriptions (default: ${SPECS_ENV}, else "
                             "../shared/provider-specs next to the repository)")
    parser.add_argument("--answers", type=Path,
                        help="compare these answer files instead of starting the stand-in")
    args = parser.parse_args()
    if not args.specs.is_dir():
        sys.exit(f"no provider descriptions at {args.specs}: pass --specs or set ${SPECS_ENV}")
    descriptions = load(args.specs)
    if args.answers:
        return 1 if run(descriptions, args.answers, checks, True, explained) else 0
    with tempfile.TemporaryDirectory() as answers:
        stand_in_answers(test, env_var, answers)
        return 1 if run(descriptions, answers, checks, True, explained) else 0
