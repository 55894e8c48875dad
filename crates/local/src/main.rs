//! `sspr`: the local server. `sspr serve` runs the whole product on this machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sspr_app::{Config, Deployment};
use sspr_core::ports::{SystemClock, SystemRng};
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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let Command::Serve { addr, data } = Cli::parse().command;
    match serve(addr, data).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sspr: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, data: PathBuf) -> anyhow::Result<()> {
    let config = Config::from_env(Deployment::Local)?;
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
    })
    .await?;
    println!("sspr is running at {url}");
    println!("  reset page:         {url}/reset");
    println!("  registration page:  {url}/register");
    if server.outbox.is_some() {
        println!("  outbox (SMS/email): {url}/dev/outbox");
    }
    for user in &server.demo_users {
        println!("  demo user: {user}");
    }
    axum::serve(listener, server.router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
