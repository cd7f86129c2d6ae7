//! The stand-in's site: users, projects and issues, stamped by the test clock, shaped as Jira
//! Cloud's REST v3 answers them.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::{
    OffsetDateTime, UtcOffset, format_description::BorrowedFormatItem, macros::format_description,
};

/// Jira's own timestamp form: milliseconds and a colon-less offset (`2024-01-01T10:00:00.000+0000`).
const JIRA_TIME: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
);

/// Issue types every stand-in project has, by id.
pub const ISSUE_TYPES: &[(&str, &str)] = &[("10001", "Task"), ("10002", "Bug"), ("10003", "Story")];

/// The workflow: every transition is available from every status (`id`, target status).
pub const TRANSITIONS: &[(&str, &str, &str)] = &[
    ("11", "To Do", "new"),
    ("21", "In Progress", "indeterminate"),
    ("31", "Done", "done"),
];

/// A Jira user (`GET /rest/api/3/users/search`, `myself`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraUser {
    pub account_id: String,
    /// `atlassian` for people, `app` for bots and integrations.
    pub account_type: String,
    /// `None` when the user's profile visibility hides it, as Jira omits the field then.
    pub email: Option<String>,
    pub display_name: String,
    pub active: bool,
}

/// A project (`GET /rest/api/3/project/search`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraProject {
    pub id: String,
    pub key: String,
    pub name: String,
}

/// An issue (`POST /rest/api/3/search/jql`).
#[derive(Debug, Clone, PartialEq)]
pub struct JiraIssue {
    pub id: String,
    pub key: String,
    pub project_key: String,
    pub summary: String,
    pub issue_type: String,
    pub status: String,
    pub priority: Option<String>,
    /// Atlassian Document Format, or `None`.
    pub description: Option<Value>,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub comments: Vec<Value>,
}

#[derive(Debug, Default)]
pub(crate) struct Site {
    pub(crate) users: BTreeMap<String, JiraUser>,
    /// By key.
    pub(crate) projects: BTreeMap<String, JiraProject>,
    /// By numeric id (Jira's own order).
    pub(crate) issues: BTreeMap<u64, JiraIssue>,
    next_issue_id: u64,
    next_comment_id: u64,
}

impl Site {
    pub(crate) fn next_issue_id(&mut self) -> u64 {
        self.next_issue_id = self.next_issue_id.max(10_000) + 1;
        self.next_issue_id
    }

    pub(crate) fn next_comment_id(&mut self) -> u64 {
        self.next_comment_id = self.next_comment_id.max(10_000) + 1;
        self.next_comment_id
    }

    /// The next free number in a project (`OPS-7` after `OPS-6`).
    pub(crate) fn next_issue_number(&self, project_key: &str) -> u64 {
        let prefix = format!("{project_key}-");
        self.issues
            .values()
            .filter_map(|issue| issue.key.strip_prefix(&prefix)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1
    }

    pub(crate) fn issue_by_key_mut(&mut self, key: &str) -> Option<&mut JiraIssue> {
        self.issues.values_mut().find(|issue| issue.key == key)
    }

    /// Issues in the JQL search order: `updated`, then id.
    pub(crate) fn issues_by_update(&self) -> Vec<&JiraIssue> {
        let mut issues: Vec<&JiraIssue> = self.issues.values().collect();
        issues.sort_by_key(|issue| (issue.updated, numeric_id(&issue.id)));
        issues
    }
}

pub(crate) fn numeric_id(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

/// A time as Jira writes it, in the viewing user's offset.
pub fn jira_time(at: OffsetDateTime, offset: UtcOffset) -> String {
    at.to_offset(offset)
        .format(JIRA_TIME)
        .unwrap_or_else(|_| unreachable!("every date in range formats"))
}

/// An Atlassian Document Format document of one paragraph holding `text`.
pub fn adf_paragraph(text: &str) -> Value {
    json!({
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]
    })
}

/// Whether a value is an ADF document (`type: doc`, `version: 1`, a `content` list).
pub(crate) fn is_adf(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("doc")
        && value.get("version").and_then(Value::as_u64) == Some(1)
        && value.get("content").is_some_and(Value::is_array)
}

impl JiraUser {
    pub(crate) fn to_json(&self, base: &str, offset_name: &str) -> Value {
        let mut user = json!({
            "self": format!("{base}/rest/api/3/user?accountId={}", self.account_id),
            "accountId": self.account_id,
            "accountType": self.account_type,
            "avatarUrls": {
                "48x48": format!("https://avatar-management.example/{}/48", self.account_id),
            },
            "displayName": self.display_name,
            "active": self.active,
            "timeZone": offset_name,
            "locale": "en_US",
        });
        if let Some(email) = &self.email {
            user["emailAddress"] = json!(email);
        }
        user
    }
}

impl JiraProject {
    pub(crate) fn to_json(&self, base: &str) -> Value {
        json!({
            "self": format!("{base}/rest/api/3/project/{}", self.id),
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "projectTypeKey": "software",
            "simplified": false,
            "style": "classic",
            "isPrivate": false,
            "properties": {},
        })
    }
}

impl JiraIssue {
    /// Every field the stand-in knows, as `fields` holds them.
    fn all_fields(&self, site: &Site, offset: UtcOffset) -> serde_json::Map<String, Value> {
        let project = site.projects.get(&self.project_key);
        let issue_type_id = ISSUE_TYPES
            .iter()
            .find(|(_, name)| *name == self.issue_type)
            .map_or("10001", |(id, _)| id);
        let category = TRANSITIONS
            .iter()
            .find(|(_, status, _)| *status == self.status)
            .map_or("new", |(_, _, category)| category);
        let mut fields = serde_json::Map::new();
        fields.insert("summary".into(), json!(self.summary));
        fields.insert(
            "status".into(),
            json!({"name": self.status, "statusCategory": {"key": category}}),
        );
        fields.insert(
            "issuetype".into(),
            json!({"id": issue_type_id, "name": self.issue_type, "subtask": false}),
        );
        fields.insert(
            "priority".into(),
            self.priority
                .as_ref()
                .map_or(Value::Null, |name| json!({"name": name})),
        );
        fields.insert(
            "project".into(),
            json!({
                "id": project.map(|p| p.id.clone()),
                "key": self.project_key,
                "name": project.map(|p| p.name.clone()),
            }),
        );
        fields.insert(
            "description".into(),
            self.description.clone().unwrap_or(Value::Null),
        );
        fields.insert("created".into(), json!(jira_time(self.created, offset)));
        fields.insert("updated".into(), json!(jira_time(self.updated, offset)));
        fields
    }

    /// The issue as a search answers it: `id`, `key`, `self` and the asked `fields` (every
    /// field for `*all` or `*navigable`; none at all when none is asked, as Jira does).
    pub(crate) fn to_json(
        &self,
        site: &Site,
        base: &str,
        offset: UtcOffset,
        wanted: &[String],
    ) -> Value {
        let all = self.all_fields(site, offset);
        let every = wanted.iter().any(|f| f == "*all" || f == "*navigable");
        let fields: serde_json::Map<String, Value> = all
            .into_iter()
            .filter(|(name, _)| every || wanted.iter().any(|w| w == name))
            .collect();
        let mut issue = json!({
            "expand": "",
            "id": self.id,
            "self": format!("{base}/rest/api/3/issue/{}", self.id),
            "key": self.key,
        });
        if !fields.is_empty() {
            issue["fields"] = Value::Object(fields);
        }
        issue
    }
}
