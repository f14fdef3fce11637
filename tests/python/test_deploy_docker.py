"""deploy/docker: the Dockerfile's build arguments, stages, user, health check and entry point,
and the scripts beside it (runtime-packages.sh on the built radix, healthcheck.sh against a real
`radix serve`, build.sh against stand-in container tools). No container tool is needed: where one
works, `deploy/docker/build.sh` builds the image itself (docs/deploy.md).
"""
import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

from test_server_helpers import RadixServer, free_port, start_server  # noqa: F401  (fixture)

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"


def instructions(path=DOCKERFILE):
    """(stage index or -1 before the first FROM, KEYWORD, arguments), continuations joined."""
    out, stage, pending = [], -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append((stage, keyword, args.strip()))
    return out


def stages():
    ins = instructions()
    return [[i for i in ins if i[0] == s] for s in range(max(i[0] for i in ins) + 1)]


def declared(instrs, keyword):
    names = set()
    for _, kw, args in instrs:
        if kw == keyword:
            names |= set(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?:=|\s|$)", args))
    return names


def referenced(args):
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", args))


def test_is_multi_stage_with_a_separate_runtime():
    s = stages()
    assert len(s) >= 2
    build, runtime = s[0], s[-1]
    assert re.search(r"\bAS build\b", build[0][2])
    runtime_text = " ".join(a for _, _, a in runtime)
    # The runtime stage installs what the binary loads, not the build dependencies.
    assert "deps.txt" not in runtime_text
    assert not re.search(r"\b(build-essential|cmake|ninja-build|[a-z0-9.+-]+-dev)\b", runtime_text)
    copies = [a for _, kw, a in runtime if kw == "COPY" and "--from=" in a]
    assert any("/build/radix " in a for a in copies), "the runtime stage does not take the binary"
    assert any("runtime-packages.txt" in a for a in copies)
    assert any("runtime-packages.sh" in a for _, kw, a in build if kw == "RUN")


def test_every_build_argument_is_used_and_every_variable_declared():
    ins = instructions()
    global_args = declared([i for i in ins if i[0] == -1], "ARG")
    for _, kw, args in ins:
        if kw == "FROM":
            assert referenced(args) <= global_args, f"FROM uses an undeclared ARG: {args}"
    for s in stages():
        args = declared(s, "ARG")
        known = args | declared(s, "ENV")
        used = set()
        for _, kw, a in s:
            if kw in ("ARG", "FROM"):  # FROM sees only the global ARGs, checked above
                continue
            # ENV NAME=value declares NAME; only the right-hand sides use variables.
            text = " ".join(re.findall(r"=(\S+)", a)) if kw == "ENV" else a
            refs = referenced(text)
            used |= refs
            if kw != "RUN":  # RUN may use the shell's own variables
                assert refs <= known, f"{kw} {a}: {sorted(refs - known)} declared by no ARG/ENV of this stage"
        for _, kw, a in s:
            if kw == "RUN":
                # Upper-case names in RUN are build arguments or environment: a typo builds wrong.
                missing = referenced(a) - known
                assert not missing, f"RUN uses {sorted(missing)}, declared by no ARG/ENV of its stage"
        unused = args - used
        assert not unused, f"ARG {sorted(unused)} declared but never used in stage {s[0][2]}"
    for name in global_args:
        assert any(name in referenced(a) for _, kw, a in ins if kw == "FROM"), f"global ARG {name} unused"


def test_build_script_passes_only_arguments_the_dockerfile_declares():
    text = (DOCKER / "build.sh").read_text()
    passed = set(re.findall(r"--build-arg \"?([A-Z_]+)=", text))
    assert {"RADIX_CUDA", "DEFAULT_DEVICE", "BUILD_IMAGE", "RUNTIME_IMAGE"} <= passed
    all_args = declared(instructions(), "ARG")
    assert passed <= all_args, f"build.sh passes {sorted(passed - all_args)}, which the Dockerfile ignores"


