use std::io::{IsTerminal, Write};

use berth::config::{Config, Overrides};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A container registry that speaks Amazon ECR's API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve(Overrides),
    /// Remove expired uploads and blobs no image uses (past the grace period) once, and exit.
    Gc {
        #[command(flatten)]
        overrides: Overrides,
        /// Report what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-hash every blob and check the metadata against the blob store; exit 1 on problems.
    Fsck(Overrides),
    /// Print the audit trail's records (JSON lines, oldest first) that match the filters.
    Audit {
        #[command(flatten)]
        overrides: Overrides,
        #[command(flatten)]
        filter: berth::audit::Filter,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let overrides = match Cli::parse().command {
        Command::Serve(o) => o,
        Command::Gc { overrides, dry_run } => {
            let app = berth::App::build(&Config::load(&overrides)?).await?;
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
            let app = berth::App::build(&Config::load(&o)?).await?;
            let problems = app.registry.fsck().await?;
            for p in &problems {
                println!("{p:?}");
            }
            println!("{} problem(s)", problems.len());
            std::process::exit(i32::from(!problems.is_empty()));
        }
    };
    let cfg = Config::load(&overrides)?;
    let app = berth::App::build(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
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
    app.serve(listener, berth::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
