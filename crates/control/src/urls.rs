//! URL handling for TwiML.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    #[error("{reference:?} is relative and there is no document URL to resolve it against")]
    NoBase { reference: String },
    #[error("{reference:?} is not a valid URL: {message}")]
    Invalid { reference: String, message: String },
}

/// Resolves `reference` against `base` (RFC 3986 §5). Absolute references need no base.
pub fn resolve(base: Option<&str>, reference: &str) -> Result<String, UrlError> {
    todo!()
}

/// The URL without its `#fragment` (connection overrides are never sent or signed).
pub fn strip_fragment(url: &str) -> &str {
    url.split('#').next().unwrap_or(url)
}
