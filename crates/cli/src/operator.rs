//! `steward run` and `steward dev`: the operator (crate steward-operator), against real
//! servers or against the embedded simulator.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use steward_hashi::{
    ConsulClient, ConsulConfig, NomadClient, NomadConfig, VaultClient, VaultConfig,
};
use steward_operator::{Clients, Operator, OperatorConfig};
use steward_render::GatewayRef;
use steward_sim::{Product, Sim, SimConfig, SimHandle};
use tokio_util::sync::CancellationToken;

use crate::args::{DevArgs, LogFormat, RunArgs};
use crate::exit::{Exit, fail};
use crate::push::{self, PushOptions};
use crate::signal::shutdown_signal;
use crate::sim::{print_banner, start_error};
use crate::{logging, style, validate};

/// Default operator HTTP API address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    7070,
));

/// Parses `--edge-gateway`: `NAME`, `KIND/NAME`, `KIND/NAME/LISTENER`, or
/// `KIND/NAME/*` (attach to every listener). Kind defaults to `api-gateway`, the
/// listener to `http`.
///
/// # Errors
/// Empty parts or too many of them.
pub fn parse_gateway(text: &str) -> anyhow::Result<GatewayRef> {
    let parts: Vec<&str> = text.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
        anyhow::bail!("--edge-gateway {text:?}: use NAME, KIND/NAME or KIND/NAME/LISTENER");
    }
    let default = GatewayRef::default();
    let (kind, name, section) = match parts.as_slice() {
        [name] => (default.kind, *name, default.section_name),
        [kind, name] => ((*kind).to_owned(), *name, default.section_name),
        [kind, name, "*"] => ((*kind).to_owned(), *name, None),
        [kind, name, listener] => ((*kind).to_owned(), *name, Some((*listener).to_owned())),
        _ => anyhow::bail!("--edge-gateway {text:?}: use NAME, KIND/NAME or KIND/NAME/LISTENER"),
    };
    Ok(GatewayRef {
        kind,
        name: name.to_owned(),
        section_name: section,
    })
}

/// Reads an operator config file (JSON, or YAML for `.yaml`/`.yml`).
///
/// # Errors
/// Unreadable file or unknown/invalid fields.
pub fn load_config(path: &Path) -> anyhow::Result<OperatorConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let config = if yaml {
        serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        serde_json::from_str(&text).map_err(anyhow::Error::new)
    };
    config.with_context(|| format!("invalid config {}", path.display()))
}

/// The effective config of `steward run`: the file (or defaults), then the flags.
pub fn run_config(
    base: OperatorConfig,
    args: &RunArgs,
    policy: Option<steward_spec::GuardrailPolicy>,
    gateway: Option<GatewayRef>,
) -> OperatorConfig {
    let mut config = base;
    if let Some(prefix) = &args.prefix {
        config.prefix = prefix.trim_end_matches('/').to_owned();
    }
    if let Some(g) = gateway {
        config.edge_gateway = g;
    }
    if let Some(mount) = &args.jwt_auth_mount {
        config.jwt_auth_mount = mount.trim_matches('/').to_owned();
    }
    if let Some(p) = policy {
        config.policy = p;
    }
    if let Some(c) = args.concurrency {
        config.concurrency = c;
    }
    if let Some(share) = args.gc_max_share {
        config.gc_max_share = share;
    }
    if let Some(addr) = args.xds_listen {
        config.edge.xds_listen = Some(addr);
    }
    match args.edge_mode {
        Some(mode) => config.edge.mode = mode.into(),
        // Serving xDS was asked for: keep the gateway routes and add the xDS ones.
        None if args.xds_listen.is_some()
            && config.edge.mode == steward_operator::EdgeMode::ConsulApiGateway =>
        {
            config.edge.mode = steward_operator::EdgeMode::Both;
        }
        None => {}
    }
    config.listen = match (args.listen, args.config.is_some()) {
        (Some(addr), _) => Some(addr),
        (None, true) => config.listen,
        (None, false) => Some(DEFAULT_LISTEN),
    };
    config
}

