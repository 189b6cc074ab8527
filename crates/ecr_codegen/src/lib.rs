//! Generates the awsJson 1.1 shapes of berth's front ends from botocore's models (pinned in
//! `model/`): request and response structs with explicit serde names and `Option` members,
//! string enums, `validate()` for every shape an input reaches (required, length, range,
//! pattern, enum, with ECR's wording), and the operation enum. Handlers, errors and the checks
//! the model cannot express stay hand-written in `ecr_api`.
//!
//! The output is deterministic and checked in; `tests/fresh.rs` fails when it is stale.
//! Regenerate with `cargo run -p ecr_codegen`.

mod botocore;
mod overrides;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use heck::{ToSnakeCase, ToUpperCamelCase};

use botocore::{Model, Shape};
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

/// A member name as a Rust field name.
fn field_name(member: &str) -> String {
    let snake = member.to_snake_case();
    match snake.as_str() {
        "type" | "match" | "ref" | "self" | "struct" | "enum" | "fn" | "mod" | "use" => {
            format!("r#{snake}")
        }
        _ => snake,
    }
}

fn regex_static(shape: &str) -> String {
    format!("RE_{}", shape.to_snake_case().to_uppercase())
}

/// Generates the module of one service.
pub fn generate(service: &Service, model: &Model) -> Result<String, String> {
    let g = Gen::new(service, model)?;
    let mut o = String::new();
    let w = &mut o;
    let file = Path::new(service.model)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or(service.model);
    wl(
        w,
        &format!(
            "// @generated by ecr_codegen from {file}; do not edit (cargo run -p ecr_codegen)."
        ),
    );
    wl(
        w,
        &format!(
            "//! Shapes, checks and operations of `{}` (botocore's model).",
            model.metadata.uid
        ),
    );
    wl(
        w,
        "#![allow(clippy::too_many_lines, clippy::struct_field_names, clippy::large_enum_variant)]",
    );
    wl(w, "");
    let needs_cow = g.all_shapes.iter().any(|s| {
        g.provided(s)
            .is_some_and(|p| p.rust_type.starts_with("Cow"))
    });
    let needs_map = g.all_shapes.iter().any(|s| g.shape(s).kind == "map");
    let needs_regex = g.input_shapes.iter().any(|s| g.shape(s).pattern.is_some());
    if needs_cow {
        wl(w, "use std::borrow::Cow;");
    }
    if needs_map {
        wl(w, "use std::collections::BTreeMap;");
    }
    if needs_regex {
        wl(w, "use std::sync::LazyLock;");
    }
    wl(w, "");
    if needs_regex {
        wl(w, "use regex_lite::Regex;");
    }
    wl(w, "use serde::{Deserialize, Serialize};");
    wl(w, "");
    wl(w, "#[allow(unused_imports)]");
    wl(w, "use super::{Blob, Timestamp, Violation, check};");
    wl(w, "");
    wl(
        w,
        &format!(
            "/// The `X-Amz-Target` prefix: `{}.<Operation>`.",
            model.metadata.target_prefix
        ),
    );
    wl(
        w,
        &format!(
            "pub const TARGET_PREFIX: &str = {:?};",
            model.metadata.target_prefix
        ),
    );
    wl(w, "/// The service name of the SigV4 credential scope.");
    wl(
        w,
        &format!(
            "pub const SIGNING_NAME: &str = {:?};",
            model.metadata.signing_name
        ),
    );
    wl(w, "");

    gen_operations(&g, w);
    gen_patterns(&g, w);
    for name in &g.all_shapes {
        let s = g.shape(name);
        if s.exception || g.provided(name).is_some() {
            continue;
        }
        if s.kind == "structure" {
            gen_struct(&g, name, w);
        } else if let Some(values) = &s.values {
            gen_enum(name, values, w);
        }
    }
    Ok(o)
}

fn wl(w: &mut String, line: &str) {
    w.push_str(line);
    w.push('\n');
}

