//! The HTTP API of sspr (docs/architecture.md): one set of handlers, mounted by each Lambda function (a
//! slice of the routes each) and by the local server (all of them).

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod lambda;
pub mod routes;

pub use auth::{Authenticator, JwtClaims};
pub use config::Config;
pub use error::ApiError;
pub use routes::{api, ApiState, Routes};
