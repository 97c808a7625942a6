//! `steward edge ...`: helpers for the Envoys Steward's xDS server programs.

use steward_edge::bootstrap::{BootstrapOptions, render};

use crate::args::EnvoyBootstrapArgs;
use crate::exit::Exit;

/// `steward edge envoy-bootstrap`: prints the bootstrap YAML.
pub fn envoy_bootstrap(args: &EnvoyBootstrapArgs) -> Exit {
    print!(
        "{}",
        render(&BootstrapOptions {
            xds: args.xds,
            listen: args.listen,
            admin: args.admin,
            node_id: args.node_id.clone(),
        })
    );
    Exit::Ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser as _;

    use crate::args::{Cli, Command, EdgeCommand};

    #[test]
    fn envoy_bootstrap_takes_three_addresses_and_a_default_node_id() {
        let cli = Cli::try_parse_from([
            "steward",
            "edge",
            "envoy-bootstrap",
            "--xds",
            "127.0.0.1:18000",
            "--listen",
            "0.0.0.0:8080",
            "--admin",
            "127.0.0.1:19001",
        ])
        .unwrap();
        let Command::Edge(EdgeCommand::EnvoyBootstrap(a)) = cli.command else {
            panic!("not edge envoy-bootstrap")
        };
        assert_eq!(a.node_id, "edge-1");
        assert_eq!(a.listen.port(), 8080);
        assert!(
            Cli::try_parse_from([
                "steward",
                "edge",
                "envoy-bootstrap",
                "--xds",
                "nowhere",
                "--listen",
                "0.0.0.0:8080",
                "--admin",
                "127.0.0.1:19001",
            ])
            .is_err()
        );
    }
}
