//! The one table of words that classify what a person or a robot wrote, per language: subjects
//! that mark an automatic reply (out of office, vacation) and phrases that ask to be removed from
//! a mailing.
//!
//! Matching rule: the text is lowercased and typographic apostrophes become `'`; a phrase
//! matches where it occurs starting at a word boundary (the character before it, if any, is not
//! a letter or digit), so "abmelden" does not match inside "anabmelden" but "unsubscribe" matches
//! "unsubscribe me" and "unsubscribed". Phrases are written lowercase, with and without accents
//! where people commonly type them without.

/// The words of one language.
#[derive(Debug)]
pub struct Language {
    /// ISO 639-1 code.
    pub code: &'static str,
    /// Subject fragments of automatic replies.
    pub auto_reply_subjects: &'static [&'static str],
    /// Phrases of a request to be removed from a mailing.
    pub removal_requests: &'static [&'static str],
}

/// Every language the classifier knows.
pub const LANGUAGES: &[Language] = &[
    Language {
        code: "en",
        auto_reply_subjects: &[
            "out of office",
            "out of the office",
            "automatic reply",
            "auto reply",
            "auto-reply",
            "autoreply",
            "auto response",
            "auto-response",
            "away from the office",
            "on vacation",
            "on leave",
        ],
        removal_requests: &[
            "unsubscribe",
            "remove me",
            "remove my email",
            "remove my address",
            "take me off",
            "stop emailing",
            "stop e-mailing",
            "stop sending",
            "stop contacting",
            "opt me out",
            "opt out",
            "opt-out",
            "do not contact me",
            "don't contact me",
            "do not email me",
            "don't email me",
        ],
    },
    Language {
        code: "de",
        auto_reply_subjects: &[
            "abwesenheitsnotiz",
            "abwesenheit",
            "automatische antwort",
            "autom. antwort",
            "nicht im büro",
            "nicht im buero",
        ],
        removal_requests: &[
            "abmelden",
            "austragen",
            "abbestellen",
            "entfernen sie mich",
            "keine e-mails mehr",
            "keine emails mehr",
            "keine weiteren e-mails",
        ],
    },
    Language {
        code: "fr",
        auto_reply_subjects: &["réponse automatique", "reponse automatique", "absence du bureau", "absent du bureau"],
        removal_requests: &[
            "désabonner",
            "desabonner",
            "désinscrire",
            "desinscrire",
            "désinscription",
            "desinscription",
            "retirez-moi",
            "retirez moi",
            "ne plus recevoir",
        ],
    },
    Language {
        code: "es",
        auto_reply_subjects: &["respuesta automática", "respuesta automatica", "fuera de la oficina", "ausencia"],
        removal_requests: &[
            "darme de baja",
            "dame de baja",
            "denme de baja",
            "darse de baja",
            "quitarme de",
            "eliminarme de",
            "no me escriban",
            "no me escriba",
        ],
    },
    Language {
        code: "it",
        auto_reply_subjects: &["risposta automatica", "fuori sede", "fuori ufficio", "assente dall'ufficio"],
        removal_requests: &[
            "cancellami",
            "cancellatemi",
            "rimuovimi",
            "rimuovetemi",
            "disiscrivermi",
            "non scrivetemi più",
            "non scrivetemi piu",
        ],
    },
    Language {
        code: "nl",
        auto_reply_subjects: &["afwezig", "automatisch antwoord", "niet op kantoor", "buiten kantoor"],
        removal_requests: &["afmelden", "uitschrijven", "verwijder mij", "verwijder me", "haal mij van", "haal me van"],
    },
    Language {
        code: "pt",
        auto_reply_subjects: &[
            "resposta automática",
            "resposta automatica",
            "fora do escritório",
            "fora do escritorio",
        ],
        removal_requests: &[
            "descadastrar",
            "descadastre",
            "me descadastre",
            "remover meu e-mail",
            "remover meu email",
            "me remova",
            "me tire da lista",
            "cancelar inscrição",
            "cancelar inscricao",
        ],
    },
    Language {
        code: "sv",
        auto_reply_subjects: &["autosvar", "frånvaromeddelande", "ej på kontoret"],
        removal_requests: &["avregistrera", "avsluta prenumeration", "ta bort mig"],
    },
    Language {
        code: "pl",
        auto_reply_subjects: &["automatyczna odpowiedź", "automatyczna odpowiedz", "poza biurem"],
        removal_requests: &["wypisz mnie", "usuń mnie", "usun mnie", "wypisać"],
    },
];

/// Lowercases and folds typographic apostrophes, so phrases compare as written in the table.
pub fn normalize(text: &str) -> String {
    text.to_lowercase().replace(['\u{2019}', '\u{2018}', '`'], "'")
}

