//! One task per connection: read frames, run the handshake, hand messages to
//! the relay, and write what the relay queues for this peer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use rapport_protocol::ids::{DocumentId, PeerId, StorageId};
use rapport_protocol::relay::ConnId;
use rapport_protocol::sync::Handshake;
use rapport_protocol::wire::{DecodeError, ErrorMessage, Message, PeerMetadata};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::access::Identity;
use crate::metrics::Metrics;
use crate::outbox::{Frames, Outbox, outbox};
use crate::relay::{Relay, Verdict, now};
use crate::transport::{Incoming, Outgoing, TransportError};

/// WebSocket close codes (RFC 6455).
const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const UNSUPPORTED_DATA: u16 = 1003;
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;

/// How a connection ends, and what the peer is told.
#[derive(Debug)]
struct Ending {
    code: u16,
    reason: String,
    /// An `error` message to send before the close frame.
    error: Option<String>,
}

impl Ending {
    fn quiet(code: u16, reason: &str) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            error: None,
        }
    }

    fn protocol(code: u16, error: String) -> Self {
        Self {
            code,
            reason: "protocol error".to_owned(),
            error: Some(error),
        }
    }
}

/// What the reader knows about its peer.
struct Session {
    conn: ConnId,
    identity: Identity,
    remote: PeerId,
    open_docs: BTreeSet<DocumentId>,
    /// Unknown message types already logged on this connection.
    logged_unknown: BTreeSet<String>,
}

