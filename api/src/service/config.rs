//! How `isa-ledger serve` is configured: flags, then environment variables, then an
//! optional TOML file, then the defaults here, the first that says wins. Flags and
//! their variables are declared together in `cli.rs` (clap reads both); this merges
//! them with the file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
/// A domain command is a few KB; narratives a few tens. 1 MiB leaves room and bounds
/// what one request can make the service hold.
pub const BODY_LIMIT_DEFAULT: usize = 1024 * 1024;
pub const REQUEST_TIMEOUT_DEFAULT: u64 = 30;
/// Per token, requests a second sustained, and the burst above it.
pub const RATE_DEFAULT: u32 = 5_000;
pub const BURST_DEFAULT: u32 = 10_000;
/// A webhook delivery that fails is tried again after this many milliseconds, then four
/// times longer each time: 5 s, 20 s, 80 s, … about 23 hours over 8 attempts.
pub const WEBHOOK_BACKOFF_MS_DEFAULT: u64 = 5_000;
pub const WEBHOOK_ATTEMPTS_DEFAULT: u32 = 8;

/// What the flags and variables said (each `None` when neither did).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub body_limit: Option<usize>,
    pub request_timeout: Option<u64>,
    pub rate_limit: Option<u32>,
    pub rate_burst: Option<u32>,
    pub webhook_backoff_ms: Option<u64>,
    pub webhook_attempts: Option<u32>,
    pub demo: Option<bool>,
}

/// The optional TOML file: the same settings, by the same names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    body_limit: Option<usize>,
    request_timeout: Option<u64>,
    rate_limit: Option<u32>,
    rate_burst: Option<u32>,
    webhook_backoff_ms: Option<u64>,
    webhook_attempts: Option<u32>,
    demo: Option<bool>,
}

/// The settings the service runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub rate_limit: u32,
    pub rate_burst: u32,
    /// The first retry's delay; each later one is four times the one before.
    pub webhook_backoff: Duration,
    /// Attempts before a delivery is marked failed and the next one goes.
    pub webhook_attempts: u32,
    /// Seed the demo partnership into an empty log on first start.
    pub demo: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is not a valid configuration file: {error}")]
    Parse { path: String, error: String },
    #[error("listen address {0:?} is not HOST:PORT (for example 127.0.0.1:8080)")]
    Listen(String),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

impl ServeConfig {
    /// Merges the flags and variables over the file (if any) over the defaults.
    pub fn load(overrides: Overrides, file: Option<&Path>) -> Result<ServeConfig, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.display().to_string(),
                    error,
                })?;
                toml::from_str::<FileSettings>(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    error: e.to_string(),
                })?
            }
            None => FileSettings::default(),
        };
        let listen = overrides
            .listen
            .or(from_file.listen)
            .unwrap_or_else(|| LISTEN_DEFAULT.to_string());
        let config = ServeConfig {
            listen: listen
                .parse()
                .map_err(|_| ConfigError::Listen(listen.clone()))?,
            body_limit: overrides
                .body_limit
                .or(from_file.body_limit)
                .unwrap_or(BODY_LIMIT_DEFAULT),
            request_timeout: Duration::from_secs(
                overrides
                    .request_timeout
                    .or(from_file.request_timeout)
                    .unwrap_or(REQUEST_TIMEOUT_DEFAULT),
            ),
            rate_limit: overrides
                .rate_limit
                .or(from_file.rate_limit)
                .unwrap_or(RATE_DEFAULT),
            rate_burst: overrides
                .rate_burst
                .or(from_file.rate_burst)
                .unwrap_or(BURST_DEFAULT),
            webhook_backoff: Duration::from_millis(
                overrides
                    .webhook_backoff_ms
                    .or(from_file.webhook_backoff_ms)
                    .unwrap_or(WEBHOOK_BACKOFF_MS_DEFAULT),
            ),
            webhook_attempts: overrides
                .webhook_attempts
                .or(from_file.webhook_attempts)
                .unwrap_or(WEBHOOK_ATTEMPTS_DEFAULT),
            demo: overrides.demo.or(from_file.demo).unwrap_or(false),
        };
        for (name, value) in [
            ("body_limit", config.body_limit as u64),
            ("request_timeout", config.request_timeout.as_secs()),
            ("rate_limit", u64::from(config.rate_limit)),
            ("rate_burst", u64::from(config.rate_burst)),
            (
                "webhook_backoff_ms",
                config.webhook_backoff.as_millis() as u64,
            ),
            ("webhook_attempts", u64::from(config.webhook_attempts)),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nrate_limit = 7\n").unwrap();
        let config = ServeConfig::load(
            Overrides {
                rate_limit: Some(9),
                ..Overrides::default()
            },
            Some(&path),
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.rate_limit, 9);
        assert_eq!(config.body_limit, BODY_LIMIT_DEFAULT);
    }

    #[test]
    fn a_misspelt_or_wrong_setting_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        let e = ServeConfig::load(Overrides::default(), Some(&path)).unwrap_err();
        assert!(e.to_string().contains("listne"), "{e}");
        let e = ServeConfig::load(
            Overrides {
                listen: Some("localhost".into()),
                ..Overrides::default()
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
    }
}
