//! `sspr`: the local server. `sspr serve` runs the whole product on this machine; `sspr remind`
//! sends the re-confirmation reminders due, as the scheduled function does in AWS; `sspr admin`
//! reads and changes the policy, the audit log and registrations from the terminal; `sspr
//! smoke` checks a deployment with one reset.

mod admin_cli;
mod smoke;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sspr_app::{Config, Deployment};
use sspr_core::ports::{ManualClock, SystemClock, SystemRng};
use sspr_core::types::Timestamp;
use sspr_local::{build, LocalOptions};

#[derive(Parser)]
#[command(name = "sspr", version, about = "Self-service password reset, run locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the reset and registration pages and the outbox.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Directory of the embedded store, directory and secrets.
        #[arg(long, default_value = ".sspr")]
        data: PathBuf,
    },
    /// Send the re-confirmation reminders due, once, and print what was sent.
    Remind {
        /// Directory of the embedded store, directory and secrets (as for `serve`).
        #[arg(long, default_value = ".sspr")]
        data: PathBuf,
        /// Run as on this day (YYYY-MM-DD, UTC) instead of today.
        #[arg(long, value_parser = parse_day)]
        now: Option<i64>,
        /// Remind those whose re-confirmation falls due within this many days.
        #[arg(long, default_value_t = 7)]
        within: u16,
    },
    /// Administer from the terminal: the policy, the audit log, the report, registrations.
    Admin(admin_cli::AdminArgs),
    /// Check a deployment: one reset of a test person, by a code sent to them (typed in here).
    Smoke(smoke::SmokeArgs),
}

/// `YYYY-MM-DD` as the Unix time of that day's start, UTC.
fn parse_day(s: &str) -> Result<i64, String> {
    let parts: Vec<&str> = s.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err("expected YYYY-MM-DD".into());
    };
    let number = |p: &str| p.parse::<i32>().map_err(|_| "expected YYYY-MM-DD".to_owned());
    let month =
        time::Month::try_from(u8::try_from(number(month)?).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let date =
        time::Date::from_calendar_date(number(year)?, month, u8::try_from(number(day)?).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let command = Cli::parse().command;
    // The admin commands print tables: only warnings and errors of the log beside them.
    let level = if matches!(command, Command::Admin(_) | Command::Smoke(_)) { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let done = match command {
        Command::Serve { addr, data } => serve(addr, data).await,
        Command::Remind { data, now, within } => remind(data, now, within).await,
        Command::Admin(args) => admin_cli::run(args).await,
        Command::Smoke(args) => smoke::run(args).await,
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sspr: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, data: PathBuf) -> anyhow::Result<()> {
    let config = Config::from_env(Deployment::Local)?;
    let oidc = sspr_local::OidcSettings::from_lookup(|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?;
    let signin = match &oidc {
        Some(settings) => format!("through {}", settings.issuer),
        None => "with the directory's passwords (local sign-in)".to_owned(),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = build(LocalOptions {
        config,
        data_dir: data,
        public_url: url.clone(),
        clock: Arc::new(SystemClock),
        rng: Arc::new(SystemRng),
        echo_outbox: true,
        store: None,
        aws: None,
        oidc,
    })
    .await?;
    println!("sspr is running at {url}");
    println!("  sign-in:            {signin}");
    println!("  reset page:         {url}/reset");
    println!("  registration page:  {url}/register");
    if server.outbox_served {
        println!("  outbox (SMS/email): {url}/dev/outbox");
    } else if server.outbox.is_some() {
        println!("  outbox (SMS/email): {}", sspr_local::OUTBOX_CLOSED);
    }
    for user in &server.demo_users {
        println!("  demo user: {user}");
    }
    axum::serve(listener, server.router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn remind(data: PathBuf, now: Option<i64>, within: u16) -> anyhow::Result<()> {
    let config = Config::from_env(Deployment::Local)?;
    let clock: Arc<dyn sspr_core::ports::Clock> = match now {
        Some(at) => Arc::new(ManualClock::new(Timestamp(at))),
        None => Arc::new(SystemClock),
    };
    let server = build(LocalOptions {
        config,
        data_dir: data,
        public_url: "http://127.0.0.1:8080".into(),
        clock,
        rng: Arc::new(SystemRng),
        echo_outbox: true,
        store: None,
        aws: None,
        oidc: None,
    })
    .await?;
    let run = server.sspr.send_reminders(within).await?;
    for line in &run.reminded {
        println!("reminded {line}");
    }
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}
