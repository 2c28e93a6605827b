//! A raw WebSocket to the relay, for frames no well-behaved peer sends:
//! join by hand, send one message, read until something arrives.

use anyhow::{Result, ensure};
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::wire::Message;
use tokio_tungstenite::tungstenite;

use super::{ANSWER_BOUND, frames};
use crate::peer::{key, mint_token, open_socket};
use crate::relay::TestRelay;

pub use rapport_client::transport::Socket;

/// A connection that has joined as `name`, with the relay's `peer` read.
pub async fn joined(relay: &TestRelay, signer: u8, name: &str) -> Result<Socket> {
    let token = mint_token(&key(signer), &relay.relay_id);
    let mut socket = open_socket(&relay.url(), Some(&token)).await?;
    join(&mut socket, name).await?;
    Ok(socket)
}

/// Joins an open connection as `name` and reads the relay's `peer`.
pub async fn join(socket: &mut Socket, name: &str) -> Result<()> {
    send(socket, frames::join(name)).await?;
    let answered = read_until(socket, |m| matches!(m, Message::Peer(_)))
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(answered, "join refused");
    Ok(())
}

/// `message` as one binary WebSocket frame.
pub fn binary(message: &Message) -> tungstenite::Message {
    tungstenite::Message::binary(message.encode())
}

/// Sends `message` as one binary frame.
pub async fn send(socket: &mut Socket, message: Message) -> Result<()> {
    Ok(socket.send(binary(&message)).await?)
}

/// Reads until `done` says so, the relay closes, or [`ANSWER_BOUND`] passes.
/// Returns whether the connection is still open.
pub async fn read_until(
    socket: &mut Socket,
    mut done: impl FnMut(&Message) -> bool,
) -> Result<bool, &'static str> {
    let deadline = tokio::time::Instant::now() + ANSWER_BOUND;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Err("the relay neither answered nor closed"),
            Ok(None | Some(Err(_)) | Some(Ok(tungstenite::Message::Close(_)))) => {
                return Ok(false);
            }
            Ok(Some(Ok(tungstenite::Message::Binary(bytes)))) => match Message::decode(&bytes) {
                Ok(Message::Error(_)) => {}
                Ok(message) if done(&message) => return Ok(true),
                Ok(_) => {}
                Err(_) => return Err("the relay sent an undecodable frame"),
            },
            Ok(Some(Ok(_))) => {}
        }
    }
}
