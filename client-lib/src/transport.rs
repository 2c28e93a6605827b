//! The client's socket: a WebSocket to a relay, the `join`/`peer`
//! handshake, and protocol messages as binary frames. tungstenite stays
//! inside this module and the sync loop that drives it; the replica, the
//! load generator (`rapport-bench`) and the integration tests' peers all
//! connect through [`open`] and [`handshake`].

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rapport_protocol::ids::PeerId;
use rapport_protocol::sync::Handshake;
use rapport_protocol::wire::{Message, PeerMetadata};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::repo::now;

/// A WebSocket to a relay.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A frame as tungstenite sends it.
pub type Frame = tungstenite::Message;

/// How a socket is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions<'a> {
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<&'a str>,
    /// The largest message (and frame) taken: `None` for tungstenite's
    /// defaults (16 MiB a frame, 64 MiB a message), `Some(usize::MAX)` for
    /// no limit (a load generator reading whole documents).
    pub max_message_bytes: Option<usize>,
}

/// The largest message a replica takes from its relay: a relay sends a
/// peer that has nothing of a long document all of it in one message,
/// which passes tungstenite's 16 MiB frame limit on a long history.
pub const REPLICA_MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// Why a socket could not be opened or the handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No connection: a bad address, nothing listening, a timeout.
    #[error("{0}")]
    Unreachable(String),
    /// The relay answered the upgrade with an HTTP error (a bad token: 401).
    #[error("HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// The relay broke the protocol during the handshake, or refused it.
    #[error("{0}")]
    Protocol(String),
    /// The socket closed or failed during the handshake.
    #[error("{0}")]
    Closed(String),
}

/// How long opening a socket may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a WebSocket to `url` with Nagle off: sync is a conversation of
/// small frames.
pub async fn open(url: &str, options: OpenOptions<'_>) -> Result<Socket, ConnectError> {
    let unreachable = |reason: String| ConnectError::Unreachable(crate::tls::explain(reason));
    let mut request = url
        .into_client_request()
        .map_err(|e| unreachable(e.to_string()))?;
    if let Some(token) = options.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| unreachable("the token is not a valid header".into()))?;
        request.headers_mut().insert("Authorization", value);
    }
    let config = options.max_message_bytes.map(|max| {
        let max = (max != usize::MAX).then_some(max);
        tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(max)
            .max_frame_size(max)
    });
    // `wss://` trusts the platform's roots and any added CA (`crate::tls`).
    let connector = (request.uri().scheme_str() == Some("wss"))
        .then(|| tokio_tungstenite::Connector::Rustls(crate::tls::client_config()));
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(request, config, true, connector);
    match tokio::time::timeout(OPEN_TIMEOUT, connecting).await {
        Err(_) => Err(unreachable(format!("no answer within {OPEN_TIMEOUT:?}"))),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(ConnectError::Refused {
                status: response.status().as_u16(),
                body,
            })
        }
        Ok(Err(e)) => Err(unreachable(e.to_string())),
    }
}

/// Runs the `join`/`peer` handshake as `us`; returns the relay's peer id.
/// Frames that are not binary, and messages this version drops, are
/// skipped; `patience` bounds the wait for each frame.
pub async fn handshake(
    socket: &mut Socket,
    us: PeerId,
    metadata: PeerMetadata,
    patience: Duration,
) -> Result<PeerId, ConnectError> {
    let mut handshake = Handshake::initiate(us, metadata, now());
    while let Some(message) = handshake.poll_transmit() {
        socket
            .send(frame(&message))
            .await
            .map_err(|e| ConnectError::Closed(e.to_string()))?;
    }
    loop {
        let next = tokio::time::timeout(patience, socket.next())
            .await
            .map_err(|_| {
                ConnectError::Protocol(format!("no answer to `join` within {patience:?}"))
            })?;
        let bytes = match next {
            None => return Err(ConnectError::Closed("closed during the handshake".into())),
            Some(Err(e)) => return Err(ConnectError::Closed(e.to_string())),
            Some(Ok(Frame::Binary(bytes))) => bytes,
            Some(Ok(_)) => continue,
        };
        let message = match Message::decode(&bytes) {
            Ok(message) => message,
            Err(e) if e.is_droppable() => continue,
            Err(e) => return Err(ConnectError::Protocol(e.to_string())),
        };
        match handshake.handle_message(message) {
            Ok(Some(established)) => return Ok(established.remote),
            Ok(None) => {}
            Err(e) => return Err(ConnectError::Protocol(e.to_string())),
        }
    }
}

/// A protocol message as a binary frame.
pub fn frame(message: &Message) -> Frame {
    Frame::binary(message.encode())
}
