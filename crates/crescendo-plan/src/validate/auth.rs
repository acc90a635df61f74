//! `[auth]`: bearer tokens and OAuth client credentials, named by environment variable
//! or file. A secret written into the plan itself is rejected.

use std::time::Duration;

use serde_spanned::Spanned;

use super::Ctx;
use crate::error::{PlanError, join_index, join_key};
use crate::limits::MAX_CLIENTS;
use crate::model::{Auth, ClientCredentials, ClientSharing, OAuthClient, Secret};
use crate::raw::{RawAuth, RawClient};

const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(60);
const KINDS: &str = "\"none\", \"bearer\" or \"oauth2-client-credentials\"";

/// The credential keys of one client, directly under `[auth]` or in `auth.clients`.
struct ClientKeys<'a> {
    id_env: Option<&'a Spanned<String>>,
    id_file: Option<&'a Spanned<String>>,
    secret_env: Option<&'a Spanned<String>>,
    secret_file: Option<&'a Spanned<String>>,
    id_literal: Option<&'a Spanned<toml::Value>>,
    secret_literal: Option<&'a Spanned<toml::Value>>,
}

impl ClientKeys<'_> {
    fn any(&self) -> Option<std::ops::Range<usize>> {
        [self.id_env, self.id_file, self.secret_env, self.secret_file]
            .into_iter()
            .flatten()
            .map(Spanned::span)
            .next()
    }
}

impl<'a> From<&'a RawClient> for ClientKeys<'a> {
    fn from(c: &'a RawClient) -> Self {
        ClientKeys {
            id_env: c.client_id_env.as_ref(),
            id_file: c.client_id_file.as_ref(),
            secret_env: c.client_secret_env.as_ref(),
            secret_file: c.client_secret_file.as_ref(),
            id_literal: c.client_id.as_ref(),
            secret_literal: c.client_secret.as_ref(),
        }
    }
}

pub(super) fn auth(ctx: Ctx<'_>, raw: Option<&Spanned<RawAuth>>) -> Result<Auth, PlanError> {
    let Some(raw) = raw else {
        return Ok(Auth::None);
    };
    let span = raw.span();
    let raw = raw.get_ref();
    let top = ClientKeys {
        id_env: raw.client_id_env.as_ref(),
        id_file: raw.client_id_file.as_ref(),
        secret_env: raw.client_secret_env.as_ref(),
        secret_file: raw.client_secret_file.as_ref(),
        id_literal: raw.client_id.as_ref(),
        secret_literal: raw.client_secret.as_ref(),
    };
    // Literal secrets first: whatever else is wrong, this must be the message.
    literal(ctx, top.id_literal, "auth.client_id", "client_id")?;
    literal(
        ctx,
        top.secret_literal,
        "auth.client_secret",
        "client_secret",
    )?;
    literal(ctx, raw.token.as_ref(), "auth.token", "token")?;
    literal(ctx, raw.access_token.as_ref(), "auth.access_token", "token")?;
    literal(ctx, raw.password.as_ref(), "auth.password", "client_secret")?;
    for (i, c) in raw.clients.iter().flat_map(|c| c.get_ref()).enumerate() {
        let key = join_index("auth.clients", i);
        let c = c.get_ref();
        literal(
            ctx,
            c.client_id.as_ref(),
            &join_key(&key, "client_id"),
            "client_id",
        )?;
        let k = join_key(&key, "client_secret");
        literal(ctx, c.client_secret.as_ref(), &k, "client_secret")?;
    }
    let kind = raw.kind.as_ref().map(|k| k.get_ref().as_str());
    match kind {
        None | Some("none") => {
            let stray = [
                &raw.token_url,
                &raw.token_env,
                &raw.token_file,
                &raw.sharing,
            ]
            .into_iter()
            .chain([&raw.refresh_before, &raw.scope])
            .flatten()
            .map(Spanned::span)
            .chain(top.any())
            .chain(raw.clients.as_ref().map(Spanned::span))
            .next();
            match stray {
                Some(s) => Err(ctx.err(
                    s,
                    "auth.kind",
                    format!("expected kind = \"bearer\" or \"oauth2-client-credentials\" with these keys, got kind {}",
                        kind.map_or("absent (\"none\")".to_owned(), |k| format!("{k:?}"))),
                )),
                None => Ok(Auth::None),
            }
        }
        Some("bearer") => {
            let oauth_only = [
                &raw.token_url,
                &raw.sharing,
                &raw.refresh_before,
                &raw.scope,
            ]
            .into_iter()
            .flatten()
            .map(Spanned::span)
            .chain(top.any())
            .chain(raw.clients.as_ref().map(Spanned::span))
            .next();
            if let Some(s) = oauth_only {
                return Err(ctx.err(
                    s,
                    "auth",
                    "applies only to kind = \"oauth2-client-credentials\"; bearer takes token_env or token_file",
                ));
            }
            let token = secret(
                ctx,
                span,
                "auth",
                "token",
                raw.token_env.as_ref(),
                raw.token_file.as_ref(),
            )?;
            Ok(Auth::Bearer { token })
        }
        Some("oauth2-client-credentials") => {
            oauth(ctx, span, raw, &top).map(Auth::OAuth2ClientCredentials)
        }
        Some(other) => Err(ctx.err(
            raw.kind.as_ref().map(Spanned::span).unwrap_or(span),
            "auth.kind",
            format!("expected {KINDS}, got {other:?}"),
        )),
    }
}

