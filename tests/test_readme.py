"""README is the user's manual: its commands are run here so they cannot go stale."""

import json
import re
import shlex

import pytest

from t5lab.cli import main
from t5lab.data.corpus import sotu_documents
from tests.conftest import REPO, save_random_hf_t5

README = (REPO / "README.md").read_text()
EXPERIMENT_COMMANDS = ("regimes", "study", "sweep")
MAKEFILE = (REPO / "Makefile").read_text()


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands(block: str) -> list[list[str]]:
    """`t5lab ...` lines of a block, with backslash continuations joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [
        shlex.split(line, comments=True)
        for line in joined.splitlines()
        if line.strip().startswith("t5lab ")
    ]


def _shrink(args: list[str]) -> list[str]:
    """The same command at test size: small batches, short sequences, 2 to 4 steps."""
    small = ["--gin.BATCH_SIZE=4", "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 64}"]
    if args[0] == "eval":
        return [*args, *small, "--gin.evaluate.eval_batches=1"]
    if args[0] != "train":
        return args
    args = [re.sub(r"^--gin\.TRAIN_STEPS=\d+$", "--gin.TRAIN_STEPS=4", a) for a in args]
    if not any(a.startswith("--gin.TRAIN_STEPS") for a in args):
        args.append("--gin.TRAIN_STEPS=2")
    return [*args, *small, "--gin.train.eval_batches=1", "--quiet"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A user's directory with a small corpus of their own in `my_corpus/`."""
    corpus = tmp_path / "my_corpus"
    corpus.mkdir()
    for number, doc in enumerate(sotu_documents(split="train")[:12]):
        (corpus / f"speech_{number}.txt").write_text(doc["text"] + "\n")
    save_random_hf_t5(tmp_path / "my_hf_t5")
    pairs = tmp_path / "my_data"
    pairs.mkdir()
    sums = [(f"{a} {b}", str(a + b)) for a in range(12) for b in range(12)]
    (pairs / "train.jsonl").write_text(
        "".join(json.dumps({"inputs": i, "targets": t}) + "\n" for i, t in sums)
    )
    (pairs / "dev.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in sums[:20]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_opens_with_make_run_and_make_test():
    first_block = _code_blocks("sh")[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands[:2] == ["make run", "make test"]
    assert re.search(r"^test:.*\n\t\$\(PY\) -m pytest", MAKEFILE, flags=re.M)


def test_make_run_and_every_readme_command_work(workdir, capsys):
    quickstart = re.search(r"^run:.*\n\t\$\(VENV\)/bin/(t5lab .*)$", MAKEFILE, flags=re.M)
    assert quickstart, "make run should call t5lab"
    commands = [shlex.split(quickstart.group(1))]
    for block in _code_blocks("sh"):
        commands += _commands(block)
    assert len(commands) >= 7
    # multi-run experiments are run, as written here, by tests/commands/test_lab_commands.py
    commands = [c for c in commands if c[1] not in EXPERIMENT_COMMANDS]
    for command in commands:
        assert main(_shrink(command[1:])) == 0, (command, capsys.readouterr().err)
        out = capsys.readouterr().out
        if command[1] == "infer":
            assert json.loads(out.splitlines()[0])["input"].startswith("The state of the")
    assert (workdir / "runs" / "quickstart" / "checkpoints").is_dir()
    assert (workdir / "runs" / "my_vocab.model").is_file()


def test_readme_python_examples_run(workdir, capsys):
    blocks = _code_blocks("python")
    assert blocks, "README should show its Python API"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out


def test_readme_error_examples_print_what_readme_says(workdir, capsys):
    examples = re.findall(r"^\$ (t5lab .*)\n(t5lab: error: .*)$", README, flags=re.M)
    assert len(examples) >= 3
    for command, expected in examples:
        assert main(shlex.split(command)[1:]) == 2
        assert capsys.readouterr().err.strip() == expected


def test_objective_table_lists_every_objective_with_its_knobs_and_gin_file():
    from t5lab.data import objectives
    from t5lab.data.objectives.showcase import knobs_text

    for name in objectives.names():
        objective = objectives.get(name)
        row = re.search(rf"^\| `{name}` \|(.*)$", README, flags=re.M)
        assert row, f"README has no row for {name}"
        assert knobs_text(objective.knobs) in row.group(1)
        assert f"`gin/objectives/{name}.gin`" in row.group(1)
        assert (REPO / "gin" / "objectives" / f"{name}.gin").is_file()