/// Whether `phrase` occurs in `text` (both already normalized) starting at a word boundary.
fn occurs(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase)
        .any(|(at, _)| text[..at].chars().next_back().is_none_or(|before| !before.is_alphanumeric()))
}

/// The language whose auto-reply subject fragment `subject` contains, if any.
pub fn auto_reply_subject(subject: &str) -> Option<&'static str> {
    let subject = normalize(subject);
    LANGUAGES
        .iter()
        .find(|language| language.auto_reply_subjects.iter().any(|phrase| occurs(&subject, phrase)))
        .map(|language| language.code)
}

/// The language of the first removal phrase `text` contains, if any.
pub fn removal_request(text: &str) -> Option<&'static str> {
    let text = normalize(text);
    LANGUAGES
        .iter()
        .find(|language| language.removal_requests.iter().any(|phrase| occurs(&text, phrase)))
        .map(|language| language.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_lowercase_and_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for language in LANGUAGES {
            for phrase in language.auto_reply_subjects.iter().chain(language.removal_requests) {
                assert_eq!(
                    *phrase,
                    normalize(phrase),
                    "{} phrase {phrase:?} must be written normalized",
                    language.code
                );
                assert!(seen.insert((language.code, *phrase)), "{} repeats {phrase:?}", language.code);
            }
        }
    }

    #[test]
    fn english() {
        assert_eq!(auto_reply_subject("Out of Office: Quick question"), Some("en"));
        assert_eq!(auto_reply_subject("Automatic reply: Intro"), Some("en"));
        assert_eq!(removal_request("Please UNSUBSCRIBE me."), Some("en"));
        assert_eq!(removal_request("Kindly remove me from this list"), Some("en"));
        assert_eq!(removal_request("take me off your list"), Some("en"));
        assert_eq!(removal_request("Stop emailing me please"), Some("en"));
        assert_eq!(removal_request("Don\u{2019}t contact me again"), Some("en"));
        assert_eq!(removal_request("Sounds great, let's talk Tuesday"), None);
    }

    #[test]
    fn german() {
        assert_eq!(auto_reply_subject("Abwesenheitsnotiz: Kurze Frage"), Some("de"));
        assert_eq!(auto_reply_subject("Automatische Antwort: Intro"), Some("de"));
        assert_eq!(removal_request("Bitte abmelden."), Some("de"));
        assert_eq!(removal_request("Bitte tragen Sie mich aus, austragen bitte"), Some("de"));
        assert_eq!(removal_request("Gerne, rufen Sie mich an"), None);
    }

    #[test]
    fn french() {
        assert_eq!(auto_reply_subject("Réponse automatique : Intro"), Some("fr"));
        assert_eq!(removal_request("Merci de me désabonner"), Some("fr"));
        assert_eq!(removal_request("je veux me desinscrire"), Some("fr"));
        assert_eq!(removal_request("Veuillez me désinscrire de votre liste"), Some("fr"));
        assert_eq!(removal_request("Avec plaisir, appelons-nous"), None);
    }

    #[test]
    fn spanish() {
        assert_eq!(auto_reply_subject("Respuesta automática: Intro"), Some("es"));
        assert_eq!(removal_request("Por favor, darme de baja de su lista"), Some("es"));
        assert_eq!(removal_request("Quiero darme de baja"), Some("es"));
        assert_eq!(removal_request("Me interesa, hablemos"), None);
    }

    #[test]
    fn italian() {
        assert_eq!(auto_reply_subject("Risposta automatica: Intro"), Some("it"));
        assert_eq!(removal_request("Cancellami dalla lista, grazie"), Some("it"));
        assert_eq!(removal_request("Va bene, sentiamoci domani"), None);
    }

    #[test]
    fn dutch() {
        assert_eq!(auto_reply_subject("Afwezig: Intro"), Some("nl"));
        assert_eq!(removal_request("Graag afmelden voor deze mails"), Some("nl"));
        assert_eq!(removal_request("Prima, bel me maar"), None);
    }

    #[test]
    fn portuguese() {
        assert_eq!(auto_reply_subject("Resposta automática: Intro"), Some("pt"));
        assert_eq!(removal_request("Por favor, descadastrar meu e-mail"), Some("pt"));
        assert_eq!(removal_request("Pode me ligar amanhã"), None);
    }

    #[test]
    fn phrases_match_only_at_word_starts() {
        assert_eq!(removal_request("the preopt-outline"), None);
        assert_eq!(removal_request("(unsubscribe)"), Some("en"));
        assert_eq!(auto_reply_subject("Re: pricing"), None);
    }
}
