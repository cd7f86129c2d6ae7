//! W3C Trace Context (`traceparent`) for provider calls: each attempt is a child span of the
//! caller's trace (a job run, an API request), or the root of a new trace when there is none.
//!
//! When spans are exported (the binary installs the OpenTelemetry layer), the header and the
//! exported span agree: [`TraceContext::of_span`] reads the exported span's own context, and
//! [`TraceContext::adopt_as_parent`] makes a caller's context the exported span's parent.

use std::fmt;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use rand::Rng;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// `traceparent`'s fields: version 00, a 16-byte trace id, the parent span's 8-byte id and
/// the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceContext {
    /// A new trace, sampled.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        Self {
            trace_id: nonzero(|| rng.random()),
            span_id: nonzero(|| rng.random()),
            sampled: true,
        }
    }

    /// The context for a call made under this one: same trace, new span id.
    pub fn child(&self) -> Self {
        let mut rng = rand::rng();
        Self {
            span_id: nonzero(|| rng.random()),
            ..*self
        }
    }

    /// Parses a `traceparent` header value; `None` for anything malformed (the spec says to
    /// start a new trace then). Future versions are read by their version-00 prefix.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = decode(trace)?;
        let span_id: [u8; 8] = decode(span)?;
        let [flags]: [u8; 1] = decode(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The context of `span` as exported to OpenTelemetry; `None` when no span is exported
    /// (export off, or the span filtered out).
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        let context = span.context();
        let exported = context.span();
        let ids = exported.span_context();
        ids.is_valid().then(|| Self {
            trace_id: ids.trace_id().to_bytes(),
            span_id: ids.span_id().to_bytes(),
            sampled: ids.is_sampled(),
        })
    }

    /// Makes this context (a caller's, from elsewhere) the parent of `span` in the exported
    /// trace. Call it before the span is first entered; without export it does nothing.
    pub fn adopt_as_parent(&self, span: &tracing::Span) {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let remote = SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            flags,
            true,
            TraceState::default(),
        );
        // Fails only when nothing is exported or the span already started: then there is no
        // exported parent to set.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = u8::from(self.sampled);
        write!(
            f,
            "00-{}-{}-{flags:02x}",
            self.trace_id_hex(),
            self.span_id_hex()
        )
    }
}

/// All-zero ids are invalid; draw again (practically never).
fn nonzero<const N: usize>(mut draw: impl FnMut() -> [u8; N]) -> [u8; N] {
    loop {
        let id = draw();
        if id != [0; N] {
            return id;
        }
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_the_trace_in_children() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceContext::parse(value).unwrap();
        assert_eq!(parsed.to_string(), value);
        assert!(parsed.sampled);
        let child = parsed.child();
        assert_eq!(child.trace_id, parsed.trace_id);
        assert_ne!(child.span_id, parsed.span_id);
        let root = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&root.to_string()), Some(root));
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }
}
