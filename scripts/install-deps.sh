#!/bin/sh
# Installs what seslog needs to build and test, on Debian or Ubuntu.
# Idempotent and quiet when everything is there already.
#   C libraries: libuv, http-parser, SQLite, libcurl, cJSON, OpenSSL, c-ares
#   tools: pkg-config, sqlite3 (tests inspect the database), clang (make asan,
#   fuzzing), nodejs + npm (end-to-end tests), chromium (browser tests),
#   systemd (systemd-analyze checks the unit)
#   npm packages (test only): see tests/package.json
set -e
cd "$(dirname "$0")/.."

PKGS="build-essential pkg-config libuv1-dev libhttp-parser-dev libsqlite3-dev libcurl4-openssl-dev
libcjson-dev libssl-dev libc-ares-dev libzstd-dev zlib1g-dev sqlite3 clang libclang-rt-14-dev ca-certificates curl chromium"
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# The DynamoDB tests look at the table with Debian's aws CLI (/usr/bin/aws).
PKGS="$PKGS awscli"
# The install test checks scripts/seslog.service with systemd-analyze verify.
PKGS="$PKGS systemd"
# The import tests measure peak memory with GNU time (/usr/bin/time) and give
# the command a terminal with script(1) (bsdutils).
PKGS="$PKGS time bsdutils"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install-deps: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Test packages from npm, only when tests/package.json asks for some.
if [ -f tests/package.json ] && grep -q '"dependencies"' tests/package.json; then
  if [ ! -d tests/node_modules ] || [ tests/package.json -nt tests/node_modules ]; then
    echo "install-deps: installing npm test packages"
    (cd tests && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    touch tests/node_modules
  fi
fi
