//! Command-line arguments (clap derive). No logic here beyond parsing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES_HELP;

/// Default operator HTTP API address (`steward run`/`steward dev` listen there).
pub const DEFAULT_OPERATOR_URL: &str = "http://127.0.0.1:7070";

/// Steward: one ServiceSpec per service, converged into Nomad, Consul and Vault.
#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version = crate::version::VERSION.as_str(),
    about = "Steward: a reconciling operator for Nomad, Consul and Vault",
    long_about = "Steward: a reconciling operator for Nomad, Consul and Vault.\n\n\
        Teams commit one ServiceSpec per service; CI runs `steward validate` and `steward push`; \
        `steward run` (or `steward dev` on the embedded simulator) converges Nomad jobs, Consul \
        config entries and Vault policies/roles.\n\nNew here? Run `steward dev` from the repository root.",
    after_help = EXIT_CODES_HELP,
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files (and guardrails with --policy); reports every problem at once.
    #[command(after_help = EXIT_CODES_HELP)]
    Validate(ValidateArgs),
    /// Print the objects a spec renders to (Nomad job, Consul config entries, Vault policy/role).
    #[command(after_help = EXIT_CODES_HELP)]
    Render(RenderArgs),
    /// Print the JSON Schema of ServiceSpec or GuardrailPolicy documents.
    Schema(SchemaArgs),
    /// Run the Consul/Nomad/Vault API simulator until Ctrl-C.
    Sim(SimArgs),
    /// Push a directory of specs into Consul KV (only what changed, CAS-guarded).
    #[command(after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Preview, read-only, what pushing a directory would do to the cluster (for pull requests).
    #[command(after_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Show spec statuses from Consul KV (no operator needed).
    Status(StatusArgs),
    /// Show operator events (from the operator's HTTP API).
    Events(EventsArgs),
    /// Garbage-collection controls.
    #[command(subcommand)]
    Gc(GcCommand),
    /// Run the operator against the servers named by the standard env vars.
    Run(RunArgs),
    /// Start simulator + operator in one process, push the examples: the place to start.
    Dev(DevArgs),
    /// Check, read-only, that the servers are ready for `steward run` (for CI too).
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Create what a fresh cluster lacks for `steward run` (idempotent).
    Bootstrap(BootstrapArgs),
    /// Measure convergence, requests and memory of the operator against the simulator.
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// The edge control plane: helpers for the Envoys Steward programs over xDS.
    #[command(subcommand)]
    Edge(EdgeCommand),
}

/// `--edge-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EdgeModeArg {
    /// Steward's xDS server programs the edge Envoys; no `http-route` entries.
    Xds,
    /// `http-route` entries on Consul's API gateway.
    ConsulApiGateway,
    /// Both.
    Both,
}

impl From<EdgeModeArg> for steward_operator::EdgeMode {
    fn from(value: EdgeModeArg) -> Self {
        match value {
            EdgeModeArg::Xds => Self::Xds,
            EdgeModeArg::ConsulApiGateway => Self::ConsulApiGateway,
            EdgeModeArg::Both => Self::Both,
        }
    }
}

/// `steward edge ...`.
#[derive(Debug, Subcommand)]
pub enum EdgeCommand {
    /// Print an Envoy bootstrap (YAML) for ADS over gRPC to Steward's xDS server; a stock
    /// Envoy starts with it unchanged: `envoy -c FILE --disable-hot-restart`.
    EnvoyBootstrap(EnvoyBootstrapArgs),
}

/// `steward edge envoy-bootstrap`.
#[derive(Debug, Args)]
pub struct EnvoyBootstrapArgs {
    /// Steward's xDS address (`--xds-listen` of `steward run` or `steward dev`).
    #[arg(long, value_name = "ADDR")]
    pub xds: std::net::SocketAddr,
    /// Address this Envoy's edge HTTP listener binds (sent to it over LDS).
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Envoy's admin address (`/config_dump`, `/clusters`, `/ready`).
    #[arg(long, value_name = "ADDR")]
    pub admin: std::net::SocketAddr,
    /// Node id, shown by `/api/v1/edge`; give each Envoy its own.
    #[arg(long, value_name = "ID", default_value = steward_edge::bootstrap::DEFAULT_NODE_ID)]
    pub node_id: String,
}

/// Output of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateOutput {
    /// Caret excerpts and a summary line.
    Human,
    /// A JSON array of diagnostics.
    Json,
}

