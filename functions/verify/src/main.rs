//! Lambda function `verify`: the Verify routes of the sspr API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sspr_http::lambda::serve(sspr_http::Routes::Verify).await
}
