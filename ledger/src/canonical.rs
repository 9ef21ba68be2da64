//! RFC 8785 JSON Canonicalization Scheme (JCS): the one byte form of everything that is
//! hashed or signed, so that a verifier written in any language reproduces the bytes.
//!
//! The ledger accepts only the subset of JSON whose JCS form is unambiguous without an
//! ECMAScript number printer: numbers must be integers in the IEEE-754 "safe" range
//! (|n| <= 2^53 - 1). Fractions and exponents are refused at submission time rather than
//! canonicalised, because the shortest-round-trip float printing that RFC 8785 demands is
//! the one part of JCS that independent implementations most often get wrong.

use serde_json::Value;

/// The largest integer every JCS implementation represents exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Why a JSON value has no canonical form in this ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("number {number} at {path} is not an integer within ±(2^53-1); the ledger accepts only such integers (write decimals as strings)")]
    UnsupportedNumber { path: String, number: String },
    #[error("JSON is not valid: {0}")]
    Syntax(String),
    #[error("the value at {path} is nested more than {limit} levels deep")]
    TooDeep { path: String, limit: usize },
    #[error("the bytes are valid JSON but not in RFC 8785 canonical form")]
    NotCanonical,
}

/// Appends the JCS form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    write_value(value, out, &mut String::from("$"), 0)
}

/// Returns the JCS form of `value`.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Parses `bytes` and checks that they are already exactly their own canonical form.
/// Returns the parsed value so the caller does not parse twice.
pub fn parse_canonical(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| CanonicalError::Syntax(e.to_string()))?;
    let mut again = Vec::with_capacity(bytes.len());
    write_canonical(&value, &mut again)?;
    if again != bytes {
        return Err(CanonicalError::NotCanonical);
    }
    Ok(value)
}

/// Deepest nesting `check_canonical` accepts; deeper input is refused, not recursed into.
const MAX_DEPTH: usize = 64;

/// Checks that `bytes` are exactly the JCS form of some JSON value this ledger accepts,
/// in one pass and without building the value: no whitespace, members strictly ordered
/// by UTF-16 code units (so no duplicates), strings escaped exactly as JCS writes them,
/// integers only, written the one JCS way. The offline auditor runs this on every line.
pub fn check_canonical(bytes: &[u8]) -> Result<(), CanonicalError> {
    Checker::run(bytes, false).map(|_| ())
}

/// A member of the top-level object, or of an object that is the value of one, found by
/// [`canonical_outline`]: byte ranges of its name (without quotes) and of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member whose object value holds this one; `None` at the top level.
    pub parent: Option<usize>,
    pub name: std::ops::Range<usize>,
    pub value: std::ops::Range<usize>,
}

/// [`check_canonical`], also returning where the members of the first two object levels
/// are. Because the bytes are canonical, each value's bytes are its canonical form, so
/// callers can hash and parse parts without another pass.
pub fn canonical_outline(bytes: &[u8]) -> Result<Vec<Member>, CanonicalError> {
    Checker::run(bytes, true)
}

struct Checker<'a> {
    bytes: &'a [u8],
    at: usize,
    outline: Vec<Member>,
    /// Set when the next value, if an object, is to have its members recorded: with the
    /// recording member's index, or `None` for the top-level object.
    record_next: Option<Option<usize>>,
}

impl<'a> Checker<'a> {
    fn run(bytes: &'a [u8], outline: bool) -> Result<Vec<Member>, CanonicalError> {
        // UTF-8 is checked once for the whole input; the scanner below only ever splits
        // it at ASCII bytes, so every string it sees is valid UTF-8 too.
        std::str::from_utf8(bytes).map_err(|_| CanonicalError::NotCanonical)?;
        let mut checker = Checker {
            bytes,
            at: 0,
            outline: Vec::new(),
            record_next: outline.then_some(None),
        };
        let mut checked = checker.value(0);
        if checked.is_ok() && checker.at != bytes.len() {
            checked = Err(CanonicalError::NotCanonical);
        }
        match checked {
            Ok(()) => Ok(checker.outline),
            // Only on failure: say whether the bytes are JSON at all.
            Err(CanonicalError::NotCanonical) => {
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Err(e) => Err(CanonicalError::Syntax(e.to_string())),
                    Ok(_) => Err(CanonicalError::NotCanonical),
                }
            }
            Err(other) => Err(other),
        }
    }
}

