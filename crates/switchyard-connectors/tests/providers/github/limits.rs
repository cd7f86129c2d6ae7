//! GitHub's primary and secondary rate limits.

use super::*;

#[tokio::test]
async fn a_secondary_rate_limit_is_waited_out_and_retried_on_429_and_403() {
    let synced = with_token(stand_in(token_options()).await).await;
    synced.github.secondary_limit(429, 1, 1);
    synced.sync("teams").await;
    synced.github.secondary_limit(403, 1, 1);
    synced.sync("outside_collaborators").await;
    let statuses: Vec<u16> = synced.github.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 403, 200]);
    synced
        .assert_in_sync_streams(&["teams", "outside_collaborators"])
        .await;
}

#[tokio::test]
async fn a_spent_primary_limit_waits_for_its_reset() {
    let synced = with_token(
        stand_in(GitHubOptions {
            rate_limit: Some(RateLimit::new(2, Duration::from_secs(2))),
            ..token_options()
        })
        .await,
    )
    .await;
    // Members take two pages, teams one: the third request finds the budget spent.
    synced.sync("members").await;
    synced.sync("teams").await;
    // x-ratelimit-remaining: 0 pauses the connection until x-ratelimit-reset, so the third
    // request goes out in the next window and is never refused.
    let statuses: Vec<u16> = synced.github.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200]);
    synced.assert_in_sync_streams(&["members", "teams"]).await;
}

#[tokio::test]
async fn a_secondary_limit_that_outlasts_the_retries_is_rate_limited() {
    let synced = with_token(stand_in(token_options()).await).await;
    synced.github.secondary_limit(403, 0, 100);
    let error = synced
        .connector
        .collect(synced.cx(), "teams", None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "rate_limited", "{error}");
    assert!(
        error.to_string().contains("secondary rate limit"),
        "{error}"
    );
    // The first answer and three more tries, as the error rule allows.
    assert_eq!(synced.github.requests().len(), 4);
}