fn oauth(
    ctx: Ctx<'_>,
    span: std::ops::Range<usize>,
    raw: &RawAuth,
    top: &ClientKeys<'_>,
) -> Result<OAuthClient, PlanError> {
    if let Some(t) = raw.token_env.as_ref().or(raw.token_file.as_ref()) {
        return Err(ctx.err(
            t.span(),
            "auth",
            "applies only to kind = \"bearer\"; oauth2-client-credentials takes client_id_env/_file and client_secret_env/_file",
        ));
    }
    let token_url = match &raw.token_url {
        None => return Err(ctx.err(span, "auth.token_url", "missing required key: expected the token endpoint, such as \"https://login.mypurecloud.com/oauth/token\"")),
        Some(u) => {
            super::request::base_url(u.get_ref()).map_err(|m| ctx.err(u.span(), "auth.token_url", m))?;
            u.get_ref().trim().to_owned()
        }
    };
    let sharing = match &raw.sharing {
        None => ClientSharing::Shared,
        Some(s) => match s.get_ref().as_str() {
            "shared" => ClientSharing::Shared,
            "per-agent" => ClientSharing::PerAgent,
            other => {
                return Err(ctx.err(
                    s.span(),
                    "auth.sharing",
                    format!("expected \"shared\" or \"per-agent\", got {other:?}"),
                ));
            }
        },
    };
    let clients = match (&raw.clients, top.any()) {
        (Some(list), None) => {
            ctx.at_most(list.get_ref(), MAX_CLIENTS, "auth.clients", "clients")?;
            if list.get_ref().is_empty() {
                return Err(ctx.err(list.span(), "auth.clients", "expected at least one client, such as [{ client_id_env = \"A_ID\", client_secret_env = \"A_SECRET\" }]"));
            }
            let mut out = Vec::new();
            for (i, c) in list.get_ref().iter().enumerate() {
                let key = join_index("auth.clients", i);
                out.push(client(ctx, c.span(), &key, &ClientKeys::from(c.get_ref()))?);
            }
            if sharing == ClientSharing::Shared && out.len() > 1 {
                return Err(ctx.err(list.span(), "auth.clients", format!("expected one client with sharing = \"shared\" (every agent uses it), got {}; set sharing = \"per-agent\" to spread agents over clients", out.len())));
            }
            out
        }
        (Some(list), Some(_)) => {
            return Err(ctx.err(list.span(), "auth.clients", "expected either clients = [...] or client_id_*/client_secret_* directly under [auth], got both"));
        }
        (None, _) => vec![client(ctx, span, "auth", top)?],
    };
    let refresh_before = match &raw.refresh_before {
        Some(r) => ctx.positive_duration(r, "auth.refresh_before")?,
        None => DEFAULT_REFRESH_BEFORE,
    };
    let scope = match &raw.scope {
        Some(s) if s.get_ref().trim().is_empty() => {
            return Err(ctx.err(
                s.span(),
                "auth.scope",
                "expected a non-empty scope, or no scope key",
            ));
        }
        s => s.as_ref().map(|s| s.get_ref().clone()),
    };
    Ok(OAuthClient {
        token_url,
        clients,
        sharing,
        refresh_before,
        scope,
    })
}

fn client(
    ctx: Ctx<'_>,
    span: std::ops::Range<usize>,
    key: &str,
    keys: &ClientKeys<'_>,
) -> Result<ClientCredentials, PlanError> {
    Ok(ClientCredentials {
        client_id: secret(
            ctx,
            span.clone(),
            key,
            "client_id",
            keys.id_env,
            keys.id_file,
        )?,
        client_secret: secret(
            ctx,
            span,
            key,
            "client_secret",
            keys.secret_env,
            keys.secret_file,
        )?,
    })
}

/// Rejects a secret written into the plan.
fn literal(
    ctx: Ctx<'_>,
    value: Option<&Spanned<toml::Value>>,
    key: &str,
    name: &str,
) -> Result<(), PlanError> {
    match value {
        Some(v) => Err(ctx.err(
            v.span(),
            key,
            format!("secrets never go in a plan: use {name}_env or {name}_file"),
        )),
        None => Ok(()),
    }
}

/// Exactly one of `<name>_env` (an environment variable name) and `<name>_file`.
fn secret(
    ctx: Ctx<'_>,
    table: std::ops::Range<usize>,
    key: &str,
    name: &str,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<String>>,
) -> Result<Secret, PlanError> {
    match (env, file) {
        (Some(e), None) => {
            let v = e.get_ref();
            let ok = v.bytes().next().is_some_and(|b| !b.is_ascii_digit())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(ctx.err(
                    e.span(),
                    &join_key(key, &format!("{name}_env")),
                    // Not echoed: a value here is often the secret itself, pasted by mistake.
                    format!(
                        "expected an environment variable name of letters, digits and _ (not \
                         first a digit), such as \"CRESCENDO_CLIENT_SECRET\", got {} (the \
                         secret itself belongs in that variable on each agent, not in the plan)",
                        if v.is_empty() {
                            "\"\""
                        } else {
                            "other characters"
                        }
                    ),
                ));
            }
            Ok(Secret::Env(v.clone()))
        }
        (None, Some(f)) if f.get_ref().trim().is_empty() => Err(ctx.err(
            f.span(),
            &join_key(key, &format!("{name}_file")),
            "expected a file path, got \"\"",
        )),
        (None, Some(f)) => Ok(Secret::File(f.get_ref().clone())),
        (Some(e), Some(_)) => Err(ctx.err(
            e.span(),
            key,
            format!("expected one of {name}_env and {name}_file, got both"),
        )),
        (None, None) => Err(ctx.err(
            table,
            &join_key(key, &format!("{name}_env")),
            format!(
                "missing required key: expected {name}_env (an environment variable) or {name}_file"
            ),
        )),
    }
}
