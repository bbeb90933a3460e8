"""tpu_scripts/*.sh: --dry-run prints the exact gcloud commands; mistakes fail before any call.

The printed commands are parsed back with shlex (as a shell would), so quoting is checked
too: launch.sh's remote command goes through two shells (here, then the worker's).
"""

import os
import shlex
import shutil
import subprocess

import pytest

from tests.conftest import REPO

SCRIPTS = REPO / "tpu_scripts"
BASH = shutil.which("bash")
WHERE = ["--name=t5-xxl", "--zone=us-central2-b"]
SSH = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "t5-xxl"]


@pytest.fixture(autouse=True)
def _no_cloud(tmp_path_factory, monkeypatch):
    """A `gcloud` first on PATH that only fails: no test may ever reach the real one."""
    guard = tmp_path_factory.mktemp("guard")
    (guard / "gcloud").write_text("#!/bin/sh\necho 'a test ran gcloud' >&2\nexit 97\n")
    (guard / "gcloud").chmod(0o755)
    monkeypatch.setenv("PATH", f"{guard}:{os.environ['PATH']}")


def _run(script: str, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path} if path else None
    return subprocess.run(
        [BASH, str(SCRIPTS / script), *args], capture_output=True, text=True, env=env
    )


def _dry_run(script: str, *args: str) -> list[list[str]]:
    result = _run(script, "--dry-run", *args)
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines()]


def _remote(command: list[str]) -> list[str]:
    (flag,) = [arg for arg in command if arg.startswith("--command=")]
    return shlex.split(flag.removeprefix("--command="))


@pytest.mark.parametrize(
    "accelerator, runtime",
    [
        ("v4-32", "tpu-ubuntu2204-base"),
        ("v5litepod-16", "v2-alpha-tpuv5-lite"),
        ("v5p-8", "v2-alpha-tpuv5"),
        ("v6e-8", "v2-alpha-tpuv6e"),
    ],
)
def test_create_requests_a_queued_resource_with_the_jax_runtime(accelerator, runtime):
    (command,) = _dry_run("create.sh", *WHERE, f"--accelerator-type={accelerator}")
    assert command == [
        *["gcloud", "compute", "tpus", "queued-resources", "create", "t5-xxl"],
        "--node-id=t5-xxl",
        "--zone=us-central2-b",
        f"--accelerator-type={accelerator}",
        f"--runtime-version={runtime}",
    ]


def test_create_passes_project_version_and_spot():
    args = ["--accelerator-type", "v4-8", "--version=my-runtime", "--project=lab", "--spot"]
    (command,) = _dry_run("create.sh", *WHERE, *args)
    assert "--project=lab" in command and "--runtime-version=my-runtime" in command
    assert command[-1] == "--spot"


def test_install_uploads_the_checkout_and_installs_jax_tpu_on_every_worker():
    archive, upload, ssh = _dry_run("install.sh", *WHERE)
    assert archive[:3] == ["git", "-C", str(REPO)] and archive[-1] == "HEAD"
    tarball = archive[archive.index("-o") + 1]
    assert upload == [
        *["gcloud", "compute", "tpus", "tpu-vm", "scp", tarball, "t5-xxl:t5lab.tar.gz"],
        *["--worker=all", "--zone=us-central2-b"],
    ]
    assert ssh[:8] == [*SSH, "--worker=all", "--zone=us-central2-b"]
    remote = _remote(ssh)
    assert "jax[tpu]" in remote and "~/t5lab/constraints.txt" in remote


def test_install_from_a_repository_clones_it():
    (ssh,) = _dry_run("install.sh", *WHERE, "--repo=https://example.com/t5lab.git", "--ref=v1")
    remote = _remote(ssh)
    clone = remote.index("clone")
    assert remote[clone + 1 : clone + 5] == [
        "--depth=1",
        "--branch=v1",
        "https://example.com/t5lab.git",
        "~/t5lab",
    ]