/// `steward validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Spec files or directories (searched recursively for .yaml, .yml, .json).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Guardrail policy to check the specs against (the policy itself is validated too).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateOutput::Human)]
    pub output: ValidateOutput,
}

/// Output format of `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    /// One JSON document.
    Json,
    /// Nomad jobspec and Vault policy as HCL; config entries and the role stay JSON.
    Hcl,
    /// One YAML document.
    Yaml,
}

/// Which product's objects `render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// The Nomad job.
    Nomad,
    /// Consul config entries.
    Consul,
    /// Vault policy and role.
    Vault,
    /// Everything.
    All,
}

/// `steward render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The spec file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RenderFormat::Json)]
    pub format: RenderFormat,
    /// Which objects to print.
    #[arg(long, value_enum, default_value_t = Only::All)]
    pub only: Only,
    /// Generation written to `steward.generation` (the spec key's ModifyIndex in Consul).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub generation: u64,
    /// Guardrail policy to check the spec against before rendering.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Which schema `schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// ServiceSpec v1 (schemas/servicespec.v1.json).
    Servicespec,
    /// GuardrailPolicy v1 (schemas/guardrails.v1.json).
    Guardrails,
}

/// `steward schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema.
    #[arg(long, value_enum, default_value_t = SchemaKind::Servicespec)]
    pub kind: SchemaKind,
}

/// `steward sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Consul HTTP API address (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:8500", value_name = "ADDR")]
    pub consul: SocketAddr,
    /// Nomad HTTP API address (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:4646", value_name = "ADDR")]
    pub nomad: SocketAddr,
    /// Vault HTTP API address (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:8200", value_name = "ADDR")]
    pub vault: SocketAddr,
    /// Keep state here across restarts (default: in memory only).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// An ACL token: `PRODUCT:SECRET` (management) or `PRODUCT:SECRET:RULES_FILE` (the
    /// product's policy language; for Vault, policy names or HCL). Repeatable. A product
    /// enforces ACLs once it has a token.
    #[arg(long = "token", value_name = "PRODUCT:SECRET[:RULES_FILE]")]
    pub tokens: Vec<String>,
    /// Vault's root token.
    #[arg(long, default_value = "root", value_name = "TOKEN")]
    pub vault_root_token: String,
    /// Make Consul answer this config-entry kind as an older Consul answers a kind it
    /// does not have, e.g. `http-route` and `api-gateway` (absent before Consul 1.15):
    /// reads 500 `invalid config entry kind: KIND`, writes and deletes 400. Repeatable.
    #[arg(
        long = "consul-unsupported-kind",
        value_name = "KIND",
        value_parser = clap::builder::PossibleValuesParser::new(steward_sim::consul::CONFIG_ENTRY_KINDS),
        hide_possible_values = true
    )]
    pub consul_unsupported_kinds: Vec<String>,
    /// How long a Nomad allocation stays pending before it runs (`steward bench` uses
    /// 20ms, so deployments do not hide the operator's own latency).
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub alloc_start_delay: Duration,
    /// Factor applied to a group's `update.min_healthy_time` before an allocation is
    /// healthy (`steward bench` uses 0.01: 100ms for 10s).
    #[arg(long, default_value_t = 0.1, value_name = "FACTOR")]
    pub min_healthy_time_factor: f64,
    /// Stop when stdin reaches end of file: a parent that spawned the simulator (`steward
    /// bench`) holds the pipe, so the simulator cannot outlive it even when it is killed.
    #[arg(long, hide = true)]
    pub stop_on_stdin_eof: bool,
}

/// `steward push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Directory of spec files (searched recursively for .yaml, .yml, .json).
    pub dir: PathBuf,
    /// KV prefix.
    #[arg(long, env = "STEWARD_PREFIX", default_value = "steward")]
    pub prefix: String,
    /// Name of this push source. Default: `<git remote.origin.url>#<DIR relative to the
    /// repository root>` (the repository path stands in for a missing origin), or the
    /// canonical DIR outside git. Only keys last pushed by the same source are pruned.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Delete keys this source pushed earlier whose files are gone.
    #[arg(long)]
    pub prune: bool,
    /// Print the plan (with diffs) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After writing, wait until the operator reports every pushed spec.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Guardrail policy every spec must pass before anything is written.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Output of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffOutput {
    /// For a terminal.
    Text,
    /// One collapsible section per spec, for a pull request comment.
    Markdown,
    /// One JSON document (shape documented in docs/operations.md).
    Json,
}

