#!/usr/bin/env bash
# A throwaway OpenLDAP server (Debian's slapd 2.5) for the end-to-end tests of the LDAP
# directory adapter. Nothing of the system's slapd is used: no /etc/ldap/slapd.d, no service,
# no debconf database.
#
#   tests/ldap/slapd.sh install      installs slapd, ldap-utils and openssl when missing (through
#                                    sudo when not root), without letting the package configure
#                                    or start the system's server
#   tests/ldap/slapd.sh installed    exits 0 when they are all there, 1 when not
#   tests/ldap/slapd.sh DIR PORT     builds the server in DIR (a new or empty folder), starts it
#                                    serving LDAPS only on ldaps://127.0.0.1:PORT/ (plus an ldapi
#                                    socket in DIR for this script's own work), waits until the
#                                    service account can bind, then prints `export` lines
#   tests/ldap/slapd.sh stop DIR     stops the server started in DIR (also tests/ldap/slapd-stop.sh)
#
# DIR gets: ca.pem (the throwaway CA to trust), service-password (the service account's
# password, mode 0600, no trailing newline), admin-password (the rootdn's, same), slapd.pid,
# slapd.log (its stats log: connections, operations, results; never passwords), slapd.d/, data/.
#
# Directory: dc=sspr,dc=test; people alice, bob, carol, dave, admin, ops under ou=people; groups
# Team-A (alice), SSPR-Users (carol, dave, and the group Team-A: nested), SSPR-Admins (admin, ops) under ou=groups;
# service account cn=sspr,ou=services; password policy cn=default,ou=policies (history 24,
# minimum length 8, locked after 3 bad binds until an administrator removes
# pwdAccountLockedTime). See config.ldif.in and data.ldif.in beside this script.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/ldap/common.sh
source "$here/common.sh"

base_dn=dc=sspr,dc=test
root_dn=cn=admin,$base_dn
service_dn=cn=sspr,ou=services,$base_dn

die() { log "slapd.sh: $*"; exit 1; }

# --- install ----------------------------------------------------------------------------------
# The Debian packages missing, one a line (only those are installed: naming one already there
# would upgrade it).
missing_packages() {
  { [ -x /usr/sbin/slapd ] && [ -x /usr/sbin/slapadd ] && [ -x /usr/sbin/slappasswd ] \
    && [ -e /usr/lib/ldap/ppolicy.so ] && [ -e /usr/lib/ldap/back_mdb.so ]; } || echo slapd
  { command -v ldapwhoami && command -v ldapadd && command -v ldappasswd; } >/dev/null || echo ldap-utils
  command -v openssl >/dev/null || echo openssl
}
packages_missing() { [ -n "$(missing_packages)" ]; }

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then exec sudo bash "$here/slapd.sh" install; fi
  log "installing ${missing[*]} (Debian packages)"
  # The package must neither create the system's database (no debconf questions, no
  # /etc/ldap/slapd.d) nor start the system's server.
  echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
  apt_install_without_starting tests/ldap/slapd.sh "${missing[@]}"
  # Under systemd, keep the system's server from starting at boot too (it has no configuration
  # anyway). Not /etc/init.d/slapd stop elsewhere: without a configuration it may stop every
  # slapd by name, the tests' own among them.
  if [ -d /run/systemd/system ]; then
    systemctl disable --now slapd.service >/dev/null 2>&1 || true
  fi
  ! packages_missing || die "still missing after apt-get install: $(missing_packages | tr '\n' ' ')"
  return 0
}

