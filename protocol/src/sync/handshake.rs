//! The `join` / `peer` exchange that opens every connection.

use crate::ids::{PeerId, UnixMillis};
use crate::wire::{ErrorMessage, Join, Message, PROTOCOL_VERSION, Peer, PeerMetadata};

/// How long the peer has to complete the handshake.
pub const HANDSHAKE_TIMEOUT_MILLIS: u64 = 10_000;

/// A handshake that succeeded: who is on the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// The peer id the other end chose for this connection.
    pub remote: PeerId,
    pub remote_metadata: Option<PeerMetadata>,
}

/// Why a handshake failed. After any of these the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The initiator offers no protocol version we speak.
    #[error("the peer supports protocol versions {offered:?}, we speak only \"1\"")]
    UnsupportedVersion { offered: Vec<String> },
    /// The receiving peer answered with `error`.
    #[error("the peer refused the connection: {message}")]
    Refused { message: String },
    /// A message other than the one the handshake expects.
    #[error("expected `{expected}` to open the connection, got `{got}`")]
    UnexpectedMessage {
        expected: &'static str,
        got: &'static str,
    },
    /// The `peer` answer is addressed to another peer id.
    #[error("the peer answered `{target}`, we are `{local}`")]
    WrongTarget { local: PeerId, target: PeerId },
    /// Nothing arrived in time.
    #[error("the handshake did not complete within {HANDSHAKE_TIMEOUT_MILLIS} ms")]
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

/// One side of the handshake, as a state machine.
///
/// The initiator sends `join` ([`Handshake::poll_transmit`] right after
/// [`Handshake::initiate`]); the responder answers with `peer`, or with
/// `error` when the versions do not match. Feed every received message to
/// [`Handshake::handle_message`] until it returns `Ok(Some(_))`; always drain
/// [`Handshake::poll_transmit`] afterwards, also after an error (the `error`
/// message must go out before the close).
#[derive(Debug)]
pub struct Handshake {
    role: Role,
    local: PeerId,
    metadata: PeerMetadata,
    deadline: UnixMillis,
    transmit: Option<Message>,
}

impl Handshake {
    /// The initiating side: queues `join`.
    pub fn initiate(local: PeerId, metadata: PeerMetadata, now: UnixMillis) -> Self {
        let join = Message::Join(Join {
            sender_id: local.clone(),
            peer_metadata: Some(metadata.clone()),
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
        });
        Self {
            role: Role::Initiator,
            local,
            metadata,
            deadline: now.plus_millis(HANDSHAKE_TIMEOUT_MILLIS),
            transmit: Some(join),
        }
    }

    /// The receiving side: waits for `join`.
    pub fn respond(local: PeerId, metadata: PeerMetadata, now: UnixMillis) -> Self {
        Self {
            role: Role::Responder,
            local,
            metadata,
            deadline: now.plus_millis(HANDSHAKE_TIMEOUT_MILLIS),
            transmit: None,
        }
    }

    /// A message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.take()
    }

    /// When the handshake gives up.
    pub fn poll_timeout(&self) -> UnixMillis {
        self.deadline
    }

    /// Checks the deadline.
    pub fn handle_timeout(&mut self, now: UnixMillis) -> Result<(), HandshakeError> {
        if now >= self.deadline {
            return Err(HandshakeError::TimedOut);
        }
        Ok(())
    }

    /// Handles one received message.
    pub fn handle_message(
        &mut self,
        message: Message,
    ) -> Result<Option<Established>, HandshakeError> {
        match (self.role, message) {
            (Role::Responder, Message::Join(join)) => self.handle_join(join).map(Some),
            (Role::Initiator, Message::Peer(peer)) => self.handle_peer(peer).map(Some),
            (Role::Initiator, Message::Error(error)) => Err(HandshakeError::Refused {
                message: error.message,
            }),
            (role, other) => {
                let expected = match role {
                    Role::Initiator => "peer",
                    Role::Responder => "join",
                };
                if role == Role::Responder {
                    self.refuse(
                        None,
                        format!("expected `join`, got `{}`", other.type_name()),
                    );
                }
                Err(HandshakeError::UnexpectedMessage {
                    expected,
                    got: other.type_name(),
                })
            }
        }
    }

    fn handle_join(&mut self, join: Join) -> Result<Established, HandshakeError> {
        if !join
            .supported_protocol_versions
            .iter()
            .any(|v| v == PROTOCOL_VERSION)
        {
            self.refuse(
                Some(join.sender_id),
                "unsupported protocol version".to_owned(),
            );
            return Err(HandshakeError::UnsupportedVersion {
                offered: join.supported_protocol_versions,
            });
        }
        self.transmit = Some(Message::Peer(Peer {
            sender_id: self.local.clone(),
            peer_metadata: Some(self.metadata.clone()),
            selected_protocol_version: PROTOCOL_VERSION.to_owned(),
            target_id: join.sender_id.clone(),
        }));
        Ok(Established {
            remote: join.sender_id,
            remote_metadata: join.peer_metadata,
        })
    }

    fn handle_peer(&mut self, peer: Peer) -> Result<Established, HandshakeError> {
        if peer.target_id != self.local {
            return Err(HandshakeError::WrongTarget {
                local: self.local.clone(),
                target: peer.target_id,
            });
        }
        if peer.selected_protocol_version != PROTOCOL_VERSION {
            return Err(HandshakeError::UnsupportedVersion {
                offered: vec![peer.selected_protocol_version],
            });
        }
        Ok(Established {
            remote: peer.sender_id,
            remote_metadata: peer.peer_metadata,
        })
    }

    fn refuse(&mut self, target: Option<PeerId>, message: String) {
        self.transmit = Some(Message::Error(ErrorMessage {
            sender_id: Some(self.local.clone()),
            message,
            target_id: target,
        }));
    }
}
