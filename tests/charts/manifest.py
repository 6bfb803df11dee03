#!/usr/bin/env python3
"""Checks on rendered Helm output (`helm template ... | manifest.py CHECK [ARGS]`).

Each check reads the multi-document YAML on stdin, prints what is wrong on stdout and
exits non-zero if anything is; it prints nothing and exits 0 when all is well.

  images                  every container image has a tag, and it is not `latest`
  no-secret-data          no Secret carries data or stringData
  no-secrets              no Secret at all
  labels STORE            every object (and pod template, PVC template) carries
                          app.kubernetes.io/managed-by=Helm and urumi.dev/store=STORE
  setup-script FILE       the setup ConfigMap's setup.sh is FILE, byte for byte
  rbac-least-privilege    no wildcard, no escalate/impersonate/bind except bind with
                          resourceNames, no nodes, no pods/exec|attach|portforward,
                          no ClusterRoleBinding to a built-in powerful role
  fits-quota CPU MEMORY   WordPress + MariaDB + setup Job limits fit CPU/MEMORY (e.g. 1 1536Mi)
  configmap-files NAME DIR
                          writes each data key of ConfigMap NAME to DIR/KEY (the setup
                          Job's files as the chart renders them)
  pins README             every image tag and the WOOCOMMERCE_VERSION / STOREFRONT_VERSION
                          the manifests use appear in README (where their evidence is named)
  network-policy NAME JSON
                          NetworkPolicy NAME has exactly the spec JSON (order of list
                          items ignored)
"""
import sys

import yaml

POD_KINDS = {"Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"}
DANGEROUS_VERBS = {"escalate", "impersonate", "*"}
DANGEROUS_RESOURCES = {"nodes", "nodes/proxy", "pods/exec", "pods/attach", "pods/portforward",
                       "serviceaccounts/token", "certificatesigningrequests/approval",
                       "clusterroles", "clusterrolebindings", "roles",
                       "validatingadmissionpolicies", "validatingadmissionpolicybindings",
                       "mutatingwebhookconfigurations", "validatingwebhookconfigurations"}
# Readable (deletion waits until a store's volumes are gone), never writable.
READ_ONLY_RESOURCES = {"persistentvolumes"}
POWERFUL_ROLES = {"cluster-admin", "admin", "edit", "system:masters"}


def docs():
    return [d for d in yaml.safe_load_all(sys.stdin) if isinstance(d, dict) and d.get("kind")]


def name(d):
    return f"{d['kind']}/{d.get('metadata', {}).get('name')}"


def pod_spec(d):
    spec = d.get("spec", {})
    if d["kind"] in POD_KINDS:
        return spec.get("template", {}).get("spec", {})
    if d["kind"] == "Pod":
        return spec
    return None


def containers(d):
    spec = pod_spec(d) or {}
    return spec.get("initContainers", []) + spec.get("containers", [])


def check_images(objs):
    errors = []
    for d in objs:
        for c in containers(d):
            image = c.get("image", "")
            last = image.rsplit("/", 1)[-1]
            if "@sha256:" in image:
                continue
            if ":" not in last:
                errors.append(f"{name(d)} container {c['name']}: image {image!r} has no tag")
            elif last.split(":", 1)[1] in ("latest", ""):
                errors.append(f"{name(d)} container {c['name']}: image {image!r} is not pinned")
    if not any(containers(d) for d in objs):
        errors.append("no container image rendered at all")
    return errors


def check_secrets(objs, allow_empty):
    errors = []
    for d in objs:
        if d["kind"] != "Secret":
            continue
        if not allow_empty:
            errors.append(f"{name(d)}: the chart renders a Secret")
        elif d.get("data") or d.get("stringData"):
            errors.append(f"{name(d)}: Secret with data/stringData")
    return errors


def check_labels(objs, store):
    errors = []
    want = {"app.kubernetes.io/managed-by": "Helm", "urumi.dev/store": store}

    def check(what, labels):
        for key, value in want.items():
            if (labels or {}).get(key) != value:
                errors.append(f"{what}: label {key}={value} missing (has {(labels or {}).get(key)!r})")

    for d in objs:
        check(name(d), d.get("metadata", {}).get("labels"))
        if pod_spec(d) is not None and d["kind"] != "Pod":
            check(f"{name(d)} pod template", d["spec"]["template"].get("metadata", {}).get("labels"))
        for t in d.get("spec", {}).get("volumeClaimTemplates", []) if d["kind"] == "StatefulSet" else []:
            check(f"{name(d)} volumeClaimTemplate {t['metadata']['name']}", t["metadata"].get("labels"))
    return errors


def check_setup_script(objs, path):
    with open(path, encoding="utf-8") as f:
        want = f.read()
    for d in objs:
        if d["kind"] == "ConfigMap" and "setup.sh" in d.get("data", {}):
            have = d["data"]["setup.sh"]
            if have.rstrip("\n") != want.rstrip("\n"):
                return [f"{name(d)}: setup.sh differs from {path}"]
            return []
    return ["no ConfigMap with setup.sh rendered"]


