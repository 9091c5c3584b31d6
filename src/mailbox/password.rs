//! Mailbox passwords that survive every place a sequencer puts them.
//!
//! A password is 20 characters drawn uniformly from [`ALPHABET`]: upper and lower case letters
//! and digits without the look-alikes `0 O o 1 l I`, which leaves 56 symbols. Punctuation is left
//! out on purpose: quotes, commas, `%`, `\` and spaces break CSV cells, URLs and IMAP quoted
//! strings in the tools that import these mailboxes. A password must contain at least one upper
//! case letter, one lower case letter and one digit; a draw that lacks one is thrown away and drawn
//! again whole (about 5% of draws), which keeps every accepted password equally likely.
//!
//! Strength: 20 × log2(56) ≈ 116.1 bits, minus less than 0.1 bit for the rejected draws, so about
//! 116 bits: far beyond guessing, online or offline.

use crate::crypto::random_below;

/// The 56 characters a password is made of.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
/// How many characters a password has.
pub const PASSWORD_LENGTH: usize = 20;

/// A fresh random password: [`PASSWORD_LENGTH`] characters from [`ALPHABET`], with at least one
/// upper case letter, one lower case letter and one digit.
pub fn generate_password() -> String {
    loop {
        let candidate = random_draw();
        if has_every_class(&candidate) {
            return candidate;
        }
    }
}

/// [`PASSWORD_LENGTH`] independent uniform picks from [`ALPHABET`].
fn random_draw() -> String {
    let bound = u32::try_from(ALPHABET.len()).expect("the alphabet is small");
    (0..PASSWORD_LENGTH)
        .map(|_| {
            let index = usize::try_from(random_below(bound)).expect("a u32 fits in usize");
            char::from(ALPHABET[index])
        })
        .collect()
}

/// Whether `password` has an upper case letter, a lower case letter and a digit.
fn has_every_class(password: &str) -> bool {
    password.bytes().any(|b| b.is_ascii_uppercase())
        && password.bytes().any(|b| b.is_ascii_lowercase())
        && password.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn alphabet_has_no_look_alikes_or_duplicates() {
        assert_eq!(ALPHABET.len(), 56);
        assert_eq!(ALPHABET.iter().collect::<HashSet<_>>().len(), ALPHABET.len());
        for look_alike in b"0Oo1lI" {
            assert!(!ALPHABET.contains(look_alike), "{}", char::from(*look_alike));
        }
        assert!(ALPHABET.iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn passwords_have_the_right_length_classes_and_alphabet() {
        for _ in 0..1000 {
            let password = generate_password();
            assert_eq!(password.len(), PASSWORD_LENGTH);
            assert!(has_every_class(&password), "{password}");
            assert!(password.bytes().all(|b| ALPHABET.contains(&b)), "{password}");
        }
    }

    #[test]
    fn passwords_are_unique() {
        let passwords: HashSet<String> = (0..1000).map(|_| generate_password()).collect();
        assert_eq!(passwords.len(), 1000);
    }

    #[test]
    fn class_check_rejects_incomplete_draws() {
        assert!(!has_every_class("ABCDEFGHJKLMNPQRSTUV"));
        assert!(!has_every_class("abcdefghijkmnpqrstu2"));
        assert!(!has_every_class("ABCDEFGHJKabcdefghij"));
        assert!(has_every_class("Abcdefghijkmnpqrstu2"));
    }
}
