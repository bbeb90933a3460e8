"""The five training regimes of T5's table 14, as `lab` variants on one model and budget.

Every regime pretrains for `pretrain_steps` and (except multitask training, which is scored
directly) fine-tunes each task for `finetune_steps`; multitask training runs for
`pretrain_steps + finetune_steps`, the same total, as in Raffel et al. (2020, section 3.5.3).
Mixtures always contain the unsupervised task except in supervised multitask pretraining.
"""

from t5lab.data.mixing import leave_one_out
from t5lab.experiments.lab import LabSettings, Stage, Variant

REGIMES = (
    "unsupervised_pretrain_finetune",
    "multitask_training",
    "multitask_pretrain_finetune",
    "leave_one_out_finetune",
    "supervised_multitask_finetune",
)


def regime_variants(*, settings: LabSettings) -> list[Variant]:
    tasks = tuple(settings.tasks)
    everything = (settings.unsupervised_task, *tasks)
    pre, total = settings.pretrain_steps, settings.pretrain_steps + settings.finetune_steps
    unsupervised = Stage(key="unsupervised", steps=pre, task=settings.unsupervised_task)
    multitask_long = Stage(key="multitask_long", steps=total, mixture_tasks=everything)
    multitask = Stage(key="multitask", steps=pre, mixture_tasks=everything)
    supervised = Stage(key="supervised_multitask", steps=pre, mixture_tasks=tasks)

    def without(task: str) -> Stage:
        return Stage(
            key=f"leave_out_{task}",
            steps=pre,
            mixture_tasks=tuple(leave_one_out(tasks=everything, target=task)),
        )

    return [
        Variant(REGIMES[0], lambda task: unsupervised),
        Variant(REGIMES[1], lambda task: multitask_long, finetune=False),
        Variant(REGIMES[2], lambda task: multitask),
        Variant(REGIMES[3], without),
        Variant(REGIMES[4], lambda task: supervised),
    ]
