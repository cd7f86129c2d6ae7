#!/usr/bin/env python3
"""Compare the Okta stand-in's answers with Okta's Management API description.

Usage:
    okta-shapes.py [--specs DIR] [--answers DIR]

DIR of --specs holds `okta-management-minimal.yaml` (okta/okta-management-openapi-spec,
`dist/current/management-minimal.yaml`); default: $SWITCHYARD_PROVIDER_SPECS, else
`../shared/provider-specs` next to the repository. Without --answers the script runs the test
`providers::okta::shapes::answers_for_the_shape_check` of switchyard-test-support, which
starts the stand-in, requests every endpoint the Okta connector uses and writes one
`NAME.json` per answer (empty for a body-less answer) where `SWITCHYARD_OKTA_SHAPES_DIR` says.

Each answer is compared with the operation's documented examples and response schema (see
shapecheck.py; strict: required fields and enums too). Event hook deliveries are not in the
description: their envelope is compared with the sample of Okta's event hook guide, their
events with `GET /api/v1/logs`. Differences listed in EXPLAINED are shown, not counted.
Exits 1 when anything unexplained is reported. Needs PyYAML (`import yaml`).
"""

import sys

sys.dont_write_bytecode = True  # importing shapecheck leaves no __pycache__ behind
from shapecheck import Description, Operation, Schema, cli

USERS = Operation("/api/v1/users", "get", "200")
LOGS = Operation("/api/v1/logs", "get", "200")
ERROR = Schema("#/components/schemas/Error")

# The event hook envelope, from "Sample event delivery payload" in Okta's event hooks guide
# (developer.okta.com/docs/concepts/event-hooks); the management description has no schema.
EVENT_HOOK = Schema(
    inline={
        "type": "object",
        "additionalProperties": False,
        "required": ["eventType", "eventTypeVersion", "cloudEventsVersion", "source",
                     "eventId", "data", "eventTime", "contentType"],
        "properties": {
            "eventType": {"type": "string", "enum": ["com.okta.event_hook"]},
            "eventTypeVersion": {"type": "string"},
            "cloudEventsVersion": {"type": "string"},
            "source": {"type": "string"},
            "eventId": {"type": "string"},
            "data": {
                "type": "object",
                "additionalProperties": False,
                "required": ["events"],
                "properties": {"events": {"type": "array"}},
            },
            "eventTime": {"type": "string"},
            "contentType": {"type": "string", "enum": ["application/json"]},
        },
    },
    examples=[{
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": "https://{yourOktaDomain}/api/v1/eventHooks/whoql0HfiLGPWc8Jx0g3",
        "eventId": "b5a188b9-5ece-4636-b041-482ffda96311",
        "data": {"events": []},
        "eventTime": "2019-03-27T16:59:53.032Z",
        "contentType": "application/json",
    }],
)

# answer file -> what it stands in for (or a list of (part of the answer, target))
CHECKS = {
    "users": USERS,
    "user_me": Operation("/api/v1/users/{id}", "get", "200"),
    "groups": Operation("/api/v1/groups", "get", "200"),
    "group_members": Operation("/api/v1/groups/{groupId}/users", "get", "200"),
    "factors": Operation("/api/v1/users/{userId}/factors", "get", "200"),
    "apps": Operation("/api/v1/apps", "get", "200"),
    "logs": LOGS,
    "suspend": Operation("/api/v1/users/{id}/lifecycle/suspend", "post", "200"),
    "unsuspend": Operation("/api/v1/users/{id}/lifecycle/unsuspend", "post", "200"),
    "remove_member": Operation("/api/v1/groups/{groupId}/users/{userId}", "delete", "204"),
    "event_hook": [("", EVENT_HOOK), ("data.events", LOGS)],
    "error_400": Operation("/api/v1/users/{id}/lifecycle/suspend", "post", "400"),
    "error_400_search": ERROR,  # listUsers documents no 400
    "error_401": ERROR,  # no operation documents its 401
    "error_403": Operation("/api/v1/users", "get", "403"),
    "error_404": Operation("/api/v1/users/{id}", "get", "404"),
    "error_429": Operation("/api/v1/apps", "get", "429"),
}

# (answer glob, problem glob) -> why the difference is expected
EXPLAINED = {
    ("user_me", "missing $.profile.*"):
        "the example's user has every optional profile attribute set; Okta leaves unset ones "
        "out (only mobilePhone and secondEmail come as null) and the stand-in's admin sets none",
    ("user_me", "missing $.credentials.recovery_question"):
        "only for a user who set a recovery question",
    ("factors", "missing $[].profile.phoneNumber"):
        "the push factor, compared with the nearest example (SMS): ListFactorsResults has no "
        "push factor; its profile follows UserFactorPushProfile",
    ("factors", "extra $[]._links.questions"):
        "the example names a security question's link `questions`; the schema "
        "(LinksQuestions) says `question`",
    ("factors", "extra $[]._links.next"):
        "the example links a pending factor to its activation as `next` (name `activate`); "
        "the schema (UserFactorLinks) has no `next`",
    ("apps", "missing $[].settings.signOn"):
        "a SAML app's sign-on configuration (ACS URL, certificates, …): nothing the connector "
        "reads, left out",
    ("apps", "extra $[].settings.app"):
        "in every example app (its app-specific settings); SamlApplicationSettings lacks it",
    # System Log events, in `logs` and in the event hook's `data.events`.
    ("*", "missing $*[].device"):
        "the example is a sign-in from a registered device, which `device` describes; the "
        "stand-in's events are admin API calls, with no device",
    ("*", "extra $*[].authenticationContext.rootSessionId"):
        "in the example (Okta sends it); LogAuthenticationContext lacks it",
    ("*", "missing $*[].debugContext.debugData.*"):
        "debugData is a free-form map whose keys depend on the event; the stand-in sends "
        "requestId only",
    ("*", "type $*[]*.geographicalContext: null, *"):
        "the stand-in's client is the private address 10.0.0.1, which Okta cannot locate "
        "(LogGeographicalContext: missing when the data can't be resolved)",
    ("*", "type $*[].legacyEventType: null, *"):
        "null for events without a legacy Events API type (the example's event has one); the "
        "stand-in names none, and the schema forgets `nullable`",
    ("*", "type $*[].version: string, example has integer"):
        "the schema (and Okta) have the string \"0\"; the example's number 0 contradicts its "
        "own schema",
}


def load(specs):
    try:
        import yaml
    except ImportError:
        sys.exit("okta-shapes.py needs PyYAML: python3 -m pip install pyyaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(specs / "okta-management-minimal.yaml") as file:
        return {"default": Description(yaml.load(file, Loader=loader))}


if __name__ == "__main__":
    sys.exit(cli(__doc__, "providers::okta::shapes::answers_for_the_shape_check",
                 "SWITCHYARD_OKTA_SHAPES_DIR", load, CHECKS, EXPLAINED))
