//! Configuration: embedded defaults, then an optional TOML file, then `INBOXGROVE_SECTION__KEY`
//! environment variables. The result is validated once at start; every other module reads the
//! typed [`Config`] handed to it through `App`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Environment variables under the `INBOXGROVE_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] =
    &["MASTER_KEY", "REQUIRE_PEERS", "LOG", "TEST_CLOCK", "IDLE_RECHECK_SECS", "CONFIG", "SYSTEM_CONFIG"];

/// The configuration file of an installed host, read when neither `--config` nor
/// `INBOXGROVE_CONFIG` names one.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/inboxgrove/config.toml";

/// The configuration file to read: `flag` (`--config`), else `INBOXGROVE_CONFIG`, else the
/// system file when it exists (`INBOXGROVE_SYSTEM_CONFIG` names another path, for tests);
/// `None` leaves the embedded defaults (and the environment).
pub fn config_file(flag: Option<&Path>) -> Option<PathBuf> {
    let named = |key: &str| std::env::var_os(key).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(file) = flag.map(Path::to_path_buf).or_else(|| named("INBOXGROVE_CONFIG")) {
        return Some(file);
    }
    let system = named("INBOXGROVE_SYSTEM_CONFIG").unwrap_or_else(|| PathBuf::from(SYSTEM_CONFIG_FILE));
    system.is_file().then_some(system)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read into the settings; serde's backticks around
    /// names and values are shown as quotes.
    #[error("{}", .0.to_string().replace('`', "\""))]
    Load(Box<figment::Error>),
    #[error("Invalid value for {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The submission port clients use unless `[smtp] public_submission_port` says otherwise.
pub const STANDARD_SUBMISSION_PORT: u16 = 587;
/// The IMAP (implicit TLS) port clients use unless `[imap] public_port` says otherwise.
pub const STANDARD_IMAPS_PORT: u16 = 993;

/// Whether `name` can be a public mail server's name: a DNS name of at least two labels, not an
/// address, and not under a name reserved for tests, examples or local networks (RFC 2606,
/// RFC 6761, RFC 6762, RFC 8375).
pub fn is_public_host_name(name: &str) -> bool {
    const RESERVED: [&str; 9] =
        ["localhost", "test", "example", "invalid", "local", "internal", "lan", "home.arpa", "localdomain"];
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let valid = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    valid
        && name.parse::<std::net::IpAddr>().is_err()
        && !labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        && !RESERVED.iter().any(|r| name == *r || name.ends_with(&format!(".{r}")))
        && !["example.com", "example.net", "example.org"].iter().any(|r| name == *r || name.ends_with(&format!(".{r}")))
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
    pub delivery: DeliveryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    /// The URL users reach the UI at; links (setup, invites) are built from it.
    pub base_url: String,
    /// Addresses of reverse proxies in front of the UI: a request from one of them is taken to
    /// come from the address its `X-Forwarded-For` names (login throttling counts per address).
    pub trusted_proxies: Vec<String>,
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
    /// The largest message accepted, in bytes (advertised in EHLO SIZE).
    pub max_message_size: u64,
    /// The most recipients one message may have.
    pub max_recipients: usize,
    /// Whether inbound mail failing DMARC under a `p=reject` policy is refused (550 5.7.1); when
    /// false it is accepted and filed to Spam instead (`p=quarantine` failures go to Spam either way).
    pub inbound_dmarc_enforce: bool,
    /// ARC sealers (the `d=` of ARC-Seal) whose passing chain rescues mail that fails DMARC (a
    /// mailing list or forwarder that broke the signature): it is filed as if DMARC had passed.
    /// Empty: ARC is reported in Authentication-Results but never overrides DMARC.
    pub arc_trusted_sealers: Vec<String>,
    /// Whether the `Received` field added to submitted mail names the client's address and EHLO
    /// name; false leaves them out (the sending device's address stays private).
    pub received_client_address: bool,
    /// The submission port mail clients and sequencers are told to use (exports, the mailbox
    /// page) when a proxy or NAT maps a public port to `submission`; absent: 587.
    pub public_submission_port: Option<u16>,
}

/// Outbound delivery: how the queue reaches recipients' MX hosts (or a smarthost).
///
/// Its relay settings are a [`RelayConfig`] (flattened: `delivery.smarthost`, ...), the same
/// struct every route has. serde cannot refuse unknown fields of a struct with a flattened part,
/// so `delivery` and its routes are checked against [`DeliveryConfig::KEYS`] and
/// [`DeliveryRoute::KEYS`] instead ([`Config::load`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryConfig {
    /// The port of recipients' MX hosts (25; tests deliver to a peer on another port).
    pub mx_port: u16,
    /// The most delivery connections open at once, over all destinations.
    pub concurrency: usize,
    /// Waits between attempts after a temporary failure ("1m", "5m", ...); the last repeats.
    pub retry_schedule: Vec<String>,
    /// How long a message is retried before it expires ("3d").
    pub max_age: String,
    /// Connection and command timeout ("2m").
    pub timeout: String,
    /// Send everything through this relay instead of MX hosts (`smarthost` empty: direct).
    #[serde(flatten)]
    pub relay: RelayConfig,
    /// Relays for one workspace's or one sending domain's mail (see [`DeliveryRoute`]).
    pub routes: Vec<DeliveryRoute>,
    /// Source addresses that domains may be assigned for egress (bind before connect).
    pub source_ips: Vec<String>,
    /// Whether a failed STARTTLS handshake may be retried in plaintext (recorded), by default.
    pub tls_fallback_plaintext: bool,
    /// Limits per destination domain (keyed by the recipient's domain).
    pub destinations: std::collections::BTreeMap<String, DestinationLimits>,
    /// Limits for any destination not listed in `destinations`.
    pub default_destination: DestinationLimits,
}

