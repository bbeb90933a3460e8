"""HF T5 import/export: logit and greedy-decode parity with transformers, exact round trip."""

import functools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import jax  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

from t5lab.convert import (  # noqa: E402
    config_from_hf,
    config_to_hf,
    load_hf_checkpoint,
    params_from_hf,
    params_to_hf,
    save_hf_checkpoint,
)
from t5lab.errors import UserError  # noqa: E402
from t5lab.eval.greedy import greedy_decode  # noqa: E402
from t5lab.models.t5 import T5Transformer  # noqa: E402

SIZES = {
    "small": dict(d_model=32, num_heads=2, d_kv=8, d_ff=64, num_layers=2, vocab_size=128),
    "wide": dict(d_model=64, num_heads=4, d_kv=16, d_ff=96, num_layers=1, vocab_size=256),
}
ARCHS = {"v1_0": ("relu", True), "v1_1": ("gated-gelu", False)}
CASES = [(a, s) for a in ARCHS for s in SIZES]


def _hf_model(arch: str, size: str, seed: int = 0):
    ff, tied = ARCHS[arch]
    torch.manual_seed(seed)
    cfg = transformers.T5Config(
        **SIZES[size],
        feed_forward_proj=ff,
        tie_word_embeddings=tied,
        dropout_rate=0.0,
        decoder_start_token_id=0,
    )
    model = transformers.T5ForConditionalGeneration(cfg).float().eval()
    with torch.no_grad():  # HF's init makes a random tied model emit only id 0; spread it
        model.shared.weight.normal_(0.0, 1.0)
        model.shared.weight[0].zero_()  # else tied logits echo the start token (id 0)
    if not tied:  # transformers>=5 ties lm_head even for v1.1: give it its own weights
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    return model


def _saved(tmp_path, arch: str, size: str):
    model = _hf_model(arch, size)
    model.save_pretrained(str(tmp_path), safe_serialization=True)
    return model


