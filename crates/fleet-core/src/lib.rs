//! fleet-core: the headless fleetdash engine.
//!
//! Data flows one way: sources ([`kafka`], [`redis_geo`]) → [`decode`] → [`engine`] (live
//! [`state`], [`history`] policy) → [`store`]. Everything here runs without a window, so
//! `fleetctl` and the tests exercise exactly what the desktop app runs.

pub mod acks;
pub mod bulk_ack;
pub mod config;
pub mod decode;
pub mod demo;
pub mod engine;
pub mod geo;
pub mod history;
#[cfg(test)]
mod history_proptests;
pub mod kafka;
pub mod logs;
pub mod notify;
pub mod redis_geo;
pub mod rules;
pub mod schema;
pub mod sim;
pub mod state;
pub mod store;
pub mod view;

pub use config::Config;
pub use engine::{Engine, EngineError, Live};
pub use store::Store;