/// A relay (smarthost) and how to reach it: for all mail (`[delivery]`) or a route's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayConfig {
    /// The relay, "host:port"; empty: none.
    pub smarthost: String,
    pub smarthost_user: String,
    pub smarthost_password: String,
    /// TLS to `smarthost`; absent: implicit on port 465, STARTTLS (required) on any other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smarthost_tls: Option<SmarthostTls>,
    /// Whether the smarthost's certificate is verified (against `smarthost_tls_ca`, or else the
    /// platform's trust store).
    pub smarthost_tls_verify: bool,
    /// A PEM file of the certificates that the relay's certificate must chain to (a private CA, or
    /// the relay's own self-signed certificate), instead of the platform's trust store; empty: the
    /// platform's.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub smarthost_tls_ca: String,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            smarthost: String::new(),
            smarthost_user: String::new(),
            smarthost_password: String::new(),
            smarthost_tls: None,
            smarthost_tls_verify: true,
            smarthost_tls_ca: String::new(),
        }
    }
}

impl RelayConfig {
    /// Its keys.
    pub const KEYS: [&'static str; 6] = [
        "smarthost",
        "smarthost_user",
        "smarthost_password",
        "smarthost_tls",
        "smarthost_tls_verify",
        "smarthost_tls_ca",
    ];
}

/// How delivery speaks TLS to a smarthost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmarthostTls {
    /// Plaintext greeting, then STARTTLS, required: a relay that does not offer it is deferred.
    Starttls,
    /// TLS from the first byte (port 465, RFC 8314).
    Implicit,
    /// No TLS at all; credentials, if any, go in the clear. Only when explicitly configured.
    None,
}

impl SmarthostTls {
    /// The mode a relay on `port` gets when none is configured: implicit TLS on 465, else STARTTLS.
    pub fn default_for_port(port: u16) -> SmarthostTls {
        if port == 465 { SmarthostTls::Implicit } else { SmarthostTls::Starttls }
    }
}

/// A relay for the mail of one workspace or one sending domain (`[[delivery.routes]]`).
///
/// Exactly one of `workspace` (its number, or its name compared as a slug: "acme-outreach" names
/// "Acme Outreach") and `domain` (the envelope sender's domain) is set. The most
/// specific route wins: a domain route, then a workspace route, then `delivery.smarthost`, then
/// direct delivery to MX hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryRoute {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workspace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The relay (`smarthost` is required here).
    #[serde(flatten)]
    pub relay: RelayConfig,
}

