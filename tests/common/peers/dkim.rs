//! Independent DKIM verification: tests/peers/dkim_verify.py runs dkimpy (from the peer venv)
//! on a message, resolving the key's TXT record through the tests' Knot server.

use std::process::Command;

use super::{Dns, VERIFY_TIMEOUT, have_venv_modules, output_text, peer_file, run_with_input, venv_python};

/// Whether the venv with dkimpy and dnspython exists (prints SKIPPED or panics when not).
pub fn dkim_available() -> bool {
    have_venv_modules("DKIM verification", &["dkim", "dns.resolver"])
}

/// Verifies the message's first DKIM signature with dkimpy, resolving TXT records through
/// `dns`. Bare LF line ends (a Maildir copy) are read as CRLF. Returns (passed, dkimpy's log).
pub fn dkim_verify(raw: &[u8], dns: &Dns) -> (bool, String) {
    assert!(dkim_available(), "the peer venv is missing: call dkim_available() first");
    let mut command = Command::new(venv_python().expect("venv python"));
    command.arg(peer_file("dkim_verify.py")).args(["--nameserver", "127.0.0.1", "--port", &dns.port.to_string()]);
    let output = run_with_input(command, raw, VERIFY_TIMEOUT);
    let text = output_text(&output);
    (output.status.success() && text.starts_with("pass"), text)
}
