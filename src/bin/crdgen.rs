//! Prints Hoist's CustomResourceDefinitions (same as `hoist crds`), in the
//! style of controller-rs's crdgen.

fn main() -> std::process::ExitCode {
    match hoist::cli::crds(None) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("crdgen: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
