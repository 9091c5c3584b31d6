//! Whether an open or a click came from a machine rather than from the person. Machines are
//! recorded like people (one event per request) but flagged (`events.machine = 1`), so analytics
//! can show human rates apart. A request is a machine's when any rule holds:
//!
//! 1. it is a `HEAD` request (link checkers and scanners ask for headers; browsers and mail
//!    clients follow a link or load an image with `GET`);
//! 2. it carries no user agent at all (every browser and mail client sends one);
//! 3. its user agent contains one of [`SCANNER_AGENTS`] (case-insensitively): image proxies that
//!    fetch on delivery or for the reader (Google's, and
//!    Yahoo's, which also serves AOL Mail), Microsoft Office prefetchers, the link
//!    scanners of mail security gateways (Barracuda, Mimecast, Proofpoint, Symantec...), HTTP
//!    libraries and command-line tools, link-preview bots; or a word ending in "bot" (but
//!    the Cubot phones), or "crawler" or "spider";
//! 4. it comes before the message's `delivered` event (a scanner at the receiving server follows
//!    links while the message is still being accepted; nobody reads a message not yet
//!    delivered), or less than [`SCANNER_WINDOW`] seconds after it (scanners open and click
//!    within seconds of delivery; a person does not).
//!
//! Times come from the injected clock. What cannot be told apart is counted as human: Apple
//! Mail Privacy Protection loads images through proxies that send an ordinary Safari user agent,
//! at any time after delivery.

use axum::http::Method;

/// Seconds after delivery within which an open or a click is taken for a scanner's.
pub const SCANNER_WINDOW: i64 = 10;

/// Substrings (lowercase) of the user agents of known proxies, scanners and tools.
pub const SCANNER_AGENTS: &[&str] = &[
    // Image proxies that fetch images on delivery or on behalf of the reader.
    "googleimageproxy",
    "via ggpht.com",
    "yahoomailproxy",
    "yahoo! slurp",
    // Microsoft Office and Outlook link prefetchers (Safe Links, link previews, discovery).
    "microsoft office",
    "ms-office",
    "msoffice",
    "microsoft url control",
    "bingpreview",
    // Mail security gateways and their URL rewriters.
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "symantec",
    "messagelabs",
    "trendmicro",
    "trend micro",
    "forcepoint",
    "sophos",
    "ironport",
    "fireeye",
    "zscaler",
    "fortiguard",
    "checkpoint",
    "avanan",
    "cloudmark",
    "spamtitan",
    "libraesva",
    "safebrowsing",
    // HTTP libraries and command-line tools.
    "python-requests",
    "python-urllib",
    "aiohttp",
    "curl",
    "wget",
    "go-http-client",
    "java/",
    "okhttp",
    "apache-httpclient",
    "libwww-perl",
    "node-fetch",
    "axios",
    "headlesschrome",
    "phantomjs",
    // Link previews of chat and social apps.
    "facebookexternalhit",
    "slackbot",
    "whatsapp",
    "skypeuripreview",
    "embedly",
    "preview",
    "scanner",
];

/// Words that mark a robot anywhere in a user agent.
const ROBOT_WORDS: &[&str] = &["crawler", "spider"];
/// Words ending in "bot" that are not robots (phone makers).
const NOT_ROBOTS: &[&str] = &["cubot"];

/// Whether the user agent is a known machine's (rules 2 and 3 of the module doc).
pub fn is_machine_agent(user_agent: &str) -> bool {
    let agent = user_agent.trim().to_ascii_lowercase();
    if agent.is_empty() {
        return true;
    }
    if SCANNER_AGENTS.iter().chain(ROBOT_WORDS).any(|needle| agent.contains(needle)) {
        return true;
    }
    agent.split(|c: char| !c.is_ascii_alphanumeric()).any(|word| word.ends_with("bot") && !NOT_ROBOTS.contains(&word))
}

/// The timing rule (rule 4): `delivered_at` is the time of the message's `delivered` event,
/// `None` while there is none.
pub fn is_machine_timing(delivered_at: Option<i64>, now: i64) -> bool {
    match delivered_at {
        Some(at) => now < at + SCANNER_WINDOW,
        None => true,
    }
}

/// Every rule of the module doc.
pub fn is_machine(method: &Method, user_agent: &str, delivered_at: Option<i64>, now: i64) -> bool {
    *method == Method::HEAD || is_machine_agent(user_agent) || is_machine_timing(delivered_at, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
         Mobile/15E148";

    #[test]
    fn people_s_browsers_and_mail_clients_are_human() {
        for agent in [
            FIREFOX,
            IPHONE,
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 9; CUBOT_X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile",
            "Thunderbird/115.0",
        ] {
            assert!(!is_machine_agent(agent), "{agent}");
            assert!(!is_machine(&Method::GET, agent, Some(100), 160), "{agent}");
        }
    }

    #[test]
    fn proxies_scanners_tools_and_bots_are_machines() {
        for agent in [
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
            "Microsoft Office Existence Discovery",
            "Barracuda Sentinel (EE)",
            "Mozilla/5.0 Mimecast URL Protect",
            "Proofpoint URL Defense",
            "urldefense.com",
            "Symantec Email Security.cloud",
            "python-requests/2.31.0",
            "curl/8.5.0",
            "Go-http-client/1.1",
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0)",
            "Some-Crawler/1.0",
            "",
            "   ",
        ] {
            assert!(is_machine_agent(agent), "{agent:?}");
            assert!(is_machine(&Method::GET, agent, Some(0), 3600), "{agent:?}");
        }
    }

    #[test]
    fn head_requests_and_early_requests_are_machines() {
        assert!(is_machine(&Method::HEAD, FIREFOX, Some(0), 3600), "HEAD");
        assert!(is_machine(&Method::GET, FIREFOX, None, 3600), "before the delivered event");
        assert!(is_machine(&Method::GET, FIREFOX, Some(100), 95), "before delivery");
        assert!(is_machine(&Method::GET, FIREFOX, Some(100), 100), "at delivery");
        assert!(is_machine(&Method::GET, FIREFOX, Some(100), 109), "9 s after");
        assert!(!is_machine(&Method::GET, FIREFOX, Some(100), 110), "10 s after");
        assert!(!is_machine(&Method::GET, FIREFOX, Some(100), 160), "a minute after");
    }
}
