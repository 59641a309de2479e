//! Builds the release widget into the server binary, so `image-chat-server serve` serves
//! `/embed.js` and `/pkg/…` with no files beside it.
//!
//! The widget is built by `scripts/build-widget.sh` (a wasm32 build with its own toolchain and
//! post-processing, which a build script cannot run) into `pkg/` at the workspace root, or the
//! directory named by `IMAGE_CHAT_WIDGET_DIR`. This script writes `$OUT_DIR/widget.rs`: one
//! `include_bytes!` per shipped file (`*.js`, `*.wasm`) with its Brotli and gzip twins and an
//! ETag, read by `src/embedded.rs`.
//!
//! Without a built widget the server still builds (the native tests need no wasm toolchain):
//! cargo prints a warning, and the binary says at startup and on `/embed.js` that it carries no
//! widget. The `require-widget` feature (release packages: the .deb) turns that into a build
//! error, so no package ships without it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IMAGE_CHAT_WIDGET_DIR");
    let dir = std::env::var_os("IMAGE_CHAT_WIDGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pkg"),
        PathBuf::from,
    );
    let required = std::env::var_os("CARGO_FEATURE_REQUIRE_WIDGET").is_some();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let code = match collect(&dir) {
        Some(files) => {
            // Watched only once it exists: cargo reruns a script whose watched path is missing
            // on every build, which would rebuild the server each time for everyone who never
            // builds the widget. `scripts/build-widget.sh` touches this file instead when it
            // creates `pkg/`.
            println!("cargo:rerun-if-changed={}", dir.display());
            generate(&dir, &files)
        }
        None if required => panic!(
            "the `require-widget` feature is on but {} holds no built widget \
             (embed.js, image_chat.js, image_chat_bg.wasm): run `bash scripts/build-widget.sh` first",
            dir.display()
        ),
        None => {
            println!(
                "cargo:warning=no built widget in {}: this image-chat-server will not serve \
                 /embed.js unless given --pkg-dir (run `bash scripts/build-widget.sh`, then build again)",
                dir.display()
            );
            "/// Built without the widget.\npub static WIDGET: Option<&[Asset]> = None;\n"
                .to_owned()
        }
    };
    std::fs::write(out.join("widget.rs"), code).expect("write $OUT_DIR/widget.rs");
}

/// The files to embed (paths relative to `dir`, `/`-separated, sorted), or `None` when `dir`
/// lacks one of the three files every page needs.
fn collect(dir: &Path) -> Option<Vec<String>> {
    let essentials = ["embed.js", "image_chat.js", "image_chat_bg.wasm"];
    if !essentials.iter().all(|f| dir.join(f).is_file()) {
        return None;
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files);
    files.sort();
    Some(files)
}

fn walk(dir: &Path, prefix: &str, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let relative = format!("{prefix}{name}");
        if path.is_dir() {
            walk(&path, &format!("{relative}/"), files);
        } else if name.ends_with(".js") || name.ends_with(".wasm") {
            files.push(relative);
        }
    }
}

fn generate(dir: &Path, files: &[String]) -> String {
    let mut code = String::from("/// The widget as `scripts/build-widget.sh` left it.\n");
    code.push_str("pub static WIDGET: Option<&[Asset]> = Some(&[\n");
    for file in files {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).expect("read a widget file");
        let twin = |suffix: &str| {
            let mut twin = path.clone().into_os_string();
            twin.push(suffix);
            let twin = PathBuf::from(twin);
            if twin.is_file() {
                format!("Some(include_bytes!({:?}))", absolute(&twin))
            } else {
                "None".to_owned()
            }
        };
        let _ = writeln!(
            code,
            "    Asset {{ path: {file:?}, identity: include_bytes!({:?}), br: {}, gzip: {}, \
             etag: \"\\\"{:016x}\\\"\" }},",
            absolute(&path),
            twin(".br"),
            twin(".gz"),
            fnv1a(&bytes),
        );
    }
    code.push_str("]);\n");
    code
}

fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// 64-bit FNV-1a: an ETag only has to change when the file does.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