# --- stop -------------------------------------------------------------------------------------
stop_server() { # dir
  local dir=$1 pid
  [ -f "$dir/slapd.pid" ] || return 0
  pid=$(cat "$dir/slapd.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  # Only a slapd of this folder: the pid file may be stale.
  if ! tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$dir/slapd.d"; then
    rm -f "$dir/slapd.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/slapd.pid"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/slapd.pid"
}

# An `export NAME='VALUE'` line for the shell (a ' in VALUE becomes '\'').

# --- start ------------------------------------------------------------------------------------
start_server() { # dir port
  local dir=$1 port=$2
  case $port in '' | *[!0-9]*) die "PORT must be a number, not '$port'" ;; esac
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  # A process of its own: when not root, the install goes on through sudo in its place.
  if packages_missing; then bash "$here/slapd.sh" install; fi
  local url="ldaps://127.0.0.1:$port"
  local ldapi
  ldapi="ldapi://$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$dir/ldapi")"
  umask 077

  make_tls "$dir" "sspr test CA"

  # Random passwords, kept in files without a trailing newline (ldap tools' -y reads the whole
  # file as the password); only their hashes go into the LDIF.
  printf '%s' "$(openssl rand -hex 24)" >"$dir/admin-password"
  printf '%s' "$(openssl rand -hex 24)" >"$dir/service-password"
  chmod 0600 "$dir/admin-password" "$dir/service-password"
  local root_hash service_hash
  root_hash=$(slappasswd -h '{SSHA}' -T "$dir/admin-password")
  service_hash=$(slappasswd -h '{SSHA}' -T "$dir/service-password")

  sed -e "s|@DIR@|$dir|g" -e "s|@ROOTPW_HASH@|$root_hash|g" -e "s|@SERVICE_DN@|$service_dn|g" \
    -e "s|@UID@|$(id -u)|g" -e "s|@GID@|$(id -g)|g" "$here/config.ldif.in" >"$dir/config.ldif"
  sed -e "s|@SERVICE_PASSWORD_HASH@|$service_hash|g" "$here/data.ldif.in" >"$dir/data.ldif"
  mkdir "$dir/slapd.d" "$dir/data"
  slapadd -n0 -F "$dir/slapd.d" -l "$dir/config.ldif" >"$dir/slapadd.log" 2>&1 \
    || { cat "$dir/slapadd.log" >&2; die "slapadd of the configuration failed"; }

  # slapd stays in the foreground (-d) so its log goes to DIR/slapd.log; it is not a child of
  # whoever called this script once it exits. Its pid is in DIR/slapd.pid (written here at
  # once, then by slapd itself).
  slapd -d stats -F "$dir/slapd.d" -h "$url/ $ldapi" </dev/null >>"$dir/slapd.log" 2>&1 &
  local pid=$!
  printf '%s\n' "$pid" >"$dir/slapd.pid"
  # shellcheck disable=SC2064 # the folder, now
  trap "stop_server $(printf %q "$dir")" EXIT # until it answers

  local ok=
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    if ldapwhoami -H "$ldapi" -x -D "$root_dn" -y "$dir/admin-password" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { cat "$dir/slapd.log" >&2; die "slapd did not start (its log is above)"; }

  ldapadd -H "$ldapi" -x -D "$root_dn" -y "$dir/admin-password" -f "$dir/data.ldif" >"$dir/ldapadd.log" 2>&1 \
    || { cat "$dir/ldapadd.log" >&2; die "adding the entries failed"; }

  ok=
  for _ in $(seq 1 50); do
    if LDAPTLS_CACERT="$dir/ca.pem" LDAPTLS_REQCERT=demand \
      ldapwhoami -H "$url" -x -D "$service_dn" -y "$dir/service-password" >/dev/null 2>"$dir/whoami.err"; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { cat "$dir/whoami.err" "$dir/slapd.log" >&2; die "the service account cannot bind over $url"; }
  rm -f "$dir/whoami.err"
  trap - EXIT

  emit_export SSPR_TEST_SLAPD_URL "$url"
  emit_export SSPR_TEST_SLAPD_CA "$dir/ca.pem"
  emit_export SSPR_TEST_SLAPD_BASE_DN "$base_dn"
  emit_export SSPR_TEST_SLAPD_BIND_DN "$service_dn"
  emit_export SSPR_TEST_SLAPD_PASSWORD_FILE "$dir/service-password"
  emit_export SSPR_TEST_SLAPD_PID "$pid"
}

usage() { die "usage: $0 install | $0 installed | $0 DIR PORT | $0 stop DIR"; }
case ${1:-} in
  install) [ $# = 1 ] || usage; install_packages ;;
  installed) [ $# = 1 ] || usage; ! packages_missing ;;
  stop) [ $# = 2 ] || usage; if [ -d "$2" ]; then stop_server "$(cd "$2" && pwd)"; fi ;;
  '') usage ;;
  *) [ $# = 2 ] || usage; start_server "$1" "$2" ;;
esac
