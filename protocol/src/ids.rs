//! Typed identifiers, each with a text form that round-trips through
//! `Display` and `FromStr`.
//!
//! | type | bytes | text |
//! |---|---|---|
//! | [`DocumentId`] | 16 | bs58check, as automerge-repo writes it |
//! | [`AutomergeUrl`] | | `automerge:<id>` or `automerge:<id>#<head>\|<head>` (heads bs58check) |
//! | [`PeerId`], [`StorageId`] | | any string the peer chose |
//! | [`PublicKey`] | 32 | base58 (bitcoin alphabet), no checksum |
//! | [`ChangeHash`] | 32 | lowercase hex, as automerge prints it |

use std::fmt;
use std::str::FromStr;

/// Why a piece of text is not the id it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The text is not base58 of the bitcoin alphabet, or its checksum is wrong.
    #[error("`{text}` is not a base58check string")]
    NotBase58Check { text: String },
    /// The text is not base58 of the bitcoin alphabet.
    #[error("`{text}` is not a base58 string")]
    NotBase58 { text: String },
    /// The text is not hexadecimal.
    #[error("`{text}` is not a hexadecimal string")]
    NotHex { text: String },
    /// The text decodes to the wrong number of bytes.
    #[error("{kind} must be {expected} bytes, `{text}` has {actual}")]
    WrongLength {
        kind: &'static str,
        text: String,
        expected: usize,
        actual: usize,
    },
    /// A URL that does not start with `automerge:`.
    #[error("`{text}` is not an automerge URL (automerge:<document id>)")]
    NotAutomergeUrl { text: String },
    /// A peer or storage id that is empty.
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
}

/// Keeps error messages short when someone pastes a very long string.
fn shown(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn decode_base58check<const N: usize>(kind: &'static str, text: &str) -> Result<[u8; N], IdError> {
    let bytes = bs58::decode(text)
        .with_check(None)
        .into_vec()
        .map_err(|_| IdError::NotBase58Check { text: shown(text) })?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| IdError::WrongLength {
        kind,
        text: shown(text),
        expected: N,
        actual: bytes.len(),
    })
}

/// An automerge-repo document id: 16 random bytes, written as bs58check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    /// The length of a document id in bytes.
    pub const LEN: usize = 16;

    /// A document id from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A fresh random document id.
    pub fn random(rng: &mut impl rand_core::RngCore) -> Self {
        let mut bytes = [0; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The 16 bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The `automerge:` URL of the document, without heads.
    pub fn url(&self) -> AutomergeUrl {
        AutomergeUrl::new(*self)
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        decode_base58check("a document id", text).map(Self)
    }
}

/// The hash of one automerge change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangeHash([u8; 32]);

impl ChangeHash {
    /// A change hash from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the hash.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The bs58check form automerge-repo uses for heads in URLs.
    pub fn to_base58check(&self) -> String {
        bs58::encode(self.0).with_check().into_string()
    }

    /// Parses the bs58check form automerge-repo uses for heads in URLs.
    pub fn from_base58check(text: &str) -> Result<Self, IdError> {
        decode_base58check("a change hash", text).map(Self)
    }
}

impl From<automerge::ChangeHash> for ChangeHash {
    fn from(hash: automerge::ChangeHash) -> Self {
        Self(hash.0)
    }
}

impl From<ChangeHash> for automerge::ChangeHash {
    fn from(hash: ChangeHash) -> Self {
        automerge::ChangeHash(hash.0)
    }
}

impl fmt::Display for ChangeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChangeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChangeHash({self})")
    }
}

impl FromStr for ChangeHash {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let not_hex = || IdError::NotHex { text: shown(text) };
        if !text.is_ascii() {
            return Err(not_hex());
        }
        if text.len() != 64 {
            return Err(IdError::WrongLength {
                kind: "a change hash",
                text: shown(text),
                expected: 32,
                actual: text.len() / 2,
            });
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            // The text is ASCII, so every two-byte chunk is a valid str.
            let pair = std::str::from_utf8(pair).map_err(|_| not_hex())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| not_hex())?;
        }
        Ok(Self(bytes))
    }
}

