//! Assembly of sspr: the configuration, parsed once, and the one function that builds the
//! product from it. The Lambda functions, the local server and the tests all call it, so
//! each is built the same way (docs/architecture.md, "Assembly").

mod absent;
pub mod assemble;
pub mod config;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod secrets;

pub use assemble::{assemble, Assembled, Assembly};
/// The AWS configuration an [`Assembly`] may be given in place of the environment's.
pub use aws_config::SdkConfig as AwsConfig;
pub use config::{Config, ConfigError, Deployment, DirectoryKind};
