//! The fast reader: a strict reader for the plain subset of TOML that plans
//! are written in, which goes from text to [`Spec`] without the toml crate's
//! token, event and document layers (the bulk of a large plan's parse time
//! and memory).
//!
//! It is only ever a shortcut. It reads comments, blank lines, `[table]` and
//! `[table.sub]` headers, `[[array]]` headers, and `key = value` lines with
//! bare keys whose value is a one-line basic or literal string, a decimal
//! integer, a boolean or a one-line array of those. Anything else — another
//! TOML form, a tab, a CR, a control character, a duplicate key or table, a
//! value serde refuses — makes it answer `None`, and [`super::parse_inspecting`]
//! reads the text with the toml crate instead: every error and its wording
//! stay the toml crate's. Every span it gives is the one toml gives
//! (a table's is its header, a string's includes its quotes; `tests/reader.rs`
//! compares both readers on every plan and on mutated ones).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_spanned::de::{SpannedDeserializer, is_spanned};

use super::Spec;

/// Reads plan text with the fast reader: `None` when the text is outside
/// its subset or serde refuses it (the caller then uses the toml crate).
pub fn read(text: &str) -> Option<Spec> {
    let doc = Document::parse(text)?;
    doc.spec()
}

/// A parsed document: the root table, borrowing from the text.
#[derive(Debug)]
pub struct Document<'a> {
    root: Table<'a>,
}

/// A value with the byte range toml gives it.
#[derive(Debug)]
struct Item<'a> {
    value: Value<'a>,
    span: Range<usize>,
}

#[derive(Debug)]
enum Value<'a> {
    String(Cow<'a, str>),
    Integer(i64),
    Boolean(bool),
    /// `key = [...]`.
    Array(Vec<Item<'a>>),
    /// `[[key]]` headers, one table each.
    Tables(Vec<Item<'a>>),
    /// A `[key]` header (the subset has no inline tables).
    Table(Table<'a>),
}

/// Keys in the order written (plans have a handful per table: a linear
/// search beats hashing).
#[derive(Debug, Default)]
struct Table<'a> {
    entries: Vec<(&'a str, Item<'a>)>,
}

impl<'a> Table<'a> {
    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == key)
    }

    /// Adds a key that must be new.
    fn insert(&mut self, key: &'a str, item: Item<'a>) -> Option<()> {
        if self.position(key).is_some() {
            return None;
        }
        self.entries.push((key, item));
        Some(())
    }
}

/// Which table `key = value` lines go to.
#[derive(Clone, Copy)]
enum Current {
    Root,
    /// `[a]`: the index of `a` in the root.
    Table(usize),
    /// `[a.b]`: the indices of `a` in the root and of `b` in `a`.
    Sub(usize, usize),
    /// `[[a]]`: the last table of the array at this index of the root.
    Last(usize),
}

impl<'a> Document<'a> {
    /// Parses text in the subset; `None` on anything else.
    pub fn parse(text: &'a str) -> Option<Self> {
        // Tabs, CRs and other control characters are valid in places in
        // TOML, but not in this subset (and a BOM is not either).
        if text.bytes().any(|b| (b < 0x20 && b != b'\n') || b == 0x7f)
            || text.starts_with('\u{feff}')
        {
            return None;
        }
        let mut p = Parser {
            text,
            b: text.as_bytes(),
            i: 0,
        };
        let mut root = Table::default();
        let mut current = Current::Root;
        loop {
            p.spaces();
            match p.peek() {
                None => break,
                Some(b'\n') => p.i += 1,
                Some(b'#') => p.comment(),
                Some(b'[') => {
                    current = p.header(&mut root)?;
                    p.end_of_line()?;
                }
                Some(_) => {
                    let key = p.key()?;
                    p.spaces();
                    p.expect(b'=')?;
                    p.spaces();
                    let item = p.value(true)?;
                    p.end_of_line()?;
                    table_at(&mut root, current)?.insert(key, item)?;
                }
            }
        }
        Some(Self { root })
    }

    /// Deserializes the document into a [`Spec`]; `None` on any serde error.
    pub fn spec(&self) -> Option<Spec> {
        Spec::deserialize(TableDe(&self.root)).ok()
    }

    /// Every string value with its span, in the order toml's document walk
    /// gives them (a stack: last key first).
    pub fn strings(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        let mut stack: Vec<&Item<'_>> = self.root.entries.iter().map(|(_, v)| v).collect();
        std::iter::from_fn(move || {
            while let Some(item) = stack.pop() {
                match &item.value {
                    Value::String(s) => return Some((s.as_ref(), item.span.clone())),
                    Value::Array(a) | Value::Tables(a) => stack.extend(a.iter()),
                    Value::Table(t) => stack.extend(t.entries.iter().map(|(_, v)| v)),
                    Value::Integer(_) | Value::Boolean(_) => {}
                }
            }
            None
        })
    }
}

