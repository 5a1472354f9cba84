//! TCP framing: the stream fed in chunks yields what it yields fed at once.
//!
//! The input is the byte stream itself (raw SIP seeds work); the chunk sizes come from a PRNG
//! seeded by the input's last bytes, so the fuzzer controls them too.
//!
//! Invariants:
//! - chunked and whole feeding give the same messages, then the same end: the same error, or
//!   `Ok(None)` with the same bytes buffered (for streams up to MAX_MESSAGE; longer ones may
//!   legitimately fail earlier, as TooLarge, when chunked);
//! - after `Ok(None)`, at most MAX_MESSAGE bytes are buffered (bounded memory);
//! - the messages are the stream's bytes in order, separated only by CR/LF keep-alives, and
//!   each starts with neither CR nor LF and holds a CRLFCRLF;
//! - a framed message that the parser accepts has the body length the framer framed: the
//!   parser sees the same Content-Length (else framer and parser disagree on where messages
//!   end, and the next message on the stream would be read from the wrong offset).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sip_core::framing::{FramingError, MAX_MESSAGE};
use sip_core::{parse_message, Message, StreamFramer};

#[derive(Debug, PartialEq)]
struct Run {
    messages: Vec<Vec<u8>>,
    end: Result<(), FramingError>,
    buffered: usize,
}

/// Drains `f` into `out`; false once the stream failed.
fn drain(f: &mut StreamFramer, out: &mut Run) -> bool {
    loop {
        match f.next_message() {
            Ok(Some(m)) => out.messages.push(m),
            Ok(None) => {
                assert!(
                    f.buffered() <= MAX_MESSAGE,
                    "{} bytes buffered without a message",
                    f.buffered()
                );
                return true;
            }
            Err(e) => {
                out.end = Err(e);
                return false;
            }
        }
    }
}

fn run_whole(data: &[u8]) -> Run {
    let mut f = StreamFramer::new();
    let mut r = Run {
        messages: vec![],
        end: Ok(()),
        buffered: 0,
    };
    f.push(data);
    drain(&mut f, &mut r);
    r.buffered = f.buffered();
    r
}

fn run_chunked(data: &[u8], rng: &mut common::Rng) -> Run {
    let mut f = StreamFramer::new();
    let mut r = Run {
        messages: vec![],
        end: Ok(()),
        buffered: 0,
    };
    let mut rest = data;
    while !rest.is_empty() {
        let scale = [4u64, 32, 512, 8192][rng.below(4) as usize];
        let n = (1 + rng.below(scale) as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        f.push(chunk);
        if !drain(&mut f, &mut r) {
            break;
        }
    }
    r.buffered = f.buffered();
    r
}

fn declared_length(m: &Message) -> Option<&str> {
    m.headers().get("content-length")
}

fuzz_target!(|data: &[u8]| {
    let whole = run_whole(data);
    let mut rng = common::Rng::from_tail(data);
    let chunked = run_chunked(data, &mut rng);
    if data.len() <= MAX_MESSAGE {
        assert_eq!(
            (&chunked.messages, &chunked.end),
            (&whole.messages, &whole.end),
            "chunked feeding differs from whole feeding"
        );
        // After an error the stream is closed: what was pushed after it does not matter.
        if whole.end.is_ok() {
            assert_eq!(chunked.buffered, whole.buffered);
        }
    } else {
        assert!(
            whole.messages.starts_with(&chunked.messages)
                || chunked.messages.starts_with(&whole.messages)
        );
    }

    // The messages are the stream, in order, between keep-alives.
    let mut pos = 0;
    for m in &whole.messages {
        while matches!(data.get(pos), Some(b'\r' | b'\n')) {
            pos += 1;
        }
        assert!(!m.is_empty() && m[0] != b'\r' && m[0] != b'\n');
        assert_eq!(
            data.get(pos..pos + m.len()),
            Some(&m[..]),
            "message is not the next stream bytes"
        );
        // An empty line (LF, with or without CR) ends its header section, as the parser has it.
        assert!(m.windows(2).any(|w| w == b"\n\n") || m.windows(3).any(|w| w == b"\n\r\n"));
        pos += m.len();
    }
    if whole.end.is_ok() {
        // What is left is buffered, minus keep-alives skipped at its front.
        let rest = &data[pos..];
        let skipped = rest
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        assert!(whole.buffered == rest.len() || whole.buffered == rest.len() - skipped);
    }

    // Framer and parser agree on the message's extent.
    for m in &whole.messages {
        let Ok(parsed) = parse_message(m) else {
            continue;
        };
        // The body starts after the first empty line (LF, optionally after CR).
        let Some(head_end) = body_start(m) else {
            panic!("a framed message without an empty line: {:?}", String::from_utf8_lossy(m));
        };
        let framed_body = m.len() - head_end;
        let body_len = match &parsed {
            Message::Request(r) => r.body.len(),
            Message::Response(r) => r.body.len(),
        };
        let agree = body_len == framed_body
            && declared_length(&parsed).and_then(|v| v.trim().parse::<usize>().ok())
                == Some(framed_body);
        common::check_known(agree, "framer-parser-extent", || {
            format!(
                "framer framed a {framed_body}-byte body, parser read {body_len} bytes \
                 (Content-Length {:?}) from {:?}",
                declared_length(&parsed),
                String::from_utf8_lossy(m)
            )
        });
    }
});

/// Where the body of `m` starts: after its first line that is empty once its CR is dropped.
fn body_start(m: &[u8]) -> Option<usize> {
    let mut start = 0;
    for (i, &b) in m.iter().enumerate() {
        if b == b'\n' {
            let line = &m[start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            start = i + 1;
        }
    }
    None
}
