//! Webhooks for item changes, signed the way GitHub signs them, for tests that post a
//! provider's delivery to Switchyard's inbound gateway.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::item::Item;

/// The change a webhook reports; its `action` is `created`, `updated` or `deleted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    Created(Item),
    Updated(Item),
    /// The item as it was when deleted.
    Deleted(Item),
}

/// A delivery ready to send: the headers and the exact body bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWebhook {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SignedWebhook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A `POST` of this delivery to `url`.
    pub fn request(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        self.headers
            .iter()
            .fold(client.post(url), |request, (name, value)| {
                request.header(name, value)
            })
            .body(self.body.clone())
    }
}

/// `X-GitHub-Event: item`, a fresh `X-GitHub-Delivery` GUID, and
/// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body under secret>`. The body is
/// `{"action":"created"|"updated"|"deleted","item":{…},"sender":{"login":"standin"}}`.
/// Resending the same value is a redelivery: same delivery id, same bytes.
pub fn github_webhook(secret: &[u8], change: &ItemChange) -> SignedWebhook {
    let (action, item) = match change {
        ItemChange::Created(item) => ("created", item),
        ItemChange::Updated(item) => ("updated", item),
        ItemChange::Deleted(item) => ("deleted", item),
    };
    let body = json!({ "action": action, "item": item, "sender": { "login": "standin" } })
        .to_string()
        .into_bytes();
    SignedWebhook {
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "GitHub-Hookshot/standin".into()),
            ("x-github-event".into(), "item".into()),
            ("x-github-delivery".into(), uuid::Uuid::new_v4().to_string()),
            (
                "x-hub-signature-256".into(),
                github_signature(secret, &body),
            ),
        ],
        body,
    }
}

/// `sha256=` and the lower-case hex HMAC-SHA256 of `body`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mac = Hmac::<Sha256>::new_from_slice(secret).map(|mut mac| {
        mac.update(body);
        mac.finalize().into_bytes()
    });
    match mac {
        Ok(digest) => format!("sha256={}", hex::encode(digest)),
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_githubs_documented_example() {
        // The example from GitHub's "Validating webhook deliveries".
        assert_eq!(
            github_signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn signs_the_body_it_returns() {
        let item = Item::new("u00001", "A", "a@example.test");
        let webhook = github_webhook(b"secret", &ItemChange::Deleted(item));
        assert_eq!(
            webhook.header("X-Hub-Signature-256"),
            Some(github_signature(b"secret", &webhook.body).as_str())
        );
        let body: serde_json::Value = serde_json::from_slice(&webhook.body).unwrap();
        assert_eq!(body["action"], "deleted");
        assert_eq!(body["item"]["id"], "u00001");
    }
}
