//! Plan and body files as bytes: UTF-8 text, or an error that says what the bytes are
//! instead (UTF-16 by its byte order mark, or the byte offset of the first byte that is
//! not UTF-8).

use std::io::Read;
use std::path::Path;

/// Why bytes are not UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotUtf8 {
    /// A UTF-16 byte order mark (`FF FE` little-endian, `FE FF` big-endian).
    Utf16 { big_endian: bool },
    /// The first invalid byte, at byte `offset`; the text before it is valid.
    Invalid { offset: usize, byte: u8 },
}

impl NotUtf8 {
    /// What is wrong, lowercase, for an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            NotUtf8::Utf16 { big_endian } => format!(
                "expected UTF-8 text, got UTF-16 ({} byte order mark {}); save the file as UTF-8",
                if *big_endian {
                    "big-endian"
                } else {
                    "little-endian"
                },
                if *big_endian { "FE FF" } else { "FF FE" },
            ),
            NotUtf8::Invalid { offset, byte } => format!(
                "expected UTF-8 text, got byte 0x{byte:02X} at byte offset {offset}, which is \
                 not UTF-8 (a binary file, or text in another encoding?)"
            ),
        }
    }

    /// The byte offset the problem is at.
    pub(crate) fn offset(&self) -> usize {
        match self {
            NotUtf8::Utf16 { .. } => 0,
            NotUtf8::Invalid { offset, .. } => *offset,
        }
    }
}

/// The first `limit + 1` bytes of the file at `path` (one more than allowed, so that a
/// larger file is seen as one without reading it whole).
pub(crate) fn read_at_most(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `bytes` as UTF-8 text (a UTF-8 byte order mark is kept: TOML's parser skips it).
pub(crate) fn utf8(bytes: Vec<u8>) -> Result<String, (NotUtf8, Vec<u8>)> {
    match bytes.get(..2) {
        Some([0xFF, 0xFE]) => return Err((NotUtf8::Utf16 { big_endian: false }, bytes)),
        Some([0xFE, 0xFF]) => return Err((NotUtf8::Utf16 { big_endian: true }, bytes)),
        _ => {}
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        let byte = bytes[offset];
        (NotUtf8::Invalid { offset, byte }, bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_named() {
        assert_eq!(utf8(b"a = 1".to_vec()).unwrap(), "a = 1");
        let (e, _) = utf8(vec![0xFF, 0xFE, b'a', 0]).unwrap_err();
        assert_eq!(e, NotUtf8::Utf16 { big_endian: false });
        assert!(e.describe().contains("UTF-16"), "{}", e.describe());
        let (e, _) = utf8(vec![0xFE, 0xFF, 0, b'a']).unwrap_err();
        assert_eq!(e, NotUtf8::Utf16 { big_endian: true });
        let (e, bytes) = utf8(b"name = \"\xC3\x28\"".to_vec()).unwrap_err();
        assert_eq!(
            e,
            NotUtf8::Invalid {
                offset: 8,
                byte: 0xC3
            }
        );
        assert_eq!(bytes.len(), 11);
        assert!(
            e.describe().contains("byte 0xC3 at byte offset 8"),
            "{}",
            e.describe()
        );
        let (e, _) = utf8(vec![0x7F, b'E', b'L', b'F', 0x02, 0x90]).unwrap_err();
        assert_eq!(e.offset(), 5);
    }
}
