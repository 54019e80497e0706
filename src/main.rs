fn main() {
    for (file, yaml) in hoist::api::crds_yaml().unwrap() {
        println!("# {file}\n{yaml}");
    }
}