fn gen_operations(g: &Gen<'_>, w: &mut String) {
    let ops: Vec<&String> = g.model.operations.keys().collect();
    wl(w, "/// The operations of the model.");
    wl(w, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]");
    wl(w, "pub enum Operation {");
    for op in &ops {
        wl(w, &format!("    {op},"));
    }
    wl(w, "}");
    wl(w, "");
    wl(w, "impl Operation {");
    wl(
        w,
        &format!("    pub const ALL: [Operation; {}] = [", ops.len()),
    );
    for op in &ops {
        wl(w, &format!("        Operation::{op},"));
    }
    wl(w, "    ];");
    wl(w, "");
    wl(
        w,
        "    /// The operation named `name` (an `X-Amz-Target` without its prefix).",
    );
    wl(w, "    pub fn from_name(name: &str) -> Option<Self> {");
    wl(w, "        Some(match name {");
    for op in &ops {
        wl(w, &format!("            {op:?} => Operation::{op},"));
    }
    wl(w, "            _ => return None,");
    wl(w, "        })");
    wl(w, "    }");
    wl(w, "");
    wl(w, "    pub fn name(self) -> &'static str {");
    wl(w, "        match self {");
    for op in &ops {
        wl(w, &format!("            Operation::{op} => {op:?},"));
    }
    wl(w, "        }");
    wl(w, "    }");
    wl(w, "");
    wl(
        w,
        "    /// The exceptions the model lists for the operation, in model order.",
    );
    wl(
        w,
        "    pub fn modeled_errors(self) -> &'static [&'static str] {",
    );
    wl(w, "        match self {");
    for (op, o) in &g.model.operations {
        let errs: Vec<String> = o.errors.iter().map(|e| format!("{:?}", e.shape)).collect();
        wl(
            w,
            &format!("            Operation::{op} => &[{}],", errs.join(", ")),
        );
    }
    wl(w, "        }");
    wl(w, "    }");
    wl(w, "}");
    wl(w, "");

    let borrows = g.model.operations.values().any(|o| {
        o.input
            .as_ref()
            .is_some_and(|i| g.borrowing.contains(&i.shape))
    });
    let lt = if borrows { "<'a>" } else { "" };
    wl(
        w,
        "/// A request body decoded as the input shape of its operation.",
    );
    wl(w, "#[derive(Debug)]");
    wl(w, &format!("pub enum Request{lt} {{"));
    for (op, o) in &g.model.operations {
        let input = o
            .input
            .as_ref()
            .map_or("()".to_owned(), |i| g.rust_type(&i.shape));
        wl(w, &format!("    {op}({input}),"));
    }
    wl(w, "}");
    wl(w, "");
    wl(w, &format!("impl{lt} Request{lt} {{"));
    wl(
        w,
        "    /// Decodes `body` (a JSON object) as the input of `op`; members are not checked yet.",
    );
    let body_lt = if borrows { "'a " } else { "" };
    wl(
        w,
        &format!(
            "    pub fn decode(op: Operation, body: &{body_lt}[u8]) -> Result<Self, serde_json::Error> {{"
        ),
    );
    wl(w, "        Ok(match op {");
    for (op, o) in &g.model.operations {
        if o.input.is_some() {
            wl(
                w,
                &format!(
                    "            Operation::{op} => Request::{op}(serde_json::from_slice(body)?),"
                ),
            );
        } else {
            wl(
                w,
                &format!("            Operation::{op} => Request::{op}(()),"),
            );
        }
    }
    wl(w, "        })");
    wl(w, "    }");
    wl(w, "");
    wl(
        w,
        "    /// The model's constraints on the input: the first one broken.",
    );
    wl(w, "    pub fn validate(&self) -> Result<(), Violation> {");
    wl(w, "        match self {");
    for (op, o) in &g.model.operations {
        if o.input.is_some() {
            wl(
                w,
                &format!("            Request::{op}(r) => r.validate(\"\"),"),
            );
        } else {
            wl(w, &format!("            Request::{op}(()) => Ok(()),"));
        }
    }
    wl(w, "        }");
    wl(w, "    }");
    wl(w, "}");
    wl(w, "");
}

