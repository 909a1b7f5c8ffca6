use std::env;
use std::process::Command;

fn main() {
    // Migrations are embedded by `sqlx::migrate!`; a new migration file must
    // rebuild the crate even when no Rust file changed.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=TIDINGS_PLAIN_LINK");
    if env::var_os("TIDINGS_PLAIN_LINK").is_some() || !native_glibc_target() {
        return;
    }
    if glibc_at_least(2, 36) {
        // The binary is position-independent (ASLR): packed relative
        // relocations keep the table the loader reads at every start small
        // (figures in BENCHMARKS.md, "Collect").
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
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
