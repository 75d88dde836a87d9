#!/usr/bin/env bash
# Checks a cluster has what the manifests need before `kubectl apply -k`: the current
# context answers, and the custom resources of the operators the fleet relies on are
# installed (k8s/check.py's PREREQUISITES; docs/deploy.md "What a cluster needs first"). Says what
# to install for each one missing; changes nothing.
#
#   k8s/preflight.sh               # the current kubectl context
#   k8s/preflight.sh --no-ingress  # without an ingress controller (kind.sh: it forwards a port)
set -uo pipefail
ingress=1
case "${1:-}" in
    --no-ingress) ingress="" ;;
    "") ;;
    *) echo "usage: k8s/preflight.sh [--no-ingress]"; exit 2 ;;
esac
command -v kubectl >/dev/null || { echo "preflight: kubectl is needed"; exit 1; }
kubectl version --request-timeout=5s >/dev/null 2>&1 \
    || { echo "preflight: no cluster answers on the current kubectl context ($(kubectl config current-context 2>/dev/null || echo none))"; exit 1; }
missing=0
need() {   # CRD, what provides it
    if kubectl get crd "$1" >/dev/null 2>&1; then
        echo "preflight: $1 installed"
    else
        echo "preflight: MISSING $1 — install $2"
        missing=1
    fi
}
# The versions k8s/kind.sh and docs/deploy.md install (the manifests are validated against them).
strimzi="the Strimzi operator 1.2.0: helm install strimzi-cluster-operator oci://quay.io/strimzi-helm/strimzi-kafka-operator --version 1.2.0 -n housebook"
prom="the Prometheus operator: helm repo add prometheus-community https://prometheus-community.github.io/helm-charts; helm install prometheus prometheus-community/kube-prometheus-stack --version 88.5.3 -n monitoring --create-namespace"
need kafkas.kafka.strimzi.io "$strimzi"
need kafkanodepools.kafka.strimzi.io "$strimzi"
need kafkatopics.kafka.strimzi.io "$strimzi"
need kafkausers.kafka.strimzi.io "$strimzi"
need podmonitors.monitoring.coreos.com "$prom"
need prometheusrules.monitoring.coreos.com "$prom"
if [[ -z "$ingress" ]]; then
    echo "preflight: no ingress controller asked for"
elif kubectl get ingressclass -o name 2>/dev/null | grep -q .; then
    echo "preflight: an IngressClass exists"
else
    echo "preflight: MISSING an ingress controller — kind: none (k8s/kind.sh forwards a port instead); minikube: 'minikube addons enable ingress'; EKS: the AWS Load Balancer Controller"
    missing=1
fi
exit "$missing"
