//! `sspr admin …`: what administrators do through the admin API, from a terminal, on the data
//! the local server uses (the embedded store in `--data`, or DynamoDB with the usual
//! settings). Whoever runs it can read that data and its credentials already, so there is no
//! sign-in: `--actor` (default `$USER`) is the administrator recorded in the audit log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use comfy_table::{presets, Cell, CellAlignment, Table};
use serde_json::Value;
use sspr_app::config::StoreKind;
use sspr_app::{Config, Deployment};
use sspr_core::admin::Administrator;
use sspr_core::audit::{parse_time, ActivityQuery, Event, EventKind, Report, ReportRow};
use sspr_core::policy::{PolicyDocument, POLICY_FIELDS};
use sspr_core::ports::{SystemClock, SystemRng};
use sspr_core::types::{Timestamp, Username};
use sspr_core::{FlowError, Sspr};
use sspr_local::{build, LocalOptions};

/// The actor recorded when neither `--actor` nor `$USER` names one.
const DEFAULT_ACTOR: &str = "sspr-cli";
/// The most events asked of the store in one page (the admin API's largest page).
const PAGE: usize = 100;

#[derive(Args)]
pub struct AdminArgs {
    /// Who acts, as recorded in the audit log [default: $USER, else sspr-cli].
    #[arg(long, global = true, value_name = "NAME")]
    actor: Option<String>,
    #[command(subcommand)]
    command: AdminCommand,
}

