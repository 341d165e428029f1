//! Stage keys: everything that can change a stage's outputs, encoded unambiguously and
//! hashed.
//!
//! The material is canonical JSON (sorted keys, numbers as serde_json writes them, defaults
//! filled in by the stage kind), which no two different parameter sets can share. Inputs
//! enter by the content digest of the upstream outputs, not by the upstream key: an upstream
//! stage that runs again and produces the same bytes leaves its readers cached. For inputs
//! that take many stages (plots and tables over a sweep), the upstream names and matrix values
//! are in the key too, because they become legend entries and columns. Resources (threads,
//! jobs, device index) are not in the key; the device class is.

use std::collections::BTreeMap;

use pipeline_cache::{ContentDigest, Digest, StageKey};
use serde::{Deserialize, Serialize};

use crate::stage::Device;

/// Version of the key encoding; bumping it invalidates every cache entry.
pub const KEY_FORMAT: u32 = 1;

/// One upstream stage as an input sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputMaterial {
    /// The upstream stage's name, for inputs that take many stages; `None` otherwise.
    pub stage: Option<String>,
    /// The digest of the upstream outputs.
    pub content: ContentDigest,
}

/// Everything a stage key covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyMaterial {
    /// [`KEY_FORMAT`].
    pub format: u32,
    /// The stage kind.
    pub kind: String,
    /// The kind's version.
    pub version: u32,
    /// Canonical parameters.
    pub params: serde_json::Value,
    /// Inputs by slot.
    pub inputs: BTreeMap<String, Vec<InputMaterial>>,
    /// Files outside the store that the stage reads, by path as written, with their digests.
    pub external: BTreeMap<String, ContentDigest>,
    /// The seed.
    pub seed: u64,
    /// The device class.
    pub device: Device,
}

impl KeyMaterial {
    /// The stage key.
    pub fn key(&self) -> StageKey {
        let mut bytes = b"pipeline-stage-key\0".to_vec();
        // Serializing plain data to a Vec cannot fail; fall back to the debug form regardless.
        match serde_json::to_vec(self) {
            Ok(json) => bytes.extend(json),
            Err(_) => bytes.extend(format!("{self:?}").into_bytes()),
        }
        StageKey(Digest::of(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn material(params: serde_json::Value) -> KeyMaterial {
        KeyMaterial {
            format: KEY_FORMAT,
            kind: "train".into(),
            version: 1,
            params,
            inputs: BTreeMap::new(),
            external: BTreeMap::new(),
            seed: 0,
            device: Device::Cpu,
        }
    }

    #[test]
    fn key_order_of_params_does_not_matter() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(material(a).key(), material(b).key());
    }

    #[test]
    fn every_field_changes_the_key() {
        let base = material(json!({"lr": 0.001}));
        let mut variants = Vec::new();
        let mut m = base.clone();
        m.params = json!({"lr": 0.01});
        variants.push(m);
        let mut m = base.clone();
        m.version = 2;
        variants.push(m);
        let mut m = base.clone();
        m.seed = 1;
        variants.push(m);
        let mut m = base.clone();
        m.device = Device::Cuda;
        variants.push(m);
        let mut m = base.clone();
        m.kind = "predict".into();
        variants.push(m);
        let mut m = base.clone();
        m.inputs.insert(
            "data".into(),
            vec![InputMaterial {
                stage: None,
                content: ContentDigest(Digest::of(b"x")),
            }],
        );
        variants.push(m);
        let mut m = base.clone();
        m.external
            .insert("f".into(), ContentDigest(Digest::of(b"x")));
        variants.push(m);
        for v in &variants {
            assert_ne!(v.key(), base.key(), "{v:?}");
        }
    }

    proptest! {
        // Distinct parameter strings never collide, even when they contain the characters
        // JSON uses for structure.
        #[test]
        fn distinct_string_params_give_distinct_keys(a in ".{0,12}", b in ".{0,12}") {
            prop_assume!(a != b);
            let ka = material(json!({"name": a, "other": "x"})).key();
            let kb = material(json!({"name": b, "other": "x"})).key();
            prop_assert_ne!(ka, kb);
        }

        #[test]
        fn distinct_numbers_give_distinct_keys(a in any::<f64>(), b in any::<f64>()) {
            prop_assume!(a.is_finite() && b.is_finite() && a != b);
            prop_assert_ne!(material(json!({"lr": a})).key(), material(json!({"lr": b})).key());
        }
    }
}
