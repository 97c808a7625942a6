//! `steward push`: validated specs into Consul KV, only what changed, CAS-guarded,
//! with a source marker so `--prune` never touches another source's keys.

pub mod apply;
pub mod plan;
pub mod source;
pub mod wait;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use steward_hashi::{ConsulClient, QueryOptions};

use crate::args::PushArgs;
use crate::exit::{Exit, fail};
use crate::style;
use crate::table::table;
use crate::validate::{self, human_report};
use plan::{Action, LocalDoc, PlanItem};
use wait::{Progress, Target};

/// What to push (the flags of `steward push`, also used by `steward dev`).
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Directory of specs.
    pub dir: PathBuf,
    /// KV prefix.
    pub prefix: String,
    /// Source name; `None` = derived from git.
    pub source: Option<String>,
    /// Delete this source's removed keys.
    pub prune: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Wait for the operator afterwards.
    pub wait: bool,
    /// How long to wait.
    pub timeout: Duration,
    /// Guardrail policy file.
    pub policy: Option<PathBuf>,
}

impl From<&PushArgs> for PushOptions {
    fn from(a: &PushArgs) -> Self {
        Self {
            dir: a.dir.clone(),
            prefix: a.prefix.clone(),
            source: a.source.clone(),
            prune: a.prune,
            dry_run: a.dry_run,
            wait: a.wait,
            timeout: a.timeout,
            policy: a.policy.clone(),
        }
    }
}

/// `<prefix>/specs/<ns>/<name>`.
pub fn spec_kv_key(prefix: &str, spec_key: &str) -> String {
    format!("{}{spec_key}", plan::specs_prefix(prefix))
}

/// Validates every file under `dir`; prints the diagnostics and fails with exit 1 on
/// any error (nothing is written then) or a duplicate key.
///
/// # Errors
/// Usage/IO (exit 2) or invalid input (exit 1).
pub fn local_docs(
    dir: &Path,
    prefix: &str,
    policy: Option<&Path>,
) -> anyhow::Result<Vec<LocalDoc>> {
    let mut checked = validate::check_paths(&[dir.to_path_buf()], policy)?;
    let docs: Vec<LocalDoc> = checked
        .specs
        .drain(..)
        .map(|(file, spec)| LocalDoc {
            spec_key: spec.key(),
            kv_key: spec_kv_key(prefix, &spec.key()),
            file: file.label(),
            text: file.text,
        })
        .collect();
    checked
        .diagnostics
        .extend(plan::too_large_for_consul(&docs));
    if !checked.diagnostics.is_empty() {
        let report = human_report(checked.documents, &checked.diagnostics);
        eprint!(
            "{}",
            style::diagnostics(&report, console::colors_enabled_stderr())
        );
    }
    if checked.has_errors() {
        return Err(fail(
            Exit::Invalid,
            anyhow::anyhow!("invalid specs: nothing was pushed"),
        ));
    }
    let dups = plan::duplicates(&docs);
    if !dups.is_empty() {
        let lines: Vec<String> = dups
            .iter()
            .map(|(key, files)| format!("  {key}: {}", files.join(", ")))
            .collect();
        return Err(fail(
            Exit::Invalid,
            anyhow::anyhow!(
                "several files push the same key (metadata.namespace/metadata.name must be unique); nothing was pushed:\n{}",
                lines.join("\n")
            ),
        ));
    }
    Ok(docs)
}

/// The unified diff of an update (stored → local).
pub fn item_diff(item: &PlanItem) -> String {
    let old = item
        .old
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let new = item.new.as_deref().unwrap_or_default();
    similar::TextDiff::from_lines(old.as_ref(), new)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("consul:{}", item.kv_key),
            item.file.as_deref().unwrap_or("local"),
        )
        .to_string()
}

/// The dry-run report: one line per key, a diff under each update.
pub fn dry_run_report(plan: &[PlanItem], colours: bool) -> String {
    let mut out = String::new();
    for item in plan {
        let note = match (item.action, &item.file, item.other_source) {
            (_, _, Some(flags)) if item.action == Action::Update => {
                format!("  (last pushed by another source, flags {flags:#018x}: taking it over)")
            }
            (Action::Stale, _, _) => "  (its file is gone; kept: use --prune to delete)".into(),
            (_, Some(file), _) => format!("  ({file})"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<9}  {}{note}\n",
            style::word(item.action.as_str(), colours),
            item.spec_key,
        ));
        if item.action == Action::Update {
            out.push_str(&style::diff(&item_diff(item), colours));
        }
    }
    out
}

/// `2 create, 1 update, 4 unchanged`.
pub fn counts_line(plan: &[PlanItem]) -> String {
    let parts: Vec<String> = plan::counts(plan)
        .iter()
        .map(|(a, n)| format!("{n} {}", a.as_str()))
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// The summary table after a push: key, action, generation (`-` when none).
pub fn summary_table(plan: &[PlanItem], applied: &apply::Applied, colours: bool) -> String {
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|item| {
            let generation = match item.action {
                Action::Create | Action::Update => applied.generations.get(&item.kv_key).copied(),
                Action::Unchanged | Action::Stale => Some(item.index),
                Action::Prune => None,
            };
            let written = match item.action {
                Action::Create | Action::Update => applied.generations.contains_key(&item.kv_key),
                Action::Prune => applied.deleted.contains(&item.kv_key),
                _ => true,
            };
            let action = if written {
                item.action.as_str()
            } else {
                "failed"
            };
            vec![
                item.spec_key.clone(),
                style::word(action, colours),
                generation.map_or_else(|| "-".into(), |g| g.to_string()),
            ]
        })
        .collect();
    table(&["KEY", "ACTION", "GENERATION"], &rows)
}

