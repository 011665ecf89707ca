//! Tests across the adapters.

mod answer_shape;
