//! slowscan: detects slow TCP SYN scans with the NICT 2014 method (docs/method.md).
//!
//! The engine knows nothing about where records come from: the XDP ring
//! buffer (`kernel`) and offline captures (`capture` + `frame`) feed it the
//! same [`slowscan_common::PacketRecord`].

pub mod capture;
pub mod daemon;
pub mod dest;
pub mod engine;
pub mod fleet;
pub mod frame;
pub mod ignore;
pub mod kernel;
pub mod whitelist;
