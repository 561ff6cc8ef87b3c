//! Makes the sherpa-onnx shared libraries (the Piper voice's runtime) load at
//! run time wherever the target directory is.
//!
//! `sherpa-onnx-sys` links them from `SHERPA_ONNX_LIB_DIR` (see
//! `.cargo/config.toml`), but the rpath it asks for only applies to its own
//! targets, and the copies it makes land in `target/<profile>/` and not in
//! `deps/`, where test and bench binaries live. So every binary of this
//! package gets an rpath of `$ORIGIN` (and `$ORIGIN/../lib/hotline` for an
//! installed layout such as `/usr/local/bin` + `/usr/local/lib/hotline`), and
//! the libraries are copied next to them.

use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What the binaries load: the C API, and ONNX Runtime, which the C API loads
/// from its own directory.
const LIBS: [&str; 2] = ["libsherpa-onnx-c-api.so", "libonnxruntime.so"];

fn main() {
    println!("cargo:rerun-if-env-changed=SHERPA_ONNX_LIB_DIR");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN:$ORIGIN/../lib/hotline");

    // Without it `sherpa-onnx-sys` stops the build with its own message.
    let Some(lib_dir) = env::var_os("SHERPA_ONNX_LIB_DIR").map(PathBuf::from) else {
        return;
    };
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/hotline-<hash>/out.
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    for lib in LIBS {
        let src = lib_dir.join(lib);
        println!("cargo:rerun-if-changed={}", src.display());
        if !src.is_file() {
            println!(
                "cargo:warning={} is missing: run scripts/models",
                src.display()
            );
            continue;
        }
        for dir in [profile_dir.to_path_buf(), profile_dir.join("deps")] {
            let dest = dir.join(lib);
            // A deleted copy makes the script run again.
            println!("cargo:rerun-if-changed={}", dest.display());
            if let Err(e) = install(&src, &dest) {
                println!(
                    "cargo:warning=cannot copy {} to {}: {e}",
                    src.display(),
                    dest.display()
                );
            }
        }
    }
}

/// Copies `src` to `dest` unless an identical copy is there. The copy is
/// written beside `dest` and renamed over it, never through an existing
/// file (which a running test binary may have mapped), and takes the
/// source's modification time so that `rerun-if-changed` on `dest` stays
/// quiet until the copy is deleted or the source changes.
fn install(src: &Path, dest: &Path) -> io::Result<()> {
    let src_meta = fs::metadata(src)?;
    let src_mtime = src_meta.modified()?;
    if let Ok(m) = fs::metadata(dest)
        && m.len() == src_meta.len()
        && m.modified().ok() == Some(src_mtime)
    {
        return Ok(());
    }
    fs::create_dir_all(dest.parent().unwrap_or(Path::new(".")))?;
    let tmp = dest.with_extension("so.tmp");
    fs::copy(src, &tmp)?;
    fs::File::options()
        .write(true)
        .open(&tmp)?
        .set_modified(src_mtime)?;
    fs::rename(&tmp, dest)
}
