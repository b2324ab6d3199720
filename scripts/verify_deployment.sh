#!/usr/bin/env bash
# Check a Helm release (or the k8s/ manifests) of the assistant on Kubernetes, with kubectl.
#
#   scripts/verify_deployment.sh [--namespace NS] [--release NAME] [--fullname NAME] [--context CTX] [--wait SECONDS]
#
#   --namespace NS     the namespace (default: assistant)
#   --release NAME     the Helm release (default: assistant; k8s/ manifests: ai-assistant)
#   --fullname NAME    the objects' name prefix, when nameOverride or fullnameOverride changed it
#   --context CTX      the kubeconfig context (default: the current one)
#   --wait SECONDS     how long to wait for the workloads to become ready (default: 0, check once)
#
# Checks, each reported as "ok" or "FAIL": every Deployment and StatefulSet of the release is ready, no pod is
# failing, every Service has endpoints, the orchestrator's /health/ready and /health/detailed (database, model, MCP
# servers) and the frontend's /ready (sessions, orchestrator) answer, both serve /metrics, and PostgreSQL and Redis
# accept connections from the orchestrator's pod. The services are asked from inside their pods (kubectl exec), so
# neither a port-forward nor an exception in the NetworkPolicies is needed. Exit status: 0 every check passed, 1 one
# failed, 2 bad usage.
set -uo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

namespace=assistant
release=assistant
fullname=""
context=()
wait_seconds=0
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --namespace) namespace=${2:?--namespace needs a name}; shift 2 ;;
        --release) release=${2:?--release needs a name}; shift 2 ;;
        --fullname) fullname=${2:?--fullname needs a name}; shift 2 ;;
        --context) context=(--context "${2:?--context needs a name}"); shift 2 ;;
        --wait) wait_seconds=${2:?--wait needs seconds}; shift 2 ;;
        *) echo "verify_deployment.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$fullname" ]; then
    # The chart's naming: the release name when it contains the chart's name, else <release>-ai-assistant.
    case $release in
        *ai-assistant*) fullname=$release ;;
        *) fullname="$release-ai-assistant" ;;
    esac
fi

failures=0
ok() { printf '  ok    %s\n' "$*"; }
failed() {
    printf '  FAIL  %s\n' "$*"
    failures=$((failures + 1))
}
kube() { kubectl "${context[@]}" --namespace "$namespace" "$@"; }
# GET a path from a pod of a Deployment, from inside it, on the port its environment variable names:
#   pod_get DEPLOYMENT CONTAINER PORT_VARIABLE PATH
# (the API server's service proxy would be refused by the NetworkPolicies, and /metrics answers no proxied request)
pod_get() {
    kube exec "deploy/$1" -c "$2" -- python -c '
import os, sys, urllib.error, urllib.request
url = "http://127.0.0.1:" + os.environ[sys.argv[1]] + sys.argv[2]
try:
    with urllib.request.urlopen(url, timeout=10) as response:
        print(response.read().decode())
except urllib.error.HTTPError as error:
    print(error.read().decode())
    sys.exit(1)
except (OSError, KeyError) as error:
    print(error)
    sys.exit(1)
' "$3" "$4" 2>&1
}
selector="app.kubernetes.io/instance=$release"

echo "Release $release in namespace $namespace"

if ! kube get namespace "$namespace" >/dev/null 2>&1 && ! kube get serviceaccounts >/dev/null 2>&1; then
    failed "the cluster answers (kubectl cannot reach it, or the namespace does not exist)"
    echo "1 check failed"
    exit 1
fi

echo "Workloads"
deadline=$((SECONDS + wait_seconds))
while :; do
    workloads=$(kube get deployments,statefulsets -l "$selector" \
        -o jsonpath='{range .items[*]}{.kind}/{.metadata.name} {.status.readyReplicas} {.spec.replicas}{"\n"}{end}' 2>&1)
    pending=$(awk 'NF == 2 || (NF == 3 && $2 < $3)' <<<"$workloads")
    [ -z "$pending" ] || [ "$SECONDS" -ge "$deadline" ] && break
    sleep 5
done
if [ -z "$workloads" ]; then
    failed "no Deployment or StatefulSet is labelled $selector"
