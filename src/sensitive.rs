//! What must never be shown: credentials inside text (connection strings,
//! server tokens, access keys) and the characters that make text read
//! differently from what it is (bidi controls, zero-width characters).
//!
//! Below every stage: `validate` refuses such values, `diagnostic` masks
//! credentials in everything it prints, and `escape` drops the characters
//! from the runbook; none of them depends on another for it.

/// What kind of credential `value` looks like, if it does.
pub fn credential(value: &str) -> Option<&'static str> {
    // Every pattern below needs one of these bytes (or 20 bytes for an AWS
    // key id); most plan values (names, roles, paths) have none, and a
    // 5,000-node plan has tens of thousands of values.
    let (mut eq, mut colon, mut dash, mut userinfo) = (false, false, false, false);
    for b in value.bytes() {
        match b {
            b'=' => eq = true,
            b':' => colon = true,
            b'-' => dash = true,
            b'@' => userinfo = true,
            _ => {}
        }
    }
    if !(eq || colon || dash || userinfo || value.len() >= 20) {
        return None;
    }
    if eq {
        let lower = value.to_ascii_lowercase();
        for key in [
            "password=",
            "passwd=",
            "pwd=",
            "secret=",
            "token=",
            "apikey=",
        ] {
            if lower.contains(key) {
                return Some("a `password=`-style setting");
            }
        }
    }
    // K10<sha256 of the CA>::<user>:<password>, wherever it starts; or its
    // `::server:` / `::node:` part alone.
    if colon && (value.contains("::server:") || value.contains("::node:")) {
        return Some("an RKE2/K3s server token");
    }
    let b = value.as_bytes();
    for (at, _) in value.match_indices("K10").filter(|_| colon) {
        let hex = b[at + 3..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if hex >= 64 && b[at + 3 + hex..].starts_with(b"::") {
            return Some("an RKE2/K3s server token");
        }
    }
    if dash && value.contains("-----BEGIN ") {
        return Some("a PEM key block");
    }
    if value.as_bytes().windows(20).any(|w| {
        (w.starts_with(b"AKIA") || w.starts_with(b"ASIA"))
            && w[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }) {
        return Some("an AWS access key id");
    }
    // user:password@host — the userinfo of a URL.
    for (at, _) in value.match_indices('@').filter(|_| userinfo) {
        let before = &value[..at];
        let userinfo = before.rsplit(['/', ' ']).next().unwrap_or(before);
        if let Some((user, pass)) = userinfo.split_once(':')
            && !user.is_empty()
            && !pass.is_empty()
            && at + 1 < value.len()
        {
            return Some("a user name and password before an @");
        }
    }
    None
}

/// `text` with every credential-shaped word (see [`credential`]) replaced
/// by as many `*` as it has bytes, so offsets into it stay valid. Words
/// are separated by white space, quotes and brackets. Diagnostics pass
/// everything they print through it: a secret is never echoed, whichever
/// rule the line is shown for.
pub fn mask_credentials(text: &str) -> std::borrow::Cow<'_, str> {
    let is_sep =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '[' | ']' | '{' | '}' | ',');
    let mut ranges = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (start, is_sep(c)) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                let word = &text[s..i];
                // Every shape `credential` knows has one of these.
                let maybe = word.bytes().any(|b| matches!(b, b'=' | b':' | b'@' | b'-'))
                    || word.contains("AKIA")
                    || word.contains("ASIA");
                if maybe && credential(word).is_some() {
                    ranges.push(s..i);
                }
                start = None;
            }
            _ => {}
        }
    }
    // `password = "…"`: the value of a key named like a secret, on its line.
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some(eq) = line.find('=') {
            let key = line[..eq].trim().trim_matches(['"', '\'']);
            let value = line[eq + 1..].trim_end_matches(['\n', '\r']);
            if !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && secret_key(key)
                && !value.trim().is_empty()
            {
                ranges.push(at + eq + 1..at + eq + 1 + value.len());
            }
        }
        at += line.len();
    }
    if ranges.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for r in ranges {
        // Whole bytes of `*`; a range may cut a character (it is masked
        // byte for byte), so work on bytes and fix up at the end.
        let stars = "*".repeat(r.len());
        let mut bytes = std::mem::take(&mut out).into_bytes();
        bytes.splice(r, stars.bytes());
        out = String::from_utf8_lossy(&bytes).into_owned();
    }
    std::borrow::Cow::Owned(out)
}

