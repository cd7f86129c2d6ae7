//! GCRA state in Redis, so several Switchyard processes draw from one budget per key.
//!
//! Each decision is one Lua script run atomically by Redis: read the key's theoretical
//! arrival time (TAT), admit the call if it falls within the burst tolerance, and store the
//! advanced TAT with an expiry at which the bucket is full again (so idle keys clean
//! themselves up). Time comes from Redis (`TIME`), not from the callers, so processes with
//! skewed clocks still agree. All arithmetic is in integer microseconds, exact in Lua's
//! doubles.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Admission, Rate, RateLimitBackend, RateLimitError};

/// KEYS[1]: the bucket. ARGV[1]: emission interval (µs per call). ARGV[2]: burst.
/// Returns 0 when admitted, else the microseconds until the next slot.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local earliest = tat - tolerance
if now < earliest then
  return earliest - now
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
";

/// The Redis backend. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisBackend {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
}

impl std::fmt::Debug for RedisBackend {
    /// The connection's URL can carry a password; show only the prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects to `url` (`redis://host:port/db`); the connection reconnects on its own.
    /// Keys are stored as `{prefix}{key}`.
    ///
    /// # Errors
    /// [`RateLimitError::Backend`] when the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url).map_err(backend_error)?;
        // A decision waits on Redis: bound it, so a hung Redis fails calls with a typed error
        // instead of stalling them; reconnects are quick and few for the same reason.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(backend_error)?;
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA),
            prefix: prefix.into(),
        })
    }

    /// Microseconds between calls at `rate`, rounded up: never faster than declared.
    fn interval_micros(rate: Rate) -> u64 {
        let period = u64::try_from(rate.period().as_micros()).unwrap_or(u64::MAX);
        period.div_ceil(u64::from(rate.calls().get()))
    }

    async fn decide(&self, key: &str, rate: Rate) -> Result<Admission, RateLimitError> {
        let mut connection = self.connection.clone();
        let wait_micros: u64 = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(Self::interval_micros(rate))
            .arg(rate.burst().get())
            .invoke_async(&mut connection)
            .await
            .map_err(backend_error)?;
        Ok(match wait_micros {
            0 => Admission::Ready,
            wait => Admission::RetryIn(Duration::from_micros(wait)),
        })
    }
}

fn backend_error(err: redis::RedisError) -> RateLimitError {
    RateLimitError::Backend(Box::new(err))
}

impl RateLimitBackend for RedisBackend {
    fn check(
        &self,
        key: &str,
        rate: Rate,
    ) -> impl Future<Output = Result<Admission, RateLimitError>> + Send {
        self.decide(key, rate)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    #[test]
    fn the_interval_is_the_period_over_the_calls_rounded_up() {
        let n = |v| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        assert_eq!(
            RedisBackend::interval_micros(Rate::per_second(n(4))),
            250_000
        );
        assert_eq!(
            RedisBackend::interval_micros(Rate::per_second(n(3))),
            333_334
        );
        assert_eq!(
            RedisBackend::interval_micros(Rate::per_minute(n(20))),
            3_000_000
        );
    }
}