fn gen_patterns(g: &Gen<'_>, w: &mut String) {
    for name in &g.input_shapes {
        if let Some(p) = &g.shape(name).pattern {
            wl(
                w,
                &format!("static {}: LazyLock<Regex> =", regex_static(name)),
            );
            wl(
                w,
                &format!(
                    "    LazyLock::new(|| Regex::new({:?}).expect(\"the model's pattern compiles\"));",
                    anchored(p)
                ),
            );
        }
    }
    wl(w, "");
}

fn gen_enum(name: &str, values: &[String], w: &mut String) {
    let variants: Vec<String> = values.iter().map(|v| v.to_upper_camel_case()).collect();
    wl(w, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]");
    wl(w, &format!("pub enum {name} {{"));
    for v in &variants {
        wl(w, &format!("    {v},"));
    }
    wl(w, "}");
    wl(w, "");
    wl(w, &format!("impl {name} {{"));
    wl(
        w,
        "    /// The values in model order, as enum violations list them.",
    );
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    wl(
        w,
        &format!(
            "    pub const VALUES: &'static [&'static str] = &[{}];",
            quoted.join(", ")
        ),
    );
    wl(w, "");
    wl(w, "    pub fn as_str(self) -> &'static str {");
    wl(w, "        match self {");
    for (v, raw) in variants.iter().zip(values) {
        wl(w, &format!("            {name}::{v} => {raw:?},"));
    }
    wl(w, "        }");
    wl(w, "    }");
    wl(w, "");
    wl(w, "    pub fn parse(s: &str) -> Option<Self> {");
    wl(w, "        Some(match s {");
    for (v, raw) in variants.iter().zip(values) {
        wl(w, &format!("            {raw:?} => {name}::{v},"));
    }
    wl(w, "            _ => return None,");
    wl(w, "        })");
    wl(w, "    }");
    wl(w, "}");
    wl(w, "");
}

fn gen_struct(g: &Gen<'_>, name: &str, w: &mut String) {
    let s = g.shape(name);
    let lt = g.lifetime(name);
    wl(
        w,
        "#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]",
    );
    wl(w, &format!("pub struct {name}{lt} {{"));
    for (member, r) in &s.members {
        let mut attrs =
            format!("rename = {member:?}, default, skip_serializing_if = \"Option::is_none\"");
        if let Some(p) = g.provided(&r.shape).filter(|p| !p.serde.is_empty()) {
            attrs.push_str(", ");
            attrs.push_str(p.serde);
        } else if g.borrowing.contains(&r.shape) {
            attrs.push_str(", borrow");
        }
        wl(w, &format!("    #[serde({attrs})]"));
        wl(
            w,
            &format!(
                "    pub {}: Option<{}>,",
                field_name(member),
                g.rust_type(&r.shape)
            ),
        );
    }
    wl(w, "}");
    wl(w, "");
    if !g.input_shapes.iter().any(|n| n == name) {
        return;
    }
    let anon = if lt.is_empty() { "" } else { "<'_>" };
    wl(w, &format!("impl {name}{anon} {{"));
    wl(
        w,
        "    /// Checks the model's constraints, members in model order; `at` prefixes the path.",
    );
    let used = !s.members.is_empty();
    let at = if used { "at" } else { "_at" };
    wl(
        w,
        &format!("    pub fn validate(&self, {at}: &str) -> Result<(), Violation> {{"),
    );
    for (member, r) in &s.members {
        let field = field_name(member);
        let required = s.required.iter().any(|m| m == member);
        let checks = value_checks(g, &r.shape, "v", &format!("{member:?}"), 3);
        if required {
            wl(
                w,
                &format!("        check::required(self.{field}.is_some(), at, {member:?})?;"),
            );
        }
        if !checks.is_empty() {
            wl(w, &format!("        if let Some(v) = &self.{field} {{"));
            w.push_str(&checks);
            wl(w, "        }");
        }
    }
    wl(w, "        Ok(())");
    wl(w, "    }");
    wl(w, "}");
    wl(w, "");
}

