//! A relay's address, however a person types it.
//!
//! `http://relay.example:3030`, `https://relay.example`,
//! `ws://relay.example:3030/sync` and `wss://relay.example/sync/` all name
//! one relay. [`RelayUrl`] keeps one normalised form, the relay's HTTP base
//! (`https://relay.example`, with any path prefix a reverse proxy adds),
//! and derives from it the WebSocket URL ([`RelayUrl::sync_url`]), the API
//! base ([`RelayUrl::http_base`]) and invite links ([`RelayUrl::join_link`]).

use std::fmt;
use std::str::FromStr;

/// A relay's base URL, normalised: `http://` or `https://`, a host, an
/// optional port and path prefix, no trailing slash, no `/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayUrl {
    secure: bool,
    /// `host[:port][/prefix]`.
    rest: String,
}

/// A relay address that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a relay address; give its URL, such as https://relay.example or ws://127.0.0.1:3030"
)]
pub struct BadRelayUrl(pub String);

impl RelayUrl {
    /// Whether the relay is reached over TLS (`https://`, `wss://`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The base of the relay's HTTP API and pages: `https://host[:port][/prefix]`.
    pub fn http_base(&self) -> String {
        format!(
            "{}://{}",
            if self.secure { "https" } else { "http" },
            self.rest
        )
    }

    /// The WebSocket endpoint: `wss://host[:port][/prefix]/sync`.
    pub fn sync_url(&self) -> String {
        format!(
            "{}://{}/sync",
            if self.secure { "wss" } else { "ws" },
            self.rest
        )
    }

    /// The link that invites someone: `{base}/join#{workspace}.{secret}`,
    /// opened by the web app and accepted by `rapport join`.
    pub fn join_link(&self, workspace: &str, secret: &str) -> String {
        format!("{}/join#{workspace}.{secret}", self.http_base())
    }

    /// The host and port, for messages.
    pub fn authority(&self) -> &str {
        self.rest.split('/').next().unwrap_or(&self.rest)
    }
}

impl FromStr for RelayUrl {
    type Err = BadRelayUrl;

    fn from_str(text: &str) -> Result<Self, BadRelayUrl> {
        let bad = || BadRelayUrl(text.chars().take(120).collect());
        let trimmed = text.trim();
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(bad)?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => return Err(bad()),
        };
        // Query and fragment are not part of a relay's address.
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let mut rest = rest.trim_end_matches('/');
        if let Some(prefix) = rest.strip_suffix("/sync") {
            rest = prefix.trim_end_matches('/');
        }
        let host = rest.split('/').next().unwrap_or_default();
        let fine = !host.is_empty()
            && !host.starts_with(':')
            && !host.contains('@')
            && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
        if !fine {
            return Err(bad());
        }
        Ok(Self {
            secure,
            rest: rest.to_owned(),
        })
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.http_base())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_form_names_the_same_relay() {
        let forms = [
            "http://127.0.0.1:3030",
            "http://127.0.0.1:3030/",
            "ws://127.0.0.1:3030",
            "ws://127.0.0.1:3030/sync",
            "ws://127.0.0.1:3030/sync/",
            "HTTP://127.0.0.1:3030/sync",
            " http://127.0.0.1:3030/sync?token=x ",
        ];
        for form in forms {
            let url: RelayUrl = form.parse().unwrap();
            assert_eq!(url.http_base(), "http://127.0.0.1:3030", "{form}");
            assert_eq!(url.sync_url(), "ws://127.0.0.1:3030/sync", "{form}");
        }
        let url: RelayUrl = "wss://relay.example/rapport/sync".parse().unwrap();
        assert!(url.is_secure());
        assert_eq!(url.http_base(), "https://relay.example/rapport");
        assert_eq!(url.sync_url(), "wss://relay.example/rapport/sync");
        assert_eq!(
            url.join_link("ws-1", "s3"),
            "https://relay.example/rapport/join#ws-1.s3"
        );
        assert_eq!(url.authority(), "relay.example");
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "relay.example",
            "ftp://relay.example",
            "http://",
            "http:///sync",
            "http://:3030",
            "http://user@host",
            "http://ho st",
        ] {
            assert!(bad.parse::<RelayUrl>().is_err(), "{bad}");
        }
    }
}