/// `steward diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Directory of spec files (searched recursively for .yaml, .yml, .json).
    pub dir: PathBuf,
    /// Settings shared with `steward run` (prefix, edge gateway, JWT mount).
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Name of the push source, as for `steward push` (default derived from git).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Also preview deleting the keys this source pushed whose files are gone.
    #[arg(long)]
    pub prune: bool,
    /// Guardrail policy (the operator's); violations are shown per spec.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = DiffOutput::Text)]
    pub output: DiffOutput,
}

const DIFF_HELP: &str = "\
Read-only: reads Consul KV and config entries, Vault policies and roles, Nomad jobs, and
asks Nomad for a job plan (a dry run). For each spec `steward push` would create, update
or (with --prune) delete: the Nomad plan (changed fields, placements, placement failures
with the scheduler's reason), intention changes in words, Vault capabilities added or
removed per path, edge routes added, changed or removed, objects that would be deleted,
and guardrail violations.

Exit codes:
  0  no change
  1  invalid input (diagnostics), or the preview failed or is incomplete (a server could
     not be read); never 0 or 2 on a failure
  2  the push would change something";

/// Output of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusOutput {
    /// A table (one key: its details).
    Table,
    /// The status documents as JSON.
    Json,
}

/// `steward status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One spec key `namespace/name` (default: all).
    pub key: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = StatusOutput::Table)]
    pub output: StatusOutput,
    /// KV prefix.
    #[arg(long, env = "STEWARD_PREFIX", default_value = "steward")]
    pub prefix: String,
}

/// `steward events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep streaming new events (server-sent events).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only events of this spec key `namespace/name`.
    #[arg(long)]
    pub key: Option<String>,
    /// Operator HTTP API.
    #[arg(long, env = "STEWARD_OPERATOR_ADDR", default_value = DEFAULT_OPERATOR_URL)]
    pub operator: String,
}

/// `steward gc ...`.
#[derive(Debug, Subcommand)]
pub enum GcCommand {
    /// Approve a garbage-collection pass the mass-deletion guard blocked.
    Approve(GcApproveArgs),
}

/// `steward gc approve`.
#[derive(Debug, Args)]
pub struct GcApproveArgs {
    /// Digest of the blocked deletion set; without it the blocked pass is shown (from
    /// `GET /api/v1/gc`) and nothing is approved.
    #[arg(long)]
    pub digest: Option<String>,
    /// Operator HTTP API.
    #[arg(long, env = "STEWARD_OPERATOR_ADDR", default_value = DEFAULT_OPERATOR_URL)]
    pub operator: String,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `steward run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Operator settings file (JSON or YAML with the `OperatorConfig` fields); flags win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// KV prefix.
    #[arg(long, env = "STEWARD_PREFIX")]
    pub prefix: Option<String>,
    /// Edge gateway http-routes attach to: `NAME`, `KIND/NAME` or `KIND/NAME/LISTENER`
    /// (default api-gateway/edge/http).
    #[arg(long, value_name = "GATEWAY")]
    pub edge_gateway: Option<String>,
    /// Mount of Vault's JWT auth method for Nomad workload identities (default
    /// jwt-nomad).
    #[arg(long, value_name = "MOUNT")]
    pub jwt_auth_mount: Option<String>,
    /// Guardrail policy specs are checked against (default: the built-in safe policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Keys reconciled at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Largest share of the specs owning objects whose objects one GC pass may delete
    /// without approval (at least one spec always may).
    #[arg(long, value_name = "F")]
    pub gc_max_share: Option<f64>,
    /// Operator HTTP API address: health, metrics, status, events (default
    /// 127.0.0.1:7070, or the config file's `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (RUST_LOG syntax); RUST_LOG wins when set.
    #[arg(long, default_value = "info", value_name = "FILTER")]
    pub log_level: String,
    /// Start even when a server is older than Steward's minimum or lacks a feature
    /// Steward relies on; what cannot work is stated in the log, `/readyz` and the
    /// metrics.
    #[arg(long)]
    pub allow_unsupported: bool,
    /// How edge routes reach the edge: `xds` (Steward's xDS server), `consul-api-gateway`
    /// (`http-route` entries) or `both`. Default: `consul-api-gateway`, or `both` when
    /// `--xds-listen` is given.
    #[arg(long, value_enum, value_name = "MODE")]
    pub edge_mode: Option<EdgeModeArg>,
    /// Serve xDS (ADS over gRPC) to edge Envoys on this address.
    #[arg(long, value_name = "ADDR")]
    pub xds_listen: Option<SocketAddr>,
}

