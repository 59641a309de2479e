//! `image-chat-server`: parses the command line, sets up logging, runs the server until SIGINT
//! or SIGTERM, then shuts down gracefully (clients are told to reconnect). SIGHUP reloads the
//! tenants file and the TLS certificate.

use std::process::ExitCode;

use clap::Parser;
use image_chat_server::admin;
use image_chat_server::config::{self, Cli, Command, LogFormat, SignArgs, TenantCommand};
use image_chat_server::reload::Reload;
use image_chat_server::secret::Secret;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve(args) => {
            let (server, reload) = match config::start_reloadable(&args).await {
                Ok(started) => started,
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
            wait_for_signal(&reload).await;
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

/// Logs to stderr (stdout carries the bound address and subcommands' output), filtered by
/// `RUST_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
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

/// Waits for SIGINT or SIGTERM (shutdown); SIGHUP meanwhile reloads the tenants file and the
/// TLS certificate (see `reload`), as many times as it comes.
async fn wait_for_signal(reload: &Reload) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut hup) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(hup)) => (term, hup),
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(%err, "cannot listen for SIGTERM / SIGHUP");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => return,
                _ = term.recv() => return,
                _ = hup.recv() => match reload.run() {
                    Ok(done) => tracing::info!(
                        tenants = done.tenants,
                        certificate = done.certificate,
                        "configuration reloaded"
                    ),
                    Err(err) => tracing::error!(%err, "reload failed; the previous configuration stays"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reload;
        let _ = ctrl_c.await;
    }
}
