#!/usr/bin/env bash
# A throwaway Samba Active Directory domain controller (Debian's samba 4.17) for the end-to-end
# tests of the LDAP directory adapter's `ad` flavour. Nothing of the system's Samba is used: the
# domain is provisioned into a folder of its own, with a configuration file of its own, and only
# Samba's LDAP service runs (no DNS, SMB, Kerberos or NetBIOS).
#
#   tests/ldap/samba.sh install      installs samba, samba-ad-dc, samba-ad-provision, ldap-utils
#                                    and openssl when missing (through sudo when not root),
#                                    without letting the packages start the system's servers
#   tests/ldap/samba.sh installed    exits 0 when they are all there, 1 when not
#   tests/ldap/samba.sh DIR          provisions a domain in DIR (a new or empty folder), starts
#                                    it serving LDAPS on ldaps://127.0.0.1:636/ (Samba's LDAP
#                                    ports are fixed; they must be free, and binding them takes
#                                    root), waits until the service account can bind, then prints
#                                    `export` lines
#   tests/ldap/samba.sh stop DIR     stops the server started in DIR
#
# DIR gets: ca.pem (the throwaway CA to trust; Samba serves a certificate it signed for
# 127.0.0.1), service-password (the service account's password, mode 0600, no trailing
# newline), samba/ (the domain: etc/smb.conf, private/sam.ldb, ...), samba.pid, samba.log.
#
# Domain SSPR (sspr.test), base DN DC=sspr,DC=test. People alice, bob, carol, erin, admin, ops
# in OU=People; groups Team-A (alice), SSPR-Users (carol, erin, and the group Team-A: nested),
# SSPR-Admins (admin, ops) in OU=Groups; the service account sspr-svc in OU=Services, with exactly the
# rights README.md ("Active Directory") asks for: on OU=People and below, the "Reset Password"
# extended right and writing lockoutTime and pwdLastSet; nothing else beyond what every
# authenticated user may read. Domain password policy: complexity on, minimum length 8, history
# 24, no minimum age, locked for 30 minutes after 3 bad passwords. The service account has a
# fine-grained policy that never locks it (a test binding it with a wrong password must not
# lock the whole suite out). A password replaced is refused at once (`old password allowed
# period = 0`; Samba's default lets the previous one in for an hour, as Windows does for NTLM).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/ldap/common.sh
source "$here/common.sh"

realm=SSPR.TEST
domain=SSPR
base_dn=DC=sspr,DC=test
service_dn="CN=sspr-svc,OU=Services,$base_dn"
url=ldaps://127.0.0.1:636

die() { log "samba.sh: $*"; exit 1; }

# --- install ----------------------------------------------------------------------------------
missing_packages() {
  [ -x /usr/sbin/samba ] || echo samba
  command -v samba-tool >/dev/null || echo samba-ad-dc
  [ -d /usr/share/samba/setup/ad-schema ] || echo samba-ad-provision
  { command -v ldapsearch && command -v ldapmodify; } >/dev/null || echo ldap-utils
  command -v openssl >/dev/null || echo openssl
}
packages_missing() { [ -n "$(missing_packages)" ]; }

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then exec sudo bash "$here/samba.sh" install; fi
  log "installing ${missing[*]} (Debian packages)"
  # The packages must not start the system's Samba.
  apt_install_without_starting tests/ldap/samba.sh "${missing[@]}"
  if [ -d /run/systemd/system ]; then
    systemctl disable --now samba-ad-dc.service smbd.service nmbd.service winbind.service >/dev/null 2>&1 || true
  fi
  ! packages_missing || die "still missing after apt-get install: $(missing_packages | tr '\n' ' ')"
  return 0
}

# --- stop -------------------------------------------------------------------------------------
# The start time of process PID in clock ticks since boot (field 22 of /proc/PID/stat, read
# after the command name, which may hold spaces).
start_time() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

stop_server() { # dir
  local dir=$1 pid started
  [ -f "$dir/samba.pid" ] || return 0
  read -r pid started <"$dir/samba.pid" || true
  [ -n "$pid" ] || return 0
  # Only the samba started from this folder: the pid file may be stale. Samba renames its
  # processes, so the process is known by its start time, noted when it was started.
  if [ "$(start_time "$pid")" != "$started" ]; then
    rm -f "$dir/samba.pid"
    return 0
  fi
  # The master and its workers are one process group (it was started as a group leader).
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/samba.pid"; return 0; }
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/samba.pid"
}


