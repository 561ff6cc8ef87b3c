#!/usr/bin/env python3
"""Converts a Whisper model in CTranslate2 format to whisper.cpp's ggml file.

    whisper_ct2_to_ggml.py MODEL_DIR OUT_FILE [--type q8_0|f16]

MODEL_DIR holds CTranslate2's `model.bin` and the Hugging Face
`tokenizer.json` (as faster-whisper models ship them). The output is the
legacy ggml container that whisper.cpp's `whisper_init_from_file` reads:

    magic 'ggml', 11 int32 hyper-parameters (the last is the file type),
    the mel filterbank (n_mel x n_fft float32),
    the vocabulary (count, then length-prefixed token bytes),
    the tensors (n_dims, name length, type, dims innermost first, name, data).

Only numpy is needed. The mel filterbank is not in the CTranslate2 model (its
runtime computes it), so it is computed here exactly as librosa's
`filters.mel(sr=16000, n_fft=400, n_mels=N)` does (Slaney mel scale, Slaney
area normalisation), which is what OpenAI's Whisper ships.

With `--type q8_0` (the default) every 2-D weight matrix except the
positional embeddings is quantized to ggml's Q8_0 blocks, as whisper.cpp's
own `quantize` tool does; 1-D tensors stay float32 and the convolutions
float16, which is what whisper.cpp allocates for a Q8_0 model.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

# CTranslate2 DataType ids (include/ctranslate2/types.h).
CT2_DTYPES = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}

# ggml type ids (ggml.h) and file types (ggml_ftype).
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_Q8_0 = 8
GGML_FTYPE_MOSTLY_F16 = 1
GGML_FTYPE_MOSTLY_Q8_0 = 7
# whisper.cpp stores the quantization format version in the file type
# (ftype + 1000 * GGML_QNT_VERSION) for quantized files.
GGML_QNT_VERSION = 2
GGML_QNT_VERSION_FACTOR = 1000
QK8_0 = 32

# Kept unquantized by whisper.cpp's quantize tool even though they are 2-D:
# the model allocates them as float32.
KEEP_F32 = {
    "encoder.positional_embedding",
    "decoder.positional_embedding",
    "encoder.conv1.bias",
    "encoder.conv2.bias",
}


def fail(msg):
    print(f"whisper_ct2_to_ggml: {msg}", file=sys.stderr)
    sys.exit(1)


# ------------------------------------------------------------ reading ---


def read_ct2(path):
    """Returns ({name: ndarray}, {alias: name}) from a CTranslate2 model.bin."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal pos
        n = take("H")
        s = buf[pos : pos + n - 1].decode("utf-8")  # n counts the NUL
        pos += n
        return s

    version = take("I")
    if version < 5:
        fail(f"{path}: CTranslate2 binary version {version} is not supported (need 5 or 6)")
    spec = string()
    if spec != "WhisperSpec":
        fail(f"{path}: a {spec}, not a Whisper model")
    take("I")  # spec revision
    variables = {}
    for _ in range(take("I")):
        name = string()
        ndim = take("B")
        shape = tuple(take("I") for _ in range(ndim))
        dtype_id = take("B")
        nbytes = take("I")
        if dtype_id not in CT2_DTYPES:
            fail(f"{path}: {name} has unsupported data type {dtype_id}")
        data = np.frombuffer(buf, dtype=CT2_DTYPES[dtype_id], count=nbytes // np.dtype(CT2_DTYPES[dtype_id]).itemsize, offset=pos)
        pos += nbytes
        variables[name] = data.reshape(shape) if shape else data
    aliases = {}
    if pos < len(buf):
        for _ in range(take("I")):
            alias = string()
            aliases[alias] = string()
    return variables, aliases


def gpt2_byte_decoder():
    """The inverse of GPT-2's byte-to-unicode table used by byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def read_tokens(path):
    """Token bytes in id order, up to (not including) <|endoftext|>.

    whisper.cpp's ggml files carry the BPE ranks only (tiktoken's list);
    it names the special tokens that follow itself.
    """
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    model = tok.get("model", {})
    if model.get("type") != "BPE" or "vocab" not in model:
        fail(f"{path}: not a byte-level BPE tokenizer")
    specials = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    eot = specials.get("<|endoftext|>")
    if eot is None:
        fail(f"{path}: no <|endoftext|> token")
    by_id = {i: s for s, i in model["vocab"].items()}
    decoder = gpt2_byte_decoder()
    tokens = []
    for i in range(eot):
        if i not in by_id:
            fail(f"{path}: token id {i} missing")
        try:
            tokens.append(bytes(decoder[c] for c in by_id[i]))
        except KeyError:
            fail(f"{path}: token {i} is not byte-level encoded")
    return tokens


# ---------------------------------------------------- mel filterbank ---


def hz_to_mel(f):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr, n_fft, n_mels):
    """librosa.filters.mel(sr, n_fft, n_mels) with its defaults (fmin 0,
    fmax sr/2, htk False, norm 'slaney'), as float32 [n_mels, 1 + n_fft/2]."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    return weights


