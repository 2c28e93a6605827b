//! WebSocket frames as the connection driver sees them. axum's types stay
//! in this file: the driver works on any stream and sink of these, so tests
//! can drive it without sockets.

use axum::extract::ws::{self, WebSocket};
use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};

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
    Adapter(socket)
}

/// The adapter behind [`adapt`]. Written out rather than built from
/// `SinkExt` combinators: those panic when polled again after an error, and
/// a peer that vanishes mid-write must never panic the relay.
struct Adapter(WebSocket);

impl Stream for Adapter {
    type Item = Result<Incoming, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next_unpin(cx).map(|item| {
            item.map(|result| match result {
                Ok(ws::Message::Binary(bytes)) => Ok(Incoming::Binary(bytes)),
                Ok(ws::Message::Text(_)) => Ok(Incoming::Text),
                Ok(ws::Message::Ping(_) | ws::Message::Pong(_)) => Ok(Incoming::Control),
                Ok(ws::Message::Close(_)) => Ok(Incoming::Close),
                Err(e) => Err(classify(e)),
            })
        })
    }
}

impl Sink<Outgoing> for Adapter {
    type Error = TransportError;

    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        self.0.poll_ready_unpin(cx).map_err(classify)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), TransportError> {
        let message = match item {
            Outgoing::Binary(bytes) => ws::Message::Binary(bytes),
            Outgoing::Ping => ws::Message::Ping(Bytes::new()),
            Outgoing::Close { code, reason } => ws::Message::Close(Some(ws::CloseFrame {
                code,
                reason: reason.into(),
            })),
        };
        self.0.start_send_unpin(message).map_err(classify)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        self.0.poll_flush_unpin(cx).map_err(classify)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        self.0.poll_close_unpin(cx).map_err(classify)
    }
}

fn classify(error: axum::Error) -> TransportError {
    let text = error.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        TransportError::TooLarge(text)
    } else {
        TransportError::Other(text)
    }
}
