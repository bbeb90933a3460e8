"""The T5 paper's other benchmarks and its pretraining task, over tfds.

- `squad_v010_allanswers`: SQuAD v1.1, `question: ... context: ...` -> the first answer,
  scored (EM / F1) against every reference answer.
- `cnn_dailymail_v002`: `summarize: <article>` -> highlights, ROUGE-1/2/Lsum.
- `wmt14_ende_v003`, `wmt15_enfr_v003`, `wmt16_enro_v003`: `translate English to German: ...`,
  BLEU (sacrebleu).
- `c4_span_corruption`: C4 (`c4/en`) with t5lab's span corruption, the paper's pretraining
  objective.

All use t5lab's default vocabulary (see `tasks.text_to_text`); a vocabulary trained on C4
and the WMT languages is what real runs would use.
"""

import functools

from t5lab.data import text_preprocessors
from t5lab.data.objectives.t5_span_corruption import span_corruption_objective
from t5lab.data.vocab import get_vocabulary
from t5lab.eval import metrics, superglue_metrics
from tasks.pretraining import register_pretraining_task
from tasks.text_to_text import register_text_to_text_task, tfds_source

SQUAD_TASK = "squad_v010_allanswers"
CNN_DAILYMAIL_TASK = "cnn_dailymail_v002"
C4_SPAN_CORRUPTION_TASK = "c4_span_corruption"
# task name: (tfds name, source language, target language)
WMT_TASKS = {
    "wmt14_ende_v003": ("wmt14_translate/de-en:1.0.0", "en", "de"),
    "wmt15_enfr_v003": ("wmt15_translate/fr-en:1.0.0", "en", "fr"),
    "wmt16_enro_v003": ("wmt16_translate/ro-en:1.0.0", "en", "ro"),
}
_SPLITS = ("train", "validation", "test")


def _register() -> None:
    register_text_to_text_task(
        name=SQUAD_TASK,
        source=tfds_source(tfds_name="squad/v1.1:3.0.0", splits=("train", "validation")),
        text_preprocessors=[text_preprocessors.squad],
        postprocess_fn=superglue_metrics.qa,
        metric_fns=[metrics.squad],
    )
    register_text_to_text_task(
        name=CNN_DAILYMAIL_TASK,
        source=tfds_source(tfds_name="cnn_dailymail:3.4.0", splits=_SPLITS),
        text_preprocessors=[
            functools.partial(
                text_preprocessors.summarize, article_key="article", summary_key="highlights"
            )
        ],
        metric_fns=[metrics.rouge],
    )
    for name, (tfds_name, source_language, target_language) in WMT_TASKS.items():
        register_text_to_text_task(
            name=name,
            source=tfds_source(tfds_name=tfds_name, splits=_SPLITS),
            text_preprocessors=[
                functools.partial(
                    text_preprocessors.translate,
                    source_language=source_language,
                    target_language=target_language,
                )
            ],
            metric_fns=[metrics.bleu],
        )
    register_pretraining_task(
        name=C4_SPAN_CORRUPTION_TASK,
        source=tfds_source(tfds_name="c4/en:3.1.0", splits=("train", "validation")),
        vocabulary=get_vocabulary(),
        preprocessors=span_corruption_objective(),
    )


_register()