def _batch(vocab: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    enc = rng.integers(2, vocab, size=(3, 11)).astype(np.int32)
    tgt = rng.integers(2, vocab, size=(3, 7)).astype(np.int32)
    for row, (e_len, t_len) in enumerate([(11, 7), (6, 4), (3, 2)]):
        enc[row, e_len:] = 0
        tgt[row, t_len:] = 0
    dec_in = np.concatenate([np.zeros((3, 1), np.int32), tgt[:, :-1]], axis=1)
    return enc, dec_in, tgt


@pytest.mark.parametrize("arch,size", CASES)
def test_logits_match_transformers(tmp_path, arch, size):
    hf = _saved(tmp_path, arch, size)
    config, params = load_hf_checkpoint(path=str(tmp_path))
    assert config.logits_via_embedding == (arch == "v1_0")
    enc, dec_in, tgt = _batch(config.vocab_size)
    with torch.no_grad():
        ref = hf(
            input_ids=torch.tensor(enc, dtype=torch.long),
            attention_mask=torch.tensor(enc > 0, dtype=torch.long),
            decoder_input_ids=torch.tensor(dec_in, dtype=torch.long),
        ).logits.numpy()
    ours = T5Transformer(config).apply({"params": params}, enc, dec_in, tgt, enable_dropout=False)
    keep = tgt > 0
    diff = float(np.max(np.abs(np.asarray(ours)[keep] - ref[keep])))
    print(f"{arch}/{size}: max abs logit diff {diff:.2e}")
    assert diff <= 1e-4
    assert float(np.std(ref[keep])) > 1e-2  # the comparison is not between near-constants


@pytest.mark.parametrize("arch,size", CASES)
def test_round_trip_is_exact(tmp_path, arch, size):
    _saved(tmp_path / "hf", arch, size)
    original = load_file(str(tmp_path / "hf" / "model.safetensors"))
    hf_json = json.loads((tmp_path / "hf" / "config.json").read_text())
    config, params = load_hf_checkpoint(path=str(tmp_path / "hf"))
    back = params_to_hf(params=params, config=config)
    assert set(back) == set(original)
    for name, tensor in original.items():
        assert back[name].shape == tensor.shape, name
        assert np.array_equal(back[name], tensor), name

    save_hf_checkpoint(config=config, params=params, out_dir=str(tmp_path / "out"))
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    for key in (
        "d_model",
        "d_kv",
        "d_ff",
        "num_layers",
        "num_decoder_layers",
        "num_heads",
        "vocab_size",
        "feed_forward_proj",
        "relative_attention_num_buckets",
        "relative_attention_max_distance",
        "layer_norm_epsilon",
    ):
        assert written[key] == hf_json[key], key
    assert written["tie_word_embeddings"] == (arch == "v1_0")
    # Our own export loads back in transformers with identical weights.
    reloaded = transformers.T5ForConditionalGeneration.from_pretrained(str(tmp_path / "out"))
    sd = {k: v.detach().numpy() for k, v in reloaded.state_dict().items()}
    for name, tensor in original.items():
        assert np.array_equal(sd[name], tensor), name
    if "lm_head.weight" in original:  # untied (v1.1): HF must not tie it back to shared
        assert not np.array_equal(sd["lm_head.weight"], sd["shared.weight"])


@pytest.mark.parametrize("arch", list(ARCHS))
def test_greedy_matches_generate(tmp_path, arch):
    hf = _saved(tmp_path, arch, "small")
    config, params = load_hf_checkpoint(path=str(tmp_path))
    enc, _, _ = _batch(config.vocab_size, seed=3)
    with torch.no_grad():
        ref = hf.generate(
            input_ids=torch.tensor(enc, dtype=torch.long),
            attention_mask=torch.tensor(enc > 0, dtype=torch.long),
            max_new_tokens=8,
            do_sample=False,
            num_beams=1,
            decoder_start_token_id=0,
            eos_token_id=1,
            pad_token_id=0,
        ).numpy()
    assert (ref[:, 0] == 0).all()  # HF output starts with the decoder start token
    ref = ref[:, 1:]
    ref = np.pad(ref, ((0, 0), (0, 8 - ref.shape[1])))  # HF stops once every row hit EOS
    decode = jax.jit(
        functools.partial(greedy_decode, model=T5Transformer(config), max_decode_length=8)
    )
    ours = np.asarray(decode(params=params, encoder_input_tokens=enc))
    np.testing.assert_array_equal(ours, ref)
    assert len(np.unique(ours)) >= 3  # input-dependent tokens, not a constant pad stream


def test_tied_state_dict_checks():
    hf = _hf_model("v1_0", "small")
    sd = {k: v.detach().numpy() for k, v in hf.state_dict().items()}
    config = config_from_hf(hf_config=hf.config.to_dict())
    params = params_from_hf(state_dict=sd, config=config)
    assert "lm_head.weight" not in params_to_hf(params=params, config=config)
    assert config_to_hf(config=config)["feed_forward_proj"] == "relu"
    assert "lm_head.weight" in sd  # an in-memory tied state dict keeps a copy of the head
    with pytest.raises(UserError, match="differs"):
        params_from_hf(state_dict={**sd, "lm_head.weight": sd["shared.weight"] + 1}, config=config)
    with pytest.raises(UserError, match="unexpected"):
        params_from_hf(
            state_dict={**sd, "encoder.bogus.weight": sd["shared.weight"]}, config=config
        )


def test_refuses_pickled_checkpoint(tmp_path):
    hf = _hf_model("v1_0", "small")
    (tmp_path / "config.json").write_text(json.dumps(hf.config.to_dict()))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(UserError, match="safetensors"):
        load_hf_checkpoint(path=str(tmp_path))


def test_spm_is_copied(tmp_path):
    _saved(tmp_path / "hf", "v1_1", "small")
    config, params = load_hf_checkpoint(path=str(tmp_path / "hf"))
    spm = tmp_path / "x.model"
    spm.write_bytes(b"spm-bytes")
    save_hf_checkpoint(config=config, params=params, out_dir=str(tmp_path / "o"), spm_path=str(spm))
    assert (tmp_path / "o" / "spiece.model").read_bytes() == b"spm-bytes"


def test_cli_from_hf_fine_tune_and_to_hf_round_trip(tmp_path, capsys):
    """HF dir -> `convert from-hf` -> `train` from it -> `convert to-hf` -> transformers."""
    from t5lab.cli import main
    from tests.conftest import FIXTURES, save_random_hf_t5

    source = tmp_path / "hf_in"
    save_random_hf_t5(source)
    converted = tmp_path / "converted"
    assert main(["convert", "from-hf", str(source), "--out", str(converted)]) == 0
    assert "model.gin" in capsys.readouterr().out
    run = tmp_path / "run"
    flags = [
        f"--gin_file={FIXTURES / 'micro.gin'}",
        f"--gin_file={converted / 'model.gin'}",
        f"--gin.MODEL_DIR={run}",
    ]
    assert (
        main(
            [
                "train",
                *flags,
                f"--gin.train.initial_checkpoint={converted}",
                "--gin.TRAIN_STEPS=2",
                "--gin.train.eval_batches=0",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    exported = tmp_path / "hf_out"
    assert main(["convert", "to-hf", *flags, "--out", str(exported)]) == 0
    assert "wrote step 2" in capsys.readouterr().out
    reloaded = transformers.T5ForConditionalGeneration.from_pretrained(exported)
    assert reloaded.config.d_model == 32 and (exported / "spiece.model").is_file()
    # training moved the parameters away from the imported ones, but not far
    before = load_hf_checkpoint(path=str(source))[1]["encoder"]
    after = load_hf_checkpoint(path=str(exported))[1]["encoder"]
    pairs = zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True)
    diffs = [np.abs(a - b).max() for a, b in pairs]
    assert 0 < max(diffs) < 1.0


def test_initial_checkpoint_of_another_shape_is_a_user_error(tmp_path, capsys):
    from t5lab.cli import main
    from tests.conftest import FIXTURES, save_random_hf_t5

    source = tmp_path / "hf_in"
    save_random_hf_t5(source, d_model=48)  # the micro model has d_model 32
    assert main(["convert", "from-hf", str(source), "--out", str(tmp_path / "c")]) == 0
    args = [
        "train",
        f"--gin_file={FIXTURES / 'micro.gin'}",
        f"--gin.MODEL_DIR={tmp_path / 'r'}",
        f"--gin.train.initial_checkpoint={tmp_path / 'c'}",
        "--quiet",
    ]
    assert main(args) == 2
    assert "does not fit this model" in capsys.readouterr().err
