//! URL handling for TwiML.

use thiserror::Error;
use url::{ParseError, Url};

mod overrides;

pub use overrides::{parse_overrides, ConnectionOverrides, FetchFailure, RetryPolicy};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    #[error("{reference:?} is relative and there is no document URL to resolve it against")]
    NoBase { reference: String },
    #[error("{reference:?} is not a valid URL: {message}")]
    Invalid { reference: String, message: String },
}

/// Resolves `reference` against `base` (RFC 3986 §5). Absolute references need no base.
///
/// The result is the `url` crate's serialization (e.g. `https://h` → `https://h/`, default port
/// dropped): that is what the HTTP client puts on the wire, so it is also what must be signed.
pub fn resolve(base: Option<&str>, reference: &str) -> Result<String, UrlError> {
    resolve_url(base, reference).map(String::from)
}

fn invalid(reference: &str, message: impl Into<String>) -> UrlError {
    UrlError::Invalid {
        reference: reference.to_string(),
        message: message.into(),
    }
}

fn resolve_url(base: Option<&str>, reference: &str) -> Result<Url, UrlError> {
    match Url::parse(reference) {
        Ok(url) => Ok(url),
        Err(ParseError::RelativeUrlWithoutBase) => {
            let base = base.ok_or_else(|| UrlError::NoBase {
                reference: reference.to_string(),
            })?;
            let base = Url::parse(base)
                .map_err(|e| invalid(reference, format!("document URL {base:?}: {e}")))?;
            base.join(reference)
                .map_err(|e| invalid(reference, e.to_string()))
        }
        Err(e) => Err(invalid(reference, e.to_string())),
    }
}

/// Resolves a `<Play>` URL. Like [`resolve`], plus: in a static document (no base) a bare
/// absolute path `/srv/beep.wav` means `file:///srv/beep.wav`. Only http, https and file are
/// accepted, and a document fetched over HTTP may not name local files (it would let a remote
/// server play arbitrary files on this host to the caller).
pub fn resolve_media(base: Option<&str>, reference: &str) -> Result<String, UrlError> {
    let trimmed = reference.trim();
    let url = if base.is_none() && trimmed.starts_with('/') && !trimmed.starts_with("//") {
        resolve_url(Some("file:///"), trimmed)?
    } else {
        resolve_url(base, trimmed)?
    };
    match url.scheme() {
        "http" | "https" => Ok(url.into()),
        "file" => {
            let base_is_local = match base {
                None => true,
                Some(b) => b
                    .trim_start()
                    .get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("file:")),
            };
            if base_is_local {
                Ok(url.into())
            } else {
                Err(invalid(
                    reference,
                    "a document fetched over HTTP cannot play local files",
                ))
            }
        }
        other => Err(invalid(
            reference,
            format!("unsupported scheme {other:?} for media"),
        )),
    }
}

/// The URL without its `#fragment` (connection overrides are never sent or signed).
pub fn strip_fragment(url: &str) -> &str {
    url.split('#').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_action_resolves_against_document_url() {
        // SPEC §11 item 12.
        assert_eq!(
            resolve(Some("https://h/app/vm.xml"), "next").unwrap(),
            "https://h/app/next"
        );
        assert_eq!(
            resolve(Some("https://h/app/vm.xml"), "/root").unwrap(),
            "https://h/root"
        );
        assert_eq!(
            resolve(Some("https://h/app/vm.xml"), "../up?x=1").unwrap(),
            "https://h/up?x=1"
        );
        assert_eq!(
            resolve(Some("https://h/app/vm.xml?a=1"), "?b=2").unwrap(),
            "https://h/app/vm.xml?b=2"
        );
        assert_eq!(
            resolve(Some("https://h/app/vm.xml"), "//other/x").unwrap(),
            "https://other/x"
        );
    }

    #[test]
    fn absolute_reference_needs_no_base() {
        assert_eq!(
            resolve(None, "https://x.example/cb?a=1").unwrap(),
            "https://x.example/cb?a=1"
        );
        assert_eq!(
            resolve(Some("https://h/a"), "http://o/b").unwrap(),
            "http://o/b"
        );
    }

    #[test]
    fn relative_without_base_is_no_base() {
        assert_eq!(
            resolve(None, "next"),
            Err(UrlError::NoBase {
                reference: "next".into()
            })
        );
    }

    #[test]
    fn invalid_reference_and_invalid_base_are_reported() {
        assert!(matches!(
            resolve(None, "http://[::1"),
            Err(UrlError::Invalid { .. })
        ));
        assert!(matches!(
            resolve(Some("not a url"), "next"),
            Err(UrlError::Invalid { .. })
        ));
    }

    #[test]
    fn media_bare_path_without_base_is_a_file_url() {
        assert_eq!(
            resolve_media(None, "/srv/beep.wav").unwrap(),
            "file:///srv/beep.wav"
        );
        assert_eq!(
            resolve_media(None, " file:///srv/beep.wav ").unwrap(),
            "file:///srv/beep.wav"
        );
        assert_eq!(
            resolve_media(None, "beep.wav"),
            Err(UrlError::NoBase {
                reference: "beep.wav".into()
            })
        );
    }

    #[test]
    fn media_path_with_http_base_stays_on_that_server() {
        assert_eq!(
            resolve_media(Some("https://h/app/vm.xml"), "/a.wav").unwrap(),
            "https://h/a.wav"
        );
        assert_eq!(
            resolve_media(Some("https://h/app/vm.xml"), "a.wav").unwrap(),
            "https://h/app/a.wav"
        );
    }

    #[test]
    fn remote_document_cannot_play_local_files() {
        let err = resolve_media(Some("https://h/vm.xml"), "file:///etc/shadow").unwrap_err();
        assert!(matches!(err, UrlError::Invalid { .. }));
        assert_eq!(
            resolve_media(Some("file:///srv/vm.xml"), "beep.wav").unwrap(),
            "file:///srv/beep.wav"
        );
    }

    #[test]
    fn media_rejects_other_schemes() {
        assert!(matches!(
            resolve_media(None, "ftp://h/a.wav"),
            Err(UrlError::Invalid { .. })
        ));
        assert!(matches!(
            resolve_media(None, "data:audio/wav;base64,AA"),
            Err(UrlError::Invalid { .. })
        ));
    }

    #[test]
    fn strip_fragment_drops_connection_overrides() {
        assert_eq!(strip_fragment("https://h/a?x=1#ct=500"), "https://h/a?x=1");
        assert_eq!(strip_fragment("https://h/a"), "https://h/a");
    }
}
