//! The runners of the kinds that need libtorch, one file per kind; their declarations
//! (parameters, defaults, checks) are in the `pipeline-kinds` crate.
//!
//! Data kinds (`functions`, `images`, `random_labels`) write a data set folder; `train` fits
//! a model to one; `predict` evaluates a trained model on one; the analyses (`interpolate`,
//! `sensitivity`, `sharpness`, and the landscape kinds `pca`, `critical_point`,
//! `parameter_curves`, `loss_surface`, built on `crate::analysis`) measure trained models.
//! Each file has one `run` function, registered by [`crate::register_runners`].

pub(crate) mod critical_point;
pub(crate) mod functions;
pub(crate) mod images;
pub(crate) mod interpolate;
pub(crate) mod loss_surface;
pub(crate) mod parameter_curves;
pub(crate) mod pca;
pub(crate) mod predict;
pub(crate) mod random_labels;
pub(crate) mod sensitivity;
pub(crate) mod sharpness;
pub(crate) mod train;