impl Checker<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), CanonicalError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(CanonicalError::NotCanonical)
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), CanonicalError> {
        if depth > MAX_DEPTH {
            return Err(CanonicalError::NotCanonical);
        }
        let record = self.record_next.take();
        match self.peek() {
            Some(b'{') => self.object(depth, record),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => Err(CanonicalError::NotCanonical),
        }
    }

    fn integer(&mut self) -> Result<(), CanonicalError> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits_start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = &self.bytes[digits_start..self.at];
        let leading_zero = digits.len() > 1 && digits[0] == b'0';
        if digits.is_empty() || leading_zero || (negative && digits == b"0") {
            return Err(CanonicalError::NotCanonical);
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) || digits.len() > 16 {
            return Err(CanonicalError::UnsupportedNumber {
                path: format!("byte {start}"),
                number: String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned(),
            });
        }
        let magnitude: i64 = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or(CanonicalError::NotCanonical)?;
        if magnitude > MAX_SAFE_INTEGER {
            return Err(CanonicalError::UnsupportedNumber {
                path: format!("byte {start}"),
                number: String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned(),
            });
        }
        Ok(())
    }

    /// Checks a string and returns its UTF-16 code units when it is a member name.
    fn string(&mut self) -> Result<std::ops::Range<usize>, CanonicalError> {
        self.at += 1; // the opening quote
        let start = self.at;
        loop {
            let Some(b) = self.peek() else {
                return Err(CanonicalError::NotCanonical);
            };
            match b {
                b'"' => {
                    let range = start..self.at;
                    self.at += 1;
                    return Ok(range);
                }
                b'\\' => {
                    let escape = self.bytes.get(self.at + 1).copied();
                    match escape {
                        Some(b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r') => self.at += 2,
                        Some(b'u') => {
                            // Only control characters without a short form are written \u00xx.
                            let hex = self
                                .bytes
                                .get(self.at + 2..self.at + 6)
                                .ok_or(CanonicalError::NotCanonical)?;
                            let lower = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
                            if hex[0] != b'0'
                                || hex[1] != b'0'
                                || !hex[2..].iter().all(|&c| lower(c))
                            {
                                return Err(CanonicalError::NotCanonical);
                            }
                            let code = u8::from_str_radix(
                                std::str::from_utf8(&hex[2..]).unwrap_or("zz"),
                                16,
                            )
                            .map_err(|_| CanonicalError::NotCanonical)?;
                            if code >= 0x20 || matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return Err(CanonicalError::NotCanonical);
                            }
                            self.at += 6;
                        }
                        _ => return Err(CanonicalError::NotCanonical),
                    }
                }
                0x00..=0x1f => return Err(CanonicalError::NotCanonical),
                _ => {
                    // Skip the run of ordinary bytes up to the next quote, backslash or
                    // control byte in one go.
                    let run = ordinary_run(&self.bytes[self.at..]);
                    self.at += run.max(1);
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), CanonicalError> {
        self.at += 1;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(CanonicalError::NotCanonical),
            }
        }
    }

    fn object(
        &mut self,
        depth: usize,
        record: Option<Option<usize>>,
    ) -> Result<(), CanonicalError> {
        self.at += 1;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        let mut previous: Option<std::ops::Range<usize>> = None;
        loop {
            if self.peek() != Some(b'"') {
                return Err(CanonicalError::NotCanonical);
            }
            let range = self.string()?;
            if let Some(p) = previous {
                let ordered = compare_names(&self.bytes[p], &self.bytes[range.clone()])?;
                if ordered != std::cmp::Ordering::Less {
                    return Err(CanonicalError::NotCanonical);
                }
            }
            previous = Some(range.clone());
            if self.peek() != Some(b':') {
                return Err(CanonicalError::NotCanonical);
            }
            self.at += 1;
            let recorded = record.map(|parent| {
                self.outline.push(Member {
                    parent,
                    name: range,
                    value: 0..0,
                });
                let index = self.outline.len() - 1;
                // Two levels are recorded: the top level's members and theirs.
                if parent.is_none() {
                    self.record_next = Some(Some(index));
                }
                index
            });
            let value_start = self.at;
            self.value(depth + 1)?;
            if let Some(index) = recorded {
                self.outline[index].value = value_start..self.at;
            }
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(CanonicalError::NotCanonical),
            }
        }
    }
}