else
    while read -r name ready wanted; do
        [ -n "$name" ] || continue
        if [ -z "$wanted" ]; then
            wanted=$ready
            ready=0
        fi
        if [ "${ready:-0}" -ge "$wanted" ]; then ok "$name ready ($ready/$wanted)"; else failed "$name ready (${ready:-0}/$wanted)"; fi
    done <<<"$workloads"
fi
failing=$(kube get pods -l "$selector" \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}' 2>&1 | awk '$2 != "Running" && $2 != "Succeeded"')
if [ -z "$failing" ]; then ok "no pod is failing"; else failed "pods not running: $(tr '\n' ' ' <<<"$failing")"; fi

echo "Endpoints"
endpoints=$(kube get endpoints -l "$selector" \
    -o jsonpath='{range .items[*]}{.metadata.name} {.subsets[*].addresses[*].ip}{"\n"}{end}' 2>&1)
if [ -z "$endpoints" ]; then
    failed "no Service is labelled $selector"
else
    while read -r name addresses; do
        [ -n "$name" ] || continue
        count=$(wc -w <<<"$addresses")
        if [ "$count" -gt 0 ]; then ok "$name has $count endpoint(s)"; else failed "$name has no endpoint (no ready pod behind it)"; fi
    done <<<"$endpoints"
fi

echo "Health"
orchestrator=("$fullname-orchestrator" orchestrator PORT)
frontend=("$fullname-frontend" frontend FRONTEND_PORT)
answer=$(pod_get "${orchestrator[@]}" /health/ready)
if grep -q '"status": *"ok"' <<<"$answer"; then ok "orchestrator /health/ready"; else failed "orchestrator /health/ready: $answer"; fi
detail=$(pod_get "${orchestrator[@]}" /health/detailed)
summary=$(python3 -c '
import json, sys
try:
    body = json.loads(sys.stdin.read())
except ValueError:
    sys.exit(1)
servers = ", ".join(s["id"] + " " + s["status"] for s in body.get("mcp_servers", [])) or "none"
print(body["status"] + ": database " + body["database"]["status"] + ", model " + body["model"]["status"]
      + ", MCP servers: " + servers)
' <<<"$detail")
if [ $? -eq 0 ] && [[ $summary != unavailable* ]]; then ok "orchestrator /health/detailed ($summary)"; else failed "orchestrator /health/detailed: ${summary:-$detail}"; fi
answer=$(pod_get "${frontend[@]}" /ready)
if grep -q '"status": *"ok"' <<<"$answer"; then ok "frontend /ready"; else failed "frontend /ready: $answer"; fi

echo "Metrics"
# The page is read whole before it is searched: "grep -q" would stop reading at the first match, and the writer's
# broken pipe would fail the check under pipefail.
serves_metrics() { local page; page=$(pod_get "$@" /metrics) && grep -q '^# TYPE ' <<<"$page"; }
if serves_metrics "${orchestrator[@]}"; then ok "orchestrator /metrics"; else failed "orchestrator /metrics serves no Prometheus metrics"; fi
if serves_metrics "${frontend[@]}"; then ok "frontend /metrics"; else failed "frontend /metrics serves no Prometheus metrics"; fi

echo "Database and Redis, from the orchestrator's pod"
reachability=$(kube exec "deploy/$fullname-orchestrator" -c orchestrator -- python -c '
import os, socket
from urllib.parse import urlsplit
for name, port in (("DATABASE_URL", 5432), ("REDIS_URL", 6379)):
    url = os.environ.get(name)
    if not url:
        print(f"{name} unset")
        continue
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or port), 5).close()
        print(f"{name} ok {parts.hostname}:{parts.port or port}")
    except OSError as error:
        print(f"{name} fail {parts.hostname}:{parts.port or port} ({error})")
' 2>&1)
while read -r name state rest; do
    [ -n "$name" ] || continue
    case $state in
        ok) ok "$name reachable ($rest)" ;;
        unset) ok "$name not set (not used)" ;;
        fail) failed "$name unreachable: $rest" ;;
        *) failed "cannot run the check in the orchestrator's pod: $name $state $rest" ;;
    esac
done <<<"$reachability"

if [ "$failures" -eq 0 ]; then
    echo "Every check passed"
    exit 0
fi
echo "$failures check(s) failed"
exit 1
