//! `<Say>`: text (with optional SSML children, flattened to text) for the local TTS.

use super::verbs::{check_content, Attrs};
use super::xml::{Element, Tree};
use super::{AttrWarning, SayVerb, TwimlError};

/// Longest `<Say>` text kept (SPEC §4: 4 KB); longer text is truncated with a warning.
pub const MAX_SAY_BYTES: usize = 4096;
const MAX_VOICE_LEN: usize = 64;

/// SSML elements Twilio accepts inside `<Say>`. Their text is kept; markup is dropped.
const SSML: &[&str] = &[
    "break",
    "emphasis",
    "prosody",
    "say-as",
    "p",
    "s",
    "phoneme",
    "sub",
    "lang",
    "w",
    "amazon:effect",
    "amazon:domain",
];
/// SSML elements that separate words: a space keeps `one<break/>two` from becoming `onetwo`.
const SSML_BOUNDARIES: &[&str] = &["break", "p", "s"];

pub(super) fn parse_say(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<SayVerb, TwimlError> {
    let raw = flatten(tree, element)?;
    let mut a = Attrs {
        verb: "Say",
        element,
        warnings,
    };
    let mut text = collapse_whitespace(&raw);
    if text.len() > MAX_SAY_BYTES {
        let cut = floor_char_boundary(&text, MAX_SAY_BYTES);
        let excerpt: String = text.chars().take(40).collect();
        a.warn(
            "#text",
            &excerpt,
            format!(
                "text is {} bytes, over {MAX_SAY_BYTES}; truncated",
                text.len()
            ),
        );
        text.truncate(cut);
    } else if text.is_empty() {
        a.warn("#text", "", "nothing to say; the verb is skipped");
    }

    let voice = match a.url("voice") {
        None => "man".to_string(),
        Some(v) if is_voice_name(&v) => v,
        Some(v) => {
            a.warn("voice", &v, "not a voice name; using man");
            "man".to_string()
        }
    };
    let default_language =
        if voice.eq_ignore_ascii_case("man") || voice.eq_ignore_ascii_case("woman") {
            "en"
        } else {
            "en-US"
        };
    let language = match a.url("language") {
        None => default_language.to_string(),
        Some(l) if is_language_tag(&l) => l,
        Some(l) => {
            a.warn(
                "language",
                &l,
                format!("not a language tag; using {default_language}"),
            );
            default_language.to_string()
        }
    };
    let loop_count = a.loop_count();
    Ok(SayVerb {
        text,
        voice,
        language,
        loop_count,
    })
}

/// The text of `<Say>` and its SSML descendants in document order. Iterative: a hostile
/// document of nested `<emphasis>` must not recurse. `<sub alias="…">` contributes its alias,
/// which is what a speech engine would say.
fn flatten(tree: &Tree, say: &Element) -> Result<String, TwimlError> {
    let mut out = String::new();
    // (element, index of the next child to visit)
    let mut stack: Vec<(&Element, usize)> = vec![(say, 0)];
    while let Some((element, k)) = stack.pop() {
        let start = match k.checked_sub(1) {
            Some(prev) => element.child_text_at.get(prev).copied().unwrap_or(0),
            None => 0,
        };
        let end = element
            .child_text_at
            .get(k)
            .copied()
            .unwrap_or(element.text.len());
        out.push_str(element.text.get(start..end).unwrap_or(""));
        let Some(child) = element.children.get(k).and_then(|&i| tree.get(i)) else {
            if SSML_BOUNDARIES.contains(&element.name.as_str()) {
                out.push(' ');
            }
            continue;
        };
        stack.push((element, k + 1));
        if !SSML.contains(&child.name.as_str()) {
            return Err(TwimlError::BadNesting {
                parent: element.name.clone(),
                child: child.name.clone(),
            });
        }
        if SSML_BOUNDARIES.contains(&child.name.as_str()) {
            out.push(' ');
        }
        match child.attr("alias").filter(|_| child.name == "sub") {
            Some(alias) => {
                // Its content is replaced, but must still be plain text.
                check_content(child, tree, "sub", true)?;
                out.push_str(alias);
            }
            None => stack.push((child, 0)),
        }
    }
    Ok(out)
}

/// Whitespace collapsed and cut to [`MAX_SAY_BYTES`] (for `text/plain` answers).
pub(super) fn normalize_text(raw: &str) -> String {
    let mut text = collapse_whitespace(raw);
    text.truncate(floor_char_boundary(&text, MAX_SAY_BYTES));
    text
}

/// Runs of XML whitespace become one space; ends trimmed.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split([' ', '\t', '\r', '\n']).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    (0..=max.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// `man`, `alice`, `Polly.Joanna-Neural`, `Google.en-US-Standard-C`: ASCII letters, digits,
/// `.`, `-`, `_`. Which voices exist is the TTS's business, not the parser's.
fn is_voice_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VOICE_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// BCP 47 shape: a 2–3 letter primary subtag, then 1–8 alphanumeric subtags (`en`, `en-US`,
/// `cmn-Hans-CN`).
fn is_language_tag(l: &str) -> bool {
    let mut parts = l.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::super::{parse_document, ParseLimits, Verb};
    use super::*;

    fn say(xml: &str) -> (SayVerb, Vec<AttrWarning>) {
        let doc = parse_document(
            &format!("<Response>{xml}</Response>"),
            &ParseLimits {
                max_bytes: 1 << 20,
                max_length_cap: 14_400,
            },
        )
        .unwrap();
        match doc.verbs.as_slice() {
            [Verb::Say(s)] => (s.clone(), doc.warnings),
            other => panic!("{other:?}"),
        }
    }

    fn say_err(xml: &str) -> TwimlError {
        parse_document(
            &format!("<Response>{xml}</Response>"),
            &ParseLimits::default(),
        )
        .unwrap_err()
    }

    fn warned(w: &[AttrWarning], attribute: &str, value: &str) -> bool {
        w.iter()
            .any(|w| w.attribute == attribute && w.value == value)
    }

    #[test]
    fn say_defaults_are_man_en_once() {
        let (s, w) = say("<Say>Hello there</Say>");
        assert_eq!(
            s,
            SayVerb {
                text: "Hello there".into(),
                voice: "man".into(),
                language: "en".into(),
                loop_count: 1
            }
        );
        assert!(w.is_empty());
    }

    #[test]
    fn say_language_default_depends_on_voice() {
        assert_eq!(say("<Say voice=\"woman\">x</Say>").0.language, "en");
        assert_eq!(say("<Say voice=\"alice\">x</Say>").0.language, "en-US");
        let (s, w) = say("<Say voice=\"Polly.Joanna-Neural\" language=\"cmn-Hans-CN\">x</Say>");
        assert_eq!(
            (s.voice.as_str(), s.language.as_str()),
            ("Polly.Joanna-Neural", "cmn-Hans-CN")
        );
        assert!(w.is_empty());
    }

    #[test]
    fn say_invalid_voice_and_language_fall_back_with_warning() {
        let (s, w) = say("<Say voice=\"rm -rf /\" language=\"english please\">x</Say>");
        assert_eq!((s.voice.as_str(), s.language.as_str()), ("man", "en"));
        assert!(warned(&w, "voice", "rm -rf /"));
        assert!(warned(&w, "language", "english please"));
        let (s, w) = say("<Say voice=\"alice\" language=\"e\">x</Say>");
        assert_eq!(s.language, "en-US");
        assert!(warned(&w, "language", "e"));
    }

    #[test]
    fn say_loop_zero_means_until_hangup_and_is_capped() {
        assert_eq!(say("<Say loop=\"0\">x</Say>").0.loop_count, 0);
        let (s, w) = say("<Say loop=\"1001\">x</Say>");
        assert_eq!(s.loop_count, 1000);
        assert!(warned(&w, "loop", "1001"));
        let (s, w) = say("<Say loop=\"-1\">x</Say>");
        assert_eq!(s.loop_count, 1);
        assert!(warned(&w, "loop", "-1"));
    }

    #[test]
    fn say_whitespace_is_collapsed_and_entities_decoded() {
        let (s, _) = say("<Say>\n  Press   1\tfor &amp; sales \n</Say>");
        assert_eq!(s.text, "Press 1 for & sales");
    }

    #[test]
    fn say_ssml_children_are_flattened_in_document_order() {
        let (s, w) = say(
            "<Say>Hi<break time=\"1s\"/>there, <emphasis level=\"strong\">big</emphasis>ger \
             <prosody rate=\"slow\"><say-as interpret-as=\"digits\">123</say-as></prosody>\
             <p><s>One.</s><s>Two.</s></p><phoneme ph=\"x\">tomato</phoneme> \
             <sub alias=\"World Wide Web\">WWW</sub> <lang xml:lang=\"fr-FR\">oui</lang> \
             <w role=\"x\">read</w> <amazon:effect name=\"whispered\">psst</amazon:effect></Say>",
        );
        assert_eq!(
            s.text,
            "Hi there, bigger 123 One. Two. tomato World Wide Web oui read psst"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn say_non_ssml_child_is_bad_nesting_12200() {
        let err = say_err("<Say>x<Play>a.wav</Play></Say>");
        assert_eq!(
            err,
            TwimlError::BadNesting {
                parent: "Say".into(),
                child: "Play".into()
            }
        );
        assert_eq!(err.code(), 12200);
        // Also deep inside SSML.
        assert_eq!(
            say_err("<Say><p><s><Hangup/></s></p></Say>"),
            TwimlError::BadNesting {
                parent: "s".into(),
                child: "Hangup".into()
            }
        );
        assert_eq!(
            say_err("<Say><sub alias=\"a\"><b/></sub></Say>"),
            TwimlError::BadNesting {
                parent: "sub".into(),
                child: "b".into()
            }
        );
    }

    #[test]
    fn say_text_over_4kb_is_truncated_at_a_char_boundary() {
        // 'é' is 2 bytes: 2049 of them = 4098 bytes, cut to 2048 = 4096 bytes.
        let (s, w) = say(&format!("<Say>{}</Say>", "é".repeat(2049)));
        assert_eq!(s.text.len(), 4096);
        assert_eq!(s.text.chars().count(), 2048);
        assert_eq!(w.len(), 1);
        assert!(w[0].attribute == "#text" && w[0].reason.contains("4098 bytes"));
        // The 4096-byte cut lands inside "€" (bytes 4095..4098): it is dropped whole.
        let (s, _) = say(&format!("<Say>{}€</Say>", "a".repeat(4095)));
        assert_eq!(s.text, "a".repeat(4095));
        let (s, w) = say(&format!("<Say>{}</Say>", "a".repeat(4096)));
        assert_eq!((s.text.len(), w.len()), (4096, 0));
    }

    #[test]
    fn empty_say_is_kept_with_a_warning() {
        let (s, w) = say("<Say> <break/> </Say>");
        assert_eq!(s.text, "");
        assert!(warned(&w, "#text", ""));
    }

    #[test]
    fn deeply_nested_ssml_does_not_recurse() {
        let depth = 40_000;
        let (s, _) = say(&format!(
            "<Say>{}deep{}</Say>",
            "<emphasis>".repeat(depth),
            "</emphasis>".repeat(depth)
        ));
        assert_eq!(s.text, "deep");
    }
}
