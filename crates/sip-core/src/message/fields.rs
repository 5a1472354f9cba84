//! Structured header values: name-addr (From/To/Contact), Via, CSeq, and URI parts.

use std::fmt;

use super::{clip, is_token, parse_digits, Method, ParseError};

/// `"Display Name" <sip:user@host;params>;tag=x` or a bare URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display_name: Option<String>,
    /// The URI without angle brackets, e.g. `sip:+15551234@example.com`.
    pub uri: String,
    pub tag: Option<String>,
}

impl NameAddr {
    pub fn parse(value: &str) -> Result<NameAddr, ParseError> {
        let bad = || ParseError::InvalidHeader {
            name: "name-addr",
            value: clip(value),
        };
        let v = value.trim();
        let (display_name, uri, params) = if let Some(after_quote) = v.strip_prefix('"') {
            let mut name = String::new();
            let mut escaped = false;
            let mut end = None;
            for (i, ch) in after_quote.char_indices() {
                if escaped {
                    name.push(ch);
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == '"' {
                    end = Some(i);
                    break;
                } else {
                    name.push(ch);
                }
            }
            let end = end.ok_or_else(bad)?;
            let rest = after_quote.get(end + 1..).ok_or_else(bad)?.trim_start();
            let inner = rest.strip_prefix('<').ok_or_else(bad)?;
            let (uri, params) = inner.split_once('>').ok_or_else(bad)?;
            (Some(name), uri, params)
        } else if let Some(lt) = v.find('<') {
            let (name, rest) = v.split_at(lt);
            let inner = rest.get(1..).unwrap_or("");
            let (uri, params) = inner.split_once('>').ok_or_else(bad)?;
            let name = name.trim();
            ((!name.is_empty()).then(|| name.to_string()), uri, params)
        } else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
            match v.split_once(';') {
                Some((uri, params)) => (None, uri, params),
                None => (None, v, ""),
            }
        };
        let uri = uri.trim();
        if uri.is_empty()
            || !uri.contains(':')
            || uri.contains(char::is_whitespace)
            || uri.contains(['<', '>', '"'])
        {
            return Err(bad());
        }
        // `;;` or a trailing `;`: an empty parameter (RFC 4475 `badinv01`).
        let mut segments = params.split(';');
        let before_first = segments.next().unwrap_or("");
        let addr_spec = !v.starts_with('"') && !v.contains('<');
        if (!addr_spec && !before_first.trim().is_empty())
            || (addr_spec && !params.is_empty() && before_first.trim().is_empty())
            || segments.any(|p| p.trim().is_empty())
        {
            return Err(bad());
        }
        let tag = params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("tag"))
            .map(|(_, v)| v.trim().to_string())
            .filter(|t| !t.is_empty());
        Ok(NameAddr {
            display_name,
            uri: uri.to_string(),
            tag,
        })
    }
    /// User part of the URI (`+15551234` in `sip:+15551234@host`), if any.
    pub fn user(&self) -> Option<&str> {
        uri_user(&self.uri)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(
                f,
                "\"{}\" ",
                name.replace('\\', "\\\\").replace('"', "\\\"")
            )?;
        }
        write!(f, "<{}>", self.uri)?;
        if let Some(tag) = &self.tag {
            write!(f, ";tag={tag}")?;
        }
        Ok(())
    }
}

/// The tag parameter of a From/To value, without a full parse.
pub fn header_tag(value: &str) -> Option<String> {
    NameAddr::parse(value).ok().and_then(|n| n.tag)
}

fn strip_scheme(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    Some(rest)
}

/// User part of a SIP URI.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = strip_scheme(uri.trim())?;
    if uri.trim_start().to_ascii_lowercase().starts_with("tel:") {
        let number = rest.split(';').next().unwrap_or("");
        return (!number.is_empty()).then_some(number);
    }
    let hostpart_end = rest.find(['?']).unwrap_or(rest.len());
    let rest = rest.get(..hostpart_end).unwrap_or(rest);
    let (userinfo, _) = rest.rsplit_once('@')?;
    let user = userinfo.split(':').next().unwrap_or("");
    (!user.is_empty()).then_some(user)
}

/// Host and port of a SIP URI (`sip:u@h:p;x` → (`h`, Some(p))).
pub fn uri_host_port(uri: &str) -> Option<(&str, Option<u16>)> {
    let rest = strip_scheme(uri.trim())?;
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => host,
        None => rest,
    };
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    host_port(rest.get(..end)?)
}

/// `host[:port]` or `[v6]:port`.
pub fn host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(parse_digits::<u16>(p)?),
        None => None,
    };
    Some((host, port))
}

/// One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK…;rport;received=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, … (upper-cased).
    pub transport: String,
    /// `host[:port]` as written.
    pub sent_by: String,
    /// Parameters in order; `None` for a flag such as a bare `rport`.
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(value: &str) -> Result<Via, ParseError> {
        let bad = || ParseError::InvalidHeader {
            name: "Via",
            value: clip(value),
        };
        let mut parts = value.split(';');
        let head = parts.next().unwrap_or("").trim();
        // sent-protocol: `SIP / 2.0 / UDP`, LWS allowed around each `/` (RFC 4475 `wsinv`).
        let (name, rest) = head.split_once('/').ok_or_else(bad)?;
        let (version, rest) = rest.split_once('/').ok_or_else(bad)?;
        let rest = rest.trim_start();
        let split = rest.find([' ', '\t']).ok_or_else(bad)?;
        let (transport, sent_by) = rest.split_at(split);
        let (name, version) = (name.trim(), version.trim());
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" || !is_token(transport) {
            return Err(bad());
        }
        let sent_by = sent_by.trim();
        host_port(sent_by).ok_or_else(bad)?;
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                return Err(bad());
            }
            match p.split_once('=') {
                Some((k, v)) => params.push((k.trim().to_string(), Some(v.trim().to_string()))),
                None => params.push((p.to_string(), None)),
            }
        }
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            sent_by: sent_by.to_string(),
            params,
        })
    }
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }
    pub fn has_rport(&self) -> bool {
        self.param("rport").is_some()
    }
    /// Sets (or adds) a parameter, keeping its position if present.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }
    pub fn host(&self) -> &str {
        host_port(&self.sent_by).map(|(h, _)| h).unwrap_or("")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by)?;
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// `CSeq: 1 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq, ParseError> {
        let bad = || ParseError::InvalidHeader {
            name: "CSeq",
            value: clip(value),
        };
        let mut it = value.split_whitespace();
        let (Some(num), Some(method), None) = (it.next(), it.next(), it.next()) else {
            return Err(bad());
        };
        // RFC 3261 §8.1.1.5: less than 2**31.
        let seq: u32 = parse_digits(num).ok_or_else(bad)?;
        if seq >= 1 << 31 || !is_token(method) {
            return Err(bad());
        }
        Ok(CSeq {
            seq,
            method: Method::parse(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}
