//! What the model cannot say, per service (compare s3s's `patch_types`): shapes berth
//! provides by hand, and members whose broken constraints are another exception.

/// A shape whose Rust type is written by hand instead of generated.
pub struct Provided {
    pub shape: &'static str,
    /// The member's Rust type (inside its `Option`).
    pub rust_type: &'static str,
    /// Extra serde attributes of a member of this shape.
    pub serde: &'static str,
    /// Whether the type borrows from the request body (the struct then takes `<'a>`).
    pub borrows: bool,
    /// Whether the generated `validate()` skips it (its checks are hand-written).
    pub unchecked: bool,
}

pub struct Overrides {
    pub provided: &'static [Provided],
    /// Shapes whose broken constraints answer `InvalidTagParameterException` rather than
    /// `InvalidParameterException` (tag keys and values, as ECR does).
    pub tag_shapes: &'static [&'static str],
}

/// The layer part stays base64 text borrowed from the body: decoding it into a second 20 MiB
/// buffer, or copying 28 MB of text, is what `layers.rs` exists to avoid. Its length is
/// checked there, on the decoded bytes.
const LAYER_PART_BLOB: Provided = Provided {
    shape: "LayerPartBlob",
    rust_type: "Cow<'a, str>",
    serde: r#"borrow, deserialize_with = "super::borrowed_text""#,
    borrows: true,
    unchecked: true,
};

pub const ECR_PUBLIC: Overrides = Overrides {
    provided: &[LAYER_PART_BLOB],
    tag_shapes: &["TagKey", "TagValue"],
};
