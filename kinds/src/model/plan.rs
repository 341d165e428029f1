//! Resolving a model description against a data set: layer shapes, the tensors each layer
//! owns (with names in a fixed order), their initialisation, and the parameter count.
//!
//! This is pure arithmetic on shapes, separate from libtorch, so that a model that does not
//! fit the data (a convolution on vectors, a pooling window larger than its input, a last
//! layer of the wrong width) fails with a message naming the layer before any tensor exists,
//! and so that the parameter count is known from the description alone.
//!
//! Tensors are named like PyTorch's `nn.Sequential` names them: `layers.{i}.weight`,
//! `layers.{i}.bias`, `layers.{i}.running_mean`, where `i` counts every layer, activations
//! included. An `mlp` is expanded into the same layer list first.

use pipeline_engine::stage::StageError;

use super::spec::{Activation, ConvSpec, LayerSpec, ModelSpec, Padding};

/// The most values one tensor (or one example's flattened activations) may hold: 2^36,
/// beyond any memory these stages run in, so that a typo fails here rather than in libtorch.
const MAX_TENSOR: usize = 1 << 36;

/// One operation of the forward pass; indices refer to [`Plan::params`] and [`Plan::buffers`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `x W^T + b`.
    Dense {
        /// The index of `W` (`[out, in]`) in [`Plan::params`].
        weight: usize,
        /// The index of `b` (`[out]`) in [`Plan::params`].
        bias: usize,
    },
    /// A 2-D convolution with square stride and symmetric zero padding.
    Conv {
        /// The index of the kernel (`[filters, channels, k, k]`) in [`Plan::params`].
        weight: usize,
        /// The index of the bias (`[filters]`) in [`Plan::params`].
        bias: usize,
        /// The step between windows, in both directions.
        stride: i64,
        /// Zeros added on every side.
        padding: i64,
    },
    /// Max pooling, window = stride.
    MaxPool(i64),
    /// Average pooling, window = stride.
    AvgPool(i64),
    /// Flattens all but the batch dimension.
    Flatten,
    /// An element-wise activation.
    Act(Activation),
    /// Dropout with this probability (training only).
    Dropout(f64),
    /// Batch normalization with affine parameters and running-statistics buffers.
    BatchNorm {
        /// The index of the scale (`[C]`) in [`Plan::params`].
        weight: usize,
        /// The index of the shift (`[C]`) in [`Plan::params`].
        bias: usize,
        /// The index of the running mean (`[C]`) in [`Plan::buffers`].
        mean: usize,
        /// The index of the running variance (`[C]`) in [`Plan::buffers`].
        var: usize,
    },
}

/// How a tensor is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in `[-bound, bound]`.
    Uniform(f64),
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
}

/// A named tensor of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// `layers.{i}.{weight|bias|running_mean|running_var}`.
    pub name: String,
    /// The tensor's shape.
    pub shape: Vec<i64>,
    /// Its initial values.
    pub init: Init,
}

impl TensorSpec {
    /// The number of values.
    pub fn numel(&self) -> usize {
        self.shape.iter().product::<i64>() as usize
    }
}

/// A model resolved against an input shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The forward pass.
    pub ops: Vec<Op>,
    /// Trainable tensors, in order.
    pub params: Vec<TensorSpec>,
    /// Non-trainable state (batch-norm running statistics), in order.
    pub buffers: Vec<TensorSpec>,
}

impl Plan {
    /// The number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(TensorSpec::numel).sum()
    }
}

/// Resolves `spec` for inputs of `input_shape` (without the batch dimension) and `outputs`
/// model outputs. A model that does not fit is an input error naming the layer.
pub fn plan(spec: &ModelSpec, input_shape: &[usize], outputs: usize) -> Result<Plan, StageError> {
    let layers = expand(spec, input_shape.len(), outputs);
    let mut builder = Builder {
        plan: Plan::default(),
        shape: input_shape.to_vec(),
    };
    for (i, layer) in layers.iter().enumerate() {
        builder.add(i, layer).map_err(|msg| {
            StageError::input(format!(
                "the model does not fit the data: layer {i} ({}) {msg}",
                describe(layer)
            ))
        })?;
    }
    if builder.shape != [outputs] {
        return Err(StageError::input(format!(
            "the model does not fit the data: its last layer produces shape {:?}, but the data \
             set needs {outputs} outputs per example (end the layers with `{{dense: {outputs}}}`)",
            builder.shape
        )));
    }
    Ok(builder.plan)
}

