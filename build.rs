//! Links the `keyctl` binary with packed relative relocations (`-z
//! pack-relative-relocs`, DT_RELR) where the toolchain and C library support them.
//!
//! Why: the binary carries about 12,000 relative relocations (vtables, string tables),
//! 284 KB of RELA entries the dynamic loader reads at every exec; packed they are 4 KB.
//! A one-shot `verify` then touches about 150 KB fewer pages and runs 16k fewer
//! instructions (docs/benchmarks.md, "Issue 17 paid back"). Support needs GNU ld or lld
//! new enough to know the option and glibc 2.36 or later at run time, so a trivial
//! program is linked and run with it first; without support the binary links as
//! before. Only native dynamic Linux builds are probed (a cross build cannot run the
//! probe).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    // A static build (`cargo build-static`) has no dynamic loader to pay for
    // relocations at exec; its link is left exactly as it was measured.
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if target != host || !target.contains("-linux-gnu") || features.contains("crt-static") {
        return;
    }
    if probe().unwrap_or(false) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// True when `cc` links and the result runs with packed relocations.
fn probe() -> Option<bool> {
    let out = PathBuf::from(env::var_os("OUT_DIR")?);
    let src = out.join("relr_probe.c");
    let exe = out.join("relr_probe");
    // A relative relocation to pack: a pointer in initialised data of a PIE.
    std::fs::write(
        &src,
        "static const char *p[] = {\"ok\"};\nint main(void) { return p[0][0] != 'o'; }\n",
    )
    .ok()?;
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let linked = Command::new(cc)
        .arg("-pie")
        .arg("-fPIE")
        .arg("-Wl,-z,pack-relative-relocs")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .ok()?;
    // A warning (an old linker ignoring the option) counts as no support too.
    if !linked.status.success() || !linked.stderr.is_empty() {
        return Some(false);
    }
    Some(Command::new(&exe).status().ok()?.success())
}
