#!/usr/bin/env bash
# Make a self-signed TLS certificate for nginx, for development and tests:
#
#   scripts/make-self-signed-cert.sh [DIR] [HOSTNAME]
#
# writes DIR/tls.crt and DIR/tls.key (DIR defaults to nginx/certs, HOSTNAME to localhost). The certificate names
# HOSTNAME, localhost and 127.0.0.1, and is valid for 365 days. Browsers warn about it: production needs a
# certificate from a real authority.
set -euo pipefail

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$repo_root/nginx/certs}
hostname=${2:-localhost}

command -v openssl >/dev/null || {
    echo "make-self-signed-cert.sh: openssl is not installed" >&2
    exit 1
}

names="DNS:localhost,IP:127.0.0.1"
if [[ $hostname =~ ^[0-9.]+$ || $hostname == *:* ]]; then
    [[ $hostname == 127.0.0.1 ]] || names="IP:$hostname,$names"
elif [[ $hostname != localhost ]]; then
    names="DNS:$hostname,$names"
fi

mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 365 \
    -subj "/CN=$hostname" \
    -addext "subjectAltName=$names" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
chmod 600 "$dir/tls.key"
chmod 644 "$dir/tls.crt"
echo "wrote $dir/tls.crt and $dir/tls.key for $hostname"