fn unescaped_name(raw: &[u8]) -> Result<std::borrow::Cow<'_, str>, CanonicalError> {
    let raw = std::str::from_utf8(raw).map_err(|_| CanonicalError::NotCanonical)?;
    if !raw.contains('\\') {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    serde_json::from_str::<String>(&format!("\"{raw}\""))
        .map(std::borrow::Cow::Owned)
        .map_err(|_| CanonicalError::NotCanonical)
}

/// Orders two member names (their raw, canonically escaped content) by UTF-16 code
/// units, without allocating for the usual names that have no escapes.
fn compare_names(a: &[u8], b: &[u8]) -> Result<std::cmp::Ordering, CanonicalError> {
    // Plain ASCII names (nearly all) order the same by bytes as by UTF-16 code units.
    let plain = |n: &[u8]| n.iter().all(|&c| c < 0x80 && c != b'\\');
    if plain(a) && plain(b) {
        return Ok(a.cmp(b));
    }
    let (a, b) = (unescaped_name(a)?, unescaped_name(b)?);
    Ok(a.encode_utf16().cmp(b.encode_utf16()))
}

fn write_value(
    value: &Value,
    out: &mut Vec<u8>,
    path: &mut String,
    depth: usize,
) -> Result<(), CanonicalError> {
    // The writer refuses what the checker would refuse, so no accepted entry can fail
    // its own audit.
    if depth > MAX_DEPTH {
        return Err(CanonicalError::TooDeep {
            path: path.clone(),
            limit: MAX_DEPTH,
        });
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            let int = n.as_i64().filter(|i| i.abs() <= MAX_SAFE_INTEGER);
            match int {
                Some(i) => out.extend_from_slice(i.to_string().as_bytes()),
                None => {
                    return Err(CanonicalError::UnsupportedNumber {
                        path: path.clone(),
                        number: n.to_string(),
                    })
                }
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                write_value(item, out, path, depth + 1)?;
                path.truncate(len);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            // JCS orders member names by their UTF-16 code units, which differs from
            // Rust's UTF-8 byte order for characters above U+FFFF.
            let mut names: Vec<&String> = members.keys().collect();
            names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, name) in names.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(name, out);
                out.push(b':');
                let len = path.len();
                path.push('.');
                path.push_str(name);
                write_value(&members[name], out, path, depth + 1)?;
                path.truncate(len);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Writes a JSON string the way ECMAScript's `JSON.stringify` does (RFC 8785 §3.2.2.2).
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// How many bytes at the start of `bytes` need no escaping in a JSON string: none is a
/// quote, a backslash or a control byte (< 0x20). Looks at eight bytes at a time: the
/// auditor runs this over every string of every entry.
fn ordinary_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero exactly where the high bit of the result is set (the
    // classic test; bytes above the first zero may be flagged spuriously, which the
    // byte-by-byte finish below sorts out).
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut at = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Below 0x20: all of x's bits 5-7 clear, i.e. (x & 0xe0..) has a zero byte.
        let special = zero_byte(x & (0xe0 * ONES))
            | zero_byte(x ^ (u64::from(b'"') * ONES))
            | zero_byte(x ^ (u64::from(b'\\') * ONES));
        if special != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(bytes.len() - at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_runs_stop_at_the_first_byte_needing_an_escape() {
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for at in 0..20 {
                let mut text = vec![b'a'; 20];
                text[at] = special;
                assert_eq!(ordinary_run(&text), at, "{special:#x} at {at}");
            }
        }
        assert_eq!(ordinary_run(b"plain \xc3\xa9 text, no end"), 21);
        assert_eq!(ordinary_run(b""), 0);
        // Bytes next to the specials (0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0xff) are ordinary.
        assert_eq!(
            ordinary_run(&[0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0xff, 0x80, 0x41]),
            9
        );
    }
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_canonical(&v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_members_by_utf16_code_units() {
        // RFC 8785 §3.2.3 sorting example, restricted to string values.
        let v = json!({
            "\u{20ac}": "Euro Sign",
            "\r": "Carriage Return",
            "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\u{1f600}": "Emoji: Grinning Face",
            "\u{0080}": "Control",
            "\u{00f6}": "Latin Small Letter O With Diaeresis"
        });
        assert_eq!(
            canon(v),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{0080}\":\"Control\",\"\u{00f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    #[test]
    fn escapes_like_json_stringify() {
        let v = json!("a\"b\\c\u{8}\u{9}\u{a}\u{c}\u{d}\u{1}\u{1f}/\u{7f}\u{2028}é");
        assert_eq!(
            canon(v),
            "\"a\\\"b\\\\c\\b\\t\\n\\f\\r\\u0001\\u001f/\u{7f}\u{2028}é\""
        );
    }

    #[test]
    fn nested_structures_and_literals() {
        let v = json!({"b": [1, -2, true, false, null, {"z": 0, "a": "x"}], "a": {}});
        assert_eq!(
            canon(v),
            r#"{"a":{},"b":[1,-2,true,false,null,{"a":"x","z":0}]}"#
        );
    }

    #[test]
    fn refuses_fractions_and_unsafe_integers_naming_the_path() {
        let err = to_canonical(&json!({"a": [1, 2.5]})).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::UnsupportedNumber {
                path: "$.a[1]".into(),
                number: "2.5".into()
            }
        );
        assert!(to_canonical(&json!(9_007_199_254_740_992_i64)).is_err());
        assert!(to_canonical(&json!(-9_007_199_254_740_991_i64)).is_ok());
    }

    #[test]
    fn the_one_pass_checker_agrees_with_the_encoder() {
        let samples = [
            json!({"\u{20ac}": 1, "\r": [true, false, null], "1": {"a": "x\u{1}\ty/\u{7f}"}, "\u{1f600}": -42, "\u{fb33}": ""}),
            json!([]),
            json!({}),
            json!("\"\\\u{8}\u{c}\n\r\t\u{1f}"),
            json!(9_007_199_254_740_991_i64),
            json!([0, -1, 10, [[{"b": 1, "a": 2}]]]),
        ];
        for v in samples {
            let bytes = to_canonical(&v).unwrap();
            check_canonical(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&bytes)));
        }
        let refused: [&[u8]; 20] = [
            b"{\"b\":1,\"a\":2}",
            b"{\"a\":1,\"a\":1}",
            b"{ \"a\":1}",
            b"[1 ,2]",
            b"01",
            b"-0",
            b"1.0",
            b"1e3",
            b"9007199254740992",
            b"\"\\u0041\"",
            b"\"\\/\"",
            b"\"\\u000a\"",
            b"\"\\u001F\"",
            b"\"\x01\"",
            b"\"\xff\"",
            b"tru",
            b"[1,]",
            b"{\"a\"}",
            b"\"abc",
            b"1 ",
        ];
        for bad in refused {
            assert!(
                check_canonical(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(
                parse_canonical(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(check_canonical(deep.as_bytes()).is_err());
        let value: Value = serde_json::from_str(&deep).unwrap();
        assert!(matches!(
            to_canonical(&value),
            Err(CanonicalError::TooDeep { .. })
        ));
        let limit = format!("{}{}", "[".repeat(65), "]".repeat(65));
        let value: Value = serde_json::from_str(&limit).unwrap();
        let bytes = to_canonical(&value).unwrap();
        check_canonical(&bytes).unwrap();
    }

    #[test]
    fn the_outline_locates_two_levels_of_members() {
        let bytes = br#"{"a":{"b":[1,{"x":2}],"c":"s"},"d":3}"#;
        let outline = canonical_outline(bytes).unwrap();
        let named: Vec<(Option<usize>, &str, &str)> = outline
            .iter()
            .map(|m| {
                (
                    m.parent,
                    std::str::from_utf8(&bytes[m.name.clone()]).unwrap(),
                    std::str::from_utf8(&bytes[m.value.clone()]).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            named,
            vec![
                (None, "a", r#"{"b":[1,{"x":2}],"c":"s"}"#),
                (Some(0), "b", r#"[1,{"x":2}]"#),
                (Some(0), "c", r#""s""#),
                (None, "d", "3"),
            ]
        );
        assert!(canonical_outline(br#"{"b":1,"a":2}"#).is_err());
    }

    #[test]
    fn parse_canonical_accepts_only_canonical_bytes() {
        assert!(parse_canonical(br#"{"a":1,"b":"x"}"#).is_ok());
        assert_eq!(
            parse_canonical(br#"{"b":"x","a":1}"#).unwrap_err(),
            CanonicalError::NotCanonical
        );
        assert_eq!(
            parse_canonical(br#"{"a": 1}"#).unwrap_err(),
            CanonicalError::NotCanonical
        );
        // A duplicated member collapses when parsed, so it can never be canonical.
        assert_eq!(
            parse_canonical(br#"{"a":1,"a":1}"#).unwrap_err(),
            CanonicalError::NotCanonical
        );
        assert!(matches!(
            parse_canonical(b"{\"a\":").unwrap_err(),
            CanonicalError::Syntax(_)
        ));
    }
}
