use std::io::{IsTerminal, Write};

use berth::config::{Config, LogFormat, Overrides};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth",
    version = berth::VERSION,
    about = "A container registry that speaks Amazon ECR's API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve {
        #[command(flatten)]
        overrides: Overrides,
        /// Print the effective configuration as TOML (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Remove expired uploads and blobs no image uses (past the grace period) once, and exit.
    Gc {
        #[command(flatten)]
        overrides: Overrides,
        /// Report what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Lifecycle policies.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Re-hash every blob and check the metadata against the blob store; exit 1 on problems.
    Fsck(Overrides),
    /// Print the audit trail's records (JSON lines, oldest first) that match the filters.
    Audit {
        #[command(flatten)]
        overrides: Overrides,
        #[command(flatten)]
        filter: berth::audit::Filter,
    },
    #[command(flatten)]
    Client(client::Command),
}

#[derive(Subcommand)]
enum LifecycleCommand {
    /// Apply every repository's lifecycle policy once, and exit.
    Run {
        #[command(flatten)]
        overrides: Overrides,
        /// Report what would be expired without expiring anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Logs go to stderr, filtered by `BERTH_LOG` (default `info`), as text or JSON objects.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line, the event's fields at its top level beside the span's.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let overrides = match Cli::parse().command {
        Command::Client(c) => return client::run(c).await,
        Command::Serve {
            overrides,
            print_config: true,
        } => {
            print!("{}", Config::load(&overrides)?.to_toml());
            return Ok(());
        }
        Command::Serve { overrides, .. } => overrides,
        Command::Gc { overrides, dry_run } => {
            let cfg = Config::load(&overrides)?;
            init_logging(cfg.log_format);
            let app = berth::App::build(&cfg).await?;
            let report = app.collect_garbage(dry_run).await?;
            println!(
                "{}{report:#?}",
                if dry_run {
                    "dry run, nothing removed: "
                } else {
                    ""
                }
            );
            return Ok(());
        }
        Command::Lifecycle(LifecycleCommand::Run { overrides, dry_run }) => {
            let cfg = Config::load(&overrides)?;
            init_logging(cfg.log_format);
            let app = berth::App::build(&cfg).await?;
            let report = app.run_lifecycle(dry_run).await?;
            println!(
                "{}{report:#?}",
                if dry_run {
                    "dry run, nothing expired: "
                } else {
                    ""
                }
            );
            return Ok(());
        }
        Command::Audit { overrides, filter } => {
            let cfg = Config::load(&overrides)?;
            let path = cfg.audit_log.ok_or_else(|| {
                anyhow::anyhow!("the audit trail is turned off (audit-log = \"\")")
            })?;
            let n = berth::audit::search(&path, &filter, &mut std::io::stdout().lock())?;
            eprintln!("{n} record(s)");
            return Ok(());
        }
        Command::Fsck(o) => {
            let cfg = Config::load(&o)?;
            init_logging(cfg.log_format);
            let app = berth::App::build(&cfg).await?;
            let problems = app.registry.fsck().await?;
            for p in &problems {
                println!("{p:?}");
            }
            println!("{} problem(s)", problems.len());
            std::process::exit(i32::from(!problems.is_empty()));
        }
    };
    let cfg = Config::load(&overrides)?;
    init_logging(cfg.log_format);
    let app = berth::App::build(&cfg).await?;
    // Every listener is bound before the line below says the server listens.
    let listeners = app.bind(cfg.listen).await?;
    let addr = listeners.main.local_addr()?;
    if cfg.access_keys.is_empty() {
        tracing::warn!(
            %addr,
            "NO ACCESS KEYS CONFIGURED: any well-formed SigV4 signature is accepted and every caller acts as account {}. \
             Configure [[access-keys]] or BERTH_ACCESS_KEY_ID/BERTH_SECRET_ACCESS_KEY to verify signatures.",
            cfg.account_id
        );
    }
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), region = %cfg.region, account_id = %cfg.account_id, "berth ready");
    // Scripts wait for this exact line on stdout.
    println!("listening on {}://{addr}", app.scheme());
    std::io::stdout().flush()?;
    app.serve(listeners, berth::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
