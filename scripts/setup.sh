#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (as root, or with sudo) to build, run and
# test mailfront: Debian's Dovecot (the backend the demo and the tests run
# against), OpenLDAP, PostgreSQL and HAProxy (started by the tests on free
# loopback ports, never as system services), pnpm, the packages, and a build.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

APT_PACKAGES=(
  dovecot-core dovecot-imapd dovecot-pop3d dovecot-submissiond   # the real backend
  slapd ldap-utils                                               # a real directory (LDAP auth tests)
  postgresql                                                     # the shared store of a multi-node fleet
  haproxy                                                        # the layer-4 balancer in front of nodes
  python3 curl openssl ca-certificates                           # real clients used by the tests
  make g++                                                       # better-sqlite3 compiles from source
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  # policy-rc.d keeps the packaged system services from starting: mailfront's
  # tests and demo start their own Dovecot on free loopback ports.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
if ! command -v pnpm >/dev/null 2>&1; then
  echo "setup: installing pnpm 10"
  npm install -g pnpm@10 >/dev/null
fi

# node-gyp builds better-sqlite3 against the system's Node headers.
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
pnpm install --frozen-lockfile --reporter=append-only
pnpm build
