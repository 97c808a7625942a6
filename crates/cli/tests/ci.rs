//! The CI pipeline files (`deploy/ci/`) run against the simulator: not the CI systems,
//! their steps. Each file is parsed as YAML; the `steward` command lines of its jobs'
//! `run:` (GitHub Actions) or `script:` (GitLab CI) steps are taken in order, with the
//! environment the file sets (workflow, job and step `env:`, or `variables:`; the
//! repository variables and secrets they name are the simulator's addresses and
//! tokens), and run from a checkout holding `specs/` and `guardrails.yaml`. A pull
//! request previews, the merge pushes and waits for the operator, and the next pull
//! request previews no change.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::stack::{Stack, copy_specs};
use serde_json::Value;

/// One steward command of a pipeline step.
#[derive(Debug)]
struct Command {
    /// Arguments after `steward`.
    args: Vec<String>,
    /// The file stdout is redirected to, if any.
    stdout_to: Option<String>,
    /// The environment the pipeline gives the step.
    env: BTreeMap<String, String>,
}

/// Expands `$NAME` and `${NAME}` from `env` (unknown names expand to nothing, as in a
/// shell).
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced {
            assert_eq!(chars.next(), Some('}'), "unclosed ${{ in {text}");
        }
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(env.get(&name).map_or("", String::as_str));
        }
    }
    out
}

/// Ends the word being read: a redirect target or one more word.
fn end_word(
    word: &mut Option<String>,
    redirect_next: &mut bool,
    words: &mut Vec<String>,
    redirect: &mut Option<String>,
) {
    if let Some(w) = word.take() {
        if *redirect_next {
            *redirect = Some(w);
            *redirect_next = false;
        } else {
            words.push(w);
        }
    }
}

/// The words of a shell command line (quotes and `$VAR` handled), up to a `;`, `|`,
/// `&` or comment; a `> FILE` redirect is returned apart.
fn shell_words(line: &str, env: &BTreeMap<String, String>) -> (Vec<String>, Option<String>) {
    let mut words = Vec::new();
    let mut redirect = None;
    let mut word: Option<String> = None;
    let mut redirect_next = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => end_word(&mut word, &mut redirect_next, &mut words, &mut redirect),
            ';' | '|' | '&' => break,
            '#' if word.is_none() => break,
            '>' => {
                end_word(&mut word, &mut redirect_next, &mut words, &mut redirect);
                redirect_next = true;
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let mut quoted = String::new();
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    quoted.push(q);
                }
                word.get_or_insert_with(String::new)
                    .push_str(&expand(&quoted, env));
            }
            '$' => {
                let mut var = String::from("$");
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' || n == '{' || n == '}' {
                        var.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                word.get_or_insert_with(String::new)
                    .push_str(&expand(&var, env));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut word, &mut redirect_next, &mut words, &mut redirect);
    (words, redirect)
}

