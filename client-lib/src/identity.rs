//! A person's identity on one device: an ed25519 key pair whose secret
//! half never leaves the home folder, and device bytes that make this
//! device's automerge actor id.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use automerge::ActorId;
use ed25519_dalek::SigningKey;
use rapport_protocol::ids::PublicKey;

use crate::error::ClientError;

/// The secret key file, readable by its owner only.
pub const KEY_FILE: &str = "identity.key";
/// This device's random bytes, the tail of its actor id.
pub const DEVICE_FILE: &str = "device";
/// How many random bytes identify a device.
const DEVICE_BYTES: usize = 8;

/// A person's key and this device's id.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    device: [u8; DEVICE_BYTES],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A person's key as a file they carry to another device: what the web
/// app's "export key" writes and `rapport init --import` reads, and the
/// other way round. JSON: `{"rapport": "identity", "version": 1, "name":
/// …, "public_key": <base58>, "secret_key": <base58 of the 32-byte seed>}`.
/// Whoever holds the file is that person: it is written readable by its
/// owner only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyFile {
    /// Always `"identity"`.
    pub rapport: String,
    /// Always 1.
    pub version: u32,
    /// The name the person goes by.
    #[serde(default)]
    pub name: String,
    pub public_key: String,
    pub secret_key: String,
}

/// Why a key file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    #[error("not a rapport key file (expected JSON with \"rapport\": \"identity\")")]
    NotAKeyFile,
    #[error("a key file of version {0}; this rapport reads version 1")]
    Version(u32),
    #[error("the secret key is not 32 bytes of base58")]
    BadSecret,
    #[error("the public key does not belong to the secret key: the file is damaged")]
    Mismatch,
}

impl KeyFile {
    /// Reads a key file's text, checking that its halves belong together.
    pub fn parse(text: &str) -> Result<(Self, SigningKey), KeyFileError> {
        let file: Self = serde_json::from_str(text).map_err(|_| KeyFileError::NotAKeyFile)?;
        if file.rapport != "identity" {
            return Err(KeyFileError::NotAKeyFile);
        }
        if file.version != 1 {
            return Err(KeyFileError::Version(file.version));
        }
        let seed: [u8; 32] = bs58::decode(file.secret_key.trim())
            .into_vec()
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(KeyFileError::BadSecret)?;
        let key = SigningKey::from_bytes(&seed);
        if PublicKey::from(key.verifying_key()).to_string() != file.public_key.trim() {
            return Err(KeyFileError::Mismatch);
        }
        Ok((file, key))
    }
}

impl Identity {
    /// Makes a new identity in `home`, which must not hold one.
    pub fn create(home: &Path) -> Result<Self, ClientError> {
        Self::create_with(home, SigningKey::from_bytes(&rand::random()))
    }

    /// Makes an identity in `home` (which must not hold one) from a key
    /// brought from another device; this device gets its own device bytes,
    /// so its changes have an actor of their own.
    pub fn create_with(home: &Path, key: SigningKey) -> Result<Self, ClientError> {
        fs::create_dir_all(home).map_err(ClientError::io(home))?;
        let key_path = home.join(KEY_FILE);
        if key_path.exists() {
            return Err(ClientError::AlreadyInitialised {
                path: home.to_owned(),
            });
        }
        let identity = Self {
            key,
            device: rand::random(),
        };
        write_private(&key_path, &identity.key.to_bytes())?;
        write_private(&home.join(DEVICE_FILE), &identity.device)?;
        Ok(identity)
    }

    /// An identity held in memory only (no home folder): for tools and
    /// tests that act as a key without a replica.
    pub fn in_memory(key: SigningKey) -> Self {
        Self {
            key,
            device: rand::random(),
        }
    }

    /// The key as a file to carry to another device.
    pub fn export(&self, name: &str) -> KeyFile {
        KeyFile {
            rapport: "identity".into(),
            version: 1,
            name: name.to_owned(),
            public_key: self.public_key().to_string(),
            secret_key: bs58::encode(self.key.to_bytes()).into_string(),
        }
    }

    /// Loads the identity of `home`, checking that the key file is private.
    pub fn load(home: &Path) -> Result<Self, ClientError> {
        let key_path = home.join(KEY_FILE);
        if !key_path.exists() {
            return Err(ClientError::NotInitialised {
                path: home.to_owned(),
            });
        }
        check_private(&key_path)?;
        let key_bytes: [u8; 32] = read_exact(&key_path)?;
        let device_path = home.join(DEVICE_FILE);
        let device = if device_path.exists() {
            read_exact(&device_path)?
        } else {
            let device: [u8; DEVICE_BYTES] = rand::random();
            write_private(&device_path, &device)?;
            device
        };
        Ok(Self {
            key: SigningKey::from_bytes(&key_bytes),
            device,
        })
    }

    /// The public key: who this person is.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.key.verifying_key())
    }

    /// The key that signs connection tokens.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// This device's automerge actor id: the public key followed by the
    /// device bytes, the same on every open of this home. A relay binds such
    /// an actor only to the key it starts with.
    pub fn actor_id(&self) -> ActorId {
        let mut bytes = self.public_key().as_bytes().to_vec();
        bytes.extend_from_slice(&self.device);
        ActorId::from(bytes)
    }
}

fn read_exact<const N: usize>(path: &Path) -> Result<[u8; N], ClientError> {
    let bytes = fs::read(path).map_err(ClientError::io(path))?;
    bytes.try_into().map_err(|_| ClientError::BadKeyFile {
        path: path.to_owned(),
    })
}

/// Writes `bytes` to a new file at `path` that only its owner may read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(ClientError::io(path))?;
    file.write_all(bytes).map_err(ClientError::io(path))?;
    file.sync_all().map_err(ClientError::io(path))
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ClientError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(ClientError::io(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(ClientError::KeyFileExposed {
            path: PathBuf::from(path),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), ClientError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips_and_refuses_damage() {
        let home = std::env::temp_dir().join(format!("rapport-keyfile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&home);
        let identity = Identity::create(&home).unwrap();
        let text = serde_json::to_string(&identity.export("Ann")).unwrap();
        let (file, key) = KeyFile::parse(&text).unwrap();
        assert_eq!(file.name, "Ann");
        assert_eq!(key.to_bytes(), identity.signing_key().to_bytes());
        let other = home.join("other");
        let imported = Identity::create_with(&other, key).unwrap();
        assert_eq!(imported.public_key(), identity.public_key());
        assert_ne!(
            imported.actor_id(),
            identity.actor_id(),
            "a device of its own"
        );
        assert!(matches!(
            Identity::create_with(&other, SigningKey::from_bytes(&[1; 32])),
            Err(ClientError::AlreadyInitialised { .. })
        ));
        let mut wrong = identity.export("Ann");
        wrong.public_key = PublicKey::from_bytes([9; 32]).to_string();
        let wrong = serde_json::to_string(&wrong).unwrap();
        assert_eq!(KeyFile::parse(&wrong), Err(KeyFileError::Mismatch));
        assert_eq!(KeyFile::parse("{}"), Err(KeyFileError::NotAKeyFile));
        let newer = text.replace("\"version\":1", "\"version\":2");
        assert_eq!(KeyFile::parse(&newer), Err(KeyFileError::Version(2)));
        fs::remove_dir_all(&home).unwrap();
    }
}