/// The wait targets: every pushed spec with the generation it has now.
pub fn targets(plan: &[PlanItem], applied: &apply::Applied) -> Vec<Target> {
    plan.iter()
        .filter_map(|item| {
            let generation = match item.action {
                Action::Create | Action::Update => *applied.generations.get(&item.kv_key)?,
                Action::Unchanged => item.index,
                Action::Prune | Action::Stale => return None,
            };
            Some(Target {
                key: item.spec_key.clone(),
                generation,
            })
        })
        .collect()
}

/// The final wait table: key, phase, observed generation, message.
pub fn wait_table(progress: &[(String, Progress)], colours: bool) -> String {
    let rows: Vec<Vec<String>> = progress
        .iter()
        .map(|(key, p)| {
            let (phase, generation, message) = match p {
                Progress::Settled(v) => (v.phase.clone(), v.observed_generation, v.message.clone()),
                Progress::Waiting(Some(v)) => (
                    format!("{} (not settled)", v.phase),
                    v.observed_generation,
                    v.message.clone(),
                ),
                Progress::Waiting(None) => ("no status yet".into(), None, String::new()),
            };
            vec![
                key.clone(),
                style::word(&phase, colours),
                generation.map_or_else(|| "-".into(), |g| g.to_string()),
                message,
            ]
        })
        .collect();
    table(&["KEY", "PHASE", "OBSERVED", "MESSAGE"], &rows)
}

