//! `cargo run -p ecr_codegen`: rewrites every generated file from the pinned models.

fn main() -> Result<(), String> {
    let root = ecr_codegen::workspace_root();
    for (path, text) in ecr_codegen::generate_all()? {
        let full = root.join(&path);
        let unchanged = std::fs::read_to_string(&full).is_ok_and(|old| old == text);
        if !unchanged {
            std::fs::write(&full, text).map_err(|e| format!("writing {}: {e}", full.display()))?;
        }
        println!(
            "{} {}",
            if unchanged { "unchanged" } else { "wrote" },
            path.display()
        );
    }
    Ok(())
}
