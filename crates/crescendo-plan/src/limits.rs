//! The plan format's size limits, so that parsing a plan is bounded in time and memory
//! whatever its author (or a corrupted file) wrote. Every limit is checked where the
//! value is read and named in the error, e.g.
//! `x.toml:4012:1: scenario.steps[1000]: expected at most 1000 steps, got 1500 (a limit of the plan format)`.

/// Most bytes of plan text: a larger file is refused before it is parsed (and
/// [`load`](crate::load) reads no more than this, plus one byte, of it).
pub const MAX_PLAN_BYTES: usize = 16 * 1024 * 1024;
/// Most bytes of one `body_file` (read whole when the plan is loaded).
pub const MAX_BODY_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Most structural tokens (`=`, `,`, `[` and `{` outside strings and comments: about one
/// per key, value and table), counted before the TOML is parsed, so that the parsed tree
/// stays small whatever the text: 16 MiB of `[[t]]` would otherwise be a million tables.
pub const MAX_ITEMS: usize = 200_000;
/// Most `[[scenario.steps]]`.
pub const MAX_STEPS: usize = 1_000;
/// Most entries in one table of headers (`target.headers`, a step's `headers`), and
/// likewise in a step's `query`, `captures` and `checks`.
pub const MAX_ENTRIES_PER_TABLE: usize = 100;
/// Most data columns, inline or in a data file's header.
pub const MAX_COLUMNS: usize = 100;
/// Most inline `[data] rows` (a data `file` is streamed and has no limit).
pub const MAX_INLINE_ROWS: usize = 10_000;
/// Most `[thresholds]`.
pub const MAX_THRESHOLDS: usize = 100;
/// Most `load.stages`.
pub const MAX_STAGES: usize = 1_000;
/// Most `auth.clients`.
pub const MAX_CLIENTS: usize = 1_000;

/// `1000 steps` or `1 step`.
pub(crate) fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {}", what.strip_suffix('s').unwrap_or(what))
    } else {
        format!("{n} {what}")
    }
}

/// The byte offset of the structural token past [`MAX_ITEMS`], if `text` has that many.
/// One pass of TOML's lexer: no tree, no allocation per token.
pub(crate) fn too_many_items(text: &str) -> Option<usize> {
    use toml_parser::lexer::TokenKind;
    toml_parser::Source::new(text)
        .lex()
        .filter(|t| {
            matches!(
                t.kind(),
                TokenKind::Equals
                    | TokenKind::Comma
                    | TokenKind::LeftSquareBracket
                    | TokenKind::LeftCurlyBracket
            )
        })
        .nth(MAX_ITEMS)
        .map(|t| t.span().start())
}
