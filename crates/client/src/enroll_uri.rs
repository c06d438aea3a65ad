//! The one-time enrollment URI:
//! `portunus://<host>:<port>/enroll?pin=sha256:<64 hex>&code=<code>[&cert=<base64url DER>]`.
//!
//! Error messages name the part that is wrong but never echo the URI, because
//! it carries the enrollment code.

use crate::pin::CertPin;
use base64::Engine as _;
use portunus_domain::endpoint::Endpoint;
use std::fmt;

pub struct EnrollUri {
    pub endpoint: Endpoint,
    pub pin: CertPin,
    pub code: String,
}

impl fmt::Debug for EnrollUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollUri")
            .field("endpoint", &self.endpoint.to_string())
            .field("pin", &self.pin)
            .field("code", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid enrollment URI: {0}")]
pub struct EnrollUriError(String);

fn bad(why: impl Into<String>) -> EnrollUriError {
    EnrollUriError(why.into())
}

impl EnrollUri {
    pub fn parse(input: &str) -> Result<EnrollUri, EnrollUriError> {
        let url = url::Url::parse(input.trim()).map_err(|e| bad(format!("not a URI ({e})")))?;
        if url.scheme() != "portunus" {
            return Err(bad(format!(
                "scheme must be portunus://, got {}://",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("user info (user@) is not allowed"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("missing host"))?;
        let port = url
            .port()
            .ok_or_else(|| bad("missing port after the host"))?;
        let endpoint = Endpoint::parse(&format!("{host}:{port}"))
            .map_err(|e| bad(format!("bad server address: {}", e.message)))?;
        if url.path() != "/enroll" {
            return Err(bad(format!("path must be /enroll, got {:?}", url.path())));
        }
        if url.fragment().is_some() {
            return Err(bad("a #fragment is not allowed"));
        }

        let (mut pin, mut code, mut cert) = (None, None, None);
        for (key, value) in url.query_pairs() {
            let slot = match key.as_ref() {
                "pin" => &mut pin,
                "code" => &mut code,
                "cert" => &mut cert,
                // Unknown parameters are ignored so that a newer server can
                // add optional hints without breaking older clients.
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(bad(format!("parameter {key:?} appears more than once")));
            }
        }

        let pin = pin.ok_or_else(|| bad("missing pin= parameter"))?;
        let pin_hex = pin
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("pin must start with sha256:"))?;
        let pin = CertPin::parse_hex(pin_hex).map_err(|e| bad(format!("pin: {e}")))?;

        let code = code.ok_or_else(|| bad("missing code= parameter"))?;
        if code.is_empty() {
            return Err(bad("code= is empty"));
        }

        if let Some(cert) = cert {
            let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cert.as_bytes())
                .map_err(|e| bad(format!("cert is not unpadded base64url ({e})")))?;
            if !pin.matches(&der) {
                return Err(bad(format!(
                    "cert hashes to sha256:{} which does not match the pin",
                    CertPin::of_der(&der)
                )));
            }
        }

        Ok(EnrollUri {
            endpoint,
            pin,
            code,
        })
    }
}

#[cfg(test)]
mod tests;
