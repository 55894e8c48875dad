#!/usr/bin/env bash
# Builds each Lambda function on its own, as a deployment does (release profile, only the
# features its routes need), and prints the size of its stripped binary. Not part of CI:
# a release build of all four takes a while.
#
#   bash scripts/binary-sizes.sh            # x86_64 (this machine)
#
# The release profile strips symbols (Cargo.toml), so the size printed is what Lambda loads.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts what it builds, as cargo itself says (CARGO_TARGET_DIR or its configuration).
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
printf '%-10s %10s\n' function bytes
for dir in functions/*/; do
  name=$(basename "$dir")
  cargo build --quiet --release -p "sspr-fn-$name"
  bytes=$(stat -c %s "$target_dir/release/$name")
  printf '%-10s %10s  (%s MB)\n' "$name" "$bytes" "$(python3 -c "print(round($bytes / 1e6, 1))")"
done