impl DeliveryRoute {
    /// Its own keys; with [`RelayConfig::KEYS`], every key a route may have.
    pub const KEYS: [&'static str; 2] = ["workspace", "domain"];
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationLimits {
    /// Concurrent connections to the destination.
    pub connections: usize,
    /// Messages per minute to the destination (0: no limit).
    pub per_minute: u32,
    /// Overrides `tls_fallback_plaintext` for this destination.
    pub tls_fallback_plaintext: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// IMAP with STARTTLS.
    pub listen: String,
    /// IMAP with implicit TLS.
    pub listen_tls: String,
    /// The IMAP (implicit TLS) port mail clients and sequencers are told to use when a proxy or
    /// NAT maps a public port to `listen_tls`; absent: 993.
    pub public_port: Option<u16>,
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
            delivery: DeliveryConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: "127.0.0.1:8080".into(), base_url: String::new(), trusted_proxies: Vec::new() }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            submission: "127.0.0.1:2587".into(),
            submissions: "127.0.0.1:2465".into(),
            inbound: "127.0.0.1:2525".into(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            inbound_dmarc_enforce: true,
            arc_trusted_sealers: Vec::new(),
            received_client_address: true,
            public_submission_port: None,
        }
    }
}

impl Default for DestinationLimits {
    fn default() -> Self {
        DestinationLimits { connections: 4, per_minute: 0, tls_fallback_plaintext: None }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let big = |connections, per_minute| DestinationLimits { connections, per_minute, tls_fallback_plaintext: None };
        let destinations = [
            ("gmail.com", big(8, 300)),
            ("googlemail.com", big(8, 300)),
            ("outlook.com", big(4, 120)),
            ("hotmail.com", big(4, 120)),
            ("live.com", big(4, 120)),
            ("yahoo.com", big(4, 120)),
            ("aol.com", big(2, 60)),
            ("icloud.com", big(4, 120)),
        ]
        .into_iter()
        .map(|(domain, limits)| (domain.to_string(), limits))
        .collect();
        DeliveryConfig {
            mx_port: 25,
            concurrency: 64,
            retry_schedule: ["1m", "5m", "15m", "30m", "1h", "2h", "4h"].map(String::from).to_vec(),
            max_age: "3d".into(),
            timeout: "2m".into(),
            relay: RelayConfig::default(),
            routes: Vec::new(),
            source_ips: Vec::new(),
            tls_fallback_plaintext: true,
            destinations,
            default_destination: DestinationLimits::default(),
        }
    }
}

impl DeliveryConfig {
    /// Its own keys; with [`RelayConfig::KEYS`], every key `[delivery]` may have.
    pub const KEYS: [&'static str; 10] = [
        "default_destination",
        "mx_port",
        "concurrency",
        "retry_schedule",
        "max_age",
        "timeout",
        "routes",
        "source_ips",
        "tls_fallback_plaintext",
        "destinations",
    ];

    /// The retry schedule in seconds.
    pub fn retry_seconds(&self) -> Vec<i64> {
        self.retry_schedule.iter().filter_map(|d| parse_duration(d)).collect()
    }

    pub fn max_age_seconds(&self) -> i64 {
        parse_duration(&self.max_age).unwrap_or(3 * 86_400)
    }

    pub fn timeout_seconds(&self) -> i64 {
        parse_duration(&self.timeout).unwrap_or(120)
    }

    /// The limits that apply to a recipient domain.
    pub fn limits_for(&self, domain: &str) -> &DestinationLimits {
        self.destinations.get(domain).unwrap_or(&self.default_destination)
    }

