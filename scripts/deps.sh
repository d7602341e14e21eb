#!/bin/sh
# Installs the Debian packages Strata needs to build and test, when run as root;
# otherwise prints the exact apt-get line and fails, so nothing half-builds.
set -eu
PACKAGES="cmake make gcc libc6-dev clang libclang-rt-14-dev pkg-config libcmocka-dev libcjson-dev libutf8proc-dev libssl-dev libcurl4-openssl-dev libedit-dev libmicrohttpd-dev"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# Node.js and npm run the official npm clients in the end-to-end tests. They are checked as
# commands, not packages: a machine may have them from another source (nodesource's nodejs
# bundles npm, and Debian's npm package would conflict with it).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "deps: missing packages; run as root:" >&2
    echo "  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
