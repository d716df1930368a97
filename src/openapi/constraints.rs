//! Rules of a wire type that its Rust type cannot state, added to the
//! schema derived from it.

use utoipa::Modify;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema};

/// Members of which a body must hold exactly one. The upload body's type
/// has both as `Option`s (the parser picks the shape and refuses both or
/// neither), so its derived schema would require neither.
const EXACTLY_ONE: &[(&str, &[&str])] = &[("UploadBatch", &["batch", "transactions"])];

pub struct ExactlyOne;

impl Modify for ExactlyOne {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, members) in EXACTLY_ONE {
            let Some(mut derived) = components.schemas.remove(*name) else {
                continue;
            };
            let mut one_of = OneOfBuilder::new();
            for member in *members {
                one_of = one_of.item(ObjectBuilder::new().required(*member));
            }
            // The description moves to the combined schema.
            let description = match &mut derived {
                RefOr::T(Schema::Object(object)) => object.description.take(),
                _ => None,
            };
            let combined = AllOfBuilder::new()
                .item(derived)
                .item(one_of)
                .description(description);
            components
                .schemas
                .insert((*name).to_owned(), Schema::AllOf(combined.build()).into());
        }
    }
}