/// True for a key name that suggests its value is a secret.
pub fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "pwd",
        "token",
        "secret",
        "key",
        "credential",
        "auth",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// The first [`forbidden`] character of `text` and its byte offset. Plans
/// are almost all printable ASCII, which is tested a byte at a time; only
/// control bytes and multi-byte characters are decoded.
pub fn first_forbidden(text: &str) -> Option<(usize, char)> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let byte = b[i];
        if (0x20..0x7f).contains(&byte) || matches!(byte, b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        // `i` is on a character boundary: every earlier byte was ASCII or
        // the whole of a character.
        let c = text[i..].chars().next()?;
        if forbidden(c) {
            return Some((i, c));
        }
        i += c.len_utf8();
    }
    None
}

/// True for characters that a plan never needs and that can make text read
/// differently from what it is: control characters other than tab and line
/// ends, the Unicode format characters (category Cf: zero-width, bidi
/// controls, BOM, soft hyphen, …), U+2028/U+2029 and the noncharacters
/// U+FFFE/U+FFFF.
pub fn forbidden(c: char) -> bool {
    if c.is_control() {
        return !matches!(c, '\t' | '\n' | '\r');
    }
    let u = u32::from(c);
    matches!(
        u,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        assert!(credential("admin:hunter2@db.internal").is_some());
        assert!(credential("postgres://admin:hunter2@db:5432/k3s").is_some());
        assert!(credential("kine;password=x").is_some());
        let token = format!("/root/K10{}::server:abc", "a".repeat(64));
        assert!(credential(&token).is_some());
        assert!(credential(&format!("10m{}", &token[6..])).is_some());
        assert!(credential("AKIAABCDEFGHIJKLMNOP").is_some());
        // Upper case, and with none of `= : - @` (the fast path).
        assert!(credential("KINE;PASSWORD=X").is_some());
        assert!(credential("/keysAKIAABCDEFGHIJKLMNOP").is_some());
        assert!(credential("-----BEGIN RSA PRIVATE KEY-----").is_some());
        for fine in [
            "/var/lib/rancher/rke2",
            "db.internal:5432",
            "v1.28.9+rke2r1",
            "rke2-snapshots",
            "user@host",
            "kine",
        ] {
            assert_eq!(credential(fine), None, "{fine}");
        }
    }

    #[test]
    fn first_forbidden_decodes_only_what_is_not_printable_ascii() {
        assert_eq!(first_forbidden("name = \"k8s-cp-01\"\n\tx\r\n"), None);
        assert_eq!(first_forbidden("caf\u{e9} \u{4e2d}"), None);
        assert_eq!(first_forbidden("ab\u{7f}"), Some((2, '\u{7f}')));
        assert_eq!(first_forbidden("a\u{1b}[31m"), Some((1, '\u{1b}')));
        assert_eq!(first_forbidden("\u{e9}x\u{200b}"), Some((3, '\u{200b}')));
        assert_eq!(first_forbidden("\u{feff}a"), Some((0, '\u{feff}')));
        // Agrees with a scan of every character.
        let mixed = "ok \u{e9}\u{202e}\u{0}";
        assert_eq!(
            first_forbidden(mixed),
            mixed.char_indices().find(|&(_, c)| forbidden(c))
        );
    }

    #[test]
    fn masking_keeps_offsets() {
        let t = "name = \"legacypassword=x\" # a:b@c";
        let m = mask_credentials(t);
        assert_eq!(m.len(), t.len());
        assert_eq!(m, "name = \"****************\" # *****");
        assert!(matches!(
            mask_credentials("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            mask_credentials("password = \"x\"\nb = 1\n"),
            "password =****\nb = 1\n"
        );
    }

    #[test]
    fn characters_refused() {
        for c in [
            '\u{200b}', '\u{202e}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{00ad}', '\u{7f}',
        ] {
            assert!(forbidden(c), "{c:?}");
        }
        for c in ['a', 'é', '日', '🙂', '\t', '\n'] {
            assert!(!forbidden(c), "{c:?}");
        }
    }
}
