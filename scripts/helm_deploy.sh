#!/usr/bin/env bash
# Deploy (install or upgrade) the chart with Helm, the images of one version; roll back if it does not become ready.
#
#   scripts/helm_deploy.sh [--help]
#
# Read from the environment (the GitHub and GitLab pipelines set them):
#   VERSION             image tag to deploy (a commit SHA or a version)                        required
#   NAMESPACE           Kubernetes namespace (created when missing)                            default: assistant
#   RELEASE             Helm release name                                                      default: assistant
#   IMAGE_REGISTRY      registry of the images                                                 default: ghcr.io
#   IMAGE_PREFIX        path of the images in it (<prefix>/orchestrator, ...)                  default: $OWNER, lower-cased
#   VALUES_FILE         a values file to apply (the environment's settings)                    optional
#   KUBECONFIG_CONTENT  a kubeconfig, written to a private temporary file                      optional (else KUBECONFIG)
#   TIMEOUT             how long Helm waits for the release to become ready                    default: 15m
set -euo pipefail

case "${1:-}" in
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    "") ;;
    *)
        echo "helm_deploy.sh: unknown argument $1 (see --help)" >&2
        exit 2
        ;;
esac

: "${VERSION:?set VERSION, the image tag to deploy}"
namespace=${NAMESPACE:-assistant}
release=${RELEASE:-assistant}
registry=${IMAGE_REGISTRY-ghcr.io}
prefix=${IMAGE_PREFIX:-${OWNER:-}}
prefix=${prefix,,}
: "${prefix:?set IMAGE_PREFIX (or OWNER), the path of the images in the registry}"
chart="$(cd "$(dirname "$0")/.." && pwd)/helm/ai-assistant"

if [ -n "${KUBECONFIG_CONTENT:-}" ]; then
    KUBECONFIG="$(mktemp)"
    export KUBECONFIG
    trap 'rm -f "$KUBECONFIG"' EXIT
    chmod 600 "$KUBECONFIG"
    printf '%s' "$KUBECONFIG_CONTENT" >"$KUBECONFIG"
fi

arguments=(
    upgrade --install "$release" "$chart"
    --namespace "$namespace" --create-namespace
    --wait --timeout "${TIMEOUT:-15m}"
    --set-string "imageRegistry=$registry"
)
for image in orchestrator frontend; do
    arguments+=(--set-string "$image.image.repository=$prefix/$image" --set-string "$image.image.tag=$VERSION")
done
arguments+=(--set-string "mcpServers.image.repository=$prefix/mcp-servers" --set-string "mcpServers.image.tag=$VERSION")
if [ -n "${VALUES_FILE:-}" ]; then
    arguments+=(--values "$VALUES_FILE")
fi

echo "helm_deploy.sh: deploying $VERSION as release $release in namespace $namespace"
if ! helm "${arguments[@]}"; then
    echo "helm_deploy.sh: the release did not become ready; rolling back to the previous revision" >&2
    helm rollback "$release" 0 --namespace "$namespace" --wait --timeout "${TIMEOUT:-15m}" || true
    exit 1
fi
helm history "$release" --namespace "$namespace" --max 3