/// Where the data is: the embedded store's folder (ignored by the store with
/// `SSPR_STORE=dynamodb`, which reads `SSPR_TABLE` and the AWS settings).
#[derive(Args)]
struct Data {
    /// Directory of the embedded store, directory and secrets (as for `serve`).
    #[arg(long, default_value = ".sspr")]
    data: PathBuf,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Read or replace the reset policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The audit log, newest first.
    Activity {
        /// Only the events of this person.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// From this day (YYYY-MM-DD, UTC) or time (RFC 3339) on [default: as far back as the log is kept].
        #[arg(long, value_name = "DATE", value_parser = since)]
        since: Option<Timestamp>,
        /// Up to this day (YYYY-MM-DD, UTC, the whole day) or time (RFC 3339) [default: now].
        #[arg(long, value_name = "DATE", value_parser = until)]
        until: Option<Timestamp>,
        /// Only events of this kind (method_registered, code_sent, reset_succeeded, policy_changed, …).
        #[arg(long, value_parser = kind)]
        kind: Option<EventKind>,
        /// The most events to print.
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        #[command(flatten)]
        data: Data,
    },
    /// Registrations and resets per day over the last days.
    Report {
        /// Days to cover, today included (1–90).
        #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=90))]
        days: u16,
        #[command(flatten)]
        data: Data,
    },
    /// Delete a person's registered methods: they must register again.
    ClearRegistration {
        /// The person's directory user name.
        username: String,
        #[command(flatten)]
        data: Data,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the policy in force and its version.
    Get {
        /// Print the JSON document that `policy set` takes instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: Data,
    },
    /// Replace the policy with a whole document (as `policy get --json` prints it), if it is
    /// still at the version the document was read at.
    Set {
        /// The JSON document, every field and the `version` it was read at.
        file: PathBuf,
        #[command(flatten)]
        data: Data,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let actor = args.actor;
    match args.command {
        AdminCommand::Policy { command: PolicyCommand::Get { json, data } } => {
            let sspr = open(&data.data).await?;
            policy_get(&sspr, &administrator(actor)?, json).await
        }
        AdminCommand::Policy { command: PolicyCommand::Set { file, data } } => {
            let sspr = open(&data.data).await?;
            policy_set(&sspr, &administrator(actor)?, &file).await
        }
        AdminCommand::Activity { user, since, until, kind, limit, data } => {
            let user = user.map(|u| Username::parse(&u).map_err(|e| anyhow!("--user: {e}"))).transpose()?;
            let query = ActivityQuery { from: since, to: until, user, kind, cursor: None, limit: PAGE };
            let sspr = open(&data.data).await?;
            activity(&sspr, query, usize::try_from(limit)?).await
        }
        AdminCommand::Report { days, data } => report(&*open(&data.data).await?, days).await,
        AdminCommand::ClearRegistration { username, data } => {
            let user = Username::parse(&username).map_err(|e| anyhow!("{username:?}: {e}"))?;
            let sspr = open(&data.data).await?;
            clear_registration(&sspr, &administrator(actor)?, &user).await
        }
    }
}

/// The administrator at the terminal: `--actor`, else `$USER`, else `sspr-cli`.
fn administrator(actor: Option<String>) -> anyhow::Result<Administrator> {
    let name = actor
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_ACTOR.to_owned());
    let username = Username::parse(&name).map_err(|e| anyhow!("--actor {name:?}: {e}"))?;
    Ok(Administrator { username })
}

/// The product on the configured store, built as `sspr serve` builds it.
async fn open(data: &Path) -> anyhow::Result<Arc<Sspr>> {
    let config = Config::from_env(Deployment::Local)?;
    if config.store == StoreKind::Embedded && !data.is_dir() {
        // Not made here: an administrator in the wrong folder would read an empty new store.
        bail!("{} is not a folder of sspr data: pass --data with the folder `sspr serve` uses", data.display());
    }
    let server = build(LocalOptions {
        config,
        data_dir: data.to_owned(),
        public_url: "http://127.0.0.1:8080".into(),
        clock: Arc::new(SystemClock),
        rng: Arc::new(SystemRng),
        echo_outbox: false,
        store: None,
        aws: None,
        oidc: None,
    })
    .await?;
    Ok(server.sspr)
}

async fn policy_get(sspr: &Sspr, admin: &Administrator, json: bool) -> anyhow::Result<()> {
    let document = sspr.policy_document(admin).await.map_err(failed)?;
    if json {
        // Straight from the document: its fields in the policy's order, then `version`.
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    let value = serde_json::to_value(&document)?;
    let mut table = table(["field", "value"]);
    for field in POLICY_FIELDS.iter().chain(&["version"]) {
        let shown = match value.get(*field) {
            None | Some(Value::Null) => "(none)".to_owned(),
            Some(v) => plain(v),
        };
        table.add_row([*field, shown.as_str()]);
    }
    println!("{table}");
    Ok(())
}

async fn policy_set(sspr: &Sspr, admin: &Administrator, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON document", file.display()))?;
    let refused = |field: &str, reason: &str| {
        anyhow!("{}: the policy's field {field} {reason}; nothing was changed", file.display())
    };
    let document = PolicyDocument::parse(&value).map_err(|e| refused(&e.field, &e.reason))?;
    let read_at = document.version;
    match sspr.replace_policy(admin, document).await {
        Ok(saved) => {
            println!("policy saved: version {} (a running server applies it within a minute)", saved.version);
            Ok(())
        }
        Err(FlowError::InvalidPolicy(e)) => Err(refused(&e.field, &e.reason)),
        Err(FlowError::StaleVersion) => {
            let now = sspr.policy_document(admin).await.map(|d| format!(", now at version {}", d.version));
            Err(anyhow!(
                "the policy was changed since {} was read (read at version {read_at}{}): read it again with \
                 `sspr admin policy get --json` and reapply the change; nothing was changed",
                file.display(),
                now.unwrap_or_default()
            ))
        }
        Err(e) => Err(failed(e)),
    }
}

async fn activity(sspr: &Sspr, mut query: ActivityQuery, limit: usize) -> anyhow::Result<()> {
    let mut table = table(["time", "kind", "user", "actor", "methods", "result", "reason", "destination", "source IP"]);
    let (mut printed, mut more) = (0, false);
    while printed < limit {
        query.limit = (limit - printed).min(PAGE);
        let page = sspr.activity(&query).await.map_err(failed)?;
        more = page.events.len() > limit - printed;
        for event in page.events.iter().take(limit - printed) {
            table.add_row(activity_row(event));
            printed += 1;
        }
        match page.next {
            Some(next) => {
                more = true;
                query.cursor = Some(next);
            }
            None => break,
        }
    }
    if printed == 0 {
        println!("no events");
        return Ok(());
    }
    println!("{table}");
    if more && printed == limit {
        println!("the newest {limit} shown; older ones may follow: raise --limit or narrow with --since and --until");
    }
    Ok(())
}

fn activity_row(e: &Event) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let name = |v: &Option<Username>| v.as_ref().map(Username::to_string).unwrap_or_default();
    let methods: Vec<&str> = e.methods.iter().map(|m| m.as_str()).collect();
    let reason = match (e.kind, &e.changes) {
        (EventKind::PolicyChanged, Some(changes)) => format!("policy: {}", changed_fields(changes).join(",")),
        _ => text(&e.reason),
    };
    vec![
        e.at.to_rfc3339(),
        e.kind.as_str().to_owned(),
        name(&e.user),
        name(&e.actor),
        methods.join(", "),
        e.result.clone(),
        reason,
        text(&e.destination),
        text(&e.source_ip),
    ]
}

/// The names of the fields a policy change changed (`changes` is `{old, new}`), in the
/// policy's order; never their values.
fn changed_fields(changes: &Value) -> Vec<&'static str> {
    let changed = |side: &str, field: &str| changes.get(side).and_then(|s| s.get(field)).is_some();
    POLICY_FIELDS.into_iter().filter(|f| changed("new", f) || changed("old", f)).collect()
}

