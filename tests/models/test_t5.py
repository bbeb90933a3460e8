"""End-to-end behaviour of T5Transformer: masks, packing, cached decoding, greedy search."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from t5lab.eval.greedy import greedy_decode
from t5lab.models import T5Config, T5Transformer, init_decode_cache, param_count

TINY = T5Config(
    vocab_size=128,
    emb_dim=32,
    num_heads=2,
    head_dim=8,
    mlp_dim=48,
    num_encoder_layers=2,
    num_decoder_layers=2,
)


def make(cfg: T5Config = TINY, enc_len: int = 7, dec_len: int = 5, seed: int = 0):
    model = T5Transformer(cfg)
    enc = jnp.zeros((2, enc_len), jnp.int32)
    dec = jnp.zeros((2, dec_len), jnp.int32)
    init = jax.jit(functools.partial(model.init, enable_dropout=False))
    return model, nn.unbox(init(jax.random.PRNGKey(seed), enc, dec))["params"]


@functools.cache
def _jitted_apply(model: T5Transformer):
    return jax.jit(functools.partial(model.apply, enable_dropout=False))


def fwd(model, params, enc, dec, tgt=None, **kw):
    """Deterministic forward pass (jitted per model: eager apply is slow on CPU)."""
    return _jitted_apply(model)({"params": params}, enc, dec, tgt, **kw)


ENC = jnp.array([[5, 9, 12, 3, 1, 0, 0], [7, 8, 1, 0, 0, 0, 0]], jnp.int32)
TGT = jnp.array([[4, 6, 11, 1, 0], [20, 1, 0, 0, 0]], jnp.int32)
DEC = jnp.array([[0, 4, 6, 11, 1], [0, 20, 1, 0, 0]], jnp.int32)


def test_shapes_dtype_and_determinism() -> None:
    model, params = make()
    out = fwd(model, params, ENC, DEC, TGT)
    assert out.shape == (2, 5, TINY.vocab_size)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, fwd(model, params, ENC, DEC, TGT))
    assert np.all(np.isfinite(out))


def test_dropout_uses_dropout_rng() -> None:
    cfg = TINY.replace(dropout_rate=0.3)
    model, params = make(cfg)

    @jax.jit
    def run(seed: int):
        return model.apply(
            {"params": params}, ENC, DEC, TGT, rngs={"dropout": jax.random.PRNGKey(seed)}
        )

    assert not np.allclose(run(0), run(1))
    np.testing.assert_array_equal(run(0), run(0))
    np.testing.assert_array_equal(
        fwd(model, params, ENC, DEC, TGT), fwd(model, params, ENC, DEC, TGT)
    )


def test_bfloat16_compute_keeps_float32_params_and_logits() -> None:
    model, params = make(TINY.replace(dtype="bfloat16"))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    out = fwd(model, params, ENC, DEC, TGT)
    assert out.dtype == jnp.float32
    ref_model = T5Transformer(TINY)
    np.testing.assert_allclose(out, fwd(ref_model, params, ENC, DEC, TGT), atol=0.15)


def test_decoder_is_causal() -> None:
    model, params = make()
    base = fwd(model, params, ENC, DEC)  # no targets: every decoder position is a query
    for t in range(1, DEC.shape[1]):
        changed = fwd(model, params, ENC, DEC.at[:, t].set(77))
        np.testing.assert_allclose(changed[:, :t], base[:, :t], atol=1e-6)
        assert not np.allclose(changed[:, t:], base[:, t:])


def test_encoder_padding_is_ignored() -> None:
    model, params = make()
    base = fwd(model, params, ENC, DEC, TGT)
    padded = jnp.pad(ENC, ((0, 0), (0, 6)))
    real = np.asarray(TGT > 0)  # logits at padded target positions are never used
    np.testing.assert_allclose(fwd(model, params, padded, DEC, TGT)[real], base[real], atol=1e-5)
    # and a real token in that slot does change things
    assert not np.allclose(fwd(model, params, ENC.at[1, 5].set(9), DEC, TGT)[1], base[1])


def test_packed_batch_matches_unpacked_examples() -> None:
    model, params = make()
    e1, e2 = [5, 9, 12, 1], [7, 8, 1]
    t1, t2 = [4, 6, 1], [20, 21, 22, 1]

    def unpacked(e, t):
        d = [0] + t[:-1]
        a = jnp.array([e]), jnp.array([d]), jnp.array([t])
        return fwd(model, params, *a)[0]

    pad_e, pad_d = 2, 1
    enc = jnp.array([e1 + e2 + [0] * pad_e])
    tgt = jnp.array([t1 + t2 + [0] * pad_d])
    dec = jnp.array([[0] + t1[:-1] + [0] + t2[:-1] + [0] * pad_d])
    seg = lambda a, b, p: jnp.array([[1] * a + [2] * b + [0] * p])
    pos = lambda a, b, p: jnp.array([list(range(a)) + list(range(b)) + [0] * p])
    packed = fwd(
        model,
        params,
        enc,
        dec,
        tgt,
        encoder_segment_ids=seg(len(e1), len(e2), pad_e),
        decoder_segment_ids=seg(len(t1), len(t2), pad_d),
        encoder_positions=pos(len(e1), len(e2), pad_e),
        decoder_positions=pos(len(t1), len(t2), pad_d),
    )[0]
    np.testing.assert_allclose(packed[: len(t1)], unpacked(e1, t1), atol=1e-5)
    np.testing.assert_allclose(packed[len(t1) : len(t1) + len(t2)], unpacked(e2, t2), atol=1e-5)


def test_cached_decode_matches_full_decode() -> None:
    model, params = make()
    length = DEC.shape[1]
    full = fwd(model, params, ENC, DEC)  # no targets: causal-only mask, as when decoding
    encoded = model.apply({"params": params}, ENC, enable_dropout=False, method=model.encode)
    cache = init_decode_cache(model, 2, length)
    one_step = jax.jit(
        functools.partial(
            model.apply,
            enable_dropout=False,
            decode=True,
            method=model.decode,
            mutable=["cache"],
        )
    )
    for t in range(length):
        step, mutated = one_step(
            {"params": params, "cache": cache}, encoded, ENC, DEC[:, t : t + 1]
        )
        cache = mutated["cache"]
        np.testing.assert_allclose(step[:, 0], full[:, t], atol=1e-5)
    assert int(cache["decoder"]["cache_index"]) == length


@pytest.mark.parametrize("tied", [False, True])
def test_greedy_decode_matches_teacher_forced_argmax(tied: bool) -> None:
    cfg = TINY.replace(
        logits_via_embedding=tied, mlp_activations=("relu",) if tied else ("gelu", "linear")
    )
    model, params = make(cfg, seed=3)
    length = 6
    decode = jax.jit(functools.partial(greedy_decode, model=model, max_decode_length=length))
    out = np.asarray(decode(params=params, encoder_input_tokens=ENC))
    assert out.shape == (2, length)
    dec_in = jnp.pad(jnp.asarray(out), ((0, 0), (1, 0)))[:, :length]
    want = np.asarray(jnp.argmax(fwd(model, params, ENC, dec_in), axis=-1))
    for row in range(2):
        eos = np.flatnonzero(out[row] == 1)
        stop = eos[0] + 1 if eos.size else length
        np.testing.assert_array_equal(out[row, :stop], want[row, :stop])
        assert np.all(out[row, stop:] == 0)


def test_greedy_decode_stops_at_eos() -> None:
    model, params = make()
    run = functools.partial(greedy_decode, model=model, params=params, max_decode_length=4)
    free = np.asarray(run(encoder_input_tokens=ENC, eos_id=-1))  # never stops
    eos = int(free[0, 1])  # declare row 0's second token to be EOS
    out = np.asarray(run(encoder_input_tokens=ENC, eos_id=eos))
    np.testing.assert_array_equal(out[0], [free[0, 0], eos, 0, 0])
    hits = np.flatnonzero(free[1] == eos)
    stop = hits[0] + 1 if hits.size else 4
    np.testing.assert_array_equal(out[1, :stop], free[1, :stop])
    assert np.all(out[1, stop:] == 0)


def test_tied_logits_are_scaled_embedding_products() -> None:
    cfg = TINY.replace(logits_via_embedding=True)
    model, params = make(cfg)
    assert "logits_dense" not in params["decoder"]
    y, state = model.apply(
        {"params": params},
        ENC,
        DEC,
        TGT,
        enable_dropout=False,
        capture_intermediates=lambda mdl, _: mdl.name == "decoder_norm",
    )
    hidden = state["intermediates"]["decoder"]["decoder_norm"]["__call__"][0]
    table = params["token_embedder"]["embedding"]
    np.testing.assert_allclose(y, hidden @ table.T / np.sqrt(cfg.emb_dim), rtol=1e-5, atol=1e-6)


def test_remat_gives_same_logits() -> None:
    model, params = make()
    remat_model = T5Transformer(TINY.replace(remat="full"))
    np.testing.assert_allclose(
        fwd(remat_model, params, ENC, DEC, TGT), fwd(model, params, ENC, DEC, TGT), atol=1e-6
    )


def test_param_count_matches_init_and_axes_are_named() -> None:
    model = T5Transformer(TINY)
    variables = model.init(jax.random.PRNGKey(0), ENC, DEC, enable_dropout=False)
    params = nn.unbox(variables)["params"]
    assert param_count(TINY) == sum(x.size for x in jax.tree.leaves(params))
    specs = jax.tree.leaves(
        nn.get_partition_spec(variables)["params"], is_leaf=lambda x: isinstance(x, tuple)
    )
    allowed = {"vocab", "embed", "mlp", "heads", "kv", "joined_kv", "relpos_buckets"}
    assert len(specs) == len(jax.tree.leaves(params))
    assert all(spec and set(spec) <= allowed for spec in specs)
    # the shared embedding is used by both stacks but stored once
    assert set(params) == {"token_embedder", "encoder", "decoder"}


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        TINY.replace(remat="some")
    with pytest.raises(ValueError):
        TINY.replace(mlp_activations=("swish",))
    assert TINY.with_vocab_size(256).vocab_size == 256
    assert TINY.replace(mlp_activations=["relu"]).mlp_activations == ("relu",)
