//! Modified UTF-7 (RFC 3501 §5.1.3), the form folder names take on the wire; the store keeps
//! them decoded (UTF-8), so the web UI shows "Entwürfe" for the wire name `Entw&APw-rfe`.
//!
//! Printable US-ASCII (0x20–0x7e) stands for itself, except `&`, written `&-`. Any other run of
//! characters is `&`, their UTF-16BE code units in base64 with `,` for `/` and no padding, `-`.
//! Decoding is strict, as RFC 3501 asks: a name that is not the one canonical encoding of its
//! text (raw 8-bit or control bytes, printable ASCII inside a base64 run, two runs back to
//! back, padding or non-zero leftover bits, unpaired surrogates) is refused. (The utf7-imap
//! crate does the same job but accepts non-canonical input, hence these few lines.)

use base64::Engine;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 as modified UTF-7 writes it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// The wire form of a folder name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u8> = Vec::new();
    for c in name.chars() {
        if is_direct(c) {
            flush(&mut out, &mut run);
            match c {
                '&' => out.push_str("&-"),
                _ => out.push(c),
            }
        } else {
            run.extend(c.encode_utf16(&mut [0; 2]).iter().flat_map(|unit| unit.to_be_bytes()));
        }
    }
    flush(&mut out, &mut run);
    out
}

fn flush(out: &mut String, run: &mut Vec<u8>) {
    if !run.is_empty() {
        out.push('&');
        out.push_str(&BASE64.encode(&*run));
        out.push('-');
        run.clear();
    }
}

/// The folder name a wire name stands for, or `None` when it is not valid modified UTF-7.
pub fn decode(wire: &str) -> Option<String> {
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    let mut after_run = false;
    while let Some(c) = rest.chars().next() {
        if !is_direct(c) {
            return None;
        }
        if c != '&' {
            out.push(c);
            rest = &rest[1..];
            after_run = false;
            continue;
        }
        let end = rest.find('-')?;
        let (encoded, next) = (&rest[1..end], &rest[end + 1..]);
        rest = next;
        if encoded.is_empty() {
            out.push('&');
            after_run = false;
            continue;
        }
        if after_run {
            return None;
        }
        out.push_str(&decode_run(encoded)?);
        after_run = true;
    }
    Some(out)
}

/// One base64 run: UTF-16BE text with no character that should have been written directly.
fn decode_run(encoded: &str) -> Option<String> {
    let bytes = BASE64.decode(encoded).ok()?;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect();
    let text = String::from_utf16(&units).ok()?;
    (!text.chars().any(|c| is_direct(c) || c.is_control())).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_as_rfc3501_shows() {
        for (name, wire) in [
            ("Entwürfe", "Entw&APw-rfe"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("R&D", "R&-D"),
            ("Sent", "Sent"),
            ("Boîte d'envoi", "Bo&AO4-te d'envoi"),
            ("😀", "&2D3eAA-"),
            ("", ""),
        ] {
            assert_eq!(encode(name), wire, "{name}");
            assert_eq!(decode(wire).as_deref(), Some(name), "{wire}");
        }
    }

    #[test]
    fn invalid_wire_names_are_refused() {
        for wire in [
            "Entwürfe",   // raw 8-bit
            "Entw&APw",   // unterminated run
            "&AGE-",      // "a" must be written directly
            "&APw-&APw-", // two runs back to back
            "&APw=-",     // padding
            "&APx-",      // non-zero leftover bits
            "&2D0-",      // an unpaired surrogate
            "&AP-",       // half a code unit
            "tab\there",  // a control character
            "&AAk-",      // an encoded control character
            "&A!w-",      // not base64
        ] {
            assert_eq!(decode(wire), None, "{wire:?}");
        }
    }
}
