//! `rapport bench idle`: N idle WebSocket connections (each past the
//! `join`/`peer` handshake, answering pings), then one echo-timed
//! connection; and the same against a bare tokio-tungstenite echo server
//! (`rapport bench echo-server`, started here as a child process) in the
//! same run, for the ratio.
//!
//! "Echo" against an automerge-repo server: a `request` for a document
//! nobody has (a fresh random id each time), answered by
//! `doc-unavailable`, the smallest round trip both servers make through
//! their document path. Against the bare echo server: a binary frame of
//! the same size, echoed. Memory per connection is the server's resident
//! memory after opening the N connections minus before, divided by N.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::Automerge;
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::{DocumentId, PeerId};
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::wire::Message;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite;

use super::auth::Auth;
use super::machine::Watched;
use super::peer::{self, Socket};
use super::progress::{Progress, bar};
use super::report::{Report, Unit};
use super::stats::Summary;
use super::{Target, quiesce};

#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub target: Target,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Echo round trips to time.
    #[arg(long, default_value_t = 2_000)]
    echoes: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Skip the bare tokio-tungstenite echo server.
    #[arg(long)]
    no_baseline: bool,
}

pub async fn run(args: &IdleArgs) -> Result<Report> {
    let mut progress = Progress::new();
    let limit = raise_fd_limit(args.connections)?;
    let mut report = args.target.report(
        "idle",
        json!({ "connections": args.connections, "echoes": args.echoes }),
    );
    let case = format!("{} connections", args.connections);
    let server = Server {
        url: args.target.relay.clone(),
        handshake: true,
        watched: args.target.watched(),
        auth: args.target.auth().await?,
    };
    let ours = measure(&server, args, &mut progress).await?;
    ours.add_to(&mut report, &case, "");
    if !args.no_baseline {
        progress.step("starting the bare tokio-tungstenite echo server");
        let mut child = EchoChild::start().await?;
        let bare = Server {
            url: format!("ws://127.0.0.1:{}", child.port),
            handshake: false,
            watched: Some(Watched::new(child.pid)),
            auth: None,
        };
        let measured = measure(&bare, args, &mut progress).await;
        child.stop().await;
        let bare = measured?;
        bare.add_to(&mut report, &case, " (bare echo server)");
        report.single(
            &case,
            "echo p50 / bare echo p50",
            Unit::Ratio,
            ours.echo.p50.zip(bare.echo.p50).map(|(a, b)| a / b),
        );
    }
    report.note(format!(
        "idle: echo = a `request` for an unknown document answered by `doc-unavailable` (bare \
         server: a frame of the same size echoed), one at a time while the idle connections stay \
         open; memory per connection = server RSS delta / connections; open files limit {limit}"
    ));
    Ok(report)
}

/// Raises the soft limit on open files to the hard one; returns it.
fn raise_fd_limit(needed: usize) -> Result<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if limit > 0 && limit < needed as u64 + 100 {
        bail!(
            "{needed} connections need about as many open files, but the limit is {limit}; \
             raise it (ulimit -n) or open fewer (--connections)"
        );
    }
    Ok(limit)
}

/// A server to measure.
struct Server {
    url: String,
    /// Speaks automerge-repo (handshake, request/doc-unavailable) rather
    /// than plain echo.
    handshake: bool,
    watched: Option<Watched>,
    /// Tokens for a relay that wants them.
    auth: Option<Arc<Auth>>,
}

struct Measured {
    per_connection: Option<f64>,
    rss_idle: Option<u64>,
    opened_in: Duration,
    echo: Summary,
}

impl Measured {
    fn add_to(&self, report: &mut Report, case: &str, suffix: &str) {
        report.single(
            case,
            &format!("memory per idle connection{suffix}"),
            Unit::Bytes,
            self.per_connection,
        );
        report.single(
            case,
            &format!("server resident memory with them open{suffix}"),
            Unit::Bytes,
            self.rss_idle.map(|b| b as f64),
        );
        report.single(
            case,
            &format!("time to open them{suffix}"),
            Unit::Seconds,
            Some(self.opened_in.as_secs_f64()),
        );
        report.samples(case, &format!("echo{suffix}"), self.echo);
    }
}

