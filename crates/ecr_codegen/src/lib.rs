//! Generates the awsJson 1.1 shapes of berth's front ends from botocore's models (pinned in
//! `model/`): request and response structs with explicit serde names and `Option` members,
//! string enums, `validate()` for every shape an input reaches (required, length, range,
//! pattern, enum, with ECR's wording), and the operation enum. Handlers, errors and the checks
//! the model cannot express stay hand-written in `ecr_api`.
//!
//! The output is deterministic and checked in; `tests/fresh.rs` fails when it is stale.
//! Regenerate with `cargo run -p ecr_codegen`.

mod botocore;
mod emit;
mod overrides;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use botocore::{Model, Shape};
pub use emit::generate;
use overrides::{Overrides, Provided};

/// One service to generate: its pinned model and where its module goes.
pub struct Service {
    /// Under `crates/ecr_codegen/`.
    pub model: &'static str,
    /// Under the workspace root.
    pub output: &'static str,
    pub overrides: Overrides,
}

/// Every service berth generates. ECR (`ecr-2015-09-21.json`) joins as a second entry with its
/// own module (issue 15); the two models are never merged by shape name, as 52 of the names
/// they share differ in their definition or in a shape they reach.
pub const SERVICES: &[Service] = &[Service {
    model: "model/ecr-public-2020-10-30.json",
    output: "crates/ecr_api/src/shapes/ecr_public.rs",
    overrides: overrides::ECR_PUBLIC,
}];

fn codegen_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    codegen_dir()
        .parent()
        .and_then(Path::parent)
        .expect("crates/ecr_codegen sits two levels below the workspace root")
        .to_path_buf()
}

/// Every generated file: its path under the workspace root and its text.
pub fn generate_all() -> Result<Vec<(PathBuf, String)>, String> {
    SERVICES
        .iter()
        .map(|s| {
            let path = codegen_dir().join(s.model);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let model: Model =
                serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", s.model))?;
            Ok((PathBuf::from(s.output), generate(s, &model)?))
        })
        .collect()
}

/// Every pattern of the shapes an input reaches, as the generated code compiles it (anchored).
pub fn input_patterns() -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for s in SERVICES {
        let text =
            std::fs::read_to_string(codegen_dir().join(s.model)).map_err(|e| e.to_string())?;
        let model: Model = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let g = Gen::new(s, &model)?;
        for name in &g.input_shapes {
            if let Some(p) = &model.shapes[name.as_str()].pattern {
                out.push(anchored(p));
            }
        }
    }
    Ok(out)
}

/// Java's `matches()` is a whole-string match; regex-lite's `is_match` is not.
fn anchored(p: &str) -> String {
    format!("^(?:{p})$")
}

struct Gen<'m> {
    model: &'m Model,
    ov: &'m Overrides,
    /// Shapes some operation input reaches (they get `validate()`), in model order.
    input_shapes: Vec<String>,
    /// Shapes some input or output reaches, in model order.
    all_shapes: Vec<String>,
    /// Structures that borrow from the body (and so take `<'a>`).
    borrowing: HashSet<String>,
}

impl<'m> Gen<'m> {
    fn new(service: &'m Service, model: &'m Model) -> Result<Self, String> {
        let mut inputs = HashSet::new();
        let mut all = HashSet::new();
        for op in model.operations.values() {
            if let Some(i) = &op.input {
                reach(model, &i.shape, &mut inputs, &mut Vec::new())?;
                reach(model, &i.shape, &mut all, &mut Vec::new())?;
            }
            if let Some(o) = &op.output {
                reach(model, &o.shape, &mut all, &mut Vec::new())?;
            }
        }
        let order = |set: &HashSet<String>| {
            model
                .shapes
                .keys()
                .filter(|k| set.contains(*k))
                .cloned()
                .collect::<Vec<_>>()
        };
        let mut g = Gen {
            model,
            ov: &service.overrides,
            input_shapes: order(&inputs),
            all_shapes: order(&all),
            borrowing: HashSet::new(),
        };
        // Borrowing spreads up to every structure (or list) that holds a borrowing member;
        // the model has no cycles (checked by `reach`), so this settles.
        loop {
            let before = g.borrowing.len();
            for name in &g.all_shapes {
                if g.shape_borrows(name) {
                    g.borrowing.insert(name.clone());
                }
            }
            if g.borrowing.len() == before {
                break;
            }
        }
        Ok(g)
    }

    fn shape(&self, name: &str) -> &'m Shape {
        &self.model.shapes[name]
    }

    fn provided(&self, name: &str) -> Option<&'static Provided> {
        self.ov.provided.iter().find(|p| p.shape == name)
    }

    fn shape_borrows(&self, name: &str) -> bool {
        if let Some(p) = self.provided(name) {
            return p.borrows;
        }
        let s = self.shape(name);
        let mut refs = s
            .members
            .values()
            .chain(s.member.iter())
            .chain(s.value.iter());
        refs.any(|r| {
            self.borrowing.contains(&r.shape) || self.provided(&r.shape).is_some_and(|p| p.borrows)
        })
    }

    fn lifetime(&self, name: &str) -> &'static str {
        if self.borrowing.contains(name) {
            "<'a>"
        } else {
            ""
        }
    }

    /// The Rust type of a value of shape `name`.
    fn rust_type(&self, name: &str) -> String {
        if let Some(p) = self.provided(name) {
            return p.rust_type.to_owned();
        }
        let s = self.shape(name);
        match s.kind.as_str() {
            "string" => "String".into(),
            // `long` and `integer` alike: a JSON number beyond i32 (`maxResults` of 5000000000)
            // is then a range violation (InvalidParameterException) rather than a
            // SerializationException, as berth's ECR front end answers.
            "integer" | "long" => "i64".into(),
            "boolean" => "bool".into(),
            "double" | "float" => "f64".into(),
            "timestamp" => "Timestamp".into(),
            "blob" => "Blob".into(),
            "list" => format!(
                "Vec<{}>",
                self.rust_type(&s.member.as_ref().expect("list member").shape)
            ),
            "map" => format!(
                "BTreeMap<String, {}>",
                self.rust_type(&s.value.as_ref().expect("map value").shape)
            ),
            "structure" => format!("{name}{}", self.lifetime(name)),
            other => panic!("shape {name}: unsupported type {other}"),
        }
    }
}

/// Collects the shapes reachable from `name`, refusing a cycle (a recursive shape would need
/// `Box` and recursive validation, which no model needs today).
fn reach(
    model: &Model,
    name: &str,
    seen: &mut HashSet<String>,
    stack: &mut Vec<String>,
) -> Result<(), String> {
    if stack.iter().any(|s| s == name) {
        return Err(format!("cycle through shape {name}: {stack:?}"));
    }
    if !seen.insert(name.to_owned()) {
        return Ok(());
    }
    let s = model
        .shapes
        .get(name)
        .ok_or_else(|| format!("unknown shape {name}"))?;
    stack.push(name.to_owned());
    for r in s
        .members
        .values()
        .chain(s.member.iter())
        .chain(s.key.iter())
        .chain(s.value.iter())
    {
        reach(model, &r.shape, seen, stack)?;
    }
    stack.pop();
    Ok(())
}

/// The shapes of `service` that inputs reach, for the tests.
pub fn input_shape_names(service: &Service) -> Result<BTreeSet<String>, String> {
    let text =
        std::fs::read_to_string(codegen_dir().join(service.model)).map_err(|e| e.to_string())?;
    let model: Model = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(Gen::new(service, &model)?
        .input_shapes
        .into_iter()
        .collect())
}