/// The settings `steward doctor` and `steward bootstrap` share with `steward run`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Operator settings file (as for `steward run`); flags win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// KV prefix.
    #[arg(long, env = "STEWARD_PREFIX")]
    pub prefix: Option<String>,
    /// Edge gateway: `NAME`, `KIND/NAME` or `KIND/NAME/LISTENER` (default
    /// api-gateway/edge/http).
    #[arg(long, value_name = "GATEWAY")]
    pub edge_gateway: Option<String>,
    /// Mount of Vault's JWT auth method for Nomad workload identities (default
    /// jwt-nomad).
    #[arg(long, value_name = "MOUNT")]
    pub jwt_auth_mount: Option<String>,
}

/// Output of `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorOutput {
    /// A table with the fix of each failed check.
    Table,
    /// The checks as a JSON array.
    Json,
}

/// `steward doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Settings shared with `steward run`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = DoctorOutput::Table)]
    pub output: DoctorOutput,
    /// The tokens are the read-only ones of `steward diff` (deploy/acl/*-readonly.hcl):
    /// check that Vault's lets it read Steward's policies, not the operator's writes.
    #[arg(long)]
    pub read_only: bool,
}

/// `steward bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Settings shared with `steward run`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print what would be created and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Spec files or a directory of them whose Nomad namespaces to create (the specs
    /// already in Consul KV count too).
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
}

const DOCTOR_HELP: &str = "\
Makes no write. Checks each server's reachability (TLS included) and version against
Steward's minimums, Consul's config-entry kinds, the tokens (Consul and Nomad
acl/token/self, Vault sys/capabilities-self on the paths Steward writes), and the
prerequisites: the Nomad namespaces of the specs in KV, the edge gateway entry, Vault's
JWT auth mount and its config, the KV prefix. Each failed check names its fix.

Exit codes:
  0  every check passed
  1  a check failed
  2  usage error (bad flags, unreadable config file)";

/// `steward dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Keep simulator state here across restarts (default: in memory only).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Operator HTTP API address.
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Specs pushed at start.
    #[arg(long, default_value = "deploy/examples", value_name = "DIR")]
    pub examples: PathBuf,
    /// Guardrail policy of the operator (and of the initial push); the built-in safe
    /// default (which allows no registry) when the file does not exist.
    #[arg(long, default_value = "deploy/guardrails.yaml", value_name = "FILE")]
    pub policy: PathBuf,
    /// Where the xDS server listens for edge Envoys (see `steward edge envoy-bootstrap`).
    #[arg(long, default_value = "127.0.0.1:18000", value_name = "ADDR")]
    pub xds_listen: SocketAddr,
    /// How edge routes reach the edge (dev default: `xds`).
    #[arg(long, value_enum, default_value_t = EdgeModeArg::Xds, value_name = "MODE")]
    pub edge_mode: EdgeModeArg,
    /// Log filter (RUST_LOG syntax); RUST_LOG wins when set.
    #[arg(long, default_value = "warn", value_name = "FILTER")]
    pub log_level: String,
}

/// A `steward bench` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchScenario {
    /// N specs pushed at once: time until all are Synced, requests, writes per spec.
    Cold,
    /// N loaded, M single-spec edits one after another: change-to-converged latency.
    Change,
    /// Hand edits of owned Nomad jobs: time to repair.
    Drift,
    /// N converged, idle: requests per minute by endpoint, writes.
    Steady,
    /// Two operators, the leader killed: time until the other's first reconcile.
    Failover,
    /// Every scenario in turn on one loaded simulator.
    All,
    /// The edge control plane: translation time and memory at 10k routes (`--specs`),
    /// and spec edit / endpoint change to a real Envoy's ACK with 1k routes.
    Edge,
}

/// Output of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchOutput {
    /// A summary table and each scenario's details.
    Table,
    /// One JSON document.
    Json,
}

/// Where `steward bench` runs the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchSim {
    /// `steward sim` as a child process: the operator's peak RSS and CPU are its own.
    Child,
    /// The simulator inside the bench process: one RSS for both sides.
    InProcess,
    /// An already running `steward sim` at --consul, --nomad and --vault.
    External,
}

