//! The voice adapter against a stand-in for AWS End User Messaging SMS and Voice v2 on a
//! loopback port (the AWS emulator has no voice service). The stand-in checks each request as
//! the service would (operation, protocol, signature scope, members), records it, and answers
//! as the service does: a message ID, or the error it is told to give.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use sspr_core::ports::Voice;
use sspr_core::types::PhoneNumber;

use crate::support;

const TARGET: &str = "PinpointSMSVoiceV2.SendVoiceMessage";
const JSON_1_0: &str = "application/x-amz-json-1.0";
/// The members of `SendVoiceMessage`'s input; the service refuses any other.
const MEMBERS: [&str; 12] = [
    "DestinationPhoneNumber",
    "OriginationIdentity",
    "MessageBody",
    "MessageBodyTextType",
    "VoiceId",
    "ConfigurationSetName",
    "MaxPricePerMinute",
    "TimeToLive",
    "Context",
    "DryRun",
    "ProtectConfigurationId",
    "MessageFeedbackEnabled",
];

const ORIGINATION: &str = "pool-0123456789abcdef0123456789abcdef";
const CODE: &str = "48151623";
const TEXT: &str = "Your sspr code is 48151623.";

/// What the stand-in answers a well-formed request with.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// 200 with a message ID, as the service answers a call it places.
    Accept,
    /// A service error: its status, its `__type` and its message.
    Refuse { status: u16, kind: &'static str, message: &'static str },
}

/// A request as it reached the stand-in, and the status it was answered with.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub target: String,
    pub content_type: String,
    pub authorization: String,
    /// The JSON body, or `null` when it was not JSON.
    pub body: Value,
    pub status: u16,
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    answer: Mutex<Answer>,
}

/// The stand-in, serving until it is dropped.
pub struct StandIn {
    pub url: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl StandIn {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared { requests: Mutex::default(), answer: Mutex::new(Answer::Accept) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let router = Router::new().fallback(serve).with_state(Arc::clone(&shared));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self { url, shared, shutdown: Some(tx) }
    }

    /// How the following requests are answered.
    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().expect("answer") = answer;
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests").clone()
    }

    /// The SDK's configuration for the stand-in, as `support::sdk` has it for the emulator, with
    /// quick retries.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        sdk_at(&self.url).await
    }

    /// The adapter as the application builds it, speaking to the stand-in.
    pub async fn voice(&self) -> sspr_aws::PinpointVoice {
        let client = aws_sdk_pinpointsmsvoicev2::Client::new(&self.sdk().await);
        sspr_aws::PinpointVoice::new(client, ORIGINATION.into(), "Joanna".into())
    }
}

async fn sdk_at(url: &str) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sspr_aws::https_client())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_pinpointsmsvoicev2::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(1)))
        .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(10)).build())
        .load()
        .await
}

