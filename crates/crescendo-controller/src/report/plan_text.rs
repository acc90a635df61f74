//! The plan as run, for the report, with secrets masked: the value of every key whose
//! name contains `authorization`, `token`, `secret`, `key`, `password` or `cookie`
//! (case-insensitive; header names are keys too) becomes `"****"`, and so does the
//! `user:password@` part of any URL. Everything else, comments and layout included,
//! stays as written.
//!
//! Under `[auth]` the keys that only say where a secret comes from (`*_env`, an
//! environment variable's name; `*_file`, a path) and `token_url` are shown: they hold
//! no secret, and the report is where one checks which variable a run read.

const SECRET_WORDS: [&str; 6] = [
    "authorization",
    "token",
    "secret",
    "key",
    "password",
    "cookie",
];
pub(crate) const MASK: &str = "\"****\"";

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// Whether `key` (as written, maybe dotted) in table `table` names where a secret
/// comes from rather than holding one: `[auth]`'s `*_env`, `*_file` and `token_url`.
fn is_reference(table: &str, key: &str) -> bool {
    let path = if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    };
    let last = path.rsplit('.').next().unwrap_or_default();
    path.starts_with("auth.")
        && (last.ends_with("_env") || last.ends_with("_file") || last == "token_url")
}

/// The name of the table whose header starts at `i` (a `[` first on its line):
/// `[auth]` → `auth`, `[[ auth.clients ]]` → `auth.clients`.
fn table_name(s: &[char], i: usize) -> String {
    s[i..]
        .iter()
        .skip_while(|&&c| c == '[')
        .take_while(|&&c| c != ']' && c != '\n')
        .filter(|&&c| !c.is_whitespace() && c != '"' && c != '\'')
        .collect()
}

fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The end (exclusive) of the string starting at `i` (a quote), multi-line or not.
fn string_end(s: &[char], i: usize) -> usize {
    let q = s[i];
    let triple = s.len() >= i + 3 && s[i + 1] == q && s[i + 2] == q;
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < s.len() {
        if q == '"' && s[j] == '\\' {
            j += 2;
            continue;
        }
        if s[j] == q && (!triple || s.get(j + 1) == Some(&q) && s.get(j + 2) == Some(&q)) {
            let mut end = j + if triple { 3 } else { 1 };
            // A triple-quoted string may end with up to two more quotes of content.
            while triple && s.get(end) == Some(&q) && end < j + 5 {
                end += 1;
            }
            return end;
        }
        if !triple && s[j] == '\n' {
            return j;
        }
        j += 1;
    }
    s.len()
}

/// The end (exclusive) of the value starting at `i`: a string, a bracketed array or
/// inline table (balanced, strings skipped), or a bare scalar.
fn value_end(s: &[char], i: usize) -> usize {
    match s.get(i) {
        Some('"' | '\'') => string_end(s, i),
        Some('[' | '{') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    '"' | '\'' => {
                        j = string_end(s, j);
                        continue;
                    }
                    '[' | '{' => depth += 1,
                    ']' | '}' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            s.len()
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], ',' | '}' | ']' | '\n' | '#') {
                j += 1;
            }
            while j > i && s[j - 1].is_whitespace() {
                j -= 1;
            }
            j
        }
    }
}