/// The layer list of a model: `layers` as written, or an `mlp` spelled out.
fn expand(spec: &ModelSpec, input_rank: usize, outputs: usize) -> Vec<LayerSpec> {
    match spec {
        ModelSpec::Layers(layers) => layers.clone(),
        ModelSpec::Mlp(mlp) => {
            let mut layers = Vec::new();
            if input_rank > 1 {
                layers.push(LayerSpec::Flatten);
            }
            for &width in &mlp.hidden {
                layers.push(LayerSpec::Dense(width));
                layers.push(activation_layer(mlp.activation));
            }
            layers.push(LayerSpec::Dense(outputs));
            layers
        }
    }
}

fn activation_layer(activation: Activation) -> LayerSpec {
    match activation {
        Activation::Relu => LayerSpec::Relu,
        Activation::Tanh => LayerSpec::Tanh,
        Activation::Selu => LayerSpec::Selu,
        Activation::Sigmoid => LayerSpec::Sigmoid,
        Activation::Softplus => LayerSpec::Softplus,
        Activation::Elu => LayerSpec::Elu,
    }
}

/// A short human form of a layer for messages (`conv 16x3`, `dense 10`).
fn describe(layer: &LayerSpec) -> String {
    match layer {
        LayerSpec::Conv(c) => format!("conv {} filters of {}x{}", c.filters, c.kernel, c.kernel),
        LayerSpec::Maxpool(k) => format!("maxpool {k}"),
        LayerSpec::Avgpool(k) => format!("avgpool {k}"),
        LayerSpec::Dense(n) => format!("dense {n}"),
        LayerSpec::Dropout(p) => format!("dropout {p}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

struct Builder {
    plan: Plan,
    /// The shape flowing out of the layers added so far (no batch dimension).
    shape: Vec<usize>,
}

impl Builder {
    fn add(&mut self, i: usize, layer: &LayerSpec) -> Result<(), String> {
        if let Some(act) = layer.activation() {
            self.plan.ops.push(Op::Act(act));
            return Ok(());
        }
        match layer {
            LayerSpec::Conv(conv) => self.conv(i, conv),
            LayerSpec::Maxpool(k) => self.pool(*k).map(|k| self.plan.ops.push(Op::MaxPool(k))),
            LayerSpec::Avgpool(k) => self.pool(*k).map(|k| self.plan.ops.push(Op::AvgPool(k))),
            LayerSpec::Flatten => {
                let size = self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                self.shape = vec![size.filter(|&s| s <= MAX_TENSOR).ok_or("is too large")?];
                self.plan.ops.push(Op::Flatten);
                Ok(())
            }
            LayerSpec::Dense(n) => self.dense(i, *n),
            LayerSpec::Dropout(p) => {
                self.plan.ops.push(Op::Dropout(*p));
                Ok(())
            }
            LayerSpec::Batchnorm => self.batchnorm(i),
            _ => Err("is not a layer the planner knows (a bug)".to_owned()),
        }
    }

    fn conv(&mut self, i: usize, conv: &ConvSpec) -> Result<(), String> {
        let &[channels, height, width] = self.shape.as_slice() else {
            return Err(format!(
                "needs an image input [C, H, W], but gets {:?}",
                self.shape
            ));
        };
        let (k, s) = (conv.kernel, conv.stride);
        let pad = if conv.padding == Padding::Same {
            (k - 1) / 2
        } else {
            0
        };
        if height + 2 * pad < k || width + 2 * pad < k {
            return Err(format!(
                "has a {k}x{k} kernel but gets a {height}x{width} input"
            ));
        }
        let out = |d: usize| (d + 2 * pad - k) / s + 1;
        let fan_in = channels * k * k;
        let shape = vec![conv.filters, channels, k, k]
            .into_iter()
            .map(|d| d as i64)
            .collect();
        let weight = self.param(
            i,
            "weight",
            shape,
            Init::Uniform(kaiming_uniform_bound(fan_in)),
        )?;
        let bias_shape = vec![conv.filters as i64];
        let bias = self.param(i, "bias", bias_shape, Init::Uniform(bias_bound(fan_in)))?;
        self.plan.ops.push(Op::Conv {
            weight,
            bias,
            stride: s as i64,
            padding: pad as i64,
        });
        self.shape = vec![conv.filters, out(height), out(width)];
        Ok(())
    }

    fn pool(&mut self, k: usize) -> Result<i64, String> {
        let &[channels, height, width] = self.shape.as_slice() else {
            return Err(format!(
                "needs an image input [C, H, W], but gets {:?}",
                self.shape
            ));
        };
        if height < k || width < k {
            return Err(format!(
                "has a {k}x{k} window but gets a {height}x{width} input"
            ));
        }
        self.shape = vec![channels, height / k, width / k];
        Ok(k as i64)
    }

    fn dense(&mut self, i: usize, n: usize) -> Result<(), String> {
        let &[fan_in] = self.shape.as_slice() else {
            return Err(format!(
                "needs a flat input but gets shape {:?}; add `flatten` before it",
                self.shape
            ));
        };
        let shape = vec![n as i64, fan_in as i64];
        let weight = self.param(
            i,
            "weight",
            shape,
            Init::Uniform(kaiming_uniform_bound(fan_in)),
        )?;
        let bias = self.param(i, "bias", vec![n as i64], Init::Uniform(bias_bound(fan_in)))?;
        self.plan.ops.push(Op::Dense { weight, bias });
        self.shape = vec![n];
        Ok(())
    }

    fn batchnorm(&mut self, i: usize) -> Result<(), String> {
        let channels = match self.shape.as_slice() {
            &[features] | &[features, _, _] => features as i64,
            other => return Err(format!("needs [C] or [C, H, W] inputs, but gets {other:?}")),
        };
        let weight = self.param(i, "weight", vec![channels], Init::Ones)?;
        let bias = self.param(i, "bias", vec![channels], Init::Zeros)?;
        let mean = self.buffer(i, "running_mean", channels, Init::Zeros);
        let var = self.buffer(i, "running_var", channels, Init::Ones);
        self.plan.ops.push(Op::BatchNorm {
            weight,
            bias,
            mean,
            var,
        });
        Ok(())
    }

    fn param(
        &mut self,
        i: usize,
        what: &str,
        shape: Vec<i64>,
        init: Init,
    ) -> Result<usize, String> {
        let numel = shape.iter().try_fold(1i64, |a, &d| a.checked_mul(d));
        if numel.is_none_or(|n| n > MAX_TENSOR as i64) {
            return Err(format!(
                "would need a {what} tensor of shape {shape:?}, which is too large"
            ));
        }
        let name = format!("layers.{i}.{what}");
        self.plan.params.push(TensorSpec { name, shape, init });
        Ok(self.plan.params.len() - 1)
    }

    fn buffer(&mut self, i: usize, what: &str, len: i64, init: Init) -> usize {
        let name = format!("layers.{i}.{what}");
        self.plan.buffers.push(TensorSpec {
            name,
            shape: vec![len],
            init,
        });
        self.plan.buffers.len() - 1
    }
}

/// PyTorch's default weight initialisation: Kaiming-uniform with a = √5, computed with the
/// same floating-point steps as `torch.nn.init.kaiming_uniform_` (gain √(2 / (1 + a²)),
/// std = gain / √fan_in, bound = √3 · std), which comes to 1/√fan_in.
fn kaiming_uniform_bound(fan_in: usize) -> f64 {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    3f64.sqrt() * std
}

/// PyTorch's default bias initialisation bound, 1/√fan_in.
fn bias_bound(fan_in: usize) -> f64 {
    if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f64).sqrt()
    }
}

#[cfg(test)]
mod tests;
