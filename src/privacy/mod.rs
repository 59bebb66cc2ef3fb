//! Differential privacy: the exact discrete Laplace sampler (`laplace`), noise drawn inside
//! the MPC so that no party knows it (`noise`), and each statistic's mechanism: its
//! sensitivity, how the dataset's budget is split, and its noise scale (`mechanism`).
//!
//! The model (README, "What a result reveals"): neighbouring datasets differ in one
//! contributor's value (the number of contributions per epoch is public by construction);
//! each fresh release spends ε / releases of the dataset's lifetime ε by basic composition;
//! every mechanism is pure ε-DP (δ = 0). This module holds no networking and no storage.

pub mod laplace;
pub mod mechanism;
pub mod noise;

pub use mechanism::{Budget, Scale};
