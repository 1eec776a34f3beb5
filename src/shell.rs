//! POSIX shell quoting: the one mechanism that carries plan values into
//! scripts.
//!
//! A word made only of characters that no shell treats specially is printed
//! bare (so generated scripts stay readable); anything else is wrapped in
//! single quotes, with each `'` written as `'"'"'`. Inside single quotes no
//! character is special, so `$(…)`, backquotes, `;`, globs and newlines all
//! arrive as one literal word. Double quotes and `$'…'` are avoided on purpose:
//! the first still expands `$` and backquotes, the second is not POSIX.

/// Quotes `s` as a single POSIX shell word.
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(is_safe) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\"'\"'");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

fn is_safe(b: u8) -> bool {
    // `=` is safe inside a word but not as the first character of a command
    // word that looks like an assignment; arguments are never in that
    // position, and `--flag=value` must stay readable.
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'@' | b'%' | b'+' | b'=' | b':' | b',' | b'.' | b'/' | b'-' | b'_'
        )
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(quote("server-1"), "server-1");
        assert_eq!(quote("/var/lib/rancher/rke2"), "/var/lib/rancher/rke2");
        assert_eq!(quote("v1.28.9+rke2r1"), "v1.28.9+rke2r1");
        assert_eq!(quote("--etcd-s3=false"), "--etcd-s3=false");
    }

    #[test]
    fn hostile_words_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("`id`"), "'`id`'");
        assert_eq!(quote("it's"), "'it'\"'\"'s'");
        assert_eq!(quote("a;b&c|d"), "'a;b&c|d'");
        assert_eq!(quote("*"), "'*'");
        assert_eq!(quote("~root"), "'~root'");
        assert_eq!(quote("line\nbreak"), "'line\nbreak'");
        assert_eq!(quote("é"), "'é'");
    }
}
