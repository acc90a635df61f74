//! The README and `--help` agree: every subcommand `--help` lists is in the README,
//! every flag the README shows on a `crescendo-controller SUB …` command line is in
//! that subcommand's `--help`, and each subcommand's long help ends with examples that
//! use only its own flags. The real binary.

mod common;
use common::controller;

use std::collections::BTreeMap;

/// The subcommands `--help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let (code, help) = controller(["--help"]);
    assert_eq!(code, 0, "{help}");
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// `--help` of `words` (a subcommand, maybe with a nested one), cached.
fn help<'a>(cache: &'a mut BTreeMap<Vec<String>, String>, words: &[String]) -> &'a str {
    cache.entry(words.to_vec()).or_insert_with(|| {
        let mut args = words.to_vec();
        args.push("--help".into());
        let (code, text) = controller(&args);
        assert_eq!(code, 0, "{args:?}: {text}");
        text
    })
}

/// The flags (`--name`) in `text`.
fn flags(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | '[' | ']' | '='))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect()
        })
        .collect()
}

/// Each `crescendo-controller SUB …` command in `text` (to the end of its line, its
/// inline code span or a `#` comment): the subcommand words and the rest.
fn command_lines(text: &str, subs: &[String]) -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    for line in text.lines() {
        for (at, _) in line.match_indices("crescendo-controller ") {
            let rest = &line[at + "crescendo-controller ".len()..];
            let rest = rest.split(['`', '#']).next().unwrap_or_default();
            let mut words = rest.split_whitespace();
            let Some(sub) = words.next().filter(|w| subs.iter().any(|s| s == w)) else {
                continue;
            };
            let mut path = vec![sub.to_owned()];
            if let Some(nested) = words
                .next()
                .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.is_empty())
                && matches!(sub, "runs" | "schedules" | "agents")
            {
                path.push(nested.to_owned());
            }
            found.push((path, rest.to_owned()));
        }
    }
    found
}

fn check_flags(
    cache: &mut BTreeMap<Vec<String>, String>,
    commands: Vec<(Vec<String>, String)>,
    whence: &str,
) -> Vec<String> {
    let mut missing = Vec::new();
    for (path, rest) in commands {
        let mut known = help(cache, &path).to_owned();
        if path.len() > 1 {
            known.push_str(help(cache, &path[..1]));
        }
        for flag in flags(&rest) {
            if flag != "--help"
                && !known.contains(&format!("{flag} "))
                && !known.contains(&format!("{flag}\n"))
            {
                missing.push(format!(
                    "{whence}: crescendo-controller {} … {flag}",
                    path.join(" ")
                ));
            }
        }
    }
    missing
}

#[test]
fn the_readme_and_help_agree() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let subs = subcommands();
    assert!(subs.len() > 10, "{subs:?}");
    let unmentioned: Vec<&String> = subs
        .iter()
        .filter(|s| {
            !readme.contains(&format!("crescendo-controller {s}"))
                && !readme.contains(&format!("`{s} "))
                && !readme.contains(&format!("`{s}`"))
        })
        .collect();
    assert!(unmentioned.is_empty(), "not in the README: {unmentioned:?}");
    let mut cache = BTreeMap::new();
    let missing = check_flags(&mut cache, command_lines(&readme, &subs), "README");
    assert!(
        missing.is_empty(),
        "flags the README shows that --help lacks: {missing:#?}"
    );
}

#[test]
fn every_subcommand_ends_its_long_help_with_examples_of_itself() {
    let subs = subcommands();
    let mut cache = BTreeMap::new();
    let mut missing = Vec::new();
    let mut paths: Vec<Vec<String>> = subs.iter().map(|s| vec![s.clone()]).collect();
    for group in ["runs", "schedules", "agents"] {
        let text = help(&mut cache, &[group.to_owned()]).to_owned();
        let nested = text
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(|c| vec![group.to_owned(), c.to_owned()]);
        paths.extend(nested.collect::<Vec<_>>());
    }
    assert!(paths.len() > subs.len() + 10, "{paths:?}");
    for path in &paths {
        let sub = &path[0];
        let text = help(&mut cache, path).to_owned();
        let examples: String = text
            .split_once("Examples:\n")
            .map(|(_, e)| e.to_owned())
            .unwrap_or_default();
        let commands = command_lines(&examples, &subs);
        if commands.is_empty() || commands.iter().any(|(p, _)| p[0] != *sub) {
            missing.push(format!("{}: {examples:?}", path.join(" ")));
        }
        let whence = format!("{} --help", path.join(" "));
        missing.extend(check_flags(&mut cache, commands, &whence));
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