/// An `automerge:` URL: a document, optionally pinned to heads.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AutomergeUrl {
    document_id: DocumentId,
    heads: Option<Vec<ChangeHash>>,
}

impl AutomergeUrl {
    /// The text every automerge URL starts with.
    pub const PREFIX: &'static str = "automerge:";

    /// The URL of the document's current state.
    pub const fn new(document_id: DocumentId) -> Self {
        Self {
            document_id,
            heads: None,
        }
    }

    /// The URL of the document as of `heads`.
    pub fn with_heads(document_id: DocumentId, heads: Vec<ChangeHash>) -> Self {
        Self {
            document_id,
            heads: Some(heads),
        }
    }

    /// The document this URL names.
    pub const fn document_id(&self) -> DocumentId {
        self.document_id
    }

    /// The heads the URL pins, if it pins any.
    pub fn heads(&self) -> Option<&[ChangeHash]> {
        self.heads.as_deref()
    }
}

impl fmt::Display for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.document_id)?;
        if let Some(heads) = &self.heads {
            f.write_str("#")?;
            for (i, head) in heads.iter().enumerate() {
                if i > 0 {
                    f.write_str("|")?;
                }
                f.write_str(&head.to_base58check())?;
            }
        }
        Ok(())
    }
}

impl FromStr for AutomergeUrl {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let rest = text
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| IdError::NotAutomergeUrl { text: shown(text) })?;
        let (id, heads) = match rest.split_once('#') {
            None => (rest, None),
            Some((id, "")) => (id, Some(Vec::new())),
            Some((id, heads)) => {
                let heads = heads
                    .split('|')
                    .map(ChangeHash::from_base58check)
                    .collect::<Result<Vec<_>, _>>()?;
                (id, Some(heads))
            }
        };
        Ok(Self {
            document_id: id.parse()?,
            heads,
        })
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                if text.is_empty() {
                    return Err(IdError::Empty { kind: $kind });
                }
                Ok(Self(text.to_owned()))
            }
        }
    };
}

string_id!(
    /// A peer's name for itself on one connection (`senderId`): any
    /// non-empty string the peer chose.
    PeerId,
    "a peer id"
);

string_id!(
    /// The id of a peer's storage (`peerMetadata.storageId`), stable across
    /// that peer's connections; a UUID in automerge-repo.
    StorageId,
    "a storage id"
);

/// An ed25519 public key: a person's identity, written as base58.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// A public key from its 32 bytes. The bytes are not checked to be a
    /// point on the curve; [`PublicKey::verifying_key`] does that.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as an ed25519 verifying key, if its bytes are a valid point.
    pub fn verifying_key(
        &self,
    ) -> Result<ed25519_dalek::VerifyingKey, ed25519_dalek::SignatureError> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0)
    }

    /// The key a self-describing automerge actor names: rapport's clients
    /// make their actors as the 32-byte public key followed by device
    /// bytes. `None` for any other actor (a stock client's random one).
    pub fn of_actor(actor: &[u8]) -> Option<Self> {
        if actor.len() <= 32 {
            return None;
        }
        let prefix: [u8; 32] = actor[..32].try_into().ok()?;
        let key = Self(prefix);
        key.verifying_key().ok().map(|_| key)
    }
}

impl From<ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(key: ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let bytes = bs58::decode(text)
            .into_vec()
            .map_err(|_| IdError::NotBase58 { text: shown(text) })?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| IdError::WrongLength {
                kind: "a public key",
                text: shown(text),
                expected: 32,
                actual: bytes.len(),
            })
    }
}

/// Ids travel in JSON (the relay's API, stored records) as their text form.
macro_rules! serde_as_text {
    ($($name:ident),*) => {$(
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_as_text!(DocumentId, ChangeHash, PublicKey, PeerId, StorageId);

/// A point in time as milliseconds since the unix epoch, passed in by the
/// caller: the protocol crate never reads a clock.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// Whole seconds since the epoch, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// `self` plus `millis`, saturating.
    pub const fn plus_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis))
    }
}

