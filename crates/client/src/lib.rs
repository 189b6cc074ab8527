//! berth's client commands (`berth push`, `berth pull`, `berth login`): images move between
//! local files (an OCI image layout or a `docker save` tarball) and a registry through the
//! ECR API only, so they work against berth and against Amazon ECR alike. This crate knows
//! nothing of the server's crates; it speaks to a registry as any ECR client does.

mod archive;
mod image;
mod layout;
mod login;
mod progress;
mod pull;
mod push;
mod reference;
mod resume;

use std::time::Duration;

use anyhow::Context as _;
use aws_config::BehaviorVersion;

pub use reference::ImageRef;

/// Options every client command takes: where the registry is and how to talk to it.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// The ECR endpoint (e.g. berth's `http://127.0.0.1:5000`). Default: `AWS_ENDPOINT_URL_ECR`,
    /// `AWS_ENDPOINT_URL`, or Amazon ECR in the region.
    #[arg(long, env = "AWS_ENDPOINT_URL_ECR")]
    pub endpoint_url: Option<String>,
    /// The region. Default: the normal AWS chain (`AWS_REGION`, the profile's `region`).
    #[arg(long)]
    pub region: Option<String>,
    /// The AWS profile to take credentials and region from. Default: `AWS_PROFILE` or `default`.
    #[arg(long)]
    pub profile: Option<String>,
    /// The registry (account) ID. Default: the caller's own registry.
    #[arg(long)]
    pub registry_id: Option<String>,
    /// No progress bars and no summary (bars are also off when stderr is not a terminal).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `berth push SOURCE REPOSITORY[:TAG]`.
#[derive(clap::Args, Debug, Clone)]
pub struct PushArgs {
    /// An OCI image layout directory (`oci:DIR[:REF]`, or any directory) or a `docker save`
    /// tarball (`docker-archive:FILE`, or any regular file).
    pub source: String,
    /// The repository, with `:TAG` (default `latest`).
    pub destination: String,
    /// Layers uploaded at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    #[command(flatten)]
    pub connection: Connection,
}

/// `berth pull REPOSITORY[:TAG|@DIGEST] DEST`.
#[derive(clap::Args, Debug, Clone)]
pub struct PullArgs {
    /// The repository, with `:TAG` (default `latest`) or `@sha256:...`.
    pub source: String,
    /// An OCI image layout directory (`oci:DIR[:REF]`, or a path not ending in `.tar`),
    /// or a `docker save` tarball (`docker-archive:FILE`, or a path ending in `.tar`).
    pub destination: String,
    /// Byte ranges downloaded at once (over all layers).
    #[arg(long, default_value_t = 6)]
    pub jobs: usize,
    /// For a tarball, which platform of a multi-platform image to keep (`OS/ARCH[/VARIANT]`).
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
    #[command(flatten)]
    pub connection: Connection,
}

/// `berth login`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoginArgs {
    /// The registry host to store credentials for. Default: the proxy endpoint that
    /// GetAuthorizationToken names.
    #[arg(long)]
    pub registry: Option<String>,
    /// Print the password on stdout (for `docker login --password-stdin`) instead of writing
    /// a file.
    #[arg(long, conflicts_with = "authfile")]
    pub print: bool,
    /// The credentials file to update (podman's `--authfile`; the format is docker's).
    /// Default: `$REGISTRY_AUTH_FILE`, else `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`.
    #[arg(long)]
    pub authfile: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub connection: Connection,
}

/// Builds an ECR client from the user's normal AWS configuration (environment, profile,
/// SSO cache, web identity, IMDS), with the endpoint and region the flags give.
async fn ecr_client(c: &Connection) -> anyhow::Result<aws_sdk_ecr::Client> {
    install_crypto();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(r) = &c.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(p) = &c.profile {
        loader = loader.profile_name(p);
    }
    let shared = loader.load().await;
    let mut cfg = aws_sdk_ecr::config::Builder::from(&shared)
        // Parts are up to 28 MiB of JSON: the default attempt timeout would cut slow links.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .build(),
        );
    if let Some(url) = &c.endpoint_url {
        cfg = cfg.endpoint_url(url);
    }
    if shared.region().is_none() && c.region.is_none() {
        anyhow::bail!("no region: pass --region or set AWS_REGION");
    }
    Ok(aws_sdk_ecr::Client::from_conf(cfg.build()))
}

/// rustls needs one process-wide crypto provider; ring, as the server uses.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `berth push`.
pub async fn push(args: PushArgs) -> anyhow::Result<()> {
    let ecr = ecr_client(&args.connection).await?;
    let target = ImageRef::parse(&args.destination).context("destination")?;
    push::run(&ecr, &args, &target).await
}

/// `berth pull`.
pub async fn pull(args: PullArgs) -> anyhow::Result<()> {
    let ecr = ecr_client(&args.connection).await?;
    let source = ImageRef::parse(&args.source).context("source")?;
    pull::run(&ecr, &args, &source).await
}

/// `berth login`.
pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let ecr = ecr_client(&args.connection).await?;
    login::run(&ecr, &args).await
}

/// `12.3 MiB`.
fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// The client subcommands, flattened into `berth`'s own.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Push an OCI image layout or a docker-save tarball to a repository (ECR API).
    Push(PushArgs),
    /// Pull an image into an OCI image layout or a docker-save tarball (ECR API).
    Pull(PullArgs),
    /// Write docker/podman credentials for the registry from GetAuthorizationToken.
    Login(LoginArgs),
}

/// Runs a client command. Ctrl-C stops it at once: a push's finished parts are already
/// recorded (see `resume`), and a pull's unfinished blobs are only under temporary names.
pub async fn run(command: Command) -> anyhow::Result<()> {
    let work = async {
        match command {
            Command::Push(a) => push(a).await,
            Command::Pull(a) => pull(a).await,
            Command::Login(a) => login(a).await,
        }
    };
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: run the same command again to resume");
            std::process::exit(130);
        }
    }
}
