//! Logging and trace export.
//!
//! Logs: human-readable on a terminal, JSON lines otherwise; the level from `RUST_LOG`.
//! Traces: `serve` exports its spans over OTLP/HTTP (protobuf) when an endpoint is configured
//! (`[telemetry]` or the standard `OTEL_*` variables), in batches from the SDK's own thread
//! with reqwest's blocking client; nothing is exported otherwise.

use std::io::IsTerminal;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use switchyard_config::{LogFormat, TelemetryConfig};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::filter_fn, layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

/// Used when neither `telemetry.service_name` nor `OTEL_SERVICE_NAME` names the service.
const DEFAULT_SERVICE_NAME: &str = "switchyard";

/// Installs the global subscriber, logs only. Logs go to stderr, leaving stdout to command
/// output.
pub fn init(format: LogFormat) {
    install(format, None);
}

/// Installs the global subscriber for `serve`: logs, and spans exported when configured.
/// Keep the returned handle until the server has stopped, then [`TraceExport::shutdown`].
///
/// # Errors
/// The export is configured but cannot be set up (a malformed endpoint, for example).
pub fn init_with_traces(
    format: LogFormat,
    config: &TelemetryConfig,
) -> anyhow::Result<TraceExport> {
    let provider = match export_endpoint(config) {
        Some(endpoint) => Some(tracer_provider(config, endpoint)?),
        None => None,
    };
    let tracer = provider
        .as_ref()
        .map(|provider| provider.tracer(env!("CARGO_PKG_NAME")));
    install(format, tracer);
    if provider.is_some() {
        // Not the endpoint: a URL may carry credentials (the headers are never logged either).
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    Ok(TraceExport { provider })
}

/// The trace exporter of a running `serve`, if export is on.
pub struct TraceExport {
    provider: Option<SdkTracerProvider>,
}

impl TraceExport {
    /// Sends the spans still batched and stops the exporter. Blocks until then (the SDK gives
    /// up after 5 s), so it runs off the async workers.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "trace export did not flush on shutdown"),
            Err(error) => tracing::warn!(%error, "trace export did not flush on shutdown"),
        }
    }
}

/// Where `/v1/traces` requests go, `None` when export is off. `telemetry.otlp_endpoint` wins;
/// otherwise the exporter reads the standard variables, and export is on if one is set.
/// `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` turn it off, as the spec says.
fn export_endpoint(config: &TelemetryConfig) -> Option<ExportEndpoint> {
    let variable = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    if variable("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
        || variable("OTEL_TRACES_EXPORTER")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("none"))
    {
        return None;
    }
    if let Some(base) = &config.otlp_endpoint {
        let traces = format!("{}/v1/traces", base.trim_end_matches('/'));
        return Some(ExportEndpoint::Configured(traces));
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .any(|name| variable(name).is_some())
    .then_some(ExportEndpoint::FromEnvironment)
}

enum ExportEndpoint {
    /// The full `/v1/traces` URL from `telemetry.otlp_endpoint`.
    Configured(String),
    /// The exporter resolves the standard variables itself.
    FromEnvironment,
}

/// The SDK's tracer provider with a batching OTLP/HTTP exporter. The sampler comes from
/// `OTEL_TRACES_SAMPLER`/`_ARG` (default: parent-based, always on).
fn tracer_provider(
    config: &TelemetryConfig,
    endpoint: ExportEndpoint,
) -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder().with_http();
    let exporter = match endpoint {
        ExportEndpoint::Configured(url) => exporter.with_endpoint(url),
        ExportEndpoint::FromEnvironment => exporter,
    };
    let exporter = exporter
        .build()
        .context("cannot set up OTLP trace export")?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(config))
        .build())
}

/// `service.name` (the setting, else `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`, else
/// `switchyard`) and `service.version`.
fn resource(config: &TelemetryConfig) -> Resource {
    let detected = Resource::builder().build();
    let named_by_environment = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    match (&config.service_name, named_by_environment) {
        (Some(name), _) => builder.with_service_name(name.clone()),
        (None, true) => builder,
        (None, false) => builder.with_service_name(DEFAULT_SERVICE_NAME),
    }
    .build()
}

/// Spans (and the events inside them) that are exported: Switchyard's own and the HTTP
/// server's. Other crates' spans stay out, above all the exporter's own HTTP client's, which
/// would otherwise be exported in turn.
fn is_exported(metadata: &tracing::Metadata<'_>) -> bool {
    let target = metadata.target();
    target.starts_with("switchyard") || target.starts_with("tower_http")
}

fn install(format: LogFormat, tracer: Option<opentelemetry_sdk::trace::Tracer>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed()
    } else {
        logs.boxed()
    };
    let traces = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // The code location stays; thread, target and idle/busy times are noise here.
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(filter_fn(is_exported))
    });
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces);
    // A second init (never in the binary) would fail; nothing to do about it then.
    let _ = subscriber.try_init();
}
