#!/usr/bin/env python3
"""Validates every Strimzi resource of the manifests against the CRDs of the Strimzi
release the deploy recipe installs (vendored, with its licence, in k8s/vendor/strimzi-*),
the way a cluster with that operator would take them, and more strictly:

- its apiVersion is one that release serves (1.x serves kafka.strimzi.io/v1 only);
- it matches the CRD's schema, and a field the schema does not name is an error (the API
  server would prune it silently: a misspelt setting that does nothing);
- a Kafka's version is one the release supports (its kafka-versions.yaml), and its
  metadataVersion that version's.

    strimzi.py VENDOR_DIR MANIFESTS.yaml...
    strimzi.py --self-test VENDOR_DIR MANIFESTS.yaml   # each kind of mistake is caught
"""

import copy
import glob
import os
import sys

import jsonschema
import yaml

GROUP = "kafka.strimzi.io"


def strict(schema):
    """The schema with every object that names its properties closed to others, unless
    it keeps unknown fields on purpose (a Kafka's `config`)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        if out.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def load_release(vendor):
    """The release's CRDs by kind ({version: schema} of the served ones) and its Kafka
    versions ({version: metadata} of the supported ones)."""
    kinds = {}
    for path in sorted(glob.glob(os.path.join(vendor, "*-Crd-*.yaml"))):
        with open(path) as f:
            crd = yaml.safe_load(f)
        assert crd["spec"]["group"] == GROUP, path
        kinds[crd["spec"]["names"]["kind"]] = {
            v["name"]: strict(v["schema"]["openAPIV3Schema"])
            for v in crd["spec"]["versions"] if v.get("served")
        }
    with open(os.path.join(vendor, "kafka-versions.yaml")) as f:
        versions = {v["version"]: v["metadata"] for v in yaml.safe_load(f) if v.get("supported")}
    return kinds, versions


def problems(docs, kinds, versions):
    """What a cluster running the release would refuse, or silently drop, of `docs`."""
    found = []
    for d in docs:
        api = d.get("apiVersion", "")
        if not api.startswith(GROUP + "/"):
            continue
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        what = f"{kind}/{name}"
        served = kinds.get(kind)
        if served is None:
            found.append(f"{what}: no CRD for kind {kind} in the release")
            continue
        version = api.split("/", 1)[1]
        if version not in served:
            found.append(f"{what}: {api} is not served (the release serves {', '.join(sorted(served))})")
            continue
        validator = jsonschema.Draft7Validator(served[version])
        for e in sorted(validator.iter_errors(d), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in e.absolute_path)
            found.append(f"{what}: {path or '(top)'}: {e.message}")
        if kind == "Kafka":
            kafka = d.get("spec", {}).get("kafka", {})
            v = kafka.get("version")
            if v not in versions:
                found.append(f"{what}: Kafka {v} is not supported by the release (it supports {', '.join(versions)})")
            elif kafka.get("metadataVersion") not in (None, versions[v]):
                found.append(f"{what}: metadataVersion {kafka.get('metadataVersion')} is not Kafka {v}'s ({versions[v]})")
    return found


def load_docs(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return docs


def self_test(vendor, path):
    """Each kind of mistake, made in a copy of the manifests, must be caught; the
    manifests as they are must pass."""
    kinds, versions = load_release(vendor)
    docs = load_docs([path])
    assert not problems(docs, kinds, versions), problems(docs, kinds, versions)

    def first(kind):
        return next(d for d in docs if d.get("kind") == kind)

    def broken(change):
        mutated = copy.deepcopy(docs)
        change(mutated)
        return problems(mutated, kinds, versions)

    def kind_in(ds, kind):
        return next(d for d in ds if d.get("kind") == kind)

    with open(os.path.join(vendor, "kafka-versions.yaml")) as f:
        unsupported = [v["version"] for v in yaml.safe_load(f) if not v.get("supported")]
    cases = {
        "a Kafka version the release no longer supports":
            lambda ds: kind_in(ds, "Kafka")["spec"]["kafka"].__setitem__("version", unsupported[-1]),
        "a Kafka version that does not exist":
            lambda ds: kind_in(ds, "Kafka")["spec"]["kafka"].__setitem__("version", "9.9.9"),
        "a metadataVersion of another Kafka":
            lambda ds: kind_in(ds, "Kafka")["spec"]["kafka"].__setitem__("metadataVersion", "3.9-IV0"),
        "an API version the release does not serve":
            lambda ds: kind_in(ds, "KafkaTopic").__setitem__("apiVersion", f"{GROUP}/v1beta2"),
        "a field the schema does not name":
            lambda ds: kind_in(ds, "KafkaTopic")["spec"].__setitem__("partitons", 3),
        "a value of the wrong type":
            lambda ds: kind_in(ds, "KafkaNodePool")["spec"].__setitem__("replicas", "three"),
        "an ACL in the old API's shape (operation, not operations)":
            lambda ds: kind_in(ds, "KafkaUser")["spec"]["authorization"]["acls"][0].__setitem__("operation", "Read"),
        "a listener of an unknown type":
            lambda ds: kind_in(ds, "Kafka")["spec"]["kafka"]["listeners"][0].__setitem__("type", "public"),
    }
    assert first("Kafka") and first("KafkaTopic") and first("KafkaUser") and first("KafkaNodePool")
    missed = [what for what, change in cases.items() if not broken(change)]
    if missed:
        sys.exit(f"strimzi.py self-test: not caught: {missed}")
    print(f"strimzi: self-test: each of {len(cases)} kinds of mistake is caught")


def main(argv):
    if argv[:1] == ["--self-test"]:
        self_test(argv[1], argv[2])
        return
    vendor, paths = argv[0], argv[1:]
    kinds, versions = load_release(vendor)
    docs = load_docs(paths)
    found = problems(docs, kinds, versions)
    count = sum(1 for d in docs if d.get("apiVersion", "").startswith(GROUP + "/"))
    if found:
        sys.exit("strimzi: " + "\n  ".join([f"{len(found)} problem(s) against {os.path.basename(vendor)}:"] + found))
    print(f"strimzi: {count} resources valid against {os.path.basename(vendor)}'s CRDs and Kafka versions")


if __name__ == "__main__":
    main(sys.argv[1:])
