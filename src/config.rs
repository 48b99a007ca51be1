//! Configuration, layered: built-in defaults < `rdv.toml` < `RDV_*` environment < command-line
//! flags. Every layer is checked against the same schema, so an unknown key or a value of the
//! wrong type is an error that names the key, wherever it came from. `rdv.example.toml`
//! documents every key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use crate::webhooks::WebhookConfig;

/// Config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "rdv.toml";

/// Prefix of the environment variables that set configuration keys; `__` separates levels,
/// as in `RDV_LOG__FORMAT=json`.
pub const ENV_PREFIX: &str = "RDV";

/// Environment variable naming the config file (not a configuration key itself).
pub const CONFIG_FILE_ENV: &str = "RDV_CONFIG";

/// Why the configuration could not be loaded. The operator is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file named with `--config` or `RDV_CONFIG` does not exist.
    #[error("config file {0} does not exist")]
    FileNotFound(PathBuf),
    /// A layer has an unknown key, a value of the wrong type, or is not valid TOML.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    /// A value has the right type but is not acceptable.
    #[error("invalid configuration: {key}: {reason}")]
    InvalidValue {
        /// The dotted key.
        key: &'static str,
        /// Why the value was refused.
        reason: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Directory holding the database (with the rooms' private keys) and other state.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The DHT node.
    pub dht: DhtConfig,
    /// Device links: how callers connect.
    pub link: LinkConfig,
    /// The admin HTTP API.
    pub api: ApiConfig,
    /// The Prometheus metrics listener.
    pub metrics: MetricsConfig,
    /// Where room events are POSTed, signed.
    pub webhooks: Vec<WebhookConfig>,
    /// The database: SQLite in the data directory unless a PostgreSQL URL is given.
    pub database: DatabaseConfig,
    /// Several replicas on one database: room leases and draining.
    pub cluster: ClusterConfig,
    /// Where recordings go and which files can be played into rooms.
    pub media: MediaConfig,
}

/// Where recordings go and which files can be played into rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Recordings are written here (created, private, if missing).
    pub recordings_dir: PathBuf,
    /// Files played into rooms are named relative to this directory; nothing outside it can
    /// be played.
    pub files_dir: PathBuf,
}

/// `[media]` as written: empty paths mean `<data_dir>/recordings` and `<data_dir>/media`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMedia {
    recordings_dir: PathBuf,
    files_dir: PathBuf,
}

/// How replicas share rooms: each room is served by the replica holding its lease.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This replica's name in the leases; empty: one is made at start (host name and a
    /// random suffix), unique per process.
    pub replica: String,
    /// Seconds a room's lease lasts without renewal: how long a killed replica's rooms wait
    /// before another replica takes them over. Renewed every 2 s. 5 to 300.
    pub lease_seconds: u64,
    /// On SIGTERM, seconds to drain first: no new calls, each room released to another
    /// replica as soon as it is empty, the rest stopped at the end. 0: stop at once.
    pub drain_seconds: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { replica: String::new(), lease_seconds: 15, drain_seconds: 0 }
    }
}

/// Which database holds the rooms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseConfig {
    /// A PostgreSQL server (`postgres://user:password@host:port/database`); `None`: SQLite in
    /// the data directory.
    pub url: Option<DatabaseUrl>,
}

/// A PostgreSQL connection URL; its password never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Checks that `url` is a PostgreSQL URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("must start with postgres:// or postgresql://".into());
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without its password, for logs.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else { return self.0.clone() };
        match rest.split_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => self.0.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// The database section as written in files and the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: String,
}

/// The Prometheus metrics listener, apart from the API so that it can be scraped without a
/// token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether the server serves `/metrics` at all.
    pub enabled: bool,
    /// Address and port it listens on; port 0 picks a free one (logged at start).
    pub listen: SocketAddr,
}

/// The address the metrics listener uses by default.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9474";

/// The metrics listener as written in files and the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    enabled: bool,
    listen: String,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self { enabled: true, listen: DEFAULT_METRICS_LISTEN.to_owned() }
    }
}

impl RawMetrics {
    fn validate(self) -> Result<MetricsConfig, ConfigError> {
        let listen = self.listen.parse().map_err(|_| ConfigError::InvalidValue {
            key: "metrics.listen",
            reason: format!("{:?} is not an IP:PORT address", self.listen),
        })?;
        Ok(MetricsConfig { enabled: self.enabled, listen })
    }
}

