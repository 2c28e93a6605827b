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

impl Identity {
    /// Makes a new identity in `home`, which must not hold one.
    pub fn create(home: &Path) -> Result<Self, ClientError> {
        fs::create_dir_all(home).map_err(ClientError::io(home))?;
        let key_path = home.join(KEY_FILE);
        if key_path.exists() {
            return Err(ClientError::AlreadyInitialised {
                path: home.to_owned(),
            });
        }
        let identity = Self {
            key: SigningKey::from_bytes(&rand::random()),
            device: rand::random(),
        };
        write_private(&key_path, &identity.key.to_bytes())?;
        write_private(&home.join(DEVICE_FILE), &identity.device)?;
        Ok(identity)
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

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
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