async fn report(sspr: &Sspr, days: u16) -> anyhow::Result<()> {
    let Report { days, from, to, registrations, resets, totals } = sspr.report(days).await.map_err(failed)?;
    println!("Totals, {from} to {to} ({days} day{}, UTC)", if days == 1 { "" } else { "s" });
    let mut table = table(["event", "count"]);
    for kind in EventKind::ALL {
        table.add_row(vec![Cell::new(kind.as_str()), count(totals.get(&kind).copied().unwrap_or(0))]);
    }
    println!("{table}");

    println!();
    println!("Registrations per day, method and result");
    print_rows(&registrations, false);
    println!();
    println!("Resets and unlocks per day, kind, method and result");
    print_rows(&resets, true);
    Ok(())
}

fn print_rows(rows: &[ReportRow], with_kind: bool) {
    if rows.is_empty() {
        println!("none");
        return;
    }
    let header: &[&str] =
        if with_kind { &["day", "kind", "method", "result", "count"] } else { &["day", "method", "result", "count"] };
    let mut table = table(header);
    for row in rows {
        let method = row.method.map(|m| m.as_str()).unwrap_or_default();
        let mut cells = vec![Cell::new(&row.date)];
        if with_kind {
            cells.push(Cell::new(row.kind.as_str()));
        }
        cells.extend([Cell::new(method), Cell::new(&row.result), count(row.count)]);
        table.add_row(cells);
    }
    println!("{table}");
}

async fn clear_registration(sspr: &Sspr, admin: &Administrator, user: &Username) -> anyhow::Result<()> {
    match sspr.clear_registration(admin, user).await {
        Ok(()) => {
            println!("cleared the registration of {user}: they must register their methods again");
            Ok(())
        }
        Err(FlowError::NotRegistered) => Err(anyhow!("{user} has no registration to clear")),
        Err(e) => Err(failed(e)),
    }
}

/// A refusal of the core as one line; where the store or the directory is unavailable, with
/// the cause, which the operator at the terminal needs (a person on the web never sees it).
fn failed(e: FlowError) -> anyhow::Error {
    match e {
        FlowError::Unavailable(cause) => anyhow!("the store or directory is unavailable: {cause}"),
        FlowError::DirectoryUnavailable(cause) => anyhow!("the directory is unavailable: {cause}"),
        e => e.into(),
    }
}

fn table<I: IntoIterator<Item = S>, S: Into<Cell>>(header: I) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).set_header(header);
    table
}

fn count(n: i64) -> Cell {
    Cell::new(n).set_alignment(CellAlignment::Right)
}

/// A policy value as text: strings bare, lists joined, objects as `key: value` pairs.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "(none)".to_owned(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}: {}", plain(v))).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn since(s: &str) -> Result<Timestamp, String> {
    parse_time(s).ok_or_else(|| "expected YYYY-MM-DD or an RFC 3339 time".to_owned())
}

/// A day counts whole: up to its last second.
fn until(s: &str) -> Result<Timestamp, String> {
    let at = since(s)?;
    Ok(if s.contains('T') || s.contains('t') { at } else { at.plus_secs(86_399) })
}

fn kind(s: &str) -> Result<EventKind, String> {
    EventKind::parse(s).ok_or_else(|| {
        let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("expected one of {}", kinds.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_until_counts_whole() {
        assert_eq!(until("2026-11-25"), Ok(Timestamp(1_795_564_800 + 86_399)));
        assert_eq!(until("2026-11-25T00:00:10Z"), Ok(Timestamp(1_795_564_810)));
        assert_eq!(since("2026-11-25"), Ok(Timestamp(1_795_564_800)));
        assert!(since("25/11/2026").is_err());
    }

    #[test]
    fn a_policy_change_is_summed_up_by_field_names_only() {
        let changes = serde_json::json!({
            "old": {"reconfirm_days": 180, "enablement": "everyone"},
            "new": {"reconfirm_days": 90, "enablement": "selected"},
        });
        assert_eq!(changed_fields(&changes), vec!["enablement", "reconfirm_days"]);
    }

    #[test]
    fn policy_values_read_plainly() {
        assert_eq!(plain(&serde_json::json!(["email", "sms"])), "email, sms");
        assert_eq!(plain(&serde_json::json!({"max_length": 256, "min_length": 8})), "max_length: 256, min_length: 8");
        assert_eq!(plain(&serde_json::json!("everyone")), "everyone");
        assert_eq!(plain(&serde_json::json!(true)), "true");
    }
}
