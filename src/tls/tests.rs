use super::*;
use crate::clock::Clock;

const DAY: i64 = 24 * 3600;

fn config(dir: &tempfile::TempDir, hostname: &str) -> Config {
    Config { data_dir: dir.path().to_path_buf(), hostname: hostname.into(), ..Default::default() }
}

#[test]
fn the_self_signed_certificate_names_the_hostname_for_one_year() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&dir, "mail.grove.test");
    let clock = Clock::default();
    assert!(ensure_certificate(&config, clock.unix()).expect("generate"));
    let info = current(&config).expect("read back");
    assert_eq!(info.subject, "CN=mail.grove.test");
    assert_eq!(info.names, ["mail.grove.test", "localhost"]);
    assert_eq!(info.not_before, clock.unix());
    assert_eq!(info.not_after - info.not_before, 365 * DAY);
    assert!(info.self_signed);

    let der = read_certificates(&paths(&config).0).expect("pem").remove(0);
    assert_eq!(info.sha256, fingerprint(&der));
    assert_eq!(info.sha256.len(), 32 * 3 - 1, "{}", info.sha256);
    assert!(info.sha256.split(':').all(|pair| pair.len() == 2 && pair.chars().all(|c| c.is_ascii_hexdigit())));
    assert_eq!(info.sha256, info.sha256.to_uppercase());
}

#[test]
fn the_certificate_is_kept_until_thirty_days_before_expiry_then_renewed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&dir, "mail.grove.test");
    let clock = Clock::default();
    ensure_certificate(&config, clock.unix()).expect("generate");
    let first = current(&config).expect("first");

    clock.advance(365 * DAY - 31 * DAY);
    assert!(!ensure_certificate(&config, clock.unix()).expect("check"), "31 days left: kept");
    assert_eq!(current(&config).expect("same"), first);

    clock.advance(2 * DAY);
    assert!(ensure_certificate(&config, clock.unix()).expect("renew"), "29 days left: renewed");
    let renewed = current(&config).expect("renewed");
    assert_ne!(renewed.sha256, first.sha256);
    assert_eq!(renewed.not_before, clock.unix());
    assert_eq!(renewed.not_after, clock.unix() + 365 * DAY);
    load(&config).expect("the new key matches the new certificate");
}

#[test]
fn a_new_hostname_gets_a_new_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Clock::default().unix();
    ensure_certificate(&config(&dir, "old.grove.test"), now).expect("generate");
    let renamed = config(&dir, "new.grove.test");
    assert!(ensure_certificate(&renamed, now).expect("renew"));
    let info = current(&renamed).expect("read");
    assert_eq!(info.subject, "CN=new.grove.test");
    assert_eq!(info.names, ["new.grove.test", "localhost"]);
}

#[test]
fn a_key_that_does_not_match_is_replaced_with_a_new_pair() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&dir, "mail.grove.test");
    let now = Clock::default().unix();
    ensure_certificate(&config, now).expect("generate");
    let (_, other_key) = generate("mail.grove.test", now).expect("another pair");
    std::fs::write(paths(&config).1, other_key).expect("overwrite the key");
    assert!(load(&config).is_err());
    assert!(ensure_certificate(&config, now).expect("regenerate"));
    load(&config).expect("a matching pair again");
}

#[test]
fn renewal_swaps_the_presented_certificate_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&dir, "mail.grove.test");
    let clock = Clock::default();
    ensure_certificate(&config, clock.unix()).expect("generate");
    let certificates = Certificates::load(&config).expect("load");
    let _listeners = certificates.server_config();
    let before = fingerprint(&certificates.presented());
    assert!(!certificates.renew_if_due(&config, clock.unix()).expect("check"));
    assert_eq!(fingerprint(&certificates.presented()), before);

    clock.advance(340 * DAY);
    assert!(certificates.renew_if_due(&config, clock.unix()).expect("renew"));
    let after = fingerprint(&certificates.presented());
    assert_ne!(after, before);
    assert_eq!(after, current(&config).expect("on disk").sha256, "presents what is on disk");
}

#[test]
fn configured_certificates_are_never_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Clock::default().unix();
    let (cert, key) = generate("configured.grove.test", now - 400 * DAY).expect("an expired pair");
    let (cert_path, key_path) = (dir.path().join("mine.pem"), dir.path().join("mine.key"));
    std::fs::write(&cert_path, &cert).expect("cert");
    std::fs::write(&key_path, &key).expect("key");
    let mut config = config(&dir, "mail.grove.test");
    config.tls.cert = Some(cert_path.clone());
    config.tls.key = Some(key_path);
    assert!(!ensure_certificate(&config, now).expect("nothing to do"));
    assert_eq!(std::fs::read_to_string(&cert_path).expect("unchanged"), cert);
    assert!(!dir.path().join("tls/cert.pem").exists());
}
