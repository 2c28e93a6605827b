//! `rapport`: the command line of rapport.
//!
//! This file holds the argument types and the dispatch; each command lives
//! in its own module and calls the library crates.

use clap::{Parser, Subcommand};

mod demo;

/// rapport: local-first collaboration for client work.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show rapport at work: two replicas edit one requirements document
    /// offline, then sync and both keep every edit.
    ///
    /// Everything runs in this process, in memory; nothing is installed or
    /// written to disk.
    ///
    /// Example:
    ///   rapport demo
    Demo,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => demo::run(),
    }
}