/// The table `current` names.
fn table_at<'r, 'a>(root: &'r mut Table<'a>, current: Current) -> Option<&'r mut Table<'a>> {
    let value = match current {
        Current::Root => return Some(root),
        Current::Table(i) => &mut root.entries.get_mut(i)?.1.value,
        Current::Sub(i, j) => match &mut root.entries.get_mut(i)?.1.value {
            Value::Table(t) => &mut t.entries.get_mut(j)?.1.value,
            _ => return None,
        },
        Current::Last(i) => match &mut root.entries.get_mut(i)?.1.value {
            Value::Tables(a) => &mut a.last_mut()?.value,
            _ => return None,
        },
    };
    match value {
        Value::Table(t) => Some(t),
        _ => None,
    }
}

struct Parser<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn comment(&mut self) {
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.i += 1)
    }

    /// Spaces, an optional comment, then a newline or the end.
    fn end_of_line(&mut self) -> Option<()> {
        self.spaces();
        if self.peek() == Some(b'#') {
            self.comment();
        }
        match self.peek() {
            None => Some(()),
            Some(b'\n') => {
                self.i += 1;
                Some(())
            }
            Some(_) => None,
        }
    }

    /// A bare key.
    fn key(&mut self) -> Option<&'a str> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
        ) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.text[start..self.i])
    }

    /// `[a]`, `[a.b]` or `[[a]]`, with no space inside; adds the table.
    fn header(&mut self, root: &mut Table<'a>) -> Option<Current> {
        let start = self.i;
        self.i += 1;
        if self.peek() == Some(b'[') {
            self.i += 1;
            let key = self.key()?;
            self.expect(b']')?;
            self.expect(b']')?;
            let table = Item {
                value: Value::Table(Table::default()),
                span: start..self.i,
            };
            if let Some(at) = root.position(key) {
                let Value::Tables(a) = &mut root.entries[at].1.value else {
                    return None;
                };
                a.push(table);
                return Some(Current::Last(at));
            }
            root.entries.push((
                key,
                Item {
                    value: Value::Tables(vec![table]),
                    span: start..self.i,
                },
            ));
            return Some(Current::Last(root.entries.len() - 1));
        }
        let first = self.key()?;
        let second = if self.peek() == Some(b'.') {
            self.i += 1;
            Some(self.key()?)
        } else {
            None
        };
        self.expect(b']')?;
        let table = Item {
            value: Value::Table(Table::default()),
            span: start..self.i,
        };
        match second {
            None => {
                root.insert(first, table)?;
                Some(Current::Table(root.entries.len() - 1))
            }
            Some(second) => {
                // The parent must be a table its own header defined.
                let at = root.position(first)?;
                let Value::Table(parent) = &mut root.entries[at].1.value else {
                    return None;
                };
                parent.insert(second, table)?;
                Some(Current::Sub(at, parent.entries.len() - 1))
            }
        }
    }

    /// A value; an array only at the top (`top` false inside one).
    fn value(&mut self, top: bool) -> Option<Item<'a>> {
        let start = self.i;
        let value = match self.peek()? {
            b'"' => Value::String(self.basic()?),
            b'\'' => Value::String(self.literal()?),
            b't' if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Value::Boolean(true)
            }
            b'f' if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Value::Boolean(false)
            }
            b'-' | b'0'..=b'9' => Value::Integer(self.integer()?),
            b'[' if top => Value::Array(self.array()?),
            _ => return None,
        };
        // A value ends at a space, comment, newline, comma or bracket;
        // `truex`, `1.5`, `1e3` or a date is not in the subset.
        if !matches!(self.peek(), None | Some(b' ' | b'\n' | b'#' | b',' | b']')) {
            return None;
        }
        Some(Item {
            value,
            span: start..self.i,
        })
    }

    /// `-?(0|[1-9][0-9]*)` (no `+`, `_`, `-0`, other bases).
    fn integer(&mut self) -> Option<i64> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let digits = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let d = &self.b[digits..self.i];
        if d.is_empty() || (d[0] == b'0' && (d.len() > 1 || negative)) {
            return None;
        }
        self.text[start..self.i].parse().ok()
    }

    /// `'...'` on one line (not `'''`).
    fn literal(&mut self) -> Option<Cow<'a, str>> {
        if self.b[self.i..].starts_with(b"'''") {
            return None;
        }
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek()? {
                b'\'' => break,
                b'\n' => return None,
                _ => self.i += 1,
            }
        }
        let s = &self.text[start..self.i];
        self.i += 1;
        Some(Cow::Borrowed(s))
    }

    /// `"..."` on one line (not `"""`), with TOML 1.0's escapes.
    fn basic(&mut self) -> Option<Cow<'a, str>> {
        if self.b[self.i..].starts_with(b"\"\"\"") {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\n' => return None,
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..self.i]);
                    self.i += 1;
                    let c = match self.peek()? {
                        b'b' => '\u{8}',
                        b't' => '\t',
                        b'n' => '\n',
                        b'f' => '\u{c}',
                        b'r' => '\r',
                        b'"' => '"',
                        b'\\' => '\\',
                        b'u' => self.hex(4)?,
                        b'U' => self.hex(8)?,
                        _ => return None,
                    };
                    s.push(c);
                    self.i += 1;
                    run = self.i;
                }
                _ => self.i += 1,
            }
        }
        let value = match owned {
            None => Cow::Borrowed(&self.text[start..self.i]),
            Some(mut s) => {
                s.push_str(&self.text[run..self.i]);
                Cow::Owned(s)
            }
        };
        self.i += 1;
        Some(value)
    }

    /// The `n` hex digits after `\u` or `\U` (at `self.i`), as a scalar
    /// value; leaves `self.i` on the last digit.
    fn hex(&mut self, n: usize) -> Option<char> {
        let digits = self.b.get(self.i + 1..self.i + 1 + n)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let code = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        self.i += n;
        char::from_u32(code)
    }

    /// `[a, b, ...]` on one line, a trailing comma allowed.
    fn array(&mut self) -> Option<Vec<Item<'a>>> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.spaces();
            if self.peek() == Some(b']') {
                break;
            }
            items.push(self.value(false)?);
            self.spaces();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => break,
                _ => return None,
            }
        }
        self.i += 1;
        Some(items)
    }
}

