//! Configuration: embedded defaults, then an optional TOML file, then `INBOXGROVE_SECTION__KEY`
//! environment variables. The result is validated once at start; every other module reads the
//! typed [`Config`] handed to it through `App`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Environment variables under the `INBOXGROVE_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["MASTER_KEY", "REQUIRE_PEERS", "LOG"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(Box<figment::Error>),
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The whole effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Public host name: EHLO, MX records, certificates, exported SMTP/IMAP host.
    pub hostname: String,
    /// Where the database, master key and generated certificate live.
    pub data_dir: PathBuf,
    /// Public addresses of this appliance, published in SPF records.
    pub public_ips: Vec<String>,
    pub http: HttpConfig,
    pub smtp: SmtpConfig,
    pub imap: ImapConfig,
    pub dns: DnsConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    /// The URL users reach the UI at; links (setup, invites) are built from it.
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Submission with STARTTLS.
    pub submission: String,
    /// Submission with implicit TLS.
    pub submissions: String,
    /// Inbound mail for local domains (the MX).
    pub inbound: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// IMAP with STARTTLS.
    pub listen: String,
    /// IMAP with implicit TLS.
    pub listen_tls: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// `ip:port` of the nameservers to ask; empty means the system's.
    pub nameservers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; absent means a self-signed certificate in the data dir.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("./data"),
            public_ips: Vec::new(),
            http: HttpConfig::default(),
            smtp: SmtpConfig::default(),
            imap: ImapConfig::default(),
            dns: DnsConfig::default(),
            tls: TlsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            base_url: String::new(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            submission: "127.0.0.1:2587".into(),
            submissions: "127.0.0.1:2465".into(),
            inbound: "127.0.0.1:2525".into(),
        }
    }
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            listen: "127.0.0.1:2143".into(),
            listen_tls: "127.0.0.1:2993".into(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then the environment, and validates the result.
    pub fn load(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(
            Env::prefixed("INBOXGROVE_")
                .filter(|key| {
                    !NON_CONFIG_ENV
                        .iter()
                        .any(|skip| key.as_str().eq_ignore_ascii_case(skip))
                })
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        if let Some(dir) = data_dir {
            config.data_dir = dir.to_path_buf();
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        let host = self
            .hostname
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                key: "hostname",
                reason: "must be a host name".into(),
            });
        }
        self.hostname = host;
        for (key, value) in [
            ("http.listen", &self.http.listen),
            ("smtp.submission", &self.smtp.submission),
            ("smtp.submissions", &self.smtp.submissions),
            ("smtp.inbound", &self.smtp.inbound),
            ("imap.listen", &self.imap.listen),
            ("imap.listen_tls", &self.imap.listen_tls),
        ] {
            parse_listen(key, value)?;
        }
        for ns in &self.dns.nameservers {
            parse_listen("dns.nameservers", ns)?;
        }
        for ip in &self.public_ips {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| ConfigError::Invalid {
                    key: "public_ips",
                    reason: format!("`{ip}` is not an IP address"),
                })?;
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls",
                reason: "set both `cert` and `key`, or neither".into(),
            });
        }
        self.http.base_url = self.http.base_url.trim_end_matches('/').to_string();
        let url = &self.http.base_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "http.base_url",
                reason: "must start with http:// or https://".into(),
            });
        }
        Ok(())
    }

    /// Fills in `http.base_url` from the address the UI actually listens on, when not configured.
    pub fn default_base_url(&mut self, bound: SocketAddr) {
        if self.http.base_url.is_empty() {
            self.http.base_url = format!("http://{bound}");
        }
    }

    /// Whether the UI is reached over TLS (cookies then carry `Secure`).
    pub fn served_over_tls(&self) -> bool {
        self.http.base_url.starts_with("https://")
    }

    /// The port part of a listen address, as published in exports.
    pub fn port_of(listen: &str) -> u16 {
        listen
            .parse::<SocketAddr>()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The effective configuration as TOML, with secrets replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        // No key of this version holds a secret; the master key never lives in the config.
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

fn parse_listen(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse::<SocketAddr>()
        .map_err(|_| ConfigError::Invalid {
            key,
            reason: format!("`{value}` is not an ip:port address"),
        })
}
