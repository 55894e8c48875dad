#!/usr/bin/env bash
# Installs what the tests need and runs every test of sspr: unit and conformance tests, the
# end-to-end suite on the embedded adapters, on the AWS emulator (moto server) and on real
# directory servers (OpenLDAP slapd, Samba AD DC), the
# template lint, and the browser test in Debian's Chromium.
#
# Servers started here listen on loopback only and are stopped on exit, even on failure.
#
# S9 in docs/security.md: the tests note every code, reset token, session id, sign-in token and
# password they use in one file; at the end every log is searched for each of them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${SSPR_VENV:-$root/.venv}
# Where cargo puts what it builds, as cargo itself says (CARGO_TARGET_DIR or its configuration).
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
moto_version=5.2.5
# The phone's authenticator app in the end-to-end tests: an implementation apart from the product's.
pyotp_version=2.9.0
cargo_lambda_version=1.9.2

step() { printf '\n==> %s\n' "$*"; }
elapsed_since() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$EPOCHREALTIME"; }

# --- dependencies ----------------------------------------------------------------------------
sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v chromium >/dev/null 2>&1; then
  step "installing chromium (Debian package)"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! "$venv/moto/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('moto') != '$moto_version' or version('pyotp') != '$pyotp_version')" 2>/dev/null; then
  step "installing moto[server]==$moto_version and pyotp==$pyotp_version into $venv/moto"
  python3 -m venv "$venv/moto"
  "$venv/moto/bin/pip" install -q --disable-pip-version-check "moto[server]==$moto_version" "pyotp==$pyotp_version"
fi
if ! "$venv/lambda/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('cargo-lambda') != '$cargo_lambda_version')" 2>/dev/null; then
  step "installing cargo-lambda==$cargo_lambda_version into $venv/lambda"
  python3 -m venv "$venv/lambda"
  "$venv/lambda/bin/pip" install -q --disable-pip-version-check "cargo-lambda==$cargo_lambda_version"
fi
# OpenLDAP's slapd, ldap-utils and openssl for the LDAP directory adapter's end-to-end tests
# (Debian packages; the package neither configures nor starts the system's server).
if ! bash tests/ldap/slapd.sh installed; then
  step "installing slapd, ldap-utils and openssl (Debian packages)"
  started=$EPOCHREALTIME
  bash tests/ldap/slapd.sh install
  echo "installed in $(elapsed_since "$started") s"
fi
# Samba as an Active Directory domain controller, for the `ad` flavour of the same adapter.
if ! bash tests/ldap/samba.sh installed; then
  step "installing samba, samba-ad-dc, samba-ad-provision (Debian packages)"
  started=$EPOCHREALTIME
  bash tests/ldap/samba.sh install
  echo "installed in $(elapsed_since "$started") s"
fi
step "installing the browser test's npm packages"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# The registration page serves oauth4webapi's own file, as npm publishes it at the pinned
# version: a copy that differs was changed by hand.
cmp -s tests/browser/node_modules/oauth4webapi/build/index.js web/oauth4webapi.js ||
  { echo "web/oauth4webapi.js is not the file of the pinned oauth4webapi package (tests/browser/package.json); copy it again" >&2; exit 1; }

