//! Access token format and the attacks a bearer token endpoint must reject.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{spawn_app, TestApp, TEST_SECRET};

fn unix_now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Claims of a valid access token for `user_id` on a default test server.
fn valid_claims(user_id: i64) -> Value {
    let now = unix_now();
    json!({
        "sub": user_id.to_string(),
        "email": "forged@example.test",
        "role": "user",
        "iat": now,
        "exp": now + 600,
        "jti": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        "sid": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        "iss": "confab",
        "aud": "confab-api",
        "typ": "access",
    })
}

/// Signs `claims` with `algorithm` and `secret` through jsonwebtoken.
fn sign(algorithm: Algorithm, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn forge(claims: &Value) -> String {
    sign(Algorithm::HS256, claims, TEST_SECRET.as_bytes())
}

/// Builds a token from raw JSON text, signed with HMAC-SHA256 and the test
/// secret, for payloads that serde would not produce (duplicated keys).
fn forge_raw(header: &str, payload: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = hmac_sha256(TEST_SECRET.as_bytes(), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn with(claims: &Value, key: &str, value: Value) -> Value {
    let mut claims = claims.clone();
    claims[key] = value;
    claims
}

fn without(claims: &Value, key: &str) -> Value {
    let mut claims = claims.clone();
    claims.as_object_mut().unwrap().remove(key);
    claims
}

/// Sends `authorization` as the raw header value to `/auth/me`.
async fn me_with_header(app: &TestApp, authorization: &str) -> reqwest::Response {
    app.client
        .get(app.url("/auth/me"))
        .header("authorization", authorization)
        .send()
        .await
        .expect("request failed")
}

/// Asserts the 401 response to a rejected token, naming the case on failure.
async fn assert_rejected(response: reqwest::Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}: unexpected status");
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{case}: unexpected content type"
    );
    assert_eq!(
        headers["www-authenticate"], "Bearer error=\"invalid_token\"",
        "{case}: unexpected challenge"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["code"], "invalid_token",
        "{case}: unexpected problem {body}"
    );
    assert_eq!(body["status"], 401, "{case}");
}

#[tokio::test]
async fn issued_token_has_standard_hs256_format() {
    let app = spawn_app().await;
    let body = app.register("format@example.test").await;
    let token = body["access_token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);

    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let expected = hmac_sha256(TEST_SECRET.as_bytes(), signing_input.as_bytes());
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), expected);

    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "JWT");

    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        claims["sub"],
        body["user"]["id"].as_i64().unwrap().to_string()
    );
    assert_eq!(claims["email"], "format@example.test");
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["iss"], "confab");
    assert_eq!(claims["aud"], "confab-api");
    assert_eq!(claims["typ"], "access");
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - iat, 1800, "default lifetime is 30 minutes");
    assert!((iat - unix_now()).abs() <= 5);
    let jti = URL_SAFE_NO_PAD
        .decode(claims["jti"].as_str().unwrap())
        .unwrap();
    assert_eq!(jti.len(), 16, "jti carries 128 bits");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["token_type"], "bearer");
}

