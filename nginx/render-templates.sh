#!/bin/sh
# Render NGINX_DIR/templates/*.template into OUTPUT_DIR/*.conf with envsubst.
#
#   render-templates.sh [NGINX_DIR] [OUTPUT_DIR]
#
# NGINX_DIR defaults to this script's directory, OUTPUT_DIR to NGINX_DIR/conf.d. Only the placeholders named in
# NGINX_DIR/defaults.env are substituted, so nginx's own $variables stay as they are; a name the environment leaves
# unset or empty takes its default from that file.
set -eu

nginx_dir=${1:-$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)}
output_dir=${2:-$nginx_dir/conf.d}

names=""
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
        '' | '#'*) continue ;;
    esac
    name=${line%%=*}
    case $name in
        '' | [0-9]* | *[!A-Za-z0-9_]*)
            echo "render-templates.sh: bad line in $nginx_dir/defaults.env: $line" >&2
            exit 1
            ;;
    esac
    if [ -z "$(printenv "$name" || true)" ]; then
        export "$name=${line#*=}"
    fi
    names="$names \${$name}"
done <"$nginx_dir/defaults.env"

mkdir -p "$output_dir"
for template in "$nginx_dir"/templates/*.template; do
    output="$output_dir/$(basename "$template" .template)"
    envsubst "$names" <"$template" >"$output"
    echo "render-templates.sh: $template -> $output"
done