/// `steward bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: BenchScenario,
    /// Where the simulator runs.
    #[arg(long, value_enum, default_value_t = BenchSim::Child)]
    pub sim: BenchSim,
    /// Consul API of the simulator, with `--sim external`.
    #[arg(long, env = "CONSUL_HTTP_ADDR", value_name = "ADDR")]
    pub consul: Option<String>,
    /// Nomad API of the simulator, with `--sim external`.
    #[arg(long, env = "NOMAD_ADDR", value_name = "ADDR")]
    pub nomad: Option<String>,
    /// Vault API of the simulator (root token `root`), with `--sim external`.
    #[arg(long, env = "VAULT_ADDR", value_name = "ADDR")]
    pub vault: Option<String>,
    /// Specs loaded (each owns a Nomad job, intentions, a Vault policy and role, a route).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub specs: usize,
    /// Latency added to every simulated Consul, Nomad and Vault request, in ms.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub rtt: u64,
    /// Single-spec edits of `change`.
    #[arg(long, default_value_t = 200, value_name = "M")]
    pub changes: usize,
    /// Hand edits of owned jobs in `drift`.
    #[arg(long, default_value_t = 50, value_name = "D")]
    pub drifts: usize,
    /// Idle period of `steady`, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub idle: u64,
    /// The operator's concurrency (reconciles at once; default: the operator's default).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Leader session TTL (default: the operator's default, 30s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub leader_ttl: Option<Duration>,
    /// Leader lock delay (default: the operator's default, 15s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub lock_delay: Option<Duration>,
    /// Bound of every wait of the harness.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = BenchOutput::Table)]
    pub output: BenchOutput,
}

const BENCH_HELP: &str = "\
By default the simulator runs as a child process (`steward sim`, loopback ports, stopped
with the bench), so the operator's peak RSS and CPU are its own and the simulator's are
reported apart. `--sim in-process` runs it on 2 threads of the bench process (one RSS for
both); `--sim external` uses a running, fresh simulator, started for comparable timings as
  steward sim --consul 127.0.0.1:0 --nomad 127.0.0.1:0 --vault 127.0.0.1:0 \\
    --alloc-start-delay 20ms --min-healthy-time-factor 0.01
Each operator runs on 2 threads of the bench process. Build with --release:
  cargo run --release -p steward-cli -- bench all --specs 10000 --rtt 5
Every scenario but `cold` starts with a cold load (reported too). The operator's peak RSS
includes the harness (its clients and request log). See BENCHMARKS.md.";

const PUSH_HELP: &str = "\
Keys: <prefix>/specs/<namespace>/<name>, from each file's metadata. Every file is
validated first; nothing is written when any is invalid. Only changed documents are
written, in /v1/txn batches with check-and-set on the ModifyIndex read at the start.

Source marker: each key's KV Flags hold a stable 64-bit hash of the source name (the
first 8 bytes of SHA-256(\"steward-push-source/v1:\" + NAME), big-endian; never 0).
--prune deletes only keys whose Flags equal this source's hash.

Exit codes:
  0  success (with --wait: every spec Synced)
  1  invalid input (spec or policy diagnostics, duplicate keys)
  2  usage or I/O error (bad flags, unreadable file, no files found, Consul unreachable)
  3  write failure (CAS conflict: someone else wrote concurrently; failed transaction)
  4  not converged (--wait timed out, or a spec ended in a phase other than Synced)";

/// Parses `90s`, `5m`, `1h30m` (humantime syntax).
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); try 90s or 5m"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn push_timeout_takes_human_durations() {
        let cli = Cli::try_parse_from(["steward", "push", "dir", "--timeout", "90s"]).unwrap();
        let Command::Push(args) = cli.command else {
            panic!("not push")
        };
        assert_eq!(args.timeout, Duration::from_secs(90));
        assert!(Cli::try_parse_from(["steward", "push", "dir", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn sim_takes_repeated_unsupported_consul_kinds_and_refuses_unknown_ones() {
        let cli = Cli::try_parse_from([
            "steward",
            "sim",
            "--consul-unsupported-kind",
            "http-route",
            "--consul-unsupported-kind",
            "api-gateway",
        ])
        .unwrap();
        let Command::Sim(args) = cli.command else {
            panic!("not sim")
        };
        assert_eq!(args.consul_unsupported_kinds, ["http-route", "api-gateway"]);
        // A misspelt kind would otherwise change nothing, silently.
        assert!(
            Cli::try_parse_from(["steward", "sim", "--consul-unsupported-kind", "http-routes"])
                .is_err()
        );
    }
}
