//! The refresh token as a cookie, for the web client.
//!
//! Browsers keep an `HttpOnly` cookie out of reach of the page's scripts, so
//! an injected script cannot steal the refresh token the way it could read
//! one kept in `localStorage`. The cookie is limited to `Path=/auth`, sent
//! only over HTTPS (`Secure`; browsers treat `localhost` and `127.0.0.1` as
//! secure too) and only on requests started by this site (`SameSite=Strict`).
//!
//! A cookie is sent by the browser whoever starts the request, which makes a
//! refresh that relies on it a cross-site request forgery target. Such a
//! refresh is accepted only from the server's own origin or from an origin
//! in the CORS allow list; see [`check_request_origin`].

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::sessions::TokenResponse;
use crate::config::CorsPolicy;
use crate::http::error::ApiError;
use crate::http::extract::{decode_json, has_content_type, read_body, Json};

/// Name of the cookie that carries the refresh token.
pub const REFRESH_COOKIE: &str = "confab_refresh";

/// The only path the browser sends the cookie to: the token is needed by
/// `/auth/refresh` and nowhere else.
const COOKIE_PATH: &str = "/auth";

/// Fetch metadata header that browsers set on every request (Chromium 76,
/// Firefox 90, Safari 16.4 and later) and pages cannot forge.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Builds the `Set-Cookie` value that stores `token` for `max_age`.
pub fn set_cookie(token: &str, max_age: Duration) -> HeaderValue {
    let max_age = cookie::time::Duration::seconds(max_age.as_secs().min(i64::MAX as u64) as i64);
    header_value(&refresh_cookie(token.to_owned()).max_age(max_age).build())
}

/// Builds the `Set-Cookie` value that makes the browser drop the cookie.
pub fn clear_cookie() -> HeaderValue {
    header_value(
        &refresh_cookie(String::new())
            .max_age(cookie::time::Duration::ZERO)
            .build(),
    )
}

fn refresh_cookie(value: String) -> cookie::CookieBuilder<'static> {
    Cookie::build((REFRESH_COOKIE, value))
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // Refresh tokens are base64url, and the name and attributes are fixed
    // ASCII, so the rendered cookie is always a valid header value.
    HeaderValue::from_str(&cookie.to_string()).expect("a refresh cookie is visible ASCII")
}

/// Returns the refresh token from the request's `Cookie` headers, if any.
pub fn token_from_cookies(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == REFRESH_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .filter(|token| !token.is_empty())
}

/// Picks the refresh token of a `POST /auth/refresh` and the name of the
/// field it came from, for error messages. A token in the body wins; the
/// cookie is used only without one, and only from an accepted origin.
pub fn presented_token(
    body_token: Option<String>,
    headers: &HeaderMap,
    cors: &CorsPolicy,
) -> Result<(&'static str, String), ApiError> {
    if let Some(token) = body_token {
        return Ok(("refresh_token", token));
    }
    let token = token_from_cookies(headers).ok_or_else(|| {
        ApiError::invalid_field(
            "refresh_token",
            format!("is required, in the body or the {REFRESH_COOKIE} cookie"),
        )
    })?;
    check_request_origin(headers, cors)?;
    Ok((REFRESH_COOKIE, token))
}

/// Checks that a request authenticated by the refresh cookie was started by
/// a page of this server or of an origin in the CORS allow list.
///
/// The rule, in order:
/// 1. `Sec-Fetch-Site: same-origin` is accepted.
/// 2. Any other `Sec-Fetch-Site` value (`same-site`, `cross-site`, `none`)
///    is accepted only with an `Origin` in the CORS allow list.
/// 3. Without `Sec-Fetch-Site`, `Origin` must name this server (its host and
///    port equal the `Host` header) or be in the CORS allow list.
/// 4. A request with neither header is rejected. Current browsers send
///    `Origin` on every `POST`, so only other clients omit both, and they
///    can send the token in the body instead.
///
/// The scheme of `Origin` is not compared with the server's, because behind
/// a TLS-terminating proxy the server cannot tell which scheme the browser used.
pub fn check_request_origin(headers: &HeaderMap, cors: &CorsPolicy) -> Result<(), ApiError> {
    let origin = headers.get(ORIGIN).and_then(|value| value.to_str().ok());
    let allowed_by_cors = origin.is_some_and(|origin| is_listed(origin, cors));
    let fetch_site = headers
        .get(SEC_FETCH_SITE)
        .and_then(|value| value.to_str().ok());

    let accepted = match fetch_site {
        Some(site) => site.eq_ignore_ascii_case("same-origin") || allowed_by_cors,
        None => {
            let host = headers.get(HOST).and_then(|value| value.to_str().ok());
            allowed_by_cors || origin.zip(host).is_some_and(|(o, h)| names_host(o, h))
        }
    };
    if accepted {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "cross_origin_refresh",
        format!(
            "a refresh with the {REFRESH_COOKIE} cookie must come from a page of this server; \
             other clients send refresh_token in the body"
        ),
    ))
}

/// Returns whether `origin` is one of the exact origins CORS allows with credentials.
fn is_listed(origin: &str, cors: &CorsPolicy) -> bool {
    match cors {
        CorsPolicy::Origins(origins) => origins.iter().any(|listed| listed == origin),
        // `*` never allows credentials, so it vouches for no origin here.
        CorsPolicy::AnyOrigin | CorsPolicy::Disabled => false,
    }
}

