//! Puts libtorch's library directory into the run path of the fuzz targets (as
//! `stages/build.rs` does for that crate's binaries), so that they start without
//! `LD_LIBRARY_PATH`.
fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
