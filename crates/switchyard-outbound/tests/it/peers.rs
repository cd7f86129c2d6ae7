//! End-to-end receivers written with the official libraries: Python `standardwebhooks` and
//! `svix` verify every delivery (`v1`), and `cryptography` verifies `v1a` with the public key.
//! During a rotation's grace period each delivery must verify with the old *and* the new secret.
//!
//! Needs `SWITCHYARD_TEST_PEERS_PYTHON` (see `scripts/peers/webhook-libs.sh`); skipped locally
//! without it, failing in CI.

use std::process::Stdio;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use switchyard_core::{EndpointId, TenantId};
use switchyard_outbound::{
    EndpointUpdate, ManualClock, NewEndpoint, NewEvent, RotateSecret, publish,
};
use switchyard_test_support::{backend_tests, required_test_server};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::{Fixture, test_config};

const RECEIVER: &str = r#"
import base64, http.server, os, sys, threading
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

library = StandardWebhook if sys.argv[1] == "standardwebhooks" else SvixWebhook
hooks = [library(s) for s in os.environ["SECRETS"].split(",") if s]
public_keys = [k for k in os.environ.get("PUBLIC_KEYS", "").split(",") if k]
# Handler threads print concurrently; one lock keeps each result on its own line.
out = threading.Lock()

def verify_v1a(headers, body):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    signatures = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")
                  if s.startswith("v1a,")]
    for encoded in public_keys:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded[len("whpk_"):]))
        good = False
        for signature in signatures:
            try:
                key.verify(base64.b64decode(signature), content)
                good = True
            except Exception:
                pass
        if not good:
            return False
    return True

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        failures = []
        for i, hook in enumerate(hooks):
            try:
                hook.verify(body, dict(headers))
            except Exception as e:
                failures.append(f"secret{i}:{e}")
        if public_keys and not verify_v1a(headers, body):
            failures.append("v1a")
        status = "FAIL" if failures else "OK"
        with out:
            sys.stdout.write(f"{status} {headers.get('webhook-id')} {';'.join(failures)}\n")
            sys.stdout.flush()
        self.send_response(401 if failures else 204)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
"#;

struct PyReceiver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl PyReceiver {
    async fn start(
        python: &str,
        library: &str,
        secrets: &[&SecretString],
        public_keys: &[String],
    ) -> Self {
        let secrets: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
        let mut child = Command::new(python)
            .arg("-c")
            .arg(RECEIVER)
            .arg(library)
            .env("SECRETS", secrets.join(","))
            .env("PUBLIC_KEYS", public_keys.join(","))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python receiver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver to start")
            .unwrap()
            .expect("a port line");
        let port = first.strip_prefix("PORT ").expect("PORT line").to_owned();
        Self {
            child,
            lines,
            url: format!("http://127.0.0.1:{port}/webhook"),
        }
    }

    /// The next `n` verification lines.
    async fn results(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .expect("a verification result")
                .unwrap()
                .expect("the receiver is running");
            out.push(line);
        }
        out
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn point(fx: &Fixture, tenant: TenantId, endpoint: EndpointId, url: &str) {
    fx.endpoints
        .update(
            &fx.context,
            tenant,
            endpoint,
            EndpointUpdate {
                url: Some(url.to_owned()),
                ..EndpointUpdate::default()
            },
        )
        .await
        .unwrap();
}

async fn publish_n(fx: &Fixture, tenant: TenantId, n: usize) {
    for i in 0..n {
        publish(
            &fx.database,
            &fx.vault,
            tenant,
            NewEvent::new("peer.test", json!({"i": i, "text": "héllo \u{2603}"})),
        )
        .await
        .unwrap();
    }
}

fn all_ok(lines: &[String]) {
    for line in lines {
        assert!(line.starts_with("OK "), "verification failed: {line}");
    }
}

backend_tests! { Fixture;
    async fn standardwebhooks_verifies_every_delivery_through_a_rotation(fx) {
        let Some(python) = required_test_server("SWITCHYARD_TEST_PEERS_PYTHON") else { return };
        let tenant = TenantId::generate();
        let mut new = NewEndpoint::new("http://127.0.0.1:9/placeholder");
        new.v1a = true;
        let created = fx.endpoints.create(&fx.context, tenant, new).await.unwrap();
        let endpoint = created.endpoint.id;
        let first_key = created.endpoint.public_key.clone().expect("a v1a public key");
        let clock = ManualClock::new();
        let running = fx.dispatcher(test_config(&clock));

        // Before the rotation: the secret and the public key.
        let mut receiver = PyReceiver::start(&python, "standardwebhooks", &[&created.secret], std::slice::from_ref(&first_key)).await;
        point(&fx, tenant, endpoint, &receiver.url).await;
        publish_n(&fx, tenant, 3).await;
        all_ok(&receiver.results(3).await);
        receiver.stop().await;

        // During the grace period: every delivery verifies with the old and with the new
        // secret, and with the old and the new public key.
        let rotated = fx.endpoints.rotate_secret(&fx.context, tenant, endpoint, RotateSecret::default()).await.unwrap();
        let new_key = rotated.public_key.clone().unwrap();
        assert_ne!(new_key, first_key);
        let mut receiver = PyReceiver::start(
            &python, "standardwebhooks", &[&created.secret, &rotated.secret], &[first_key.clone(), new_key.clone()],
        ).await;
        point(&fx, tenant, endpoint, &receiver.url).await;
        publish_n(&fx, tenant, 3).await;
        all_ok(&receiver.results(3).await);
        receiver.stop().await;

        // After it: the new secret verifies, the old one no longer does.
        let done = fx.endpoints.rotate_secret(&fx.context, tenant, endpoint, RotateSecret {
            secret: Some(rotated.secret),
            grace: Some(Duration::ZERO),
        }).await.unwrap();
        let current_key = done.public_key.clone().unwrap();
        let mut receiver = PyReceiver::start(&python, "standardwebhooks", &[&done.secret], &[current_key]).await;
        point(&fx, tenant, endpoint, &receiver.url).await;
        publish_n(&fx, tenant, 2).await;
        all_ok(&receiver.results(2).await);
        receiver.stop().await;
        let mut receiver = PyReceiver::start(&python, "standardwebhooks", &[&created.secret], &[]).await;
        point(&fx, tenant, endpoint, &receiver.url).await;
        publish_n(&fx, tenant, 1).await;
        let lines = receiver.results(1).await;
        assert!(lines[0].starts_with("FAIL "), "the retired secret still verifies: {lines:?}");
        receiver.stop().await;
        running.stop().await;
    }

    async fn svix_verifies_every_delivery(fx) {
        let Some(python) = required_test_server("SWITCHYARD_TEST_PEERS_PYTHON") else { return };
        let tenant = TenantId::generate();
        let created = fx.endpoints.create(&fx.context, tenant, NewEndpoint::new("http://127.0.0.1:9/x")).await.unwrap();
        let clock = ManualClock::new();
        let running = fx.dispatcher(test_config(&clock));
        let mut receiver = PyReceiver::start(&python, "svix", &[&created.secret], &[]).await;
        point(&fx, tenant, created.endpoint.id, &receiver.url).await;
        publish_n(&fx, tenant, 5).await;
        all_ok(&receiver.results(5).await);
        receiver.stop().await;
        running.stop().await;
    }
}
