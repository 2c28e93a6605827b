//! WebSocket frames as the connection driver sees them. axum's types stay
//! in this file: the driver works on any stream and sink of these, so tests
//! can drive it without sockets.

use axum::extract::ws::{self, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

/// A frame from the peer.
#[derive(Debug)]
pub(crate) enum Incoming {
    Binary(Bytes),
    Text,
    /// Pings and pongs: only proof of life.
    Control,
    Close,
}

/// A frame to the peer.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Binary(Bytes),
    Ping,
    Close { code: u16, reason: String },
}

/// Why the transport failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("message too large: {0}")]
    TooLarge(String),
    #[error("{0}")]
    Other(String),
}

/// axum's WebSocket as a stream of [`Incoming`] and a sink of [`Outgoing`].
pub(crate) fn adapt(
    socket: WebSocket,
) -> impl Stream<Item = Result<Incoming, TransportError>>
+ Sink<Outgoing, Error = TransportError>
+ Send
+ Unpin {
    socket
        .map(|item| match item {
            Ok(ws::Message::Binary(bytes)) => Ok(Incoming::Binary(bytes)),
            Ok(ws::Message::Text(_)) => Ok(Incoming::Text),
            Ok(ws::Message::Ping(_) | ws::Message::Pong(_)) => Ok(Incoming::Control),
            Ok(ws::Message::Close(_)) => Ok(Incoming::Close),
            Err(e) => Err(classify(e)),
        })
        .sink_map_err(classify)
        .with(|out: Outgoing| {
            futures_util::future::ready(Ok::<_, TransportError>(match out {
                Outgoing::Binary(bytes) => ws::Message::Binary(bytes),
                Outgoing::Ping => ws::Message::Ping(Bytes::new()),
                Outgoing::Close { code, reason } => ws::Message::Close(Some(ws::CloseFrame {
                    code,
                    reason: reason.into(),
                })),
            }))
        })
}

fn classify(error: axum::Error) -> TransportError {
    let text = error.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        TransportError::TooLarge(text)
    } else {
        TransportError::Other(text)
    }
}
