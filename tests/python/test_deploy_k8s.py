"""deploy/k8s: the Kustomize overlays render, validate against the Kubernetes schemas, and agree
with each other, with the image and with `radix serve` (flags, routes, metrics).

The overlays are rendered by a small Kustomize subset written here (resources, components,
strategic-merge patches, images), so the test needs no kustomize binary; where `kubectl` or
`kustomize` is installed, the render is also compared with theirs. Schemas come from the
kubernetes-validate package (tests/python/requirements.txt), offline.
"""
import copy
import pathlib
import re
import shutil
import subprocess

import pytest

from test_server_helpers import start_server  # noqa: F401  (fixture)

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: pip install -r tests/python/requirements.txt")

REPO = pathlib.Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ["cpu", "gpu"]
AFFINITY_HEADER = "x-radix-affinity"


# ---- a Kustomize subset ---------------------------------------------------------------------

# List fields merged item by item on `name` (their patchMergeKey in the Kubernetes API); every
# other list in a patch replaces the original, as strategic merge does for them.
MERGE_BY_NAME = {"containers", "initContainers", "env", "volumes", "volumeMounts"}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "components", "patches", "images"}


def load_docs(path: pathlib.Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def merge(base, patch, key=None):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if key in MERGE_BY_NAME and isinstance(base, list) and isinstance(patch, list):
        by_name = {item["name"]: i for i, item in enumerate(base)}
        out = list(base)
        for item in patch:
            if item["name"] in by_name:
                out[by_name[item["name"]]] = merge(base[by_name[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def pod_containers(resource):
    spec = resource.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def set_images(resources, images):
    for image in images:
        unknown = set(image) - {"name", "newName", "newTag"}
        assert not unknown, f"images: this renderer does not know {unknown}"
        for r in resources:
            for c in pod_containers(r):
                name, _, tag = c["image"].partition(":")
                if name == image["name"]:
                    c["image"] = image.get("newName", name) + ":" + image.get("newTag", tag or "latest")


def apply_kustomization(folder: pathlib.Path, resources: list, kind: str) -> list:
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert k["kind"] == kind, f"{folder}: expected a {kind}"
    unknown = set(k) - KUSTOMIZATION_KEYS
    assert not unknown, f"{folder}: this renderer does not know {unknown}; extend it or drop them"
    for entry in k.get("resources", []):
        path = folder / entry
        resources += render(path) if path.is_dir() else load_docs(path)
    for entry in k.get("components", []):
        resources = apply_kustomization(folder / entry, resources, "Component")
    for p in k.get("patches", []):
        assert set(p) == {"path"}, f"{folder}: only file patches are supported, got {p}"
        for patch in load_docs(folder / p["path"]):
            hits = [i for i, r in enumerate(resources)
                    if r["kind"] == patch["kind"] and r["metadata"]["name"] == patch["metadata"]["name"]]
            assert len(hits) == 1, f"{folder}/{p['path']}: patch matches {len(hits)} resources"
            resources[hits[0]] = merge(resources[hits[0]], patch)
    set_images(resources, k.get("images", []))
    return resources


def render(folder: pathlib.Path) -> list:
    return apply_kustomization(folder, [], "Kustomization")


def normalized(resources):
    """Order-free form: resources by kind/name, lists of named items by name."""
    def norm(x):
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, list):
            items = [norm(v) for v in x]
            if items and all(isinstance(v, dict) and "name" in v for v in items):
                items.sort(key=lambda v: str(v["name"]))
            return items
        return x
    return sorted((norm(r) for r in resources), key=lambda r: (r["kind"], r["metadata"]["name"]))


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request):
    return request.param, render(K8S / "overlays" / request.param)


def one(resources, kind):
    found = [r for r in resources if r["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} resources"
    return found[0]


def container(resources):
    containers = one(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(resources):
    return {e["name"]: e.get("value") for e in container(resources)["env"]}


# ---- rendering and schemas ------------------------------------------------------------------

def test_overlays_hold_the_resources_a_deployment_needs(overlay):
    _, resources = overlay
    kinds = sorted(r["kind"] for r in resources)
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_render_matches_kustomize(name):
    tool = shutil.which("kustomize") or shutil.which("kubectl")
    if tool is None:
        pytest.skip("neither kustomize nor kubectl is installed: the render is checked by schema only")
    cmd = [tool, "build"] if tool.endswith("kustomize") else [tool, "kustomize"]
    out = subprocess.run(cmd + [str(K8S / "overlays" / name)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert normalized(render(K8S / "overlays" / name)) == normalized(theirs)


def schema_versions():
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed: pip install -r tests/python/requirements.txt")
    # The oldest release still common in managed clusters, and the newest the package knows.
    return kv, ["1.29.0", kv.utils.latest_version()]


def validate_all(resources, where):
    kv, versions = schema_versions()
    for version in versions:
        for r in resources:
            error = None
            try:
                kv.validate(r, version, strict=True)
            except kv.ValidationError as e:
                error = f"at {'.'.join(str(p) for p in e.path)}: {e.message}"
            if error:  # failed outside the except: the message without the schema dump
                pytest.fail(f"{where}: {r['kind']}/{r['metadata']['name']} is invalid for "
                            f"Kubernetes {version} {error}")


def test_overlays_validate_against_the_kubernetes_schemas(overlay):
    name, resources = overlay
    validate_all(resources, f"overlays/{name}")


def test_nginx_affinity_component_validates_and_targets_the_service():
    folder = K8S / "components" / "prefix-affinity-nginx"
    resources = apply_kustomization(folder, render(K8S / "overlays" / "gpu"), "Component")
    validate_all(resources, "overlays/gpu + components/prefix-affinity-nginx")
    ingress, service = one(resources, "Ingress"), one(resources, "Service")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    hash_by = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/upstream-hash-by"]
    assert hash_by == "$http_" + AFFINITY_HEADER.replace("-", "_")


# ---- the pieces agree with each other -------------------------------------------------------

def labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_selectors_select_the_pods(overlay):
    _, resources = overlay
    deployment = one(resources, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels_match(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert labels_match(one(resources, "Service")["spec"]["selector"], pod_labels)
    assert labels_match(one(resources, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                        pod_labels)
    target = one(resources, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"], deployment["kind"], deployment["metadata"]["name"])


def test_service_reaches_the_container_port(overlay):
    _, resources = overlay
    ports = {p["name"]: p["containerPort"] for p in container(resources)["ports"]}
    for p in one(resources, "Service")["spec"]["ports"]:
        assert p["targetPort"] in ports, f"Service targets port {p['targetPort']!r}: not declared"
    env = env_of(resources)
    assert ports["http"] == int(env["RADIX_PORT"]), "the container port is not the one radix listens on"
    annotations = one(resources, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    assert env["RADIX_HOST"] == "0.0.0.0", "probes and the Service reach the pod IP, not loopback"


def served_gauges() -> set:
    text = (REPO / "src" / "server" / "server_metrics.cc").read_text()
    return set(re.findall(r'registry\.gauge\(\s*"(\w+)"', text))


def adapter_rules() -> list:
    values = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    return values["rules"]["custom"]


def test_hpa_scales_on_a_queue_gauge_the_adapter_serves(overlay):
    _, resources = overlay
    hpa = one(resources, "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    exposed = {}
    for rule in adapter_rules():
        series = re.match(r"(\w+)\{", rule["seriesQuery"]).group(1)
        assert re.fullmatch(rule["name"]["matches"], series)
        assert series in rule["metricsQuery"] and "<<.LabelMatchers>>" in rule["metricsQuery"]
        assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}, "a Pods metric needs pod"
        exposed[rule["name"]["as"]] = series
    assert name in exposed, f"the HPA reads {name}, the adapter serves {sorted(exposed)}"
    assert exposed[name] in served_gauges(), f"radix serve has no gauge {exposed[name]}"
    assert "queue" in exposed[name]
    assert float(metric["pods"]["target"]["averageValue"]) > 0
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_probes_ask_health_and_drain_fits_the_grace_period(overlay, start_server):
    _, resources = overlay
    c = container(resources)
    port_names = {p["name"] for p in c["ports"]}
    server = start_server("--model", "demo")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["port"] in port_names
        # Asked of a running server, not read from its source: the probe must get a 200.
        assert server.get(get["path"]).status_code == 200, \
            f"{probe} asks {get['path']}, which radix serve does not answer with 200"
    drain = int(env_of(resources)["RADIX_DRAIN_TIMEOUT"])
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = one(resources, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # Kubernetes counts preStop inside the grace period; SIGKILL must not cut a drain short.
    assert grace >= int(pre_stop[1]) + drain + 5
    # /health is 503 while draining: liveness must not restart a pod before its drain ends.
    live = c["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > drain


def test_pods_run_as_the_images_user(overlay):
    _, resources = overlay
    spec = one(resources, "Deployment")["spec"]["template"]["spec"]
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    uid = int(re.search(r"^ARG RADIX_UID=(\d+)$", dockerfile, re.M).group(1))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == uid
    assert spec["securityContext"]["runAsGroup"] == uid  # the image makes group radix with the same id
    assert container(resources)["securityContext"]["allowPrivilegeEscalation"] is False


def test_gpu_overlay_gives_each_pod_one_gpu():
    resources = render(K8S / "overlays" / "gpu")
    c = container(resources)
    assert int(c["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert c["image"].endswith(":cuda")
    # The device plugin shows the pod's GPU as device 0; a list would name GPUs the pod lacks.
    assert env_of(resources)["RADIX_DEVICE"] == "cuda:0"


def test_cpu_overlay_has_no_gpu_and_bounds_its_threads():
    resources = render(K8S / "overlays" / "cpu")
    c = container(resources)
    assert "nvidia.com/gpu" not in c["resources"].get("limits", {})
    assert c["image"].endswith(":cpu")
    env = env_of(resources)
    assert env["RADIX_DEVICE"] == "cpu"
    # OpenMP would start one thread per node core, whatever the pod's CPU share.
    assert int(env["RADIX_THREADS"]) == int(c["resources"]["requests"]["cpu"])


# ---- environment names are `radix serve` flags ----------------------------------------------

def serve_flags(radix_bin) -> set:
    """The flags `radix serve --help` lists."""
    out = subprocess.run([str(radix_bin), "serve", "--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", out.stdout))


TEI_NAMES = {"MODEL_ID": "--model", "PORT": "--port"}  # radix reads no HOSTNAME (runtimes set it)


def flag_of(env_name: str):
    if env_name in TEI_NAMES:
        return TEI_NAMES[env_name]
    if env_name.startswith("RADIX_"):
        return "--" + env_name[len("RADIX_"):].lower().replace("_", "-")
    return None


def used_env_names() -> set:
    names = set()
    for name in OVERLAYS:
        names |= set(env_of(render(K8S / "overlays" / name)))
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", dockerfile, re.M):
        names |= set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", block))
    return {n for n in names if flag_of(n)}


def test_every_environment_name_is_a_serve_flag(radix_bin):
    flags = serve_flags(radix_bin)
    assert "--drain-timeout" in flags and "--model" in flags, "`radix serve --help` was not parsed"
    names = used_env_names()
    assert {"RADIX_MODEL", "RADIX_PORT", "RADIX_DEVICE"} <= names
    unknown = sorted(n for n in names if flag_of(n) not in flags)
    assert not unknown, f"{unknown} name no `radix serve` flag"


def test_serve_reads_those_environment_names(radix_bin):
    out = subprocess.run([str(radix_bin), "serve", "--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    read = set(re.findall(r"Env:\s*([A-Z][A-Z0-9_]*)", out.stdout))
    if "RADIX_MODEL" not in read:
        pytest.skip("this radix serve reads no RADIX_MODEL from the environment yet (flags from "
                    "RADIX_* variables are another change); only the flag names were checked")
    missing = sorted(n for n in used_env_names() if n.startswith("RADIX_") and n not in read)
    assert not missing, f"radix serve --help lists no environment variable for {missing}"


# ---- monitoring and routing examples (CRDs: checked for consistency, not by schema) ----------

def test_servicemonitor_scrapes_the_service():
    (monitor,) = load_docs(K8S / "monitoring" / "servicemonitor.yaml")
    service = one(render(K8S / "overlays" / "gpu"), "Service")
    assert labels_match(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_routing_examples_hash_the_same_header_onto_the_service():
    service = one(render(K8S / "overlays" / "gpu"), "Service")
    name, ports = service["metadata"]["name"], {p["port"] for p in service["spec"]["ports"]}

    route, policy = load_docs(K8S / "routing" / "envoy-gateway.yaml")
    assert route["kind"] == "HTTPRoute" and policy["kind"] == "BackendTrafficPolicy"
    (backend,) = route["spec"]["rules"][0]["backendRefs"]
    assert backend["name"] == name and backend["port"] in ports
    (target,) = policy["spec"]["targetRefs"]
    assert (target["kind"], target["name"]) == ("HTTPRoute", route["metadata"]["name"])
    lb = policy["spec"]["loadBalancer"]
    assert lb["type"] == "ConsistentHash" and lb["consistentHash"]["type"] == "Header"
    assert lb["consistentHash"]["header"]["name"] == AFFINITY_HEADER

    (rule,) = load_docs(K8S / "routing" / "istio-destinationrule.yaml")
    assert rule["spec"]["host"] == name
    assert rule["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpHeaderName"] == AFFINITY_HEADER

    docs = (REPO / "docs" / "deploy.md").read_text().lower()
    assert AFFINITY_HEADER in docs, "docs/deploy.md does not tell clients which header to send"
