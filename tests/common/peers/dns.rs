//! Knot as an authoritative DNS server on 127.0.0.1:<free port>: one zone file per zone (an SOA
//! with a rising serial and an NS are generated unless given, TTLs of one second so a resolver
//! sees changes at once); live changes rewrite the file and `knotc zone-reload` it (`reload`
//! for a new zone), then wait until the new serial is served.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{
    STARTUP_TIMEOUT, Watchdog, free_tcp_udp_port, have_peer, log_file, lossy, peer_tempdir, read_lossy, run_checked,
    stop_child, wait_until,
};

/// One DNS zone: its name ("dest.test") and BIND lines relative to it or absolute. An SOA and
/// an NS record are added unless the lines have their own.
#[derive(Clone, Debug)]
pub struct Zone {
    pub name: String,
    pub records: Vec<String>,
}

impl Zone {
    pub fn new(name: &str, records: &[&str]) -> Zone {
        Zone { name: name.to_string(), records: records.iter().map(|r| r.to_string()).collect() }
    }
}

/// A TXT record line with `value` split into quoted strings of at most 255 characters, as a
/// DKIM key record must be: `txt_record("sel._domainkey", "v=DKIM1; k=rsa; p=...")`.
pub fn txt_record(owner: &str, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let strings: Vec<String> = chars
        .chunks(255)
        .map(|chunk| format!("\"{}\"", chunk.iter().collect::<String>().replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{owner} TXT {}", strings.join(" "))
}

/// An authoritative DNS server (Knot) on 127.0.0.1:<free port>, TTLs of one second.
pub struct Dns {
    pub port: u16,
    child: Child,
    zones: Mutex<Vec<String>>,
    serial: AtomicU32,
    _watchdog: Watchdog,
    dir: tempfile::TempDir,
}

impl Dns {
    /// Whether knotd, knotc and kdig are installed (prints SKIPPED or panics when not).
    pub fn available() -> bool {
        have_peer("knotd") && have_peer("knotc") && have_peer("kdig")
    }

    /// Serves each zone; returns once every zone answers its SOA.
    pub fn start(zones: &[Zone]) -> Dns {
        assert!(Self::available(), "Knot is not installed: call Dns::available() first");
        let dir = peer_tempdir("inboxgrove-dns-");
        for sub in ["run", "db", "zones"] {
            std::fs::create_dir(dir.path().join(sub)).expect("knot dirs");
        }
        let port = free_tcp_udp_port("127.0.0.1");
        let names: Vec<String> = zones.iter().map(|z| zone_key(&z.name)).collect();
        let serials: Vec<Option<u32>> =
            (1..).zip(zones).map(|(serial, zone)| write_zone(dir.path(), zone, serial)).collect();
        let child = spawn_knotd(dir.path(), port, &names);
        let stop = format!("kill {}", child.id());
        let dns = Dns {
            port,
            child,
            zones: Mutex::new(names),
            serial: AtomicU32::new(u32::try_from(zones.len()).expect("zone count")),
            _watchdog: Watchdog::start(&stop, dir.path()),
            dir,
        };
        for (zone, serial) in zones.iter().zip(serials) {
            dns.wait_for_zone(&zone.name, serial);
        }
        dns
    }

    /// "127.0.0.1:PORT", for INBOXGROVE_DNS__NAMESERVERS='["127.0.0.1:PORT"]'.
    pub fn nameserver(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces a zone's records live (a new zone is added to the server); returns once the
    /// server answers with the new SOA serial.
    pub fn set_zone(&self, zone: &Zone) {
        let name = zone_key(&zone.name);
        let serial = self.write_zone(zone);
        let is_new = {
            let mut zones = self.zones.lock().expect("zones");
            let is_new = !zones.contains(&name);
            if is_new {
                zones.push(name.clone());
                std::fs::write(self.dir.path().join("knot.conf"), knot_config(self.dir.path(), self.port, &zones))
                    .expect("write knot.conf");
            }
            is_new
        };
        if is_new {
            self.knotc(&["reload"]);
        } else {
            self.knotc(&["-b", "zone-reload", &format!("{name}.")]);
        }
        self.wait_for_zone(&name, serial);
    }

    /// Asks this server with kdig: the answer's records in `+short` form, one per line.
    pub fn dig(&self, rtype: &str, name: &str) -> String {
        self.kdig(&[rtype, name])
    }

    fn kdig(&self, query: &[&str]) -> String {
        let output = Command::new("kdig")
            .args(["@127.0.0.1", "-p", &self.port.to_string(), "+short", "+timeout=2", "+retry=0"])
            .args(query)
            .output()
            .expect("run kdig");
        lossy(&output.stdout)
    }

    /// Knot's log so far, for failure messages.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("knot.log"))
    }

    /// Writes the zone file with the next serial.
    fn write_zone(&self, zone: &Zone) -> Option<u32> {
        write_zone(self.dir.path(), zone, self.serial.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Polls until the zone's SOA is served (with `serial`, when ours).
    fn wait_for_zone(&self, zone: &str, serial: Option<u32>) {
        let name = format!("{}.", zone_key(zone));
        let loaded = wait_until(STARTUP_TIMEOUT, || {
            let soa = self.kdig(&["+tcp", "SOA", &name]);
            let served = soa.split_whitespace().nth(2).and_then(|s| s.parse::<u32>().ok());
            served.is_some() && (serial.is_none() || served == serial)
        });
        assert!(loaded, "Knot did not serve zone {name} (serial {serial:?}); log:\n{}", self.log());
    }

    fn knotc(&self, args: &[&str]) {
        let conf = self.dir.path().join("knot.conf");
        let mut command = Command::new("knotc");
        command.arg("-c").arg(conf).args(args);
        run_checked(&mut command, "knotc");
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

fn spawn_knotd(dir: &Path, port: u16, zones: &[String]) -> Child {
    let conf = dir.join("knot.conf");
    std::fs::write(&conf, knot_config(dir, port, zones)).expect("write knot.conf");
    Command::new("knotd")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log_file(dir, "knotd.out"))
        .stderr(log_file(dir, "knotd.out"))
        .spawn()
        .expect("start knotd")
}

/// A Knot configuration: loopback only, running as root, zone files read whole and never
/// written back, no journal.
fn knot_config(dir: &Path, port: u16, zones: &[String]) -> String {
    let d = dir.display();
    let mut conf = format!(
        "server:\n    rundir: \"{d}/run\"\n    user: root:root\n    listen: 127.0.0.1@{port}\n\
         log:\n  - target: \"{d}/knot.log\"\n    any: info\n\
         database:\n    storage: \"{d}/db\"\n\
         template:\n  - id: default\n    storage: \"{d}/zones\"\n    zonefile-sync: -1\n    \
         zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n"
    );
    if !zones.is_empty() {
        conf.push_str("zone:\n");
        for zone in zones {
            conf.push_str(&format!("  - domain: \"{zone}.\"\n    file: \"{zone}.zone\"\n"));
        }
    }
    conf
}

/// Writes the zone's file; returns `serial` when the SOA was generated here (not given).
fn write_zone(dir: &Path, zone: &Zone, serial: u32) -> Option<u32> {
    let (text, generated) = zone_file(zone, serial);
    let path = dir.join("zones").join(format!("{}.zone", zone_key(&zone.name)));
    std::fs::write(path, text).expect("write zone file");
    generated.then_some(serial)
}

/// The zone file text, and whether the SOA (with `serial`) was generated here.
fn zone_file(zone: &Zone, serial: u32) -> (String, bool) {
    let name = zone_key(&zone.name);
    let mut text = format!("$ORIGIN {name}.\n$TTL 1\n");
    let generate_soa = !has_type(&zone.records, "SOA");
    if generate_soa {
        text.push_str(&format!("@ SOA ns.{name}. hostmaster.{name}. {serial} 3600 600 86400 1\n"));
    }
    if !has_type(&zone.records, "NS") {
        text.push_str(&format!("@ NS ns.{name}.\n"));
    }
    for record in &zone.records {
        text.push_str(record);
        text.push('\n');
    }
    (text, generate_soa)
}

/// Whether a BIND line of `records` has type `rtype` (owner, then up to TTL and class).
fn has_type(records: &[String], rtype: &str) -> bool {
    records.iter().any(|r| r.split_whitespace().skip(1).take(3).any(|t| t.eq_ignore_ascii_case(rtype)))
}

fn zone_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
