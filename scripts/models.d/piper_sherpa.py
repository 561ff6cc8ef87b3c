"""Prepares a Piper voice for sherpa-onnx (run by piper.sh in $MODELS_VENV).

    python piper_sherpa.py VOICE.onnx VOICE.onnx.json OUT_DIR

Writes OUT_DIR/VOICE.onnx with the metadata sherpa-onnx's VITS loader reads
(the keys of sherpa-onnx's own scripts/piper/add_meta_data.py, plus
add_blank=0 because the piper token mapping already puts a pad between
phonemes), and OUT_DIR/tokens.txt ("symbol id" per line) from the voice's
phoneme_id_map. Piper voices ship without either.
"""

import json
import os
import sys

import onnx

# sherpa-onnx names the model's language in English, as iso639's Lang().name
# does; Piper's config only has the code.
LANGUAGE_NAMES = {"en": "English"}


def tokens(config):
    """The phoneme_id_map as (symbol, id) pairs, in id order."""
    pairs = []
    for symbol, ids in config["phoneme_id_map"].items():
        if symbol == "\n":
            # sherpa-onnx reads tokens.txt line by line: a newline symbol
            # cannot be written, and espeak never produces one.
            continue
        if len(symbol) != 1:
            sys.exit(f"piper_sherpa: symbol {symbol!r} is not one codepoint")
        ident = ids[0] if isinstance(ids, list) else ids
        pairs.append((symbol, int(ident)))
    for needed in ("_", "^", "$", " "):
        if needed not in dict(pairs):
            sys.exit(f"piper_sherpa: phoneme_id_map has no {needed!r}")
    return sorted(pairs, key=lambda p: p[1])


def metadata(config):
    sample_rate = int(config["audio"]["sample_rate"])
    if sample_rate == 22500:
        # A typo in some early Piper configs; the models run at 22,050 Hz.
        sample_rate = 22050
    code = config.get("language", {}).get("code", "")
    family = config.get("language", {}).get("family") or code.split("_")[0]
    return {
        "model_type": "vits",
        "comment": "piper",
        "language": LANGUAGE_NAMES.get(family, family),
        "voice": config.get("lang_code") or config["espeak"]["voice"],
        "has_espeak": "1",
        "n_speakers": str(int(config["num_speakers"])),
        "sample_rate": str(sample_rate),
        "add_blank": "0",
    }


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_path, config_path, out_dir = sys.argv[1:]
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)

    tokens_tmp = os.path.join(out_dir, "tokens.txt.tmp")
    with open(tokens_tmp, "w", encoding="utf-8") as f:
        for symbol, ident in tokens(config):
            f.write(f"{symbol} {ident}\n")

    model = onnx.load(model_path)
    del model.metadata_props[:]
    for key, value in metadata(config).items():
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = value
    name = os.path.basename(model_path)
    model_tmp = os.path.join(out_dir, name + ".tmp")
    onnx.save(model, model_tmp)

    os.replace(model_tmp, os.path.join(out_dir, name))
    os.replace(tokens_tmp, os.path.join(out_dir, "tokens.txt"))


if __name__ == "__main__":
    main()
