#!/usr/bin/env python3
"""Checks each service's CodeBuild spec: valid YAML, version 0.2, and the four steps the
pipeline promises — run the tests, build the image, push it, roll out and wait."""
import json
import os
import pathlib
import sys

import yaml

# The fleet's services (crates/fleet; k8s/validate.sh passes `fleet json`).
if "HOUSEBOOK_FLEET_JSON" not in os.environ:
    sys.exit("buildspec/check.py: HOUSEBOOK_FLEET_JSON is not set (k8s/validate.sh sets it from `fleet json`)")
SERVICES = [s["name"] for s in json.loads(os.environ["HOUSEBOOK_FLEET_JSON"])["services"]]
passed, failed = 0, []
for svc in SERVICES:
    path = pathlib.Path(__file__).parent / svc / "buildspec.yml"
    try:
        spec = yaml.safe_load(path.read_text())
        commands = "\n".join(c for phase in spec["phases"].values() for c in phase.get("commands", []))
        checks = {
            "version 0.2": spec.get("version") == 0.2,
            "names its service": spec["env"]["variables"]["SERVICE"] == svc,
            "runs the tests": "./dev test" in commands,
            "builds the image": "docker build --build-arg SERVICE=" in commands,
            "pushes to ECR": "docker push" in commands and "ecr get-login-password" in commands,
            "rolls out": "set image" in commands and "rollout status" in commands,
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        checks = {f"readable ({e})": False}
    for what, ok in checks.items():
        if ok:
            passed += 1
        else:
            failed.append(f"{svc}: {what}")
for f in failed:
    print(f"  FAILED: {f}")
print(f"buildspec: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
