//! `rapport-server`: the relay binary.

use clap::Parser;
use rapport_server::cli::ServeArgs;

#[derive(Debug, Parser)]
#[command(name = "rapport-server", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

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