/// The plan's TOML with every secret masked (see the module docs).
pub(crate) fn mask_secrets(text: &str) -> String {
    let s: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut table = String::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        // A `[` first on its line opens a table (values' arrays follow their `=`).
        if c == '['
            && s[..i]
                .iter()
                .rev()
                .take_while(|&&c| c != '\n')
                .all(|c| c.is_whitespace())
        {
            table = table_name(&s, i);
        }
        let (start, end, key) = if c == '#' {
            let end = s[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(s.len(), |p| i + p);
            out.extend(&s[i..end]);
            i = end;
            continue;
        } else if c == '"' || c == '\'' {
            let end = string_end(&s, i);
            let inner: String = s[i..end].iter().collect();
            (i, end, inner.trim_matches(['"', '\'']).to_owned())
        } else if is_bare(c) {
            let end = s[i..]
                .iter()
                .position(|&c| !is_bare(c))
                .map_or(s.len(), |p| i + p);
            (i, end, s[i..end].iter().collect())
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        let token: String = s[start..end].iter().collect();
        let mut j = end;
        while j < s.len() && matches!(s[j], ' ' | '\t') {
            j += 1;
        }
        if s.get(j) != Some(&'=') {
            // A value (or a table header's name), not a key.
            out.push_str(&crescendo_plan::mask_url_userinfo(&token));
            i = end;
            continue;
        }
        out.push_str(&token);
        j += 1;
        while j < s.len() && matches!(s[j], ' ' | '\t') {
            j += 1;
        }
        out.extend(&s[end..j]);
        if is_secret(&key) && !is_reference(&table, &key) {
            out.push_str(MASK);
            i = value_end(&s, j);
        } else {
            i = j;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_with_secret_names_are_masked() {
        let plan = r#"name = "p" # the plan
[target]
base_url = "https://me:hunter2@api.example.com/v2"
headers = { "Authorization" = "Bearer abc.def", "Content-Type" = "application/json", X-Api-Key = 'k-123' }
[[scenario.steps]]
name = "update"
body = '{"token": "not a key here"}'
[scenario.steps.headers]
x-auth-token = """multi
line"""
retries = 3
client_secret = 12345
api_keys = ["a", "b"]
"#;
        let masked = mask_secrets(plan);
        for secret in ["abc.def", "k-123", "hunter2", "multi", "12345", "\"a\""] {
            assert!(!masked.contains(secret), "{secret} leaked:\n{masked}");
        }
        for kept in [
            "name = \"p\" # the plan",
            "\"Content-Type\" = \"application/json\"",
            "\"Authorization\" = \"****\"",
            "X-Api-Key = \"****\" }",
            "x-auth-token = \"****\"\nretries = 3",
            "client_secret = \"****\"\n",
            "api_keys = \"****\"\n",
            "https://****@api.example.com/v2",
            // A JSON body is a value: its inner text is not a key.
            "body = '{\"token\": \"not a key here\"}'",
            "[scenario.steps.headers]",
        ] {
            assert!(masked.contains(kept), "{kept:?} missing:\n{masked}");
        }
    }

    #[test]
    fn auth_references_are_shown_but_secrets_and_authorization_stay_masked() {
        let plan = r#"[target]
headers = { Authorization = "Bearer {token}" }
token_env = "NOT_AUTH_SO_MASKED"
[auth]
kind = "oauth2-client-credentials"
token_url = "https://me:hunter2@login.example.com/oauth/token"
client_id_env = "CRESCENDO_CLIENT_ID"
client_secret_file = "/run/secrets/client_secret"
client_secret = "literal-s3cret"
clients = [{ client_id_env = "A_ID", client_secret_env = "A_SECRET" }]
[[ auth.clients ]]
client_secret_env = "B_SECRET"
[scenario.steps.headers]
Authorization = "Bearer {token}"
"#;
        let masked = mask_secrets(plan);
        for secret in ["{token}", "hunter2", "literal-s3cret", "NOT_AUTH_SO_MASKED"] {
            assert!(!masked.contains(secret), "{secret} leaked:\n{masked}");
        }
        for kept in [
            "token_url = \"https://****@login.example.com/oauth/token\"",
            "client_id_env = \"CRESCENDO_CLIENT_ID\"",
            "client_secret_file = \"/run/secrets/client_secret\"",
            "client_secret = \"****\"",
            "client_secret_env = \"A_SECRET\" }]",
            "client_secret_env = \"B_SECRET\"",
            "headers = { Authorization = \"****\" }",
            "[scenario.steps.headers]\nAuthorization = \"****\"",
        ] {
            assert!(masked.contains(kept), "{kept:?} missing:\n{masked}");
        }
        // The same keys outside [auth] are not references: masked.
        assert_eq!(
            mask_secrets("auth.token_env = \"T\"\nx.token_env = \"T\"\n"),
            "auth.token_env = \"T\"\nx.token_env = \"****\"\n"
        );
    }

    #[test]
    fn a_plan_without_secrets_is_unchanged() {
        let plan = "name = \"x\"\n[load]\nstages = [ { duration = \"1s\", target = 1 } ]\n";
        assert_eq!(mask_secrets(plan), plan);
        assert_eq!(mask_secrets(""), "");
        assert_eq!(
            mask_secrets("broken = \"unterminated"),
            "broken = \"unterminated"
        );
    }
}
