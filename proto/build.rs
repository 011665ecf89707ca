//! Generates the gRPC code and the reflection descriptor set from `proto/`, with a vendored `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY-free: build scripts are single threaded; PROTOC is read by tonic-prost-build below.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let files = [
        "proto/tokenrouter/v1/config.proto",
        "proto/tokenrouter/v1/admin.proto",
        "proto/tokenrouter/v1/discovery.proto",
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("tokenrouter_descriptor.bin"))
        .compile_protos(&files, &["proto"])?;
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    Ok(())
}
