//! Extractors whose rejections use the stable error envelope. Handlers take
//! these instead of axum's own, whose rejections answer plain text.

use super::error::ApiError;
use super::strict::Strict;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use portunus_domain::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The largest request body the API reads; every body it takes is a small
/// JSON object, so anything near this size is a mistake or an attack.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a JSON body was refused.
enum BodyError {
    TooLarge,
    /// The body could not be read, or no JSON content type was sent.
    Unusable(String),
    /// The text is not JSON, or its values do not fit the expected type;
    /// the message may quote the input.
    Invalid(String),
}

impl BodyError {
    /// The answer; `secret` bodies get one that never quotes the input.
    fn into_api(self, secret: bool) -> ApiError {
        let message = match self {
            BodyError::TooLarge => {
                return ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body: larger than {MAX_BODY_BYTES} bytes"),
                )
            }
            BodyError::Unusable(m) => m,
            BodyError::Invalid(_) if secret => {
                "request body: not the expected JSON object".to_string()
            }
            BodyError::Invalid(m) => m,
        };
        ApiError::new(ErrorCode::InvalidRequest, message)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, BodyError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge
        } else {
            BodyError::Unusable(format!("request body: {}", e.body_text()))
        }
    })
}

/// A request body as `T`. Every body this API takes is a JSON object, and
/// every struct in it is one too (see `strict`). A number with a zero
/// fraction (`5.0`) counts as the integer it equals, as it does in JSON
/// Schema.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| BodyError::Invalid(format!("request body: {e}")))?;
    if !value.is_object() {
        return Err(BodyError::Unusable(
            "request body: expected a JSON object".to_string(),
        ));
    }
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(Strict(value))
        .map_err(|e| BodyError::Invalid(format!("request body: {e}")))
}

/// Up to this magnitude every integer is exactly an `f64`.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

fn integral_floats_as_integers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if f.abs() <= EXACT_F64 {
                    *v = if f < 0.0 {
                        Value::from(f as i64)
                    } else {
                        Value::from(f as u64)
                    };
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

async fn json_object<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, BodyError> {
    if !is_json(req.headers()) {
        return Err(BodyError::Unusable(
            "request body: expected Content-Type: application/json".to_string(),
        ));
    }
    parse_object(&read(req, state).await?)
}

/// A JSON object body as `T`, answering `invalid_request` with the reason.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_object(req, state)
            .await
            .map(ApiJson)
            .map_err(|e| e.into_api(false))
    }
}

/// An optional JSON object body: an empty body or `null` is `None`. The
/// content type is not checked, so a bare `POST` works too.
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = read(req, state).await.map_err(|e| e.into_api(false))?;
        let text = body.trim_ascii();
        if text.is_empty() || text == b"null" {
            return Ok(OptionalJson(None));
        }
        parse_object(text)
            .map(|v| OptionalJson(Some(v)))
            .map_err(|e| e.into_api(false))
    }
}

/// `axum::extract::Query` with the same envelope on failure.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::new(ErrorCode::InvalidRequest, query_reason(&e))),
        }
    }
}

fn query_reason(e: &QueryRejection) -> String {
    format!("query string: {}", e.body_text())
}

/// `axum::extract::Path` with the envelope on failure, e.g. a segment
/// whose percent-encoding is not UTF-8.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(path_failure(&e)),
        }
    }
}

fn path_failure(e: &PathRejection) -> ApiError {
    // A handler asking for parameters its route lacks is a bug, not a bad
    // request; every other rejection is the caller's path.
    let code = if e.status().is_server_error() {
        ErrorCode::Internal
    } else {
        ErrorCode::InvalidRequest
    };
    ApiError::new(code, format!("path: {}", e.body_text()))
}

/// JSON for bodies that carry a password or token: a rejection names the
/// expected shape but never echoes the parser's view of the input.
pub struct SecretJson<T>(pub T);

impl<S, T> FromRequest<S> for SecretJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_object(req, state)
            .await
            .map(SecretJson)
            .map_err(|e| e.into_api(true))
    }
}

/// The peer address of the request, for per-source throttling. Without
/// connection info (in-process tests) it is the unspecified address.
pub struct SourceIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for SourceIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        Ok(SourceIp(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        port: u32,
        #[serde(default)]
        caps: Vec<u64>,
    }

    #[test]
    fn bodies_are_json_objects_with_integral_numbers() {
        let ok = |text: &str| parse_object::<Body>(text.as_bytes()).ok();
        assert_eq!(
            ok(r#"{"port": 80}"#),
            Some(Body {
                port: 80,
                caps: vec![]
            })
        );
        assert_eq!(
            ok(r#"{"port": 80.0, "caps": [1e3, 2]}"#),
            Some(Body {
                port: 80,
                caps: vec![1000, 2]
            })
        );
        let refused = |text: &str| match parse_object::<Body>(text.as_bytes()) {
            Err(e) => e.into_api(false).0,
            Ok(b) => panic!("{text} gave {b:?}"),
        };
        // serde alone would read the struct from an array.
        for text in ["[80, []]", "[80]", "80", "null", "\"x\""] {
            let e = refused(text);
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{text}");
            assert_eq!(e.message, "request body: expected a JSON object", "{text}");
        }
        for text in [
            r#"{"port": 80.5}"#,
            r#"{"port": -1.0}"#,
            r#"{"port": 1e20}"#,
            "{",
        ] {
            assert_eq!(refused(text).code, ErrorCode::InvalidRequest, "{text}");
        }
        let e = refused(r#"{"port": 1, "caps": ["x"]}"#);
        assert!(
            e.message.starts_with("request body: caps[0]: "),
            "{}",
            e.message
        );
        let secret = parse_object::<Body>(br#"{"port": "hunter2"}"#)
            .unwrap_err()
            .into_api(true);
        assert!(
            !secret.0.message.contains("hunter2"),
            "{}",
            secret.0.message
        );
    }

    #[test]
    fn json_content_types() {
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&h), json, "{value}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
