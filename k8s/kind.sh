#!/usr/bin/env bash
# The local Kubernetes path, end to end, on kind: a cluster, the operators the manifests
# need (pinned: the versions the manifests are validated against), the fleet's images
# built by version and loaded, the local overlay applied, every rollout waited for, then
# the gateway forwarded to http://127.0.0.1:8088 (Ctrl-C ends the forward; the cluster
# stays: `kind delete cluster --name housebook` removes it).
#
#   k8s/kind.sh             # needs docker, kind, kubectl and helm
#   k8s/kind.sh --dry-run   # prints every command it would run and runs none (./dev test
#                           # runs it, through k8s/validate.sh)
#
# No ingress controller is installed: on kind the gateway is reached by the forward, and
# the overlay's Ingress stays unserved (its annotations are ingress-nginx's, a project
# retired upstream in March 2026; docs/deploy.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

DRY=""
case "${1:-}" in
    --dry-run) DRY=1 ;;
    "") ;;
    *) echo "usage: k8s/kind.sh [--dry-run]" >&2; exit 2 ;;
esac

CLUSTER="${KIND_CLUSTER:-housebook}"
NAMESPACE=housebook
# The Strimzi release whose CRDs and Kafka versions k8s/validate.sh checks the manifests
# against (k8s/vendor/strimzi-$STRIMZI_VERSION), and the Prometheus operator's chart.
STRIMZI_VERSION=1.2.0
PROMETHEUS_STACK_VERSION=88.5.3
# Images by the workspace's version, as the overlays name them (k8s/check.py holds them to it).
VERSION=$(awk -F'"' '/^\[workspace.package\]/ { p = 1 } p && /^version *=/ { print $2; exit }' "$ROOT/Cargo.toml")
[[ -n "$VERSION" ]] || { echo "kind.sh: no version in Cargo.toml's [workspace.package]" >&2; exit 1; }
mapfile -t SERVICES < <(find "$ROOT/k8s/base/services" -name '*.yaml' -printf '%f\n' | sed 's/\.yaml$//' | sort)
[[ -d "$ROOT/k8s/vendor/strimzi-$STRIMZI_VERSION" ]] ||
    { echo "kind.sh: Strimzi $STRIMZI_VERSION is not the release the manifests are validated against (k8s/vendor)" >&2; exit 1; }

# Runs a command, or with --dry-run only prints it.
run() {
    printf '+ %s\n' "$*"
    [[ -n "$DRY" ]] || "$@"
}

if [[ -z "$DRY" ]]; then
    for tool in docker kind kubectl helm; do
        command -v "$tool" >/dev/null || { echo "kind.sh: $tool is needed" >&2; exit 1; }
    done
fi

# 1. The cluster, unless it exists.
if [[ -n "$DRY" ]] || ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    run kind create cluster --name "$CLUSTER" --wait 120s
fi
run kubectl config use-context "kind-$CLUSTER"

# 2. The operators: Strimzi (Kafka) in the fleet's namespace, the Prometheus operator
#    with Prometheus and Grafana in monitoring.
run kubectl apply -f "$ROOT/k8s/base/namespace.yaml"
run helm upgrade --install strimzi-cluster-operator oci://quay.io/strimzi-helm/strimzi-kafka-operator \
    --version "$STRIMZI_VERSION" --namespace "$NAMESPACE" --wait --timeout 10m
run helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
run helm upgrade --install prometheus prometheus-community/kube-prometheus-stack \
    --version "$PROMETHEUS_STACK_VERSION" --namespace monitoring --create-namespace --wait --timeout 15m

# 3. The images, by version, loaded into the cluster's nodes.
for s in "${SERVICES[@]}"; do
    run docker build --build-arg SERVICE="$s" -t "housebook/$s:$VERSION" "$ROOT"
    run kind load docker-image "housebook/$s:$VERSION" --name "$CLUSTER"
done

# 4. The fleet, once the cluster has what it needs.
run "$ROOT/k8s/preflight.sh" --no-ingress
run kubectl apply -k "$ROOT/k8s/overlays/local"
run kubectl -n "$NAMESPACE" wait kafka/housebook --for=condition=Ready --timeout=15m
run kubectl -n "$NAMESPACE" rollout status statefulset/postgres --timeout=10m
for s in "${SERVICES[@]}"; do
    run kubectl -n "$NAMESPACE" rollout status "deployment/$s" --timeout=10m
done

# 5. The gateway on 127.0.0.1:8088, as ./dev serves it: the walkthrough (./dev demo) and
#    the storefront work against it as they are.
echo "kind.sh: the fleet is ready; forwarding http://127.0.0.1:8088 to the gateway (Ctrl-C stops the forward)"
run kubectl -n "$NAMESPACE" port-forward service/gateway 8088:80