/// The config of `steward dev`: create missing Nomad namespaces, poll Vault fast, take
/// the leader lock at once after a restart, and leave the HTTP API to the caller.
pub fn dev_config() -> OperatorConfig {
    let mut config = OperatorConfig {
        create_nomad_namespaces: true,
        vault_poll_interval: Duration::from_secs(1),
        orphan_sweep_interval: Duration::from_secs(10),
        listen: None,
        instance_name: "steward-dev".to_owned(),
        ..OperatorConfig::default()
    };
    config.leader.ttl = Duration::from_secs(10);
    config.leader.lock_delay = Duration::ZERO;
    config.leader.retry_pause = Duration::from_secs(1);
    config
}

fn policy_from(path: Option<&Path>) -> anyhow::Result<Option<steward_spec::GuardrailPolicy>> {
    let Some(path) = path else { return Ok(None) };
    let (policy, diagnostics) = validate::load_policy(path)?;
    if !diagnostics.is_empty() {
        eprint!(
            "{}",
            style::diagnostics(
                &steward_spec::render_all(&diagnostics),
                console::colors_enabled_stderr()
            )
        );
    }
    policy.map(Some).ok_or_else(|| {
        fail(
            Exit::Invalid,
            anyhow::anyhow!("invalid guardrail policy {}", path.display()),
        )
    })
}

/// Runs `steward run`.
///
/// # Errors
/// Bad configuration (exit 1/2), or the operator failed.
pub async fn run(args: &RunArgs) -> anyhow::Result<Exit> {
    logging::init(&args.log_level, args.log_format)?;
    // Handlers first: a SIGTERM during start-up is a clean shutdown, not a kill.
    let signal = shutdown_signal();
    let base = match &args.config {
        Some(path) => load_config(path)?,
        None => OperatorConfig::default(),
    };
    let gateway = args
        .edge_gateway
        .as_deref()
        .map(parse_gateway)
        .transpose()?;
    let policy = policy_from(args.policy.as_deref())?;
    let mut config = run_config(base, args, policy, gateway);
    config.api_token = crate::api_token::operator_token_from_env()?;
    config.validate()?;
    let clients = Clients {
        consul: ConsulClient::from_env().context("Consul client configuration (CONSUL_* env)")?,
        nomad: NomadClient::from_env().context("Nomad client configuration (NOMAD_* env)")?,
        vault: VaultClient::from_env().context("Vault client configuration (VAULT_* env)")?,
    };
    // Start-up detection: refuse servers known to be too old or to lack what Steward
    // relies on, unless told to run anyway; say what cannot work either way.
    let answers = steward_operator::detect::probe(
        &clients.consul,
        &clients.nomad,
        &clients.vault,
        &config.jwt_auth_mount,
    )
    .await;
    let detected = steward_operator::detect::assess(&answers, &config.jwt_auth_mount);
    let unsupported = detected.unsupported();
    if unsupported.is_empty() {
        tracing::info!("servers and features:\n{}", detected.table());
    } else if args.allow_unsupported {
        tracing::warn!(
            "running with --allow-unsupported on servers Steward does not support:\n{}",
            detected.table()
        );
        for degradation in detected.degradations() {
            tracing::warn!("{degradation}");
        }
    } else {
        return Err(fail(
            Exit::Invalid,
            anyhow::anyhow!(
                "these servers are not supported (minimums: Consul {}, Nomad {}, Vault {}):\n{}\n                 upgrade them, or start with --allow-unsupported to run anyway with what \
                 cannot work turned off (listed above under `without it`)",
                steward_hashi::versions::CONSUL_MIN,
                steward_hashi::versions::NOMAD_MIN,
                steward_hashi::versions::VAULT_MIN,
                detected.table()
            ),
        ));
    }
    config.server_features = detected.server_features();
    if config.edge.degrade_for(&config.server_features) {
        tracing::warn!(
            "{}",
            config
                .edge
                .degraded
                .as_deref()
                .unwrap_or("edge mode degraded")
        );
    }
    config.cluster = Some(detected);
    let listen = config.listen;
    let operator = Operator::new(config, clients)?;
    operator.add_routes(steward_dashboard::router(operator.handle()));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    if let Some(addr) = listen {
        tracing::info!(%addr, "operator HTTP API and dashboard (http://{addr}/)");
    }
    operator.run(cancel).await?;
    Ok(Exit::Ok)
}

