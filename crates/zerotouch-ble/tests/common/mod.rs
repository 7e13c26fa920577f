//! Shared by the flow tests: a deployment on loopback (see `world`).
#![allow(dead_code)]

pub mod world;
