#!/usr/bin/env bash
# Providers' own webhook libraries, used by crates/switchyard-webhooks tests to sign requests
# with code that is not ours.
#
#   scripts/peers/webhook-libs.sh            install (idempotent): PyPI packages into .peers/venv,
#                                            npm packages into .peers/node
#   scripts/peers/webhook-libs.sh env        print the export lines the tests read
#
# Then:
#   export SWITCHYARD_TEST_PEERS_PYTHON=$PWD/.peers/venv/bin/python
#   export SWITCHYARD_TEST_PEERS_NODE_MODULES=$PWD/.peers/node/node_modules
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=retry.sh
source "$ROOT/scripts/peers/retry.sh"
PEERS="$ROOT/.peers"
VENV="$PEERS/venv"
NODE_DIR="$PEERS/node"

# Pinned below a major so a new release cannot change what the tests sign.
PY_PACKAGES=(
  'standardwebhooks>=1.0,<2'
  'svix>=1.40,<2'
  'stripe>=10,<15'
  'slack_sdk>=3.26,<4'
  'twilio>=9,<10'
  'cryptography>=42'
)
# Module names that must import, in the order of PY_PACKAGES.
PY_MODULES="standardwebhooks, svix, stripe, slack_sdk.signature, twilio.request_validator, cryptography"
NPM_PACKAGES=(
  '@octokit/webhooks-methods@5'
  'oauth2-mock-server@8.2.3'
)

install_python() {
  mkdir -p "$PEERS"
  if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import $PY_MODULES" >/dev/null 2>&1; then
    retry "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
  fi
}

install_node() {
  mkdir -p "$NODE_DIR"
  if [[ ! -f "$NODE_DIR/package.json" ]]; then
    printf '{ "name": "switchyard-test-peers", "private": true }\n' >"$NODE_DIR/package.json"
  fi
  if [[ ! -f "$NODE_DIR/node_modules/@octokit/webhooks-methods/package.json" ]] ||
    ! grep -q '"version": "8.2.3"' "$NODE_DIR/node_modules/oauth2-mock-server/package.json" 2>/dev/null; then
    (cd "$NODE_DIR" && retry npm install --silent --no-audit --no-fund "${NPM_PACKAGES[@]}")
  fi
}

print_env() {
  echo "export SWITCHYARD_TEST_PEERS_PYTHON=$VENV/bin/python"
  echo "export SWITCHYARD_TEST_PEERS_NODE_MODULES=$NODE_DIR/node_modules"
}

case "${1:-install}" in
  install) install_python; install_node ;;
  env) print_env ;;
  *) echo "usage: $0 [install|env]" >&2; exit 2 ;;
esac
