use super::*;
use crate::model::spec::MlpSpec;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mlp(hidden: &[usize]) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden: hidden.to_vec(),
        activation: Activation::Relu,
    })
}

fn layers(json: &str) -> Result<ModelSpec, serde_json::Error> {
    serde_json::from_str(&format!(r#"{{"layers": {json}}}"#))
}

#[test]
fn homework_mlps_have_about_571_parameters() -> TestResult {
    let deep = plan(&mlp(&[5, 10, 10, 10, 10, 10, 5]), &[1], 1)?;
    let medium = plan(&mlp(&[10, 18, 15, 4]), &[1], 1)?;
    let shallow = plan(&mlp(&[190]), &[1], 1)?;
    assert_eq!(deep.parameter_count(), 571);
    assert_eq!(medium.parameter_count(), 572);
    assert_eq!(shallow.parameter_count(), 571);
    assert_eq!(deep.params.len(), 16);
    Ok(())
}

#[test]
fn tensors_are_named_by_layer_index_like_sequential() -> TestResult {
    let p = plan(&mlp(&[3]), &[1, 2, 2], 2)?;
    let names: Vec<&str> = p.params.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "layers.1.weight",
            "layers.1.bias",
            "layers.3.weight",
            "layers.3.bias"
        ]
    );
    assert_eq!(p.params[0].shape, vec![3, 4]);
    assert_eq!(p.ops[0], Op::Flatten);
    Ok(())
}

#[test]
fn cnn_shapes_and_counts() -> TestResult {
    let spec = layers(
        r#"[{"conv": {"filters": 16, "kernel": 3}}, "relu", {"maxpool": 2}, "batchnorm",
            {"conv": {"filters": 8, "kernel": 3, "padding": "same", "stride": 2}}, "flatten",
            {"dropout": 0.5}, {"dense": 10}]"#,
    )?;
    let p = plan(&spec, &[1, 28, 28], 10)?;
    // conv 28 -> 26, pool -> 13, conv same stride 2 -> 7; 8 * 7 * 7 = 392 features.
    let count = (16 * 9 + 16) + (16 + 16) + (8 * 16 * 9 + 8) + (10 * 392 + 10);
    assert_eq!(p.parameter_count(), count);
    assert_eq!(p.buffers.len(), 2);
    assert_eq!(p.buffers[0].name, "layers.3.running_mean");
    assert_eq!(
        p.ops[4],
        Op::Conv {
            weight: 4,
            bias: 5,
            stride: 2,
            padding: 1
        }
    );
    Ok(())
}

#[test]
fn default_initialisation_bounds_match_pytorch() {
    assert!((kaiming_uniform_bound(9) - 1.0 / 3.0).abs() < 1e-15);
    assert_eq!(bias_bound(4), 0.5);
}

#[test]
fn misfits_name_the_layer() -> TestResult {
    let cases = [
        (
            r#"[{"conv": {"filters": 2, "kernel": 3}}, {"dense": 10}]"#,
            "layer 1 (dense 10)",
        ),
        (
            r#"[{"maxpool": 32}, "flatten", {"dense": 10}]"#,
            "layer 0 (maxpool 32) has a 32x32",
        ),
        (r#"["flatten", {"dense": 7}]"#, "produces shape [7]"),
        (r#"["flatten", "batchnorm", {"dense": 10}]"#, ""),
    ];
    for (json, expected) in cases {
        let result = plan(&layers(json)?, &[1, 28, 28], 10);
        match result {
            Ok(_) => assert!(expected.is_empty(), "{json} should fail"),
            Err(e) => assert!(!expected.is_empty() && e.message.contains(expected), "{e}"),
        }
    }
    let err = plan(
        &layers(r#"[{"conv": {"filters": 2, "kernel": 3}}]"#)?,
        &[1],
        1,
    )
    .err();
    assert!(err.is_some_and(|e| e.message.contains("needs an image input")));
    Ok(())
}

#[test]
fn absurd_sizes_fail_cleanly() -> TestResult {
    let huge = layers(r#"[{"conv": {"filters": 1048576, "kernel": 1048575, "padding": "same"}}]"#)?;
    let err = plan(&huge, &[1048576, 28, 28], 10).err().map(|e| e.message);
    assert!(err.is_some_and(|m| m.contains("too large")));
    let wide = layers(r#"["flatten", {"dense": 10}]"#)?;
    let err = plan(&wide, &[1 << 30, 1 << 30, 1 << 30], 10)
        .err()
        .map(|e| e.message);
    assert!(err.is_some_and(|m| m.contains("layer 0 (flatten) is too large")));
    Ok(())
}
