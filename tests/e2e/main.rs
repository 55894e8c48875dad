//! The end-to-end suite of sspr, one binary: conformance of every adapter, the flows over HTTP
//! against the local server (embedded and on the AWS emulator), and the Lambda handlers fed
//! with the sample events.

/// Runs each named test on the embedded store and directory, and on the AWS emulator: `mod
/// embedded` and `mod moto`, one test each, calling the function of that name with its server.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::start_embedded().await).await
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::start_moto().await).await
                }
            )*
        }
    };
}

mod admin;
mod cfn;
mod cli;
mod conformance;
mod flows;
mod handlers;
mod hybrid;
mod iam;
mod input;
mod lambda;
mod ldap;
mod oidc;
mod openapi;
mod signin;
mod support;
mod template_deploy;
mod template_ldap;
mod template_signin;
mod timing;
mod voice;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned()
}

/// `infra/template.yaml`, parsed (CloudFormation tags such as `!Ref` are kept as tagged values).
pub fn template() -> serde_yaml::Value {
    let path = repo_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
