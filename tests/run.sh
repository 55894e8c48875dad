#!/usr/bin/env bash
# Installs what the tests need and runs every test of sspr: unit and conformance tests, the
# end-to-end suite on the embedded adapters and on the AWS emulator (moto server), the
# template lint, and the browser test in Debian's Chromium.
#
# Servers started here listen on loopback only and are stopped on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${SSPR_VENV:-$root/.venv}
target_dir=${CARGO_TARGET_DIR:-$root/target}
moto_version=5.2.5
cargo_lambda_version=1.9.2

step() { printf '\n==> %s\n' "$*"; }

# --- dependencies ----------------------------------------------------------------------------
sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v chromium >/dev/null 2>&1; then
  step "installing chromium (Debian package)"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! "$venv/moto/bin/python" -c "import sys, moto; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
  step "installing moto[server]==$moto_version into $venv/moto"
  python3 -m venv "$venv/moto"
  "$venv/moto/bin/pip" install -q --disable-pip-version-check "moto[server]==$moto_version"
fi
if ! "$venv/lambda/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('cargo-lambda') != '$cargo_lambda_version')" 2>/dev/null; then
  step "installing cargo-lambda==$cargo_lambda_version into $venv/lambda"
  python3 -m venv "$venv/lambda"
  "$venv/lambda/bin/pip" install -q --disable-pip-version-check "cargo-lambda==$cargo_lambda_version"
fi
step "installing the browser test's npm packages"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

# --- servers ---------------------------------------------------------------------------------
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Retries `check ARG` for up to 30 s; on failure shows the servers' logs.
wait_for() { # what, check, arg
  for _ in $(seq 1 150); do
    if "$2" "$3" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "$1 did not start; its log:" >&2
  cat "$tmp"/*.log >&2 || true
  return 1
}
url_answers() { python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1"; }
port_open() { python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1"; }

moto_port=$(free_port)
step "starting moto server on 127.0.0.1:$moto_port"
"$venv/moto/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$tmp/moto.log" 2>&1 &
pids+=($!)
wait_for "moto server" url_answers "http://127.0.0.1:$moto_port/moto-api/data.json"

# cargo-lambda's Lambda runtime emulator; the end-to-end suite runs the function binaries
# against it, each as its own process.
lambda_port=$(free_port)
step "starting cargo-lambda's runtime emulator on 127.0.0.1:$lambda_port"
"$venv/lambda/bin/cargo-lambda" lambda watch --only-lambda-apis -A 127.0.0.1 -P "$lambda_port" >"$tmp/cargo-lambda.log" 2>&1 &
pids+=($!)
wait_for "cargo-lambda's runtime emulator" port_open "$lambda_port"

# --- Rust: unit, conformance and end-to-end --------------------------------------------------
step "cargo build (every binary and test, with one feature set)"
cargo build --workspace --all-targets
step "cargo test (unit, conformance, end-to-end on embedded, on moto and under the Lambda runtime)"
SSPR_TEST_LAMBDA_EMULATOR="http://127.0.0.1:$lambda_port" \
SSPR_TEST_MOTO_URL="http://127.0.0.1:$moto_port" \
AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" \
AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
AWS_EC2_METADATA_DISABLED=true \
  cargo test --workspace 2>&1 | tee "$tmp/cargo-test.log"

# --- infrastructure --------------------------------------------------------------------------
step "template lint (cfn-lint, sam validate --lint)"
bash tests/infra/lint.sh

# --- browser ---------------------------------------------------------------------------------
step "browser test against the local server (embedded default)"
web_port=$(free_port)
(cd "$tmp" && exec env -u AWS_ENDPOINT_URL "$target_dir/debug/sspr" serve --addr "127.0.0.1:$web_port" --data "$tmp/data" >"$tmp/sspr.log" 2>&1) &
pids+=($!)
wait_for "sspr serve" url_answers "http://127.0.0.1:$web_port/reset"
# The demo accounts and their passwords are printed at start (and listed in the README).
alice_password=$(sed -n 's/^  demo user: alice (password \(.*\))$/\1/p' "$tmp/sspr.log")
if [ -z "$alice_password" ]; then
  echo "sspr serve did not list the demo user alice; its log:" >&2
  cat "$tmp/sspr.log" >&2
  exit 1
fi
SSPR_URL="http://127.0.0.1:$web_port" SSPR_ALICE_PASSWORD="$alice_password" node --test tests/browser/*.test.mjs

# S9: the server's own log lines (not the outbox, which exists to show codes) carry no secret.
if grep -F 'Brand-new-Passw0rd-42' "$tmp/sspr.log" >/dev/null; then
  echo "a secret appeared in the local server's log" >&2
  exit 1
fi
step "all tests passed"