fn header_of(headers: &HeaderMap, name: impl header::AsHeaderName) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// What the service would refuse in a request, if anything.
fn problem(request: &Recorded) -> Option<(&'static str, String)> {
    if request.method != "POST" || request.path != "/" {
        return Some(("UnknownOperationException", format!("{} {}", request.method, request.path)));
    }
    if request.target != TARGET {
        return Some(("UnknownOperationException", format!("X-Amz-Target {:?}", request.target)));
    }
    if request.content_type != JSON_1_0 {
        return Some(("SerializationException", format!("Content-Type {:?}", request.content_type)));
    }
    // Signed with Signature Version 4 for this service and region.
    if !request.authorization.starts_with("AWS4-HMAC-SHA256 Credential=testing/")
        || !request.authorization.contains("/us-east-1/sms-voice/aws4_request")
    {
        return Some(("UnrecognizedClientException", "the request is not signed for sms-voice".into()));
    }
    let Some(body) = request.body.as_object() else {
        return Some(("SerializationException", "the body is not a JSON object".into()));
    };
    if let Some(unknown) = body.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Some(("SerializationException", format!("unknown member {unknown}")));
    }
    let text = |member: &str| body.get(member).and_then(Value::as_str).unwrap_or_default();
    for required in ["DestinationPhoneNumber", "OriginationIdentity"] {
        if text(required).is_empty() {
            return Some(("ValidationException", format!("{required} is required")));
        }
    }
    if !text("DestinationPhoneNumber").starts_with('+') {
        return Some(("ValidationException", "DestinationPhoneNumber is not in E.164 form".into()));
    }
    // A call with nothing to read out is no call.
    if !(1..=6000).contains(&text("MessageBody").chars().count()) {
        return Some(("ValidationException", "MessageBody must be 1 to 6000 characters".into()));
    }
    if !body.get("MessageBodyTextType").is_none_or(|t| t == "TEXT" || t == "SSML") {
        return Some(("ValidationException", "MessageBodyTextType is TEXT or SSML".into()));
    }
    if !body.get("VoiceId").is_none_or(Value::is_string) {
        return Some(("ValidationException", "VoiceId is a string".into()));
    }
    None
}

fn service_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "__type": kind, "Message": message });
    (status, [(header::CONTENT_TYPE, JSON_1_0)], body.to_string()).into_response()
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        target: header_of(&headers, "x-amz-target"),
        content_type: header_of(&headers, header::CONTENT_TYPE),
        authorization: header_of(&headers, header::AUTHORIZATION),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status: 0,
    };
    let answer = *shared.answer.lock().expect("answer");
    let response = if let Some((kind, what)) = problem(&request) {
        service_error(StatusCode::BAD_REQUEST, kind, &what)
    } else if let Answer::Refuse { status, kind, message } = answer {
        service_error(StatusCode::from_u16(status).expect("status"), kind, message)
    } else {
        let n = shared.requests.lock().expect("requests").len();
        let body = json!({ "MessageId": format!("sspr-stand-in-{n}") });
        (StatusCode::OK, [(header::CONTENT_TYPE, JSON_1_0)], body.to_string()).into_response()
    };
    request.status = response.status().as_u16();
    shared.requests.lock().expect("requests").push(request);
    response
}

fn alice_phone() -> PhoneNumber {
    PhoneNumber::parse("+15555550142").expect("phone")
}

#[tokio::test]
async fn voice_calls_send_the_request_the_service_expects() {
    support::record_secret(CODE);
    let stand_in = StandIn::start().await;
    stand_in.voice().await.call(&alice_phone(), TEXT).await.expect("the call is placed");

    let requests = stand_in.requests();
    assert_eq!(requests.len(), 1, "one call, one request: {requests:?}");
    let sent = &requests[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str(), sent.status), ("POST", "/", 200));
    assert_eq!(sent.target, TARGET);
    assert_eq!(sent.content_type, JSON_1_0);
    assert!(sent.authorization.contains("/us-east-1/sms-voice/aws4_request"), "{}", sent.authorization);
    // These members and no others: no configuration set, price cap or dry run.
    assert_eq!(
        sent.body,
        json!({
            "DestinationPhoneNumber": "+15555550142",
            "OriginationIdentity": ORIGINATION,
            "MessageBody": TEXT,
            "MessageBodyTextType": "TEXT",
            "VoiceId": "JOANNA",
        })
    );

    // A voice the SDK does not know yet is sent by its name all the same.
    let client = aws_sdk_pinpointsmsvoicev2::Client::new(&stand_in.sdk().await);
    let newer = sspr_aws::PinpointVoice::new(client, ORIGINATION.into(), "NEWVOICE".into());
    newer.call(&alice_phone(), TEXT).await.expect("the call is placed");
    assert_eq!(stand_in.requests()[1].body["VoiceId"], "NEWVOICE");
}