/// Returns whether `origin` (`scheme://host[:port]`) has the authority `host`.
fn names_host(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// Body of `POST /auth/refresh`; a browser may send none and rely on the cookie.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    /// The `refresh_token` of the last token response: 43 base64url characters.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The refresh token of a `POST /auth/refresh` body, if it carries one.
///
/// An empty body needs no `Content-Type`, so a browser can send a bare
/// `POST` and rely on the cookie. Any other body must be JSON, as before.
pub struct BodyToken(pub Option<String>);

impl<S: Send + Sync> FromRequest<S> for BodyToken {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = has_content_type(request.headers(), "application/json");
        let body = read_body(request, state).await?;
        if body.is_empty() {
            return Ok(Self(None));
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType {
                detail: "expected Content-Type: application/json".to_owned(),
            });
        }
        let parsed: RefreshBody = decode_json(&body)?;
        Ok(Self(parsed.refresh_token))
    }
}

/// A token response that also stores its refresh token in the cookie.
pub struct WithRefreshCookie(pub TokenResponse);

impl IntoResponse for WithRefreshCookie {
    fn into_response(self) -> Response {
        let tokens = self.0;
        let cookie = set_cookie(
            &tokens.refresh_token,
            Duration::from_secs(tokens.refresh_expires_in),
        );
        ([(SET_COOKIE, cookie)], Json(tokens)).into_response()
    }
}

/// The header that clears the cookie, for logout responses.
pub fn clearing_header() -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(SET_COOKIE, clear_cookie())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn allow_list() -> CorsPolicy {
        CorsPolicy::Origins(vec!["https://app.example.test".to_owned()])
    }

    #[test]
    fn set_cookie_has_every_attribute() {
        let value = set_cookie("abc", Duration::from_secs(60));
        let text = value.to_str().unwrap();
        assert!(text.starts_with("confab_refresh=abc;"), "{text}");
        for attribute in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/auth",
            "Max-Age=60",
        ] {
            assert!(text.contains(attribute), "{attribute} missing in {text}");
        }
    }

    #[test]
    fn clear_cookie_expires_at_once() {
        let text = clear_cookie().to_str().unwrap().to_owned();
        assert!(text.starts_with("confab_refresh=;"), "{text}");
        assert!(text.contains("Max-Age=0"), "{text}");
        assert!(text.contains("Path=/auth"), "{text}");
    }

    #[test]
    fn token_found_among_other_cookies() {
        let map = headers(&[("cookie", "a=1; confab_refresh=tok; b=2")]);
        assert_eq!(token_from_cookies(&map).as_deref(), Some("tok"));
        let map = headers(&[("cookie", "a=1"), ("cookie", "confab_refresh=tok")]);
        assert_eq!(token_from_cookies(&map).as_deref(), Some("tok"));
        assert_eq!(token_from_cookies(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(
            token_from_cookies(&headers(&[("cookie", "confab_refresh=")])),
            None
        );
    }

    #[test]
    fn body_token_wins_over_cookie() {
        let map = headers(&[("cookie", "confab_refresh=from-cookie")]);
        let chosen = presented_token(Some("from-body".to_owned()), &map, &allow_list()).unwrap();
        assert_eq!(chosen, ("refresh_token", "from-body".to_owned()));

        let map = headers(&[
            ("cookie", "confab_refresh=from-cookie"),
            ("sec-fetch-site", "same-origin"),
        ]);
        let chosen = presented_token(None, &map, &allow_list()).unwrap();
        assert_eq!(chosen, (REFRESH_COOKIE, "from-cookie".to_owned()));

        let missing = presented_token(None, &headers(&[]), &allow_list()).unwrap_err();
        assert_eq!(missing.code(), "validation_failed");
    }

    #[test]
    fn same_origin_requests_pass() {
        let cases = [
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[
                ("origin", "http://127.0.0.1:8000"),
                ("host", "127.0.0.1:8000"),
            ]),
            headers(&[
                ("origin", "https://Chat.Example.test"),
                ("host", "chat.example.test"),
            ]),
            headers(&[("origin", "https://app.example.test")]),
            headers(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://app.example.test"),
            ]),
        ];
        for case in cases {
            assert!(
                check_request_origin(&case, &allow_list()).is_ok(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn foreign_requests_fail() {
        let cases = [
            headers(&[]),
            headers(&[("host", "127.0.0.1:8000")]),
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test"),
            ]),
            headers(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://evil.test"),
            ]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[("origin", "https://evil.test"), ("host", "127.0.0.1:8000")]),
            headers(&[("origin", "null"), ("host", "127.0.0.1:8000")]),
            headers(&[
                ("origin", "http://127.0.0.1:9000"),
                ("host", "127.0.0.1:8000"),
            ]),
        ];
        for case in cases {
            let error = check_request_origin(&case, &allow_list()).unwrap_err();
            assert_eq!(error.code(), "cross_origin_refresh", "{case:?}");
        }
    }

    #[test]
    fn wildcard_cors_vouches_for_no_origin() {
        let map = headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.test"),
        ]);
        assert!(check_request_origin(&map, &CorsPolicy::AnyOrigin).is_err());
    }
}
