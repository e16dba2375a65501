//! Response bodies in JSON and XML (SPEC section 7).
//!
//! An action's result is a JSON object tree; both formats are written from
//! it, so they cannot drift apart. The XML mapping is the API's: an object
//! member becomes an element, and a list is the repeated element named by its
//! member, inside its parent (`{"Keys":{"Key":[a,b]}}` is
//! `<Keys><Key>a</Key><Key>b</Key></Keys>`).

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

/// Writes `fields` as a body whose XML root element is `root`.
pub(crate) fn body(format: Format, root: &str, fields: &Map<String, Value>) -> String {
    match format {
        Format::Json => json(fields),
        Format::Xml => xml(root, fields),
    }
}

fn json(fields: &Map<String, Value>) -> String {
    // Serializing a map of JSON values cannot fail (string keys only).
    serde_json::to_string(fields).unwrap_or_else(|_| String::from("{}"))
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
