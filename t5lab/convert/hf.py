"""Hugging Face T5 checkpoints (config.json + model.safetensors) <-> t5lab params.

Why the mapping is this simple: HF T5 follows Mesh TF exactly (no 1/sqrt(d) in attention,
RMSNorm without bias, tanh-GELU for "gated-gelu", relative bias on block 0 of each stack,
tied logits scaled by d_model**-0.5), which is what t5lab's model does too. So conversion is
only renaming, transposing torch [out, in] Linear weights and splitting heads.

Only safetensors is read: a pickled `pytorch_model.bin` can run code when loaded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from t5lab.errors import UserError
from t5lab.models.config import T5Config
from t5lab.models.layer_stack import has_scanned_layers, stack_layer_params, unstack_layer_params
from t5lab.models.t5 import T5Transformer

# HF feed_forward_proj -> our MlpBlock activations; the first entry per tuple wins on export.
# HF "gated-gelu" means gelu_new (tanh approximation), which is our "gelu"; HF "gelu" is exact.
_FF_PROJ: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("relu", ("relu",)),
    ("gated-gelu", ("gelu", "linear")),
    ("gated-gelu_new", ("gelu", "linear")),
    ("gated-relu", ("relu", "linear")),
    ("gated-silu", ("silu", "linear")),
    ("silu", ("silu",)),
    ("gelu_new", ("gelu",)),
    ("gelu", ("gelu_exact",)),
    ("gated-gelu_exact", ("gelu_exact", "linear")),
)
_LN_EPS = 1e-6  # t5lab's RMSNorm epsilon is fixed
# Present in some HF files but duplicates of shared.weight (or unused by T5).
_IGNORED = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
)


def config_from_hf(*, hf_config: Mapping[str, Any]) -> T5Config:
    """t5lab config from an HF T5 config.json dict; refuses what our model cannot express."""
    ff = hf_config.get("feed_forward_proj", "relu")
    acts = dict(_FF_PROJ).get(ff)
    if acts is None:
        raise UserError(f"unsupported feed_forward_proj {ff!r}; known: {[k for k, _ in _FF_PROJ]}")
    eps = float(hf_config.get("layer_norm_epsilon", _LN_EPS))
    if abs(eps - _LN_EPS) > 1e-12:
        raise UserError(f"layer_norm_epsilon must be {_LN_EPS} (t5lab's RMSNorm), got {eps}")
    for key in ("pad_token_id", "decoder_start_token_id"):
        if hf_config.get(key, 0) not in (0, None):
            raise UserError(
                f"{key} must be 0 (t5lab treats id 0 as pad and start), got {hf_config[key]}"
            )
    num_layers = int(hf_config["num_layers"])
    # transformers>=5 always sets tie_word_embeddings=true and records the d_model**-0.5
    # scaling (the real v1.0/v1.1 difference) as scale_decoder_outputs.
    scaled = hf_config.get("scale_decoder_outputs", hf_config.get("tie_word_embeddings", True))
    return T5Config(
        vocab_size=int(hf_config["vocab_size"]),
        emb_dim=int(hf_config["d_model"]),
        num_heads=int(hf_config["num_heads"]),
        head_dim=int(hf_config["d_kv"]),
        mlp_dim=int(hf_config["d_ff"]),
        num_encoder_layers=num_layers,
        num_decoder_layers=int(hf_config.get("num_decoder_layers") or num_layers),
        mlp_activations=acts,
        dropout_rate=float(hf_config.get("dropout_rate", 0.0)),
        logits_via_embedding=bool(scaled),
        relative_attention_num_buckets=int(hf_config.get("relative_attention_num_buckets", 32)),
        relative_attention_max_distance=int(hf_config.get("relative_attention_max_distance", 128)),
    )


def config_to_hf(*, config: T5Config) -> dict[str, Any]:
    """HF config.json dict; tie_word_embeddings carries v1.0 (tied+scaled) vs v1.1 (untied)."""
    ff = next((name for name, acts in _FF_PROJ if acts == config.mlp_activations), None)
    if ff is None:
        raise UserError(f"mlp_activations {config.mlp_activations} have no HF feed_forward_proj")
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "is_encoder_decoder": True,
        "vocab_size": config.vocab_size,
        "d_model": config.emb_dim,
        "d_kv": config.head_dim,
        "d_ff": config.mlp_dim,
        "num_layers": config.num_encoder_layers,
        "num_decoder_layers": config.num_decoder_layers,
        "num_heads": config.num_heads,
        "relative_attention_num_buckets": config.relative_attention_num_buckets,
        "relative_attention_max_distance": config.relative_attention_max_distance,
        "feed_forward_proj": ff,
        "tie_word_embeddings": config.logits_via_embedding,
        "dropout_rate": config.dropout_rate,
        "layer_norm_epsilon": _LN_EPS,
        "initializer_factor": 1.0,
        "decoder_start_token_id": 0,
        "pad_token_id": 0,
        "eos_token_id": 1,
    }


def _mlp_names(config: T5Config) -> list[str]:
    n = len(config.mlp_activations)
    return ["wi"] if n == 1 else [f"wi_{i}" for i in range(n)]


def _attention_pairs(ours: str, theirs: str) -> list[tuple[str, str, str]]:
    return [
        (f"{ours}/{a}/kernel", f"{theirs}.{b}.weight", kind)
        for a, b, kind in (
            ("query", "q", "in"),
            ("key", "k", "in"),
            ("value", "v", "in"),
            ("out", "o", "out"),
        )
    ]


def _mapping(config: T5Config) -> list[tuple[str, str, str]]:
    """(our '/'-path, HF name, layout kind) for every tensor; kinds say how to reshape."""
    rows: list[tuple[str, str, str]] = [("token_embedder/embedding", "shared.weight", "copy")]
    mlp = _mlp_names(config)
    for stack, n_layers in (
        ("encoder", config.num_encoder_layers),
        ("decoder", config.num_decoder_layers),
    ):
        rows.append(
            (
                f"{stack}/relpos_bias/rel_embedding",
                f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                "T",
            )
        )
        rows.append((f"{stack}/{stack}_norm/scale", f"{stack}.final_layer_norm.weight", "copy"))
        for i in range(n_layers):
            ours, hf = f"{stack}/layers_{i}", f"{stack}.block.{i}.layer"
            if stack == "encoder":
                norms = [("pre_attention_layer_norm", 0), ("pre_mlp_layer_norm", 1)]
                rows += _attention_pairs(f"{ours}/attention", f"{hf}.0.SelfAttention")
                mlp_idx = 1
            else:
                norms = [
                    ("pre_self_attention_layer_norm", 0),
                    ("pre_cross_attention_layer_norm", 1),
                    ("pre_mlp_layer_norm", 2),
                ]
                rows += _attention_pairs(f"{ours}/self_attention", f"{hf}.0.SelfAttention")
                rows += _attention_pairs(
                    f"{ours}/encoder_decoder_attention", f"{hf}.1.EncDecAttention"
                )
                mlp_idx = 2
            rows += [(f"{ours}/{n}/scale", f"{hf}.{j}.layer_norm.weight", "copy") for n, j in norms]
            rows += [
                (f"{ours}/mlp/{w}/kernel", f"{hf}.{mlp_idx}.DenseReluDense.{w}.weight", "T")
                for w in [*mlp, "wo"]
            ]
    if not config.logits_via_embedding:
        rows.append(("decoder/logits_dense/kernel", "lm_head.weight", "T"))
    return rows


def _expected_shapes(config: T5Config) -> dict[str, tuple[int, ...]]:
    """Our param shapes by '/'-path, from an abstract init (nothing allocated)."""
    tokens = jax.ShapeDtypeStruct((1, 4), jnp.int32)
    shapes = jax.eval_shape(
        lambda enc, dec: T5Transformer(config.replace(scan_layers=False)).init(
            jax.random.PRNGKey(0), enc, dec, enable_dropout=False
        ),
        tokens,
        tokens,
    )["params"]
    return {
        "/".join(p.key for p in path): tuple(leaf.shape)
        for path, leaf in jax.tree_util.tree_leaves_with_path(nn.unbox(shapes))
    }


def _to_ours(array: np.ndarray, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    # "in": [H*D, E] -> [E, H, D]; "out": [E, H*D] -> [H, D, E]; "T": plain transpose.
    return array.reshape(shape) if kind == "copy" else array.T.reshape(shape)


def params_from_hf(*, state_dict: Mapping[str, np.ndarray], config: T5Config) -> dict[str, Any]:
    """Nested float32 numpy params for `T5Transformer(config)` from HF tensor names."""
    expected = _expected_shapes(config)
    rows = _mapping(config)
    known = {hf for _, hf, _ in rows} | set(_IGNORED)
    if config.logits_via_embedding and "lm_head.weight" in state_dict:
        # Tied files sometimes still carry the head; it is only droppable if it is a copy.
        if not np.array_equal(state_dict["lm_head.weight"], state_dict.get("shared.weight")):
            raise UserError("tied (v1.0) config but lm_head.weight differs from shared.weight")
        known.add("lm_head.weight")
    unexpected = sorted(set(state_dict) - known)
    if unexpected:
        raise UserError(f"unexpected tensors in the HF checkpoint: {unexpected[:5]}")
    params: dict[str, Any] = {}
    for ours, hf, kind in rows:
        if hf in state_dict:
            array = np.asarray(state_dict[hf], dtype=np.float32)
        elif hf == "lm_head.weight" and "shared.weight" in state_dict:
            array = np.asarray(state_dict["shared.weight"], dtype=np.float32)  # HF tied it
        else:
            raise UserError(f"HF checkpoint lacks {hf!r} (needed for {ours})")
        shape = expected[ours]
        if array.size != int(np.prod(shape)):
            raise UserError(f"{hf} has shape {array.shape}, which does not fit {ours} {shape}")
        node = params
        *parents, leaf = ours.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = np.ascontiguousarray(_to_ours(array, kind, shape))
    if set(expected) != {ours for ours, _, _ in rows}:
        raise UserError("parameter tree mismatch; is the config consistent with the model?")
    return stack_layer_params(params=params) if config.scan_layers else params


def params_to_hf(*, params: Mapping[str, Any], config: T5Config) -> dict[str, np.ndarray]:
    """HF-named float32 tensors (torch Linear layout [out, in]) from our params."""
    if has_scanned_layers(params):  # scan_layers=True checkpoints: one block per layer in HF
        params = unstack_layer_params(params=params)
    out: dict[str, np.ndarray] = {}
    for ours, hf, kind in _mapping(config):
        node: Any = params
        for p in ours.split("/"):
            node = node[p]
        array = np.asarray(jax.device_get(node), dtype=np.float32)
        if kind == "in":
            array = array.reshape(array.shape[0], -1).T
        elif kind == "out":
            array = array.reshape(-1, array.shape[-1]).T
        elif kind == "T":
            array = array.T
        out[hf] = np.ascontiguousarray(array)
    return out


def _read_safetensors(directory: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    single = directory / "model.safetensors"
    if single.exists():
        return load_file(str(single))
    index = directory / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        merged: dict[str, np.ndarray] = {}
        for shard in shards:
            merged.update(load_file(str(directory / shard)))
        return merged
    if (directory / "pytorch_model.bin").exists():
        raise UserError(
            f"{directory} holds only pytorch_model.bin, which t5lab will not unpickle; convert "
            "it to safetensors first (e.g. load it in transformers and "
            "save_pretrained(..., safe_serialization=True))"
        )
    raise UserError(f"no model.safetensors in {directory}")


def load_hf_checkpoint(*, path: str) -> tuple[T5Config, dict[str, Any]]:
    """(config, params) from an HF T5 directory with config.json + model.safetensors."""
    directory = Path(path)
    config_file = directory / "config.json"
    if not config_file.exists():
        raise UserError(f"no config.json in {directory}")
    config = config_from_hf(hf_config=json.loads(config_file.read_text()))
    params = params_from_hf(state_dict=_read_safetensors(directory), config=config)
    return config, params


def save_hf_checkpoint(
    *,
    config: T5Config,
    params: Mapping[str, Any],
    out_dir: str,
    spm_path: str | None = None,
) -> None:
    """Write config.json + model.safetensors (+ spiece.model) loadable by transformers."""
    from safetensors.numpy import save_file

    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = params_to_hf(params=params, config=config)
    (directory / "config.json").write_text(json.dumps(config_to_hf(config=config), indent=2))
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    if spm_path is not None:
        shutil.copyfile(spm_path, directory / "spiece.model")
