//! Admin webhook deliveries as Jira Cloud sends them: a JSON body with `timestamp`
//! (epoch milliseconds, from the test clock) and `webhookEvent`, plus the issue, project or
//! user it concerns, and the headers Jira adds. The signature (`X-Hub-Signature:
//! sha256=<hex HMAC-SHA256 of the body>`) is left to the test, which computes it with an
//! implementation of its own choosing.

use serde_json::{Value, json};

use super::{JiraIssue, JiraProject, JiraStandIn, JiraUser, MYSELF_ACCOUNT_ID};

/// A delivery before signing: its headers and the exact body bytes to sign and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraWebhook {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl JiraWebhook {
    fn new(identifier: u64, body: &Value) -> Self {
        Self {
            headers: vec![
                (
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("user-agent".into(), "Atlassian Webhook HTTP Client".into()),
                (
                    "x-atlassian-webhook-identifier".into(),
                    identifier.to_string(),
                ),
                ("x-atlassian-webhook-retry".into(), "0".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl JiraStandIn {
    fn timestamp(&self) -> i64 {
        i64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// `jira:issue_created`, `jira:issue_updated` or `jira:issue_deleted` for `issue` (which
    /// may be gone already), with every field, as the site sends it.
    pub fn issue_webhook(&self, identifier: u64, event: &str, issue: &JiraIssue) -> JiraWebhook {
        let site = self.shared.site();
        let user = site
            .users
            .get(MYSELF_ACCOUNT_ID)
            .map(|u| u.to_json(self.url(), &self.shared.options.time_zone));
        let body = json!({
            "timestamp": self.timestamp(),
            "webhookEvent": event,
            "issue_event_type_name": match event {
                "jira:issue_created" => "issue_created",
                "jira:issue_deleted" => "issue_deleted",
                _ => "issue_generic",
            },
            "user": user,
            "issue": issue.to_json(&site, self.url(), self.shared.options.utc_offset, &["*all".to_owned()]),
        });
        JiraWebhook::new(identifier, &body)
    }

    /// `project_created`, `project_updated` or `project_deleted`.
    pub fn project_webhook(
        &self,
        identifier: u64,
        event: &str,
        project: &JiraProject,
    ) -> JiraWebhook {
        let body = json!({
            "timestamp": self.timestamp(),
            "webhookEvent": event,
            "project": project.to_json(self.url()),
        });
        JiraWebhook::new(identifier, &body)
    }

    /// `user_created`, `user_updated` or `user_deleted`.
    pub fn user_webhook(&self, identifier: u64, event: &str, user: &JiraUser) -> JiraWebhook {
        let body = json!({
            "timestamp": self.timestamp(),
            "webhookEvent": event,
            "user": user.to_json(self.url(), &self.shared.options.time_zone),
        });
        JiraWebhook::new(identifier, &body)
    }
}