/// A conversion, not a clock: the caller reads the time
/// (`UnixMillis::from(SystemTime::now())`) and passes it in. Times before
/// the epoch are 0; times past `u64::MAX` milliseconds saturate.
impl From<std::time::SystemTime> for UnixMillis {
    fn from(time: std::time::SystemTime) -> Self {
        let millis = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        Self(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_id_from_the_vectors_round_trips() {
        let id: DocumentId = "2FR27bUHzHLUMtji5HeRNij34sFy".parse().unwrap();
        assert_eq!(id.to_string(), "2FR27bUHzHLUMtji5HeRNij34sFy");
        let url: AutomergeUrl = "automerge:2FR27bUHzHLUMtji5HeRNij34sFy".parse().unwrap();
        assert_eq!(url.document_id(), id);
        assert_eq!(url.heads(), None);
    }

    #[test]
    fn document_id_with_a_bad_checksum_is_refused() {
        // The last character changed: the checksum no longer matches.
        let err = "2FR27bUHzHLUMtji5HeRNij34sFz"
            .parse::<DocumentId>()
            .unwrap_err();
        assert!(matches!(err, IdError::NotBase58Check { .. }), "{err:?}");
        let err = "0OIl".parse::<DocumentId>().unwrap_err();
        assert!(matches!(err, IdError::NotBase58Check { .. }), "{err:?}");
    }

    #[test]
    fn document_id_of_the_wrong_length_is_refused() {
        let text = bs58::encode([7u8; 20]).with_check().into_string();
        let err = text.parse::<DocumentId>().unwrap_err();
        assert!(
            matches!(
                err,
                IdError::WrongLength {
                    expected: 16,
                    actual: 20,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn url_with_heads_round_trips() {
        let id = DocumentId::from_bytes([3; 16]);
        let heads = vec![
            ChangeHash::from_bytes([1; 32]),
            ChangeHash::from_bytes([2; 32]),
        ];
        let url = AutomergeUrl::with_heads(id, heads.clone());
        let text = url.to_string();
        assert_eq!(text.matches('|').count(), 1);
        let back: AutomergeUrl = text.parse().unwrap();
        assert_eq!(back, url);
        assert_eq!(back.heads(), Some(heads.as_slice()));
    }

    #[test]
    fn url_without_the_prefix_is_refused() {
        let err = "automerg:2FR27bUHzHLUMtji5HeRNij34sFy"
            .parse::<AutomergeUrl>()
            .unwrap_err();
        assert!(matches!(err, IdError::NotAutomergeUrl { .. }), "{err:?}");
    }

    #[test]
    fn change_hash_round_trips_as_hex() {
        let text = "08d7d7906acf16a2a91d80f6169a7b24cbf1723694b33e9a45a48a32583d82f9";
        let hash: ChangeHash = text.parse().unwrap();
        assert_eq!(hash.to_string(), text);
        assert!("08d7".parse::<ChangeHash>().is_err());
        assert!("zz".repeat(32).parse::<ChangeHash>().is_err());
        assert!("é".repeat(32).parse::<ChangeHash>().is_err());
    }

    #[test]
    fn public_key_round_trips_as_base58() {
        let key = PublicKey::from_bytes([9; 32]);
        let back: PublicKey = key.to_string().parse().unwrap();
        assert_eq!(back, key);
        assert!("abc".parse::<PublicKey>().is_err());
    }

    #[test]
    fn empty_peer_id_is_refused() {
        assert!("".parse::<PeerId>().is_err());
        assert_eq!("a".parse::<PeerId>().unwrap().as_str(), "a");
    }

    #[test]
    fn long_text_in_errors_is_cut() {
        let long = "x".repeat(10_000);
        let message = long.parse::<DocumentId>().unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }
}
