//! The `hotline` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::{Config, LogFormat};

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