    /// Checks `smarthost` and every route (see [`DeliveryRoute`]); route domains are stored
    /// lower-cased, in ASCII form.
    fn validate_relays(&mut self) -> Result<(), ConfigError> {
        if !self.relay.smarthost.trim().is_empty() {
            check_host_port("delivery.smarthost", &self.relay.smarthost)?;
        }
        if !self.relay.smarthost_tls_ca.is_empty() {
            read_ca_file(&self.relay.smarthost_tls_ca)
                .map_err(|reason| ConfigError::Invalid { key: "delivery.smarthost_tls_ca", reason })?;
        }
        let mut seen: Vec<(bool, String)> = Vec::new();
        for (index, route) in self.routes.iter_mut().enumerate() {
            let label = route_label_of(route);
            let invalid = |reason: String| ConfigError::Invalid {
                key: "delivery.routes",
                reason: format!("route {} ({label}): {reason}", index + 1),
            };
            route.workspace = route.workspace.trim().to_string();
            match (route.workspace.is_empty(), route.domain.trim().is_empty()) {
                (true, true) => return Err(invalid("set workspace or domain".into())),
                (false, false) => return Err(invalid("set only one of workspace and domain".into())),
                (true, false) => {
                    route.domain = crate::dns::name::normalize_domain(&route.domain)
                        .map_err(|e| invalid(format!("domain: {e}")))?;
                }
                (false, true) => {}
            }
            if route.relay.smarthost.trim().is_empty() {
                return Err(invalid("smarthost is missing (\"host:port\")".into()));
            }
            if split_host_port(&route.relay.smarthost).is_none() {
                return Err(invalid(format!("smarthost \"{}\" is not host:port", route.relay.smarthost)));
            }
            if !route.relay.smarthost_tls_ca.is_empty() {
                read_ca_file(&route.relay.smarthost_tls_ca).map_err(|e| invalid(format!("smarthost_tls_ca: {e}")))?;
            }
            let key = if route.workspace.is_empty() {
                (true, route.domain.clone())
            } else {
                (false, route.workspace.to_lowercase())
            };
            if seen.contains(&key) {
                return Err(invalid("another route has the same workspace or domain".into()));
            }
            seen.push(key);
        }
        Ok(())
    }
}

/// "workspace acme" / "domain mail.acme.test", for messages about a route.
fn route_label_of(route: &DeliveryRoute) -> String {
    match (route.workspace.trim(), route.domain.trim()) {
        ("", "") => "no workspace or domain".into(),
        (workspace, "") => format!("workspace \"{workspace}\""),
        (_, domain) => format!("domain \"{domain}\""),
    }
}

/// The certificates of a PEM file (`smarthost_tls_ca`); an error names what is wrong with it.
pub fn read_ca_file(path: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path} is not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path} holds no certificate"));
    }
    Ok(certs)
}

/// Splits "host:port" and "[v6]:port"; `None` unless both parts are there and the port is a number.
pub fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port.parse().ok().filter(|&p| p > 0)?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then_some((host, port))
}

fn check_host_port(key: &'static str, value: &str) -> Result<(), ConfigError> {
    match split_host_port(value) {
        Some(_) => Ok(()),
        None => Err(ConfigError::Invalid { key, reason: format!("\"{value}\" is not host:port") }),
    }
}

