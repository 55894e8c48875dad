//! `sspr smoke`: one reset against a deployment, done as a person does it on the reset page, to
//! check a deploy in a minute. It solves the challenge, starts a reset for a test person, asks
//! for a code by email or text to the destination registered for them, reads the code the
//! operator types (from their mailbox or phone), verifies it and sets the new password given in
//! `SSPR_SMOKE_NEW_PASSWORD` (never on the command line, where shell history and process lists
//! keep it). Each step prints its status and time; the first one that fails stops it with the
//! API's error code.

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};
use sspr_core::reset::challenge::{solve, Challenge};

#[derive(clap::Args)]
pub struct SmokeArgs {
    /// The deployment's address: PublicUrl (or the stack's WebUrl output); http only on a
    /// loopback address.
    #[arg(long)]
    url: String,
    /// The test person's username.
    #[arg(long)]
    username: String,
    /// How the code goes: `email` or `sms`.
    #[arg(long, default_value = "email", value_parser = ["email", "sms"])]
    method: String,
    /// Where it goes: the address or number registered for the test person, in full.
    #[arg(long)]
    destination: String,
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// One call: its status and JSON body, printed with the time it took.
    async fn call(
        &self,
        step: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let began = Instant::now();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{step}: {path} could not be reached"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        println!("{step}: {} in {} ms", status.as_u16(), began.elapsed().as_millis());
        if !status.is_success() {
            let code = body["error"].as_str().unwrap_or("no error code");
            let message = body["message"].as_str().unwrap_or("");
            bail!("{step} failed: {} {code}: {message}", status.as_u16());
        }
        Ok(body)
    }
}

/// The deployment's origin: https, or http on this machine.
fn base_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url}"))?;
    if !sspr_local::oidc::https_or_loopback(&parsed) {
        bail!("--url is https (http only on this machine)");
    }
    Ok(parsed.origin().ascii_serialization())
}

pub async fn run(args: SmokeArgs) -> anyhow::Result<()> {
    let new_password = std::env::var("SSPR_SMOKE_NEW_PASSWORD")
        .map_err(|_| anyhow!("SSPR_SMOKE_NEW_PASSWORD: the test person's new password is required"))?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        base: base_url(&args.url)?,
    };
    let began = Instant::now();

    let challenge: Challenge =
        serde_json::from_value(api.call("challenge", reqwest::Method::GET, "/v1/reset/challenge", None).await?)
            .context("challenge: not a challenge")?;
    let solving = Instant::now();
    let solution = tokio::task::spawn_blocking(move || solve(&challenge))
        .await?
        .ok_or_else(|| anyhow!("challenge: no solution within its range"))?;
    println!("challenge: solved in {} ms", solving.elapsed().as_millis());

    let start = json!({ "username": args.username, "challenge": solution });
    let started = api.call("start", reqwest::Method::POST, "/v1/reset/start", Some(start)).await?;
    let session = started["session"].as_str().ok_or_else(|| anyhow!("start: no session"))?.to_owned();

    let send = json!({ "session": session, "method": args.method, "destination": args.destination });
    api.call("send-code", reqwest::Method::POST, "/v1/reset/send-code", Some(send)).await?;
    println!("type the code sent by {} to {}:", args.method, args.destination);
    let code = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line.trim().to_owned())
    })
    .await??;

    let verify = json!({ "session": session, "method": args.method, "code": code });
    let verified = api.call("verify", reqwest::Method::POST, "/v1/reset/verify", Some(verify)).await?;
    let Some(token) = verified["reset_token"].as_str() else {
        bail!(
            "verify: the code was accepted but {} more proof(s) are needed; reset this person on the reset page",
            verified["remaining"]
        );
    };

    let complete = json!({ "session": session, "reset_token": token, "new_password": new_password });
    api.call("complete", reqwest::Method::POST, "/v1/reset/complete", Some(complete)).await?;
    println!("the reset works: {} has the new password ({} s in all)", args.username, began.elapsed().as_secs());
    Ok(())
}