async fn measure(server: &Server, args: &IdleArgs, progress: &mut Progress) -> Result<Measured> {
    quiesce(server.watched, Duration::from_secs(30)).await;
    let before = server.watched.and_then(|w| w.sample());
    progress.step(format!(
        "opening {} idle connections to {}",
        args.connections, server.url
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut opening = tokio::task::JoinSet::new();
    for n in 0..args.connections {
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let url = server.url.clone();
        let handshake = server.handshake;
        let auth = server.auth.clone();
        let stop = stop_rx.clone();
        opening.spawn(async move {
            let socket = open(&url, handshake, n, auth.as_ref()).await;
            drop(permit);
            let socket = socket?;
            Ok::<_, anyhow::Error>(tokio::spawn(idle(socket, stop)))
        });
        if n % 100 == 0 {
            progress.update(format!(
                "{} {n}/{} open",
                bar(n as f64, args.connections as f64),
                args.connections
            ));
        }
    }
    let mut idlers = Vec::with_capacity(args.connections);
    while let Some(opened) = opening.join_next().await {
        idlers.push(opened??);
    }
    let opened_in = started.elapsed();
    progress.clear();
    // Let the server settle (buffers allocated lazily, a first ping).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with = server.watched.and_then(|w| w.sample());
    progress.step(format!("timing {} echoes", args.echoes));
    let echo = echo(server, args.echoes, progress).await;
    stop_tx.send_replace(true);
    let mut dropped = 0;
    for idler in idlers {
        if let Ok(Ok(false)) = tokio::time::timeout(Duration::from_secs(5), idler).await {
            dropped += 1;
        }
    }
    let echo = echo?;
    if dropped > 0 {
        bail!("{dropped} idle connections were closed by the server before the end");
    }
    Ok(Measured {
        per_connection: before.zip(with).map(|(b, a)| {
            (a.rss_bytes as f64 - b.rss_bytes as f64) / args.connections.max(1) as f64
        }),
        rss_idle: with.map(|w| w.rss_bytes),
        opened_in,
        echo,
    })
}

/// Opens one connection, with the handshake if the server speaks it.
async fn open(url: &str, handshake: bool, n: usize, auth: Option<&Arc<Auth>>) -> Result<Socket> {
    if handshake {
        Ok(join(url, peer::peer_name("idle", n), auth).await?.socket)
    } else {
        tokio::time::timeout(peer::CONNECT_TIMEOUT, peer::open(url))
            .await
            .map_err(|_| anyhow!("connecting to {url} timed out"))?
    }
}

/// A connection that has joined as `us`, with a token of a key of its own
/// (in no workspace) on a relay that wants them.
async fn join(url: &str, us: PeerId, auth: Option<&Arc<Auth>>) -> Result<peer::Link> {
    match auth {
        Some(auth) => auth.connect_stranger(url, us).await,
        None => peer::connect(url, us).await,
    }
}

/// Keeps a connection open, reading (so pings are answered) until told to
/// stop.
async fn idle(mut socket: Socket, mut stop: watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = socket.next() => match frame {
                Some(Ok(_)) => {
                    if socket.flush().await.is_err() { return false; }
                }
                _ => return false,
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
    true
}

/// Times `count` echoes, one at a time, on a fresh connection.
async fn echo(server: &Server, count: usize, progress: &mut Progress) -> Result<Summary> {
    let mut samples = Vec::with_capacity(count);
    if server.handshake {
        let mut link = join(
            &server.url,
            peer::peer_name("echo", 0),
            server.auth.as_ref(),
        )
        .await?;
        for n in 0..count {
            let id = DocumentId::from_bytes(rand::random());
            let mut sync = DocumentSync::new(id, link.us.clone(), Automerge::new());
            sync.handle_peer_connected(link.server.clone(), peer::now());
            let Some(Effect::Send(request)) = sync.poll_effect() else {
                bail!("an empty document made no request");
            };
            let started = Instant::now();
            link.socket.send(peer::frame(&request)).await?;
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(10), link.socket.next())
                    .await
                    .context("no doc-unavailable within 10 s")?
                    .ok_or_else(|| anyhow!("the server closed the echo connection"))??;
                if let tungstenite::Message::Binary(bytes) = frame
                    && let Ok(Message::DocUnavailable(m)) = Message::decode(&bytes)
                    && m.document_id == id
                {
                    break;
                }
            }
            samples.push(started.elapsed());
            if n % 100 == 0 {
                progress.update(format!("{} {n}/{count}", bar(n as f64, count as f64)));
            }
        }
        let _ = link.socket.close(None).await;
    } else {
        let mut socket = peer::open(&server.url).await?;
        // The size of a `request` for an empty document.
        let payload = vec![0x42_u8; 150];
        for n in 0..count {
            let started = Instant::now();
            socket
                .send(tungstenite::Message::binary(payload.clone()))
                .await?;
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
                    .await
                    .context("no echo within 10 s")?
                    .ok_or_else(|| anyhow!("the echo server closed the connection"))??;
                if frame.is_binary() {
                    break;
                }
            }
            samples.push(started.elapsed());
            if n % 100 == 0 {
                progress.update(format!("{} {n}/{count}", bar(n as f64, count as f64)));
            }
        }
        let _ = socket.close(None).await;
    }
    progress.clear();
    Ok(Summary::of_durations(&samples, 0))
}

/// `rapport bench echo-server` run as a child of this process.
struct EchoChild {
    child: tokio::process::Child,
    /// The child exits when this closes, should this process die first.
    _stdin: tokio::process::ChildStdin,
    pid: u32,
    port: u16,
}

impl EchoChild {
    async fn start() -> Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = tokio::process::Command::new(exe)
            .args(["bench", "echo-server", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting `rapport bench echo-server`")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the echo server exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the echo server did not start within 10 s")??
            .unwrap_or_default();
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow!("the echo server said {line:?}"))?;
        Ok(Self {
            child,
            _stdin: stdin,
            pid,
            port,
        })
    }

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// `rapport bench echo-server`: a bare tokio-tungstenite server echoing
/// every data frame, the floor the idle scenario compares with. Prints
/// `LISTENING <port>` when ready; exits when its standard input closes.
pub fn echo_server(listen: std::net::SocketAddr) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("LISTENING {}", listener.local_addr()?.port());
        tokio::spawn(async {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
            std::process::exit(0);
        });
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(frame)) = socket.next().await {
                    if (frame.is_binary() || frame.is_text()) && socket.send(frame).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}
