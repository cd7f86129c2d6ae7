use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::*;

/// 2026-12-04T14:00:00Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_392_800)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn window(prefix: &str, format: ResetFormat) -> WindowSpec {
    WindowSpec {
        remaining: format!("{prefix}-remaining"),
        limit: Some(format!("{prefix}-limit")),
        reset: format!("{prefix}-reset"),
        reset_format: format,
    }
}

fn read(spec: &SignalSpec, status: u16, h: &HeaderMap, body: Option<&[u8]>) -> Signals {
    spec.read(status, h, body, now(), &RetryAfterWindow::default())
}

#[test]
fn the_default_spec_treats_429_as_limited_and_honours_retry_after() {
    let spec = SignalSpec::default();
    let got = read(&spec, 429, &headers(&[("retry-after", "7")]), None);
    assert!(got.limited);
    assert_eq!(got.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(got.pause(), Some(Duration::from_secs(7)));

    let ok = read(&spec, 200, &HeaderMap::new(), None);
    assert_eq!(ok, Signals::default());
}

#[test]
fn retry_after_as_an_http_date() {
    let spec = SignalSpec::default();
    let at = httpdate::fmt_http_date(now() + Duration::from_secs(90));
    let got = read(&spec, 503, &headers(&[("retry-after", &at)]), None);
    assert!(!got.limited, "503 is not a rate signal by default");
    assert_eq!(got.retry_after, Some(Duration::from_secs(90)));
}

#[test]
fn every_reset_format_reads_to_the_same_delay() {
    let in_30s = now() + Duration::from_secs(30);
    let epoch = in_30s
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iso = time::OffsetDateTime::from(in_30s)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cases = [
        (ResetFormat::EpochSeconds, epoch.to_string()),
        (ResetFormat::EpochMillis, (epoch * 1000).to_string()),
        (ResetFormat::DeltaSeconds, "30".to_owned()),
        (ResetFormat::DeltaSeconds, "30.0".to_owned()),
        (ResetFormat::Iso8601, iso),
        (ResetFormat::HttpDate, httpdate::fmt_http_date(in_30s)),
    ];
    for (format, value) in cases {
        assert_eq!(
            format.reset_in(&value, now()),
            Some(Duration::from_secs(30)),
            "{format:?} {value}"
        );
    }
}

#[test]
fn a_reset_in_the_past_means_now_and_garbage_means_nothing() {
    assert_eq!(
        ResetFormat::EpochSeconds.reset_in("1", now()),
        Some(Duration::ZERO)
    );
    for format in [
        ResetFormat::EpochSeconds,
        ResetFormat::EpochMillis,
        ResetFormat::DeltaSeconds,
        ResetFormat::Iso8601,
        ResetFormat::HttpDate,
    ] {
        for bad in ["", "soon", "-5", "NaN", "inf", "1e400"] {
            assert_eq!(format.reset_in(bad, now()), None, "{format:?} {bad:?}");
        }
    }
}

/// Jira writes its reset to the minute (`yyyy-MM-ddTHH:mmZ`), which RFC 3339 alone refuses.
#[test]
fn iso8601_takes_minute_precision_with_z_or_an_offset() {
    // now() is 14:00:00Z.
    for (value, wait) in [
        ("2026-12-04T14:02Z", 120),
        ("2026-12-04T16:02+02:00", 120),
        ("2026-12-04T09:30-05:00", 30 * 60),
        ("2026-12-04T14:02:30Z", 150),
        ("2026-12-04T14:02:30.5+00:00", 150),
        // Past: now.
        ("2026-12-04T13:59Z", 0),
    ] {
        assert_eq!(
            ResetFormat::Iso8601.reset_in(value, now()),
            Some(Duration::from_millis(if value.contains(".5") {
                150_500
            } else {
                wait * 1000
            })),
            "{value}"
        );
    }
    for bad in [
        "2026-12-04T12:02",
        "2026-12-04T12Z",
        "2026-12-04T12:02+0200",
        "2026-12-04T12:02 Z",
        "2026-12-04T25:00Z",
        "2026-12-03 12:02Z",
        "12:02Z",
        "2026-12-04T14:02ZZ",
    ] {
        assert_eq!(ResetFormat::Iso8601.reset_in(bad, now()), None, "{bad}");
    }
}

#[test]
fn a_jira_429_pauses_until_its_minute_reset() {
    let spec = SignalSpec {
        windows: vec![window("x-ratelimit", ResetFormat::Iso8601)],
        ..SignalSpec::default()
    };
    let got = read(
        &spec,
        429,
        &headers(&[
            ("retry-after", "50"),
            ("x-ratelimit-limit", "100"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "2026-12-04T14:01Z"),
        ]),
        None,
    );
    assert!(got.limited);
    assert_eq!(got.windows[0].reset_in, Duration::from_secs(60));
    assert_eq!(
        got.pause(),
        Some(Duration::from_secs(60)),
        "the later of the two"
    );
}

#[test]
fn windows_pace_calls_and_the_strictest_wins() {
    let spec = SignalSpec {
        windows: vec![
            window("x-minute", ResetFormat::DeltaSeconds),
            window("x-hour", ResetFormat::DeltaSeconds),
        ],
        ..SignalSpec::default()
    };
    let got = read(
        &spec,
        200,
        &headers(&[
            // 60 calls left for 60 s: one per second.
            ("x-minute-remaining", "60"),
            ("x-minute-limit", "100"),
            ("x-minute-reset", "60"),
            // 100 calls left for an hour: one per 36 s, the stricter.
            ("x-hour-remaining", "100"),
            ("x-hour-reset", "3600"),
        ]),
        None,
    );
    assert!(!got.limited);
    assert_eq!(got.windows.len(), 2);
    assert_eq!(got.windows[0].limit, Some(100));
    assert_eq!(got.pacing(), Some(Duration::from_secs(36)));
    assert_eq!(got.pause(), None);
}

#[test]
fn a_window_with_plenty_left_does_not_pace_until_it_runs_low() {
    let spec = SignalSpec {
        windows: vec![window("x-rl", ResetFormat::DeltaSeconds)],
        ..SignalSpec::default()
    };
    let at = |remaining: &str| {
        let h = headers(&[
            ("x-rl-remaining", remaining),
            ("x-rl-limit", "5000"),
            ("x-rl-reset", "3600"),
        ]);
        read(&spec, 200, &h, None).pacing()
    };
    assert_eq!(at("4000"), None);
    assert_eq!(at("900"), Some(Duration::from_secs(4)));
}

#[test]
fn an_exhausted_window_pauses_until_its_reset() {
    let spec = SignalSpec {
        windows: vec![window("x-ratelimit", ResetFormat::EpochSeconds)],
        ..SignalSpec::default()
    };
    let reset = now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 45;
    let got = read(
        &spec,
        200,
        &headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset.to_string()),
        ]),
        None,
    );
    assert_eq!(got.pause(), Some(Duration::from_secs(45)));
    assert_eq!(got.pacing(), None);
}

