//! `steward schema`: the JSON Schemas, byte for byte what `schemas/` holds.

use crate::args::{SchemaArgs, SchemaKind};
use crate::exit::Exit;

/// The schema file text for a kind (pretty JSON with a trailing newline).
pub fn schema_text(kind: SchemaKind) -> String {
    let schema = match kind {
        SchemaKind::Servicespec => steward_spec::servicespec_schema(),
        SchemaKind::Guardrails => steward_spec::guardrail_policy_schema(),
    };
    steward_spec::schema::to_file_text(&schema)
}

/// Runs `steward schema`.
pub fn run(args: &SchemaArgs) -> Exit {
    print!("{}", schema_text(args.kind));
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_end_with_one_newline_and_name_themselves() {
        for kind in [SchemaKind::Servicespec, SchemaKind::Guardrails] {
            let text = schema_text(kind);
            assert!(text.ends_with("}\n") && !text.ends_with("\n\n"));
            assert!(text.contains("\"$id\""));
        }
    }
}