def test_runs_as_an_unprivileged_user():
    runtime = stages()[-1]
    users = [a for _, kw, a in runtime if kw == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    uid = re.search(r"ARG RADIX_UID=(\d+)", DOCKERFILE.read_text()).group(1)
    assert users[-1] in ("${RADIX_UID}", uid) and int(uid) != 0
    last_user = max(i for i, (_, kw, _) in enumerate(runtime) if kw == "USER")
    assert all(kw != "RUN" for _, kw, _ in runtime[last_user:]), "a RUN after USER would need root"


def test_entrypoint_is_exec_form_radix_serve():
    (entry,) = [a for _, kw, a in stages()[-1] if kw == "ENTRYPOINT"]
    # Exec form: radix is PID 1 and gets SIGTERM itself, so it drains; a shell would swallow it.
    assert entry.startswith("["), "shell-form ENTRYPOINT: SIGTERM would not reach radix"
    assert entry.replace(" ", "") == '["/usr/local/bin/radix","serve"]'


def test_healthcheck_asks_a_route_radix_serves(start_server):
    (check,) = [a for _, kw, a in stages()[-1] if kw == "HEALTHCHECK"]
    script = re.search(r'CMD \["(/usr/local/bin/[\w-]+)"\]', check).group(1)
    copies = [a for _, kw, a in stages()[-1] if kw == "COPY"]
    (src,) = [a.split()[0] for a in copies if a.endswith(" " + script)]
    path = re.search(r"GET (/\w+) HTTP", (REPO / src).read_text()).group(1)
    # Asked of a running server: the path the image's check asks must answer 200.
    assert start_server("--model", "demo").get(path).status_code == 200, path
    assert re.search(r"--start-period=\d+", check), "a model load must not count as unhealthy"


def test_copied_sources_exist_and_are_not_ignored():
    ignore = [l.strip() for l in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
              if l.strip() and not l.startswith("#")]
    for _, kw, a in instructions():
        if kw != "COPY" or "--from=" in a:
            continue
        *sources, _ = a.split()
        for src in sources:
            if src == ".":
                continue
            assert (REPO / src).exists(), f"COPY {src}: no such file in the repository"
            top = src.split("/")[0]
            assert not any(pathlib.PurePath(top).match(p) for p in ignore), f"{src} is ignored"


def test_exposed_port_and_default_env_match_serve():
    text = DOCKERFILE.read_text()
    port = re.search(r"^EXPOSE (\d+)$", text, re.M).group(1)
    assert re.search(r"RADIX_PORT=%s\b" % port, text)
    assert "RADIX_HOST=0.0.0.0" in text
    # RADIX_MODEL is left to the user: a default would shadow TEI's MODEL_ID.
    assert not re.search(r"^\s*(ENV\s+)?RADIX_MODEL=", text, re.M)


# ---- the scripts ------------------------------------------------------------------------------

def test_runtime_packages_of_the_built_radix(radix_bin):
    if shutil.which("dpkg-query") is None or shutil.which("ldd") is None:
        pytest.skip("dpkg-query or ldd is missing: not a Debian-family machine")
    out = subprocess.run([str(DOCKER / "runtime-packages.sh"), str(radix_bin)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    packages = out.stdout.split()
    assert packages == sorted(set(packages)) and packages
    assert not [p for p in packages if p.endswith("-dev")], packages
    # Every package it names is installed here (so apt can install it in the image), and the
    # libraries radix certainly loads are among them.
    for p in packages:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        assert "install ok installed" in status.stdout, p
    assert any(p.startswith("libopenblas0") for p in packages), packages
    assert "libc6" in packages


def test_runtime_packages_refuses_an_unknown_library(tmp_path):
    if shutil.which("dpkg-query") is None or shutil.which("ldd") is None:
        pytest.skip("dpkg-query or ldd is missing: not a Debian-family machine")
    # A binary whose library ldd cannot find: an error naming it, unless explicitly allowed.
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to make a test binary")
    (tmp_path / "lib.c").write_text("int radix_test_f(void) { return 1; }\n")
    (tmp_path / "main.c").write_text("int radix_test_f(void);\nint main(void) { return radix_test_f(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", tmp_path / "libradixtestmissing.so", tmp_path / "lib.c"], check=True)
    subprocess.run([cc, "-o", tmp_path / "prog", tmp_path / "main.c", "-L", tmp_path, "-lradixtestmissing"], check=True)
    out = subprocess.run([str(DOCKER / "runtime-packages.sh"), str(tmp_path / "prog")],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "libradixtestmissing.so" in out.stderr, out.stderr
    out = subprocess.run([str(DOCKER / "runtime-packages.sh"), str(tmp_path / "prog"), "^libradixtest"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "libc6" in out.stdout.split()


def healthcheck(port, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("RADIX_API_KEY", "RADIX_PORT", "PORT")}
    e.update(RADIX_PORT=str(port), **env)
    return subprocess.run(["bash", str(DOCKER / "healthcheck.sh")], env=e, capture_output=True,
                          timeout=30).returncode


def test_healthcheck_script_against_a_real_server(radix_bin):
    server = RadixServer(radix_bin, "--model", "demo", "--api-key", "secret-key",
                         headers={"Authorization": "Bearer secret-key"})
    try:
        assert healthcheck(server.port, RADIX_API_KEY="secret-key") == 0
        assert healthcheck(server.port) != 0, "a 401 must not pass as healthy"
        assert healthcheck(server.port, RADIX_API_KEY="wrong") != 0
    finally:
        assert server.stop() == 0, server.output()
    assert healthcheck(free_port()) != 0, "nothing listening must not pass as healthy"


def fake_tool(folder: pathlib.Path, name: str, script: str):
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_build(tmp_path, *args, tools="docker"):
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "RADIX_CONTAINER_TOOLS": tools}
    env.pop("RADIX_BUILD_IMAGE", None)
    env.pop("RADIX_RUNTIME_IMAGE", None)
    return subprocess.run(["bash", str(DOCKER / "build.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_build_script_names_what_is_missing(tmp_path):
    fake_tool(tmp_path, "docker", 'echo "Cannot connect to the Docker daemon" >&2; exit 1\n')
    out = run_build(tmp_path, "cpu", tools="docker radix-no-such-tool")
    assert out.returncode == 3, out.stderr
    assert "docker: installed, but 'docker info' fails: Cannot connect to the Docker daemon" in out.stderr
    assert "radix-no-such-tool: not installed" in out.stderr

    # A tool that works but has no base image and cannot pull it.
    fake_tool(tmp_path, "docker", 'case $1 in info) exit 0;; *) exit 1;; esac\n')
    out = run_build(tmp_path, "cuda")
    assert out.returncode == 4, out.stderr
    assert "nvidia/cuda:13.0.0-devel-ubuntu24.04" in out.stderr


def test_build_script_builds_from_the_repository_root(tmp_path):
    log = tmp_path / "calls"
    fake_tool(tmp_path, "podman", f'echo "$PWD $*" >> {log}\n')
    out = run_build(tmp_path, "cuda", "--tag", "radix:test", tools="podman")
    assert out.returncode == 0, out.stderr
    build = [l for l in log.read_text().splitlines() if " build " in l]
    assert len(build) == 1
    cwd, *argv = build[0].split()
    assert cwd == str(REPO) and argv[-1] == "."
    assert argv[argv.index("-f") + 1] == "deploy/docker/Dockerfile"
    assert argv[argv.index("--ignorefile") + 1] == "deploy/docker/Dockerfile.dockerignore"
    assert argv[argv.index("-t") + 1] == "radix:test"
    assert "RADIX_CUDA=ON" in argv and "DEFAULT_DEVICE=cuda:0" in argv
