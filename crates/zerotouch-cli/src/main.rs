//! The `zerotouch` binary: parses the command line and runs it (see the `zerotouch_cli`
//! library).

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    // Logs go to standard error at the level in ZEROTOUCH_LOG (error, warn, info, debug);
    // off by default so output stays what scripts read.
    let level = std::env::var("ZEROTOUCH_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::OFF);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    match zerotouch_cli::run(zerotouch_cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zerotouch: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