# --- servers ---------------------------------------------------------------------------------
tmp=$(mktemp -d)
pids=()
cleanup() {
  bash "$root/tests/ldap/slapd.sh" stop "$tmp/ldap" || true
  sudo_if_needed bash "$root/tests/ldap/samba.sh" stop "$tmp/ad" || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
secrets=$tmp/secrets
mkdir "$tmp/logs"
: >"$secrets"

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
# moto's own server, with its DynamoDB models left out of its instance tracking (tests/moto/server.py).
"$venv/moto/bin/python" tests/moto/server.py -H 127.0.0.1 -p "$moto_port" >"$tmp/moto.log" 2>&1 &
pids+=($!)
wait_for "moto server" url_answers "http://127.0.0.1:$moto_port/moto-api/data.json"

# cargo-lambda's Lambda runtime emulator; the end-to-end suite runs the function binaries
# against it, each as its own process.
lambda_port=$(free_port)
step "starting cargo-lambda's runtime emulator on 127.0.0.1:$lambda_port"
"$venv/lambda/bin/cargo-lambda" lambda watch --only-lambda-apis -A 127.0.0.1 -P "$lambda_port" >"$tmp/cargo-lambda.log" 2>&1 &
pids+=($!)
wait_for "cargo-lambda's runtime emulator" port_open "$lambda_port"

# OpenLDAP for the LDAP directory adapter: LDAPS only, on 127.0.0.1; its settings
# (SSPR_TEST_SLAPD_URL, _CA, _BASE_DN, _BIND_DN, _PASSWORD_FILE, _PID) are exported to the tests.
slapd_port=$(free_port)
step "starting OpenLDAP (slapd) on ldaps://127.0.0.1:$slapd_port"
started=$EPOCHREALTIME
slapd_env=$(bash tests/ldap/slapd.sh "$tmp/ldap" "$slapd_port") # fails the run when slapd does not start
eval "$slapd_env"
echo "started in $(elapsed_since "$started") s (log: $tmp/ldap/slapd.log)"

# Samba AD DC: LDAPS on 127.0.0.1:636 (Samba's fixed port, hence root); its settings
# (SSPR_TEST_AD_URL, _CA, _BASE_DN, _BIND_DN, _PASSWORD_FILE, _ADMIN_PASSWORD_FILE, _PID) are
# exported to the tests.
step "provisioning and starting Samba AD DC on ldaps://127.0.0.1:636"
started=$EPOCHREALTIME
samba_env=$(sudo_if_needed bash tests/ldap/samba.sh "$tmp/ad") # fails the run when Samba does not start
if [ "$(id -u)" != 0 ]; then
  sudo chown "$(id -u)" "$tmp/ad/service-password" "$tmp/ad/admin-password"
fi
eval "$samba_env"
echo "started in $(elapsed_since "$started") s (logs: $tmp/ad/samba.log, $tmp/ad/logs/)"

# --- Rust: unit, conformance and end-to-end --------------------------------------------------
step "cargo build (every binary and test, with one feature set)"
cargo build --workspace --all-targets
step "cargo test (unit, conformance, end-to-end on embedded, on moto and under the Lambda runtime)"
with_test_env() {
  SSPR_TEST_LAMBDA_EMULATOR="http://127.0.0.1:$lambda_port" \
  SSPR_TEST_MOTO_URL="http://127.0.0.1:$moto_port" \
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" \
  AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_EC2_METADATA_DISABLED=true \
  SSPR_TEST_SECRETS_FILE="$secrets" SSPR_TEST_LOG_DIR="$tmp/logs" \
  SSPR_TEST_PYTHON="$venv/moto/bin/python" \
    "$@"
}
# Every test but the timing ones, which then run alone: others beside them would add their
# noise to the medians they compare (S1 in docs/security.md).
# A failure's own words are repeated last, where they cannot drown in the logs printed after
# them (the timing test prints as it goes).
failed_tests() {
  step "$1 failed; what the failing tests said:"
  grep -h -A6 "panicked at" "$2" | grep -v " DEBUG \| TRACE " | cut -c1-1000 | tail -60
  exit 1
}
with_test_env cargo test --workspace -- --skip timing_and_answers 2>&1 | tee "$tmp/cargo-test.log" \
  || failed_tests "cargo test" "$tmp/cargo-test.log"
step "timing test (S1), alone"
with_test_env cargo test -p sspr-tests --test e2e -- timing_and_answers --test-threads=1 --nocapture 2>&1 \
  | tee "$tmp/timing-test.log" || failed_tests "the timing test" "$tmp/timing-test.log"
cat "$tmp/timing-test.log" >>"$tmp/cargo-test.log"

# --- infrastructure --------------------------------------------------------------------------
step "template lint (cfn-lint, sam validate --lint)"
bash tests/infra/lint.sh

# --- browser ---------------------------------------------------------------------------------
step "browser test against the local server (embedded default)"
web_port=$(free_port)
# Its log lines go to standard error (sspr.log); standard output (sspr.out) has the start
# banner and the outbox, which exists to show codes.
(cd "$tmp" && exec env -u AWS_ENDPOINT_URL "$target_dir/debug/sspr" serve --addr "127.0.0.1:$web_port" --data "$tmp/data" >"$tmp/sspr.out" 2>"$tmp/sspr.log") &
pids+=($!)
wait_for "sspr serve" url_answers "http://127.0.0.1:$web_port/reset"
# The demo accounts and their passwords are printed at start (and listed in the README).
alice_password=$(sed -n 's/^  demo user: alice (password \(.*\))$/\1/p' "$tmp/sspr.out")
if [ -z "$alice_password" ]; then
  echo "sspr serve did not list the demo user alice; its output and log:" >&2
  cat "$tmp/sspr.out" "$tmp/sspr.log" >&2
  exit 1
fi
printf '%s\n' "$alice_password" >>"$secrets"
noted_before_browser=$(wc -l <"$secrets")
SSPR_URL="http://127.0.0.1:$web_port" SSPR_ALICE_PASSWORD="$alice_password" SSPR_TEST_SECRETS_FILE="$secrets" \
  node --test tests/browser/*.test.mjs 2>&1 | tee "$tmp/browser.log"

step "browser test against the local server on OpenLDAP (the unlock)"
ldap_web_port=$(free_port)
mkdir -m 0700 "$tmp/ldap-data"
# The service account's password, in the data directory's secrets file (the server adds the
# pepper to it at start).
python3 -c 'import json, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps({"ldap_bind_password": open(sys.argv[2]).read()}).encode())' \
  "$tmp/ldap-data/secrets.json" "$SSPR_TEST_SLAPD_PASSWORD_FILE"
(cd "$tmp" && exec env -u AWS_ENDPOINT_URL SSPR_DIRECTORY=ldap SSPR_LDAP_FLAVOUR=openldap \
  SSPR_LDAP_URL="$SSPR_TEST_SLAPD_URL" SSPR_LDAP_BIND_DN="$SSPR_TEST_SLAPD_BIND_DN" \
  SSPR_LDAP_BASE_DN="$SSPR_TEST_SLAPD_BASE_DN" SSPR_LDAP_CA_FILE="$SSPR_TEST_SLAPD_CA" \
  "$target_dir/debug/sspr" serve --addr "127.0.0.1:$ldap_web_port" --data "$tmp/ldap-data" \
  >"$tmp/sspr-ldap.out" 2>"$tmp/sspr-ldap.log") &
pids+=($!)
wait_for "sspr serve (OpenLDAP)" url_answers "http://127.0.0.1:$ldap_web_port/reset"
SSPR_URL="http://127.0.0.1:$ldap_web_port" SSPR_OUTBOX_FILE="$tmp/ldap-data/outbox.jsonl" \
SSPR_TEST_SECRETS_FILE="$secrets" \
  node --test tests/browser/ldap/*.test.mjs 2>&1 | tee "$tmp/browser-ldap.log"

step "browser test of the registration page signed in through an OpenID Connect provider"
oidc_port=$(free_port)
oidc_web_port=$(free_port)
mkdir -m 0700 "$tmp/oidc-data"
node tests/browser/oidc/provider.mjs "$oidc_port" "http://127.0.0.1:$oidc_web_port/register" \
  >"$tmp/oidc-provider.log" 2>&1 &
pids+=($!)
wait_for "the OpenID Connect provider" url_answers "http://127.0.0.1:$oidc_port/.well-known/openid-configuration"
(cd "$tmp" && exec env -u AWS_ENDPOINT_URL SSPR_OIDC_ISSUER="http://127.0.0.1:$oidc_port" \
  SSPR_OIDC_AUDIENCE=sspr-register-page SSPR_OIDC_SCOPES="openid profile" \
  SSPR_CLAIM_USERNAME=preferred_username SSPR_CLAIM_GROUPS=groups SSPR_RECENT_SIGNIN_SECS=15 \
  "$target_dir/debug/sspr" serve --addr "127.0.0.1:$oidc_web_port" --data "$tmp/oidc-data" \
  >"$tmp/sspr-oidc.out" 2>"$tmp/sspr-oidc.log") &
pids+=($!)
wait_for "sspr serve (OpenID Connect)" url_answers "http://127.0.0.1:$oidc_web_port/reset"
SSPR_URL="http://127.0.0.1:$oidc_web_port" SSPR_OIDC_ISSUER="http://127.0.0.1:$oidc_port" \
SSPR_TEST_SECRETS_FILE="$secrets" \
  node --test tests/browser/oidc/*.test.mjs 2>&1 | tee "$tmp/browser-oidc.log"

# --- S9: no secret in any log ----------------------------------------------------------------
step "searching every log for the secrets the tests used"
fail() { echo "$*" >&2; exit 1; }
[ "$(wc -l <"$secrets")" -gt "$noted_before_browser" ] || fail "the browser test noted no secret"
sort -u "$secrets" >"$tmp/secrets.sorted"
# Codes are searched as whole numbers (a longer number may hold the same eight digits), the
# other secrets as any substring.
grep -E '^[0-9]+$' "$tmp/secrets.sorted" >"$tmp/secret-codes" || fail "the tests noted no code"
grep -vE '^[0-9]+$' "$tmp/secrets.sorted" >"$tmp/secret-others" || fail "the tests noted no token or password"
echo "$(wc -l <"$tmp/secret-codes") codes and $(wc -l <"$tmp/secret-others") tokens, session ids and passwords"
leaked=0
for log in cargo-test.log logs/functions.log sspr.log browser.log sspr-ldap.log browser-ldap.log sspr-oidc.log browser-oidc.log; do
  [ -s "$tmp/$log" ] || fail "$log is missing or empty"
  # A log that misses the line of a completed reset shows nothing was logged there to search.
  if [[ "$log" != browser* ]] && ! grep -qF 'reset completed' "$tmp/$log"; then
    fail "$log has no \"reset completed\" line: nothing to search"
  fi
  if grep -qwF -f "$tmp/secret-codes" "$tmp/$log" || grep -qF -f "$tmp/secret-others" "$tmp/$log"; then
    echo "a secret the tests used appears in $log (not shown here)" >&2
    leaked=1
  fi
done
[ "$leaked" = 0 ] || exit 1
step "all tests passed"
