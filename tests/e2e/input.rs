//! Bad input (S13 in docs/security.md): malformed, oversized, wrongly typed and odd-Unicode requests get a 4xx
//! with a stable error code, never a panic or a 5xx. Plus the headers of S12.

use serde_json::{json, Value};

use crate::support::{start_embedded, TestServer};

/// Sends raw bytes with a content type; returns (status, body as JSON or Null).
async fn raw(server: &TestServer, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = server
        .http
        .request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), format!("{}{path}", server.url))
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = serde_json::from_str(&response.text().await.unwrap_or_default()).unwrap_or(Value::Null);
    crate::openapi::assert_documented(method, path, status, &body);
    (status, body)
}

fn assert_client_error(case: &str, status: u16, body: &Value) {
    assert!((400..500).contains(&status), "{case}: status {status} {body}");
    let code = body["error"].as_str().unwrap_or_else(|| panic!("{case}: no error code in {body}"));
    assert!(!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{case}: {code}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: no message in {body}");
}

const POST_ROUTES: [&str; 5] =
    ["/v1/reset/start", "/v1/reset/send-code", "/v1/reset/questions", "/v1/reset/verify", "/v1/reset/complete"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_stable_4xx_errors() {
    let server = start_embedded().await;
    let deep = format!("{}{}", "[".repeat(4_000), "]".repeat(4_000));
    let cases: Vec<(&str, Option<&str>, Vec<u8>, &str)> = vec![
        ("empty body", Some("application/json"), vec![], "invalid_json"),
        ("not json", Some("application/json"), b"username=alice".to_vec(), "invalid_json"),
        ("truncated", Some("application/json"), br#"{"username": "al"#.to_vec(), "invalid_json"),
        ("array", Some("application/json"), b"[]".to_vec(), "invalid_request"),
        ("null", Some("application/json"), b"null".to_vec(), "invalid_request"),
        ("wrong type", Some("application/json"), br#"{"username": 42}"#.to_vec(), "invalid_request"),
        (
            "unknown field",
            Some("application/json"),
            br#"{"username": "alice", "admin": true}"#.to_vec(),
            "invalid_request",
        ),
        ("lone surrogate", Some("application/json"), br#"{"username": "\ud800"}"#.to_vec(), "invalid_json"),
        ("invalid utf-8", Some("application/json"), b"{\"username\": \"\xff\xfe\"}".to_vec(), "invalid_json"),
        ("deep nesting", Some("application/json"), deep.into_bytes(), "invalid_request"),
        ("no content type", None, br#"{"username": "alice"}"#.to_vec(), "unsupported_media_type"),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            b"username=alice".to_vec(),
            "unsupported_media_type",
        ),
        (
            "oversized",
            Some("application/json"),
            format!(r#"{{"username": "{}"}}"#, "a".repeat(64 * 1024)).into_bytes(),
            "body_too_large",
        ),
    ];
    for (case, content_type, body, expected) in cases {
        let (status, reply) = raw(&server, "POST", "/v1/reset/start", content_type, body).await;
        assert_client_error(case, status, &reply);
        assert_eq!(reply["error"], expected, "{case}");
    }
}

/// Request bodies may be up to 16 KiB: one byte more is refused as too large, before parsing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_up_to_16_kib_are_read_and_larger_ones_refused() {
    const LIMIT: usize = 16 * 1024;
    let server = start_embedded().await;
    // Valid JSON of exactly `len` bytes: trailing whitespace pads it.
    let body = |len: usize| {
        let mut body = br#"{"username": "alice", "challenge": "x"}"#.to_vec();
        body.resize(len, b' ');
        body
    };
    for route in POST_ROUTES {
        for len in [LIMIT - 1, LIMIT] {
            let (status, reply) = raw(&server, "POST", route, Some("application/json"), body(len)).await;
            assert!(status != 413 && reply["error"] != "body_too_large", "{route}, {len} bytes: {status} {reply}");
            assert_ne!(reply["error"], "invalid_json", "{route}, {len} bytes: the body was read whole");
        }
        let (status, reply) = raw(&server, "POST", route, Some("application/json"), body(LIMIT + 1)).await;
        assert_eq!((status, reply["error"].as_str()), (413, Some("body_too_large")), "{route}, {} bytes", LIMIT + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_unicode_and_bad_values_are_refused_cleanly() {
    let server = start_embedded().await;
    let usernames = [
        json!(""),
        json!(" alice"),
        json!("al\u{0}ice"),
        json!("\u{202e}ecila"),
        json!("a".repeat(129)),
        json!("👩‍💻".repeat(40)),
        json!("é\u{301}\u{301}\u{301}"),
    ];
    for username in usernames {
        let challenge = server.challenge().await;
        let r = server.post("/v1/reset/start", json!({ "username": username, "challenge": challenge })).await;
        // Either a clean refusal or an ordinary session: never a 5xx.
        assert!(r.status == 200 || (400..500).contains(&r.status), "{username}: {r:?}");
        if r.status != 200 {
            assert_client_error("username", r.status, &r.body);
        }
    }
    let session = server.start_reset("alice").await.body["session"].clone();
    let bad = [
        (
            "/v1/reset/send-code",
            json!({"session": session, "method": "carrier-pigeon", "destination": "x"}),
            "invalid_input",
        ),
        (
            "/v1/reset/send-code",
            json!({"session": session, "method": "email", "destination": "not an email"}),
            "invalid_input",
        ),
        (
            "/v1/reset/send-code",
            json!({"session": session, "method": "sms", "destination": "+1 not a number"}),
            "invalid_input",
        ),
        (
            "/v1/reset/send-code",
            json!({"session": session, "method": "totp", "destination": "x"}),
            "method_not_available",
        ),
        (
            "/v1/reset/send-code",
            json!({"session": "🙂", "method": "email", "destination": "a@example.com"}),
            "invalid_session",
        ),
        ("/v1/reset/verify", json!({"session": session, "method": "email", "code": "١٢٣٤٥٦٧٨"}), "invalid_input"),
        ("/v1/reset/verify", json!({"session": session, "method": "questions", "code": "12345678"}), "invalid_request"),
        (
            "/v1/reset/verify",
            json!({"session": session, "method": "totp", "answers": [{"id": "q01", "answer": "x"}]}),
            "invalid_request",
        ),
        ("/v1/reset/verify", json!({"session": session, "method": "totp"}), "invalid_request"),
        (
            "/v1/reset/verify",
            json!({"session": session, "method": "questions", "answers": [{"id": "q01", "answer": "x".repeat(401)}]}),
            "invalid_input",
        ),
        ("/v1/reset/verify", json!({"session": session, "method": "questions", "answers": []}), "no_questions_drawn"),
        ("/v1/reset/questions", json!({"session": "🙂"}), "invalid_session"),
        ("/v1/reset/questions", json!({"session": session, "extra": 1}), "invalid_request"),
        ("/v1/reset/verify", json!({"session": session, "method": "email", "code": "1234"}), "invalid_input"),
        (
            "/v1/reset/verify",
            json!({"session": "AAAAAAAAAAAAAAAAAAAAAA", "method": "email", "code": "12345678"}),
            "invalid_session",
        ),
        ("/v1/reset/complete", json!({"session": session, "reset_token": "x", "new_password": "p"}), "invalid_token"),
        ("/v1/reset/complete", json!({"session": session, "reset_token": "AAAAAAAAAAAAAAAAAAAAAA"}), "invalid_request"),
        (
            "/v1/reset/complete",
            json!({"session": session, "reset_token": "AAAAAAAAAAAAAAAAAAAAAA", "new_password": "p", "unlock_only": true}),
            "invalid_request",
        ),
        (
            "/v1/reset/complete",
            json!({"session": session, "reset_token": "AAAAAAAAAAAAAAAAAAAAAA", "new_password": "whatever-long"}),
            "not_verified",
        ),
    ];
    for (path, body, expected) in bad {
        let r = server.post(path, body.clone()).await;
        assert_client_error(path, r.status, &r.body);
        assert_eq!(r.error(), expected, "{path} {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_methods_and_sign_in_are_checked() {
    let server = start_embedded().await;
    let r = server.call("GET", "/v1/nothing-here", None, None).await;
    assert_eq!((r.status, r.error()), (404, "not_found"));
    let r = server.call("GET", "/v1/reset/start", None, None).await;
    assert_eq!((r.status, r.error()), (405, "method_not_allowed"));
    for token in ["", "garbage", "a.b", "eyJzdWIiOiJhZG1pbiJ9.AAAA"] {
        let r = server.call("GET", "/v1/me/registration", Some(token), None).await;
        assert_eq!((r.status, r.error()), (401, "unauthenticated"), "{token}");
    }
    let r = server.post("/v1/local/signin", json!({"username": "alice", "password": "wrong"})).await;
    assert_eq!((r.status, r.error()), (401, "signin_failed"));
    let r = server.post("/v1/local/signin", json!({"username": "nobody", "password": "wrong"})).await;
    assert_eq!((r.status, r.error()), (401, "signin_failed"), "unknown users look like wrong passwords");
    let token = server.sign_in("alice", "alice-demo-Passw0rd").await.expect("sign in");
    for (method, path, body, expected) in [
        ("DELETE", "/v1/me/methods/..%2F..%2Fetc", None, "invalid_input"),
        ("DELETE", "/v1/me/methods/0123456789abcdef", None, "method_not_found"),
        ("POST", "/v1/me/methods/totp", Some(json!({"destination": "x"})), "invalid_request"),
        ("POST", "/v1/me/methods/pigeon", Some(json!({"destination": "+12025550123"})), "invalid_input"),
        ("PUT", "/v1/me/methods/questions", Some(json!({"answers": [{"question": "q01"}]})), "invalid_request"),
        (
            "PUT",
            "/v1/me/methods/questions",
            Some(json!({"answers": [{"question": "q99", "answer": "abc"}]})),
            "invalid_input",
        ),
        ("POST", "/v1/me/methods/email", Some(json!({"destination": "nope"})), "invalid_input"),
        ("POST", "/v1/me/methods/email/confirm", Some(json!({"code": 12345678})), "invalid_request"),
    ] {
        let r = server.call(method, path, Some(&token), body).await;
        assert_client_error(path, r.status, &r.body);
        assert_eq!(r.error(), expected, "{method} {path}");
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutates valid bodies (bytes flipped, inserted, cut; fields retyped) and sends them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_bodies_never_get_a_5xx() {
    let server = start_embedded().await;
    let session = server.start_reset("alice").await.body["session"].clone();
    let challenge = server.challenge().await;
    let seeds = [
        ("/v1/reset/start", json!({"username": "alice", "challenge": challenge})),
        ("/v1/reset/send-code", json!({"session": session, "method": "email", "destination": "alice@example.com"})),
        ("/v1/reset/questions", json!({"session": session})),
        ("/v1/reset/verify", json!({"session": session, "method": "sms", "code": "12345678"})),
        (
            "/v1/reset/verify",
            json!({"session": session, "method": "questions", "answers": [{"id": "q01", "answer": "Lisbon"}]}),
        ),
        (
            "/v1/reset/complete",
            json!({"session": session, "reset_token": "AAAAAAAAAAAAAAAAAAAAAA", "new_password": "Passw0rd-Passw0rd"}),
        ),
    ];
    let odd_values =
        [json!(null), json!(-1), json!(1e308), json!([]), json!({}), json!(true), json!("\u{0}"), json!("𝔘𝔫𝔦𝔠𝔬𝔡𝔢")];
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let mut cases = 0;
    for (route, seed) in &seeds {
        for _ in 0..150 {
            let mut body = seed.to_string().into_bytes();
            match rng.below(4) {
                0 => {
                    let i = rng.below(body.len());
                    body[i] = (rng.next() & 0xff) as u8;
                }
                1 => {
                    let i = rng.below(body.len());
                    let junk: Vec<u8> = (0..rng.below(8) + 1).map(|_| (rng.next() & 0xff) as u8).collect();
                    body.splice(i..i, junk);
                }
                2 => body.truncate(rng.below(body.len())),
                _ => {
                    let mut value = seed.clone();
                    let keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
                    let key = &keys[rng.below(keys.len())];
                    value[key] = odd_values[rng.below(odd_values.len())].clone();
                    body = value.to_string().into_bytes();
                }
            }
            let (status, reply) = raw(&server, "POST", route, Some("application/json"), body).await;
            assert!(status < 500, "{route}: {status} {reply}");
            if status >= 400 {
                assert_client_error(route, status, &reply);
            }
            cases += 1;
        }
    }
    assert_eq!(cases, 900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_api_send_protective_headers() {
    let server = start_embedded().await;
    for page in ["/reset", "/register"] {
        let response = server.http.get(format!("{}{page}", server.url)).send().await.expect("page");
        assert_eq!(response.status(), 200, "{page}");
        let headers = response.headers();
        let csp = headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(headers.get("referrer-policy").and_then(|v| v.to_str().ok()), Some("no-referrer"));
        let html = response.text().await.expect("html");
        assert!(!html.contains("<script>") && !html.contains(" onclick="), "{page}: inline script");
    }
    let response = server
        .http
        .post(format!("{}/v1/reset/start", server.url))
        .json(&json!({"username": "alice"}))
        .send()
        .await
        .expect("api");
    assert_eq!(response.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
}

/// S12: links in messages come from configuration, whatever Host the request names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_messages_ignore_the_host_header() {
    let server = start_embedded().await;
    let token = server.sign_in("alice", "alice-demo-Passw0rd").await.expect("sign in");
    let add = |email: &'static str| {
        server
            .http
            .post(format!("{}/v1/me/methods/email", server.url))
            .header("host", "evil.example")
            .bearer_auth(&token)
            .json(&json!({"destination": email}))
            .send()
    };
    let before = server.messages_to("host.test@example.com").await.len();
    assert_eq!(add("host.test@example.com").await.expect("send").status(), 202);
    let messages = server.messages_to("host.test@example.com").await;
    assert_eq!(messages.len(), before + 1);
    let code = crate::support::extract_code(messages.last().expect("message")).expect("code");
    let r = server.call("POST", "/v1/me/methods/email/confirm", Some(&token), Some(json!({"code": code}))).await;
    assert_eq!(r.status, 200);
    // Removing it sends a notice with a link.
    let id = r.body["methods"][0]["id"].as_str().expect("id").to_owned();
    let response = server
        .http
        .delete(format!("{}/v1/me/methods/{id}", server.url))
        .header("host", "evil.example")
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 200);
    let notice = server.messages_to("host.test@example.com").await.last().cloned().expect("notice");
    assert!(notice.contains(&format!("{}/register", server.url)), "{notice}");
    assert!(!notice.contains("evil.example"), "{notice}");
}

/// The proof of work: each solution once, before it expires, only as signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_start_needs_a_fresh_solved_challenge() {
    use base64::Engine as _;
    let server = start_embedded().await;
    let start =
        |challenge: String| server.post("/v1/reset/start", json!({"username": "alice", "challenge": challenge}));
    let solved = server.challenge().await;
    assert_eq!(start(solved.clone()).await.status, 200);
    let replay = start(solved).await;
    assert_eq!((replay.status, replay.error()), (400, "challenge_failed"), "a solution is used once");

    let solved = server.challenge().await;
    server.clock.advance(601);
    assert_eq!(start(solved).await.error(), "challenge_failed", "an old solution has expired");

    let engine = base64::engine::general_purpose::STANDARD;
    let mut solution: Value =
        serde_json::from_slice(&engine.decode(server.challenge().await).expect("b64")).expect("json");
    solution["number"] = json!(solution["number"].as_u64().expect("n") + 1);
    assert_eq!(start(engine.encode(solution.to_string())).await.error(), "challenge_failed", "a wrong number");

    // A challenge the server did not sign, however correctly solved, is refused.
    let salt = format!("00?expires={}", sspr_core::ports::Clock::now(&server.clock).0 + 300);
    let forged = json!({"algorithm": "SHA-256", "challenge": sspr_core::reset::challenge::sha256_hex(&salt, 1), "number": 1,
        "salt": salt, "signature": "00".repeat(32)});
    assert_eq!(start(engine.encode(forged.to_string())).await.error(), "challenge_failed", "not signed by us");
    for junk in ["", "not base64!", "e30="] {
        assert_eq!(start(junk.to_owned()).await.error(), "challenge_failed", "{junk}");
    }
    let r = server.post("/v1/reset/start", json!({"username": "alice"})).await;
    assert_eq!((r.status, r.error()), (422, "invalid_request"), "the challenge is required");
}
