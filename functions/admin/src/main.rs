//! Lambda function `admin`: the administrators' routes of the sspr API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sspr_app::lambda::serve(sspr_http::Function::Admin).await
}
