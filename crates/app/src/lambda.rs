//! Start-up of a Lambda function: configuration, SDK clients and secrets, once, before the
//! runtime loop; then its slice of the routes.

use std::sync::Arc;

use axum::Router;
use sspr_http::{api, ApiState, Deliveries, Function, Slice};

use crate::assemble::{assemble, Assembly};
use crate::config::{Config, Deployment};

/// The log filter: the level Lambda sets from the function's `LoggingConfig`
/// (`AWS_LAMBDA_LOG_LEVEL`), else `RUST_LOG`, else info.
pub fn log_filter(lookup: impl Fn(&str) -> Option<String>) -> String {
    if let Some(level) = lookup("AWS_LAMBDA_LOG_LEVEL").map(|l| l.trim().to_ascii_lowercase()) {
        match level.as_str() {
            "trace" | "debug" | "info" | "warn" | "error" => return level,
            // Lambda's FATAL has no tracing level of its own.
            "fatal" => return "error".to_owned(),
            _ => {}
        }
    }
    lookup("RUST_LOG").filter(|f| !f.trim().is_empty()).unwrap_or_else(|| "info".to_owned())
}

/// JSON log lines for CloudWatch, each with its `level` and an RFC 3339 `timestamp`: with the
/// functions' JSON log format, Lambda filters by `ApplicationLogLevel` only the lines that have
/// both, and counts any other as INFO (which a WARN setting would drop, errors too).
pub fn init_tracing() {
    let filter = log_filter(|name| std::env::var(name).ok());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).try_init();
}

/// Builds `function`'s router from the environment, its deliveries kept in `deliveries`. An
/// error here stops the function's start with one line naming what is wrong.
pub async fn router(function: Function, deliveries: Deliveries) -> Result<Router, String> {
    let config = Config::from_env(Deployment::Lambda).map_err(|e| e.to_string())?;
    let claims = config.claims.clone();
    let assembled = assemble(Assembly::new(config, function.needs())).await.map_err(|e| format!("{e:#}"))?;
    Ok(api(ApiState { sspr: assembled.sspr, auth: Arc::new(claims), deliveries }, Slice::Function(function)))
}

/// The whole of a function's `main`: build once, then serve invocations.
pub async fn serve(function: Function) -> Result<(), lambda_http::Error> {
    init_tracing();
    let deliveries = Deliveries::default();
    let app = match router(function, deliveries.clone()).await {
        Ok(app) => app,
        Err(line) => {
            tracing::error!("{line}");
            return Err(line.into());
        }
    };
    if !function.delivers_after_answer() {
        return lambda_http::run(app).await;
    }
    serve_with_deliveries(app, deliveries).await
}

/// Serves `app` with an internal Lambda extension that keeps each invocation open until the
/// deliveries its answer started have ended. Lambda freezes a function only once the runtime
/// and every extension have asked for their next event, so the answer goes out first and the
/// code is still sent within the invocation, never on a later one or not at all.
async fn serve_with_deliveries(app: Router, deliveries: Deliveries) -> Result<(), lambda_http::Error> {
    use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
    use lambda_http::tower::ServiceExt;
    use tokio::sync::{mpsc, Mutex};

    // One message per invocation answered, sent even if the handler fails.
    let (answered, answers) = mpsc::unbounded_channel::<()>();
    let answers = Arc::new(Mutex::new(answers));
    let extension = Extension::new()
        .with_extension_name("sspr-deliveries")
        .with_events(&["INVOKE"])
        .with_events_processor(service_fn(move |event: LambdaEvent| {
            let (answers, deliveries) = (Arc::clone(&answers), deliveries.clone());
            async move {
                if let NextEvent::Invoke(_) = event.next {
                    // The invocation's deliveries are all started once its handler is done.
                    answers.lock().await.recv().await;
                    tracing::debug!(pending = deliveries.pending(), "the invocation ends once its deliveries have");
                    deliveries.settle().await;
                }
                Ok::<(), lambda_extension::Error>(())
            }
        }))
        .register()
        .await?;

    /// Tells the extension that the invocation is answered, when dropped: also when the
    /// handler fails or panics.
    struct Answered(mpsc::UnboundedSender<()>);
    impl Drop for Answered {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }
    let handler = lambda_http::service_fn(move |request: lambda_http::Request| {
        let (app, answered) = (app.clone(), Answered(answered.clone()));
        async move {
            let response = app.oneshot(request).await;
            drop(answered);
            response
        }
    });
    tokio::try_join!(lambda_http::run(handler), extension.run())?;
    Ok(())
}

/// The ports the reminder run uses besides the store: email and SMS.
pub const REMIND_NEEDS: sspr_http::Needs = sspr_http::Needs { directory: false, sms: true, voice: false, email: true };

/// Days ahead the scheduled run reminds of, unless the event says (`within_days`).
fn within_days(event: &serde_json::Value) -> u16 {
    event
        .get("within_days")
        .and_then(serde_json::Value::as_u64)
        .or_else(|| std::env::var("SSPR_REMIND_WITHIN_DAYS").ok().and_then(|d| d.trim().parse().ok()))
        .map_or(7, |d| u16::try_from(d.min(365)).unwrap_or(7))
}

/// The whole of the `remind` function's `main`: build once, then answer each scheduled event
/// with one reminder run. The counts are logged as one JSON line and returned; a run with
/// failed sends ends in an error, so the scheduler tries again (markers keep what was sent from
/// going twice) and the function's error alarm fires.
pub async fn serve_reminders() -> Result<(), lambda_http::Error> {
    use lambda_http::{service_fn, LambdaEvent};

    init_tracing();
    let config = match Config::from_env(Deployment::Lambda) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return Err(e.to_string().into());
        }
    };
    let sspr = match assemble(Assembly::new(config, REMIND_NEEDS)).await {
        Ok(assembled) => assembled.sspr,
        Err(e) => {
            tracing::error!("{e:#}");
            return Err(format!("{e:#}").into());
        }
    };
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let sspr = Arc::clone(&sspr);
        async move { remind(&sspr, &event.payload).await.map_err(lambda_http::Error::from) }
    }))
    .await
}

/// One scheduled event: a reminder run, its counts logged as one JSON line and returned; an
/// error when some reminders could not be sent.
pub async fn remind(sspr: &sspr_core::Sspr, event: &serde_json::Value) -> Result<serde_json::Value, String> {
    let run = sspr.send_reminders(within_days(event)).await.map_err(|e| e.to_string())?;
    tracing::info!(
        due = run.due,
        sent = run.sent,
        already_sent = run.already_sent,
        failed = run.failed,
        unreachable = run.unreachable,
        "reminder run"
    );
    let counts = serde_json::to_value(&run).map_err(|e| e.to_string())?;
    if run.failed > 0 {
        return Err(format!("{} reminders could not be sent: {counts}", run.failed));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn lambda_log_level_wins_over_rust_log() {
        assert_eq!(log_filter(env(&[])), "info");
        assert_eq!(log_filter(env(&[("RUST_LOG", "debug,hyper=info")])), "debug,hyper=info");
        assert_eq!(log_filter(env(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "debug")])), "warn");
        assert_eq!(log_filter(env(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")])), "error");
        assert_eq!(log_filter(env(&[("AWS_LAMBDA_LOG_LEVEL", "nonsense"), ("RUST_LOG", "trace")])), "trace");
    }
}