def test_launch_runs_the_same_train_command_on_all_workers():
    gin = ["--gin_file=models/t5_1_1_xxl.gin", "--gin_file", "runs/pretrain.gin"]
    train_flags = ["--gin.MODEL_DIR=gs://bucket/xxl", "--gin.MIXTURE_OR_TASK_NAME='it''s c4'"]
    (ssh,) = _dry_run("launch.sh", *WHERE, *gin, "--", *train_flags)
    assert ssh[:8] == [*SSH, "--worker=all", "--zone=us-central2-b"]
    remote = _remote(ssh)
    start = remote.index("nohup") + 1
    assert remote[start : start + 6] == [
        "~/t5lab-venv/bin/t5lab",
        "train",
        "--gin_file=models/t5_1_1_xxl.gin",
        "--gin_file=runs/pretrain.gin",
        *train_flags,
    ]
    assert remote[-7:] == ["--quiet", ">", "~/t5lab-train.log", "2>&1", "<", "/dev/null", "&"]


def test_logs_sync_and_delete():
    (logs,) = _dry_run("logs.sh", *WHERE, "--worker=all", "--lines=20")
    assert logs[:7] == [*SSH, "--worker=all"]
    assert _remote(logs) == ["tail", "-n", "20", "-F", "~/t5lab-train.log"]
    (down,) = _dry_run("sync.sh", "--from=gs://bucket/xxl", "--to=runs/xxl")
    assert down == ["gcloud", "storage", "rsync", "--recursive", "gs://bucket/xxl", "runs/xxl"]
    (up,) = _dry_run("sync.sh", *WHERE, "--from=t5lab/runs/x", "--to=gs://bucket/x")
    assert up[:7] == [*SSH, "--worker=0"]
    assert _remote(up) == [
        "gcloud",
        "storage",
        "rsync",
        "--recursive",
        "t5lab/runs/x",
        "gs://bucket/x",
    ]
    (delete,) = _dry_run("delete.sh", *WHERE, "--project=lab")
    assert delete == [
        *["gcloud", "compute", "tpus", "queued-resources", "delete", "t5-xxl"],
        *["--zone=us-central2-b", "--project=lab", "--force", "--quiet"],
    ]


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("create.sh", ["--name=a", "--accelerator-type=v4-8"], "missing --zone"),
        ("create.sh", ["--zone=z", "--accelerator-type=v4-8"], "missing --name"),
        ("create.sh", [*WHERE], "missing --accelerator-type"),
        ("create.sh", [*WHERE, "--accelerator-type=v9-8"], "no default runtime"),
        (
            "create.sh",
            [*WHERE, "--accelerator-type=v4-8", "--spot", "--reserved"],
            "--spot and --reserved exclude",
        ),
        ("create.sh", [*WHERE, "--acelerator-type=v4-8"], "unknown flag --acelerator-type"),
        ("install.sh", ["--name=a"], "missing --zone"),
        ("install.sh", [*WHERE, "--ref=dev"], "--ref needs --repo"),
        ("launch.sh", [*WHERE], "missing --gin_file"),
        ("launch.sh", ["--gin_file=a.gin", "--zone=z"], "missing --name"),
        ("logs.sh", [*WHERE, "--worker=two"], "--worker must be a number or all"),
        ("sync.sh", ["--from=a"], "missing --to"),
        ("sync.sh", ["--from=a", "--to=b"], "one of --from and --to must be a gs:// path"),
        ("sync.sh", ["--from=gs://b/a", "--to=b", "--name=x"], "missing --zone"),
        ("delete.sh", ["--zone=z"], "missing --name"),
        ("delete.sh", [*WHERE, "--zone"], "--zone needs a value"),
    ],
)
def test_mistakes_fail_early_with_one_line(script, args, message):
    result = _run(script, "--dry-run", *args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: {message}"), lines


def test_a_real_run_without_gcloud_says_so(tmp_path):
    for tool in ("basename", "dirname"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    result = _run("delete.sh", *WHERE, path=str(tmp_path))
    assert result.returncode == 2
    assert "gcloud not found: install the Google Cloud CLI" in result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_are_shellcheck_clean():
    scripts = sorted(str(path) for path in SCRIPTS.glob("*.sh"))
    result = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
