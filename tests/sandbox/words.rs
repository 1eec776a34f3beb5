//! Reading back the shell words the scripts print.
//!
//! `rw_run` prints each command it runs as `+ WORD...`, every word quoted by
//! `rw_quote` (bare when safe, else single quotes with `'\''` for a quote);
//! `rw_run_stdin` appends ` < FILE`. [`command_line`] turns such a line back
//! into the exact argument vector, which is how the fault tests learn which
//! commands a step runs, and how the dry-run test compares what would run
//! with what did.

/// A command printed by the library: its words, and its stdin file if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Printed {
    /// The argument vector, exactly.
    pub argv: Vec<String>,
    /// `< FILE`, for commands run with a file on standard input.
    pub stdin: Option<String>,
}

/// Splits one printed command line into words (POSIX quoting: single
/// quotes, double quotes without expansions, backslashes). Returns `None`
/// for text that is not a complete command (an open quote).
pub fn command_line(line: &str) -> Option<Printed> {
    let mut argv = Vec::new();
    let mut stdin = None;
    let mut word = String::new();
    let mut in_word = false;
    let mut redirect = false;
    let mut chars = line.chars();
    let finish = |word: &mut String,
                  in_word: &mut bool,
                  redirect: &mut bool,
                  argv: &mut Vec<String>,
                  stdin: &mut Option<String>| {
        if *in_word {
            if *redirect {
                *stdin = Some(std::mem::take(word));
                *redirect = false;
            } else {
                argv.push(std::mem::take(word));
            }
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => finish(
                &mut word,
                &mut in_word,
                &mut redirect,
                &mut argv,
                &mut stdin,
            ),
            '<' if !in_word => redirect = true,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish(
        &mut word,
        &mut in_word,
        &mut redirect,
        &mut argv,
        &mut stdin,
    );
    if argv.is_empty() || redirect {
        return None;
    }
    Some(Printed { argv, stdin })
}

/// Every command a run printed with `+ ` (commands that changed the host),
/// in order. Multi-line words (a quoted newline) are joined back.
pub fn executed(stdout: &str) -> Vec<Printed> {
    printed(stdout, "+ ")
}

/// Every command a dry run said it would run (`[dry-run] would run: `).
pub fn would_run(stdout: &str) -> Vec<Printed> {
    printed(stdout, "[dry-run] would run: ")
}

fn printed(stdout: &str, prefix: &str) -> Vec<Printed> {
    let mut out = Vec::new();
    let mut lines = stdout.split('\n');
    while let Some(line) = lines.next() {
        let Some(mut rest) = line.strip_prefix(prefix).map(str::to_owned) else {
            continue;
        };
        loop {
            if let Some(p) = command_line(&rest) {
                out.push(p);
                break;
            }
            match lines.next() {
                Some(more) => {
                    rest.push('\n');
                    rest.push_str(more);
                }
                None => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_rw_quote() {
        let p = command_line(r"mv /a/b '/c d/it'\''s' x=1").unwrap();
        assert_eq!(p.argv, ["mv", "/a/b", "/c d/it's", "x=1"]);
        let p = command_line("mysql --database=kine < /var/backups/k.sql").unwrap();
        assert_eq!(p.argv, ["mysql", "--database=kine"]);
        assert_eq!(p.stdin.as_deref(), Some("/var/backups/k.sql"));
        assert_eq!(
            executed("+ cp 'a\nb' c\nother\n+ ls\n")
                .into_iter()
                .map(|p| p.argv)
                .collect::<Vec<_>>(),
            vec![vec!["cp", "a\nb", "c"], vec!["ls"]]
        );
    }
}