/// Statements checking `var` (a reference to a value of `shape`) at path `at` + `path`
/// (a Rust expression of type `&str`), indented `depth` levels.
fn value_checks(g: &Gen<'_>, shape: &str, var: &str, path: &str, depth: usize) -> String {
    let mut o = String::new();
    if g.provided(shape).is_some_and(|p| p.unchecked) {
        return o;
    }
    let s = g.shape(shape);
    let pad = "    ".repeat(depth);
    let tag = if g.ov.tag_shapes.contains(&shape) {
        "true"
    } else {
        "false"
    };
    let len = match s.kind.as_str() {
        "string" => Some(format!("check::text_len({var})")),
        "list" | "map" => Some(format!("{var}.len()")),
        "blob" => Some(format!("{var}.0.len()")),
        _ => None,
    };
    if let Some(len) = len {
        if let Some(min) = s.min.filter(|m| *m > 0) {
            let _ = writeln!(o, "{pad}check::min_len({len}, {min}, at, {path}, {tag})?;");
        }
        if let Some(max) = s.max {
            let _ = writeln!(o, "{pad}check::max_len({len}, {max}, at, {path}, {tag})?;");
        }
    }
    if matches!(s.kind.as_str(), "integer" | "long") {
        if let Some(min) = s.min {
            let _ = writeln!(o, "{pad}check::min_value(*{var}, {min}, at, {path})?;");
        }
        if let Some(max) = s.max {
            let _ = writeln!(o, "{pad}check::max_value(*{var}, {max}, at, {path})?;");
        }
    }
    if let Some(p) = &s.pattern {
        let _ = writeln!(
            o,
            "{pad}check::pattern({var}, &{}, {p:?}, at, {path}, {tag})?;",
            regex_static(shape)
        );
    }
    if s.values.is_some() {
        let _ = writeln!(
            o,
            "{pad}check::one_of({var}, {shape}::VALUES, at, {path})?;"
        );
    }
    match s.kind.as_str() {
        "structure" => {
            let _ = writeln!(o, "{pad}{var}.validate(&check::nested(at, {path}))?;");
        }
        "list" => {
            let elem = &s.member.as_ref().expect("list member").shape;
            let elem_shape = g.shape(elem);
            if elem_shape.kind == "structure" {
                let _ = writeln!(
                    o,
                    "{pad}let p = check::nested(at, &format!(\"{{}}.member\", {path}));"
                );
                let _ = writeln!(o, "{pad}for e in {var} {{");
                let _ = writeln!(o, "{pad}    e.validate(&p)?;");
                let _ = writeln!(o, "{pad}}}");
            } else {
                let inner = value_checks(g, elem, "e", "&p", depth + 1);
                if !inner.is_empty() {
                    let _ = writeln!(o, "{pad}let p = format!(\"{{}}.member\", {path});");
                    let _ = writeln!(o, "{pad}for e in {var} {{");
                    o.push_str(&inner);
                    let _ = writeln!(o, "{pad}}}");
                }
            }
        }
        "map" => {
            let value = &s.value.as_ref().expect("map value").shape;
            let inner = value_checks(g, value, "e", "&p", depth + 1);
            if !inner.is_empty() {
                let _ = writeln!(o, "{pad}let p = format!(\"{{}}.value\", {path});");
                let _ = writeln!(o, "{pad}for e in {var}.values() {{");
                o.push_str(&inner);
                let _ = writeln!(o, "{pad}}}");
            }
        }
        _ => {}
    }
    o
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
