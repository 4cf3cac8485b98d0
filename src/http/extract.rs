//! Body, query and path extractors whose rejections are problem+json with the
//! offending field named, instead of axum's plain-text defaults.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{ApiError, FieldError};

/// JSON request body or response. Rejects a missing or wrong content type with
/// 415, unparsable JSON with 400 and a well-formed body of the wrong shape with 422.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_content_type(request.headers(), "application/json") {
            return Err(ApiError::UnsupportedMediaType {
                detail: "expected Content-Type: application/json".to_owned(),
            });
        }
        let bytes = read_body(request, state).await?;
        decode_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Reads the whole body within the configured size limit.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest {
                code: "invalid_body",
                detail: "the request body could not be read".to_owned(),
            },
        })
}

/// Returns whether the request's media type (ignoring parameters such as
/// `charset`) equals `expected`, also for `+json` suffixes when asking for JSON.
pub fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case(expected)
        || (expected == "application/json"
            && media_type.len() > 5
            && media_type.to_ascii_lowercase().ends_with("+json"))
}

/// Parses JSON, naming the field at fault when the shape is wrong.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        // serde stops at the first shape error, so `{} trailing` would be
        // reported as a missing field. A body that is not JSON at all is a 400.
        if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return not_json(&syntax);
        }
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => shape_error(&path, &inner.to_string()),
            _ => not_json(&inner),
        }
    })?;
    // Trailing garbage after the value would otherwise be ignored silently.
    deserializer.end().map_err(|error| not_json(&error))?;
    Ok(value)
}

fn not_json(error: &serde_json::Error) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_json",
        detail: format!("the body is not valid JSON: {error}"),
    }
}

/// Turns a serde data error into a 422 that names the field.
fn shape_error(path: &str, message: &str) -> ApiError {
    // serde reports a missing field at the parent path, naming it in the message.
    if let Some(field) = backticked(message, "missing field `") {
        let field = if path == "." {
            field
        } else {
            format!("{path}.{field}")
        };
        return ApiError::invalid_field(field, "is required");
    }
    if let Some(field) = backticked(message, "duplicate field `") {
        return ApiError::invalid_field(field, "appears more than once");
    }
    let field = if path == "." { "body" } else { path };
    // serde's text ends with " at line L column C"; the position adds nothing for a named field.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    ApiError::Validation(vec![FieldError::new(field, message)])
}

fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.split_once(prefix)?.1;
    Some(rest.split('`').next()?.to_owned())
}

/// Query string extractor with problem+json rejections (422, naming the parameter).
#[derive(Clone, Copy, Debug, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                query_error(&path, &message)
            })
    }
}

fn query_error(path: &str, message: &str) -> ApiError {
    if let Some(field) = backticked(message, "missing field `") {
        return ApiError::invalid_field(field, "is required");
    }
    let field = if path == "." { "query" } else { path };
    ApiError::invalid_field(field, message.to_owned())
}

/// Path parameters, with ids that are not numbers answered as 422.
#[derive(Clone, Copy, Debug, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;

        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                use axum::extract::path::ErrorKind;

                let field_error = match error.into_kind() {
                    ErrorKind::ParseErrorAtKey { key, .. } => {
                        FieldError::new(key, "must be a positive integer id")
                    }
                    other => FieldError::new("path", other.to_string()),
                };
                Err(ApiError::Validation(vec![field_error]))
            }
            Err(other) => Err(ApiError::Internal(anyhow::anyhow!(
                "path extraction failed: {other}"
            ))),
        }
    }
}
