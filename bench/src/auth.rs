//! Token mode: the bench drives our relay as operators run it, with
//! signed tokens and a workspace. It makes an owner key, creates a
//! workspace over the HTTP API with one staff invite, gives every peer a
//! key of its own that joins through the invite, mints a fresh token for
//! each connection, and lists the documents it makes so that the other
//! peers may read and write them.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use ed25519_dalek::SigningKey;
use rapport_client::RelayConfig;
use rapport_client::api::{InviteLink, InviteRequest, RelayApi, Role};
use rapport_client::identity::Identity;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::token;

/// How long a token the bench mints stays valid: a connection presents it
/// once, at the upgrade.
const TOKEN_SECONDS: u64 = 120;

/// The bench's workspace on a relay with tokens.
pub(crate) struct Auth {
    config: RelayConfig,
    owner: RelayApi,
    workspace: String,
    invite: InviteLink,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl Auth {
    /// Creates the bench's workspace on the relay at `url` (its `/sync`
    /// address). Blocking.
    pub(crate) fn start(url: &str) -> Result<Arc<Self>> {
        let relay_id = RelayApi::relay_id(url)
            .with_context(|| format!("{url} does not answer /api/info as our relay does; a server without tokens wants --open"))?;
        let config = RelayConfig {
            url: url.to_owned(),
            audience: Some(relay_id),
        };
        let owner_key = SigningKey::from_bytes(&rand::random());
        let owner = RelayApi::new(&config, Identity::in_memory(owner_key))?;
        let workspace = owner.create_workspace("rapport bench")?;
        let invite = owner.create_invite(
            &workspace,
            &InviteRequest {
                role: Role::Staff,
                documents: Vec::new(),
                level: None,
                expires_in_secs: 24 * 3600,
                uses: u32::MAX,
            },
        )?;
        Ok(Arc::new(Self {
            config,
            owner,
            workspace,
            invite,
        }))
    }

    /// A new key, a member (staff) of the bench's workspace. Blocking.
    pub(crate) fn member(&self) -> Result<SigningKey> {
        self.member_through(&self.config.url)
    }

    /// [`Auth::member`], joining through the relay at `url`: one of a
    /// cluster's, which knows its new member at once. Blocking.
    fn member_through(&self, url: &str) -> Result<SigningKey> {
        let config = RelayConfig {
            url: url.to_owned(),
            audience: self.config.audience.clone(),
        };
        let key = SigningKey::from_bytes(&rand::random());
        RelayApi::new(&config, Identity::in_memory(key.clone()))?
            .redeem(&self.invite)
            .with_context(|| format!("joining the bench's workspace through {url}"))?;
        Ok(key)
    }

    /// Connects peer `us` to the relay at `url` as a new member of the
    /// bench's workspace (joined through that relay), with its own key and
    /// a fresh token.
    pub(crate) async fn connect(
        self: &Arc<Self>,
        url: &str,
        us: rapport_protocol::ids::PeerId,
    ) -> Result<crate::peer::Link> {
        let (auth, through) = (Arc::clone(self), url.to_owned());
        let key = tokio::task::spawn_blocking(move || auth.member_through(&through)).await??;
        crate::peer::connect_with(url, us, Some(self.token(&key)?)).await
    }

    /// Connects peer `us` with `key` (a member already), with a fresh
    /// token.
    pub(crate) async fn connect_as(
        &self,
        key: &SigningKey,
        url: &str,
        us: rapport_protocol::ids::PeerId,
    ) -> Result<crate::peer::Link> {
        crate::peer::connect_with(url, us, Some(self.token(key)?)).await
    }

    /// Connects peer `us` with a key of its own that belongs to no
    /// workspace (an idle connection needs no documents), with a token.
    pub(crate) async fn connect_stranger(
        &self,
        url: &str,
        us: rapport_protocol::ids::PeerId,
    ) -> Result<crate::peer::Link> {
        let key = SigningKey::from_bytes(&rand::random());
        self.connect_as(&key, url, us).await
    }

    /// Makes `identity` (a replica's) a member of the bench's workspace.
    /// Blocking.
    pub(crate) fn join(&self, identity: Identity) -> Result<()> {
        RelayApi::new(&self.config, identity)?
            .redeem(&self.invite)
            .context("joining the bench's workspace")?;
        Ok(())
    }

    /// A fresh token for one connection of `key`.
    pub(crate) fn token(&self, key: &SigningKey) -> Result<String> {
        let audience = self.config.audience.as_deref().unwrap_or_default();
        token::mint(
            key,
            audience,
            crate::peer::now(),
            TOKEN_SECONDS,
            &mut rand::rng(),
        )
        .map_err(|e| anyhow::anyhow!("minting a token: {e}"))
    }

    /// Lists `documents` in the bench's workspace. Blocking.
    pub(crate) fn list(&self, documents: &[DocumentId]) -> Result<()> {
        let listed: Vec<(DocumentId, Option<DocumentId>)> =
            documents.iter().map(|&id| (id, None)).collect();
        self.owner
            .add_documents(&self.workspace, &listed)
            .context("listing the bench's documents")?;
        Ok(())
    }

    /// The relay as a replica of `key` syncs with it.
    pub(crate) fn relay_config(&self) -> RelayConfig {
        self.config.clone()
    }
}
