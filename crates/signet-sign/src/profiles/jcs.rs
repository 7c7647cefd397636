//! RFC 8785 JSON Canonicalization Scheme (JCS), and the small JSON parser it
//! (and the Stem profile) is built on.
//!
//! What this implementation does:
//!
//! - Input must be UTF-8 JSON (RFC 8259) with a single top-level value;
//!   duplicate object keys, lone surrogates (`"\ud800"`), control characters
//!   in strings, numbers out of the IEEE 754 double range and nesting deeper
//!   than [`MAX_DEPTH`] are refused with an error that says which and where
//!   (RFC 8785 §3.1 requires I-JSON input).
//! - Output: no whitespace; object members sorted by their names compared as
//!   arrays of UTF-16 code units; strings escaped as RFC 8785 §3.2.2.2 says
//!   (`\"`, `\\`, `\b \t \n \f \r`, other controls as lowercase `\u00xx`,
//!   everything else — `/`, DEL, non-ASCII — written raw).
//! - Numbers are IEEE 754 doubles printed as ECMAScript's
//!   `Number.prototype.toString` does (RFC 8785 §3.2.2.3), non-integral ones
//!   included: the shortest digit string that round-trips (Rust's float
//!   formatting computes exactly that) laid out by the ECMAScript rules —
//!   plain digits up to 21 integer digits, `0.000001` down to 1e-6,
//!   exponent form `1e+21` / `1.5e-7` outside. `-0` prints as `0`. Integers
//!   above 2^53 are rounded to the nearest double, as every JCS
//!   implementation (and JavaScript) does.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::error::{Error, Result};

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON value. Numbers keep their source text so that callers can
/// decide how to read them (JCS as doubles, Stem as 64-bit integers only);
/// object members keep their source order.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written in the source.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object, members in source order (names are unique).
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// The member `name` of an object, if this is an object that has it.
    pub fn member(&self, name: &str) -> Option<&JsonValue> {
        match self {
            JsonValue::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the value's type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            JsonValue::Null => "null",
            JsonValue::Bool(_) => "a boolean",
            JsonValue::Number(_) => "a number",
            JsonValue::String(_) => "a string",
            JsonValue::Array(_) => "an array",
            JsonValue::Object(_) => "an object",
        }
    }
}

/// Parses JSON text.
pub fn parse(bytes: &[u8]) -> Result<JsonValue> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::malformed(format!(
            "JSON is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.error("unexpected text after the JSON value"));
    }
    Ok(value)
}

/// Canonicalises JSON text per RFC 8785.
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>> {
    let value = parse(bytes)?;
    let mut out = Vec::with_capacity(bytes.len());
    write_canonical(&value, &mut out)?;
    Ok(out)
}

/// Writes `value` in RFC 8785 form.
pub fn write_canonical(value: &JsonValue, out: &mut Vec<u8>) -> Result<()> {
    write_sorted(value, out, &|lexeme| {
        let x = number_value(lexeme)?;
        Ok(format_number(x))
    })
}

/// The double a JSON number lexeme denotes (correctly rounded).
pub fn number_value(lexeme: &str) -> Result<f64> {
    let x: f64 = lexeme.parse().map_err(|_| {
        Error::malformed(format!("{:?} is not a JSON number", super::excerpt(lexeme)))
    })?;
    if !x.is_finite() {
        return Err(Error::malformed(format!(
            "number {} is outside the range of an IEEE 754 double",
            super::excerpt(lexeme)
        )));
    }
    Ok(x)
}

/// Formats a finite double as ECMAScript `Number.prototype.toString` does.
/// Non-finite values (which JSON cannot carry) print as `null`.
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return "null".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    // `{:e}` prints the shortest digit string that round-trips, as
    // `d[.ddd]e<exp>`; re-lay it out by ECMAScript's rules.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1;
    let mut out = String::with_capacity(32);
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

