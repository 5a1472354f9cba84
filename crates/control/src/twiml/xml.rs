//! Well-formedness pass: XML text → a flat element arena.
//!
//! A flat arena (indices, not boxed children) keeps dropping a deeply nested hostile document
//! from recursing. DOCTYPE is refused outright, so entity declarations never exist; only the
//! five predefined entities and character references are decoded.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::TwimlError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    /// Unescaped values, in document order.
    pub attrs: Vec<(String, String)>,
    /// Direct text and CDATA content, unescaped and concatenated.
    pub text: String,
    pub children: Vec<usize>,
    /// For each child, the length of `text` when it started: lets mixed content (SSML in
    /// `<Say>`) be rebuilt in document order.
    pub child_text_at: Vec<usize>,
    /// Byte offset of the start tag.
    pub position: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Element 0 is the root.
#[derive(Debug)]
pub(crate) struct Tree {
    pub elements: Vec<Element>,
}

impl Tree {
    pub fn get(&self, idx: usize) -> Option<&Element> {
        self.elements.get(idx)
    }
}

/// XML whitespace (S production), not Unicode whitespace.
pub(crate) fn xml_trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

fn ill_formed(position: usize, message: impl Into<String>) -> TwimlError {
    TwimlError::NotWellFormed {
        position,
        message: message.into(),
    }
}

fn element_from(start: &BytesStart<'_>, position: usize) -> Result<Element, TwimlError> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ill_formed(position, format!("in <{name}>: {e}")))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| ill_formed(position, format!("attribute {key:?} of <{name}>: {e}")))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        text: String::new(),
        children: Vec::new(),
        child_text_at: Vec::new(),
        position,
    })
}

pub(crate) fn build(xml: &str) -> Result<Tree, TwimlError> {
    let mut reader = Reader::from_str(xml);
    // Defaults already check end names; be explicit since the checks are load-bearing.
    reader.config_mut().check_end_names = true;
    reader.config_mut().allow_unmatched_ends = false;
    let mut elements: Vec<Element> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        let position = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(position);
            ill_formed(at, e.to_string())
        })?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if stack.is_empty() && !elements.is_empty() {
                    return Err(ill_formed(position, "more than one root element"));
                }
                let element = element_from(start, position)?;
                let idx = elements.len();
                elements.push(element);
                if let Some(parent) = stack.last().and_then(|&p| elements.get_mut(p)) {
                    parent.children.push(idx);
                    parent.child_text_at.push(parent.text.len());
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(idx);
                }
            }
            Event::End(end) => {
                let open = stack.pop().and_then(|i| elements.get(i));
                if open.map(|e| e.name.as_bytes()) != Some(end.name().as_ref()) {
                    let found = String::from_utf8_lossy(end.name().as_ref()).into_owned();
                    return Err(ill_formed(
                        position,
                        format!("unexpected end tag </{found}>"),
                    ));
                }
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .map_err(|e| ill_formed(position, e.to_string()))?;
                match stack.last().and_then(|&i| elements.get_mut(i)) {
                    Some(open) => open.text.push_str(&text),
                    None if xml_trim(&text).is_empty() => {}
                    None => return Err(ill_formed(position, "text outside the root element")),
                }
            }
            Event::CData(cdata) => {
                let text = cdata
                    .decode()
                    .map_err(|e| ill_formed(position, e.to_string()))?;
                match stack.last().and_then(|&i| elements.get_mut(i)) {
                    Some(open) => open.text.push_str(&text),
                    None => return Err(ill_formed(position, "CDATA outside the root element")),
                }
            }
            // Refused rather than skipped: entity declarations are the billion-laughs vector.
            Event::DocType(_) => {
                return Err(ill_formed(position, "DOCTYPE declarations are not allowed"));
            }
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::Eof => {
                if let Some(open) = stack.last().and_then(|&i| elements.get(i)) {
                    return Err(ill_formed(
                        position,
                        format!("<{}> is not closed", open.name),
                    ));
                }
                if elements.is_empty() {
                    return Err(ill_formed(position, "no root element"));
                }
                return Ok(Tree { elements });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_message(xml: &str) -> String {
        match build(xml) {
            Err(TwimlError::NotWellFormed { message, .. }) => message,
            other => panic!("expected NotWellFormed for {xml:?}, got {other:?}"),
        }
    }

    #[test]
    fn builds_flat_arena_with_children_in_order() {
        let tree = build("<R a=\"1\"><A/><B>x<![CDATA[<y>]]></B></R>").unwrap();
        assert_eq!(tree.elements.len(), 3);
        assert_eq!(tree.elements[0].children, vec![1, 2]);
        assert_eq!(tree.elements[0].attr("a"), Some("1"));
        assert_eq!(tree.elements[2].text, "x<y>");
    }

    #[test]
    fn child_text_at_marks_where_each_child_interrupts_the_text() {
        let tree = build("<R>ab<A/>cde<B/>f</R>").unwrap();
        assert_eq!(tree.elements[0].text, "abcdef");
        assert_eq!(tree.elements[0].child_text_at, vec![2, 5]);
    }

    #[test]
    fn predefined_entities_and_char_refs_are_decoded() {
        let tree = build("<R v=\"a&amp;b&#x41;&#66;&lt;\">&quot;&apos;&gt;</R>").unwrap();
        assert_eq!(tree.elements[0].attr("v"), Some("a&bAB<"));
        assert_eq!(tree.elements[0].text, "\"'>");
    }

    #[test]
    fn undeclared_entity_is_not_well_formed() {
        assert!(err_message("<R>&lol;</R>").contains("lol"));
        assert!(err_message("<R v=\"&lol;\"/>").contains("lol"));
    }

    #[test]
    fn unclosed_root_reports_element_name() {
        assert_eq!(err_message("<R><A/>"), "<R> is not closed");
    }

    #[test]
    fn mismatched_end_tag_is_not_well_formed() {
        let msg = err_message("<R><A></B></R>");
        assert!(msg.contains('A') && msg.contains('B'), "{msg}");
    }

    #[test]
    fn bom_and_declaration_are_accepted() {
        let tree = build("\u{feff}<?xml version=\"1.0\"?>\n<R/>\n").unwrap();
        assert_eq!(tree.elements[0].name, "R");
    }

    #[test]
    fn position_points_at_offending_markup() {
        match build("<R/>  <S/>") {
            Err(TwimlError::NotWellFormed { position, .. }) => assert_eq!(position, 6),
            other => panic!("{other:?}"),
        }
    }
}