/// The xDS address of `steward dev`: the one asked for, or a free loopback port when
/// the default one is taken (said so), as for the other ports of `dev`.
async fn dev_xds_address(wanted: SocketAddr) -> anyhow::Result<SocketAddr> {
    match tokio::net::TcpListener::bind(wanted).await {
        Ok(l) => Ok(l.local_addr()?),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && wanted == DEFAULT_XDS_LISTEN => {
            let l = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let addr = l.local_addr()?;
            println!("note: {wanted} is taken, so the xDS server listens on {addr} instead");
            Ok(addr)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot listen for xDS on {wanted} (pick another with --xds-listen)"
        ))),
    }
}

/// `steward dev`'s default xDS address.
const DEFAULT_XDS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 18000);

/// Starts the simulator on the products' usual ports where they are free, on free
/// ports otherwise; returns the notes about the ports that were taken.
async fn start_dev_sim(data_dir: Option<&Path>) -> anyhow::Result<(SimHandle, Vec<String>)> {
    let mut config = SimConfig {
        consul_addr: SocketAddr::from(([127, 0, 0, 1], 8500)),
        nomad_addr: SocketAddr::from(([127, 0, 0, 1], 4646)),
        vault_addr: SocketAddr::from(([127, 0, 0, 1], 8200)),
        data_dir: data_dir.map(Path::to_path_buf),
        ..SimConfig::default()
    };
    // The dev stack runs the examples, and web-api asks for `memoryMaxMB`: configure its
    // Nomad as a cluster that uses it would be, or every run warns that it is ignored.
    config.nomad.memory_oversubscription = true;
    let mut notes = Vec::new();
    loop {
        match Sim::start(config.clone()).await {
            Ok(sim) => return Ok((sim, notes)),
            Err(steward_sim::Error::Bind {
                product,
                addr,
                source,
            }) if source.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 => {
                notes.push(format!(
                    "port {} is taken, so the {product} API listens on a free port instead",
                    addr.port()
                ));
                let free = SocketAddr::from(([127, 0, 0, 1], 0));
                match product {
                    Product::Consul => config.consul_addr = free,
                    Product::Nomad => config.nomad_addr = free,
                    Product::Vault => config.vault_addr = free,
                }
            }
            Err(e) => return Err(start_error(e)),
        }
    }
}

/// The edge gateway the examples' routes attach to (`api-gateway` `edge`, listener
/// `http`).
pub fn edge_gateway_entry(gateway: &GatewayRef) -> serde_json::Value {
    serde_json::json!({
        "Kind": gateway.kind,
        "Name": gateway.name,
        "Listeners": [{
            "Name": gateway.section_name.clone().unwrap_or_else(|| "http".to_owned()),
            "Port": 8080,
            "Protocol": "http",
        }],
    })
}

/// What `steward dev` prints once everything runs.
pub fn dev_next_steps(api: SocketAddr, examples: &Path, generated_token: Option<&str>) -> String {
    let operator_flag = if api == DEFAULT_LISTEN {
        String::new()
    } else {
        format!(" --operator http://{api}")
    };
    let token = match generated_token {
        Some(token) => format!(
            "Operator API token, for requests that change something (`steward gc approve`,\n\
             the dashboard's approve button):\n\
             \n\
             \x20   export {}={token}\n",
            crate::api_token::TOKEN_VAR
        ),
        None => format!(
            "Operator API token: the one in {} or {}.\n",
            crate::api_token::TOKEN_VAR,
            crate::api_token::TOKEN_FILE_VAR
        ),
    };
    format!(
        "Dashboard:    http://{api}/\n\
         Operator API: http://{api}  (/healthz, /readyz, /metrics, /api/v1/specs)\n\
         {token}\
         \n\
         Try next (in another shell, after the export above):\n\
         \n\
         \x20   steward status                      # every spec's phase, from Consul KV\n\
         \x20   steward events -f{operator_flag}                   # follow what the operator does\n\
         \x20   $EDITOR {dir}/web-api.yaml && steward push {dir} --wait\n\
         \n\
         Ctrl-C stops everything.\n",
        dir = examples.display()
    )
}

