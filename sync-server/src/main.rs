//! `rapport-server`: the relay binary.

use clap::Parser;
use rapport_server::cli::ServeArgs;

#[derive(Debug, Parser)]
#[command(name = "rapport-server", version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

const EXAMPLES: &str = "Examples:
  rapport-server --listen 127.0.0.1:3030 --data /var/lib/rapport --public-url https://relay.example   # behind a TLS proxy
  rapport-server --listen 0.0.0.0:443 --data /var/lib/rapport --tls-cert fullchain.pem --tls-key privkey.pem --public-url https://relay.example
  rapport-server --listen 127.0.0.1:3030 --data ./relay --open   # development only

Clients connect to ws(s)://HOST:PORT/sync with a signed token (Authorization:
Bearer, or ?token=) whose audience is the relay id, printed at start and
served on GET /api/info. SIGHUP reads the TLS certificate again; SIGINT or
SIGTERM stops the relay gracefully.";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.serve.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rapport-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
