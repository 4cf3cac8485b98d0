//! `GET /openapi.json`: the document's version, its routes, the bearer
//! scheme and the problem+json error schema.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};

/// Whether an operation needs the bearer token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Bearer,
}

/// Every API operation the router serves, kept by hand so that adding or
/// removing a route also changes this test. The web client's files under `/`
/// are documents for browsers and stay out of the OpenAPI document.
const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("GET", "/openapi.json", Access::Public),
    ("POST", "/auth/register", Access::Public),
    ("POST", "/auth/signup", Access::Public),
    ("POST", "/auth/login", Access::Public),
    ("POST", "/auth/logout", Access::Bearer),
    ("GET", "/auth/me", Access::Bearer),
    ("POST", "/auth/refresh", Access::Public),
    ("POST", "/auth/logout-all", Access::Bearer),
    ("POST", "/auth/password", Access::Bearer),
    ("GET", "/auth/sessions", Access::Bearer),
    ("DELETE", "/auth/sessions/{id}", Access::Bearer),
    ("GET", "/admin/users", Access::Bearer),
    ("PATCH", "/admin/users/{id}", Access::Bearer),
    ("POST", "/admin/users/{id}/disable", Access::Bearer),
    ("POST", "/admin/users/{id}/enable", Access::Bearer),
    ("GET", "/admin/security", Access::Bearer),
    ("GET", "/users", Access::Bearer),
    ("GET", "/chats", Access::Bearer),
    ("POST", "/chats", Access::Bearer),
    ("GET", "/chats/{chat_id}", Access::Bearer),
    ("PATCH", "/chats/{chat_id}", Access::Bearer),
    ("POST", "/chats/{chat_id}/members", Access::Bearer),
    (
        "DELETE",
        "/chats/{chat_id}/members/{user_id}",
        Access::Bearer,
    ),
    ("GET", "/chats/{chat_id}/messages", Access::Bearer),
    ("POST", "/chats/{chat_id}/messages", Access::Bearer),
    (
        "PATCH",
        "/chats/{chat_id}/messages/{message_id}",
        Access::Bearer,
    ),
    (
        "DELETE",
        "/chats/{chat_id}/messages/{message_id}",
        Access::Bearer,
    ),
    ("POST", "/chats/{chat_id}/read", Access::Bearer),
    // The token may also come in the first frame, so the header is optional.
    ("GET", "/ws", Access::Bearer),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn fetch_document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "application/json");
    response.json().await.unwrap()
}

/// Returns every operation of the document as (upper-case method, path, operation).
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let paths = document["paths"].as_object().expect("paths is an object");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                found.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

fn is_public(method: &str, path: &str) -> bool {
    ROUTES.contains(&(method, path, Access::Public))
}

#[tokio::test]
async fn document_is_openapi_3_1() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    let version = document["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.1."), "version {version}");
    assert_eq!(document["info"]["title"], "Confab");
}

#[tokio::test]
async fn document_lists_every_route() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    let documented: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let missing: Vec<_> = expected.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&expected).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(
        unknown.is_empty(),
        "documented but not in ROUTES: {unknown:?}"
    );
}

#[tokio::test]
async fn documented_operations_are_served() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    for (method, path, _) in operations(&document) {
        // Any id will do: the router matches before a handler looks at it.
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "1"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let response = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&concrete),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(body["code"], "route_not_found", "{method} {concrete}");
        assert_ne!(status, 405, "{method} {concrete}");
    }
}

#[tokio::test]
async fn protected_operations_require_bearer() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");

    for (method, path, operation) in operations(&document) {
        let requirements = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let uses_bearer = requirements
            .iter()
            .any(|requirement| requirement.get("bearer").is_some());
        if is_public(&method, &path) {
            assert!(!uses_bearer, "{method} {path} is public");
            continue;
        }
        assert!(uses_bearer, "{method} {path} lacks the bearer scheme");
        assert!(
            operation["responses"].get("401").is_some(),
            "{method} {path} lacks 401"
        );
    }
}

#[tokio::test]
async fn problem_schema_is_complete() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    let schemas = &document["components"]["schemas"];
    let problem = &schemas["Problem"];
    for field in ["type", "title", "status", "detail", "code", "errors"] {
        assert!(
            problem["properties"].get(field).is_some(),
            "Problem lacks {field}"
        );
    }
    let required: Vec<&str> = problem["required"]
        .as_array()
        .expect("Problem lists required fields")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!required.contains(&"errors"), "errors is only sent on 422");
    assert_eq!(
        problem["properties"]["errors"]["items"]["$ref"],
        "#/components/schemas/FieldError"
    );
    let field_error = &schemas["FieldError"]["properties"];
    assert!(field_error.get("field").is_some());
    assert!(field_error.get("message").is_some());
}

#[tokio::test]
async fn error_statuses_use_problem_json() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    for (method, path, operation) in operations(&document) {
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key("500"), "{method} {path} lacks 500");
        for (status, response) in responses {
            // /readyz answers 503 with its own readiness body.
            if !status.starts_with(['4', '5']) || (path == "/readyz" && status == "503") {
                continue;
            }
            assert_eq!(
                response["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
    }
}