# ------------------------------------------------------ quantization ---


def quantize_q8_0(x):
    """ggml's reference Q8_0: blocks of 32, scale max|x|/127 as float16,
    values round(x/scale) as int8 (rounding half away from zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.max(np.abs(x), axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    scaled = x * inv[:, None]
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))).astype(np.int8)
    out = np.empty(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    out["d"] = d.astype(np.float16)
    out["qs"] = q
    return out.tobytes()


# ------------------------------------------------------------ mapping ---


def whisper_tensors(v, aliases):
    """Yields (ggml name, float array) in whisper.cpp's naming."""

    def get(name):
        name = aliases.get(name, name)
        if name not in v:
            fail(f"model.bin has no variable {name}")
        return v[name]

    def n_layers(prefix):
        n = 0
        while f"{prefix}/layer_{n}/ffn/linear_0/weight" in v:
            n += 1
        return n

    def linear(dst, src, rows=None, bias=True):
        w = get(f"{src}/weight")
        b = get(f"{src}/bias") if bias else None
        if rows is not None:
            w = w[rows]
            b = b[rows] if b is not None else None
        yield f"{dst}.weight", w
        if b is not None:
            yield f"{dst}.bias", b

    def norm(dst, src):
        yield f"{dst}.weight", get(f"{src}/gamma")
        yield f"{dst}.bias", get(f"{src}/beta")

    def check_zero_key_bias(src, rows):
        # Whisper's key projections have no bias; CTranslate2 fuses them
        # with a zero one, which whisper.cpp has no tensor for.
        b = get(f"{src}/bias")[rows].astype(np.float32)
        if np.any(b != 0):
            fail(f"{src}: non-zero key bias, not a Whisper model")

    def fused_qkv(dst, src, n):
        q, k, vv = slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n)
        check_zero_key_bias(src, k)
        yield from linear(f"{dst}.query", src, q)
        yield from linear(f"{dst}.key", src, k, bias=False)
        yield from linear(f"{dst}.value", src, vv)

    n_state = get("encoder/layer_norm/gamma").shape[0]

    yield "encoder.positional_embedding", get("encoder/position_encodings/encodings")
    for c in ("conv1", "conv2"):
        yield f"encoder.{c}.weight", get(f"encoder/{c}/weight")
        b = get(f"encoder/{c}/bias")
        yield f"encoder.{c}.bias", b.reshape(b.shape[0], 1)
    for i in range(n_layers("encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        yield from norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        yield from fused_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0", n_state)
        yield from linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        yield from norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        yield from linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        yield from linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    yield from norm("encoder.ln_post", "encoder/layer_norm")

    yield "decoder.positional_embedding", get("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", get("decoder/embeddings/weight")
    for i in range(n_layers("decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        yield from norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        yield from fused_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0", n_state)
        yield from linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        yield from norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        yield from linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        kv = f"{src}/attention/linear_1"
        check_zero_key_bias(kv, slice(0, n_state))
        yield from linear(f"{dst}.cross_attn.key", kv, slice(0, n_state), bias=False)
        yield from linear(f"{dst}.cross_attn.value", kv, slice(n_state, 2 * n_state))
        yield from linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        yield from norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        yield from linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        yield from linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    yield from norm("decoder.ln", "decoder/layer_norm")


def hparams(v):
    def layers(prefix):
        n = 0
        while f"{prefix}/layer_{n}/ffn/linear_0/weight" in v:
            n += 1
        return n

    def scalar(name):
        return int(np.asarray(v[name]).reshape(-1)[0])

    enc_pe = v["encoder/position_encodings/encodings"]
    dec_pe = v["decoder/position_encodings/encodings"]
    return {
        "n_vocab": v["decoder/embeddings/weight"].shape[0],
        "n_audio_ctx": enc_pe.shape[0],
        "n_audio_state": enc_pe.shape[1],
        "n_audio_head": scalar("encoder/num_heads"),
        "n_audio_layer": layers("encoder"),
        "n_text_ctx": dec_pe.shape[0],
        "n_text_state": dec_pe.shape[1],
        "n_text_head": scalar("decoder/num_heads"),
        "n_text_layer": layers("decoder"),
        "n_mels": v["encoder/conv1/weight"].shape[1],
    }


# ------------------------------------------------------------ writing ---


def convert(model_dir, out_path, wtype):
    variables, aliases = read_ct2(os.path.join(model_dir, "model.bin"))
    tokens = read_tokens(os.path.join(model_dir, "tokenizer.json"))
    hp = hparams(variables)
    if hp["n_audio_state"] != hp["n_text_state"]:
        fail("encoder and decoder widths differ")
    if wtype == "q8_0":
        ftype = GGML_FTYPE_MOSTLY_Q8_0 + GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR
    else:
        ftype = GGML_FTYPE_MOSTLY_F16
    filters = mel_filters(16000, 400, hp["n_mels"])

    tmp = out_path + ".part"
    count = 0
    with open(tmp, "wb") as f:
        f.write(struct.pack("<i", 0x67676D6C))
        for key in (
            "n_vocab",
            "n_audio_ctx",
            "n_audio_state",
            "n_audio_head",
            "n_audio_layer",
            "n_text_ctx",
            "n_text_state",
            "n_text_head",
            "n_text_layer",
            "n_mels",
        ):
            f.write(struct.pack("<i", hp[key]))
        f.write(struct.pack("<i", ftype))

        f.write(struct.pack("<ii", filters.shape[0], filters.shape[1]))
        f.write(filters.astype("<f4").tobytes())

        f.write(struct.pack("<i", len(tokens)))
        for t in tokens:
            f.write(struct.pack("<i", len(t)))
            f.write(t)

        for name, data in whisper_tensors(variables, aliases):
            data = np.asarray(data, dtype=np.float32)
            n_dims = data.ndim
            if name in KEEP_F32 or n_dims == 1:
                ttype, payload = GGML_TYPE_F32, data.astype("<f4").tobytes()
            elif n_dims == 3 or wtype == "f16":
                # Convolutions are float16 in every non-f32 model.
                ttype, payload = GGML_TYPE_F16, data.astype("<f2").tobytes()
            else:
                if data.shape[-1] % QK8_0:
                    fail(f"{name}: rows of {data.shape[-1]} do not split into blocks of {QK8_0}")
                ttype, payload = GGML_TYPE_Q8_0, quantize_q8_0(data)
            encoded = name.encode("utf-8")
            f.write(struct.pack("<iii", n_dims, len(encoded), ttype))
            for dim in reversed(data.shape):
                f.write(struct.pack("<i", dim))
            f.write(encoded)
            f.write(payload)
            count += 1

    # encoder: pe, conv1 w/b, conv2 w/b, ln_post w/b (7) and 15 per block;
    # decoder: pe, token_embedding, ln w/b (4) and 24 per block.
    expected = 7 + 15 * hp["n_audio_layer"] + 4 + 24 * hp["n_text_layer"]
    if count != expected:
        os.unlink(tmp)
        fail(f"wrote {count} tensors, whisper.cpp expects {expected}")
    os.replace(tmp, out_path)
    print(
        f"whisper_ct2_to_ggml: {out_path}: {wtype}, {count} tensors, "
        f"{hp['n_audio_layer']}+{hp['n_text_layer']} layers, vocab {hp['n_vocab']}, "
        f"{os.path.getsize(out_path) / 1e6:.1f} MB",
        file=sys.stderr,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("out_file")
    p.add_argument("--type", choices=("q8_0", "f16"), default="q8_0")
    a = p.parse_args()
    convert(a.model_dir, a.out_file, a.type)


if __name__ == "__main__":
    main()
