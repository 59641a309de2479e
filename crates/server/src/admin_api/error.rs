//! The admin API's one error shape, `{"code":"…","message":"…"}`, and the extractors that turn
//! every bad input (malformed JSON, a wrong query, an oversized body) into it instead of
//! axum's plain-text rejections.
//!
//! `code` is stable and machine-readable ([`ApiErrorCode`]); `message` is for the developer
//! reading the response and never carries internal details (those are logged).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use crate::store::StoreError;

/// What went wrong, for programs. One status per code (see [`ApiErrorCode::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApiErrorCode {
    /// 401: no `Authorization: Bearer …`, or not this tenant's API key (or no such tenant:
    /// the two are not told apart, so keys cannot be used to list tenants).
    AuthenticationFailed,
    /// 400: an id (tenant, image, discussion, comment, user) is not in its protocol format.
    InvalidId,
    /// 400: the query string or a field has a wrong value (a page size over the maximum, an
    /// unknown cursor…).
    InvalidRequest,
    /// 400: the body is not JSON of the expected shape.
    MalformedJson,
    /// 415: the body is not `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 413: the body is larger than the endpoint accepts.
    BodyTooLarge,
    /// 404: no such image (nothing was ever written on it).
    UnknownImage,
    /// 404: no such discussion on this image.
    UnknownChat,
    /// 404: no such comment in this discussion.
    UnknownComment,
    /// 404: no such ban.
    UnknownBan,
    /// 404: no such endpoint.
    NotFound,
    /// 405: the endpoint does not take this method.
    MethodNotAllowed,
    /// 409: the change does not fit the current state (see the message).
    Conflict,
    /// 429: too many requests from this address; `Retry-After` says when to retry.
    RateLimited,
    /// 503: the store failed; nothing was changed. Retrying may work.
    Unavailable,
}

impl ApiErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            ApiErrorCode::AuthenticationFailed => StatusCode::UNAUTHORIZED,
            ApiErrorCode::InvalidId
            | ApiErrorCode::InvalidRequest
            | ApiErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
            ApiErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorCode::UnknownImage
            | ApiErrorCode::UnknownChat
            | ApiErrorCode::UnknownComment
            | ApiErrorCode::UnknownBan
            | ApiErrorCode::NotFound => StatusCode::NOT_FOUND,
            ApiErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiErrorCode::Conflict => StatusCode::CONFLICT,
            ApiErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"code": "authentication-failed", "message": "this endpoint needs the tenant's API key (Authorization: Bearer …)"}))]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub code: ApiErrorCode,
    /// What went wrong, for the developer reading it.
    pub message: String,
}

/// An admin API request that failed: becomes an [`ErrorBody`] with the code's status.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    /// The code.
    pub code: ApiErrorCode,
    /// The message for the developer.
    pub message: String,
    /// Seconds to wait (`Retry-After`, with `rate-limited`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The 401 every authentication failure gets.
    pub fn unauthenticated() -> Self {
        Self::new(
            ApiErrorCode::AuthenticationFailed,
            "this endpoint needs the tenant's API key (Authorization: Bearer …)",
        )
    }

    /// A store failure: logged here, reported as `unavailable`.
    pub fn store(err: &StoreError) -> Self {
        tracing::error!(%err, "admin API: store failed");
        Self::new(
            ApiErrorCode::Unavailable,
            "the server could not complete this request; nothing was changed",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// The result of an admin API handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ApiErrorCode::UnsupportedMediaType,
            "the body must be Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                ApiErrorCode::BodyTooLarge,
                "the body is larger than this endpoint accepts",
            )
        }
        // serde's message names the field and what was expected, and only echoes the client's
        // own input back to it.
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            ApiError::new(ApiErrorCode::MalformedJson, rejection.body_text())
        }
        _ => ApiError::new(ApiErrorCode::MalformedJson, "the body could not be read"),
    }
}

/// A query string whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::new(ApiErrorCode::InvalidRequest, rejection.body_text())
}

/// Turns whatever error response axum itself produced under the admin API (an unknown method,
/// an unread body over the limit) into the one JSON shape; JSON answers pass untouched.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiErrorCode::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiErrorCode::UnsupportedMediaType,
        StatusCode::NOT_FOUND => ApiErrorCode::NotFound,
        s if s.is_server_error() => ApiErrorCode::Unavailable,
        _ => ApiErrorCode::InvalidRequest,
    };
    let message = match code {
        ApiErrorCode::MethodNotAllowed => "this endpoint does not take this method",
        ApiErrorCode::BodyTooLarge => "the body is larger than this endpoint accepts",
        ApiErrorCode::UnsupportedMediaType => "the body must be Content-Type: application/json",
        ApiErrorCode::NotFound => "no such endpoint (see /admin/api/openapi.json)",
        ApiErrorCode::Unavailable => "the server could not complete this request",
        _ => "the request could not be understood",
    };
    let mut json = ApiError::new(code, message).into_response();
    // Keep what the original said about retrying or the allowed methods.
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            json.headers_mut().insert(name, value.clone());
        }
    }
    *json.status_mut() = status;
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_an_error_status() {
        use ApiErrorCode::*;
        for code in [
            AuthenticationFailed,
            InvalidId,
            InvalidRequest,
            MalformedJson,
            UnsupportedMediaType,
            BodyTooLarge,
            UnknownImage,
            UnknownChat,
            UnknownComment,
            UnknownBan,
            NotFound,
            MethodNotAllowed,
            Conflict,
            RateLimited,
            Unavailable,
        ] {
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code:?}"
            );
        }
        let body = serde_json::to_string(&ErrorBody {
            code: BodyTooLarge,
            message: "m".into(),
        })
        .expect("json");
        assert_eq!(body, r#"{"code":"body-too-large","message":"m"}"#);
    }
}