/// Compares strings as sequences of UTF-16 code units (RFC 8785 §3.2.3,
/// and Dart's `String.compareTo`).
pub fn compare_utf16(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Writes a value compactly as parsed: members in source order, numbers as
/// their source text. Not canonical; for re-emitting a document after an
/// edit.
pub fn write_compact(value: &JsonValue, out: &mut Vec<u8>) {
    match value {
        JsonValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_compact(item, out);
            }
            out.push(b']');
        }
        JsonValue::Object(members) => {
            out.push(b'{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_compact(v, out);
            }
            out.push(b'}');
        }
        JsonValue::Number(lexeme) => out.extend_from_slice(lexeme.as_bytes()),
        JsonValue::String(s) => write_string(s, out),
        JsonValue::Null => out.extend_from_slice(b"null"),
        JsonValue::Bool(true) => out.extend_from_slice(b"true"),
        JsonValue::Bool(false) => out.extend_from_slice(b"false"),
    }
}

/// Writes a value compactly with object members sorted by UTF-16 code units
/// and numbers written by `number` (given the source lexeme).
pub(crate) fn write_sorted(
    value: &JsonValue,
    out: &mut Vec<u8>,
    number: &dyn Fn(&str) -> Result<String>,
) -> Result<()> {
    match value {
        JsonValue::Null => out.extend_from_slice(b"null"),
        JsonValue::Bool(true) => out.extend_from_slice(b"true"),
        JsonValue::Bool(false) => out.extend_from_slice(b"false"),
        JsonValue::Number(lexeme) => out.extend_from_slice(number(lexeme)?.as_bytes()),
        JsonValue::String(s) => write_string(s, out),
        JsonValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_sorted(item, out, number)?;
            }
            out.push(b']');
        }
        JsonValue::Object(members) => {
            let mut sorted: Vec<&(String, JsonValue)> = members.iter().collect();
            sorted.sort_by(|a, b| compare_utf16(&a.0, &b.0));
            out.push(b'{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_sorted(v, out, number)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Writes a JSON string with RFC 8785 escaping (which is also Dart's
/// `jsonEncode` escaping).
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x00..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::malformed(format!("invalid JSON at byte {}: {what}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: JsonValue) -> Result<JsonValue> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsonValue> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'n') => self.literal(b"null", JsonValue::Null),
            Some(b't') => self.literal(b"true", JsonValue::Bool(true)),
            Some(b'f') => self.literal(b"false", JsonValue::Bool(false)),
            Some(b'"') => Ok(JsonValue::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.enter(depth)?;
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(JsonValue::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(JsonValue::Array(items));
                        }
                        _ => return Err(self.error("expected , or ] in an array")),
                    }
                }
            }
            Some(b'{') => {
                self.enter(depth)?;
                self.pos += 1;
                let mut members = Vec::new();
                let mut seen = BTreeSet::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(JsonValue::Object(members));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a string member name"));
                    }
                    let name = self.string()?;
                    if !seen.insert(name.clone()) {
                        return Err(self.error(&format!(
                            "member name {:?} appears twice in one object",
                            super::excerpt(&name)
                        )));
                    }
                    self.skip_ws();
                    if self.peek() != Some(b':') {
                        return Err(self.error("expected : after a member name"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let value = self.value(depth + 1)?;
                    members.push((name, value));
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(JsonValue::Object(members));
                        }
                        _ => return Err(self.error("expected , or } in an object")),
                    }
                }
            }
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn enter(&self, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            Err(self.error(&format!("nesting deeper than {MAX_DEPTH} levels")))
        } else {
            Ok(())
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<JsonValue> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.error("numbers must not have leading zeros"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after the decimal point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        let lexeme = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        Ok(JsonValue::Number(lexeme))
    }

    fn hex4(&mut self) -> Result<u32> {
        let chunk = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let mut v = 0u32;
        for &b in chunk {
            let d = (b as char)
                .to_digit(16)
                .ok_or_else(|| self.error("\\u escape needs 4 hex digits"))?;
            v = v * 16 + d;
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        // The caller checked the opening quote.
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.extend_from_slice(&self.s[start..self.pos]);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += 1;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.pos..].starts_with(b"\\u") {
                                    return Err(self.error("lone surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.error("lone surrogate in \\u escape"));
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))?
                        }
                        _ => return Err(self.error("unknown escape in a string")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(_) => return Err(self.error("control character in a string; escape it")),
            }
        }
        // Raw runs were copied whole from valid UTF-8 (they stop only at
        // ASCII bytes) and escapes were encoded from `char`s.
        String::from_utf8(out).map_err(|_| self.error("string is not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonicalize(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_section_3_2_2_example() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon(input),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    #[test]
    fn rfc8785_sorting_example() {
        let input = "{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\",\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}";
        assert_eq!(
            canon(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    /// Expected strings were printed by Node.js `String(x)` for each bit
    /// pattern (the patterns are the edge cases of the RFC 8785 reference
    /// test set: extremes, 2^53, the 1e21 and 1e-6 switch-over points).
    #[test]
    fn ecmascript_number_formatting() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x3eb0c6f7a0b5ed8b, "9.999999999999995e-7"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0xc1b3de4355555556, "-333333333.3333334"),
        ];
        for &(bits, want) in cases {
            assert_eq!(format_number(f64::from_bits(bits)), want, "{bits:#018x}");
        }
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        for (bad, why) in [
            ("{\"a\":1,\"a\":2}", "appears twice"),
            ("\"\\ud800\"", "lone surrogate"),
            ("\"\\udc00x\"", "lone surrogate"),
            ("[1,]", "expected a JSON value"),
            ("01", "leading zeros"),
            ("1e400", "outside the range"),
            ("\"a\u{1}\"", "control character"),
            ("{} x", "after the JSON value"),
            ("", "end of input"),
        ] {
            let err = canonicalize(bad.as_bytes()).unwrap_err();
            assert!(err.is_malformed(), "{bad}");
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(canonicalize(deep.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("nesting"));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(canonicalize(ok.as_bytes()).is_ok());
        assert!(canonicalize(b"\"\xff\"")
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }

    /// Semantic equality: numbers as doubles, objects as maps.
    fn same(a: &JsonValue, b: &JsonValue) -> bool {
        match (a, b) {
            (JsonValue::Number(x), JsonValue::Number(y)) => {
                number_value(x).unwrap() == number_value(y).unwrap()
            }
            (JsonValue::Array(x), JsonValue::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (JsonValue::Object(x), JsonValue::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| b.member(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }

    fn arb_json() -> impl Strategy<Value = JsonValue> {
        let leaf = prop_oneof![
            Just(JsonValue::Null),
            any::<bool>().prop_map(JsonValue::Bool),
            any::<i64>().prop_map(|n| JsonValue::Number(n.to_string())),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(|x| JsonValue::Number(format!("{x:e}"))),
            any::<String>().prop_map(JsonValue::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(JsonValue::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| JsonValue::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Writes a value in a non-canonical but valid way: source order,
    /// whitespace, every non-ASCII character escaped.
    fn write_loose(v: &JsonValue, out: &mut String) {
        match v {
            JsonValue::Null => out.push_str(" null"),
            JsonValue::Bool(b) => out.push_str(if *b { "true " } else { "false" }),
            JsonValue::Number(n) => out.push_str(n),
            JsonValue::String(s) => {
                out.push('"');
                for u in s.encode_utf16() {
                    out.push_str(&format!("\\u{u:04X}"));
                }
                out.push('"');
            }
            JsonValue::Array(items) => {
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" ,\n");
                    }
                    write_loose(item, out);
                }
                out.push_str(" ]");
            }
            JsonValue::Object(members) => {
                out.push_str("{\t");
                for (i, (k, item)) in members.iter().rev().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_loose(&JsonValue::String(k.clone()), out);
                    out.push_str(" : ");
                    write_loose(item, out);
                }
                out.push_str("\r}");
            }
        }
    }

    proptest! {
        #[test]
        fn canonical_form_is_idempotent_and_preserves_the_value(v in arb_json()) {
            let mut loose = String::new();
            write_loose(&v, &mut loose);
            let once = canonicalize(loose.as_bytes()).unwrap();
            let twice = canonicalize(&once).unwrap();
            prop_assert_eq!(&once, &twice);
            let back = parse(&once).unwrap();
            prop_assert!(same(&back, &v), "{:?} became {:?}", v, back);
        }

        #[test]
        fn numbers_round_trip_through_their_ecmascript_form(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let text = format_number(x);
            let back: f64 = text.parse().unwrap();
            prop_assert!(back == x, "{} printed as {}", x, text);
        }
    }
}