/// Serves one upgraded connection until it closes.
///
/// Not an `async fn`: the transport is split here, before the future is
/// built, so that it lives once in the halves' shared allocation instead
/// of being held by the future as well. An idle connection is mostly this
/// future, so its size is what 10,000 idle peers cost.
pub(crate) fn drive<T>(
    relay: Arc<Relay>,
    transport: T,
    identity: Identity,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static
where
    T: Stream<Item = Result<Incoming, TransportError>>
        + Sink<Outgoing, Error = TransportError>
        + Send
        + Unpin
        + 'static,
{
    let conn = relay.next_conn_id();
    let span = info_span!("conn", id = conn.0, identity = %identity);
    let (sink, stream) = transport.split();
    serve(relay, conn, identity, sink, stream, shutdown).instrument(span)
}

async fn serve<K, S>(
    relay: Arc<Relay>,
    conn: ConnId,
    identity: Identity,
    sink: K,
    mut stream: S,
    mut shutdown: watch::Receiver<bool>,
) where
    K: Sink<Outgoing, Error = TransportError> + Send + Unpin + 'static,
    S: Stream<Item = Result<Incoming, TransportError>> + Unpin,
{
    let (tx, rx) = outbox(
        relay.config.limits.send_queue_frames,
        relay.config.limits.send_queue_bytes,
        Arc::clone(&relay.metrics.queued_bytes),
    );
    let (close_tx, close_rx) = oneshot::channel::<(u16, String)>();
    let writer = tokio::spawn(
        write_loop(sink, rx, close_rx, relay.config.limits.ping_interval).in_current_span(),
    );
    let kill = Arc::new(Notify::new());

    // Boxed, as is the ending below: each runs once, and the connection
    // should not carry their space while it waits for frames.
    let handshake = Box::pin(handshake(
        &relay,
        &mut stream,
        &tx,
        conn,
        identity,
        &mut shutdown,
    ));
    let (session, ending) = match handshake.await {
        Ok(remote) => {
            relay.register(
                conn,
                identity,
                remote.clone(),
                tx.clone(),
                Arc::clone(&kill),
            );
            relay.announce_documents(conn);
            if let Identity::Key(key) = identity {
                relay.announce_removed(conn, &key);
            }
            info!(peer = %remote, "connected");
            let mut s = Session {
                conn,
                identity,
                remote,
                open_docs: BTreeSet::new(),
                logged_unknown: BTreeSet::new(),
            };
            let ending = read_loop(&relay, &mut stream, &mut s, &kill, &mut shutdown).await;
            (Some(s), ending)
        }
        Err(ending) => (None, ending),
    };
    Box::pin(close(&relay, tx, close_tx, writer, session, ending)).await;
}

/// Tells the peer why the connection ends, leaves its documents, and lets
/// the writer finish.
async fn close(
    relay: &Relay,
    tx: Outbox,
    close_tx: oneshot::Sender<(u16, String)>,
    mut writer: tokio::task::JoinHandle<()>,
    session: Option<Session>,
    ending: Ending,
) {
    if let Some(error) = &ending.error {
        let message = Message::Error(ErrorMessage {
            sender_id: Some(relay.peer_id.clone()),
            message: error.clone(),
            target_id: session.as_ref().map(|s| s.remote.clone()),
        });
        let _ = tx.try_send(Bytes::from(message.encode()));
    }
    if let Some(s) = &session {
        relay.unregister(s.conn, &s.open_docs).await;
    }
    info!(code = ending.code, reason = %ending.error.as_deref().unwrap_or(&ending.reason), "closed");
    let _ = close_tx.send((ending.code, ending.reason));
    drop(tx);
    // A peer that stopped reading never lets the writer finish: stop it,
    // which closes the socket and frees what was queued for it.
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// Waits for `join` and answers `peer`; returns the peer's id.
async fn handshake<S>(
    relay: &Relay,
    stream: &mut S,
    tx: &Outbox,
    conn: ConnId,
    identity: Identity,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<PeerId, Ending>
where
    S: Stream<Item = Result<Incoming, TransportError>> + Unpin,
{
    let metadata = PeerMetadata {
        storage_id: relay.relay_id.parse::<StorageId>().ok(),
        is_ephemeral: false,
    };
    let mut handshake = Handshake::respond(relay.peer_id.clone(), metadata, now());
    let deadline =
        Instant::now() + Duration::from_millis(rapport_protocol::sync::HANDSHAKE_TIMEOUT_MILLIS);
    loop {
        let frame = tokio::select! {
            _ = shutdown.changed() => return Err(Ending::quiet(GOING_AWAY, "the relay is shutting down")),
            frame = timeout_at(deadline, stream.next()) => frame,
        };
        let frame = match frame {
            Err(_) => {
                return Err(Ending::protocol(
                    PROTOCOL_ERROR,
                    "no `join` within the handshake timeout".into(),
                ));
            }
            Ok(None) | Ok(Some(Ok(Incoming::Close))) => {
                return Err(Ending::quiet(NORMAL, "closed during handshake"));
            }
            Ok(Some(Err(e))) => return Err(transport_ending(e)),
            Ok(Some(Ok(Incoming::Control))) => continue,
            Ok(Some(Ok(Incoming::Text))) => {
                return Err(Ending::protocol(
                    UNSUPPORTED_DATA,
                    DecodeError::TextFrame.to_string(),
                ));
            }
            Ok(Some(Ok(Incoming::Binary(bytes)))) => bytes,
        };
        count_in(relay, &frame);
        let message = match Message::decode(&frame) {
            Ok(message) => message,
            Err(e) if e.is_droppable() => continue,
            Err(e) => return Err(Ending::protocol(PROTOCOL_ERROR, e.to_string())),
        };
        let result = handshake.handle_message(message);
        if let Some(reply) = handshake.poll_transmit() {
            let _ = tx.try_send(Bytes::from(reply.encode()));
        }
        match result {
            Ok(Some(established)) => {
                debug!(conn = conn.0, identity = %identity, "handshake done");
                return Ok(established.remote);
            }
            Ok(None) => continue,
            // The handshake already queued an `error` for the peer.
            Err(e) => return Err(Ending::quiet(PROTOCOL_ERROR, &e.to_string())),
        }
    }
}

async fn read_loop<S>(
    relay: &Relay,
    stream: &mut S,
    session: &mut Session,
    kill: &Notify,
    shutdown: &mut watch::Receiver<bool>,
) -> Ending
where
    S: Stream<Item = Result<Incoming, TransportError>> + Unpin,
{
    let idle = relay.config.limits.idle_timeout;
    loop {
        let deadline = Instant::now() + idle;
        let frame = tokio::select! {
            () = kill.notified() => return Ending::quiet(POLICY, "disconnected by the relay (access withdrawn, or too slow to read)"),
            _ = shutdown.changed() => return Ending::quiet(GOING_AWAY, "the relay is shutting down"),
            frame = timeout_at(deadline, stream.next()) => frame,
        };
        let bytes = match frame {
            Err(_) => return Ending::quiet(POLICY, "idle timeout"),
            Ok(None) | Ok(Some(Ok(Incoming::Close))) => {
                return Ending::quiet(NORMAL, "closed by the peer");
            }
            Ok(Some(Err(e))) => return transport_ending(e),
            Ok(Some(Ok(Incoming::Control))) => continue,
            Ok(Some(Ok(Incoming::Text))) => {
                return Ending::protocol(UNSUPPORTED_DATA, DecodeError::TextFrame.to_string());
            }
            Ok(Some(Ok(Incoming::Binary(bytes)))) => bytes,
        };
        count_in(relay, &bytes);
        // Boxed: the handling of a message is a large future, and an idle
        // connection should not carry its space while it waits.
        if let Some(ending) = Box::pin(handle_frame(relay, session, &bytes)).await {
            return ending;
        }
    }
}

async fn handle_frame(relay: &Relay, s: &mut Session, frame: &[u8]) -> Option<Ending> {
    let message = match Message::decode(frame) {
        Ok(message) => message,
        Err(DecodeError::UnknownType { message_type }) => {
            Metrics::add(&relay.metrics.dropped_messages, 1);
            if s.logged_unknown.len() < 16 && s.logged_unknown.insert(message_type.clone()) {
                info!(%message_type, "dropping messages of an unknown type");
            }
            return None;
        }
        Err(e) => {
            warn!(error = %e, "malformed message");
            return Some(Ending::protocol(PROTOCOL_ERROR, e.to_string()));
        }
    };
    if let Message::Ephemeral(m) = &message
        && m.sender_id != s.remote
    {
        // Stock automerge-repo peers pass on the presence messages they
        // received under their first sender's id; the relay already sent
        // those where they belong, so this copy is dropped, not fatal.
        Metrics::add(&relay.metrics.dropped_messages, 1);
        debug!(claimed = %m.sender_id, "dropped an ephemeral message another peer sent first");
        return None;
    }
    if let Some(sender) = message.sender_id()
        && *sender != s.remote
    {
        warn!(claimed = %sender, joined = %s.remote, "senderId differs from the joined peer id");
        return Some(Ending::protocol(
            PROTOCOL_ERROR,
            format!(
                "senderId `{sender}` is not the peer id `{}` this connection joined with",
                s.remote
            ),
        ));
    }
    if let Err(error) = relay.open_out_of_sight(s.identity, &message, &mut s.open_docs) {
        return Some(Ending::protocol(PROTOCOL_ERROR, error));
    }
    let verdict = match message {
        Message::Sync(m) => {
            relay
                .handle_sync(s.conn, &s.remote, s.identity, m, false, &mut s.open_docs)
                .await
        }
        Message::Request(m) => {
            relay
                .handle_sync(s.conn, &s.remote, s.identity, m, true, &mut s.open_docs)
                .await
        }
        Message::Ephemeral(m) => {
            relay.forward_ephemeral(s.conn, s.identity, m).await;
            Verdict::Continue
        }
        Message::Leave(_) => return Some(Ending::quiet(NORMAL, "the peer left")),
        Message::Error(e) => {
            info!(error = %e.message, "the peer reported an error");
            return Some(Ending::quiet(NORMAL, "the peer reported an error"));
        }
        Message::Join(_) => Verdict::ProtocolError("`join` may be sent only once".into()),
        Message::Peer(_) => {
            Verdict::ProtocolError("`peer` is the relay's message, not a client's".into())
        }
        other => {
            // doc-unavailable, remote heads gossip and our own notices are
            // not for the relay: drop them.
            debug!(message_type = other.type_name(), "ignored");
            Verdict::Continue
        }
    };
    match verdict {
        Verdict::Continue => None,
        Verdict::ProtocolError(text) => {
            warn!(error = %text, "protocol error");
            Some(Ending::protocol(PROTOCOL_ERROR, text))
        }
    }
}

fn count_in(relay: &Relay, frame: &[u8]) {
    Metrics::add(&relay.metrics.messages_in, 1);
    Metrics::add(&relay.metrics.bytes_in, frame.len() as u64);
}

fn transport_ending(error: TransportError) -> Ending {
    match error {
        TransportError::TooLarge(text) => Ending::protocol(
            TOO_BIG,
            format!("message too large ({text}); the relay's limit is set with --max-frame-bytes"),
        ),
        TransportError::Other(text) => Ending::quiet(NORMAL, &format!("transport error: {text}")),
    }
}

/// Writes queued frames and pings until told to close.
async fn write_loop<K>(
    mut sink: K,
    mut rx: Frames,
    mut close: oneshot::Receiver<(u16, String)>,
    ping_interval: Duration,
) where
    K: Sink<Outgoing, Error = TransportError> + Unpin,
{
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    loop {
        tokio::select! {
            biased;
            frame = rx.recv() => match frame {
                Some(frame) => {
                    if sink.send(Outgoing::Binary(frame)).await.is_err() {
                        return;
                    }
                    rx.written();
                }
                None => break,
            },
            closing = &mut close => {
                // Drain what is queued (the `error` message among it) first.
                while let Some(frame) = rx.try_recv() {
                    if sink.send(Outgoing::Binary(frame)).await.is_err() {
                        return;
                    }
                    rx.written();
                }
                if let Ok((code, reason)) = closing
                    && sink.send(Outgoing::Close { code, reason }).await.is_ok()
                {
                    let _ = sink.close().await;
                }
                return;
            }
            _ = ping.tick() => {
                if sink.send(Outgoing::Ping).await.is_err() {
                    return;
                }
            }
        }
    }
    if let Ok((code, reason)) = close.await
        && sink.send(Outgoing::Close { code, reason }).await.is_ok()
    {
        let _ = sink.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;
    use crate::config::Config;

    /// A transport that never delivers a frame and accepts every one.
    struct Silent;

    impl Stream for Silent {
        type Item = Result<Incoming, TransportError>;

        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    impl Sink<Outgoing> for Silent {
        type Error = TransportError;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(self: Pin<&mut Self>, _: Outgoing) -> Result<(), Self::Error> {
            Ok(())
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    /// An idle connection is mostly its future: 10,000 of them cost 10,000
    /// of these. It was 3,288 bytes when it held the transport unsplit and
    /// the handshake inline; the bound leaves room for compiler changes.
    #[tokio::test]
    async fn a_connection_future_stays_small() {
        let dir = std::env::temp_dir().join(format!("rapport-conn-size-{}", std::process::id()));
        let relay = Arc::new(Relay::open(Config::new(&dir), None).unwrap());
        let (_stop, shutdown) = watch::channel(false);
        let connection = drive(relay, Silent, Identity::Anonymous, shutdown);
        let size = std::mem::size_of_val(&connection);
        assert!(size <= 1_536, "the connection future is {size} bytes");
        drop(connection);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
