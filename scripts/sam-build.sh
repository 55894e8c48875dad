#!/usr/bin/env bash
# Builds the functions as a deployment does, `sam build` of infra/template.yaml (cargo-lambda,
# release profile, each function with only the features its routes need), for one
# architecture, and prints how long it took and the size of each function's bootstrap. Not
# part of CI: six release builds take a while (the README's deploy section runs the same build).
#
#   bash scripts/sam-build.sh            # x86_64
#   bash scripts/sam-build.sh arm64      # cross-compiled by cargo-lambda (zig)
#
# The SAM CLI and cargo-lambda are the versions the tests pin, in the virtual environments
# tests/infra/lint.sh and tests/run.sh make (made here when missing). The build goes to a
# folder of its own under target/, not .aws-sam/, so a deploy's build is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
arch=${1:-x86_64}
case "$arch" in arm64 | x86_64) ;; *) echo "usage: $0 [x86_64|arm64]" >&2; exit 2 ;; esac
venv=${SSPR_VENV:-$root/.venv}
sam_version=$(sed -n 's/^sam_version=//p' tests/infra/lint.sh)
cargo_lambda_version=$(sed -n 's/^cargo_lambda_version=//p' tests/run.sh)
[ -x "$venv/infra/bin/sam" ] || bash tests/infra/lint.sh >/dev/null
if ! "$venv/lambda/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('cargo-lambda') != '$cargo_lambda_version')" 2>/dev/null; then
  python3 -m venv "$venv/lambda"
  "$venv/lambda/bin/pip" install -q --disable-pip-version-check "cargo-lambda==$cargo_lambda_version"
fi
export PATH="$venv/lambda/bin:$venv/infra/bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_DISABLE_UPDATE_CHECK=1
out="$root/target/sam-build-$arch"
rm -rf "$out" "$out.cache"
echo "sam $sam_version, cargo-lambda $cargo_lambda_version: building for $arch into $out"
start=$(date +%s)
sam build --template infra/template.yaml --build-dir "$out" --cache-dir "$out.cache" \
  --parameter-overrides "Architecture=$arch"
echo "sam build for $arch: $(( $(date +%s) - start )) s"
printf '%-20s %10s\n' function bytes
for bootstrap in "$out"/*/bootstrap; do
  bytes=$(stat -c %s "$bootstrap")
  kind=$(command -v file >/dev/null && file -b "$bootstrap" | cut -d, -f1-2 || echo "bootstrap")
  printf '%-20s %10s  (%s MB, %s)\n' "$(basename "$(dirname "$bootstrap")")" "$bytes" \
    "$(python3 -c "print(round($bytes / 1e6, 1))")" "$kind"
done
