//! Inputs whose records already say how each attempt ended: flow exports
//! and connection logs. They enter the engine through
//! [`crate::engine::Engine::decided_attempt`], where handshake resolution
//! (R5) ends; everything after it is shared with packets.
pub mod netflow;