/// Runs `steward dev`.
///
/// # Errors
/// The simulator, the operator or its API cannot start.
pub async fn dev(args: &DevArgs) -> anyhow::Result<Exit> {
    logging::init(&args.log_level, LogFormat::Text)?;
    // Handlers first: a Ctrl-C during start-up is a clean shutdown, not a kill.
    let signal = shutdown_signal();
    let (sim, notes) = start_dev_sim(args.data_dir.as_deref()).await?;
    for note in &notes {
        println!("note: {note}");
    }
    let consul = ConsulClient::new(ConsulConfig::default().with_address(&sim.consul_url())?)?;
    let nomad = NomadClient::new(NomadConfig::default().with_address(&sim.nomad_url())?)?;
    let vault = VaultClient::new(
        VaultConfig::default()
            .with_address(&sim.vault_url())?
            .with_token(sim.config().vault_root_token.clone()),
    )?;
    let mut config = dev_config();
    config.edge.mode = args.edge_mode.into();
    config.edge.xds_listen = Some(dev_xds_address(args.xds_listen).await?);
    // The API's mutating endpoints always need a token, in dev too: the one configured,
    // or a fresh one printed below.
    let (api_token, generated) = match crate::api_token::from_env()? {
        Some(token) => (token, false),
        None => (crate::api_token::generate(), true),
    };
    config.api_token = Some(steward_operator::api_token::ApiToken::new(&api_token)?);
    let policy_file = args.policy.is_file().then(|| args.policy.clone());
    match &policy_file {
        Some(path) => {
            if let Some(policy) = policy_from(Some(path))? {
                config.policy = policy;
            }
        }
        None => println!(
            "note: {} not found: the built-in guardrail policy applies (it allows no image registry)",
            args.policy.display()
        ),
    }
    let gateway = edge_gateway_entry(&config.edge_gateway);
    consul
        .config_put(&gateway, &steward_hashi::WriteOptions::new())
        .await
        .context("cannot create the edge gateway config entry")?;

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && args.listen == DEFAULT_LISTEN => {
            println!(
                "note: {} is taken, so the operator API listens on a free port instead",
                args.listen
            );
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot listen on {} (pick another with --listen, e.g. 127.0.0.1:0)",
                args.listen
            )));
        }
    };
    let api_addr = listener.local_addr()?;
    let prefix = config.prefix.clone();
    // The simulator is ours and always supported, but the dashboard's cluster panel and
    // `/readyz` show what detection finds, as they do in `steward run`.
    let answers =
        steward_operator::detect::probe(&consul, &nomad, &vault, &config.jwt_auth_mount).await;
    let detected = steward_operator::detect::assess(&answers, &config.jwt_auth_mount);
    for degradation in detected.degradations() {
        tracing::warn!("{degradation}");
    }
    config.server_features = detected.server_features();
    config.cluster = Some(detected);
    let xds_addr = config.edge.xds_listen.filter(|_| config.edge.mode.xds());
    let operator = Operator::new(
        config,
        Clients {
            consul: consul.clone(),
            nomad,
            vault,
        },
    )?;
    let cancel = CancellationToken::new();
    operator.add_routes(steward_dashboard::router(operator.handle()));
    let router = operator.api_router();
    let api_cancel = cancel.clone();
    let api = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { api_cancel.cancelled().await })
            .await
    });
    let operator_cancel = cancel.clone();
    let operator_task = tokio::spawn(async move { operator.run(operator_cancel).await });

    println!("Steward dev: simulator + operator in one process.\n");
    if let Some(xds) = xds_addr {
        println!(
            "Edge xDS (Envoy): {xds}  (steward edge envoy-bootstrap --xds {xds} --listen 127.0.0.1:10080 --admin 127.0.0.1:19001)\n"
        );
    }
    print_banner(&sim);
    println!();
    if args.examples.is_dir() {
        println!("Pushing {}:", args.examples.display());
        let opts = PushOptions {
            dir: args.examples.clone(),
            prefix,
            source: None,
            prune: false,
            dry_run: false,
            wait: false,
            timeout: Duration::from_secs(60),
            policy: policy_file,
        };
        if let Err(e) = push::push(&consul, &opts).await {
            eprintln!("error: pushing {} failed: {e:#}", args.examples.display());
        }
        println!();
    } else {
        println!(
            "note: {} not found (run from the repository root, or pass --examples DIR); nothing pushed\n",
            args.examples.display()
        );
    }
    print!(
        "{}",
        dev_next_steps(
            api_addr,
            &args.examples,
            generated.then_some(api_token.as_str())
        )
    );

    tokio::select! {
        () = signal => {}
        () = cancel.cancelled() => {}
    }
    println!("\nshutting down...");
    cancel.cancel();
    let operator_result = operator_task.await;
    let _ = api.await;
    sim.shutdown().await;
    match operator_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(anyhow::Error::new(e).context("the operator failed")),
        Err(e) => return Err(anyhow::anyhow!("the operator task failed: {e}")),
    }
    println!(
        "stopped{}",
        match &args.data_dir {
            Some(d) => format!("; state saved in {}", d.display()),
            None => String::new(),
        }
    );
    Ok(Exit::Ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn gateways_default_kind_and_listener() {
        let g = parse_gateway("public").unwrap();
        assert_eq!(
            (g.kind.as_str(), g.name.as_str(), g.section_name.as_deref()),
            ("api-gateway", "public", Some("http"))
        );
        let g = parse_gateway("api-gateway/edge/https").unwrap();
        assert_eq!(g.section_name.as_deref(), Some("https"));
        assert_eq!(
            parse_gateway("api-gateway/edge/*").unwrap().section_name,
            None
        );
        assert!(parse_gateway("a//b").is_err());
        assert!(parse_gateway("a/b/c/d").is_err());
    }

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["steward", "run"];
        argv.extend_from_slice(extra);
        match crate::args::Cli::try_parse_from(argv).unwrap().command {
            crate::args::Command::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_override_the_config_and_listen_defaults_to_7070() {
        let base = OperatorConfig {
            concurrency: 3,
            ..OperatorConfig::default()
        };
        let c = run_config(base.clone(), &run_args(&[]), None, None);
        assert_eq!(c.concurrency, 3);
        assert_eq!(c.listen, Some(DEFAULT_LISTEN));
        let c = run_config(
            base,
            &run_args(&[
                "--prefix",
                "ops/steward/",
                "--concurrency",
                "8",
                "--gc-max-share",
                "0.5",
                "--listen",
                "127.0.0.1:9000",
            ]),
            None,
            Some(parse_gateway("gw").unwrap()),
        );
        assert_eq!(c.prefix, "ops/steward");
        assert_eq!(c.concurrency, 8);
        assert!((c.gc_max_share - 0.5).abs() < f64::EPSILON);
        assert_eq!(c.listen, Some(SocketAddr::from(([127, 0, 0, 1], 9000))));
        assert_eq!(c.edge_gateway.name, "gw");
    }

    #[test]
    fn dev_creates_namespaces_polls_fast_and_serves_its_own_api() {
        let c = dev_config();
        assert!(c.create_nomad_namespaces);
        assert!(c.vault_poll_interval <= Duration::from_secs(1));
        assert_eq!(c.listen, None);
        c.validate().unwrap();
    }

    #[test]
    fn the_edge_gateway_has_an_http_listener() {
        let e = edge_gateway_entry(&GatewayRef::default());
        assert_eq!(e["Kind"], "api-gateway");
        assert_eq!(e["Name"], "edge");
        assert_eq!(e["Listeners"][0]["Name"], "http");
        assert_eq!(e["Listeners"][0]["Protocol"], "http");
    }

    #[test]
    fn next_steps_name_the_operator_only_when_not_default() {
        let text = dev_next_steps(DEFAULT_LISTEN, Path::new("deploy/examples"), None);
        assert!(text.contains("steward events -f "), "{text}");
        assert!(text.contains("steward push deploy/examples --wait"));
        let other = dev_next_steps(
            SocketAddr::from(([127, 0, 0, 1], 7171)),
            Path::new("x"),
            None,
        );
        assert!(other.contains("--operator http://127.0.0.1:7171"));
    }

    #[test]
    fn next_steps_show_a_generated_token_only() {
        let generated = dev_next_steps(DEFAULT_LISTEN, Path::new("x"), Some("abc123"));
        assert!(
            generated.starts_with(&format!("Dashboard:    http://{DEFAULT_LISTEN}/\n")),
            "{generated}"
        );
        assert!(
            generated.contains("export STEWARD_API_TOKEN=abc123\n"),
            "{generated}"
        );
        let configured = dev_next_steps(DEFAULT_LISTEN, Path::new("x"), None);
        assert!(
            configured.contains("the one in STEWARD_API_TOKEN or STEWARD_API_TOKEN_FILE"),
            "{configured}"
        );
    }
}
