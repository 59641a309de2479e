//! `image-chat-server`: parses the command line, sets up logging, runs the server until SIGINT
//! or SIGTERM, then shuts down gracefully (clients are told to reconnect).

use std::process::ExitCode;

use clap::Parser;
use image_chat_server::config::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let server = match config::start(&args).await {
                Ok(server) => server,
                Err(err) => {
                    eprintln!("image-chat-server: {err}");
                    return ExitCode::FAILURE;
                }
            };
            // The one line on stdout: scripts and tests read the bound address from it.
            println!(
                "image-chat-server listening on http://{}",
                server.local_addr()
            );
            wait_for_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
