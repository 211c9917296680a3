#!/usr/bin/env bash
# Set up (see setup.sh) and run the whole test suite: unit tests and
# integration tests against a real Dovecot started on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec pnpm test "$@"