/// Any serde error: the caller falls back to the toml crate, whose error
/// is the one reported.
#[derive(Debug)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not read by the fast reader")
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Error
    }
}

/// Deserializes one value of the document.
struct ValueDe<'r, 'a>(&'r Item<'a>);

/// Deserializes a table (the root, or a header's).
struct TableDe<'r, 'a>(&'r Table<'a>);

impl IntoDeserializer<'_, Error> for ValueDe<'_, '_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for TableDe<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Entries {
            entries: self.0.entries.iter(),
            value: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> Deserializer<'de> for ValueDe<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.value {
            Value::String(s) => visitor.visit_str(s),
            Value::Integer(n) => visitor.visit_i64(*n),
            Value::Boolean(b) => visitor.visit_bool(*b),
            Value::Array(a) | Value::Tables(a) => visitor.visit_seq(Items(a.iter())),
            Value::Table(t) => TableDe(t).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if is_spanned(name) {
            let span = self.0.span.clone();
            return visitor.visit_map(SpannedDeserializer::<Self, Error>::new(self, span));
        }
        self.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct Entries<'r, 'a> {
    entries: std::slice::Iter<'r, (&'a str, Item<'a>)>,
    value: Option<&'r Item<'a>>,
}

impl<'de> MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        target: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key: StrDeserializer<'_, Error> = key.into_deserializer();
        target.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, target: V) -> Result<V::Value, Error> {
        target.deserialize(ValueDe(self.value.take().ok_or(Error)?))
    }
}

struct Items<'r, 'a>(std::slice::Iter<'r, Item<'a>>);

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        target: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|item| target.deserialize(ValueDe(item)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(text: &str) -> bool {
        read(text).is_some()
    }

    #[test]
    fn subset() {
        assert!(reads(
            "format = 1\n[cluster]\nname = \"a\" # c\n[[nodes]]\nname = 'n'\nroles = [\"etcd\", 'worker',]\n"
        ));
        assert!(reads(
            "[snapshot]\n[snapshot.s3]\nbucket = \"b\\u00e9\\\"\"\n"
        ));
        assert!(reads(""));
    }

    #[test]
    fn outside_the_subset() {
        for text in [
            "format = 1\nformat = 1\n",
            "[cluster]\n[cluster]\n",
            "[[nodes]]\n[nodes]\n",
            "[nodes]\n[[nodes]]\n",
            "[snapshot.s3]\n",
            "format = +1\n",
            "format = 01\n",
            "format = -0\n",
            "format = 1_0\n",
            "format = 1.0\n",
            "format = 99999999999999999999\n",
            "[cluster]\nname = \"\"\"a\"\"\"\n",
            "[cluster]\nname = '''a'''\n",
            "[cluster]\nname = \"a\\x41\"\n",
            "[cluster]\nname = \"a\\ud800\"\n",
            "[cluster]\nname = \"a\"\r\n",
            "[cluster]\nname =\t\"a\"\n",
            "\u{feff}[cluster]\n",
            "[cluster]\nname.x = \"a\"\n",
            "[cluster]\n\"name\" = \"a\"\n",
            "[ cluster ]\n",
            "[cluster] name = \"a\"\n",
            "[cluster]\nname = { a = 1 }\n",
            "[[nodes]]\nroles = [\n\"etcd\"]\n",
            "[[nodes]]\nroles = [[\"etcd\"]]\n",
            "[cluster]\nunknown = 1\n",
            "[cluster]\nname = 1\n",
            "[cluster]\nrancher-managed = truex\n",
        ] {
            assert!(!reads(text), "{text:?}");
        }
    }

    #[test]
    fn escapes() {
        let doc = Document::parse("a = \"x\\t\\\\\\u00E9\\U0001F600y\"\nb = 'c\\d'\n").unwrap();
        let strings: Vec<_> = doc.strings().collect();
        assert_eq!(strings, [("c\\d", 33..38), ("x\t\\é😀y", 4..28)]);
    }
}
