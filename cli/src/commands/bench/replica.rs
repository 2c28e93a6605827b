//! `rapport bench replica`: the local side measured (the first scenario of
//! `rapport bench`; the relay scenarios come later).

use std::time::Instant;

use anyhow::Result;
use rapport_client::Repo;
use rapport_client::model::{Customer, Relationship, Stage};
use serde_json::json;

use crate::context::Context;

/// Creates `records` customer records in a fresh replica (each one a
/// durable write), then lists them from the index several times.
pub(crate) fn replica(ctx: &Context, records: usize, rounds: usize) -> Result<()> {
    let folder = std::env::temp_dir().join(format!("rapport-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let result = run(ctx, &folder, records, rounds.max(1));
    let _ = std::fs::remove_dir_all(&folder);
    result
}

fn run(ctx: &Context, folder: &std::path::Path, records: usize, rounds: usize) -> Result<()> {
    let repo = Repo::init(folder)?;
    let started = Instant::now();
    for n in 0..records {
        repo.create(|tx| {
            let mut customer = Customer::new(format!("Customer {n}"), Relationship::Customer);
            customer.stage = if n % 3 == 0 {
                Stage::Proposal
            } else {
                Stage::Lead
            };
            customer.score = (n % 100) as i64;
            customer.write(tx)
        })?;
        if !ctx.json && n % 500 == 499 {
            eprint!("\rcreated {}/{records}", n + 1);
        }
    }
    if !ctx.json {
        eprintln!();
    }
    let create = started.elapsed();
    let mut listings = Vec::with_capacity(rounds);
    let mut listed = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let customers: Vec<_> = repo
            .index()?
            .into_iter()
            .filter(|(_, e)| e.kind.as_str() == "customer")
            .collect();
        listings.push(started.elapsed());
        listed = customers.len();
    }
    listings.sort();
    let median = listings[listings.len() / 2];
    let per_record = create / u32::try_from(records.max(1)).unwrap_or(u32::MAX);
    ctx.print(
        format!(
            "replica: {records} customer records created in {:.2?} ({per_record:.2?} each, every one durable)\n\
             list from the index: {listed} records, median {median:.2?} over {rounds} runs (min {:.2?}, max {:.2?})\n\
             machine: {} cores, {}",
            create,
            listings[0],
            listings[listings.len() - 1],
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::env::consts::ARCH,
        ),
        json!({
            "scenario": "replica",
            "records": records,
            "create_seconds": create.as_secs_f64(),
            "create_per_record_seconds": per_record.as_secs_f64(),
            "list_records": listed,
            "list_median_seconds": median.as_secs_f64(),
            "list_min_seconds": listings[0].as_secs_f64(),
            "list_max_seconds": listings[listings.len() - 1].as_secs_f64(),
            "rounds": rounds,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        }),
    );
    Ok(())
}
