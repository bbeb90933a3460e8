"""`t5lab plan` end to end on the micro gin config: the report, its warnings and its errors."""

import re

import pytest

from t5lab.cli import EXIT_USER_ERROR, main
from t5lab.models import param_count
from tests.conftest import FIXTURES, MICRO_CONFIG

MICRO = f"--gin_file={FIXTURES / 'micro.gin'}"


def test_plan_reports_the_run_the_gin_files_describe(capsys):
    args = ["plan", MICRO, "--mesh=fsdp:2,model:2", "--rules=fsdp_model_parallel", "--chip=v5e"]
    assert main([*args, "--gin.T5Config.dtype='bfloat16'"]) == 0
    out = capsys.readouterr().out
    # micro.gin leaves vocab_size to the task: 8,100 ids padded to 8,192.
    assert f"{param_count(MICRO_CONFIG.replace(vocab_size=8192)):,} parameters" in out
    assert "8 x (32 inputs + 12 targets) = 352 tokens" in out
    assert "4 chips = v5litepod-4, 1 host" in out
    assert "mesh         fsdp:2 x model:2 = 4 devices, rules fsdp_model_parallel" in out
    assert "optimizer (adafactor)" in out and "12 steps take" in out
    assert "WARNING" not in out


def test_plan_that_does_not_fit_warns_and_exits_zero(capsys):
    assert main(["plan", MICRO, "--chip=v5e", "--batch_size=200000", "--remat=full"]) == 0
    out = capsys.readouterr().out
    assert "activations (remat full)" in out
    warnings = [line for line in out.splitlines() if line.startswith("WARNING: ")]
    assert any(re.search(r"GiB per device does not fit in 16 GB", w) for w in warnings)


@pytest.mark.parametrize(
    "gin_file, rules",
    [
        ("dp.gin", "data_parallel"),
        ("2d.gin", "model_parallel"),
        ("fsdp_mp.gin", "fsdp_model_parallel"),
    ],
)
def test_plan_reads_the_rule_set_of_a_partitioning_gin_file(gin_file, rules, capsys):
    mesh = "--mesh=fsdp:2,model:2"
    assert main(["plan", MICRO, f"--gin_file=partitioning/{gin_file}", mesh]) == 0
    from_gin = capsys.readouterr().out
    assert f"= 4 devices, rules {rules}\n" in from_gin
    # the gin file's rule set, named as a flag, is the same plan
    assert main(["plan", MICRO, mesh, f"--rules={rules}"]) == 0
    assert capsys.readouterr().out == from_gin


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--mesh=data4", "--mesh 'data4': write AXIS:SIZE pairs"),
        ("--chip=tpu9", "unknown --chip 'tpu9'"),
        ("--rules=zero", "unknown --rules 'zero'"),
        ("--rules=2d", "unknown --rules '2d'; known: data_parallel, fsdp, model_parallel, fsdp_"),
        ("--remat=some", "unknown --remat 'some'"),
    ],
)
def test_bad_flags_are_one_line_errors(flag, message, capsys):
    assert main(["plan", MICRO, flag]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"t5lab: error: {message}")
