//! Every route of the API, declared once, a module per resource. The one list feeds the router
//! of the local server (all routes), each Lambda function's slice, the ports each function is
//! built with, and the checks of the SAM template, the OpenAPI contract and the sample events
//! (docs/architecture.md, "Routes and functions").

mod admin;
mod me;
mod reset;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use lambda_http::request::RequestContext;
use sspr_core::audit::{new_request_id, RequestInfo};
use sspr_core::Sspr;
use std::net::SocketAddr;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;

/// What every handler needs, built once at start.
#[derive(Clone)]
pub struct ApiState {
    pub sspr: Arc<Sspr>,
    pub auth: Arc<dyn Authenticator>,
    /// Reset codes being delivered after their answer.
    pub deliveries: crate::Deliveries,
}

/// The Lambda functions of a deployment; each serves a slice of the routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// Challenge, start and complete a reset.
    Reset,
    /// Send a reset code.
    SendCode,
    /// Verify a method during a reset.
    Verify,
    /// Registration of recovery methods by the signed-in person.
    Register,
    /// The administrators' API.
    Admin,
}

impl Function {
    pub const ALL: [Function; 5] =
        [Function::Reset, Function::SendCode, Function::Verify, Function::Register, Function::Admin];

    /// The binary's name: its folder under `functions/` and `BuildProperties.Binary` in the template.
    pub fn binary(self) -> &'static str {
        match self {
            Function::Reset => "reset",
            Function::SendCode => "send-code",
            Function::Verify => "verify",
            Function::Register => "register",
            Function::Admin => "admin",
        }
    }

    /// Whether its routes start [`crate::Deliveries`] that go on after the answer (send-code's
    /// reset codes): its Lambda function then waits for them before the invocation ends.
    pub fn delivers_after_answer(self) -> bool {
        self == Function::SendCode
    }

    pub fn routes(self) -> impl Iterator<Item = Route> {
        routes().into_iter().filter(move |r| r.function == self)
    }

    /// The ports beyond the store that this function's routes use; the function is built with
    /// exactly these.
    pub fn needs(self) -> Needs {
        self.routes().fold(Needs::NONE, |all, r| all.and(r.needs))
    }
}

/// Ports a route uses besides the store (which every route uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    pub directory: bool,
    pub sms: bool,
    pub voice: bool,
    pub email: bool,
}

impl Needs {
    pub const NONE: Needs = Needs { directory: false, sms: false, voice: false, email: false };
    pub const ALL: Needs = Needs { directory: true, sms: true, voice: true, email: true };

    pub fn and(self, other: Needs) -> Needs {
        Needs {
            directory: self.directory || other.directory,
            sms: self.sms || other.sms,
            voice: self.voice || other.voice,
            email: self.email || other.email,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the reset routes.
    Anonymous,
    /// A signed-in person (the JWT authorizer in AWS, the local sign-in locally).
    SignedIn,
    /// A signed-in administrator: the identity must carry an administrators' group.
    Admin,
}

/// One route: where it is, who serves and may call it, what it needs, and its handler.
#[derive(Clone)]
pub struct Route {
    pub method: Method,
    /// The path as the SAM template and the OpenAPI file write it (`{method}`), one parameter
    /// name per segment, as API Gateway and the router require.
    pub path: &'static str,
    pub function: Function,
    pub access: Access,
    pub needs: Needs,
    handler: fn() -> MethodRouter<ApiState>,
}

impl Route {
    /// `METHOD /path`, as API Gateway names a route.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    [reset::routes(), me::routes(), admin::routes()].concat()
}

/// Which routes a router serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slice {
    /// The local server: every route.
    All,
    /// One Lambda function's routes.
    Function(Function),
}

/// The API router for `slice`, with body limit, error shapes and security headers.
pub fn api(state: ApiState, slice: Slice) -> Router {
    let mut router = Router::new();
    for route in routes() {
        if slice == Slice::All || slice == Slice::Function(route.function) {
            router = router.route(route.path, (route.handler)());
        }
    }
    router
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(state.clone(), helpdesk_on_reset_errors))
        .layer(middleware::from_fn_with_state(state.clone(), within_request))
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::internal().into_response()
        }))
}

/// Where the request came from, for the audit log: API Gateway's request context in AWS, the
/// connection's peer in the local server.
fn request_info(state: &ApiState, request: &Request) -> RequestInfo {
    if let Some(RequestContext::ApiGatewayV2(context)) = request.extensions().get::<RequestContext>() {
        return RequestInfo { source_ip: context.http.source_ip.clone(), request_id: context.request_id.clone() };
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string());
    RequestInfo { source_ip: peer, request_id: Some(new_request_id(&*state.sspr.ports.rng)) }
}

/// Runs the handler with its request's origin set for every audit event it records.
async fn within_request(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let info = request_info(&state, &request);
    sspr_core::audit::within_request(info, next.run(request)).await
}

/// Adds the policy's helpdesk link to every error of a reset route, so the page can point the
/// person to help (docs/architecture.md, "Errors").
async fn helpdesk_on_reset_errors(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let is_reset = request.uri().path().starts_with("/v1/reset/");
    let response = next.run(request).await;
    if !is_reset || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let helpdesk = match state.sspr.policy().await {
        Ok(policy) => policy.helpdesk,
        Err(_) => None,
    };
    let Some(helpdesk) = helpdesk else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES * 4).await else {
        return ApiError::internal().into_response();
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("helpdesk".into(), helpdesk.as_str().into());
            parts.headers.remove(header::CONTENT_LENGTH);
            serde_json::to_vec(&map).map(axum::body::Body::from).unwrap_or_else(|_| bytes.into())
        }
        _ => bytes.into(),
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once_and_served_by_one_function() {
        let keys: Vec<String> = routes().iter().map(Route::key).collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        for f in Function::ALL {
            assert!(f.routes().next().is_some(), "{f:?} serves nothing");
        }
        for r in routes() {
            assert_eq!(r.access == Access::SignedIn, r.path.starts_with("/v1/me/"), "{r:?}");
            assert_eq!(r.access == Access::Admin, r.path.starts_with("/v1/admin/"), "{r:?}");
            assert_eq!(r.function == Function::Admin, r.access == Access::Admin, "{r:?}");
        }
    }

    #[test]
    fn functions_need_only_what_their_routes_use() {
        assert_eq!(Function::Verify.needs(), Needs::NONE);
        assert_eq!(Function::SendCode.needs(), Needs { directory: false, sms: true, voice: true, email: true });
        assert_eq!(Function::Reset.needs(), Needs { directory: true, sms: false, voice: false, email: true });
        assert_eq!(Function::Register.needs(), Needs::ALL);
        assert_eq!(Function::Admin.needs(), Needs::NONE);
    }

    #[test]
    fn a_path_segment_has_one_parameter_name_whatever_the_route() {
        // API Gateway and the router both refuse two names for one segment (`{kind}` beside `{id}`).
        let mut names = std::collections::BTreeMap::new();
        for route in routes() {
            let segments: Vec<&str> = route.path.split('/').collect();
            for (i, segment) in segments.iter().enumerate() {
                if segment.starts_with('{') {
                    let parent = segments[..i].join("/");
                    let name = names.entry(parent.clone()).or_insert(*segment);
                    assert_eq!(name, segment, "{route:?}: {parent}/ names its parameter {name} elsewhere");
                }
            }
        }
        assert!(!names.is_empty(), "the routes have parameters");
    }
}
