//! `steward sim`: the Consul, Nomad and Vault API simulator as a process, like the
//! `-dev` agents.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use steward_sim::consul::ConsulSimConfig;
use steward_sim::{Product, Sim, SimConfig, SimHandle, TokenConfig};

use crate::args::SimArgs;
use crate::exit::Exit;
use crate::signal::shutdown_signal;

/// Parses `PRODUCT:SECRET[:RULES_FILE]`; `read` reads the rules file. Without a rules
/// file the token is a management (root) token.
///
/// # Errors
/// Unknown product, empty secret, unreadable rules file.
pub fn parse_token(
    spec: &str,
    read: impl Fn(&Path) -> std::io::Result<String>,
) -> anyhow::Result<TokenConfig> {
    let mut parts = spec.splitn(3, ':');
    let product = parts.next().unwrap_or_default();
    let product = Product::parse(&product.to_ascii_lowercase())
        .with_context(|| format!("--token {spec:?}: product must be consul, nomad or vault"))?;
    let secret = parts.next().unwrap_or_default();
    if secret.is_empty() {
        anyhow::bail!("--token needs PRODUCT:SECRET[:RULES_FILE], got {spec:?}");
    }
    let (management, rules) = match parts.next() {
        None | Some("") => (true, String::new()),
        Some(file) => {
            let rules = read(Path::new(file))
                .with_context(|| format!("--token: cannot read rules file {file}"))?;
            (false, rules)
        }
    };
    Ok(TokenConfig {
        product,
        secret: secret.to_owned(),
        management,
        rules,
    })
}

/// The flag that sets a product's address.
pub fn flag_of(product: Product) -> &'static str {
    match product {
        Product::Consul => "--consul",
        Product::Nomad => "--nomad",
        Product::Vault => "--vault",
    }
}

/// Explains a start failure, with the way out for a taken port.
pub fn start_error(error: steward_sim::Error) -> anyhow::Error {
    if let steward_sim::Error::Bind {
        product,
        addr,
        source,
    } = &error
    {
        let hint = if source.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "{addr} is already in use (a real {product} agent or another `steward sim`?); \
                 pick another address, e.g. `{} {}:0` for any free port",
                flag_of(*product),
                addr.ip()
            )
        } else {
            format!("cannot listen on {addr}: {source}")
        };
        return anyhow::Error::new(error).context(hint);
    }
    anyhow::Error::new(error).context("cannot start the simulator")
}

/// The addresses and the lines to paste, like `vault server -dev` prints them.
pub fn banner(
    consul: SocketAddr,
    nomad: SocketAddr,
    vault: SocketAddr,
    root_token: &str,
    tokens: &[TokenConfig],
) -> String {
    let mut out = String::new();
    out.push_str(&format!("Consul API:  http://{consul}\n"));
    out.push_str(&format!("Nomad API:   http://{nomad}\n"));
    out.push_str(&format!("Vault API:   http://{vault}\n"));
    out.push('\n');
    out.push_str(&format!("Vault root token: {root_token}\n"));
    for p in [Product::Consul, Product::Nomad] {
        if tokens.iter().any(|t| t.product == p) {
            out.push_str(&format!(
                "{p} ACLs are enforced: set {} to one of the --token secrets\n",
                match p {
                    Product::Consul => "CONSUL_HTTP_TOKEN",
                    _ => "NOMAD_TOKEN",
                }
            ));
        }
    }
    out.push_str("\nPoint clients at it:\n\n");
    out.push_str(&format!(
        "    export CONSUL_HTTP_ADDR=http://{consul} NOMAD_ADDR=http://{nomad} VAULT_ADDR=http://{vault} VAULT_TOKEN={root_token}\n"
    ));
    out
}

/// Prints the banner of a running simulator.
pub fn print_banner(sim: &SimHandle) {
    let config = sim.config();
    print!(
        "{}",
        banner(
            sim.consul_addr(),
            sim.nomad_addr(),
            sim.vault_addr(),
            &config.vault_root_token,
            &config.tokens,
        )
    );
}

