//! The `hotline` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::{Config, LogFormat};
use hotline::store::{MAX_PAGE_LIMIT, PageRequest, Store, StoreError, format_utc};

/// Hotline: a self-hosted realtime voice server.
#[derive(Debug, Parser)]
#[command(name = "hotline", version = hotline::VERSION, about)]
struct Cli {
    /// TOML configuration file. Defaults to ./hotline.toml when it exists.
    #[arg(long, short, global = true, env = "HOTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Override log.level (a tracing filter such as `debug`).
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Override log.format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage API keys in the configured database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Follow live events (`/v1/ws`) of a running server, one JSON object
    /// per line.
    Events {
        /// The API key.
        #[arg(long, env = "HOTLINE_API_KEY")]
        key: String,
        /// Only this call.
        #[arg(long)]
        call_id: Option<String>,
        /// Only calls of this number.
        #[arg(long)]
        number_id: Option<String>,
        /// The server's HTTP address; `http.listen` when unset.
        #[arg(long)]
        server: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key for an org, creating the org if it is missing.
    /// Prints the key on stdout: it cannot be shown again.
    Create {
        /// The org's name.
        #[arg(long)]
        org: String,
        /// A label for the key, shown in lists.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List an org's API keys (prefixes only, never the keys).
    List {
        /// The org's name.
        #[arg(long)]
        org: String,
    },
    /// Revoke an API key by id (`key_…`).
    Revoke {
        /// The key's id, as `keys list` shows it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Show,
    /// Validate the configuration and exit.
    Check,
}

fn load(cli: &Cli) -> Result<Config, hotline::config::ConfigError> {
    let default_file = PathBuf::from("hotline.toml");
    let file = cli
        .config
        .clone()
        .or_else(|| default_file.exists().then_some(default_file));
    let mut config = Config::load(file.as_deref(), std::env::vars())?;
    if let Some(level) = &cli.log_level {
        config.log.level = level.clone();
    }
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hotline: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Command::Config(ConfigCommand::Check) => {
            println!("configuration is valid");
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config),
        Command::Keys(command) => keys(&config, command),
        Command::Events {
            key,
            call_id,
            number_id,
            server,
        } => {
            let server = server.unwrap_or_else(|| config.http.listen.to_string());
            events(&server, &key, call_id.as_deref(), number_id.as_deref())
        }
    }
}

/// Prints the server's live events until it closes the stream.
fn events(server: &str, key: &str, call_id: Option<&str>, number_id: Option<&str>) -> ExitCode {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut url = format!("ws://{server}/v1/ws");
    let filters: Vec<String> = [("call_id", call_id), ("number_id", number_id)]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    if !filters.is_empty() {
        url = format!("{url}?{}", filters.join("&"));
    }
    let run = async {
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad server address {server}: {e}"))?;
        let auth = format!("Bearer {key}")
            .parse()
            .map_err(|_| "the key is not a valid header value".to_owned())?;
        request.headers_mut().insert("authorization", auth);
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| format!("cannot follow {url}: {e}"))?;
        while let Some(msg) = ws.next().await {
            match msg.map_err(|e| format!("event stream failed: {e}"))? {
                Message::Text(t) => println!("{t}"),
                Message::Close(frame) => {
                    if let Some(f) = frame {
                        eprintln!(
                            "hotline: server closed the stream: {} {}",
                            u16::from(f.code),
                            f.reason
                        );
                    }
                    break;
                }
                _ => {}
            }
        }
        Ok::<(), String>(())
    };
    run_briefly(run)
}

/// Runs a `keys` subcommand: one short exchange with the database.
fn keys(config: &Config, command: KeysCommand) -> ExitCode {
    run_briefly(run_keys(config, command))
}

/// Runs a client-side command on a small runtime of its own (`serve`
/// needs none of this) and turns its error into a message and exit code.
fn run_briefly(work: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hotline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotline: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_keys(config: &Config, command: KeysCommand) -> Result<(), String> {
    let store = Store::open_config(config)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let result = keys_on(&store, command).await;
    store.close().await;
    result
}

async fn keys_on(store: &Store, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create { org, name } => {
            let org = store.ensure_org(&org).await.map_err(|e| e.to_string())?;
            let created = store
                .create_api_key(&org.id, &name)
                .await
                .map_err(|e| e.to_string())?;
            // The key alone on stdout, so scripts can capture it; the
            // rest is for the person at the terminal.
            println!("{}", created.plaintext);
            eprintln!(
                "created {} ({}) for org {} ({}); store the key now, it cannot be shown again",
                created.key.id, created.key.name, org.name, org.id
            );
            Ok(())
        }
        KeysCommand::List { org } => {
            let org = match store.get_org_by_name(&org).await {
                Err(StoreError::NotFound) => return Err(format!("no org named {org:?}")),
                other => other.map_err(|e| e.to_string())?,
            };
            println!(
                "{:<28}  {:<12}  {:<20}  {:<20}  {:<20}  STATUS",
                "ID", "PREFIX", "NAME", "CREATED", "LAST USED"
            );
            let mut cursor = None;
            loop {
                let page = store
                    .list_api_keys(
                        &org.id,
                        &PageRequest {
                            limit: Some(MAX_PAGE_LIMIT),
                            cursor,
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                for k in &page.items {
                    println!(
                        "{:<28}  {:<12}  {:<20}  {:<20}  {:<20}  {}",
                        k.id,
                        k.prefix,
                        k.name,
                        format_utc(k.created_at),
                        k.last_used_at.map_or_else(|| "never".into(), format_utc),
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return Ok(()),
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let key = match store.find_api_key(&id).await {
                Err(StoreError::NotFound) => return Err(format!("no API key {id:?}")),
                other => other.map_err(|e| e.to_string())?,
            };
            let key = store
                .revoke_api_key(&key.org_id, &key.id)
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked {} ({}, {})", key.id, key.prefix, key.name);
            Ok(())
        }
    }
}

fn serve(config: Config) -> ExitCode {
    if let Err(e) = hotline::telemetry::init(&config.log) {
        eprintln!("hotline: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hotline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hotline::server::run(
        config,
        hotline::server::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