/// The steward commands of a script, in order.
fn steward_commands(script: &str, env: &BTreeMap<String, String>, out: &mut Vec<Command>) {
    for line in script.lines() {
        let line = line.trim();
        if !line.starts_with("steward ") {
            continue;
        }
        let (mut words, stdout_to) = shell_words(line, env);
        assert_eq!(words.remove(0), "steward");
        out.push(Command {
            args: words,
            stdout_to,
            env: env.clone(),
        });
    }
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(common::repo_root().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn string_map(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// GitHub Actions: `${{ vars.X }}` and `${{ secrets.X }}` from `given`.
fn github_value(text: &str, given: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").unwrap() + start;
        let expr = rest[start + 3..end].trim();
        let name = expr
            .strip_prefix("vars.")
            .or_else(|| expr.strip_prefix("secrets."))
            .unwrap_or_else(|| panic!("unexpected expression {expr} in an env value"));
        out.push_str(
            given
                .get(name)
                .unwrap_or_else(|| panic!("the test gives no {name}")),
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The steward commands of GitHub Actions job `job`, with workflow, job and step `env`.
fn github_job(doc: &Value, job: &str, given: &BTreeMap<String, String>) -> Vec<Command> {
    let mut env = BTreeMap::new();
    for scope in [&doc["env"], &doc["jobs"][job]["env"]] {
        for (k, v) in string_map(scope) {
            env.insert(k, github_value(&v, given));
        }
    }
    let mut out = Vec::new();
    for step in doc["jobs"][job]["steps"].as_array().unwrap() {
        let mut step_env = env.clone();
        for (k, v) in string_map(&step["env"]) {
            step_env.insert(k, github_value(&v, given));
        }
        if let Some(run) = step["run"].as_str() {
            steward_commands(run, &step_env, &mut out);
        }
    }
    out
}

/// The steward commands of GitLab CI job `job`: the project's CI/CD variables
/// (`given`), then the file's and the job's `variables` (expanded like GitLab does).
fn gitlab_job(doc: &Value, job: &str, given: &BTreeMap<String, String>) -> Vec<Command> {
    let mut env = given.clone();
    for scope in [&doc["variables"], &doc[job]["variables"]] {
        for (k, v) in string_map(scope) {
            let value = expand(&v, &env);
            env.insert(k, value);
        }
    }
    let mut out = Vec::new();
    for part in ["before_script", "script"] {
        for line in doc[job][part].as_array().into_iter().flatten() {
            steward_commands(line.as_str().unwrap(), &env, &mut out);
        }
    }
    out
}

/// Runs `commands` from `checkout`; returns each command's subcommand, exit code and
/// stdout (also written where the line redirects it).
fn run_all(checkout: &Path, commands: &[Command]) -> Vec<(String, i32, String)> {
    commands
        .iter()
        .map(|c| {
            let mut cmd = common::steward();
            cmd.current_dir(checkout).envs(&c.env).args(&c.args);
            let r = common::run_with(cmd, Duration::from_secs(180));
            if let Some(file) = &c.stdout_to {
                std::fs::write(checkout.join(file), &r.stdout).unwrap();
            }
            let code = r.code.unwrap_or(-1);
            eprintln!(
                "steward {} -> {code}\n{}{}",
                c.args.join(" "),
                r.stdout,
                r.stderr
            );
            (c.args[0].clone(), code, r.stdout)
        })
        .collect()
}

fn subcommands(results: &[(String, i32, String)]) -> Vec<(&str, i32)> {
    results.iter().map(|(s, c, _)| (s.as_str(), *c)).collect()
}

/// Runs the pipeline's pull request job, its merge job, and its pull request job again.
fn pipeline(
    jobs: impl Fn(&str, &BTreeMap<String, String>) -> Vec<Command>,
    preview: &str,
    deploy: &str,
) {
    let mut stack = Stack::start();
    let checkout = tempfile::tempdir().unwrap();
    copy_specs(
        &common::repo_root().join("deploy/examples"),
        &checkout.path().join("specs"),
    );
    std::fs::copy(
        common::repo_root().join("deploy/guardrails.yaml"),
        checkout.path().join("guardrails.yaml"),
    )
    .unwrap();
    stack.bootstrap(&checkout.path().join("specs"));
    stack.start_operator();
    let mut given: BTreeMap<String, String> = stack
        .addresses()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (k, v) in [
        ("STEWARD_DIFF_CONSUL_TOKEN", "diff-consul-token"),
        ("STEWARD_DIFF_NOMAD_TOKEN", "diff-nomad-token"),
        ("STEWARD_DIFF_VAULT_TOKEN", "root"),
        ("STEWARD_PUSH_CONSUL_TOKEN", "push-consul-token"),
    ] {
        given.insert(k.to_owned(), v.to_owned());
    }

    let pr = jobs(preview, &given);
    assert_eq!(
        pr.iter().map(|c| c.args[0].as_str()).collect::<Vec<_>>(),
        ["validate", "diff"],
        "{pr:#?}"
    );
    assert!(pr[1].args.iter().any(|a| a == "markdown"), "{pr:#?}");
    assert_eq!(
        pr[1].env.get("VAULT_TOKEN").map(String::as_str),
        Some("root")
    );
    let results = run_all(checkout.path(), &pr);
    assert_eq!(subcommands(&results), [("validate", 0), ("diff", 2)]);
    let comment = std::fs::read_to_string(checkout.path().join("steward-diff.md")).unwrap();
    assert!(comment.starts_with("<!-- steward-diff -->\n"), "{comment}");
    assert!(comment.contains("7 to create"), "{comment}");
    assert_eq!(comment.matches("<details>").count(), 7, "{comment}");

    let merge = jobs(deploy, &given);
    let results = run_all(checkout.path(), &merge);
    assert_eq!(subcommands(&results), [("validate", 0), ("push", 0)]);
    assert!(merge[1].args.iter().any(|a| a == "--prune"), "{merge:#?}");
    assert!(merge[1].args.iter().any(|a| a == "--wait"), "{merge:#?}");
    assert!(
        results[1].2.contains("converged: 7/7 Synced"),
        "{}",
        results[1].2
    );

    let results = run_all(checkout.path(), &pr);
    assert_eq!(subcommands(&results), [("validate", 0), ("diff", 0)]);
    let comment = std::fs::read_to_string(checkout.path().join("steward-diff.md")).unwrap();
    assert!(comment.contains("No changes."), "{comment}");
    stack.stop_operator();
}

#[test]
fn the_github_actions_workflow_previews_pushes_and_then_previews_nothing() {
    let doc = yaml("deploy/ci/github-actions.yml");
    pipeline(
        |job, given| github_job(&doc, job, given),
        "preview",
        "deploy",
    );
}

#[test]
fn the_gitlab_pipeline_previews_pushes_and_then_previews_nothing() {
    let doc = yaml("deploy/ci/gitlab-ci.yml");
    pipeline(
        |job, given| gitlab_job(&doc, job, given),
        "steward-preview",
        "steward-deploy",
    );
}

#[test]
fn shell_words_follow_quotes_variables_and_redirects() {
    let env: BTreeMap<String, String> = [("A".to_owned(), "x y".to_owned())].into();
    let (w, r) = shell_words(
        r#"steward diff "$A" '$A' ${A}z --o m > out.md || code=$?"#,
        &env,
    );
    assert_eq!(w, ["steward", "diff", "x y", "$A", "x yz", "--o", "m"]);
    assert_eq!(r.as_deref(), Some("out.md"));
}
