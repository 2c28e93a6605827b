//! A relay in a process of its own, for tests that kill it with SIGKILL.
//!
//! `relay-child DATA ADDR [COMPACT_AFTER_CHANGES] [LIMIT=N]... [open]
//! [cluster=URL] [stall=FILE]` opens the relay on the data folder DATA with
//! tokens required (as `TestRelay::start` does; `open` for none), the named
//! limits changed (`max_tokens_per_key`, `max_change_bytes`,
//! `max_frame_bytes`), in the cluster on the NATS server at URL if given,
//! its storage holding every write back while FILE exists if given,
//! listens on ADDR (`127.0.0.1:0` for any free port), prints
//! `LISTENING <address> <relay id>` on stdout, and serves until its stdin
//! reaches end of file; then it stops gracefully and exits 0. A test ends it
//! either way: SIGKILL for a crash, closing stdin for a clean stop.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use rapport_server::{Config, Server};
use rapport_tests::faults::Faults;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: relay-child DATA ADDR [COMPACT_AFTER_CHANGES] [LIMIT=N]... [open] [cluster=URL] [stall=FILE]";
    let data = PathBuf::from(args.next().context(usage)?);
    let addr: SocketAddr = args.next().context(usage)?.parse()?;
    let mut config = Config::new(data);
    for arg in args {
        if arg == "open" {
            config.auth = rapport_server::AuthMode::Open;
            continue;
        }
        if let Some(file) = arg.strip_prefix("stall=") {
            let faults = Faults::new();
            faults.stall_while_exists(PathBuf::from(file));
            config.storage = faults.backend();
            continue;
        }
        if let Some(url) = arg.strip_prefix("cluster=") {
            config.cluster = vec![url.to_owned()];
            continue;
        }
        let Some((name, n)) = arg.split_once('=') else {
            config.compact_after_changes = arg.parse().context(usage)?;
            continue;
        };
        let n: usize = n.parse().context(usage)?;
        let limits = &mut config.limits;
        match name {
            "max_tokens_per_key" => limits.max_tokens_per_key = n,
            "max_change_bytes" => limits.max_change_bytes = n,
            "max_frame_bytes" => limits.max_frame_bytes = n,
            _ => anyhow::bail!("unknown limit {name}; {usage}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = Server::open(config)?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "LISTENING {bound} {}", server.relay_id())?;
            out.flush()?;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // A plain thread: a blocking read of stdin must not hold up the
        // runtime's shutdown.
        std::thread::spawn(move || {
            let _ = std::io::stdin().lock().read_to_end(&mut Vec::new());
            let _ = stop.send(());
        });
        server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await?;
        anyhow::Ok(())
    })
}
