//! The plain HTTP ceiling for the ingest benchmark (`scripts/bench/ingest-wrk.sh`): an axum
//! handler that reads the body and computes one HMAC-SHA256 over it, on the runtime the
//! server uses. `cargo run --release -p switchyard-server --example hello_hmac -- 127.0.0.1:18740`

#![allow(clippy::expect_used, clippy::print_stdout)]

use hmac::{Hmac, Mac};
use sha2::Sha256;

async fn handler(body: axum::body::Bytes) -> &'static str {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"bench secret").expect("any key length");
    mac.update(&body);
    std::hint::black_box(mac.finalize());
    "ok"
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18740".to_owned());
    let app = axum::Router::new().route("/hello", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on {address}");
    axum::serve(listener, app).await
}
