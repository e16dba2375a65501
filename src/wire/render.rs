//! Response bodies in JSON and XML (SPEC section 7).
//!
//! An action's result is a JSON object tree; both formats are written from
//! it, so they cannot drift apart. The XML mapping is the API's: an object
//! member becomes an element, and a list is the repeated element named by its
//! member, inside its parent (`{"Keys":{"Key":[a,b]}}` is
//! `<Keys><Key>a</Key><Key>b</Key></Keys>`).

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// A response body format, chosen by the `Format` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Format {
    /// The default.
    #[default]
    Json,
    /// `Format=XML`, in any case.
    Xml,
}

impl Format {
    /// `XML` in any case is XML; anything else is JSON.
    pub(crate) fn from_param(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("xml") => Self::Xml,
            _ => Self::Json,
        }
    }

    /// The `Content-Type` of a body in this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json;charset=utf-8",
            Self::Xml => "text/xml;charset=utf-8",
        }
    }
}

/// Writes the success body of `action`: XML root `{action}Response`.
pub(crate) fn body(format: Format, action: &str, fields: &Map<String, Value>) -> String {
    match format {
        Format::Json => json(fields),
        Format::Xml => xml(&format!("{action}Response"), fields),
    }
}

/// Writes an error body: XML root `Error`.
pub(crate) fn error_body(format: Format, fields: &Map<String, Value>) -> String {
    match format {
        Format::Json => json(fields),
        Format::Xml => xml("Error", fields),
    }
}

fn json(fields: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(
        64 + fields
            .iter()
            .map(|(k, v)| k.len() + text_len(v))
            .sum::<usize>(),
    );
    write_json_object(&mut out, fields);
    out
}

/// About how long `v` is as text: sizes the output buffer once.
fn text_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 8,
        Value::Array(items) => items.iter().map(text_len).sum::<usize>() + 2,
        Value::Object(m) => {
            m.iter()
                .map(|(k, v)| k.len() + 4 + text_len(v))
                .sum::<usize>()
                + 2
        }
        _ => 16,
    }
}

fn write_json_object(out: &mut String, m: &Map<String, Value>) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, k);
        out.push(':');
        write_json_value(out, v);
    }
    out.push('}');
}

fn write_json_value(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) => write_json_object(out, m),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_value(out, item);
            }
            out.push(']');
        }
        Value::String(s) => write_json_string(out, s),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

/// A JSON string (RFC 8259 section 7): `"` and `\` escaped, control
/// characters as `\uXXXX` (or their short forms); everything else as is.
/// Most strings (ids, base64) need no escape: one pass finds that out.
fn write_json_string(out: &mut String, s: &str) {
    let needs_escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    out.push('"');
    if !s.bytes().fold(false, |acc, b| acc | needs_escape(b)) {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c)); // cannot fail on a String
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

fn xml(root: &str, fields: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    write_xml_element(&mut out, root, &Value::Object(fields.clone()));
    out
}

fn write_xml_element(out: &mut String, name: &str, v: &Value) {
    if let Value::Array(items) = v {
        for item in items {
            write_xml_element(out, name, item);
        }
        return;
    }
    out.push('<');
    out.push_str(name);
    out.push('>');
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                write_xml_element(out, k, child);
            }
        }
        Value::String(s) => escape_xml_text(out, s),
        Value::Null => {}
        Value::Array(_) => {} // handled above
        other => escape_xml_text(out, &other.to_string()),
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Escapes text content with quick-xml (markup characters, and carriage
/// return, which parsers would turn into a newline), then writes the control
/// characters XML 1.0 forbids as character references. A strict XML 1.0
/// parser refuses those; callers who send such text should use JSON.
fn escape_xml_text(out: &mut String, s: &str) {
    let escaped = quick_xml::escape::escape(s);
    for c in escaped.chars() {
        let special = matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
        if special {
            out.push_str(&format!("&#x{:X};", u32::from(c)));
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    proptest::proptest! {
        /// Any text survives a round trip through the JSON writer.
        #[test]
        fn json_strings_round_trip(s in proptest::prelude::any::<String>(), k in "[\\x00-\\x7f]{0,8}") {
            let mut m = Map::new();
            m.insert(k, Value::String(s));
            m.insert("n".into(), Value::from(42u64));
            let v = Value::Object(m.clone());
            proptest::prop_assert_eq!(serde_json::from_str::<Value>(&json(&m)).ok(), Some(v));
        }
    }

    #[test]
    fn json_escapes() {
        let m = obj(json!({"a": "\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f} é\u{2028}"}));
        let want = "{\"a\":\"\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f é\u{2028}\"}";
        assert_eq!(json(&m), want);
    }

    #[test]
    fn json_matches_serde() {
        let v = json!({"RequestId":"r","TotalCount":3,"Keys":{"Key":[{"KeyId":"a\"\n<"},{"KeyId":"b"}]},"E":[]});
        let text = json(&obj(v.clone()));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn xml_lists_and_escaping() {
        let v = json!({"Keys":{"Key":[{"KeyId":"a"},{"KeyId":"b"}]},"TotalCount":2,"P":"<&>\"' \r\u{1}é"});
        assert_eq!(
            xml("ListKeysResponse", &obj(v)),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListKeysResponse>\
             <Keys><Key><KeyId>a</KeyId></Key><Key><KeyId>b</KeyId></Key></Keys>\
             <P>&lt;&amp;&gt;&quot;&apos; &#13;&#x1;é</P><TotalCount>2</TotalCount>\
             </ListKeysResponse>"
        );
    }

    #[test]
    fn format_param() {
        assert_eq!(Format::from_param(Some("XML")), Format::Xml);
        assert_eq!(Format::from_param(Some("xml")), Format::Xml);
        assert_eq!(Format::from_param(Some("json")), Format::Json);
        assert_eq!(Format::from_param(None), Format::Json);
        assert_eq!(Format::from_param(Some("yaml")), Format::Json);
    }
}
