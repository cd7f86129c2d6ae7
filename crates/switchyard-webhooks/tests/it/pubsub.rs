//! Google Pub/Sub push OIDC tokens from npm `oauth2-mock-server@8.2.3`, keys fetched from its
//! JWKS endpoint over HTTP.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::json;
use switchyard_webhooks::{FetchError, KeyCache, KeyFetcher, Scheme};
use url::Url;

use crate::support::*;

const SERVER: &str = r#"
import { OAuth2Server } from 'oauth2-mock-server';
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
// Let each token request choose the claims Pub/Sub would put in its token.
server.service.on('beforeTokenSigning', (token, req) => {
  const b = req.body || {};
  if (b.aud) token.payload.aud = b.aud;
  if (b.email) { token.payload.email = b.email; token.payload.email_verified = b.email_verified !== 'false'; }
  if (b.exp_offset) token.payload.exp = Math.floor(Date.now() / 1000) + Number(b.exp_offset);
});
await server.start(0, '127.0.0.1');
// The default issuer URL names `localhost`; pin it to the address actually listened on.
server.issuer.url = `http://127.0.0.1:${server.address().port}`;
console.log(server.issuer.url);
"#;

struct MockServer(Child, String);

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(node_modules: &str) -> MockServer {
    let child = Command::new("node")
        .current_dir(node_dir(node_modules))
        .args(["--input-type=module", "--eval", SERVER])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start oauth2-mock-server");
    // Owned by the guard first, so a failing assertion below still stops the server.
    let mut server = MockServer(child, String::new());
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("issuer url");
    server.1 = line.trim().to_owned();
    assert!(server.1.starts_with("http://127.0.0.1:"), "{}", server.1);
    server
}

struct HttpFetcher;

#[async_trait::async_trait]
impl KeyFetcher for HttpFetcher {
    async fn fetch(&self, url: &Url) -> Result<bytes::Bytes, FetchError> {
        let response = reqwest::get(url.clone())
            .await
            .map_err(|e| FetchError(e.to_string()))?;
        response
            .bytes()
            .await
            .map_err(|e| FetchError(e.to_string()))
    }
}

async fn token(issuer: &str, params: &[(&str, &str)]) -> String {
    let mut form = vec![("grant_type", "client_credentials"), ("scope", "openid")];
    form.extend_from_slice(params);
    let response: serde_json::Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth("client", Some("secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish(),
        )
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    response["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[test]
fn pubsub_oidc_tokens() {
    let Some(node_modules) = node_modules() else {
        return;
    };
    let server = start(&node_modules);
    let issuer = server.1.clone();
    let audience = "https://hooks.example.com/ingest/src_1";
    let email = "pusher@project.iam.gserviceaccount.com";
    let cfg = config(
        Scheme::GooglePubsub,
        json!({"audience": audience, "issuers": [issuer], "email": email, "jwks_url": format!("{issuer}/jwks")}),
    );
    let body = json!({
        "message": {"data": "SGVsbG8=", "messageId": "136969346945", "publishTime": "2024-01-01T00:00:00Z",
                    "attributes": {"eventType": "OBJECT_FINALIZE"}},
        "subscription": "projects/p/subscriptions/s"
    })
    .to_string();

    block_on(async {
        let keys = KeyCache::new(Arc::new(HttpFetcher));
        let run = |token: String| {
            let req = Req::post(body.clone()).header("authorization", &format!("Bearer {token}"));
            let keys = &keys;
            let cfg = &cfg;
            async move { switchyard_webhooks::verify(cfg, &[], &req.inbound(), keys).await }
        };

        let good = token(&issuer, &[("aud", audience), ("email", email)]).await;
        let verified = run(good.clone()).await.expect("verifies");
        assert_eq!(verified.delivery_id, "136969346945");
        assert_eq!(
            verified.event_type.as_deref(),
            Some("google_pubsub.OBJECT_FINALIZE")
        );
        assert_eq!(verified.principal.as_deref(), Some(email));

        let code = |r: Result<_, switchyard_webhooks::Rejection>| r.map(|_| ()).unwrap_err().code();
        let wrong_aud = token(&issuer, &[("aud", "https://elsewhere"), ("email", email)]).await;
        assert_eq!(code(run(wrong_aud).await), "invalid_token");
        let wrong_email = token(
            &issuer,
            &[
                ("aud", audience),
                ("email", "other@x.iam.gserviceaccount.com"),
            ],
        )
        .await;
        assert_eq!(code(run(wrong_email).await), "invalid_token");
        let unverified = token(
            &issuer,
            &[
                ("aud", audience),
                ("email", email),
                ("email_verified", "false"),
            ],
        )
        .await;
        assert_eq!(code(run(unverified).await), "invalid_token");
        let expired = token(
            &issuer,
            &[("aud", audience), ("email", email), ("exp_offset", "-3600")],
        )
        .await;
        assert_eq!(code(run(expired).await), "invalid_token");

        // Tampered claims, truncated and empty signatures.
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"iss":"x","aud":"y","exp":99999999999}"#,
        );
        assert_eq!(code(run(parts.join(".")).await), "invalid_token");
        assert_eq!(
            code(run(good[..good.len() - 10].to_owned()).await),
            "invalid_token"
        );
        let unsigned = good.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert_eq!(code(run(unsigned).await), "invalid_token");

        // Another issuer configured: the same token is refused.
        let other = config(
            Scheme::GooglePubsub,
            json!({"audience": audience, "jwks_url": format!("{issuer}/jwks")}),
        );
        let req = Req::post(body.clone()).header("authorization", &format!("Bearer {good}"));
        let result = switchyard_webhooks::verify(&other, &[], &req.inbound(), &keys).await;
        assert_eq!(code(result), "invalid_token");

        let missing = Req::post(body.clone());
        let result = switchyard_webhooks::verify(&cfg, &[], &missing.inbound(), &keys).await;
        assert_eq!(code(result), "missing_header");
        let basic = Req::post(body.clone()).header("authorization", "Basic abc");
        let result = switchyard_webhooks::verify(&cfg, &[], &basic.inbound(), &keys).await;
        assert_eq!(code(result), "invalid_token");

        // The key set is unreachable.
        let offline = KeyCache::offline();
        let req = Req::post(body.clone()).header("authorization", &format!("Bearer {good}"));
        let result = switchyard_webhooks::verify(&cfg, &[], &req.inbound(), &offline).await;
        assert_eq!(code(result), "key_fetch_failed");
    });
    drop(server);
}