/// Runs `steward sim` until Ctrl-C or SIGTERM.
///
/// # Errors
/// Bad flags, a taken port, unreadable state.
pub async fn run(args: &SimArgs) -> anyhow::Result<Exit> {
    let tokens = args
        .tokens
        .iter()
        .map(|t| parse_token(t, |p| std::fs::read_to_string(p)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !(args.min_healthy_time_factor.is_finite() && args.min_healthy_time_factor >= 0.0) {
        anyhow::bail!(
            "--min-healthy-time-factor must be a number ≥ 0, got {}",
            args.min_healthy_time_factor
        );
    }
    let mut config = SimConfig {
        consul_addr: args.consul,
        nomad_addr: args.nomad,
        vault_addr: args.vault,
        data_dir: args.data_dir.clone(),
        tokens,
        vault_root_token: args.vault_root_token.clone(),
        consul: ConsulSimConfig {
            unsupported_config_kinds: args.consul_unsupported_kinds.clone(),
            ..ConsulSimConfig::default()
        },
        ..SimConfig::default()
    };
    config.nomad.alloc_start_delay_ms =
        u64::try_from(args.alloc_start_delay.as_millis()).unwrap_or(u64::MAX);
    config.nomad.min_healthy_time_factor = args.min_healthy_time_factor;
    // Handlers first: whoever reads the banner may signal at once.
    let signal = shutdown_signal();
    let stdin_eof = args.stop_on_stdin_eof;
    let stop = async move {
        if stdin_eof {
            tokio::select! {
                () = signal => {}
                () = stdin_closed() => {}
            }
        } else {
            signal.await;
        }
    };
    let sim = Sim::start(config).await.map_err(start_error)?;
    println!("Steward simulator running; Ctrl-C to stop.\n");
    print_banner(&sim);
    if !args.consul_unsupported_kinds.is_empty() {
        println!(
            "\nConsul answers these config-entry kinds as unknown: {}",
            args.consul_unsupported_kinds.join(", ")
        );
    }
    if let Some(dir) = &args.data_dir {
        println!("\nState is kept in {}", dir.display());
    }
    stop.await;
    println!("\nshutting down...");
    sim.shutdown().await;
    println!("simulator stopped");
    Ok(Exit::Ok)
}

/// Resolves when stdin reaches end of file (or fails): the parent holding the other
/// end is gone. Whatever it writes is ignored. A plain thread reads, not Tokio's
/// blocking pool: a read of stdin cannot be cancelled, and the runtime would wait for it
/// on shutdown; the thread simply ends with the process.
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".to_owned())
        .spawn(move || {
            use std::io::Read as _;
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 256];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
            let _ = tx.send(());
        });
    match spawned {
        // A dropped sender (the thread panicked) counts as closed too.
        Ok(_) => {
            let _ = rx.await;
        }
        // Without the watcher, only a signal stops the simulator.
        Err(_) => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn no_file(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn tokens_without_rules_are_management_tokens() {
        let t = parse_token("consul:s3cret", no_file).unwrap();
        assert_eq!(t.product, Product::Consul);
        assert_eq!(t.secret, "s3cret");
        assert!(t.management && t.rules.is_empty());
    }

    #[test]
    fn tokens_with_a_rules_file_carry_its_text() {
        let t = parse_token("Vault:abc:policy.hcl", |p| {
            assert_eq!(p, Path::new("policy.hcl"));
            Ok("path \"x\" {}".into())
        })
        .unwrap();
        assert_eq!(t.product, Product::Vault);
        assert!(!t.management);
        assert_eq!(t.rules, "path \"x\" {}");
    }

    #[test]
    fn bad_tokens_are_refused() {
        assert!(parse_token("etcd:x", no_file).is_err());
        assert!(parse_token("consul", no_file).is_err());
        assert!(parse_token("consul:", no_file).is_err());
        assert!(parse_token("consul:x:missing.hcl", no_file).is_err());
    }

    #[test]
    fn the_banner_holds_the_exports() {
        let a = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let b = banner(a(8500), a(4646), a(8200), "root", &[]);
        assert!(b.contains(
            "export CONSUL_HTTP_ADDR=http://127.0.0.1:8500 NOMAD_ADDR=http://127.0.0.1:4646 VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root"
        ));
        assert!(b.contains("Vault root token: root"));
    }

    #[test]
    fn a_taken_port_suggests_port_zero() {
        let e = steward_sim::Error::Bind {
            product: Product::Consul,
            addr: SocketAddr::from(([127, 0, 0, 1], 8500)),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let text = format!("{:#}", start_error(e));
        assert!(text.contains("`--consul 127.0.0.1:0`"), "{text}");
    }
}
