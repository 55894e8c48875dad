//! The HTTP API of sspr (docs/architecture.md): one set of handlers and one list of routes,
//! mounted whole by the local server and a slice each by the Lambda functions. It knows the
//! core only: which adapters stand behind the ports is decided where the product is assembled.

pub mod auth;
pub mod deliveries;
pub mod error;
pub mod extract;
pub mod routes;

pub use auth::{Authenticator, JwtClaims};
pub use deliveries::Deliveries;
pub use error::ApiError;
pub use routes::{api, routes, Access, ApiState, Function, Needs, Route, Slice};
