//! `rapport/documents` in pages: a connection that reads nothing has at
//! most about a page of the list queued in the relay, one that reads gets
//! every id once, and the Rust client calls a sync complete only after the
//! last page.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use rapport_client::api::RelayApi;
use rapport_client::identity::Identity;
use rapport_client::{RelayConfig, Repo};
use rapport_protocol::ids::{DocumentId, PeerId};
use rapport_protocol::wire::{DocUnavailable, Documents, Message, Peer};
use rapport_tests::hostile::{frames, socket::binary};
use rapport_tests::peer::{PATIENCE, key, mint_token, open_socket};
use rapport_tests::relay::{TempDir, TestRelay};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Documents listed in the workspace: about 580 KB of ids, ten pages.
const LISTED: u32 = 20_000;

/// Documents listed by one API call (its body is at most 2 MB).
const LISTED_AT_ONCE: usize = 20_000;

/// What the relay may hold queued for the two connections together: a
/// page (2,000 ids, about 60 KB) each, and room for the `peer` answers.
const QUEUED_AT_MOST: u64 = 150_000;

/// A connection that joins as `name` and never reads, on a socket with
/// small buffers and segments: on loopback the kernel would otherwise take
/// in megabytes for it, and the relay would have nothing left to queue.
async fn silent(relay: &TestRelay, name: &str) -> Result<impl Sized> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_recv_buffer_size(4096)?;
    socket.set_tcp_mss(1024)?;
    socket.connect(&relay.addr.into())?;
    socket.set_nonblocking(true)?;
    let stream = tokio::net::TcpStream::from_std(socket.into())?;
    let mut request = relay.url().into_client_request()?;
    let token = mint_token(&key(1), &relay.relay_id);
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await?;
    socket.send(binary(&frames::join(name))).await?;
    Ok(socket)
}

/// A connection as `name`, for `owner`, after its `join` (its answer left
/// unread).
async fn joined(relay: &TestRelay, name: &str) -> Result<Socket> {
    let token = mint_token(&key(1), &relay.relay_id);
    let mut socket = open_socket(&relay.url(), Some(&token)).await?;
    socket.send(binary(&frames::join(name))).await?;
    Ok(socket)
}

/// Reads pages of the list until the last; returns them.
async fn read_pages(socket: &mut Socket) -> Result<Vec<Documents>> {
    let mut pages = Vec::new();
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .context("no last page")?;
        let bytes = match frame {
            Some(Ok(tungstenite::Message::Binary(bytes))) => bytes,
            Some(Ok(_)) => continue,
            other => bail!("the relay closed the connection: {other:?}"),
        };
        if let Message::Documents(page) = Message::decode(&bytes)? {
            let last = !page.more;
            pages.push(page);
            if last {
                return Ok(pages);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_reads_nothing_has_about_a_page_of_the_list_queued() -> Result<()> {
    let dir = TempDir::new("document-pages");
    let relay = TestRelay::start(dir.path()).await?;
    let ids: Vec<DocumentId> = (0..LISTED)
        .map(|n| {
            let mut bytes = [7; 16];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            DocumentId::from_bytes(bytes)
        })
        .collect();
    let mut chunks = ids.chunks(LISTED_AT_ONCE);
    let first = chunks.next().context("no documents")?;
    let workspace = relay.share(&key(1), &[], first).await?;
    let owner = RelayApi::new(&relay.client_config(), Identity::in_memory(key(1)))?;
    for chunk in chunks {
        let listed: Vec<(DocumentId, Option<DocumentId>)> =
            chunk.iter().map(|id| (*id, None)).collect();
        tokio::task::block_in_place(|| owner.add_documents(&workspace, &listed))?;
    }

    let _silent = silent(&relay, "silent").await?;
    let mut reader = joined(&relay, "reader").await?;
    let pages = read_pages(&mut reader).await?;

    ensure!(pages.len() > 1, "the list came in one message");
    let listed: Vec<DocumentId> = pages.iter().flat_map(|p| p.documents.clone()).collect();
    let unique: BTreeSet<DocumentId> = listed.iter().copied().collect();
    assert_eq!(listed.len(), unique.len(), "an id came twice");
    // The workspace lists its automations document too.
    assert!(ids.iter().all(|id| unique.contains(id)), "an id is missing");
    for page in &pages[..pages.len() - 1] {
        assert!(page.more, "a page before the last without `more`");
    }

    // The silent connection's socket buffers are full by now, and the
    // relay waits for it to read before it queues another page.
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(relay.metric("rapport_send_queue_bytes").await?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        most <= QUEUED_AT_MOST,
        "{most} bytes queued for a connection that reads nothing"
    );
    assert!(
        most > 0,
        "the silent connection's sockets took in the whole list"
    );
    Ok(())
}

/// A relay that answers `join`, sends one page of the list at once and the
/// last one `delay` later, and answers every document as unavailable.
async fn paging_relay(first: DocumentId, last: DocumentId, delay: Duration) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/sync", listener.local_addr()?);
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let us: PeerId = "relay".parse().expect("a valid peer id");
        let send = |message: Message| tungstenite::Message::binary(message.encode());
        let page = |them: &PeerId, id, more| {
            send(Message::Documents(Documents {
                sender_id: us.clone(),
                target_id: them.clone(),
                documents: vec![id],
                more,
            }))
        };
        let mut last_due = None;
        let mut them: Option<PeerId> = None;
        loop {
            let due = last_due.unwrap_or_else(|| tokio::time::Instant::now() + PATIENCE);
            let frame = tokio::select! {
                frame = socket.next() => frame,
                () = tokio::time::sleep_until(due), if last_due.is_some() => {
                    let them = them.clone().expect("joined before the first page");
                    let _ = socket.send(page(&them, last, false)).await;
                    last_due = None;
                    continue;
                }
            };
            let Some(Ok(tungstenite::Message::Binary(bytes))) = frame else {
                return;
            };
            match Message::decode(&bytes) {
                Ok(Message::Join(join)) => {
                    let peer = send(Message::Peer(Peer {
                        sender_id: us.clone(),
                        peer_metadata: None,
                        selected_protocol_version: "1".into(),
                        target_id: join.sender_id.clone(),
                    }));
                    let _ = socket.send(peer).await;
                    let _ = socket.send(page(&join.sender_id, first, true)).await;
                    last_due = Some(tokio::time::Instant::now() + delay);
                    them = Some(join.sender_id);
                }
                Ok(Message::Request(m) | Message::Sync(m)) => {
                    let unavailable = send(Message::DocUnavailable(DocUnavailable {
                        sender_id: us.clone(),
                        target_id: m.sender_id,
                        document_id: m.document_id,
                    }));
                    let _ = socket.send(unavailable).await;
                }
                _ => {}
            }
        }
    });
    Ok(url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_complete_only_after_the_last_page() -> Result<()> {
    let first = DocumentId::from_bytes([1; 16]);
    let last = DocumentId::from_bytes([2; 16]);
    let delay = Duration::from_millis(600);
    let url = paging_relay(first, last, delay).await?;
    let home = TempDir::new("document-pages-client");
    let repo = tokio::task::block_in_place(|| Repo::init(home.path()))?;
    let relay = RelayConfig {
        url,
        audience: Some("relay".into()),
    };
    let started = Instant::now();
    repo.sync_once(&relay, PATIENCE, |_| {}).await?;
    assert!(
        started.elapsed() >= delay,
        "the sync ended {:?} after it started, before the last page",
        started.elapsed()
    );
    let known = tokio::task::block_in_place(|| repo.document_ids())?;
    assert!(known.contains(&first) && known.contains(&last), "{known:?}");
    Ok(())
}
