//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! Handlers carry their own `#[utoipa::path]` annotations with the statuses
//! they return themselves. Extractors and middleware add more statuses to
//! every route of a kind: 401 on protected routes, 400/413/415 on JSON
//! bodies, 422 on parameters and 500 everywhere. This module adds those from
//! the shape of each operation, so no annotation can forget them.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::error::{FieldError, Problem, PROBLEM_JSON};
use crate::http::error::ApiError;
use crate::AppState;

/// Name of the bearer security scheme that protected operations reference.
pub const BEARER: &str = "bearer";

/// Document metadata and the shared schemas; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab",
        description = "A self-hosted chat server. Every error is `application/problem+json` \
                       (RFC 9457) with a stable `code`."
    ),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Accounts, tokens and sessions"),
        (name = "chat", description = "Users, conversations and messages"),
        (name = "admin", description = "Administration; administrators only"),
        (name = "realtime", description = "WebSocket delivery of events"),
    )
)]
pub struct ApiDoc;

/// Builds the whole document: the routes of [`crate::api_routes`] with the
/// statuses every route of their kind can return.
pub fn document() -> Document {
    let mut document = crate::api_routes().into_openapi();
    CommonResponses.modify(&mut document);
    document
}

/// The document as served, serialised once on first request.
static DOCUMENT_JSON: LazyLock<Result<String, String>> =
    LazyLock::new(|| document().to_json().map_err(|error| error.to_string()));

/// Returns this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn serve_document() -> Result<Response, ApiError> {
    let body = DOCUMENT_JSON.as_ref().map_err(|error| {
        ApiError::Internal(anyhow::anyhow!(
            "failed to serialise the OpenAPI document: {error}"
        ))
    })?;
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    Ok((content_type, body.clone()).into_response())
}

/// Adds to every operation of `router` the statuses of the per-address
/// request limit, for routes that the server wraps in
/// `throttle::limit_auth_requests`.
pub fn throttled(mut router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let statuses = [
        (
            "429",
            "Too many requests from this address (`rate_limited`); wait `Retry-After` seconds",
        ),
        (
            "503",
            "The throttle store is unreachable (`throttle_unavailable`); retry",
        ),
    ];
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        for operation in operations_mut(item) {
            add_missing(operation, &statuses);
        }
    }
    router
}

/// Adds the bearer scheme and the statuses that come from extractors and
/// middleware rather than from a handler, then gives every error status the
/// problem+json body.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from `POST /auth/login`, `/auth/register` or `/auth/refresh`",
                    ))
                    .build(),
            ),
        );

        for item in document.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                add_common_statuses(operation);
                attach_problem_bodies(operation);
            }
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Adds, unless the handler's annotation already lists them, the statuses
/// that the extractors of this kind of operation return.
fn add_common_statuses(operation: &mut Operation) {
    let is_protected = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let has_body = operation.request_body.is_some();
    let has_parameters = operation
        .parameters
        .as_ref()
        .is_some_and(|parameters| !parameters.is_empty());

    let mut statuses = Vec::new();
    if has_body {
        statuses.push(("400", "The body is not valid JSON or could not be read"));
    }
    if is_protected {
        statuses.push((
            "401",
            "The bearer token is missing, malformed, invalid, expired or revoked",
        ));
    }
    if has_body {
        statuses.push(("413", "The body is larger than the configured limit"));
        statuses.push(("415", "The body is not in a supported media type"));
    }
    if has_body || has_parameters {
        statuses.push((
            "422",
            "A parameter or body field is invalid; `errors` names each one",
        ));
    }
    statuses.push(("500", "The server failed; the cause is logged, not sent"));
    if is_protected {
        statuses.push((
            "503",
            "The database or the revocation list is unreachable; retry",
        ));
    }

    add_missing(operation, &statuses);
}

/// Adds each (status, description) response that `operation` does not list yet.
fn add_missing(operation: &mut Operation, statuses: &[(&str, &str)]) {
    let responses = &mut operation.responses.responses;
    for (status, description) in statuses {
        responses
            .entry((*status).to_owned())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(*description).build()));
    }
}

/// Gives every 4xx and 5xx response without a body the problem+json body,
/// 401 responses their `WWW-Authenticate` challenge and 429 responses their
/// `Retry-After` delay.
fn attach_problem_bodies(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !is_error_status(status) || !response.content.is_empty() {
            continue;
        }
        let problem = Content::new(Some(Ref::from_schema_name("Problem")));
        response
            .content
            .insert(PROBLEM_JSON.to_owned(), RefOr::T(problem));
        if status == "401" {
            let text = ObjectBuilder::new().schema_type(Type::String).build();
            let mut challenge = Header::new(text);
            challenge.description = Some(
                "`Bearer` for a missing token or a failed refresh token, \
                 `Bearer error=\"invalid_token\"` for a failed access token; \
                 absent with `invalid_credentials`"
                    .to_owned(),
            );
            response.headers.insert(
                header::WWW_AUTHENTICATE.as_str().to_owned(),
                RefOr::T(challenge),
            );
        }
        if status == "429" {
            let seconds = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .build();
            let mut delay = Header::new(seconds);
            delay.description = Some("Whole seconds to wait before retrying".to_owned());
            response
                .headers
                .insert(header::RETRY_AFTER.as_str().to_owned(), RefOr::T(delay));
        }
    }
}

fn is_error_status(status: &str) -> bool {
    status.starts_with('4') || status.starts_with('5')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_serialises_as_openapi_3_1() {
        let json = document().to_json().expect("the document serialises");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();

        assert_eq!(value["openapi"], "3.1.0");
        assert!(value["paths"]["/auth/login"]["post"].is_object());
        assert!(value["components"]["securitySchemes"][BEARER].is_object());
    }

    #[test]
    fn common_statuses_follow_operation_shape() {
        let document = document();
        let send = document.paths.paths["/chats/{chat_id}/messages"]
            .post
            .as_ref()
            .unwrap();
        let statuses: Vec<&str> = send
            .responses
            .responses
            .keys()
            .map(String::as_str)
            .collect();
        for status in ["400", "401", "413", "415", "422", "500", "503"] {
            assert!(
                statuses.contains(&status),
                "missing {status} in {statuses:?}"
            );
        }

        let health = document.paths.paths["/healthz"].get.as_ref().unwrap();
        let statuses: Vec<&str> = health
            .responses
            .responses
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(statuses, ["200", "500"]);
    }

    #[test]
    fn auth_routes_document_rate_limit() {
        let document = document();
        let me = document.paths.paths["/auth/me"].get.as_ref().unwrap();
        let Some(RefOr::T(limited)) = me.responses.responses.get("429") else {
            panic!("GET /auth/me lacks 429");
        };
        assert!(limited.headers.contains_key("retry-after"));
        assert!(limited.content.contains_key(PROBLEM_JSON));

        let chats = document.paths.paths["/chats"].get.as_ref().unwrap();
        assert!(!chats.responses.responses.contains_key("429"));
    }
}
