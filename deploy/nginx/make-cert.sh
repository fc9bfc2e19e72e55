#!/bin/sh
# A self-signed certificate for trying the compose setup: tls.crt / tls.key in $1
# (default deploy/nginx/certs), valid for "nginx" (the compose service) and localhost.
# Clients trust it with `loadtool run --ca-file <dir>/tls.crt`. Use a real certificate
# in production.
set -eu
dir="${1:-deploy/nginx/certs}"
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=nginx" \
    -addext "subjectAltName=DNS:nginx,DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt"
chmod 644 "$dir/tls.key"  # read by the nginx container's workers; a trial certificate only
echo "wrote $dir/tls.crt and $dir/tls.key"
