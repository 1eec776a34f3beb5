//! sha256, the one hash rewind uses: the plan's hash that every script
//! carries, the lines of `SHA256SUMS`, the bundle digest (sha256 of
//! `SHA256SUMS`) and `verify`'s check of each file. Every digest is printed
//! as 64 lowercase hex digits, the form `sha256sum` prints and reads.

use std::io::Read;

use sha2::{Digest as _, Sha256};

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// sha256 of everything `reader` yields, read in 64 KiB pieces (a file of
/// any size costs a fixed buffer), lowercase hex.
pub fn sha256_hex_of(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// True for a digest as [`sha256_hex`] prints it: 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * digest.len());
    for &b in digest {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf abc | sha256sum`
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn bytes_and_streams_hash_alike() {
        assert_eq!(sha256_hex(b"abc"), ABC);
        assert_eq!(sha256_hex_of(&b"abc"[..]).unwrap(), ABC);
        let big = vec![7u8; 200 * 1024];
        assert_eq!(sha256_hex_of(&big[..]).unwrap(), sha256_hex(&big));
    }

    #[test]
    fn only_lowercase_64_digit_hex_is_a_digest() {
        assert!(is_sha256_hex(ABC));
        assert!(!is_sha256_hex(&ABC.to_uppercase()));
        assert!(!is_sha256_hex(&ABC[1..]));
        assert!(!is_sha256_hex(&format!("{}g", &ABC[1..])));
    }
}