/// The admin HTTP API's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Whether the server serves the API at all.
    pub enabled: bool,
    /// Address and port it listens on; port 0 picks a free one (logged at start).
    pub listen: SocketAddr,
    /// The bearer token that grants every route; without one only room tokens work, and the
    /// API listens on loopback only.
    pub admin_token: Option<AdminToken>,
}

/// The admin API's bearer token; never shown in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// The token itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The address the admin API listens on by default.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8474";

/// The admin API as written in files and the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApi {
    enabled: bool,
    listen: String,
    admin_token: String,
}

impl Default for RawApi {
    fn default() -> Self {
        Self { enabled: true, listen: DEFAULT_API_LISTEN.to_owned(), admin_token: String::new() }
    }
}

impl RawApi {
    fn validate(self) -> Result<ApiConfig, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| ConfigError::InvalidValue {
            key: "api.listen",
            reason: format!("{:?} is not an IP:PORT address", self.listen),
        })?;
        let token = self.admin_token.trim();
        if token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(ConfigError::InvalidValue {
                key: "api.admin_token",
                reason: "only printable ASCII characters without spaces are allowed".into(),
            });
        }
        let admin_token = (!token.is_empty()).then(|| AdminToken(token.to_owned()));
        let auth = rdv_admin_api::AuthConfig {
            admin_token: admin_token.as_ref().map(|token| token.expose().to_owned()),
        };
        if self.enabled
            && let Err(reason) = auth.allows_listen(&listen)
        {
            return Err(ConfigError::InvalidValue { key: "api.admin_token", reason });
        }
        Ok(ApiConfig { enabled: self.enabled, listen, admin_token })
    }
}

/// Device links (ICE-TCP, then TLS) configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// Host addresses offered to callers as ICE-TCP candidates. Empty: for each caller, the
    /// address of the interface that routes to the caller's candidates.
    pub addresses: Vec<std::net::IpAddr>,
    /// Seconds without traffic after which a link is probed with a beacon (answered within
    /// 3 s, or the link is closed).
    pub beacon_interval: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self { addresses: Vec::new(), beacon_interval: 30 }
    }
}

/// The DHT node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhtConfig {
    /// UDP port for IPv4 and IPv6; 0 picks a free one.
    pub port: u16,
    /// `host:port` addresses to join the network through.
    pub bootstrap: Vec<String>,
    /// Network id; Jami's is 0.
    pub network: u32,
    /// Also use IPv6 when the host has it.
    pub ipv6: bool,
}

/// The public bootstrap host Jami clients use.
pub const JAMI_BOOTSTRAP: &str = "bootstrap.jami.net:4222";

impl Default for DhtConfig {
    fn default() -> Self {
        Self { port: 4222, bootstrap: vec![JAMI_BOOTSTRAP.to_owned()], network: 0, ipv6: true }
    }
}

/// Logging configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter: a level or `target=level` directives.
    pub filter: LogFilter,
    /// Output format.
    pub format: LogFormat,
}

/// A `tracing` env-filter expression that is known to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

impl LogFilter {
    /// Checks the directive syntax.
    pub fn parse(filter: &str) -> Result<Self, String> {
        EnvFilter::builder().parse(filter).map_err(|error| error.to_string())?;
        Ok(Self(filter.to_owned()))
    }

    /// Builds the filter.
    pub fn to_env_filter(&self) -> EnvFilter {
        // Invariant: the directives parsed in `LogFilter::parse`.
        EnvFilter::builder().parse_lossy(&self.0)
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        match name.as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{name:?} is not a log format: expected \"text\" or \"json\"")),
        }
    }
}

