//! Compiles `proto/crescendo/v1/*.proto` with protox (pure Rust), so no machine needs `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = ["crescendo/v1/agent.proto", "crescendo/v1/admin.proto"];
    let descriptors = protox::compile(files, [root])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    for file in files {
        println!("cargo:rerun-if-changed={root}/{file}");
    }
    Ok(())
}