/// Parses a duration like "90s", "5m", "2h", "3d" (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: i64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(factor)
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig { listen: "127.0.0.1:2143".into(), listen_tls: "127.0.0.1:2993".into(), public_port: None }
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
                .filter(|key| !NON_CONFIG_ENV.iter().any(|skip| key.as_str().eq_ignore_ascii_case(skip)))
                .split("__"),
        );
        let mut config: Config = figment.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        check_delivery_keys(&figment)?;
        if let Some(dir) = data_dir {
            config.data_dir = dir.to_path_buf();
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        let host = self.hostname.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid { key: "hostname", reason: "must be a host name".into() });
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
        for (key, value) in [("delivery.max_age", &self.delivery.max_age), ("delivery.timeout", &self.delivery.timeout)]
        {
            check_duration(key, value)?;
        }
        for value in &self.delivery.retry_schedule {
            check_duration("delivery.retry_schedule", value)?;
        }
        if self.delivery.retry_schedule.is_empty() {
            return Err(ConfigError::Invalid {
                key: "delivery.retry_schedule",
                reason: "give at least one wait".into(),
            });
        }
        for ip in &self.delivery.source_ips {
            ip.parse::<std::net::IpAddr>().map_err(|_| ConfigError::Invalid {
                key: "delivery.source_ips",
                reason: format!("\"{ip}\" is not an IP address"),
            })?;
        }
        self.delivery.validate_relays()?;
        for ns in &self.dns.nameservers {
            parse_listen("dns.nameservers", ns)?;
        }
        for (key, ips) in [("public_ips", &self.public_ips), ("http.trusted_proxies", &self.http.trusted_proxies)] {
            for ip in ips {
                ip.parse::<std::net::IpAddr>()
                    .map_err(|_| ConfigError::Invalid { key, reason: format!("\"{ip}\" is not an IP address") })?;
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid { key: "tls", reason: "set both cert and key, or neither".into() });
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
        listen.parse::<SocketAddr>().map(|a| a.port()).unwrap_or_default()
    }

    /// The submission port (STARTTLS) clients are told to use: `[smtp] public_submission_port`,
    /// or the standard 587.
    pub fn public_submission_port(&self) -> u16 {
        self.smtp.public_submission_port.unwrap_or(STANDARD_SUBMISSION_PORT)
    }

    /// The IMAP port (implicit TLS) clients are told to use: `[imap] public_port`, or the
    /// standard 993.
    pub fn public_imap_port(&self) -> u16 {
        self.imap.public_port.unwrap_or(STANDARD_IMAPS_PORT)
    }

    /// What makes this configuration unfit for real mail, each in a sentence naming the setting
    /// that fixes it: a `hostname` that is not a public name (other servers could not reach it,
    /// and the DNS records and exports would point at it), and listeners whose ports are not the
    /// ones published to clients and to other mail servers. Shown at start, by `config check`,
    /// on domain pages and before exports.
    pub fn deployment_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !is_public_host_name(&self.hostname) {
            warnings.push(format!(
                "The hostname is \"{}\", which is not a public name: the DNS records and exports point at \
                 it, and no other server can reach it. Set hostname in the config file (or \
                 INBOXGROVE_HOSTNAME) to this server's public name, e.g. mail.example.com.",
                self.hostname
            ));
        }
        let listeners = [
            ("smtp.submission", &self.smtp.submission, self.public_submission_port(), "smtp.public_submission_port"),
            ("imap.listen_tls", &self.imap.listen_tls, self.public_imap_port(), "imap.public_port"),
            ("smtp.inbound", &self.smtp.inbound, 25, ""),
        ];
        for (key, listen, published, mapped_by) in listeners {
            let port = Config::port_of(listen);
            if port == published {
                continue;
            }
            let fix = if mapped_by.is_empty() {
                format!("Set {key} to port {published} (other mail servers always connect to port 25).")
            } else {
                format!(
                    "Set {key} to port {published}, or set {mapped_by} when a proxy or NAT forwards port \
                     {published} to it."
                )
            };
            warnings.push(format!("{key} listens on port {port}, but clients are told port {published}. {fix}"));
        }
        warnings
    }

    /// The effective configuration as TOML, with secrets replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        let relays = std::iter::once(&mut shown.delivery.relay)
            .chain(shown.delivery.routes.iter_mut().map(|route| &mut route.relay));
        for relay in relays {
            if !relay.smarthost_password.is_empty() {
                relay.smarthost_password = "<redacted>".into();
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }
}

/// Refuses keys `[delivery]` and its routes do not have (see [`DeliveryConfig`]).
fn check_delivery_keys(figment: &Figment) -> Result<(), ConfigError> {
    let unknown = |dict: &figment::value::Dict, own: &[&str]| {
        dict.keys().find(|key| !own.contains(&key.as_str()) && !RelayConfig::KEYS.contains(&key.as_str())).cloned()
    };
    let Ok(figment::value::Value::Dict(_, delivery)) = figment.find_value("delivery") else { return Ok(()) };
    if let Some(key) = unknown(&delivery, &DeliveryConfig::KEYS) {
        return Err(ConfigError::Invalid { key: "delivery", reason: format!("unknown key \"{key}\"") });
    }
    if let Some(figment::value::Value::Array(_, routes)) = delivery.get("routes") {
        for (index, route) in routes.iter().enumerate() {
            if let Some(key) = route.as_dict().and_then(|route| unknown(route, &DeliveryRoute::KEYS)) {
                let reason = format!("route {}: unknown key \"{key}\"", index + 1);
                return Err(ConfigError::Invalid { key: "delivery.routes", reason });
            }
        }
    }
    Ok(())
}

fn check_duration(key: &'static str, value: &str) -> Result<(), ConfigError> {
    match parse_duration(value) {
        Some(seconds) if seconds > 0 => Ok(()),
        _ => Err(ConfigError::Invalid { key, reason: format!("\"{value}\" is not a duration like 90s, 5m, 2h or 3d") }),
    }
}

