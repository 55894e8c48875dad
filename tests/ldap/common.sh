#!/usr/bin/env bash
# What tests/ldap/slapd.sh and tests/ldap/samba.sh share, sourced by both: the export lines
# they print, a Debian install that starts no system service, and a throwaway TLS authority
# with a server certificate for the loopback address.

log() { printf '%s\n' "$*" >&2; }

# An `export NAME='VALUE'` line for the shell (a ' in VALUE becomes '\'').
emit_export() { local q="'\\''"; printf "export %s='%s'\n" "$1" "${2//\'/$q}"; }

# apt_install_without_starting WHO PACKAGE...: installs the packages (as root) while a
# policy-rc.d refuses every service start, when there is none already; WHO names the script
# in the policy file it leaves for the time of the install.
apt_install_without_starting() {
  local who=$1
  shift
  local policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# put here by sspr %s during its apt-get install\nexit 101\n' "$who" >"$policy"
    chmod 0755 "$policy"
    made_policy=1
    # shellcheck disable=SC2064 # the path, now
    trap "rm -f $policy" EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "$@" >/dev/null
  if [ -n "$made_policy" ]; then rm -f "$policy"; trap - EXIT; fi
}

# make_tls DIR CA_NAME: DIR/ca.pem, a throwaway authority (its key thrown away at once), and
# DIR/server.pem with DIR/server.key, a certificate it signed for 127.0.0.1 and localhost;
# P-256 keys, valid 7 days.
make_tls() {
  local dir=$1 ca_name=$2
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -days 7 -subj "/O=sspr tests/CN=$ca_name" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "/O=sspr tests/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  cat >"$dir/server.ext" <<'EOF_EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF_EXT
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 7 -sha256 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.key"
  chmod 0644 "$dir/ca.pem" "$dir/server.pem"
}