/// Values given on the command line; they override every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--log-filter`.
    pub log_filter: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--bootstrap`, repeatable; replaces `dht.bootstrap` when given.
    pub bootstrap: Vec<String>,
}

/// The configuration schema as written in files and the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    data_dir: PathBuf,
    log: RawLog,
    dht: DhtConfig,
    link: LinkConfig,
    api: RawApi,
    metrics: RawMetrics,
    webhooks: Vec<WebhookConfig>,
    database: RawDatabase,
    cluster: ClusterConfig,
    media: RawMedia,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    filter: String,
    format: LogFormat,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            log: RawLog::default(),
            dht: DhtConfig::default(),
            link: LinkConfig::default(),
            api: RawApi::default(),
            metrics: RawMetrics::default(),
            webhooks: Vec::new(),
            database: RawDatabase::default(),
            cluster: ClusterConfig::default(),
            media: RawMedia::default(),
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        Self { filter: "info".to_owned(), format: LogFormat::Text }
    }
}

impl Config {
    /// Loads the layers. `file` is the explicit config file, if any (it must exist);
    /// otherwise `rdv.toml` in the working directory is read when present. `environment` is
    /// the process environment (passed in so tests need not mutate it).
    pub fn load(
        file: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        match file {
            Some(path) if !path.is_file() => return Err(ConfigError::FileNotFound(path.into())),
            Some(path) => builder = builder.add_source(config_file(path).required(true)),
            None => {
                builder =
                    builder.add_source(config_file(Path::new(DEFAULT_CONFIG_FILE)).required(false));
            }
        }
        let environment: HashMap<String, String> = environment
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name != CONFIG_FILE_ENV)
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("dht.bootstrap")
                .with_list_parse_key("link.addresses")
                .try_parsing(true)
                .source(Some(environment)),
        );
        if let Some(data_dir) = &overrides.data_dir {
            builder = builder.set_override("data_dir", data_dir.to_string_lossy().into_owned())?;
        }
        if let Some(filter) = &overrides.log_filter {
            builder = builder.set_override("log.filter", filter.clone())?;
        }
        if let Some(format) = overrides.log_format {
            builder = builder.set_override("log.format", format.name())?;
        }
        if !overrides.bootstrap.is_empty() {
            builder = builder.set_override("dht.bootstrap", overrides.bootstrap.clone())?;
        }
        let raw: RawConfig = builder.build()?.try_deserialize()?;
        raw.validate()
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::InvalidValue {
                key: "data_dir",
                reason: "must not be empty".into(),
            });
        }
        let filter = LogFilter::parse(&self.log.filter)
            .map_err(|reason| ConfigError::InvalidValue { key: "log.filter", reason })?;
        for address in &self.dht.bootstrap {
            let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !valid {
                return Err(ConfigError::InvalidValue {
                    key: "dht.bootstrap",
                    reason: format!("{address:?} is not HOST:PORT"),
                });
            }
        }
        if let Some(address) =
            self.link.addresses.iter().find(|a| a.is_unspecified() || a.is_multicast())
        {
            return Err(ConfigError::InvalidValue {
                key: "link.addresses",
                reason: format!("{address} is not a host address"),
            });
        }
        if !(1..=3600).contains(&self.link.beacon_interval) {
            return Err(ConfigError::InvalidValue {
                key: "link.beacon_interval",
                reason: format!("{} is not between 1 and 3600 seconds", self.link.beacon_interval),
            });
        }
        let url = self.database.url.trim();
        let database = DatabaseConfig {
            url: (!url.is_empty())
                .then(|| DatabaseUrl::parse(url))
                .transpose()
                .map_err(|reason| ConfigError::InvalidValue { key: "database.url", reason })?,
        };
        if !(5..=300).contains(&self.cluster.lease_seconds) {
            return Err(ConfigError::InvalidValue {
                key: "cluster.lease_seconds",
                reason: format!("{} is not between 5 and 300", self.cluster.lease_seconds),
            });
        }
        if self.cluster.drain_seconds > 3600 {
            return Err(ConfigError::InvalidValue {
                key: "cluster.drain_seconds",
                reason: format!("{} is over 3600", self.cluster.drain_seconds),
            });
        }
        if self.cluster.replica.len() > 128
            || self.cluster.replica.chars().any(|c| !c.is_ascii_graphic())
        {
            return Err(ConfigError::InvalidValue {
                key: "cluster.replica",
                reason: "at most 128 printable ASCII characters without spaces".into(),
            });
        }
        for webhook in &self.webhooks {
            webhook.validate().map_err(|error| ConfigError::InvalidValue {
                key: "webhooks",
                reason: error.to_string(),
            })?;
        }
        let or_in_data_dir = |path: PathBuf, default: &str| {
            if path.as_os_str().is_empty() { self.data_dir.join(default) } else { path }
        };
        let media = MediaConfig {
            recordings_dir: or_in_data_dir(self.media.recordings_dir, "recordings"),
            files_dir: or_in_data_dir(self.media.files_dir, "media"),
        };
        Ok(Config {
            media,
            data_dir: self.data_dir,
            log: LogConfig { filter, format: self.log.format },
            dht: self.dht,
            link: self.link,
            api: self.api.validate()?,
            metrics: self.metrics.validate()?,
            webhooks: self.webhooks,
            database,
            cluster: self.cluster,
        })
    }
}

fn config_file(path: &Path) -> config::File<config::FileSourceFile, config::FileFormat> {
    config::File::from(path).format(config::FileFormat::Toml)
}

#[cfg(test)]
mod tests;