#[test]
fn a_window_with_a_missing_or_broken_header_is_ignored() {
    let spec = SignalSpec {
        windows: vec![window("x-ratelimit", ResetFormat::DeltaSeconds)],
        ..SignalSpec::default()
    };
    for pairs in [
        vec![("x-ratelimit-remaining", "5")],
        vec![("x-ratelimit-reset", "5")],
        vec![
            ("x-ratelimit-remaining", "many"),
            ("x-ratelimit-reset", "5"),
        ],
        vec![
            ("x-ratelimit-remaining", "5"),
            ("x-ratelimit-reset", "later"),
        ],
    ] {
        assert!(read(&spec, 200, &headers(&pairs), None).windows.is_empty());
    }
}

#[test]
fn a_rate_limit_code_in_the_body_counts_as_limited() {
    let spec = SignalSpec {
        body: vec![BodySignal {
            statuses: vec![400, 403],
            pointer: "/0/errorCode".to_owned(),
            values: vec!["REQUEST_LIMIT_EXCEEDED".to_owned()],
        }],
        ..SignalSpec::default()
    };
    let limited = br#"[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}]"#;
    assert!(read(&spec, 403, &HeaderMap::new(), Some(limited)).limited);
    // The same code on a status the signal does not name, another code, or a body that is
    // not JSON is not a rate signal.
    assert!(!read(&spec, 500, &HeaderMap::new(), Some(limited)).limited);
    let other = br#"[{"errorCode":"INVALID_FIELD"}]"#;
    assert!(!read(&spec, 400, &HeaderMap::new(), Some(other)).limited);
    assert!(!read(&spec, 400, &HeaderMap::new(), Some(b"\xff\xfe not json")).limited);
    assert!(!read(&spec, 400, &HeaderMap::new(), None).limited);
}

#[test]
fn a_spec_deserialises_from_manifest_json() {
    let spec: SignalSpec = serde_json::from_value(serde_json::json!({
        "limited_statuses": [429, 420],
        "windows": [{
            "remaining": "x-ratelimit-remaining",
            "reset": "x-ratelimit-reset",
            "reset_format": "epoch_seconds"
        }],
        "body": [{"pointer": "/error", "values": ["ratelimited"]}]
    }))
    .unwrap();
    assert!(spec.retry_after, "unset fields keep their defaults");
    assert_eq!(spec.windows[0].reset_format, ResetFormat::EpochSeconds);
    let unknown = serde_json::from_value::<SignalSpec>(serde_json::json!({"retry_afer": true}));
    assert!(unknown.is_err(), "a typo is an error, not a silent default");
}
