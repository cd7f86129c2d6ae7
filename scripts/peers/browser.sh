#!/usr/bin/env bash
# A real browser for end-to-end tests of the web UI and the OAuth connect flows: Debian's
# chromium (and chromium-driver, for WebDriver clients), driven by npm playwright-core through
# scripts/peers/browser.mjs.
#
#   scripts/peers/browser.sh            install (idempotent): apt chromium + chromium-driver,
#                                       npm playwright-core into .peers/browser
#   scripts/peers/browser.sh env        print the export line the tests read
#
# Then: export SWITCHYARD_TEST_BROWSER=$PWD/.peers/browser
#
# playwright-core gets its own npm prefix so installing other npm peers can neither remove nor
# upgrade it. It never downloads a browser: browser.mjs launches /usr/bin/chromium.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=retry.sh
source "$ROOT/scripts/peers/retry.sh"
PREFIX="$ROOT/.peers/browser"
# Pinned: a release whose CDP client drives Debian's Chromium 156 and whose engines accept Node 20.
PLAYWRIGHT_VERSION="1.65.2"

installed_playwright() {
  node -p "require('$PREFIX/node_modules/playwright-core/package.json').version" 2>/dev/null || true
}

install_chromium() {
  if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    return 0
  fi
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    sudo=(sudo)
  fi
  retry "${sudo[@]}" apt-get update -qq
  retry "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-liberation
}

install_playwright() {
  mkdir -p "$PREFIX"
  if [[ "$(installed_playwright)" != "$PLAYWRIGHT_VERSION" ]]; then
    # Skip the browser download: the Debian chromium above is the one the tests use.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 retry npm install --prefix "$PREFIX" --no-audit --no-fund \
      --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION"
  fi
}

print_env() {
  echo "export SWITCHYARD_TEST_BROWSER=$PREFIX"
}

case "${1:-install}" in
  install) install_chromium; install_playwright ;;
  env) print_env ;;
  *) echo "usage: $0 [install|env]" >&2; exit 2 ;;
esac