#[tokio::test]
async fn a_refused_voice_call_is_unavailable_and_names_no_secret() {
    support::record_secret(CODE);
    let stand_in = StandIn::start().await;
    let voice = stand_in.voice().await;

    // A refusal is final: one request, no retry.
    stand_in.answer(Answer::Refuse {
        status: 400,
        kind: "ValidationException",
        message: "The destination phone number is opted out",
    });
    let refused = voice.call(&alice_phone(), TEXT).await.expect_err("a refused call is an error").to_string();
    assert!(refused.starts_with("voice: ") && refused.contains("opted out"), "{refused}");
    assert!(!refused.contains(CODE), "the error names the code: {refused}");
    assert_eq!(stand_in.requests().len(), 1, "a refusal is not retried");

    // Throttling is retried, up to the SDK's three attempts, and is then unavailable too.
    stand_in.answer(Answer::Refuse { status: 400, kind: "ThrottlingException", message: "Rate exceeded" });
    let throttled = voice.call(&alice_phone(), TEXT).await.expect_err("a throttled call is an error").to_string();
    assert!(throttled.starts_with("voice: ") && throttled.contains("Rate exceeded"), "{throttled}");
    assert!(!throttled.contains(CODE), "the error names the code: {throttled}");
    assert_eq!(stand_in.requests().len(), 1 + 3, "three attempts");
    assert!(stand_in.requests().iter().all(|r| r.status == 400));

    // So is a service that is not there: the stand-in, once dropped, serves no more.
    let url = stand_in.url.clone();
    drop(stand_in);
    let address = url.trim_start_matches("http://").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the stand-in still serves after it was dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gone = sspr_aws::PinpointVoice::from_config(&sdk_at(&url).await, ORIGINATION.into(), "JOANNA".into());
    let unreachable = gone.call(&alice_phone(), TEXT).await.expect_err("no service, no call").to_string();
    assert!(unreachable.starts_with("voice: "), "{unreachable}");
    assert!(!unreachable.contains(CODE), "the error names the code: {unreachable}");
}

/// The stand-in is no yes-man: what the service refuses, it refuses too, so the adapter's
/// accepted calls above prove the request well formed.
#[tokio::test]
async fn the_voice_stand_in_refuses_what_the_service_would() {
    let stand_in = StandIn::start().await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let signed = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sms-voice/aws4_request, SignedHeaders=host, \
                  Signature=0";
    let good = json!({
        "DestinationPhoneNumber": "+15555550142",
        "OriginationIdentity": ORIGINATION,
        "MessageBody": "hello",
        "MessageBodyTextType": "TEXT",
        "VoiceId": "JOANNA",
    });
    let send = |target: &'static str, authorization: &'static str, body: Value| {
        let request = http
            .post(&stand_in.url)
            .header("x-amz-target", target)
            .header("content-type", JSON_1_0)
            .header("authorization", authorization)
            .body(body.to_string());
        async move {
            let response = request.send().await.expect("the stand-in answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json")["__type"].clone())
        }
    };
    assert_eq!(send(TARGET, signed, good.clone()).await, (200, Value::Null));
    assert_eq!(send("PinpointSMSVoiceV2.SendTextMessage", signed, good.clone()).await.1, "UnknownOperationException");
    assert_eq!(send(TARGET, "", good.clone()).await.1, "UnrecognizedClientException");
    let mut unknown = good.clone();
    unknown["Voice"] = json!("JOANNA");
    assert_eq!(send(TARGET, signed, unknown).await.1, "SerializationException");
    let mut wrong_type = good.clone();
    wrong_type["MessageBodyTextType"] = json!("text");
    assert_eq!(send(TARGET, signed, wrong_type).await.1, "ValidationException");
    let mut national = good;
    national["DestinationPhoneNumber"] = json!("5555550142");
    assert_eq!(send(TARGET, signed, national).await.1, "ValidationException");
    let statuses: Vec<u16> = stand_in.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400]);
}