#[tokio::test]
async fn token_ids_are_unique() {
    let app = spawn_app().await;
    let first = app.register("unique@example.test").await;
    let login = app
        .post_json(
            "/auth/login",
            &json!({ "email": "unique@example.test", "password": crate::helpers::PASSWORD }),
            None,
        )
        .await;
    let second: Value = login.json().await.unwrap();

    let jti = |body: &Value| {
        let payload = body["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    assert_ne!(jti(&first), jti(&second));
}

#[tokio::test]
async fn forged_token_with_test_secret_is_accepted() {
    // The control for every attack below: the forging itself is right.
    let app = spawn_app().await;
    let (id, _) = app.user("control@example.test").await;
    let response = app.get("/auth/me", Some(&forge(&valid_claims(id)))).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn algorithm_attacks_are_rejected() {
    let app = spawn_app().await;
    let (id, _) = app.user("alg@example.test").await;
    let claims = valid_claims(id);
    let payload = serde_json::to_string(&claims).unwrap();
    let encoded_payload = URL_SAFE_NO_PAD.encode(&payload);

    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{encoded_payload}.");
    let alg_none_signed = forge_raw(r#"{"alg":"none","typ":"JWT"}"#, &payload);
    let hs512 = sign(Algorithm::HS512, &claims, TEST_SECRET.as_bytes());
    let hs384 = sign(Algorithm::HS384, &claims, TEST_SECRET.as_bytes());
    // An RS256 header with an HMAC made from the shared key: the key-confusion attack.
    let rs256 = forge_raw(r#"{"alg":"RS256","typ":"JWT"}"#, &payload);
    let other_secret = sign(
        Algorithm::HS256,
        &claims,
        b"another-secret-that-is-also-32-bytes-long",
    );

    for (case, token) in [
        ("alg none, empty signature", alg_none),
        ("alg none, HMAC signature", alg_none_signed),
        ("HS512", hs512),
        ("HS384", hs384),
        ("RS256 header", rs256),
        ("another secret", other_secret),
    ] {
        assert_rejected(app.get("/auth/me", Some(&token)).await, case).await;
    }
}

#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let app = spawn_app().await;
    let (_, token) = app.user("tamper@example.test").await;

    let mut flipped = token.clone().into_bytes();
    // Flip a bit in a middle signature character; the last one may carry only padding bits.
    let index = flipped.len() - 5;
    flipped[index] = if flipped[index] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();

    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let admin_payload = {
        let payload = rest.split('.').next().unwrap();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["role"] = json!("admin");
        URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    let swapped_payload = format!("{header}.{admin_payload}.{signature}");

    for (case, token) in [
        ("flipped signature byte", flipped),
        ("payload changed, old signature", swapped_payload),
        (
            "signature removed",
            format!("{header}.{}.", rest.split('.').next().unwrap()),
        ),
    ] {
        assert_rejected(app.get("/auth/me", Some(&token)).await, case).await;
    }
}

#[tokio::test]
async fn claim_attacks_are_rejected() {
    let app = spawn_app().await;
    let (id, _) = app.user("claims@example.test").await;
    let claims = valid_claims(id);
    let now = unix_now();

    let cases = [
        (
            "exp one second in the past",
            with(&claims, "exp", json!(now - 1)),
        ),
        ("exp now", with(&claims, "exp", json!(now))),
        ("exp missing", without(&claims, "exp")),
        (
            "exp a string",
            with(&claims, "exp", json!((now + 600).to_string())),
        ),
        ("iat missing", without(&claims, "iat")),
        ("iat in the future", with(&claims, "iat", json!(now + 60))),
        ("nbf in the future", with(&claims, "nbf", json!(now + 60))),
        ("wrong iss", with(&claims, "iss", json!("someone-else"))),
        ("iss missing", without(&claims, "iss")),
        ("wrong aud", with(&claims, "aud", json!("other-api"))),
        ("aud missing", without(&claims, "aud")),
        ("wrong typ", with(&claims, "typ", json!("refresh"))),
        ("typ missing", without(&claims, "typ")),
        ("sub missing", without(&claims, "sub")),
        ("sub a number", with(&claims, "sub", json!(id))),
        ("sub not an id", with(&claims, "sub", json!("alice"))),
        ("jti missing", without(&claims, "jti")),
        ("jti too short", with(&claims, "jti", json!("abc"))),
        ("sid missing", without(&claims, "sid")),
        ("sid malformed", with(&claims, "sid", json!("abc"))),
        ("role unknown", with(&claims, "role", json!("root"))),
        ("email missing", without(&claims, "email")),
    ];
    for (case, claims) in cases {
        assert_rejected(app.get("/auth/me", Some(&forge(&claims))).await, case).await;
    }
}

#[tokio::test]
async fn duplicated_claims_are_rejected() {
    let app = spawn_app().await;
    let (id, _) = app.user("dup@example.test").await;
    let claims = valid_claims(id);
    let body = serde_json::to_string(&claims).unwrap();
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;

    // Each payload repeats one claim at the end; a parser keeping the last
    // value would see another user, role or expiry.
    for (case, extra) in [
        ("sub twice", r#""sub":"999999""#.to_owned()),
        ("role twice", r#""role":"admin""#.to_owned()),
        ("exp twice", format!(r#""exp":{}"#, unix_now() + 99_999)),
        ("aud twice", r#""aud":"other-api""#.to_owned()),
    ] {
        let payload = format!("{},{extra}}}", body.trim_end_matches('}'));
        assert_rejected(
            app.get("/auth/me", Some(&forge_raw(header, &payload)))
                .await,
            case,
        )
        .await;
    }
    let duplicated_header = r#"{"alg":"HS256","alg":"none","typ":"JWT"}"#;
    let token = forge_raw(duplicated_header, &body);
    assert_rejected(app.get("/auth/me", Some(&token)).await, "alg twice").await;
}

#[tokio::test]
async fn malformed_tokens_are_rejected() {
    let app = spawn_app().await;
    let (_, token) = app.user("malformed@example.test").await;
    let huge = format!("{token}{}", "A".repeat(100 * 1024));
    let huge_three_parts = format!(
        "{}.{}.{}",
        "A".repeat(50_000),
        "B".repeat(50_000),
        "C".repeat(400)
    );

    for (case, token) in [
        ("100 KB token", huge),
        ("100 KB token in three parts", huge_three_parts),
        (
            "garbage with no dots",
            "garbage-without-any-dots".to_owned(),
        ),
        ("two parts", "abc.def".to_owned()),
        ("four parts", format!("{token}.extra")),
        ("not base64", "!!!.???.***".to_owned()),
        ("empty parts", "..".to_owned()),
    ] {
        assert_rejected(app.get("/auth/me", Some(&token)).await, case).await;
    }
}

#[tokio::test]
async fn malformed_authorization_headers_are_rejected() {
    let app = spawn_app().await;
    let (_, token) = app.user("header@example.test").await;

    for (case, header) in [
        ("Bearer with no token", "Bearer".to_owned()),
        ("Bearer and a space", "Bearer ".to_owned()),
        ("another scheme", format!("Basic {token}")),
        ("token without scheme", token.clone()),
    ] {
        assert_rejected(me_with_header(&app, &header).await, case).await;
    }
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let (_, token) = app.user("scheme@example.test").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = me_with_header(&app, &format!("{scheme} {token}")).await;
        assert_eq!(response.status(), 200, "scheme {scheme}");
    }
}

#[tokio::test]
async fn missing_header_gets_bare_challenge() {
    let app = spawn_app().await;
    let response = app.get("/auth/me", None).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    crate::helpers::assert_problem(response, 401, "missing_token").await;
}
