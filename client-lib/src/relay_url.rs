//! A relay's address, however a person types it.
//!
//! `http://relay.example:3030`, `https://relay.example`,
//! `ws://relay.example:3030/sync` and `wss://relay.example/sync/` all name
//! one relay. [`RelayUrl`] keeps one normalised form, the relay's HTTP base
//! (`https://relay.example`, with any path prefix a reverse proxy adds),
//! and derives from it the WebSocket URL ([`RelayUrl::sync_url`]), the API
//! base ([`RelayUrl::http_base`]) and invite links ([`RelayUrl::join_link`]).
//!
//! The relays of one cluster answer to one relay id; a workspace may name
//! several of them as a [`RelayList`], typed `URL[,URL…]`, which a sync
//! tries in turn.

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

/// The addresses of one relay: the relays of a cluster, which share one
/// relay id. Never empty; no address twice; in the order given.
///
/// Typed as `URL[,URL…]`; stored as a list of base URLs, and read back
/// from a single URL too (a list of one), as workspaces were kept before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayList(Vec<RelayUrl>);

/// A `URL[,URL…]` list that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadRelayList {
    /// No address at all.
    #[error("no relay address given; give one or more URLs separated by commas")]
    Empty,
    /// One of the addresses (counted from 1) is not one.
    #[error("address {position} of the list: {reason}")]
    Bad {
        position: usize,
        reason: BadRelayUrl,
    },
}

impl RelayList {
    /// The first address, where a sync starts when none has worked yet.
    pub fn first(&self) -> &RelayUrl {
        // The list is never empty: `FromStr` and `From` make one or more.
        &self.0[0]
    }

    /// Every address, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &RelayUrl> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false; there for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `url` is one of the addresses.
    pub fn contains(&self, url: &RelayUrl) -> bool {
        self.0.contains(url)
    }

    /// Every address once, starting from `last` (the one that last worked)
    /// when it is in the list, then on in the list's order and round to
    /// the beginning.
    pub fn in_turn_from(&self, last: Option<&RelayUrl>) -> Vec<RelayUrl> {
        let start = last
            .and_then(|last| self.0.iter().position(|url| url == last))
            .unwrap_or(0);
        self.0[start..]
            .iter()
            .chain(&self.0[..start])
            .cloned()
            .collect()
    }
}

impl From<RelayUrl> for RelayList {
    fn from(url: RelayUrl) -> Self {
        Self(vec![url])
    }
}

impl FromStr for RelayList {
    type Err = BadRelayList;

    /// `URL[,URL…]`: each address as [`RelayUrl`] takes it; one named
    /// twice (in any of its forms) is kept once.
    fn from_str(text: &str) -> Result<Self, BadRelayList> {
        if text.trim().is_empty() {
            return Err(BadRelayList::Empty);
        }
        let mut urls: Vec<RelayUrl> = Vec::new();
        for (n, typed) in text.split(',').enumerate() {
            let url: RelayUrl = typed.parse().map_err(|reason| BadRelayList::Bad {
                position: n + 1,
                reason,
            })?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        Ok(Self(urls))
    }
}

impl fmt::Display for RelayList {
    /// The addresses joined by commas, as `set-relay` takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, url) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{url}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for RelayList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(RelayUrl::http_base))
    }
}

impl<'de> serde::Deserialize<'de> for RelayList {
    /// A list of URLs, or one string of `URL[,URL…]` (a workspace kept
    /// before lists named one relay).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            One(String),
            Many(Vec<String>),
        }
        let text = match Stored::deserialize(deserializer)? {
            Stored::One(text) => text,
            Stored::Many(urls) => urls.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
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

    #[test]
    fn a_list_parses_each_address_and_keeps_its_order() {
        let list: RelayList =
            "http://a.example:3030, wss://b.example/sync,ws://a.example:3030/sync"
                .parse()
                .unwrap();
        let bases: Vec<String> = list.iter().map(RelayUrl::http_base).collect();
        assert_eq!(bases, ["http://a.example:3030", "https://b.example"]);
        assert_eq!(list.to_string(), "http://a.example:3030,https://b.example");
        assert_eq!(list.to_string().parse::<RelayList>().unwrap(), list);
        let one: RelayList = "ws://127.0.0.1:3030/sync".parse().unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one.first().http_base(), "http://127.0.0.1:3030");
    }

    #[test]
    fn a_bad_address_in_a_list_is_named_by_its_place() {
        assert_eq!("".parse::<RelayList>(), Err(BadRelayList::Empty));
        assert_eq!(" ".parse::<RelayList>(), Err(BadRelayList::Empty));
        for (bad, position) in [
            ("http://a.example,", 2),
            ("ftp://a.example,http://b.example", 1),
            ("http://a.example,,http://b.example", 2),
            ("http://a.example,b.example", 2),
        ] {
            match bad.parse::<RelayList>() {
                Err(BadRelayList::Bad { position: at, .. }) => assert_eq!(at, position, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let error = "http://a.example,b.example"
            .parse::<RelayList>()
            .unwrap_err();
        assert!(error.to_string().contains("address 2"), "{error}");
        assert!(error.to_string().contains("`b.example`"), "{error}");
    }

    #[test]
    fn turns_start_from_the_last_that_worked() {
        let list: RelayList = "http://a.test,http://b.test,http://c.test".parse().unwrap();
        let names = |order: Vec<RelayUrl>| -> Vec<String> {
            order.iter().map(|u| u.authority().to_owned()).collect()
        };
        assert_eq!(
            names(list.in_turn_from(None)),
            ["a.test", "b.test", "c.test"]
        );
        let b: RelayUrl = "ws://b.test/sync".parse().unwrap();
        assert_eq!(
            names(list.in_turn_from(Some(&b))),
            ["b.test", "c.test", "a.test"]
        );
        let gone: RelayUrl = "http://d.test".parse().unwrap();
        assert_eq!(
            names(list.in_turn_from(Some(&gone))),
            ["a.test", "b.test", "c.test"]
        );
    }

    #[test]
    fn stored_lists_read_back_and_a_single_url_reads_as_a_list_of_one() {
        let list: RelayList = "http://a.test,http://b.test".parse().unwrap();
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["http://a.test","http://b.test"]"#);
        assert_eq!(serde_json::from_str::<RelayList>(&json).unwrap(), list);
        let old: RelayList = serde_json::from_str(r#""http://a.test""#).unwrap();
        assert_eq!(old, "http://a.test".parse().unwrap());
        assert!(serde_json::from_str::<RelayList>("[]").is_err());
        assert!(serde_json::from_str::<RelayList>(r#"["relay.example"]"#).is_err());
    }
}