fn parse_listen(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse::<SocketAddr>()
        .map_err(|_| ConfigError::Invalid { key, reason: format!("\"{value}\" is not an ip:port address") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_host_names() {
        for public in ["mail.agency.com", "MX1.Example-Agency.co.uk.", "mail.xn--bcher-kva.de"] {
            assert!(is_public_host_name(public), "{public}");
        }
        for private in [
            "localhost",
            "mail",
            "mail.localhost",
            "mail.grove.test",
            "mail.example.com",
            "box.local",
            "srv.home.arpa",
            "203.0.113.7",
            "::1",
            "mail..agency.com",
            "mail_1.agency.com",
        ] {
            assert!(!is_public_host_name(private), "{private}");
        }
    }

    #[test]
    fn warnings_name_the_setting_that_fixes_them() {
        let defaults = Config::default().deployment_warnings();
        assert_eq!(defaults.len(), 4, "{defaults:#?}");
        assert!(defaults[0].starts_with("The hostname is \"localhost\"") && defaults[0].contains("Set hostname"));
        assert!(defaults[1].contains("smtp.submission listens on port 2587, but clients are told port 587"));
        assert!(defaults[1].contains("smtp.public_submission_port"), "{}", defaults[1]);
        assert!(
            defaults[2].contains("imap.listen_tls listens on port 2993") && defaults[2].contains("imap.public_port")
        );
        assert!(defaults[3].contains("smtp.inbound listens on port 2525") && defaults[3].contains("port 25"));
        assert!(defaults.iter().all(|w| !w.contains('`')), "no backticks in what users read");

        let mut production = Config { hostname: "mail.agency.com".into(), ..Config::default() };
        production.smtp.submission = "0.0.0.0:587".into();
        production.smtp.inbound = "0.0.0.0:25".into();
        production.imap.listen_tls = "127.0.0.1:10993".into();
        production.imap.public_port = Some(10993);
        assert_eq!(production.deployment_warnings(), Vec::<String>::new());
        assert_eq!((production.public_submission_port(), production.public_imap_port()), (587, 10993));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("5m"), Some(300));
        assert_eq!(parse_duration("3d"), Some(259_200));
        assert_eq!(parse_duration("12"), Some(12));
        assert_eq!(parse_duration("5 weeks"), None);
        assert_eq!(Config::default().delivery.retry_seconds()[..3], [60, 300, 900]);
    }

    #[test]
    fn secrets_are_redacted() {
        let mut config = Config::default();
        config.delivery.relay.smarthost_password = "hunter2".into();
        config.delivery.routes.push(DeliveryRoute {
            domain: "mail.acme.test".into(),
            relay: RelayConfig {
                smarthost: "relay.test:587".into(),
                smarthost_password: "route-secret".into(),
                ..RelayConfig::default()
            },
            ..DeliveryRoute::default()
        });
        let shown = config.redacted_toml();
        assert!(!shown.contains("hunter2") && !shown.contains("route-secret"), "{shown}");
        assert_eq!(shown.matches("<redacted>").count(), 2, "{shown}");
        assert!(shown.contains("[[delivery.routes]]"), "{shown}");
    }

    /// Loads `toml` as a config file (no environment), for the validation tests.
    fn load_toml(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, toml).unwrap();
        Config::load(Some(&file), None)
    }

    #[test]
    fn routes_load_and_are_normalized() {
        let config = load_toml(
            "[delivery]\nsmarthost = \"relay.example:587\"\n\
             [[delivery.routes]]\nworkspace = \"Acme\"\nsmarthost = \"relay.acme.test:465\"\n\
             smarthost_user = \"acme\"\nsmarthost_password = \"pw\"\n\
             [[delivery.routes]]\ndomain = \"Mail.Acme.TEST.\"\nsmarthost = \"[::1]:2525\"\n\
             smarthost_tls = \"none\"\nsmarthost_tls_verify = false\n",
        )
        .unwrap();
        let routes = &config.delivery.routes;
        assert_eq!(routes.len(), 2);
        assert_eq!(
            (routes[0].workspace.as_str(), routes[0].relay.smarthost_tls, routes[0].relay.smarthost_tls_verify),
            ("Acme", None, true)
        );
        assert_eq!(routes[1].domain, "mail.acme.test");
        assert_eq!(
            (routes[1].relay.smarthost_tls, routes[1].relay.smarthost_tls_verify),
            (Some(SmarthostTls::None), false)
        );
        assert_eq!(SmarthostTls::default_for_port(465), SmarthostTls::Implicit);
        assert_eq!(SmarthostTls::default_for_port(587), SmarthostTls::Starttls);
        assert_eq!(SmarthostTls::default_for_port(25), SmarthostTls::Starttls);
    }

    #[test]
    fn bad_routes_are_refused_with_a_clear_message() {
        let cases = [
            ("[[delivery.routes]]\nsmarthost = \"r.test:587\"\n", "set workspace or domain"),
            (
                "[[delivery.routes]]\nworkspace = \"a\"\ndomain = \"a.test\"\nsmarthost = \"r.test:587\"\n",
                "only one of",
            ),
            ("[[delivery.routes]]\ndomain = \"a.test\"\n", "smarthost is missing"),
            ("[[delivery.routes]]\ndomain = \"a.test\"\nsmarthost = \"r.test\"\n", "is not host:port"),
            ("[[delivery.routes]]\ndomain = \"a.test\"\nsmarthost = \"r.test:99999\"\n", "is not host:port"),
            ("[[delivery.routes]]\ndomain = \"not a domain\"\nsmarthost = \"r.test:25\"\n", "domain: "),
            (
                "[[delivery.routes]]\ndomain = \"a.test\"\nsmarthost = \"r.test:25\"\n\
                 [[delivery.routes]]\ndomain = \"A.test\"\nsmarthost = \"s.test:25\"\n",
                "same workspace or domain",
            ),
            (
                "[[delivery.routes]]\ndomain = \"a.test\"\nsmarthost = \"r.test:25\"\nsmarthost_tls = \"maybe\"\n",
                "maybe",
            ),
            ("[[delivery.routes]]\ndomain = \"a.test\"\nsmarthost = \"r.test:25\"\nrelay = \"x\"\n", "relay"),
            ("[delivery]\nsmarthost = \"relay-without-port\"\n", "delivery.smarthost"),
            ("[delivery]\nsmarthost_tls_ca = \"/nonexistent/ca.pem\"\n", "delivery.smarthost_tls_ca"),
            (
                "[[delivery.routes]]\ndomain = \"a.test\"\nsmarthost = \"r.test:25\"\nsmarthost_tls_ca = \"Cargo.toml\"\n",
                "route 1 (domain \"a.test\"): smarthost_tls_ca: Cargo.toml holds no certificate",
            ),
        ];
        for (toml, expected) in cases {
            let error = load_toml(toml).expect_err(toml).to_string();
            assert!(!error.contains('`'), "no backticks: {error}");
            assert!(error.contains(expected), "{toml}: {error}");
        }
    }

    #[test]
    fn routes_can_come_from_the_environment() {
        let figment = Figment::from(Serialized::defaults(Config::default())).merge(Serialized::default(
            "delivery.routes",
            "[{workspace = \"acme\", smarthost = \"127.0.0.1:465\", smarthost_tls_verify = false}]"
                .parse::<figment::value::Value>()
                .unwrap(),
        ));
        let config: Config = figment.extract().unwrap();
        assert_eq!(config.delivery.routes[0].workspace, "acme");
        assert!(!config.delivery.routes[0].relay.smarthost_tls_verify);
    }

    #[test]
    fn the_delivery_key_lists_are_every_field() {
        let mut delivery = DeliveryConfig::default();
        delivery.relay.smarthost_tls = Some(SmarthostTls::Implicit);
        delivery.relay.smarthost_tls_ca = "ca.pem".into();
        let route = DeliveryRoute { workspace: "w".into(), domain: "d.test".into(), relay: delivery.relay.clone() };
        delivery.routes.push(route.clone());
        let keys = |value: serde_json::Value| {
            let mut keys: Vec<String> = value.as_object().expect("an object").keys().cloned().collect();
            keys.sort();
            keys
        };
        let expected = |own: &[&str]| {
            let mut all: Vec<String> = own.iter().chain(&RelayConfig::KEYS).map(|k| k.to_string()).collect();
            all.sort();
            all
        };
        assert_eq!(keys(serde_json::to_value(&delivery).unwrap()), expected(&DeliveryConfig::KEYS));
        assert_eq!(keys(serde_json::to_value(&route).unwrap()), expected(&DeliveryRoute::KEYS));
    }

    #[test]
    fn unknown_delivery_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "[delivery]\nsmarthost_tsl = \"none\"\n").unwrap();
        let error = Config::load(Some(&file), None).unwrap_err().to_string();
        assert!(error.contains("unknown key \"smarthost_tsl\""), "{error}");
    }
}
