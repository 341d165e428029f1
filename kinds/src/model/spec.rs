//! The model description users write in a pipeline file.
//!
//! Two forms: `mlp: {hidden: [5, 10, 10], activation: relu}`, a fully connected network
//! whose input and output sizes come from the data set, and `layers: [...]`, a list of layers
//! applied in order (`{conv: {filters: 16, kernel: 3}}`, `{maxpool: 2}`, `flatten`,
//! `{dense: 64}`, `relu`, `{dropout: 0.25}`, `batchnorm`...), whose last layer must produce
//! the data set's number of outputs. Choices are externally tagged enums, so that an error
//! names the offending key and YAML reads naturally.

use pipeline_engine::stage::ParamIssue;
use serde::{Deserialize, Serialize};

/// A model: a multi-layer perceptron or an explicit list of layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSpec {
    /// A fully connected network with the given hidden widths.
    Mlp(MlpSpec),
    /// Layers applied in order.
    Layers(Vec<LayerSpec>),
}

/// A multi-layer perceptron: `dense(h) + activation` for each hidden width, then a dense
/// output layer; image inputs are flattened first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    /// Hidden layer widths, input side first (may be empty: a linear model).
    pub hidden: Vec<usize>,
    /// The activation after every hidden layer.
    #[serde(default)]
    pub activation: Activation,
}

/// An element-wise activation function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x).
    #[default]
    Relu,
    /// The hyperbolic tangent.
    Tanh,
    /// The scaled exponential linear unit.
    Selu,
    /// The logistic function.
    Sigmoid,
    /// log(1 + exp(x)).
    Softplus,
    /// The exponential linear unit (alpha 1).
    Elu,
}

/// One layer of a `layers:` model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerSpec {
    /// A 2-D convolution.
    Conv(ConvSpec),
    /// Max pooling with this window and stride.
    Maxpool(usize),
    /// Average pooling with this window and stride.
    Avgpool(usize),
    /// Flattens everything but the batch dimension.
    Flatten,
    /// A fully connected layer with this many outputs.
    Dense(usize),
    /// See [`Activation::Relu`].
    Relu,
    /// See [`Activation::Tanh`].
    Tanh,
    /// See [`Activation::Selu`].
    Selu,
    /// See [`Activation::Sigmoid`].
    Sigmoid,
    /// See [`Activation::Softplus`].
    Softplus,
    /// See [`Activation::Elu`].
    Elu,
    /// Dropout with this probability of zeroing a value while training.
    Dropout(f64),
    /// Batch normalization over channels (after a convolution) or features (after a dense).
    Batchnorm,
}

/// A 2-D convolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvSpec {
    /// Output channels.
    pub filters: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// `valid` (no padding) or `same` (pad `(kernel - 1) / 2` on every side; odd kernels).
    #[serde(default)]
    pub padding: Padding,
    /// The step between windows.
    #[serde(default = "one")]
    pub stride: usize,
}

fn one() -> usize {
    1
}

/// Convolution padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: the output shrinks by `kernel - 1`.
    #[default]
    Valid,
    /// Zero padding of `(kernel - 1) / 2` on every side: stride 1 keeps the size.
    Same,
}

impl LayerSpec {
    /// The activation this layer applies, if it is an activation layer.
    pub(crate) fn activation(&self) -> Option<Activation> {
        Some(match self {
            LayerSpec::Relu => Activation::Relu,
            LayerSpec::Tanh => Activation::Tanh,
            LayerSpec::Selu => Activation::Selu,
            LayerSpec::Sigmoid => Activation::Sigmoid,
            LayerSpec::Softplus => Activation::Softplus,
            LayerSpec::Elu => Activation::Elu,
            _ => return None,
        })
    }
}

impl ModelSpec {
    /// Whether the model has only dense layers, activations and flattening (no convolution,
    /// pooling, dropout or batch normalization).
    pub fn is_dense_only(&self) -> bool {
        match self {
            ModelSpec::Mlp(_) => true,
            ModelSpec::Layers(layers) => layers.iter().all(|l| {
                matches!(l, LayerSpec::Dense(_) | LayerSpec::Flatten) || l.activation().is_some()
            }),
        }
    }

