//! `<Gather input="dtmf">` and its nested prompts.

use super::verbs::{parse_int, parse_pause, parse_play, to_u32, Attrs, FINISH_KEYS};
use super::xml::{xml_trim, Element, Tree};
use super::{AttrWarning, GatherVerb, Prompt, TwimlError};

pub(super) fn parse_gather(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<GatherVerb, TwimlError> {
    if !xml_trim(&element.text).is_empty() {
        return Err(TwimlError::BadNesting {
            parent: "Gather".into(),
            child: "#text".into(),
        });
    }
    let mut prompts = Vec::with_capacity(element.children.len());
    for child in element.children.iter().filter_map(|&i| tree.get(i)) {
        prompts.push(match child.name.as_str() {
            "Say" => Prompt::Say(super::say::parse_say(tree, child, warnings)?),
            "Play" => Prompt::Play(parse_play(tree, child, warnings)?),
            "Pause" => Prompt::Pause {
                length_secs: parse_pause(tree, child, warnings)?,
            },
            other => {
                return Err(TwimlError::BadNesting {
                    parent: "Gather".into(),
                    child: other.to_string(),
                })
            }
        });
    }

    let mut a = Attrs {
        verb: "Gather",
        element,
        warnings,
    };
    let mut g = GatherVerb {
        prompts,
        ..GatherVerb::default()
    };
    if let Some(v) = a.get("input") {
        check_input(&mut a, v);
    }
    g.action = a.url("action");
    g.method = a.method("method");
    if let Some(v) = a.get("timeout") {
        g.timeout_secs = match parse_int(v) {
            Some(n) if n >= 1 => to_u32(n),
            _ => {
                a.warn("timeout", v, "must be an integer >= 1; using 5");
                5
            }
        };
    }
    if let Some(v) = a.get("finishOnKey") {
        let t = xml_trim(v);
        let mut chars = t.chars();
        g.finish_on_key = match (chars.next(), chars.next()) {
            (None, _) => None,
            (Some(c), None) if FINISH_KEYS.contains(c) => Some(c),
            _ => {
                a.warn(
                    "finishOnKey",
                    v,
                    "must be one of 0-9, * or #, or empty; using #",
                );
                Some('#')
            }
        };
    }
    if let Some(v) = a.get("numDigits") {
        g.num_digits = match parse_int(v) {
            Some(n) if n >= 1 => Some(to_u32(n)),
            _ => {
                a.warn("numDigits", v, "must be an integer >= 1; using unlimited");
                None
            }
        };
    }
    g.action_on_empty_result = a.boolean("actionOnEmptyResult", false);
    Ok(g)
}

/// Only DTMF is gathered: any mention of speech (or an unknown mode) is a warning, and the verb
/// still gathers DTMF.
fn check_input(a: &mut Attrs<'_>, value: &str) {
    let mut tokens = value
        .split([' ', ',', '\t', '\r', '\n'])
        .filter(|t| !t.is_empty());
    let all_dtmf = tokens.clone().next().is_some() && tokens.all(|t| t == "dtmf");
    if !all_dtmf {
        a.warn("input", value, "only dtmf is supported; gathering dtmf");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_document, HttpMethod, ParseLimits, PlayVerb, SayVerb, Verb};
    use super::*;

    fn parse(xml: &str) -> Result<(GatherVerb, Vec<AttrWarning>), TwimlError> {
        let doc = parse_document(
            &format!("<Response>{xml}</Response>"),
            &ParseLimits::default(),
        )?;
        match doc.verbs.as_slice() {
            [Verb::Gather(g)] => Ok((g.clone(), doc.warnings)),
            other => panic!("{other:?}"),
        }
    }

    fn gather(attrs: &str) -> (GatherVerb, Vec<AttrWarning>) {
        parse(&format!("<Gather {attrs}/>")).unwrap()
    }

    fn warned(w: &[AttrWarning], attribute: &str, value: &str) -> bool {
        w.iter()
            .any(|w| w.verb == "Gather" && w.attribute == attribute && w.value == value)
    }

    #[test]
    fn gather_defaults() {
        let (g, w) = gather("");
        assert_eq!(
            g,
            GatherVerb {
                action: None,
                method: HttpMethod::Post,
                timeout_secs: 5,
                finish_on_key: Some('#'),
                num_digits: None,
                action_on_empty_result: false,
                prompts: vec![],
            }
        );
        assert!(w.is_empty());
    }

    #[test]
    fn gather_attributes_are_read() {
        let (g, w) = gather(
            "input=\"dtmf\" action=\"/menu?x=1&amp;y=2\" method=\"GET\" timeout=\"10\" \
             finishOnKey=\"*\" numDigits=\"4\" actionOnEmptyResult=\"true\"",
        );
        assert_eq!(
            g,
            GatherVerb {
                action: Some("/menu?x=1&y=2".into()),
                method: HttpMethod::Get,
                timeout_secs: 10,
                finish_on_key: Some('*'),
                num_digits: Some(4),
                action_on_empty_result: true,
                prompts: vec![],
            }
        );
        assert!(w.is_empty());
    }

    #[test]
    fn gather_empty_finish_on_key_means_none() {
        let (g, w) = gather("finishOnKey=\"\"");
        assert_eq!((g.finish_on_key, w.len()), (None, 0));
    }

    #[test]
    fn gather_invalid_finish_on_key_is_hash_with_warning() {
        for bad in ["#*", "a", "12", "é"] {
            let (g, w) = gather(&format!("finishOnKey=\"{bad}\""));
            assert_eq!(g.finish_on_key, Some('#'), "{bad:?}");
            assert!(warned(&w, "finishOnKey", bad), "{bad:?}");
        }
    }

    #[test]
    fn gather_timeout_must_be_at_least_one() {
        assert_eq!(gather("timeout=\"1\"").0.timeout_secs, 1);
        for bad in ["0", "-3", "5s", ""] {
            let (g, w) = gather(&format!("timeout=\"{bad}\""));
            assert_eq!(g.timeout_secs, 5, "{bad:?}");
            assert!(warned(&w, "timeout", bad), "{bad:?}");
        }
    }

    #[test]
    fn gather_num_digits_must_be_at_least_one() {
        assert_eq!(gather("numDigits=\"1\"").0.num_digits, Some(1));
        for bad in ["0", "-1", "many"] {
            let (g, w) = gather(&format!("numDigits=\"{bad}\""));
            assert_eq!(g.num_digits, None, "{bad:?}");
            assert!(warned(&w, "numDigits", bad), "{bad:?}");
        }
    }

    #[test]
    fn gather_speech_input_is_warned_and_gathers_dtmf() {
        for input in ["speech", "dtmf speech", "voice", ""] {
            let (g, w) = gather(&format!("input=\"{input}\""));
            assert!(warned(&w, "input", input), "{input:?}");
            assert_eq!(g.finish_on_key, Some('#'));
        }
        assert!(gather("input=\"dtmf\"").1.is_empty());
    }

    #[test]
    fn gather_invalid_method_and_boolean_fall_back() {
        let (g, w) = gather("method=\"PUT\" actionOnEmptyResult=\"yes\"");
        assert_eq!(g.method, HttpMethod::Post);
        assert!(!g.action_on_empty_result);
        assert!(warned(&w, "method", "PUT"));
        assert!(warned(&w, "actionOnEmptyResult", "yes"));
    }

    #[test]
    fn gather_nested_prompts_in_order() {
        let (g, w) = parse(
            "<Gather numDigits=\"1\">\n  <Say loop=\"2\">Press 1</Say>\n  <Pause length=\"2\"/>\n  \
             <Play>menu.wav</Play>\n</Gather>",
        )
        .unwrap();
        assert_eq!(
            g.prompts,
            vec![
                Prompt::Say(SayVerb {
                    text: "Press 1".into(),
                    voice: "man".into(),
                    language: "en".into(),
                    loop_count: 2
                }),
                Prompt::Pause { length_secs: 2 },
                Prompt::Play(PlayVerb {
                    url: "menu.wav".into(),
                    loop_count: 1,
                    digits: None
                }),
            ]
        );
        assert!(w.is_empty());
    }

    #[test]
    fn gather_other_children_are_bad_nesting_12200() {
        for child in [
            "<Record/>",
            "<Gather/>",
            "<Hangup/>",
            "<Redirect>x</Redirect>",
            "<Reject/>",
            "<say>x</say>",
        ] {
            let err = parse(&format!("<Gather>{child}</Gather>")).unwrap_err();
            assert!(
                matches!(&err, TwimlError::BadNesting { parent, .. } if parent == "Gather"),
                "{child}: {err:?}"
            );
            assert_eq!(err.code(), 12200);
        }
    }

    #[test]
    fn gather_text_is_bad_nesting() {
        assert_eq!(
            parse("<Gather>press one</Gather>").unwrap_err(),
            TwimlError::BadNesting {
                parent: "Gather".into(),
                child: "#text".into()
            }
        );
    }

    #[test]
    fn errors_inside_nested_prompts_propagate() {
        assert!(matches!(
            parse("<Gather><Play/></Gather>"),
            Err(TwimlError::MissingContent { verb: "Play", .. })
        ));
        assert_eq!(
            parse("<Gather><Say><Pause/></Say></Gather>").unwrap_err(),
            TwimlError::BadNesting {
                parent: "Say".into(),
                child: "Pause".into()
            }
        );
        assert_eq!(
            parse("<Gather><Pause><Say/></Pause></Gather>").unwrap_err(),
            TwimlError::BadNesting {
                parent: "Pause".into(),
                child: "Say".into()
            }
        );
    }

    #[test]
    fn nested_prompt_warnings_are_collected() {
        let (g, w) = parse("<Gather><Pause length=\"0\"/></Gather>").unwrap();
        assert_eq!(g.prompts, vec![Prompt::Pause { length_secs: 1 }]);
        assert!(w.iter().any(|w| w.verb == "Pause" && w.value == "0"));
    }
}
