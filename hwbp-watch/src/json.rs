//! Just enough JSON output: string escaping and the frame objects.

use std::fmt::Write as _;

use hwbp_linux::symbols::Frame;

/// `s` as a JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An optional string: the literal or `null`.
fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), string)
}

/// `{"addr":"0x..","function":..,"file":..,"line":..,"inlined":..,"object":..}`.
pub fn frame(f: &Frame) -> String {
    format!(
        "{{\"addr\":\"{:#x}\",\"function\":{},\"file\":{},\"line\":{},\"inlined\":{},\"object\":{}}}",
        f.addr,
        opt(f.function.as_deref()),
        opt(f.file.as_deref()),
        f.line.map_or_else(|| "null".to_owned(), |l| l.to_string()),
        f.inlined,
        opt(f.object.as_deref()),
    )
}

/// A JSON array of frames.
pub fn frames(fs: &[Frame]) -> String {
    let items: Vec<String> = fs.iter().map(frame).collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_frames_are_valid_json() {
        assert_eq!(string("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let f = Frame {
            addr: 0x10,
            function: Some("m::f".into()),
            file: None,
            line: Some(3),
            inlined: true,
            object: Some("/bin/x".into()),
        };
        assert_eq!(
            frame(&f),
            "{\"addr\":\"0x10\",\"function\":\"m::f\",\"file\":null,\"line\":3,\"inlined\":true,\"object\":\"/bin/x\"}"
        );
        assert_eq!(frames(&[]), "[]");
    }
}