    /// Checks values that serde cannot; `at` is the key path of the model (`model`).
    pub(crate) fn check(&self, at: &str) -> Result<(), ParamIssue> {
        match self {
            ModelSpec::Mlp(mlp) => mlp.hidden.iter().enumerate().try_for_each(|(i, &h)| {
                positive(h, &format!("{at}.mlp.hidden.{i}"), "a hidden width")
            }),
            ModelSpec::Layers(layers) if layers.is_empty() => Err(ParamIssue::at(
                &format!("{at}.layers"),
                "a model needs at least one layer",
            )),
            ModelSpec::Layers(layers) => layers
                .iter()
                .enumerate()
                .try_for_each(|(i, layer)| layer.check(&format!("{at}.layers.{i}"))),
        }
    }
}

impl LayerSpec {
    fn check(&self, at: &str) -> Result<(), ParamIssue> {
        match self {
            LayerSpec::Conv(conv) => conv.check(&format!("{at}.conv")),
            LayerSpec::Maxpool(k) => positive(*k, &format!("{at}.maxpool"), "a pooling window"),
            LayerSpec::Avgpool(k) => positive(*k, &format!("{at}.avgpool"), "a pooling window"),
            LayerSpec::Dense(n) => positive(*n, &format!("{at}.dense"), "a layer width"),
            LayerSpec::Dropout(p) if !(0.0..1.0).contains(p) => Err(ParamIssue::at(
                &format!("{at}.dropout"),
                format!("a dropout probability must be at least 0 and below 1, found {p}"),
            )),
            _ => Ok(()),
        }
    }
}

impl ConvSpec {
    fn check(&self, at: &str) -> Result<(), ParamIssue> {
        positive(self.filters, &format!("{at}.filters"), "a filter count")?;
        positive(self.kernel, &format!("{at}.kernel"), "a kernel size")?;
        positive(self.stride, &format!("{at}.stride"), "a stride")?;
        if self.padding == Padding::Same && self.kernel.is_multiple_of(2) {
            return Err(ParamIssue::at(
                &format!("{at}.padding"),
                format!("`same` padding needs an odd kernel, found {}", self.kernel),
            ));
        }
        Ok(())
    }
}

/// The largest width, filter count, kernel, stride or pooling window accepted: far above any
/// useful value, and low enough that shape arithmetic cannot overflow.
pub(crate) const MAX_SIZE: usize = 1 << 20;

fn positive(value: usize, at: &str, what: &str) -> Result<(), ParamIssue> {
    if value == 0 {
        Err(ParamIssue::at(at, format!("{what} must be at least 1")))
    } else if value > MAX_SIZE {
        Err(ParamIssue::at(
            at,
            format!("{what} of {value} is larger than {MAX_SIZE}"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ModelSpec {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn both_forms_parse_with_defaults() {
        let mlp = parse(r#"{"mlp": {"hidden": [5, 10]}}"#);
        let expected = MlpSpec {
            hidden: vec![5, 10],
            activation: Activation::Relu,
        };
        assert_eq!(mlp, ModelSpec::Mlp(expected));
        let cnn = parse(
            r#"{"layers": [{"conv": {"filters": 16, "kernel": 3}}, "relu", {"maxpool": 2},
                "flatten", {"dropout": 0.25}, "batchnorm", {"dense": 10}]}"#,
        );
        let ModelSpec::Layers(layers) = cnn else {
            panic!("not layers")
        };
        let conv = ConvSpec {
            filters: 16,
            kernel: 3,
            padding: Padding::Valid,
            stride: 1,
        };
        assert_eq!(layers[0], LayerSpec::Conv(conv));
        assert_eq!(layers[1].activation(), Some(Activation::Relu));
        assert_eq!(layers.len(), 7);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<ModelSpec>(r#"{"mlp": {"hidden": [5], "width": 3}}"#);
        assert!(err.is_err());
        let err = serde_json::from_str::<ModelSpec>(r#"{"layers": [{"conv": {"filter": 3}}]}"#);
        assert!(err.is_err());
    }

    #[test]
    fn checks_point_at_the_offending_value() {
        let spec = parse(
            r#"{"layers": [{"dense": 3}, {"conv": {"filters": 2, "kernel": 2, "padding": "same"}}]}"#,
        );
        let issue = spec.check("model").err().map(|i| i.path.join("."));
        assert_eq!(issue.as_deref(), Some("model.layers.1.conv.padding"));
        let spec = parse(r#"{"mlp": {"hidden": [5, 0]}}"#);
        let issue = spec.check("model").err().map(|i| i.path.join("."));
        assert_eq!(issue.as_deref(), Some("model.mlp.hidden.1"));
        let spec = parse(r#"{"layers": [{"dropout": 1.0}]}"#);
        assert!(spec.check("model").is_err());
    }
}
