#!/usr/bin/env python3
"""Compare the Slack stand-in's answers with Slack's Web API and Events API descriptions.

Usage:
    slack-shapes.py [--specs DIR] [--answers DIR]

DIR of --specs holds `slack-web-openapi-v2.json` and `slack-events-api-async-v1.json`
(slackapi/slack-api-specs); default: $SWITCHYARD_PROVIDER_SPECS, else
`../shared/provider-specs` next to the repository. Without --answers the script runs the test
`providers::slack::shapes::answers_for_the_shape_check` of switchyard-test-support, which
starts the stand-in, calls every method the Slack connector uses (and answers each error the
connector handles) and builds Events API deliveries, writing one `NAME.json` per answer where
`SWITCHYARD_SLACK_SHAPES_DIR` says.

A method's answer is compared with its documented example and schema (`200` for `ok: true`,
`default` for errors; strict: required fields, enums and patterns too). A delivery is
compared with the Events API's `GenericEventWrapper`, and the user inside `team_join` and
`user_change` with the Web API's `objs_user`. Differences listed in EXPLAINED are shown, not
counted. Exits 1 when anything unexplained is reported. Standard library only.
"""

import json
import sys

sys.dont_write_bytecode = True  # importing shapecheck leaves no __pycache__ behind
from shapecheck import Description, Operation, Schema, cli


def method(name, status="200", http="get"):
    return Operation(f"/{name}", http, status, doc="web")


WRAPPER = Schema("#/components/schemas/GenericEventWrapper", doc="events")
USER = Schema("#/definitions/objs_user", doc="web")
# The description's `url_verification` topic points at the event wrapper, but the payload is
# its own: the shape and example of the `url_verification` event page (api.slack.com).
URL_VERIFICATION = Schema(
    doc="events",
    inline={
        "type": "object",
        "additionalProperties": False,
        "required": ["token", "challenge", "type"],
        "properties": {
            "token": {"type": "string"},
            "challenge": {"type": "string"},
            "type": {"type": "string", "enum": ["url_verification"]},
        },
    },
    examples=[{
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }],
)

# answer file -> what it stands in for (or a list of (part of the answer, target))
CHECKS = {
    "auth_test": method("auth.test"),
    "users_list": method("users.list"),
    "conversations_list": method("conversations.list"),
    "conversations_members": method("conversations.members"),
    "chat_post_message": method("chat.postMessage", http="post"),
    "chat_post_message_thread": method("chat.postMessage", http="post"),
    "conversations_open": method("conversations.open", http="post"),
    "conversations_open_again": method("conversations.open", http="post"),
    "error_not_authed": method("auth.test", "default"),
    "error_invalid_auth": method("users.list", "default"),
    "error_missing_scope": method("conversations.list", "default"),
    "error_invalid_cursor": method("users.list", "default"),
    "error_channel_not_found": method("conversations.members", "default"),
    "error_not_in_channel": method("chat.postMessage", "default", "post"),
    "error_user_not_found": method("conversations.open", "default", "post"),
    "error_ratelimited": method("users.list", "default"),
    "event_team_join": [("", WRAPPER), ("event.user", USER)],
    "event_user_change": [("", WRAPPER), ("event.user", USER)],
    "event_channel_created": WRAPPER,
    "event_channel_rename": WRAPPER,
    "event_group_rename": WRAPPER,
    "event_channel_archive": WRAPPER,
    "event_group_archive": WRAPPER,
    "event_member_joined_channel": WRAPPER,
    "event_member_left_channel": WRAPPER,
    "event_url_verification": URL_VERIFICATION,
}

# (answer glob, problem glob) -> why the difference is expected
EXPLAINED = {
    ("conversations_list", "extra $.channels[].updated"):
        "sent by conversations.list since 2022 (epoch milliseconds, in the method's current "
        "example); the 2021 description predates it",
    ("conversations_list", "extra $.channels[].context_team_id"):
        "sent by conversations.list today (the method's current example); the 2021 "
        "description predates it",
    ("chat_post_message*", "missing $.message.attachments"):
        "the example posted attachments; Slack echoes only what the post carried",
    ("chat_post_message*", "missing $.message.username"):
        "the example is a legacy post with a custom `username`; an app's bot token posts "
        "under the bot user, without one",
    ("chat_post_message*", "extra $.message.app_id"):
        "Slack adds the posting app's id to an app's message; objs_message (2021) lacks it",
    ("error_ratelimited", "value $.error: 'ratelimited' not in the schema's enum"):
        "the HTTP 429 answer of Slack's rate-limit documentation, which no method's error "
        "list in the description names",
}


def load(specs):
    def read(name):
        return Description(json.loads((specs / name).read_text()))

    return {
        "web": read("slack-web-openapi-v2.json"),
        "events": read("slack-events-api-async-v1.json"),
    }


if __name__ == "__main__":
    sys.exit(cli(__doc__, "providers::slack::shapes::answers_for_the_shape_check",
                 "SWITCHYARD_SLACK_SHAPES_DIR", load, CHECKS, EXPLAINED))
