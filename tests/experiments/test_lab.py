"""Planning regimes and studies: which runs exist, what each starts from, what scores what."""

import seqio
import tensorflow as tf

from t5lab.data.mixing import Equal
from t5lab.data.vocab import get_vocabulary
from t5lab.experiments.lab import LabSettings, plan_runs
from t5lab.experiments.regimes import REGIMES, regime_variants
from t5lab.experiments.studies import study_variants

TASKS = ("lab_test_a", "lab_test_b", "lab_test_c")


def _register(name: str) -> None:
    if name in seqio.TaskRegistry.names():
        return
    vocabulary = get_vocabulary()

    def source(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices({"inputs": ["a b"], "targets": ["c"]})

    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(
            source, splits=("train", "validation"), num_input_examples={"train": 10}
        ),
        preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos],
        output_features={
            "inputs": seqio.Feature(vocabulary),
            "targets": seqio.Feature(vocabulary),
        },
    )


def _settings(tmp_path, **overrides) -> LabSettings:
    for name in (*TASKS, "lab_test_unsup"):
        _register(name)
    values = dict(
        exp_dir=str(tmp_path),
        model_gin_files=("models/t5_1_1_micro.gin",),
        tasks=TASKS,
        unsupervised_task="lab_test_unsup",
        pretrain_steps=20,
        finetune_steps=10,
        num_seeds=2,
        mixing_rate=Equal(),
    )
    return LabSettings(**{**values, **overrides})


def _mixture_tasks(spec) -> list[str]:
    name = next(b for b in spec.bindings if b.startswith("MIXTURE_OR_TASK_NAME"))
    name = name.split("=", 1)[1].strip().strip('"')
    if name in seqio.MixtureRegistry.names():
        return [task.name for task in seqio.MixtureRegistry.get(name).tasks]
    return [name]


def test_regimes_plan_matches_t5_table_14(tmp_path):
    settings = _settings(tmp_path)
    runs, scored_by = plan_runs(settings=settings, variants=regime_variants(settings=settings))
    by_name = {spec.name: spec for spec in runs}
    # per seed: unsupervised, multitask (long), multitask, 3 leave-one-out, supervised = 7
    # pretraining runs, and 4 fine-tuned regimes x 3 tasks = 12 fine-tunes.
    assert len(runs) == 2 * (7 + 12)
    assert len(scored_by) == len(REGIMES) * 3 * 2
    for (regime, seed, task), name in scored_by.items():
        spec = by_name[name]
        assert name.endswith(f"seed{seed}")
        if regime == "multitask_training":
            assert spec.init_from is None and task in spec.evaluate_tasks
            assert f"TRAIN_STEPS = {20 + 10}" in spec.bindings
            assert sorted(_mixture_tasks(spec)) == sorted(("lab_test_unsup", *TASKS))
            continue
        assert spec.evaluate_tasks == (task,)
        assert "TRAIN_STEPS = 10" in spec.bindings and f"SEED = {seed}" in spec.bindings
        start = by_name[spec.init_from]
        assert "TRAIN_STEPS = 20" in start.bindings and f"SEED = {seed}" in start.bindings
        mixed = _mixture_tasks(start)
        if regime == "unsupervised_pretrain_finetune":
            assert mixed == ["lab_test_unsup"]
        elif regime == "multitask_pretrain_finetune":
            assert sorted(mixed) == sorted(("lab_test_unsup", *TASKS))
        elif regime == "leave_one_out_finetune":
            assert task not in mixed
            assert sorted(mixed) == sorted({"lab_test_unsup", *TASKS} - {task})
        else:
            assert regime == "supervised_multitask_finetune"
            assert sorted(mixed) == sorted(TASKS)
    # every run starts from a run listed before it
    names = [spec.name for spec in runs]
    assert all(names.index(s.init_from) < names.index(s.name) for s in runs if s.init_from)


def test_objective_study_pretrains_each_objective_once_with_equal_input_length(tmp_path):
    settings = _settings(tmp_path, num_seeds=1)
    variants = study_variants(
        study="objectives", settings=settings, variants=["bert_mlm", "prefix_lm"]
    )
    runs, scored_by = plan_runs(settings=settings, variants=variants)
    pretraining = [spec for spec in runs if spec.name.startswith("pretrain_")]
    assert [spec.gin_files[-1] for spec in pretraining] == [
        "objectives/bert_mlm.gin",
        "objectives/prefix_lm.gin",
    ]
    inputs = settings.task_feature_lengths["inputs"]
    for spec in pretraining:
        assert f'TASK_FEATURE_LENGTHS = {{"inputs": {inputs}, "targets": {inputs}}}' in (
            spec.bindings
        )
    scratch = [scored_by[("no_pretraining", 0, task)] for task in TASKS]
    assert all(next(s for s in runs if s.name == name).init_from is None for name in scratch)


def test_mixing_study_takes_each_rate_from_its_gin_file_and_scores_directly(tmp_path):
    from t5lab.data.mixing import Equal, TemperatureScaled

    settings = _settings(tmp_path, num_seeds=1)
    variants = study_variants(
        study="mixing", settings=settings, variants=["temperature_t2", "equal"]
    )
    runs, scored_by = plan_runs(settings=settings, variants=variants)
    assert [spec.name for spec in runs] == ["mix_temperature_t2-seed0", "mix_equal-seed0"]
    mixture = seqio.MixtureRegistry.get("lab_mix_temperature_t2")
    assert mixture.get_rate(mixture.tasks[0]) == TemperatureScaled(temperature=2.0)(
        mixture.tasks[0]
    )
    equal = seqio.MixtureRegistry.get("lab_mix_equal")
    assert {equal.get_rate(task) for task in equal.tasks} == {Equal()(None)}
    for spec in runs:
        assert spec.init_from is None and set(spec.evaluate_tasks) == set(TASKS)
        assert "TRAIN_STEPS = 30" in spec.bindings
    assert scored_by[("equal", 0, TASKS[0])] == "mix_equal-seed0"


def test_unknown_study_variant_names_the_closest_gin_file(tmp_path):
    import pytest

    from t5lab.errors import UserError

    with pytest.raises(UserError, match="did you mean 'bert_mlm'"):
        study_variants(study="objectives", settings=_settings(tmp_path), variants=["bert_mln"])
    with pytest.raises(UserError, match="unknown study"):
        study_variants(study="objectivs", settings=_settings(tmp_path))
