//! The checked-in JSON Schemas of the contract, generated from the types.
//!
//! `schemas/` holds one file per payload plus the envelope. The test below fails when the
//! types and the files drift; regenerate with
//! `UPDATE_SCHEMAS=1 cargo test -p events schemas_match_the_checked_in_files`.

use std::collections::BTreeMap;

use crate::{payload_schemas, Envelope};

/// Every schema of the contract as pretty JSON, keyed by file name.
pub fn all() -> Result<BTreeMap<String, String>, serde_json::Error> {
    let mut out = BTreeMap::new();
    out.insert(
        "Envelope.schema.json".to_owned(),
        serde_json::to_string_pretty(&schemars::schema_for!(Envelope))? + "\n",
    );
    for (name, schema) in payload_schemas() {
        out.insert(
            format!("{name}.schema.json"),
            serde_json::to_string_pretty(&schema)? + "\n",
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn schemas_match_the_checked_in_files() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let schemas = super::all().unwrap();
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text) in &schemas {
                std::fs::write(dir.join(name), text).unwrap();
            }
        }
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let generated: Vec<String> = schemas.keys().cloned().collect();
        assert_eq!(on_disk, generated, "schema files and catalog differ");
        for (name, text) in &schemas {
            let disk = std::fs::read_to_string(dir.join(name)).unwrap();
            assert_eq!(
                &disk, text,
                "{name} drifted from the types; see the module docs"
            );
        }
    }

    #[test]
    fn every_catalog_type_has_a_schema() {
        let schemas = super::all().unwrap();
        for t in crate::EVENT_TYPES {
            assert!(schemas.contains_key(&format!("{t}.schema.json")), "{t}");
        }
        assert_eq!(crate::EVENT_TYPES.len(), 10);
    }
}
