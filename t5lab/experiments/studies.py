"""Objective and mixing studies (T5 tables 4-7 and 11, plus BERT's NSP and BART's noising).

Objective variants pretrain with equal steps, batch and input length (so equal input tokens);
each pretraining task's targets are as long as its inputs so every objective fits, then every
variant fine-tunes on the same suite. The mixing study is T5's: multitask training on the
unsupervised task plus the suite at each mixing rate, scored directly.
"""

from collections.abc import Callable, Sequence

from t5lab.errors import UserError, did_you_mean
from t5lab.experiments.lab import LabSettings, Stage, Variant, _lengths_binding

OBJECTIVES = (
    "prefix_lm",
    "bert_mlm",
    "deshuffling",
    "mass",
    "iid_replace_spans",
    "iid_drop_tokens",
    "span_corruption",
    "nsp",
    "bart_text_infilling",
)
CORRUPTION_RATES = (
    "span_corruption_rate_10",
    "span_corruption_rate_15",
    "span_corruption_rate_25",
    "span_corruption_rate_50",
)
SPAN_LENGTHS = (
    "span_corruption_span_2",
    "span_corruption_span_3",
    "span_corruption_span_5",
    "span_corruption_span_10",
)
MIXING = ("proportional_k2_16", "proportional_k2_19", "temperature_t2", "equal")
STUDIES = ("objectives", "corruption-rate", "span-length", "mixing")


def _objective_variants(
    settings: LabSettings, gin_names: Sequence[str], *, from_scratch: bool
) -> list[Variant]:
    from t5lab.gin_setup import REPO_GIN_DIR

    inputs = settings.task_feature_lengths["inputs"]
    lengths = _lengths_binding({"inputs": inputs, "targets": inputs})
    variants = []
    for name in gin_names:
        path = REPO_GIN_DIR / "objectives" / f"{name}.gin"
        if not path.is_file():
            known = sorted(p.stem for p in (REPO_GIN_DIR / "objectives").glob("*.gin"))
            raise UserError(f"no objective gin file {name!r}{did_you_mean(name, known)}")
        stage = Stage(
            key=f"pretrain_{name}",
            steps=settings.pretrain_steps,
            gin_files=(f"objectives/{name}.gin",),
            bindings=(lengths,),
        )
        variants.append(Variant(name, lambda task, stage=stage: stage))
    if from_scratch:
        variants.append(Variant("no_pretraining", lambda task: None))
    return variants


def _mixing_variants(settings: LabSettings, rate_gins: Sequence[str]) -> list[Variant]:
    variants = []
    everything = (settings.unsupervised_task, *settings.tasks)
    steps = settings.pretrain_steps + settings.finetune_steps
    for name in rate_gins:
        stage = Stage(
            key=f"mix_{name}", steps=steps, mixture_tasks=everything, mixing_rate=mixing_rate(name)
        )
        variants.append(Variant(name, lambda task, stage=stage: stage, finetune=False))
    return variants


def mixing_rate(gin_name: str) -> Callable:
    """The rate a `gin/mixtures/<name>.gin` file binds (the file stays the one definition).

    Parses that file alone: call it before any run's gin is parsed."""
    import gin

    from t5lab import gin_setup
    from t5lab.gin_setup import REPO_GIN_DIR

    path = REPO_GIN_DIR / "mixtures" / f"{gin_name}.gin"
    if not path.is_file():
        known = sorted(p.stem for p in (REPO_GIN_DIR / "mixtures").glob("*.gin"))
        raise UserError(f"no mixing gin file {gin_name!r}{did_you_mean(gin_name, known)}")
    gin_setup.parse_flags(gin_files=[str(path)], bindings=[], search_paths=[])
    rate = gin.query_parameter("define_mixture.rate")
    return rate.scoped_configurable_fn()  # `@equal()`: the instance the file describes


def study_variants(
    *,
    study: str,
    settings: LabSettings,
    variants: Sequence[str] = (),
    include_no_pretraining: bool = True,
) -> list[Variant]:
    """The variants of a named study; `variants` overrides its default list."""
    if study == "objectives":
        names = variants or OBJECTIVES
        return _objective_variants(settings, names, from_scratch=include_no_pretraining)
    if study == "corruption-rate":
        return _objective_variants(settings, variants or CORRUPTION_RATES, from_scratch=False)
    if study == "span-length":
        return _objective_variants(settings, variants or SPAN_LENGTHS, from_scratch=False)
    if study == "mixing":
        return _mixing_variants(settings, variants or MIXING)
    raise UserError(f"unknown study {study!r}{did_you_mean(study, STUDIES)}")
