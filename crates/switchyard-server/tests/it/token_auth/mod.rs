//! Token-minting auth modes end to end: a GitHub App style `jwt_bearer` mode (RS256 JWT
//! exchanged for an installation token), OAuth client credentials with
//! `client_secret_basic` and `client_secret_post` against the npm `oauth2-mock-server`, and
//! with `private_key_jwt` against a token endpoint here that verifies the assertion, and
//! `custom_headers`. The leak canary is its own test binary (`tests/token_canary.rs`): it
//! captures every thread's logs.

pub mod fixture;

use std::path::Path;
use std::process::Stdio;

use jsonwebtoken::jwk::JwkSet;
use serde_json::json;
use switchyard_test_support::{LeakScanner, TestBackend, backend_tests, required_test_server};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use fixture::{CLIENT_ID, TokenApp};

backend_tests! { TokenApp;
    async fn a_github_app_token_is_minted_cached_and_minted_anew_after_rotation(fx) {
        fx.exercise_app(&mut LeakScanner::new()).await;
    }

    async fn client_credentials_with_an_assertion_or_a_secret(fx) {
        fx.exercise_client_credentials(&mut LeakScanner::new()).await;
        // The catalogue says which fields each grant's credential holds.
        let provider = fx.app.get("/v1/providers/cc-key", &fx.tenant_key).await.json();
        assert_eq!(provider["auth_modes"][0]["credential_fields"], json!(["client_id", "private_key"]));
        let provider = fx.app.get("/v1/providers/cc-secret", &fx.tenant_key).await.json();
        assert_eq!(provider["auth_modes"][0]["credential_fields"], json!(["client_id", "client_secret"]));
        // Fields of another grant are refused before they reach the vault.
        let refused = fx
            .app
            .post(
                "/v1/connections",
                &fx.tenant_key,
                &json!({"provider": "cc-key", "name": "wrong", "config": {"base_url": fx.provider.url}, "credentials": {"client_id": CLIENT_ID, "client_secret": "s"}}),
            )
            .await;
        refused.assert_problem(400, "validation_failed");
    }

    async fn custom_headers_are_placed_from_secrets_and_config(fx) {
        fx.exercise_custom_headers(&mut LeakScanner::new()).await;
    }
}

// ---------------------------------------------------------------------------------------
// The npm `oauth2-mock-server` as the authorization server

/// The mock server, started for one test on 127.0.0.1, made to check the client's
/// authentication (it issues to anyone otherwise) and to say in the token how it was sent.
const MOCK_SERVER: &str = r#"
import { OAuth2Server } from 'oauth2-mock-server';
const [clientId, clientSecret] = process.argv.slice(1).filter((a) => a !== '--');
const formDecode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
function authenticated(req) {
  const header = req.headers.authorization;
  if (header && header.startsWith('Basic ')) {
    const [id, secret] = Buffer.from(header.slice(6), 'base64').toString().split(':').map(formDecode);
    return id === clientId && secret === clientSecret ? 'client_secret_basic' : null;
  }
  if (req.body.client_secret !== undefined) {
    return req.body.client_id === clientId && req.body.client_secret === clientSecret ? 'client_secret_post' : null;
  }
  return null;
}
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token, req) => {
  token.payload.client_id = clientId;
  token.payload.auth_method = authenticated(req);
});
server.service.on('beforeResponse', (response, req) => {
  if (req.body.grant_type === 'client_credentials' && authenticated(req) === null) {
    response.statusCode = 401;
    response.body = { error: 'invalid_client', error_description: 'Client authentication failed' };
  }
});
await server.start(0, '127.0.0.1');
console.log(server.issuer.url);
process.stdin.resume();
process.stdin.on('end', async () => { await server.stop(); process.exit(0); });
"#;

struct MockServer {
    issuer: String,
    _child: tokio::process::Child,
}

async fn start_mock_server(node_modules: &str, client_secret: &str) -> MockServer {
    let dir = Path::new(node_modules).parent().unwrap();
    let mut child = tokio::process::Command::new("node")
        .current_dir(dir)
        .args([
            "--input-type=module",
            "--eval",
            MOCK_SERVER,
            "--",
            CLIENT_ID,
            client_secret,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().unwrap();
    let issuer = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .unwrap()
        .expect("the mock server prints its issuer URL");
    MockServer {
        issuer,
        _child: child,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_basic_and_post_against_oauth2_mock_server() {
    let Some(node_modules) = required_test_server("SWITCHYARD_TEST_PEERS_NODE_MODULES") else {
        return;
    };
    let Some(fx) = TokenApp::start_with(TestBackend::Sqlite, &mut LeakScanner::new()).await else {
        return;
    };
    let mock = start_mock_server(&node_modules, &fx.client_secret).await;
    let jwks: JwkSet = reqwest::get(format!("{}/jwks", mock.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    fx.provider.get().mock = Some((mock.issuer.clone(), jwks));
    let mut leaks = LeakScanner::new();
    let config = json!({"base_url": fx.provider.url, "issuer": mock.issuer});
    for (provider, method, scope) in [
        ("mock-basic", "client_secret_basic", "read write"),
        ("mock-post", "client_secret_post", "read"),
    ] {
        let id = fx
            .connect(
                provider,
                config.clone(),
                json!({"client_id": CLIENT_ID, "client_secret": fx.client_secret}),
                &mut leaks,
            )
            .await;
        for _ in 0..2 {
            let test = fx.check(&id, &mut leaks).await;
            assert_eq!(test["success"], true, "{provider}: {test}");
        }
        let provider_state = fx.provider.get();
        let claims = provider_state.mock_claims.last().unwrap();
        assert_eq!(claims["auth_method"], method, "{claims:?}");
        assert_eq!(claims["client_id"], CLIENT_ID);
        assert_eq!(claims["scope"], scope);
        // Both checks carried the one token the mock server issued.
        let n = provider_state.presented.len();
        assert_eq!(
            provider_state.presented[n - 1],
            provider_state.presented[n - 2]
        );
    }
    // The mock server refuses a wrong secret with `invalid_client`.
    let id = fx
        .connect(
            "mock-post",
            config,
            json!({"client_id": CLIENT_ID, "client_secret": "not-the-secret"}),
            &mut leaks,
        )
        .await;
    let test = fx.check(&id, &mut leaks).await;
    assert_eq!(test["success"], false, "{test}");
    // Refused by the token endpoint: the credential is wrong, not unavailable.
    assert_eq!(test["error_code"], "auth_failed", "{test}");
    let message = test["error_message"].as_str().unwrap();
    assert!(message.contains("invalid_client"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
}
