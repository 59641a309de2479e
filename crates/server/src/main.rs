//! `image-chat-server`: parses the command line, sets up logging, runs the server until SIGINT
//! or SIGTERM, then shuts down gracefully (clients are told to reconnect).

use std::process::ExitCode;

use clap::Parser;
use image_chat_server::admin;
use image_chat_server::config::{self, Cli, Command, SignArgs, TenantCommand};
use image_chat_server::secret::Secret;
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
            let scheme = if server.is_tls() { "https" } else { "http" };
            println!(
                "image-chat-server listening on {scheme}://{}",
                server.local_addr()
            );
            wait_for_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
            ExitCode::SUCCESS
        }
        Command::Tenant(TenantCommand::New {
            id,
            origins,
            anonymous,
        }) => report(admin::new_tenant(&id, &origins, anonymous)),
        Command::Sign(args) => report(sign(&args)),
    }
}

fn sign(args: &SignArgs) -> Result<String, admin::AdminError> {
    // The signature names the tenant and the server's audience: both are needed.
    let tenant = args.tenant.as_deref().ok_or_else(|| {
        admin::AdminError::NoSecret("give --tenant ID (the signature covers it)".into())
    })?;
    let secret = match (&args.secret, &args.tenants) {
        (Some(secret), _) => Secret::new(secret.clone()),
        (None, Some(file)) => admin::secret_from_file(file, tenant)?,
        _ => {
            return Err(admin::AdminError::NoSecret(
                "give --secret (or IMAGE_CHAT_SSO_SECRET), or --tenants FILE".into(),
            ));
        }
    };
    let to = image_chat_server::sso::Audience {
        tenant,
        audience: &args.audience,
    };
    let timestamp = args.timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    });
    admin::sign(&secret, to, &args.user, timestamp)
}

/// Prints a subcommand's output on stdout, or its error on stderr.
fn report(result: Result<String, admin::AdminError>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("image-chat-server: {err}");
            ExitCode::FAILURE
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