def check_rbac(objs):
    errors = []
    for d in objs:
        if d["kind"] in ("ClusterRole", "Role"):
            for rule in d.get("rules", []):
                verbs = set(rule.get("verbs", []))
                resources = set(rule.get("resources", []))
                groups = set(rule.get("apiGroups", []))
                where = f"{name(d)} rule {rule}"
                if "*" in verbs or "*" in resources or "*" in groups:
                    errors.append(f"{where}: wildcard")
                if verbs & DANGEROUS_VERBS:
                    errors.append(f"{where}: verb {sorted(verbs & DANGEROUS_VERBS)}")
                if "bind" in verbs and not rule.get("resourceNames"):
                    errors.append(f"{where}: bind without resourceNames")
                bad = resources & DANGEROUS_RESOURCES
                if bad and not (verbs <= {"bind"} and rule.get("resourceNames")):
                    errors.append(f"{where}: touches {sorted(bad)}")
                if "pods" in resources and verbs - {"get", "list", "watch"}:
                    errors.append(f"{where}: writes pods")
                if resources & READ_ONLY_RESOURCES and verbs - {"get", "list", "watch"}:
                    errors.append(f"{where}: writes {sorted(resources & READ_ONLY_RESOURCES)}")
                if "nonResourceURLs" in rule:
                    errors.append(f"{where}: nonResourceURLs")
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            if d.get("roleRef", {}).get("name") in POWERFUL_ROLES:
                errors.append(f"{name(d)}: binds {d['roleRef']['name']}")
    if not any(d["kind"] == "ClusterRole" for d in objs):
        errors.append("no ClusterRole rendered")
    return errors


def quantity(value, unit):
    value = str(value)
    if unit == "cpu":
        return float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    factors = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in factors.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def check_fits(objs, cpu, memory):
    total_cpu = total_mem = 0.0
    pods = 0
    for d in objs:
        if d["kind"] not in POD_KINDS:
            continue
        pods += 1
        spec = pod_spec(d)
        # A pod's effective need: the larger of its biggest init container and its containers' sum.
        sums = {"cpu": 0.0, "memory": 0.0}
        inits = {"cpu": 0.0, "memory": 0.0}
        for c in spec.get("containers", []):
            limits = c.get("resources", {}).get("limits", {})
            if "cpu" not in limits or "memory" not in limits:
                return [f"{name(d)} container {c['name']}: no cpu/memory limit"]
            for unit in sums:
                sums[unit] += quantity(limits[unit], unit)
        for c in spec.get("initContainers", []):
            limits = c.get("resources", {}).get("limits", {})
            for unit in inits:
                inits[unit] = max(inits[unit], quantity(limits.get(unit, 0), unit))
        total_cpu += max(sums["cpu"], inits["cpu"])
        total_mem += max(sums["memory"], inits["memory"])
    errors = []
    if total_cpu > quantity(cpu, "cpu"):
        errors.append(f"limits.cpu of all pods {total_cpu} > {cpu}")
    if total_mem > quantity(memory, "memory"):
        errors.append(f"limits.memory of all pods {total_mem / 2**20:.0f}Mi > {memory}")
    if pods < 3:
        errors.append(f"expected WordPress, MariaDB and the setup Job, found {pods} workloads")
    return errors


def write_configmap_files(objs, cm_name, directory):
    import os
    for d in objs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm_name:
            os.makedirs(directory, exist_ok=True)
            for key, value in (d.get("data") or {}).items():
                with open(os.path.join(directory, key), "w", encoding="utf-8") as f:
                    f.write(value)
            return []
    return [f"no ConfigMap {cm_name} rendered"]


def check_pins(objs, readme):
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    errors, pins = [], []
    for d in objs:
        for c in containers(d):
            pins.append(("image", c["image"]))
            for e in c.get("env", []):
                if e["name"] in ("WOOCOMMERCE_VERSION", "STOREFRONT_VERSION"):
                    pins.append((e["name"], e["value"]))
    for what, value in sorted(set(pins)):
        if f"`{value}`" not in text:
            errors.append(f"{what} {value} is not named in {readme}")
    if not pins:
        errors.append("nothing pinned rendered")
    return errors


def canonical(value):
    """A value with every list sorted, so that rule order does not matter."""
    import json
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def check_network_policy(objs, np_name, want_json):
    import json
    want = canonical(json.loads(want_json))
    for d in objs:
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == np_name:
            have = canonical(d.get("spec", {}))
            if have != want:
                return [f"NetworkPolicy {np_name}:",
                        "  have " + json.dumps(have, sort_keys=True),
                        "  want " + json.dumps(want, sort_keys=True)]
            return []
    return [f"no NetworkPolicy {np_name} rendered"]


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    objs = docs()
    check = argv[1]
    if check == "images":
        errors = check_images(objs)
    elif check == "no-secret-data":
        errors = check_secrets(objs, allow_empty=True)
    elif check == "no-secrets":
        errors = check_secrets(objs, allow_empty=False)
    elif check == "labels":
        errors = check_labels(objs, argv[2])
    elif check == "setup-script":
        errors = check_setup_script(objs, argv[2])
    elif check == "rbac-least-privilege":
        errors = check_rbac(objs)
    elif check == "fits-quota":
        errors = check_fits(objs, argv[2], argv[3])
    elif check == "configmap-files":
        errors = write_configmap_files(objs, argv[2], argv[3])
    elif check == "pins":
        errors = check_pins(objs, argv[2])
    elif check == "network-policy":
        errors = check_network_policy(objs, argv[2], argv[3])
    else:
        print(f"unknown check {check}")
        return 2
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
