#!/usr/bin/env bash
# Runs Steward's whole test suite: formatting, lints, schema freshness, every Rust test
# (unit, golden, property, simulator conformance, end-to-end) and the third-party
# client compatibility checks. Installs what it needs itself (see scripts/install-test-deps.sh).
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# Two cores: keep cargo's parallelism sane.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "installing test dependencies"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "building"
cargo build --workspace --all-targets --locked

# The binary lands in cargo's target directory, which a user may have moved elsewhere
# (CARGO_TARGET_DIR); the scripts' own files stay under ./target.
STEWARD="${CARGO_TARGET_DIR:-target}/debug/steward"
export STEWARD
mkdir -p target

step "schemas/ matches what the code generates"
"$STEWARD" schema --kind servicespec > target/servicespec.v1.json
diff -u schemas/servicespec.v1.json target/servicespec.v1.json
"$STEWARD" schema --kind guardrails > target/guardrails.v1.json
diff -u schemas/guardrails.v1.json target/guardrails.v1.json

step "tests (nextest)"
cargo nextest run --workspace --locked --no-fail-fast --profile ci

step "doc tests"
cargo test --workspace --doc --locked

step "third-party clients against 'steward sim'"
scripts/client-compat.sh

printf '\nall checks passed\n'
