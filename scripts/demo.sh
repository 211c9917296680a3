#!/usr/bin/env bash
# Set up (see setup.sh), then run mailfront in front of a throwaway local
# Dovecot with a demo user, and print how to connect. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec node scripts/demo.mjs "$@"
