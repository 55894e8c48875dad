//! Lambda function `remind`: the daily re-confirmation reminders, on the scheduler's event.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sspr_app::lambda::serve_reminders().await
}
