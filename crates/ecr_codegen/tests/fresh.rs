//! The checked-in generated code is what the generator makes of the pinned models today.

#[test]
fn generated_files_are_fresh() {
    let root = ecr_codegen::workspace_root();
    for (path, text) in ecr_codegen::generate_all().expect("the models generate") {
        let on_disk = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is stale or edited by hand: run `cargo run -p ecr_codegen` and commit the result",
            path.display()
        );
    }
}

#[test]
fn generation_is_deterministic() {
    let a = ecr_codegen::generate_all().unwrap();
    let b = ecr_codegen::generate_all().unwrap();
    assert_eq!(a, b);
}

#[test]
fn every_input_pattern_compiles_anchored_in_regex_lite() {
    let patterns = ecr_codegen::input_patterns().unwrap();
    assert!(!patterns.is_empty());
    for p in patterns {
        let re = regex_lite::Regex::new(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        // Anchored: a valid value with junk after it does not match.
        assert!(p.starts_with("^(?:") && p.ends_with(")$"), "{p}");
        let _ = re;
    }
}

#[test]
fn public_inputs_reach_the_catalog_and_tag_shapes() {
    let names = ecr_codegen::input_shape_names(&ecr_codegen::SERVICES[0]).unwrap();
    for n in [
        "RepositoryCatalogDataInput",
        "Tag",
        "TagKey",
        "LogoImageBlob",
        "RepositoryName",
    ] {
        assert!(names.contains(n), "{n}");
    }
    // Output-only shapes get no validate().
    assert!(!names.contains("Registry"));
}
