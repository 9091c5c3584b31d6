//! A DNS server on loopback for the lead import's MX check, answering slowly so that a test
//! sees an import part way (shared by tests/leads.rs and tests/browser.rs).

use std::net::UdpSocket;
use std::time::Duration;

/// A DNS server on loopback (UDP) that answers each question after `delay`: no such domain for
/// names whose first label starts with `nomx`, else one MX record. Returns its port.
pub fn slow_dns(delay: Duration) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    let port = socket.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buffer) {
            let (query, replies) = (buffer[..n].to_vec(), socket.try_clone().expect("clone the socket"));
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                if let Some(answer) = dns_answer(&query) {
                    let _ = replies.send_to(&answer, from);
                }
            });
        }
    });
    port
}

/// The answer to one DNS query (see [`slow_dns`]).
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut first_label = None;
    loop {
        let length = usize::from(*query.get(at)?);
        if length == 0 {
            break;
        }
        first_label.get_or_insert_with(|| String::from_utf8_lossy(&query[at + 1..at + 1 + length]).to_lowercase());
        at += 1 + length;
    }
    let question = query.get(12..at + 5)?;
    let is_mx = query.get(at + 1..at + 3)? == [0, 15];
    let missing = first_label.is_some_and(|label| label.starts_with("nomx"));
    let answers: u8 = u8::from(is_mx && !missing);
    let mut out = vec![query[0], query[1], 0x84 | (query[2] & 1), if missing { 0x83 } else { 0x80 }];
    out.extend_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if answers == 1 {
        // The question's name (a pointer to it), MX, IN, TTL 60, preference 10, "mx" + the name.
        out.extend_from_slice(&[0xC0, 0x0C, 0, 15, 0, 1, 0, 0, 0, 60, 0, 7, 0, 10, 2, b'm', b'x', 0xC0, 0x0C]);
    }
    Some(out)
}
