//! `kubectl explain` documents every field of every kind: walks the CRDs generated from the
//! Rust types (`tributary_api::crds()`, what `make generate` writes; `make check-generated`
//! keeps the YAML equal to them) and lists each field without a description. No cluster needed.

use serde_json::Value;

/// Fields the API server documents itself: for a CRD it publishes `apiVersion`, `kind` and
/// `metadata` (the ObjectMeta reference) with the standard descriptions, whatever the
/// generated schema says. kube does not write them into the schema today; were it to, without
/// a description, `kubectl explain` would still document them.
const SERVER_DOCUMENTED: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Pushes `path` for every field under `schema` whose description is missing or blank. A
/// field is a named property; list items, map values and `oneOf`/`anyOf`/`allOf` branches
/// are walked for the fields inside them (kubectl explain shows the field's own text there).
fn undocumented(path: &str, schema: &Value, found: &mut Vec<String>) {
    let Some(object) = schema.as_object() else { return };
    for (key, child) in object {
        match key.as_str() {
            "properties" => {
                for (name, field) in child.as_object().into_iter().flatten() {
                    let field_path = format!("{path}.{name}");
                    if !has_description(field) {
                        found.push(field_path.clone());
                    }
                    undocumented(&field_path, field, found);
                }
            }
            "items" => undocumented(&format!("{path}[]"), child, found),
            "additionalProperties" => undocumented(&format!("{path}{{}}"), child, found),
            "oneOf" | "anyOf" | "allOf" => {
                for (i, branch) in child.as_array().into_iter().flatten().enumerate() {
                    undocumented(&format!("{path}<{i}>"), branch, found);
                }
            }
            _ => {}
        }
    }
}

fn has_description(schema: &Value) -> bool {
    schema.get("description").and_then(Value::as_str).is_some_and(|text| !text.trim().is_empty())
}

#[test]
fn every_field_of_every_kind_has_a_description() {
    let mut found = Vec::new();
    let mut walked = 0;
    for crd in tributary_api::crds() {
        let kind = &crd.spec.names.kind;
        for version in &crd.spec.versions {
            let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref());
            let schema =
                serde_json::to_value(schema.unwrap_or_else(|| panic!("{kind} {} has no schema", version.name)))
                    .expect("a schema serializes");
            let root = format!("{kind}({})", version.name);
            if !has_description(&schema) {
                found.push(root.clone());
            }
            for (name, field) in schema["properties"].as_object().into_iter().flatten() {
                if SERVER_DOCUMENTED.contains(&name.as_str()) {
                    continue;
                }
                let path = format!("{root}.{name}");
                if !has_description(field) {
                    found.push(path.clone());
                }
                undocumented(&path, field, &mut found);
            }
            walked += 1;
        }
    }
    assert_eq!(walked, 5, "one version of each of the five kinds walked");
    assert!(
        found.is_empty(),
        "{} fields without a description (kubectl explain shows nothing):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_walk_finds_missing_descriptions_at_every_depth() {
    let schema = serde_json::json!({
        "properties": {
            "documented": {"description": "yes", "type": "string"},
            "blank": {"description": "  ", "type": "string"},
            "list": {"description": "yes", "type": "array", "items": {"properties": {"inItem": {"type": "string"}}}},
            "map": {"description": "yes", "additionalProperties": {"properties": {"inValue": {}}}},
            "either": {"description": "yes", "oneOf": [{"properties": {"inBranch": {}}}]},
        }
    });
    let mut found = Vec::new();
    undocumented("K.spec", &schema, &mut found);
    found.sort();
    assert_eq!(found, ["K.spec.blank", "K.spec.either<0>.inBranch", "K.spec.list[].inItem", "K.spec.map{}.inValue"]);
}
