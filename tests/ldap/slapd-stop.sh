#!/usr/bin/env bash
# Stops the throwaway OpenLDAP server that tests/ldap/slapd.sh started in DIR (by its pid file;
# nothing when none runs there). Usage: tests/ldap/slapd-stop.sh DIR
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 DIR" >&2; exit 1; }
exec "$(dirname "${BASH_SOURCE[0]}")/slapd.sh" stop "$1"
