use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    // Migrations are embedded by `sqlx::migrate!`; a new migration file must
    // rebuild the crate even when no Rust file changed.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=scripts/symbol-order.txt");
    println!("cargo:rerun-if-env-changed=TIDINGS_PLAIN_LINK");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    if env::var_os("TIDINGS_PLAIN_LINK").is_some() || !native_glibc_target() {
        return;
    }
    if glibc_at_least(2, 36) {
        // The binary is position-independent (ASLR), so the loader patches
        // ~66,000 pointers at start-up. As a plain relocation table (24 bytes
        // each) that is 1.5 MiB read, and kept resident, by every process;
        // packed (DT_RELR, glibc 2.36 and later) it is 26 KiB.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = Path::new("scripts/symbol-order.txt");
    if env::var("PROFILE").as_deref() == Ok("release") && order.exists() && links_with_rust_lld() {
        // The functions a collect and a run execute, placed together: the
        // code resident in a collect falls from ~11 MiB to ~4 MiB. Names
        // the binary lacks are linked where they would have been (see
        // scripts/symbol-order).
        let order = order.canonicalize().unwrap_or_else(|_| order.to_path_buf());
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Building for the machine the build runs on, a Linux with glibc: what
/// this script learns of the machine then holds where the binary runs.
fn native_glibc_target() -> bool {
    let target = env::var("TARGET").unwrap_or_default();
    target == env::var("HOST").unwrap_or_default() && target.ends_with("-linux-gnu")
}

/// A binary linked with packed relocations does not start on an older
/// glibc.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().trim_start_matches("glibc ").split('.');
    let have = (
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next().and_then(|p| p.parse::<u32>().ok()),
    );
    matches!(have, (Some(a), Some(b)) if (a, b) >= (major, minor))
}

/// `--symbol-ordering-file` is an LLD option that GNU ld rejects. Rust
/// links x86_64 Linux binaries with its bundled LLD since 1.90, unless the
/// build names another linker.
fn links_with_rust_lld() -> bool {
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") || env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let other_linker = ["linker", "link-self-contained", "fuse-ld"];
    if flags.split('\x1f').any(|f| other_linker.iter().any(|o| f.contains(o))) {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let minor = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
