#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: nginx (in front of the services), Chromium (the
# browser tests), npm (which installs tools/node) and Prometheus (its promtool checks and unit-tests the alert rules
# and dashboards in monitoring/). Debian/Ubuntu; does nothing when they are already there.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# Prometheus without its recommends (its node exporter, which nothing here needs).
lean=()
command -v promtool >/dev/null 2>&1 || lean+=(prometheus)
[ ${#missing[@]} -eq 0 ] && [ ${#lean[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo)
else
    echo "The tests need: ${missing[*]} ${lean[*]}. Install them with: sudo apt-get install -y ${missing[*]} ${lean[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "The tests need: ${missing[*]} ${lean[*]} (no apt-get here; install them with your package manager)" >&2
    exit 1
fi

echo "Installing ${missing[*]} ${lean[*]} ..."
export DEBIAN_FRONTEND=noninteractive
install() {
    "${as_root[@]}" apt-get install -y -q "$@" >/dev/null \
        || { "${as_root[@]}" apt-get update -q >/dev/null && "${as_root[@]}" apt-get install -y -q "$@" >/dev/null; }
}
[ ${#missing[@]} -eq 0 ] || install "${missing[@]}"
[ ${#lean[@]} -eq 0 ] || install --no-install-recommends "${lean[@]}"
# Debian starts the packaged nginx on port 80; the tests run their own instances.
if [[ " ${missing[*]} " == *" nginx "* ]]; then
    "${as_root[@]}" nginx -s quit 2>/dev/null || true
fi