fn progress_bar(len: usize, message: &str) -> ProgressBar {
    if !console::Term::stderr().is_term() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// Runs a push against `consul`.
///
/// # Errors
/// See the exit codes: invalid input (1), usage/IO (2), write failure (3).
pub async fn push(consul: &ConsulClient, opts: &PushOptions) -> anyhow::Result<Exit> {
    let prepared = prepare(opts)?;
    execute(consul, opts, prepared).await
}

/// Validated documents and the source marker: everything decided before Consul is
/// contacted.
#[derive(Debug)]
pub struct Prepared {
    /// The documents.
    pub docs: Vec<LocalDoc>,
    /// Source name.
    pub source: String,
    /// Its KV flags marker.
    pub flags: u64,
}

/// Validates the directory and resolves the source.
///
/// # Errors
/// Invalid input (exit 1) or usage/IO (exit 2).
pub fn prepare(opts: &PushOptions) -> anyhow::Result<Prepared> {
    let docs = local_docs(&opts.dir, &opts.prefix, opts.policy.as_deref())?;
    let source = match &opts.source {
        Some(s) => s.clone(),
        None => source::default_source(&opts.dir)?,
    };
    let flags = source::source_flags(&source);
    Ok(Prepared {
        docs,
        source,
        flags,
    })
}

/// Plans and writes (and waits) for prepared documents.
///
/// # Errors
/// Usage/IO (exit 2) or write failure (exit 3).
pub async fn execute(
    consul: &ConsulClient,
    opts: &PushOptions,
    prepared: Prepared,
) -> anyhow::Result<Exit> {
    let Prepared {
        docs,
        source,
        flags,
    } = prepared;
    let colours = style::stdout_colours();
    println!("source: {source} (KV flags {flags:#018x})");

    let specs_prefix = plan::specs_prefix(&opts.prefix);
    let existing = consul
        .kv_list(&specs_prefix, &QueryOptions::new())
        .await
        .with_context(|| format!("cannot read {specs_prefix} from Consul"))?
        .value;
    let plan = plan::plan(&docs, &existing, &specs_prefix, flags, opts.prune);
    for item in &plan {
        if let (Some(other), Action::Update) = (item.other_source, item.action)
            && !opts.dry_run
        {
            eprintln!(
                "warning: {} was last pushed by another source (KV flags {other:#018x}); this source takes it over",
                item.spec_key
            );
        }
    }

    if opts.dry_run {
        print!("{}", dry_run_report(&plan, colours));
        println!("dry run: nothing written ({})", counts_line(&plan));
        return Ok(Exit::Ok);
    }

    let ops: Vec<_> = plan::ops(&plan, flags)
        .into_iter()
        .map(|(_, op)| op)
        .collect();
    let bar = progress_bar(ops.len(), "writing");
    let applied = apply::apply(consul, &ops, |done| bar.set_position(done as u64)).await;
    bar.finish_and_clear();
    print!("{}", summary_table(&plan, &applied, colours));
    let stale: Vec<&str> = plan
        .iter()
        .filter(|i| i.action == Action::Stale)
        .map(|i| i.spec_key.as_str())
        .collect();
    if !stale.is_empty() {
        println!(
            "note: {} pushed earlier by this source no longer in {} (kept; --prune deletes): {}",
            stale.len(),
            opts.dir.display(),
            stale.join(", ")
        );
    }
    match applied.error {
        Some(apply::ApplyError::Conflict { keys }) => {
            let list: Vec<String> = keys
                .iter()
                .map(|(k, what)| format!("  {k}: {what}"))
                .collect();
            return Err(fail(
                Exit::WriteFailed,
                anyhow::anyhow!(
                    "check-and-set failed: someone else wrote these keys since this push read them (later batches were not sent; run the push again):\n{}",
                    list.join("\n")
                ),
            ));
        }
        Some(apply::ApplyError::Request(e)) => {
            return Err(fail(
                Exit::WriteFailed,
                anyhow::Error::new(e)
                    .context("writing to Consul failed (later batches were not sent)"),
            ));
        }
        None => {}
    }
    if applied.txns == 0 {
        println!("up to date: {} (nothing written)", counts_line(&plan));
    } else {
        println!(
            "pushed {} in {} transaction{}",
            counts_line(&plan),
            applied.txns,
            if applied.txns == 1 { "" } else { "s" }
        );
    }
    if !opts.wait {
        return Ok(Exit::Ok);
    }

    let targets = targets(&plan, &applied);
    let status_prefix = plan::status_prefix(&opts.prefix);
    println!(
        "waiting up to {} for the operator to report {} spec{}...",
        humantime::format_duration(opts.timeout),
        targets.len(),
        if targets.len() == 1 { "" } else { "s" }
    );
    let bar = progress_bar(targets.len(), "settled");
    let outcome = wait::wait(consul, &status_prefix, &targets, opts.timeout, |p| {
        let settled = p
            .iter()
            .filter(|(_, x)| matches!(x, Progress::Settled(_)))
            .count();
        bar.set_position(settled as u64);
    })
    .await?;
    bar.finish_and_clear();
    print!("{}", wait_table(&outcome.progress, colours));
    let synced = outcome
        .progress
        .iter()
        .filter(|(_, p)| p.is_synced())
        .count();
    if outcome.timed_out {
        println!(
            "not converged: timed out after {} ({synced}/{} Synced)",
            humantime::format_duration(opts.timeout),
            targets.len()
        );
        return Ok(Exit::NotConverged);
    }
    if synced < targets.len() {
        println!("not converged: {synced}/{} Synced", targets.len());
        return Ok(Exit::NotConverged);
    }
    println!("converged: {synced}/{} Synced", targets.len());
    Ok(Exit::Ok)
}

/// Runs `steward push`.
///
/// # Errors
/// See [`push`].
pub async fn run(args: &PushArgs) -> anyhow::Result<Exit> {
    // Validate before even looking at the Consul configuration: invalid input is exit 1
    // whatever the environment.
    let opts = PushOptions::from(args);
    let prepared = prepare(&opts)?;
    let consul = ConsulClient::from_env().context("Consul client configuration (CONSUL_* env)")?;
    execute(&consul, &opts, prepared).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(action: Action, old: Option<&str>, new: Option<&str>) -> PlanItem {
        PlanItem {
            kv_key: "steward/specs/a/b".into(),
            spec_key: "a/b".into(),
            action,
            file: new.map(|_| "b.yaml".to_owned()),
            old: old.map(|o| o.as_bytes().to_vec()),
            new: new.map(str::to_owned),
            index: 7,
            other_source: None,
        }
    }

    #[test]
    fn updates_show_a_unified_diff() {
        let report = dry_run_report(
            &[item(
                Action::Update,
                Some("a: 1\nb: 2\n"),
                Some("a: 1\nb: 3\n"),
            )],
            false,
        );
        assert_eq!(
            report,
            "update     a/b  (b.yaml)\n\
             --- consul:steward/specs/a/b\n\
             +++ b.yaml\n\
             @@ -1,2 +1,2 @@\n \
             a: 1\n\
             -b: 2\n\
             +b: 3\n"
        );
    }

    #[test]
    fn the_summary_shows_new_generations_and_failures() {
        let plan = [
            item(Action::Create, None, Some("x")),
            item(Action::Unchanged, Some("y"), Some("y")),
        ];
        let mut plan = plan.to_vec();
        plan[1].kv_key = "steward/specs/a/c".into();
        plan[1].spec_key = "a/c".into();
        let mut applied = apply::Applied::default();
        let t = summary_table(&plan, &applied, false);
        assert!(t.contains("a/b  failed     -"), "{t}");
        applied.generations.insert("steward/specs/a/b".into(), 42);
        let t = summary_table(&plan, &applied, false);
        assert_eq!(
            t,
            "KEY  ACTION     GENERATION\na/b  create     42\na/c  unchanged  7\n"
        );
        assert_eq!(
            targets(&plan, &applied),
            [
                Target {
                    key: "a/b".into(),
                    generation: 42
                },
                Target {
                    key: "a/c".into(),
                    generation: 7
                }
            ]
        );
        assert_eq!(counts_line(&plan), "1 create, 1 unchanged");
    }
}