# --- start ------------------------------------------------------------------------------------
start_server() { # dir
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  if packages_missing; then bash "$here/samba.sh" install; fi
  [ "$(id -u)" = 0 ] || die "Samba's LDAP service binds port 636: run as root"
  if python3 -c 'import socket; socket.create_connection(("127.0.0.1", 636), 1)' 2>/dev/null; then
    die "127.0.0.1:636 is taken (another directory server is running)"
  fi
  umask 077

  make_tls "$dir" "sspr test AD CA"

  # Random passwords for the domain's Administrator and the service account (complexity: the
  # hex has digits and lower case; the prefix adds upper case and a symbol).
  printf 'Sspr-%s' "$(openssl rand -hex 16)" >"$dir/admin-password"
  printf 'Svc-%s' "$(openssl rand -hex 16)" >"$dir/service-password"
  chmod 0600 "$dir/admin-password" "$dir/service-password"

  local conf="$dir/samba/etc/smb.conf" sam="$dir/samba/private/sam.ldb"
  mkdir -p "$dir/run" "$dir/logs"
  samba-tool domain provision --realm="$realm" --domain="$domain" --server-role=dc \
    --dns-backend=NONE --host-name=dc1 --targetdir="$dir/samba" \
    --adminpass="$(cat "$dir/admin-password")" \
    --option="interfaces = lo" --option="bind interfaces only = yes" \
    --option="server services = ldap" \
    --option="pid directory = $dir/run" --option="log file = $dir/logs/log.%m" \
    --option="tls enabled = yes" --option="tls certfile = $dir/server.pem" \
    --option="tls keyfile = $dir/server.key" --option="tls cafile = $dir/ca.pem" \
    >"$dir/provision.log" 2>&1 || { cat "$dir/provision.log" >&2; die "samba-tool domain provision failed"; }

  # Settings provision leaves out of the file it writes: no Unix password program, and the
  # previous password refused at once.
  sed -i 's/^\[global\]$/[global]\n\tunix password sync = no\n\told password allowed period = 0/' "$conf"
  grep -q 'old password allowed period = 0' "$conf" || die "$conf: the [global] section was not found"

  # The directory, written offline before the server starts.
  tool() { samba-tool "$@" -H "$sam" >>"$dir/setup.log" 2>&1 || { cat "$dir/setup.log" >&2; die "samba-tool $*"; }; }
  tool domain passwordsettings set --complexity=on --min-pwd-length=8 --history-length=24 \
    --min-pwd-age=0 --max-pwd-age=0 --account-lockout-threshold=3 \
    --account-lockout-duration=30 --reset-account-lockout-after=30
  tool ou add "OU=People,$base_dn"
  tool ou add "OU=Groups,$base_dn"
  tool ou add "OU=Services,$base_dn"
  # The people's passwords are the demo passwords (alice and admin as in README.md).
  local who
  for who in alice bob carol erin admin ops; do
    local mail=$who@example.com
    tool user create "$who" "$who-demo-Passw0rd" --userou=OU=People --mail-address="$mail" \
      --given-name="$who" --surname=Example
  done
  tool user create sspr-svc "$(cat "$dir/service-password")" --userou=OU=Services \
    --description="sspr: self-service password reset"
  tool group add Team-A --groupou=OU=Groups
  tool group add SSPR-Users --groupou=OU=Groups
  tool group add SSPR-Admins --groupou=OU=Groups
  tool group addmembers Team-A alice
  tool group addmembers SSPR-Users carol,erin,Team-A
  tool group addmembers SSPR-Admins admin,ops
  # The service account: never locked out by bad binds.
  tool domain passwordsettings pso create sspr-services 10 --account-lockout-threshold=0 \
    --complexity=on --min-pwd-length=8 --history-length=0 --min-pwd-age=0 --max-pwd-age=0
  tool domain passwordsettings pso apply sspr-services sspr-svc

  # Its rights on OU=People and every user below: Reset Password (an extended right), and
  # writing lockoutTime and pwdLastSet. Nothing else is granted.
  local sid
  sid=$(samba-tool user show sspr-svc -H "$sam" --attributes=objectSid | sed -n 's/^objectSid: //p')
  [ -n "$sid" ] || die "no objectSid for sspr-svc"
  local reset_password=00299570-246d-11d0-a768-00aa006e0529
  local lockout_time=28630ebf-41d5-11d1-a9c1-0000f80367c1
  local pwd_last_set=bf967a0a-0de6-11d0-a285-00aa003049e2
  local user_class=bf967aba-0de6-11d0-a285-00aa003049e2
  local ace
  for ace in "OA;CIIO;CR;$reset_password;$user_class;$sid" \
    "OA;CIIO;WP;$lockout_time;$user_class;$sid" \
    "OA;CIIO;WP;$pwd_last_set;$user_class;$sid"; do
    tool dsacl set --objectdn="OU=People,$base_dn" --sddl="($ace)" --action=allow
  done

  # Samba stays in the foreground (-i) with its own process group, so that stopping it stops
  # its workers too; it is not a child of whoever called this script once it exits.
  setsid samba -i -s "$conf" </dev/null >>"$dir/samba.log" 2>&1 &
  local pid=$!
  printf '%s %s\n' "$pid" "$(start_time "$pid")" >"$dir/samba.pid"
  # shellcheck disable=SC2064 # the folder, now
  trap "stop_server $(printf %q "$dir")" EXIT # until it answers

  local ok=
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    if LDAPTLS_CACERT="$dir/ca.pem" LDAPTLS_REQCERT=demand \
      ldapsearch -H "$url" -x -D "$service_dn" -y "$dir/service-password" -b "$base_dn" -s base 1.1 \
      >/dev/null 2>"$dir/whoami.err"; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { cat "$dir/whoami.err" "$dir/samba.log" >&2; die "the service account cannot bind over $url"; }
  rm -f "$dir/whoami.err"
  trap - EXIT

  emit_export SSPR_TEST_AD_URL "$url"
  emit_export SSPR_TEST_AD_CA "$dir/ca.pem"
  emit_export SSPR_TEST_AD_BASE_DN "$base_dn"
  emit_export SSPR_TEST_AD_BIND_DN "$service_dn"
  emit_export SSPR_TEST_AD_PASSWORD_FILE "$dir/service-password"
  emit_export SSPR_TEST_AD_ADMIN_PASSWORD_FILE "$dir/admin-password"
  emit_export SSPR_TEST_AD_PID "$pid"
}

usage() { die "usage: $0 install | $0 installed | $0 DIR | $0 stop DIR"; }
case ${1:-} in
  install) [ $# = 1 ] || usage; install_packages ;;
  installed) [ $# = 1 ] || usage; ! packages_missing ;;
  stop) [ $# = 2 ] || usage; if [ -d "$2" ]; then stop_server "$(cd "$2" && pwd)"; fi ;;
  '') usage ;;
  *) [ $# = 1 ] || usage; start_server "$1" ;;
esac
